package server

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
//
// gnet v2.10 has no API to stop reading a connection, so pauseReads/resumeReads change
// the connection's interest set in its loop's epoll instance directly. The epoll fd is
// found once per loop by reflection (loopEpollFD); TestLoopEpollFD fails if a gnet
// upgrade moves it. gnet itself re-enables reading after it flushes a connection's
// pending writes; the handler then notices the data of a paused connection and pauses
// it again, so at most one read (64 KiB) slips through per flush.
//
// Knowing when a peer drained needs a writability event that gnet keeps to itself,
// so a drainWatcher owns a second epoll instance: a connection waiting for its peer
// to drain is added there with EPOLLOUT|EPOLLONESHOT, and the watcher goroutine hands
// the wake-up to the connection's own loop.

// loopEpollFD digs the epoll fd out of gnet's loop behind c.
func loopEpollFD(c gnet.Conn) (fd int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("find event loop's epoll fd: gnet internals changed: %v", r)
		}
	}()
	v := reflect.ValueOf(c).Elem().FieldByName("loop").Elem().FieldByName("poller").Elem().FieldByName("fd")
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

// drainWatcher tells a loop when a connection's socket can take more bytes.
// watch and unwatch are called on event loops; run is the watcher's goroutine.
type drainWatcher struct {
	epfd   int
	stopFD int
	mu     sync.Mutex
	subs   map[int32]*drainSub // by fd
}

// drainSub is one connection waiting for writability. onDrain runs on el's goroutine.
type drainSub struct {
	el      gnet.EventLoop
	added   bool // fd is in the watcher's epoll set
	task    gnet.RunnableFunc
	pending bool
}

func newDrainWatcher() (*drainWatcher, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create drain watcher epoll: %w", err)
	}
	return &drainWatcher{epfd: fd, subs: make(map[int32]*drainSub)}, nil
}

// watch arms a one-shot writability wake-up for fd; onDrain runs on el when it fires.
// Called on el's goroutine.
func (w *drainWatcher) watch(fd int, el gnet.EventLoop, onDrain func()) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.subs[int32(fd)]
	if s == nil {
		// One task per watched connection, made once: a connection always asks for
		// the same wake-up (its onDrained), however often it waits.
		s = &drainSub{el: el, task: func(context.Context) error { onDrain(); return nil }}
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
		return fmt.Errorf("watch fd %d for drain: %w", fd, err)
	}
	s.added, s.pending = true, true
	return nil
}

// unwatch forgets fd; call it before the fd is closed (gnet's OnClose runs before close).
func (w *drainWatcher) unwatch(fd int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.subs[int32(fd)]; s != nil {
		if s.added {
			_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		}
		delete(w.subs, int32(fd))
	}
}

func (w *drainWatcher) run() {
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
			_ = s.el.Execute(context.Background(), s.task)
		}
		w.mu.Unlock()
	}
}

// stop wakes the watcher goroutine with the stop marker: an eventfd, always
// writable, registered with Fd -1. Closing the epoll fd would not wake EpollWait.
func (w *drainWatcher) stop() {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return
	}
	w.stopFD = efd
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: -1})
}

// release closes the watcher's fds; call it after run has returned.
func (w *drainWatcher) release() {
	_ = unix.Close(w.epfd)
	if w.stopFD > 0 {
		_ = unix.Close(w.stopFD)
	}
}
