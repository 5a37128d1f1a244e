package server

import (
	"sync"

	"github.com/panjf2000/gnet/v2"

	"gozer/filters"
	"gozer/gateway/exchange"
	"gozer/gateway/http1"
	"gozer/gateway/http2"
	"gozer/gateway/loop"
	"gozer/gateway/originconn"
	"gozer/gateway/pushconn"
	"gozer/gateway/tlsconn"
	"gozer/gateway/tunnel"
)

// conn is what every connection kind's connection is, as gnet's context: the
// dispatcher gives it gnet's events on its loop.
type conn interface {
	Loop() *loop.Loop
	OnData()
	OnClose(err error)
}

// Every connection kind is dispatched alike.
var (
	_ conn = (*http1.Conn)(nil)
	_ conn = (*http2.Conn)(nil)
	_ conn = (*pushconn.Conn)(nil)
	_ conn = (*originconn.Conn)(nil)
	_ conn = (*tunnel.Tunnel)(nil)
	_ conn = (*tlsconn.Conn)(nil) // in front of its kind
	_ conn = (*loop.Waker)(nil)   // a loop's own, for its turns
)

// rooms are one event loop's state and the connection kinds' sides of it.
type rooms struct {
	l       *loop.Loop
	http    *http1.Loop
	h2      *http2.Loop
	origins *originconn.Loop
}

// handler receives gnet's events and dispatches them to the connection behind
// each gnet connection (its context). Every method runs on the event loop that
// owns the connection.
type handler struct {
	gnet.BuiltinEventEngine
	srv   *Server
	loops sync.Map // gnet.EventLoop → *rooms
}

// roomsOf returns the rooms of the loop that owns c, building them the first
// time the loop is seen (on that loop's goroutine, so no other goroutine uses
// them yet).
func (h *handler) roomsOf(c gnet.Conn) *rooms {
	el := c.EventLoop()
	if r, ok := h.loops.Load(el); ok {
		return r.(*rooms)
	}
	s := h.srv
	epfd, err := loop.EpollFD(c)
	if err != nil {
		s.log.Error().Err(err).Msg("backpressure disabled: cannot pause reads")
		epfd = -1
	}
	l := loop.New(el, epfd, s.shared)
	var chains func() filters.Chain
	if s.filters != nil {
		lr := s.filters.NewLoop()
		chains = func() filters.Chain {
			if c := lr.Chain(); c.Len() > 0 {
				return c
			}
			return nil // no filters loaded: skip the chain entirely
		}
	}
	origins := originconn.NewLoop(l, l.Snapshot().Origins)
	ex := exchange.NewLoop(exchange.Config{
		Loop:    l,
		Origins: origins,
		Push:    pushconn.NewLoop(l, s.hub),
		Tunnels: tunnel.NewLoop(l),
		Chains:  chains,
		Counts:  s.counts,
		Metrics: s.shared.Metrics,
	})
	r := &rooms{l: l, http: http1.NewLoop(l, ex), h2: http2.NewLoop(l, ex), origins: origins}
	r.http.SetH2C(r.h2.Accept)
	h.loops.Store(el, r)
	s.loopsMu.Lock()
	s.loops = append(s.loops, l)
	s.rooms = append(s.rooms, r)
	s.loopsMu.Unlock()
	return r
}

// OnOpen fires for accepted client connections (handed over by an acceptor
// with their enroll context, or accepted by the loop with none), for a loop's
// waker (loop.Turn) and for origin connections
// (whose gnet context is their *originconn.Conn, set when they were enrolled,
// or the *tlsconn.Conn that carries it over TLS).
func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if w, ok := c.Context().(*loop.Waker); ok {
		w.OnOpen(c) // a loop's own socket pair (loop.Turn)
		return nil, gnet.None
	}
	if oc, ok := c.Context().(*originconn.Conn); ok {
		l := oc.Loop()
		l.Enter()
		oc.OnOpen(c)
		l.Leave()
		return nil, gnet.None
	}
	if tc, ok := c.Context().(*tlsconn.Conn); ok && tc.Dialed() {
		// An origin connection over TLS, its handshake done by the dialler.
		oc := tc.Kind().(*originconn.Conn)
		l := oc.Loop()
		l.Enter()
		tc.Adopt(c, l)
		oc.OnOpen(tc)
		l.Leave()
		return nil, gnet.None
	}
	if h.srv.loopEng != nil && c.Context() == nil {
		// A client a loop accepted (server.accept_on_loops): admitted here,
		// as the acceptor admits one before it hands it over.
		ctx, answer, ok := h.srv.acceptedOnLoop(c)
		if !ok {
			return answer, gnet.Close // gnet writes the answer, then closes
		}
		c.SetContext(ctx)
	}
	r := h.roomsOf(c)
	r.l.Enter()
	if ts, ok := c.Context().(*tlsStart); ok {
		// An HTTPS client: HTTP/2 or HTTP/1.1, as its ALPN chose, once its
		// handshake is done.
		tlsconn.New(c, r.l, h.srv.tls, ts.peer, func(tc *tlsconn.Conn) {
			if tc.Info().ALPN == "h2" {
				r.l.Accepted(tc)
				r.h2.Accept(tc, ts.peer)
				return
			}
			r.http.Accept(tc)
		})
	} else {
		r.http.Accept(c)
	}
	r.l.Leave()
	return nil, gnet.None
}

// OnTraffic fires when a connection has bytes to read.
func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	if k, ok := c.Context().(conn); ok {
		l := k.Loop()
		l.Enter()
		k.OnData()
		l.Leave()
	}
	return gnet.None
}

// OnClose fires once per connection, before its fd is closed.
func (h *handler) OnClose(c gnet.Conn, err error) gnet.Action {
	if k, ok := c.Context().(conn); ok {
		l := k.Loop()
		l.Enter()
		k.OnClose(err)
		l.Leave()
	}
	return gnet.None
}
