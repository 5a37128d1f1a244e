package test

import (
	"testing"
	"time"
)

// TestHTTP2MinBodyRateBriefHold: a hold excuses the time it lasted, not the
// rate window it touched. The stream's window is 1 KiB and the rate 4 KiB/s
// over 2 s windows: a client sends its window's 1 KiB at once (the window
// closes until Gozer takes the body and gives it back: a moment), then
// trickles (10 bytes every 200 ms). Its first window is judged, lengthened
// by that moment only: 408 after about 2 s, not after a second window
// (which the whole first window excused let it have).
func TestHTTP2MinBodyRateBriefHold(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o := startOrigin(t, "o")
	g := h2Gozer(t, ca, o.Addr, map[string]string{"initial_window_size": "1KiB"},
		map[string]string{"min_body_rate": "4KiB", "rate_window": "2s", "header_read_timeout": "60s"})
	h := dialH2(t, g.ProxyAddr)
	if err := h.request(1, "POST", "/sink", false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := h.fr.WriteData(1, false, make([]byte, 1024)); err != nil { // the whole window
		t.Fatal(err)
	}
	status, at := "", time.Duration(0)
	// The trickle starts a pace later: by then Gozer took the 1 KiB and
	// opened the window again (a client may not send past it before).
	for next := start.Add(200 * time.Millisecond); status == "" && time.Since(start) < 15*time.Second; {
		ev := h.next(time.Until(next))
		switch {
		case ev.closed:
			t.Fatal("the connection ended")
		case ev.stream == 1 && ev.status != "":
			status, at = ev.status, time.Since(start)
		case ev.stream == 1 && ev.reset:
			t.Fatalf("stream reset %v before its answer", ev.rst)
		}
		if time.Now().Before(next) {
			continue
		}
		next = next.Add(200 * time.Millisecond) // the trickle's pace
		if err := h.fr.WriteData(1, false, []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	if status != "408" {
		t.Fatalf("the trickling stream got %q, want 408", status)
	}
	if at < 1800*time.Millisecond || at > 3*time.Second {
		t.Errorf("408 after %v, want it at the end of the first rate window (2 s, and the moment its window was closed)", at)
	}
}
