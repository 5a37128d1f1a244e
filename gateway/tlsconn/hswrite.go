package tlsconn

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// outFlight is how the handshake goroutine sends its flights (ServerHello to
// Finished and the session ticket: one write per flight, crypto/tls buffers
// the messages of a flight) while the loop owns the socket's gnet side.
//
// It writes straight to the socket when the socket takes the whole flight,
// which it does unless the client has stopped reading. Handing the flight to
// the loop instead (gnet's AsyncWrite) costs a copy of it (the size of the
// flight: the certificate chain in a full handshake), gnet's hook and queue
// node (four allocations per flight in all: go tool pprof -sample_index=
// alloc_objects on /debug/pprof/allocs around a tlsload -mode resumed run,
// GODEBUG=memprofilerate=1), a task on the loop's queue, and, when the loop
// sleeps, an eventfd write and an epoll turn to wake it.
//
// Two rules keep it safe:
//   - The loop never writes to the socket while the handshake runs (the
//     kind has not got the connection yet), so a direct write cannot cut into
//     one of the loop's; and once a flight went through AsyncWrite (the
//     socket was full, or failed: the loop sees the error and closes),
//     everything after it does too, in order behind it in gnet's queue.
//   - The fd stays this connection's while a write uses it: gnet closes it
//     only after OnClose, which calls close, which waits for a write in
//     progress under mu and stops every later one.
type outFlight struct {
	mu     sync.Mutex
	queued bool // a flight went through AsyncWrite: so do the rest
	closed bool // the socket is closing: no more direct writes
	// inflight counts the flights handed to AsyncWrite that gnet has not
	// written yet (its callback runs on the loop once it did). The loop takes
	// the connection over only at zero: a read event can come before gnet's
	// task queue, and the kind's first write (HTTP/2's SETTINGS, an answer to
	// False Start data) must not overtake the server's Finished.
	inflight atomic.Int32
}

// flightWritten is AsyncWrite's callback for a queued flight. Loop goroutine.
func (o *outFlight) flightWritten(gnet.Conn, error) error {
	o.inflight.Add(-1)
	return nil
}

// pending reports whether a queued flight is still in gnet's task queue.
// Loop goroutine.
func (o *outFlight) pending() bool { return o.inflight.Load() > 0 }

// write sends p (crypto/tls's record buffer, reused after the call) to the
// client. Handshake goroutine.
func (hs *handshake) write(gc gnet.Conn, p []byte) (int, error) {
	o := &hs.out
	n := 0
	o.mu.Lock()
	if !o.queued && !o.closed {
		n = writeAll(gc.Fd(), p)
		o.queued = n < len(p)
	}
	o.mu.Unlock()
	if n == len(p) {
		return n, nil
	}
	// The rest through the loop, as a copy: a full socket (the loop writes
	// it when it drains), an error (the loop's write meets it and closes),
	// or a socket already closing (gnet drops it).
	o.inflight.Add(1)
	if err := gc.AsyncWrite(append([]byte(nil), p[n:]...), o.flightWritten); err != nil {
		o.inflight.Add(-1)
		return n, err
	}
	return len(p), nil
}

// close stops direct writes; it returns once none is in progress. Loop
// goroutine (OnClose).
func (o *outFlight) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
}

// writeAll writes p to the non-blocking socket fd until it is written, the
// socket is full or an error; it returns how much was written.
func writeAll(fd int, p []byte) int {
	n := 0
	for n < len(p) {
		m, err := unix.Write(fd, p[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || m <= 0 {
			return n
		}
		n += m
	}
	return n
}
