package test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// windowReader is a raw HTTP/2 client of one 50 MB download whose windows
// the test drives: settings as it says, then, from the response's head,
// tick runs every period (a WINDOW_UPDATE, a PING) while a goroutine of its
// own reads frames (Framer reads beside one writer, as net/http's client
// does). It reports how the download ended, from the response's head:
// "RST:CODE", "GOAWAY:CODE then <how the socket ended>", "closed: <err>",
// or "still open" when nothing ended within d.
type windowReader struct {
	initial   uint32        // SETTINGS_INITIAL_WINDOW_SIZE
	conn      uint32        // WINDOW_UPDATE on the connection before the request (0: none)
	period    time.Duration // tick's period (0: no tick)
	tick      func(h *h2raw) error
	wholeConn bool // the connection is judged: read on past its streams' RST_STREAM (slowRead resets them before its GOAWAY)
}

// h2frameEvent is a frame the reading goroutine saw, or how reading ended.
type h2frameEvent struct {
	f   http2.Frame
	err error
}

func (w windowReader) run(t testing.TB, g *gozer, d time.Duration) (string, time.Duration) {
	h := dialH2(t, g.ProxyAddr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: w.initial})
	if w.conn > 0 {
		if err := h.fr.WriteWindowUpdate(0, w.conn); err != nil {
			return err.Error(), 0
		}
	}
	if err := h.request(1, "GET", "/bytes?n=50000000", true); err != nil {
		return err.Error(), 0
	}
	// The head first, on this goroutine: it answers the server's SETTINGS
	// (the only frame it sends that wants an answer), so the reader below
	// never writes.
	if ev := h.next(10 * time.Second); ev.status != "200" {
		return fmt.Sprintf("no response head: %+v", ev), 0
	}
	start := time.Now()
	frames := make(chan h2frameEvent, 64)
	stop := make(chan struct{})
	defer close(stop)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = h.c.SetReadDeadline(time.Now().Add(d + 10*time.Second)) // a bound, not a wait
		for {
			f, err := h.fr.ReadFrame()
			if err == nil {
				switch f.(type) {
				case *http2.DataFrame, *http2.RSTStreamFrame, *http2.GoAwayFrame:
				default:
					continue // acks
				}
			}
			select {
			case frames <- h2frameEvent{f, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { h.c.Close(); wg.Wait() }()
	var ticks <-chan time.Time
	if w.period > 0 {
		tk := time.NewTicker(w.period)
		defer tk.Stop()
		ticks = tk.C
	}
	end := time.After(d)
	for {
		select {
		case <-end:
			return "still open", time.Since(start)
		case <-ticks:
			if err := w.tick(h); err != nil {
				return "write: " + err.Error(), time.Since(start)
			}
		case ev := <-frames:
			switch f := ev.f.(type) {
			case nil:
				return "closed: " + ev.err.Error(), time.Since(start)
			case *http2.RSTStreamFrame:
				if !w.wholeConn {
					return "RST:" + f.ErrCode.String(), time.Since(start)
				}
			case *http2.GoAwayFrame:
				after := time.Since(start)
				return "GOAWAY:" + f.ErrCode.String() + " then " + socketEnd(frames), after
			}
		}
	}
}

// socketEnd reads what follows a GOAWAY until the socket ends: "EOF" for a
// graceful close, else the error (a reset: "connection reset by peer").
func socketEnd(frames <-chan h2frameEvent) string {
	for ev := range frames {
		if ev.err != nil {
			if errors.Is(ev.err, io.EOF) {
				return "EOF"
			}
			return ev.err.Error()
		}
	}
	return "?"
}

// TestHTTP2MinSendRateWindows: server.min_send_rate judges what a client's
// windows let out as DATA, whatever else it makes the gateway write. A
// client that never opens the connection's window (its streams' are wide
// open) loses the connection, with or without a PING every 12 ms (their
// acks are bytes its socket takes, not a response), gracefully: its socket
// drains, so GOAWAY and then EOF, no reset; one that opens a
// stream's window a byte at a time, 200 times a second (200 B/s of DATA, 2
// KB/s of frames), loses the stream; one that opens the connection's window
// at 4 KB/s is kept. All with min_send_rate 1 KiB/s over 1 s windows, far
// from the idle timeout's stall protection (60 s).
func TestHTTP2MinSendRateWindows(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o := startOrigin(t, "o")
	g := h2Gozer(t, ca, o.Addr, nil, map[string]string{"min_send_rate": "1KiB", "rate_window": "1s", "idle_timeout": "60s"})
	ping := func(h *h2raw) error { return h.fr.WritePing(false, [8]byte{1}) }
	cases := []struct {
		name   string
		reader windowReader
		d      time.Duration
		want   string
	}{
		{"connection window never opened", windowReader{initial: 1 << 30, wholeConn: true}, 10 * time.Second, "GOAWAY:ENHANCE_YOUR_CALM then EOF"},
		{"connection window never opened, PING every 12ms", windowReader{initial: 1 << 30, period: 12 * time.Millisecond, tick: ping, wholeConn: true},
			10 * time.Second, "GOAWAY:ENHANCE_YOUR_CALM then EOF"},
		{"stream window a byte every 5ms", windowReader{initial: 0, conn: 1 << 30, period: 5 * time.Millisecond,
			tick: func(h *h2raw) error { return h.fr.WriteWindowUpdate(1, 1) }}, 10 * time.Second, "RST:CANCEL"},
		{"connection window at 4KB/s", windowReader{initial: 1 << 30, period: 250 * time.Millisecond,
			tick: func(h *h2raw) error { return h.fr.WriteWindowUpdate(0, 1024) }}, 5 * time.Second, "still open"},
	}
	results := make([]string, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			saw, after := c.reader.run(t, g, c.d)
			results[i] = fmt.Sprintf("%s after %v", saw, after.Round(time.Millisecond))
			if len(saw) < len(c.want) || saw[:len(c.want)] != c.want {
				t.Errorf("%s: %s; want %q within %v (min_send_rate 1KiB, rate_window 1s)", c.name, results[i], c.want, c.d)
			}
		}()
	}
	wg.Wait()
	for i, c := range cases {
		t.Logf("%s: %s", c.name, results[i])
	}
	if got := g.h2Ended(t, "slow_reader"); got != 3 {
		t.Errorf("http2 ended_total slow_reader %d; want 3", got)
	}
}

// pacedConn reads at most chunk bytes per period: a slow socket.
type pacedConn struct {
	net.Conn
	chunk  int
	period time.Duration
	next   time.Time
}

func (p *pacedConn) Read(b []byte) (int, error) {
	time.Sleep(time.Until(p.next)) // the reader's pace, not a wait for a condition
	n, err := p.Conn.Read(b[:min(len(b), p.chunk)])
	p.next = time.Now().Add(p.period)
	return n, err
}

// TestHTTP2MinSendRateMultiplexed: 16 downloads on one connection whose
// socket takes 8 KB/s (8 times min_send_rate, a 4 KiB receive buffer). Each
// stream's first 64 KiB window leaves at once and waits in the gateway's
// send buffers behind the others' (1 MiB, minutes at this pace), so the
// streams' windows stay shut: that is the socket's doing, which reads fast
// enough, not the client's, and no stream may be judged a slow reader.
// rate_window is 2 s: the connection itself is judged too, and a test
// goroutine held up for a second on a busy machine (race detector, parallel
// tests) must not look like a socket that stopped taking data.
func TestHTTP2MinSendRateMultiplexed(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o := startOrigin(t, "o")
	g := h2Gozer(t, ca, o.Addr, nil, map[string]string{"min_send_rate": "1KiB", "rate_window": "2s", "idle_timeout": "60s"})
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	raw, err := d.Dial("tcp", g.ProxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	h := newH2raw(t, &pacedConn{Conn: raw, chunk: 1024, period: 125 * time.Millisecond})
	if err := h.fr.WriteWindowUpdate(0, 1<<30); err != nil {
		t.Fatal(err)
	}
	for id := uint32(1); id < 32; id += 2 {
		if err := h.request(id, "GET", "/bytes?n=50000000", true); err != nil {
			t.Fatal(err)
		}
	}
	start, data := time.Now(), 0
	for time.Since(start) < 5*time.Second { // two and a half windows of min_send_rate
		ev := h.next(10 * time.Second) // a 16 KiB frame takes 2 s at this pace
		if ev.closed || ev.goaway || ev.rst != 0 || ev.timeout {
			t.Fatalf("after %v: %+v; want DATA", time.Since(start), ev)
		}
		data += ev.data
	}
	t.Logf("%d bytes of DATA in %v", data, time.Since(start))
	if got := g.h2Ended(t, "slow_reader"); got != 0 {
		t.Errorf("http2 ended_total slow_reader %d; want 0 (the socket took %d B/s, min_send_rate 1 KiB/s)", got, data/5)
	}
}
