package loop

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Accepting on the loops (server.accept_on_loops) lets gnet own the listening
// sockets: with SO_REUSEPORT every loop binds its own socket on each address
// and accepts on its own goroutine. gnet v2.10 can close its listeners only
// with the whole engine (which closes every connection too), and a listener
// that stops listening under a loop kills it: the loop's accept4 gets EINVAL,
// which gnet treats as fatal. Drain needs the listeners to go while the
// connections stay, so Gozer takes each listening socket out of its loop's
// epoll instance on that loop's goroutine (the loop cannot be between an event
// of the socket and its accept then) and shuts it down: the kernel refuses new
// connections (RST, ECONNREFUSED for the client), as when Go's listener
// closed. The descriptors stay open until the engine stops, when gnet closes
// them; nothing closes them twice.
//
// This reads gnet's unexported fields, as EpollFD does; TestLoopListeners
// guards it against a gnet upgrade.

// Listening is one gnet loop and the listening sockets it accepts on.
type Listening struct {
	EL      gnet.EventLoop
	epfd    int
	fds     []int
	stopped bool // Stop ran: its sockets are out of epoll and shut down
}

// ListeningOf lists the loops of a gnet engine started with listeners
// (gnet.Run or gnet.Rotate) and the listening sockets of each. Call it once
// the engine runs (after OnBoot); any goroutine: it only reads what gnet set
// before the loops started.
func ListeningOf(e gnet.Engine) (out []Listening, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("find the loops' listeners: gnet internals changed: %v", r)
		}
	}()
	eng := reflect.ValueOf(e).FieldByName("eng")
	if !eng.IsValid() || eng.IsNil() {
		return nil, errors.New("find the loops' listeners: no engine")
	}
	lb := eng.Elem().FieldByName("eventLoops")
	if !lb.IsValid() || lb.IsNil() {
		return nil, errors.New("find the loops' listeners: gnet internals changed")
	}
	els := lb.Elem().Elem().FieldByName("eventLoops") // the balancer's []*eventloop
	for i := range els.Len() {
		p := els.Index(i)
		// The loop's pointer, made usable as the gnet.EventLoop it is.
		el, ok := reflect.NewAt(p.Type().Elem(), unsafe.Pointer(p.Pointer())).Interface().(gnet.EventLoop)
		if !ok {
			return nil, errors.New("find the loops' listeners: a loop is not a gnet.EventLoop")
		}
		s := p.Elem()
		ln := Listening{EL: el, epfd: int(s.FieldByName("poller").Elem().FieldByName("fd").Int())}
		for _, k := range s.FieldByName("listeners").MapKeys() {
			ln.fds = append(ln.fds, int(k.Int()))
		}
		out = append(out, ln)
	}
	return out, nil
}

// FDs are the listening sockets of the loop.
func (ln *Listening) FDs() []int { return ln.fds }

// Stop stops the loop's listening sockets: out of its epoll instance, then
// shut down (new connections are refused; those in the accept queue are
// reset). It must run on the loop's own goroutine (through EL.Execute). A
// second Stop does nothing.
func (ln *Listening) Stop() error {
	if ln.stopped {
		return nil
	}
	ln.stopped = true
	var errs []error
	for _, fd := range ln.fds {
		if err := unix.EpollCtl(ln.epfd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
			// Still polled, or (ENOENT) not the socket this loop polls: the
			// number may name another descriptor now. Shut down only what
			// was taken out here.
			errs = append(errs, fmt.Errorf("remove listener %d from its loop: %w", fd, err))
			continue
		}
		if err := unix.Shutdown(fd, unix.SHUT_RD); err != nil && err != unix.ENOTCONN {
			errs = append(errs, fmt.Errorf("shut listener %d down: %w", fd, err))
		}
	}
	return errors.Join(errs...)
}

// StopListening stops every loop's listening sockets in lns, each on its own
// loop's goroutine (Stop's contract), and waits for them until ctx ends: a
// loop stuck in a callback must not hold the caller (drain) past its
// deadline. onErr hears each loop's failure (from that loop's goroutine). It
// reports whether every loop stopped in time.
func StopListening(ctx context.Context, lns []Listening, onErr func(error)) bool {
	var wg sync.WaitGroup
	for i := range lns {
		ln := &lns[i]
		wg.Add(1)
		err := ln.EL.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			defer wg.Done()
			if err := ln.Stop(); err != nil {
				onErr(err)
			}
			return nil
		}))
		if err != nil {
			wg.Done()
			onErr(fmt.Errorf("stop a loop's listeners: %w", err))
		}
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
		return true
	case <-ctx.Done():
		return false
	}
}
