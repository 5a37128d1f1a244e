package http2

import "testing"

// TestConnWindowRateWatch: DATA that waits for the connection's window
// starts the connection's window of min_send_rate and counts in
// Shared.Buffered, even when the DATA that used the window up left in a
// flush of its own (sendNow's at 64 KiB) and nothing more is written: the
// window's end then judges the connection (slowRead).
func TestConnWindowRateWatch(t *testing.T) {
	c, _, l := newTestConnConfig(t, nil, "server: {min_send_rate: 1KiB, rate_window: 1s}\n")
	l.Enter()
	defer l.Leave()
	c.state = stOpen
	st := openStreams(c, 1)[0]
	st.sendWindow = 1 << 30 // only the connection's window (65535) holds up
	before := l.Shared.Buffered.Load()
	st.WriteBody(make([]byte, 100000)) // one origin read: 65535 leave (a flush at 64 KiB), 34465 wait
	if c.sendWindow != 0 || c.pendTotal != 100000-65535 {
		t.Fatalf("connection window %d, %d bytes waiting; want 0 and %d", c.sendWindow, c.pendTotal, 100000-65535)
	}
	if c.rateAt == 0 {
		t.Fatal("DATA waits for the connection's window and no window of min_send_rate runs")
	}
	if got := l.Shared.Buffered.Load() - before; got != int64(c.pendTotal) {
		t.Errorf("Shared.Buffered grew by %d; want the %d bytes waiting", got, c.pendTotal)
	}
	c.onTimer(c.rateAt) // no window opened meanwhile
	if c.state != stLingering && c.state != stClosed {
		t.Fatalf("connection state %d after a window of min_send_rate with no DATA let out; want it ended", c.state)
	}
}
