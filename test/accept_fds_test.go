package test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAcceptOnLoopsOriginOpenFiles: origin connections do not eat the
// descriptors the loops' accept4 needs. Under a limit of 160 descriptors
// (ceiling 96), many clients each hold a request to a silent origin (/hang)
// while new connections keep arriving: a dial whose socket reaches the
// ceiling fails at once with a 503 (originconn.ErrOpenFiles, counted in
// /admin/edge), where it used to take the last descriptors so that the next
// accept4 met EMFILE and gnet stopped every loop. Gozer keeps serving.
func TestAcceptOnLoopsOriginOpenFiles(t *testing.T) {
	t.Parallel()
	g := startGozer(t, openFilesSqueeze(t, map[string]string{"read_timeout": "60s"}, map[string]string{"header_read_timeout": "30s"}))
	var conns []net.Conn
	for range 110 {
		c, err := net.DialTimeout("tcp", g.ProxyAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// New connections arrive all along: each is an accept4 that must find a
	// free descriptor.
	stop := make(chan struct{})
	var churn sync.WaitGroup
	for range 2 {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c, err := net.DialTimeout("tcp", g.ProxyAddr, time.Second); err == nil {
					_ = c.Close()
				}
			}
		}()
	}
	// Every client asks for /hang: those past the ceiling at accept get
	// their 503 (they were refused before they sent), and those whose origin
	// dial reaches it get theirs; the rest hang at the origin until the test
	// ends (their reads time out).
	var mu sync.Mutex
	status := map[string]int{}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			got := "no answer"
			if _, err := fmt.Fprint(c, request("GET", "/hang")); err == nil {
				b := make([]byte, 12)
				if n, _ := c.Read(b); n > 0 {
					got = string(b[:n])
				}
			}
			mu.Lock()
			status[got]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stop)
	churn.Wait()
	t.Logf("answers to /hang: %v", status)
	if e := g.adminEdge(t); e.OriginOpenFiles == 0 {
		t.Errorf("no origin dial failed at the open-file ceiling (refused_origin_open_files_total 0; answers %v)", status)
	}
	if status["HTTP/1.1 503"] == 0 {
		t.Errorf("no /hang answered 503: %v", status)
	}
	if out := g.output(); strings.Contains(out, "event loops stopped") || strings.Contains(out, "too many open files") {
		t.Fatal("the loops met EMFILE")
	}
	for _, c := range conns {
		_ = c.Close()
	}
	waitServesAgain(t, g)
}

// TestAcceptOnLoopsEngineDiesExits: when the loops stop by themselves, the
// process exits non-zero (a supervisor restarts it) instead of staying up with
// a health check that answers 200. Triggered as in production: the admin
// listener's connections (which the open-file reserve must cover, and do not
// meet the ceiling) take every descriptor, so the next accept4 on a loop
// meets EMFILE, which gnet does not survive. A request in flight then ends
// with its connection: its access-log line, written after the loops' last
// tick, must still come out before the process exits.
func TestAcceptOnLoopsEngineDiesExits(t *testing.T) {
	t.Parallel()
	g := startGozer(t, openFilesSqueeze(t, nil, nil))
	hung := dialRaw(t, g.ProxyAddr)
	hung.send("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, 10*time.Second, "/hang in flight", func() bool { return g.adminOrigin(t, "demo").InFlight == 1 })
	for range 200 {
		c, err := net.DialTimeout("tcp", g.AdminAddr, 5*time.Second)
		if err != nil {
			break
		}
		defer c.Close()
	}
	waitFor(t, 20*time.Second, "gozer exits", func() bool {
		if c, err := net.DialTimeout("tcp", g.ProxyAddr, time.Second); err == nil {
			_ = c.Close()
		}
		return g.exited()
	})
	code, _ := g.exitCode(time.Second)
	if code == 0 {
		t.Errorf("exit code 0 after the loops stopped")
	}
	if !strings.Contains(g.output(), "exiting: the event loops stopped") {
		t.Error("no log line says why it exits")
	}
	if !strings.Contains(g.output(), `"method":"GET","path":"/hang","status":499`) { // the access log's (the process log's "request failed" has no method)
		t.Errorf("the in-flight request's access-log line was lost when the loops stopped:\n%s", tail(g.output(), 3000))
	}
}

// TestAdminListenerSurvivesEMFILE: the admin listener's own connections take
// every descriptor, so its accept meets EMFILE. It waits (logged) instead of
// stopping for good: once those connections close, the health check and the
// admin API answer again, and so does the proxy.
func TestAdminListenerSurvivesEMFILE(t *testing.T) {
	t.Parallel()
	g := startGozer(t, openFilesSqueeze(t, nil, nil))
	var held []net.Conn
	for range 200 {
		c, err := net.DialTimeout("tcp", g.AdminAddr, 5*time.Second)
		if err != nil {
			break
		}
		held = append(held, c)
		t.Cleanup(func() { _ = c.Close() })
	}
	g.waitLog(t, "admin listener: no descriptor for a new connection; trying again")
	for _, c := range held {
		_ = c.Close()
	}
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	if !eventually(20*time.Second, func() bool {
		resp, err := client.Get("http://" + g.AdminAddr + "/healthcheck")
		if err != nil {
			last = err
			return false
		}
		resp.Body.Close()
		last = fmt.Errorf("status %d", resp.StatusCode)
		return resp.StatusCode == 200
	}) {
		t.Fatalf("the admin listener never answered again after EMFILE: %v\n%s", last, tail(g.output(), 2000))
	}
	if strings.Contains(g.output(), "admin listener stopped") {
		t.Error("the admin listener stopped on EMFILE")
	}
	waitServesAgain(t, g)
}
