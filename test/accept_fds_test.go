package test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
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
	status := answersOf(conns, request("GET", "/hang"), 5*time.Second)
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
// a health check that answers 200. The process's own accounting keeps its
// accept4 clear of the open-file limit (TestAcceptOnLoopsOriginOpenFiles,
// TestAdminConnectionsKeepToTheReserve), so the test takes the descriptors
// from outside, as a leak or a library's files would: it lowers the running
// process's limit to its lowest free descriptor (prlimit --pid), and the next
// accept4 on a loop meets EMFILE, which gnet does not survive. A request in
// flight then ends with its connection: its access-log line, written after
// the loops' last tick, must still come out before the process exits.
func TestAcceptOnLoopsEngineDiesExits(t *testing.T) {
	t.Parallel()
	g := startGozer(t, openFilesSqueeze(t, nil, nil))
	hung := dialRaw(t, g.ProxyAddr)
	hung.send("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, 10*time.Second, "/hang in flight", func() bool { return g.adminOrigin(t, "demo").InFlight == 1 })
	// Each try lowers the limit to the lowest free descriptor again: one the
	// process freed after the last look (a connection's close) would
	// otherwise let the next accept4 through.
	waitFor(t, 20*time.Second, "gozer exits", func() bool {
		if g.exited() {
			return true
		}
		g.setOpenFileLimit(t, g.lowestFreeFD(t))
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

// TestAdminListenerSurvivesEMFILE: the admin listener's accept meets EMFILE
// (the process's limit lowered under it to its lowest free descriptor, as in
// TestAcceptOnLoopsEngineDiesExits; no proxy client arrives meanwhile, so the
// loops never accept). It waits (logged) instead of stopping for good: once
// descriptors free (the limit back), the health check and the admin API
// answer again, and so does the proxy.
func TestAdminListenerSurvivesEMFILE(t *testing.T) {
	t.Parallel()
	g := startGozer(t, openFilesSqueeze(t, nil, nil))
	// As in TestAcceptOnLoopsEngineDiesExits, each try lowers the limit to
	// the lowest free descriptor again and queues one more admin connection.
	waitFor(t, 20*time.Second, "the admin listener's accept meets EMFILE", func() bool {
		g.setOpenFileLimit(t, g.lowestFreeFD(t))
		c, err := net.DialTimeout("tcp", g.AdminAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return eventually(time.Second, func() bool {
			return strings.Contains(g.output(), "admin listener: no descriptor for a new connection; trying again")
		})
	})
	g.setOpenFileLimit(t, squeezedOpenFiles)
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

// TestAdminConnectionsKeepToTheReserve: the admin listener keeps half the
// descriptors the loops reserve under the open-file limit free (160 here: the
// loops refuse clients from descriptor 96, the admin listener from 128). A
// burst of 200 admin connections (a push-API caller's pool growing), which
// used to take every descriptor so that the next accept4 on a loop met
// EMFILE and the process lost its loops, now gets 503s past descriptor 128,
// counted in /admin/edge; the loops keep answering meanwhile (a client past
// their own ceiling gets their 503), and serve as before once the burst ends.
func TestAdminConnectionsKeepToTheReserve(t *testing.T) {
	t.Parallel()
	g := startGozer(t, openFilesSqueeze(t, nil, nil))
	base := g.lowestFreeFD(t) // the admin connections take descriptors from here up
	var held []net.Conn
	for range 200 {
		c, err := net.DialTimeout("tcp", g.AdminAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("admin connection %d: %v", len(held)+1, err)
		}
		held = append(held, c)
		t.Cleanup(func() { _ = c.Close() })
	}
	// Those refused got their 503 and were closed; the ones served wait for
	// a request (no answer). Those from descriptor 128 on, give or take the
	// few the process opens or closes meanwhile.
	refused := int64(answersOf(held, "", 2*time.Second)["HTTP/1.1 503"])
	if want := int64(200 - (squeezedAdminCeiling - base)); refused < want-8 || refused > want+8 {
		t.Errorf("%d of 200 admin connections answered 503; want those past descriptor %d: %d (from descriptor %d up)", refused, squeezedAdminCeiling, want, base)
	}
	// The loops are alive: a client gets an answer while the burst holds.
	c := dialRaw(t, g.ProxyAddr)
	c.send(request("GET", "/counter"))
	if resp, _, err := c.readResponse("GET"); err != nil {
		t.Errorf("a proxy client during the burst got no answer: %v", err)
	} else {
		t.Logf("a proxy client during the burst: %s", resp.Status)
	}
	for _, c := range held {
		_ = c.Close()
	}
	waitServesAgain(t, g)
	if out := g.output(); strings.Contains(out, "event loops stopped") || strings.Contains(out, "too many open files") {
		t.Fatalf("the process ran out of descriptors:\n%s", tail(out, 2000))
	}
	if e := g.adminEdge(t); e.AdminOpenFiles < refused {
		t.Errorf("/admin/edge refused_admin_open_files_total %d, want at least the %d answered 503", e.AdminOpenFiles, refused)
	}
	g.waitLog(t, "admin listener: connection closed, too close to the open-file limit")
}

// lowestFreeFD is the lowest descriptor number the process has free: the one
// its next socket would get.
func (g *gozer) lowestFreeFD(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	used := map[int]bool{}
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			used[n] = true
		}
	}
	n := 0
	for used[n] {
		n++
	}
	return n
}

// setOpenFileLimit sets the running process's soft open-file limit, the one
// a new descriptor is checked against (the hard one stays: raising the soft
// limit back needs no privilege).
func (g *gozer) setOpenFileLimit(t *testing.T, n int) {
	t.Helper()
	pid := strconv.Itoa(g.cmd.Process.Pid)
	if out, err := exec.Command("prlimit", "--pid", pid, fmt.Sprintf("--nofile=%d:", n)).CombinedOutput(); err != nil && !g.exited() {
		t.Fatalf("prlimit --pid %s --nofile=%d: %v: %s", pid, n, err, out)
	}
}

// answersOf sends req (if not empty) on every connection at once and counts
// the first 12 bytes of what each got back within timeout ("HTTP/1.1 503"),
// "no answer" for none. In parallel: a read past its deadline does not look
// at what arrived.
func answersOf(conns []net.Conn, req string, timeout time.Duration) map[string]int {
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetDeadline(time.Now().Add(timeout))
			answer := "no answer"
			if _, err := io.WriteString(c, req); err == nil || req == "" {
				b := make([]byte, 12)
				if n, _ := io.ReadFull(c, b); n > 0 {
					answer = string(b[:n])
				}
			}
			mu.Lock()
			got[answer]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return got
}
