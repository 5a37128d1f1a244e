package loop

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Backpressure. gnet reads every readable socket and buffers whatever the handler
// leaves unconsumed, and it buffers every write the socket cannot take: neither side
// is bounded. A proxy must be, so Gozer stops reading from one side while the other
// side holds more than server.max_buffered_per_conn, and starts again once it drained.
// Every connection kind uses the same two helpers: Reads (pause and resume a
// connection's reads) and Writable (a wake-up when its socket takes bytes again).
//
// gnet v2.10 has no API to stop reading a connection, so Reads changes the
// connection's interest set in its loop's epoll instance directly. The epoll fd is
// found once per loop by reflection (EpollFD); TestLoopEpollFD fails if a gnet
// upgrade moves it. gnet itself re-enables reading after it flushes a connection's
// pending writes; the connection then notices the data of a paused connection and
// pauses it again, so at most one read (64 KiB) slips through per flush.
//
// Knowing when a peer drained needs a writability event that gnet keeps to itself,
// so a Watcher owns a second epoll instance: a connection waiting for its peer
// to drain is added there with EPOLLOUT|EPOLLONESHOT, and the watcher goroutine hands
// the wake-up to the connection's own loop.

// Reads is one connection's read state (a byte): paused by the gateway or not.
// Loop goroutine.
type Reads struct{ paused bool }

// Paused reports whether the gateway stopped reading the connection.
func (r *Reads) Paused() bool { return r.paused }

// Pause stops reading c; it reports whether reads are paused now (false when
// the loop cannot pause, or c is gone).
func (r *Reads) Pause(l *Loop, c gnet.Conn) bool {
	if l.epfd < 0 {
		return false
	}
	if err := setInterest(l.epfd, c, false); err == nil {
		r.paused = true
	}
	return r.paused
}

// Resume reads c again.
func (r *Reads) Resume(l *Loop, c gnet.Conn) {
	r.paused = false
	if l.epfd >= 0 {
		_ = setInterest(l.epfd, c, true)
	}
}

// Writable is one connection's wake-up for when its socket takes bytes again.
// Loop goroutine.
type Writable struct {
	fn func() // the connection's handler, set at the first Watch: a non-nil fn means watched once
}

// Watch asks for fn to run on l once c's socket is writable again (once).
// A connection always passes the same fn.
func (w *Writable) Watch(l *Loop, c gnet.Conn, fn func()) error {
	w.fn = fn
	return l.Shared.Watcher.watch(c.Fd(), l, fn)
}

// Release forgets c's wake-up; call it when c closes (before gnet closes the fd).
func (w *Writable) Release(l *Loop, fd int) {
	if w.fn != nil {
		l.Shared.Watcher.unwatch(fd)
	}
}

// EpollFD digs the epoll fd out of gnet's loop behind c.
func EpollFD(c gnet.Conn) (fd int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("find event loop's epoll fd: gnet internals changed: %v", r)
		}
	}()
	v := reflect.ValueOf(Raw(c)).Elem().FieldByName("loop").Elem().FieldByName("poller").Elem().FieldByName("fd")
	if !v.IsValid() {
		return -1, errors.New("find event loop's epoll fd: gnet internals changed")
	}
	return int(v.Int()), nil
}

// setInterest sets the epoll events of c's fd in its loop's epoll. The event data
// stays the fd, which is how gnet's default poller finds its connection.
func setInterest(epfd int, c gnet.Conn, read bool) error {
	fd := c.Fd()
	var ev uint32
	if read {
		ev = unix.EPOLLIN | unix.EPOLLPRI
	}
	if c.OutboundBuffered() > 0 {
		ev |= unix.EPOLLOUT
	}
	return unix.EpollCtl(epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: ev, Fd: int32(fd)})
}

// Watcher tells a loop when a connection's socket can take more bytes (see
// Writable). watch and unwatch are called on event loops; Run is the
// watcher's goroutine; Stop and Release are for shutdown.
type Watcher struct {
	epfd   int
	stopFD int
	mu     sync.Mutex
	subs   map[int32]*watchSub // by fd
}

// watchSub is one connection waiting for writability; its task runs on its loop.
type watchSub struct {
	l       *Loop
	added   bool // fd is in the watcher's epoll set
	task    gnet.RunnableFunc
	pending bool
}

// NewWatcher returns a watcher; run it with Run on a goroutine of its own.
func NewWatcher() (*Watcher, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create writable watcher epoll: %w", err)
	}
	return &Watcher{epfd: fd, subs: make(map[int32]*watchSub)}, nil
}

// watch arms a one-shot writability wake-up for fd; fn runs on l when it
// fires, with l's clock refreshed and its callback ended after. Called on l's
// goroutine.
func (w *Watcher) watch(fd int, l *Loop, fn func()) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.subs[int32(fd)]
	if s == nil {
		// One task per watched connection, made once: a connection always asks for
		// the same wake-up, however often it waits.
		s = &watchSub{l: l, task: func(context.Context) error {
			l.Enter()
			fn()
			l.Leave()
			return nil
		}}
		w.subs[int32(fd)] = s
	}
	if s.pending {
		return nil
	}
	ev := &unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: int32(fd)}
	op := unix.EPOLL_CTL_MOD
	if !s.added {
		op = unix.EPOLL_CTL_ADD
	}
	if err := unix.EpollCtl(w.epfd, op, fd, ev); err != nil {
		return fmt.Errorf("watch fd %d for writability: %w", fd, err)
	}
	s.added, s.pending = true, true
	return nil
}

// unwatch forgets fd; call it before the fd is closed (gnet's OnClose runs before close).
func (w *Watcher) unwatch(fd int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.subs[int32(fd)]; s != nil {
		if s.added {
			_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		}
		delete(w.subs, int32(fd))
	}
}

// Run hands wake-ups to the loops until Stop.
func (w *Watcher) Run() {
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return // closed
		}
		w.mu.Lock()
		for i := 0; i < n; i++ {
			if events[i].Fd == -1 {
				w.mu.Unlock()
				return
			}
			s := w.subs[events[i].Fd]
			if s == nil || !s.pending {
				continue
			}
			s.pending = false
			_ = s.l.EL.Execute(context.Background(), s.task)
		}
		w.mu.Unlock()
	}
}

// Stop wakes the watcher goroutine with the stop marker: an eventfd, always
// writable, registered with Fd -1. Closing the epoll fd would not wake EpollWait.
func (w *Watcher) Stop() {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return
	}
	w.stopFD = efd
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: -1})
}

// Release closes the watcher's fds; call it after Run has returned.
func (w *Watcher) Release() {
	_ = unix.Close(w.epfd)
	if w.stopFD > 0 {
		_ = unix.Close(w.stopFD)
	}
}
