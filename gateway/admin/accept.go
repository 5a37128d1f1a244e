package admin

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gozer/gateway/loop"
	"gozer/gateway/telemetry"
)

// Accepting through a shortage of descriptors. fasthttp ends its Serve on
// any Accept error but a timeout, so an admin listener that met EMFILE once
// (the process at its open-file limit for a moment: a burst of clients, a
// leak) would answer no health check, metrics scrape or push-API call again
// while the proxy went on serving. The listener waits and tries again
// instead, with net/http's backoff (net/http does it for EMFILE and ENFILE;
// ENOBUFS and ENOMEM pass too): what is queued stays in the kernel's backlog
// until a descriptor frees.
//
// Keeping clear of the limit. With accept_on_loops, the loops refuse client
// connections from a descriptor number on (loop.Shared.FDCeiling) so that
// their accept4 always finds one free: gnet stops every loop at EMFILE. The
// admin listener does the same half-way up that reserve
// (loop.Shared.AdminFDCeiling): a connection it accepts with a descriptor
// that high is closed at once (a plain-HTTP 503 first, when the listener is
// not TLS), logged and counted. Linux hands out the lowest free number, so
// that descriptor means as many are in use, whatever holds them: admin
// connections served, idle or hijacked, the push API's forwards to other
// nodes. A burst of push-API callers then costs them 503s, not the loops.

// Backoff between accepts that met a shortage: doubled each time, reset by
// a success.
const (
	acceptRetryFirst = 5 * time.Millisecond
	acceptRetryMost  = time.Second
)

// retryListener is a listener whose Accept waits out EMFILE, ENFILE,
// ENOBUFS and ENOMEM, and refuses the connections whose descriptor reaches
// its ceiling (refuseFrom, tooHigh). Accept is called by fasthttp's one accepting
// goroutine; Close, from any goroutine, ends a wait at once (a shutdown
// must not sit out a second of backoff: fasthttp's Shutdown waits for the
// pending Accept).
type retryListener struct {
	net.Listener
	log    *telemetry.Sampled // nil: no log
	sleep  func(time.Duration)
	closed chan struct{}
	once   sync.Once

	// ceiling: a connection whose descriptor number reaches it is closed at
	// once (0: none), after answer when not nil; refused counts them.
	ceiling int
	answer  []byte
	refused *atomic.Int64
}

func newRetryListener(ln net.Listener, log *telemetry.Sampled) *retryListener {
	l := &retryListener{Listener: ln, log: log, closed: make(chan struct{})}
	l.sleep = l.pause
	return l
}

// refuseFrom makes the listener close the connections whose descriptor
// reaches ceiling (0: none), writing answer first when not nil (the socket is
// new: one write that does not wait), counted in refused. Before Accept.
func (l *retryListener) refuseFrom(ceiling int, answer []byte, refused *atomic.Int64) {
	l.ceiling, l.answer, l.refused = ceiling, answer, refused
}

// Close closes the listener and ends a wait in Accept.
func (l *retryListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// pause waits d, or until Close.
func (l *retryListener) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.closed:
	}
}

// Accept returns the next connection under the ceiling (one at or above it
// is refused and Accept waits for the next), or the listener's first error
// that is not a shortage (net.ErrClosed once closed).
func (l *retryListener) Accept() (net.Conn, error) {
	delay := acceptRetryFirst
	for {
		c, err := l.Listener.Accept()
		if err == nil && l.tooHigh(c) {
			continue
		}
		if err == nil || !shortage(err) {
			return c, err
		}
		if l.log != nil {
			l.log.Warn("admin_accept_shortage").Err(err).Dur("retry_in", delay).
				Msg("admin listener: no descriptor for a new connection; trying again")
		}
		l.sleep(delay)
		delay = min(2*delay, acceptRetryMost)
	}
}

// tooHigh closes c, and reports so, when its descriptor reaches the ceiling.
func (l *retryListener) tooHigh(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if l.ceiling <= 0 || !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	fd, at := loop.AtCeiling(rc, l.ceiling)
	if !at {
		return false
	}
	client := c.RemoteAddr()
	if l.answer != nil {
		_ = rc.Write(func(d uintptr) bool {
			_, _ = unix.Write(int(d), l.answer) // what fits; never wait
			return true
		})
	}
	// What the client sent while queued is read off first (once, without
	// waiting): closing a socket with unread data sends a reset, which may
	// cost the client the answer.
	_ = rc.Read(func(d uintptr) bool {
		var buf [4096]byte
		_, _ = unix.Read(int(d), buf[:])
		return true
	})
	_ = c.Close()
	if l.refused != nil {
		l.refused.Add(1)
	}
	if l.log != nil {
		l.log.Warn("admin_accept_open_files").Int("fd", fd).Int("ceiling", l.ceiling).Stringer("client", client).
			Msg("admin listener: connection closed, too close to the open-file limit")
	}
	return true
}

// shortage reports whether err is the system running short of what a new
// connection needs, which passes.
func shortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
