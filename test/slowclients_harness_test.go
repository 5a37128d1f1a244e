package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// edgeStats is GET /admin/edge.
type edgeStats struct {
	Connections          int64            `json:"connections"`
	Clients              int              `json:"clients"`
	RefusedConnectionsIP int64            `json:"refused_connections_per_ip_total"`
	RefusedRequestsIP    int64            `json:"refused_requests_per_ip_total"`
	Buffered             int64            `json:"buffered_bytes"`
	BufferedBudget       int64            `json:"buffered_budget_bytes"`
	Parked               int64            `json:"parked_origin_connections"`
	ProxyRefused         int64            `json:"proxy_protocol_refused_total"`
	OriginOpenFiles      int64            `json:"refused_origin_open_files_total"`
	AdminOpenFiles       int64            `json:"refused_admin_open_files_total"`
	Requests             map[string]int64 `json:"requests_without_origin_by_cause"`
}

func (g *gozer) adminEdge(t testing.TB) edgeStats {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + g.AdminAddr + "/admin/edge")
	if err != nil {
		t.Fatalf("GET /admin/edge: %v", err)
	}
	defer resp.Body.Close()
	var e edgeStats
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /admin/edge: status %d, %v", resp.StatusCode, err)
	}
	return e
}

// traffic is what an ordinary client saw.
type traffic struct {
	ok, failed int
	failures   map[string]int // "status cause" or the transport error
}

func (tr traffic) successRate() float64 { return float64(tr.ok) / float64(max(1, tr.ok+tr.failed)) }

// ordinary sends n GETs of path over conc keep-alive connections from
// 127.0.0.1: a client minding its own business next to an attack.
func ordinary(t testing.TB, g *gozer, path string, n, conc int) traffic {
	t.Helper()
	client := newClient(t, 10*time.Second)
	var mu sync.Mutex
	tr := traffic{failures: map[string]int{}}
	var wg sync.WaitGroup
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				resp, err := client.Get(g.URL(path))
				key := ""
				if err != nil {
					key = err.Error()
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						key = fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Gozer-Status"))
					}
				}
				mu.Lock()
				if key == "" {
					tr.ok++
				} else {
					tr.failed++
					tr.failures[key]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return tr
}

// attackEnd is how one attacking connection ended.
type attackEnd struct {
	status int    // 0: closed without an answer
	cause  string // X-Gozer-Status
	alive  time.Duration
	err    error // what the read ended with when there was no answer
}

// attack is a set of attacking connections, each run by its own goroutine
// until the gateway answers or closes it.
type attack struct {
	ready sync.WaitGroup // every connection sent what it sends first
	ends  chan attackEnd
	stop  chan struct{}
	conns []net.Conn
	mu    sync.Mutex
}

func newAttack(t testing.TB, n int) *attack {
	a := &attack{ends: make(chan attackEnd, n), stop: make(chan struct{})}
	a.ready.Add(n)
	t.Cleanup(func() {
		close(a.stop)
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, c := range a.conns {
			c.Close()
		}
	})
	return a
}

// dial opens one attacking connection (with a tiny receive buffer when
// rcvbuf > 0, so that what it does not read waits in the gateway, not in the
// kernel).
func (a *attack) dial(t testing.TB, addr string, rcvbuf int) net.Conn {
	d := net.Dialer{Timeout: 5 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var err error
			_ = c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
			return err
		}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Errorf("attacker dial: %v", err)
		return nil
	}
	a.mu.Lock()
	a.conns = append(a.conns, c)
	a.mu.Unlock()
	return c
}

// slowBodies starts n R.U.D.Y. connections: each announces an 8 KiB body and
// sends 4 bytes of it every `every`.
func slowBodies(t testing.TB, addr string, n int, every time.Duration) *attack {
	a := newAttack(t, n)
	for range n {
		go func() {
			c := a.dial(t, addr, 0)
			if c == nil {
				a.ready.Done()
				return
			}
			start := time.Now()
			_, err := io.WriteString(c, "POST /sink HTTP/1.1\r\nHost: gozer.test\r\nContent-Length: 8192\r\n\r\n")
			a.ready.Done()
			if err != nil {
				a.ends <- attackEnd{err: err, alive: time.Since(start)}
				return
			}
			answered := make(chan attackEnd, 1)
			go func() { answered <- readEnd(c, start) }()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case e := <-answered:
					a.ends <- e
					return
				case <-a.stop:
					return
				case <-tick.C:
					_, _ = io.WriteString(c, "abcd")
				}
			}
		}()
	}
	return a
}

// slowReaders starts n connections that ask for size bytes and read none of
// them (until the gateway closes them).
func slowReaders(t testing.TB, addr string, n int, size int) *attack {
	a := newAttack(t, n)
	for i := range n {
		go func() {
			c := a.dial(t, addr, 4096)
			if c == nil {
				a.ready.Done()
				return
			}
			start := time.Now()
			_, err := fmt.Fprintf(c, "GET /bytes?n=%d&reader=%d HTTP/1.1\r\nHost: gozer.test\r\n\r\n", size, i)
			a.ready.Done()
			if err != nil {
				a.ends <- attackEnd{err: err, alive: time.Since(start)}
				return
			}
			// Wait for the close without reading: a zero-window peek would read;
			// instead poll the socket for its end with a 1-byte read once closed.
			<-waitClosed(c, a.stop)
			a.ends <- attackEnd{alive: time.Since(start)}
		}()
	}
	return a
}

// waitClosed reports when c's peer closed it, reading nothing while it is
// open (the reader must stay slow): it watches for EOF or a reset with
// MSG_PEEK on a socket whose receive buffer stays full.
func waitClosed(c net.Conn, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		rc, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			return
		}
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			gone := false
			_ = rc.Control(func(fd uintptr) {
				var info syscall.TCPInfo
				size := uint32(syscall.SizeofTCPInfo)
				if tcpInfo(fd, &info, &size) == nil && info.State != 1 { // 1: TCP_ESTABLISHED
					gone = true
				}
			})
			if gone {
				return
			}
		}
	}()
	return done
}

// readEnd reads the gateway's answer on c (or its close).
func readEnd(c net.Conn, start time.Time) attackEnd {
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return attackEnd{err: err, alive: time.Since(start)}
	}
	resp.Body.Close()
	return attackEnd{status: resp.StatusCode, cause: resp.Header.Get("X-Gozer-Status"), alive: time.Since(start)}
}

// wait collects n ends within timeout.
func (a *attack) wait(t testing.TB, n int, timeout time.Duration) []attackEnd {
	t.Helper()
	var ends []attackEnd
	deadline := time.After(timeout)
	for len(ends) < n {
		select {
		case e := <-a.ends:
			ends = append(ends, e)
		case <-deadline:
			t.Fatalf("%d of %d attacking connections still open after %v", n-len(ends), n, timeout)
		}
	}
	return ends
}

// countLog counts the process-log lines with every one of want among their
// string values.
func (g *gozer) countLog(want ...string) int {
	n := 0
	for _, l := range g.processLog() {
		if containsAll(l.text, want) {
			n++
		}
	}
	return n
}
