package admin

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

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

// Backoff between accepts that met a shortage: doubled each time, reset by
// a success.
const (
	acceptRetryFirst = 5 * time.Millisecond
	acceptRetryMost  = time.Second
)

// retryListener is a listener whose Accept waits out EMFILE, ENFILE,
// ENOBUFS and ENOMEM. Accept is called by fasthttp's one accepting
// goroutine; Close, from any goroutine, ends a wait at once (a shutdown
// must not sit out a second of backoff: fasthttp's Shutdown waits for the
// pending Accept).
type retryListener struct {
	net.Listener
	log    *telemetry.Sampled // nil: no log
	sleep  func(time.Duration)
	closed chan struct{}
	once   sync.Once
}

func newRetryListener(ln net.Listener, log *telemetry.Sampled) *retryListener {
	l := &retryListener{Listener: ln, log: log, closed: make(chan struct{})}
	l.sleep = l.pause
	return l
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

// Accept returns the next connection, or the listener's first error that is
// not a shortage (net.ErrClosed once closed).
func (l *retryListener) Accept() (net.Conn, error) {
	delay := acceptRetryFirst
	for {
		c, err := l.Listener.Accept()
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

// shortage reports whether err is the system running short of what a new
// connection needs, which passes.
func shortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
