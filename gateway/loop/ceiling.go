package loop

import (
	"errors"
	"sync/atomic"
	"syscall"
)

// Open-file ceilings (Shared.FDCeiling, Shared.AdminFDCeiling). Linux hands
// out the lowest free descriptor number, so a socket whose number reaches a
// ceiling means at least that many are in use: the sockets that keep under
// one (origin dials, the admin listener's connections, the push API's
// forwards) check their own number, and give way at it.

// ErrOpenFiles fails a socket whose descriptor reached its open-file
// ceiling: with accept_on_loops the descriptors above it are the loops'
// accept4's, and an accept4 that meets EMFILE stops every loop
// (server/accept.go), so the socket gives way instead.
var ErrOpenFiles = errors.New("too close to the open-file limit")

// AtCeiling returns rc's descriptor number and whether it reaches ceiling
// (never with a ceiling of 0 or less, or when the number cannot be read).
func AtCeiling(rc syscall.RawConn, ceiling int) (fd int, at bool) {
	fd = -1
	if ceiling <= 0 || rc.Control(func(d uintptr) { fd = int(d) }) != nil {
		return fd, false
	}
	return fd, fd >= ceiling
}

// DialCeiling is a net.Dialer Control that refuses a socket at ceiling
// (ErrOpenFiles, counted in refused). It runs right after socket(), before
// connect, so a refused socket (Go closes it) never sits out a connect
// timeout holding its descriptor. A ceiling of 0 checks nothing (nil).
func DialCeiling(ceiling int, refused *atomic.Int64) func(string, string, syscall.RawConn) error {
	if ceiling <= 0 {
		return nil
	}
	return func(_, _ string, rc syscall.RawConn) error {
		if _, at := AtCeiling(rc, ceiling); at {
			refused.Add(1)
			return ErrOpenFiles
		}
		return nil
	}
}
