//go:build poll_opt

package loop

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// PollOpt reports whether gnet was built with its poll_opt poller. The Makefile
// and the bench scripts build with it (-tags=poll_opt): the poller calls a
// connection straight from the epoll event's data, a pointer to the connection's
// netpoll.PollAttachment, instead of looking its fd up in a map, and makes its
// non-blocking epoll_wait without telling the Go scheduler (RawSyscall). Measured:
// ~1.5 % less CPU per relayed websocket message (bench/README.md, "Websocket
// proxying").
const PollOpt = true

// epollEvent is the epoll event for c's fd with events ev, its data what gnet's
// poll_opt poller registered: the address of the connection's pollAttachment
// field (the conn is heap-allocated and Go's heap does not move, so the address
// the kernel keeps stays valid while gnet holds the conn). Any other data would
// have the poller follow a bad pointer, so a gnet upgrade that renames or moves
// the field fails here (TestLoopEpollFD) rather than crashing the loop.
func epollEvent(c gnet.Conn, ev uint32) (e *unix.EpollEvent, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("find connection's poll attachment: gnet internals changed: %v", r)
		}
	}()
	v := reflect.ValueOf(Raw(c)).Elem().FieldByName("pollAttachment")
	if !v.IsValid() || !v.CanAddr() || v.Type().Name() != "PollAttachment" {
		return nil, errors.New("find connection's poll attachment: gnet internals changed")
	}
	p := uint64(v.Addr().Pointer())
	// unix.EpollEvent on Linux: Events, then the 8-byte data as Fd (low half) and
	// Pad (high half), which is where gnet's own epollevent keeps the pointer.
	return &unix.EpollEvent{Events: ev, Fd: int32(uint32(p)), Pad: int32(uint32(p >> 32))}, nil
}
