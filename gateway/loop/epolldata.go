//go:build !poll_opt

package loop

import (
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// PollOpt reports whether gnet was built with its poll_opt poller (see
// epolldata_opt.go); this build has gnet's default poller.
const PollOpt = false

// epollEvent is the epoll event for c's fd with events ev, its data what gnet's
// default poller registered: the fd, by which its reactor finds the connection.
func epollEvent(c gnet.Conn, ev uint32) (*unix.EpollEvent, error) {
	return &unix.EpollEvent{Events: ev, Fd: int32(c.Fd())}, nil
}
