package admin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"gozer/gateway/origin"
	"gozer/gateway/push"
	"gozer/gateway/telemetry"
)

// startAdmin serves an admin listener on loopback with no origin, no filter
// and an idle push hub; it is shut down at cleanup.
func startAdmin(t *testing.T) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := New(ln, Sources{
		Log: zerolog.Nop(), Origins: func() *origin.Table { return &origin.Table{} },
		Counts: telemetry.NewCauseCounters(nil), Push: &push.Hub{}, Draining: func() bool { return false },
	})
	go func() { _ = a.Serve() }()
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return a
}

// openStream sends GET /dashboard/stream on a raw connection and returns it
// with its reader past the response head, and the status.
func openStream(t *testing.T, a *Server) (net.Conn, *bufio.Reader, int) {
	t.Helper()
	c, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /dashboard/stream HTTP/1.1\r\nHost: admin\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("stream head: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return c, r, resp.StatusCode
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	return c, bufio.NewReader(resp.Body), resp.StatusCode
}

func subscribers(a *Server) int {
	a.sampler.mu.Lock()
	defer a.sampler.mu.Unlock()
	return len(a.sampler.subs)
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("after %v still not true: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDashboardPage: the page and its files are served from the binary, with
// a CSP that lets them load nothing else.
func TestDashboardPage(t *testing.T) {
	a := startAdmin(t)
	for path, ct := range map[string]string{
		"/dashboard": "text/html", "/dashboard/dashboard.js": "text/javascript", "/dashboard/dashboard.css": "text/css",
	} {
		resp, err := http.Get("http://" + a.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) || len(body) == 0 ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("GET %s: %d %q CSP %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"),
				resp.Header.Get("Content-Security-Policy"), len(body))
		}
	}
}

// TestDashboardStream: events flow; the 33rd stream is refused; a client
// that leaves frees its slot; Shutdown ends the open streams and the sampler.
func TestDashboardStream(t *testing.T) {
	a := startAdmin(t)
	c, r, status := openStream(t, a)
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	for _, want := range []string{"retry: 2000", "", `data: {"time":`, ""} {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(strings.TrimSuffix(line, "\n"), want) {
			t.Fatalf("read %q (%v); want a line beginning %q", line, err, want)
		}
	}
	for i := 1; i < maxDashboardStreams; i++ {
		if _, _, status := openStream(t, a); status != 200 {
			t.Fatalf("stream %d: status %d", i+1, status)
		}
	}
	if _, _, status := openStream(t, a); status != http.StatusServiceUnavailable {
		t.Fatalf("stream %d: status %d; want 503", maxDashboardStreams+1, status)
	}
	c.Close()
	waitUntil(t, 10*time.Second, "the closed stream's slot freed", func() bool { return subscribers(a) == maxDashboardStreams-1 })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with %d streams open: %v", subscribers(a), err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v with streams open", d)
	}
	waitUntil(t, 5*time.Second, "every stream ended", func() bool { return subscribers(a) == 0 })
}
