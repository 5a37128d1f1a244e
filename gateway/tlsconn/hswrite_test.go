package tlsconn

import (
	"bytes"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// flightConn is the gnet side of a handshake's socket in these tests: the
// socket's fd, and AsyncWrite recording what went through the loop.
type flightConn struct {
	gnet.Conn // nil: only Fd and AsyncWrite are used
	fd        int
	mu        sync.Mutex
	async     [][]byte
	callbacks []gnet.AsyncCallback // what gnet's task would call once written
}

func (f *flightConn) Fd() int { return f.fd }

func (f *flightConn) AsyncWrite(b []byte, cb gnet.AsyncCallback) error {
	f.mu.Lock()
	f.async = append(f.async, b)
	f.callbacks = append(f.callbacks, cb)
	f.mu.Unlock()
	return nil
}

// socketPair is a connected pair of non-blocking stream sockets with small
// buffers: the server's end (fd) and the client's (a net.Conn reading it).
func socketPair(t *testing.T) (int, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	f := os.NewFile(uintptr(fds[1]), "client")
	client, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fds[0]); _ = client.Close() })
	return fds[0], client
}

// TestHandshakeWrite: the handshake goroutine writes a flight straight to the
// socket when it takes all of it; what it does not take, and everything
// after, goes through the loop (AsyncWrite) in order; after close nothing
// touches the fd.
func TestHandshakeWrite(t *testing.T) {
	small := bytes.Repeat([]byte{'s'}, 300)
	huge := bytes.Repeat([]byte{'h'}, 4<<20) // more than the socket takes
	tests := []struct {
		name       string
		closeFirst bool
		flights    [][]byte
		wantDirect int // bytes the client reads from the socket
		wantAsync  int // AsyncWrite calls
	}{
		{"flights the socket takes go direct", false, [][]byte{small, small}, 600, 0},
		{"a full socket: the rest and what follows through the loop", false, [][]byte{huge, small}, -1, 2},
		{"closing: everything through the loop (gnet drops it)", true, [][]byte{small}, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fd, client := socketPair(t)
			gc := &flightConn{fd: fd}
			hs := newHandshake(func() {})
			hs.arm(time.Hour)
			defer hs.timer.Stop()
			if tc.closeFirst {
				hs.out.close()
			}
			var sent []byte
			for _, p := range tc.flights {
				buf := append([]byte(nil), p...)
				if n, err := hs.write(gc, buf); n != len(p) || err != nil {
					t.Fatalf("write = %d, %v; want %d, nil", n, err, len(p))
				}
				clear(buf) // crypto/tls reuses its buffer: what was queued must be a copy
				sent = append(sent, p...)
			}
			_ = unix.Shutdown(fd, unix.SHUT_WR)
			direct, err := io.ReadAll(client)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantDirect >= 0 && len(direct) != tc.wantDirect {
				t.Errorf("the socket got %d bytes, want %d", len(direct), tc.wantDirect)
			}
			if len(gc.async) != tc.wantAsync {
				t.Errorf("%d AsyncWrite calls, want %d", len(gc.async), tc.wantAsync)
			}
			// The loop may not take over while a queued flight waits in
			// gnet's task queue, and may once gnet wrote them all.
			if got, want := hs.out.pending(), tc.wantAsync > 0; got != want {
				t.Errorf("pending before gnet wrote the queued flights = %v, want %v", got, want)
			}
			for _, cb := range gc.callbacks {
				_ = cb(nil, nil)
			}
			if hs.out.pending() {
				t.Error("pending after gnet wrote every queued flight")
			}
			// What the client would get: the socket's bytes, then the loop's.
			got := append([]byte(nil), direct...)
			for _, b := range gc.async {
				got = append(got, b...)
			}
			if !bytes.Equal(got, sent) {
				t.Errorf("the client would get %d bytes, not the %d sent in order", len(got), len(sent))
			}
		})
	}
}

// TestHandshakeStart: the goroutine starts once, whoever asks first (the
// loop's first bytes, the socket's close, the timeout), and the timeout
// starts it for a client that never sends a byte.
func TestHandshakeStart(t *testing.T) {
	runs := make(chan struct{}, 4)
	hs := newHandshake(func() { runs <- struct{}{} })
	hs.arm(20 * time.Millisecond)
	select {
	case <-runs:
		t.Fatal("started before any bytes or the timeout")
	case <-time.After(5 * time.Millisecond):
	}
	select {
	case <-runs:
	case <-time.After(5 * time.Second):
		t.Fatal("the timeout did not start the goroutine")
	}
	hs.start()
	hs.close()
	select {
	case <-runs:
		t.Fatal("started twice")
	case <-time.After(30 * time.Millisecond):
	}
}
