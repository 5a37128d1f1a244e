package test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// slowStreamReader opens its stream windows by 200 bytes every 200 ms (1
// KB/s, progress enough for any idle timeout) for a 50 MB answer, and
// reports how the stream ended and when.
func slowStreamReader(t testing.TB, g *gozer) (string, time.Duration) {
	h := dialH2(t, g.ProxyAddr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1024})
	if err := h.fr.WriteWindowUpdate(0, 1<<30); err != nil {
		return err.Error(), 0
	}
	start := time.Now()
	if err := h.request(1, "GET", "/bytes?n=50000000", true); err != nil {
		return err.Error(), 0
	}
	for next := start; time.Since(start) < 20*time.Second; {
		ev := h.next(time.Until(next))
		switch {
		case ev.rst != 0 && ev.stream == 1:
			return "RST:" + ev.rst.String(), time.Since(start)
		case ev.goaway:
			return "GOAWAY:" + ev.code.String(), time.Since(start)
		case ev.closed:
			return "closed", time.Since(start)
		}
		if time.Now().After(next) {
			_ = h.fr.WriteWindowUpdate(1, 200)
			next = next.Add(200 * time.Millisecond)
		}
	}
	return "still open", time.Since(start)
}

// slowSocketReader opens every window wide but reads its socket (a small
// receive buffer) 512 bytes every 100 ms (5 KB/s) for a 50 MB answer, with
// an upload beside it whose body never comes, and reports how the
// connection ended and when.
func slowSocketReader(t testing.TB, g *gozer) (string, time.Duration) {
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", g.ProxyAddr)
	if err != nil {
		return err.Error(), 0
	}
	h := newH2raw(t, c, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	if err := h.fr.WriteWindowUpdate(0, 1<<30); err != nil {
		return err.Error(), 0
	}
	start := time.Now()
	if err := h.request(1, "GET", "/bytes?n=50000000", true); err != nil {
		return err.Error(), 0
	}
	// A second stream whose request body never comes: the connection's end
	// ends it too, before any response.
	if err := h.request(3, "POST", "/upload", false); err != nil {
		return err.Error(), 0
	}
	buf := make([]byte, 512)
	for time.Since(start) < 20*time.Second {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			switch {
			case errors.Is(err, syscall.ECONNRESET):
				return "closed: reset", time.Since(start)
			case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
				return "closed: EOF", time.Since(start)
			}
			return "read: " + err.Error(), time.Since(start) // a timeout: the gateway stopped sending, not closed
		}
		time.Sleep(100 * time.Millisecond) // the slow reader's pace, not a wait for a condition
	}
	return "still open", time.Since(start)
}

// fastReader downloads a 5 MB answer with net/http's HTTP/2 client.
func fastReader(t testing.TB, g *gozer) (string, time.Duration) {
	start := time.Now()
	resp, err := h2cClient(t).Get(g.URL("/bytes?n=5000000"))
	if err != nil {
		return err.Error(), time.Since(start)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.ProtoMajor != 2 {
		return fmt.Sprintf("%s after %d bytes: %v", resp.Proto, n, err), time.Since(start)
	}
	return fmt.Sprintf("%d %d", resp.StatusCode, n), time.Since(start)
}

// TestHTTP2MinSendRate: server.min_send_rate applies to HTTP/2. A client
// that opens its stream's window below the rate gets that stream reset
// (RST_STREAM CANCEL); one whose socket takes the connection's bytes below
// it loses the connection (GOAWAY ENHANCE_YOUR_CALM behind what it did not
// read, and a reset). Both within a few rate windows, long before the idle
// timeout's stall protection (60 s here) would act, while an ordinary client
// is served, and one that reads at full speed gets its whole answer; each
// slow reader is counted (slow_reader), logged, and its request's
// access-log line says FAILURE_CLIENT_READ_TOO_SLOW.
func TestHTTP2MinSendRate(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o := startOrigin(t, "o")
	// min_body_rate off: the socket reader's upload, whose body never comes,
	// must end with its connection, not race it on its own 1 s rate window
	// (408 FAILURE_CLIENT_BODY_TOO_SLOW won 3 runs in 8 on a loaded machine).
	g := h2Gozer(t, ca, o.Addr, nil, map[string]string{"min_send_rate": "8KiB", "rate_window": "1s", "idle_timeout": "60s", "min_body_rate": "0"})
	cases := []struct {
		name   string
		reader func(testing.TB, *gozer) (string, time.Duration)
		want   string // the start of what the reader saw
	}{
		{"stream window below the rate", slowStreamReader, "RST:CANCEL"},
		{"socket below the rate", slowSocketReader, "closed: "},
		{"a reader at full speed", fastReader, "200 5000000"},
	}
	type result struct {
		saw   string
		after time.Duration
	}
	results := make([]result, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			saw, after := c.reader(t, g)
			results[i] = result{saw, after}
		}()
	}
	time.Sleep(500 * time.Millisecond) // let the readers start; servedMeanwhile then runs beside them
	servedMeanwhile(t, g)
	wg.Wait()
	for i, c := range cases {
		r := results[i]
		t.Logf("%s: %q after %v", c.name, r.saw, r.after)
		if !strings.HasPrefix(r.saw, c.want) || r.after > 10*time.Second {
			t.Errorf("%s: %q after %v; want %q within 10s (rate_window 1s, idle_timeout 60s)", c.name, r.saw, r.after, c.want)
		}
	}
	if got := g.h2Ended(t, "slow_reader"); got != 2 {
		t.Errorf("http2 ended_total slow_reader %d; want 2", got)
	}
	g.waitLog(t, "http2 stream reset", "min_send_rate")
	g.waitLog(t, "http2 connection ended", "ENHANCE_YOUR_CALM", "min_send_rate")
	var lines []accessLine
	eventually(10*time.Second, func() bool { // the three lines may be written apart
		lines = lines[:0]
		for _, l := range g.accessLog() {
			if l.str("cause") == "FAILURE_CLIENT_READ_TOO_SLOW" && l.str("protocol") == "HTTP/2.0" {
				lines = append(lines, l)
			}
		}
		return len(lines) >= 3
	})
	if len(lines) != 3 {
		t.Errorf("%d access-log lines FAILURE_CLIENT_READ_TOO_SLOW; want 3 (the socket reader's upload too)", len(lines))
	}
	for _, l := range lines {
		if st, _ := l.num("status"); l.str("path") == "/upload" && st != 408 {
			t.Errorf("the unanswered upload's line: status %v; want 408 (no response started)", st)
		}
	}
}
