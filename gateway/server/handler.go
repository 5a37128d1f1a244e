package server

import (
	"net"
	"sync"

	"github.com/panjf2000/gnet/v2"
)

// handler receives gnet's events and dispatches them to the client or upstream
// behind each connection (its gnet context). Every method runs on the event loop
// that owns the connection.
type handler struct {
	gnet.BuiltinEventEngine
	srv   *Server
	loops sync.Map // gnet.EventLoop → *loop
}

// loopOf returns the state of the loop that owns c, creating it the first time the
// loop is seen (on that loop's goroutine, so no other goroutine uses it yet).
func (h *handler) loopOf(c gnet.Conn) *loop {
	el := c.EventLoop()
	if l, ok := h.loops.Load(el); ok {
		return l.(*loop)
	}
	epfd, err := loopEpollFD(c)
	if err != nil {
		h.srv.log.Error().Err(err).Msg("backpressure disabled: cannot pause reads")
		epfd = -1
	}
	l := newLoop(h.srv, el, epfd)
	h.loops.Store(el, l)
	h.srv.loopsMu.Lock()
	h.srv.loops = append(h.srv.loops, l)
	h.srv.loopsMu.Unlock()
	return l
}

// OnOpen fires for accepted client connections and for origin connections
// (whose gnet context is their *upstream, set when they were enrolled).
func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if u, ok := c.Context().(*upstream); ok {
		u.l.clock()
		u.onOpen(c)
		u.l.reap()
		return nil, gnet.None
	}
	l := h.loopOf(c)
	if err := compactAddrs(c, &l.localAddr); err != nil && !l.addrWarned {
		l.addrWarned = true
		h.srv.log.Warn().Err(err).Msg("connections keep gnet's addresses (about 130 bytes more each)")
	}
	cl := &client{l: l, c: c, fd: c.Fd()}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		cl.remote = a.String()
		cl.ip = []byte(a.IP.String())
	} else {
		cl.remote = c.RemoteAddr().String()
		cl.ip = []byte(cl.remote)
	}
	c.SetContext(cl)
	l.addClient(cl)
	cl.awaitRequest(l.clock(), true)
	if h.srv.draining.Load() {
		cl.drainClose = true
	}
	return nil, gnet.None
}

// OnTraffic fires when a connection has bytes to read.
func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	switch x := c.Context().(type) {
	case *client:
		x.l.clock()
		x.onData()
		x.l.reap()
	case *upstream:
		x.l.clock()
		x.onData()
		x.l.reap()
	case *pushConn:
		x.l.clock()
		x.onData()
		x.l.reap()
	}
	return gnet.None
}

// OnClose fires once per connection, before its fd is closed.
func (h *handler) OnClose(c gnet.Conn, err error) gnet.Action {
	switch x := c.Context().(type) {
	case *client:
		x.l.clock()
		x.onClose(err)
		x.l.reap()
		h.srv.clients.Add(-1)
		h.srv.closed.Add(1)
	case *upstream:
		x.l.clock()
		x.onClose(err)
		x.l.reap()
	case *pushConn:
		x.l.clock()
		x.onClose(err)
		x.l.reap()
		h.srv.clients.Add(-1)
		h.srv.closed.Add(1)
	}
	return gnet.None
}
