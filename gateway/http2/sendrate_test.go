package http2

import (
	"net"
	"testing"
	"time"
)

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

// TestStreamRateKernelQueue: a client that reads nothing while our DATA fits
// in the kernel's send queue (gnet holds none, so the connection's check
// does not run) and opens its stream's window now and then must still be
// judged: by what its TCP acknowledged. Without it each window found the
// DATA "not delivered yet" and granted another, for ever.
func TestStreamRateKernelQueue(t *testing.T) {
	c, _, l := newTestConnConfig(t, nil, "server: {min_send_rate: 1KiB, rate_window: 1s}\n")
	l.Enter()
	defer l.Leave()
	c.state = stOpen
	c.fd = int32(stuckSocket(t)) // a socket whose peer reads nothing: SIOCOUTQ > 0
	st := openStreams(c, 1)[0]
	st.sendWindow = 8 << 10 // the stream's window holds up, the connection's is open
	c.sendWindow = 1 << 30
	st.WriteBody(make([]byte, 100<<10))
	if st.rateAt == 0 {
		t.Fatal("DATA waits for the stream's window and no window of min_send_rate runs")
	}
	c.sent += 1 << 20 // as if the stream's DATA still sat in the kernel's queue: not delivered
	st.dataEnd = c.sent
	st.rateEnd = c.sent
	for i := 0; i < 3 && c.state == stOpen; i++ {
		st.rateDue()
	}
	if c.state == stOpen {
		t.Fatal("three windows of min_send_rate with nothing acknowledged, and the connection is still open")
	}
}

// stuckSocket is the descriptor of a loopback TCP connection whose peer
// reads nothing, written to until its send queue holds bytes.
func stuckSocket(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	buf := make([]byte, 64<<10)
	for {
		_ = conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := conn.Write(buf); err != nil {
			break // the queues are full: the peer's window is shut
		}
	}
	rc, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	_ = rc.Control(func(f uintptr) { fd = int(f) })
	return fd
}
