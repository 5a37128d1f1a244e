package http1

import (
	"github.com/panjf2000/gnet/v2"

	"gozer/gateway/exchange"
	"gozer/gateway/loop"
	"gozer/gateway/peers"
	"gozer/gateway/tlsconn"
)

// Loop is one event loop's HTTP/1.1 client connections: the list a drain walks,
// their timers, their recycled streams and the response bytes pending in the
// callback. Loop goroutine only.
type Loop struct {
	l       *loop.Loop
	ex      *exchange.Loop
	conns   loop.SlotList[*Conn]
	wheel   *loop.Wheel[*Conn]
	streams *loop.Recycler[stream]
	pending []byte // the response bytes a stream has not written yet (aliases l.Buf)
	// pendingOf is the stream pending is of (nil: none), whose bytes out
	// count it already: a head it replaces unsent is taken back (WriteHead).
	pendingOf *stream
	h2c       func(gnet.Conn, *peers.Peer)
	// partial holds the heads that did not arrive in one read, heads the
	// loop's free buffers for them (partial.go).
	partial map[*Conn][]byte
	heads   loop.BufPool
	// pipelined counts the pipelined requests begun in this outermost
	// callback; waiting holds the connections waiting for their turn
	// (pipeline.go).
	pipelined int
	waiting   map[*Conn]struct{}
	// corks gathers the answers of connections with pipelined requests
	// until the callback's end (cork.go); corkFree keeps emptied buffers.
	corks     map[*Conn][]byte
	corkFree  [][]byte
	uncorkAll uncorker
}

// NewLoop returns l's HTTP/1.1 connections, whose requests go to ex; their
// timers run on l's tick and their drain on l's drain.
func NewLoop(l *loop.Loop, ex *exchange.Loop) *Loop {
	lp := &Loop{l: l, ex: ex, heads: loop.NewBufPool(headBufSize, 64)}
	lp.wheel = loop.NewConnWheel(l, func(c *Conn) int64 { return c.deadline }, (*Conn).onTimer)
	lp.streams = loop.NewRecycler(l, func(st *stream) { *st = stream{} })
	l.OnDrain(lp.drain)
	lp.uncorkAll = uncorker{lp}
	l.OnCallbackEnd(func() { lp.pipelined = 0 })
	return lp
}

// Conns is the number of HTTP/1.1 client connections open on this loop.
func (lp *Loop) Conns() int { return lp.conns.Len() }

// Accept makes gc, a connection accepted on (or handed to) this loop, an HTTP/1.1
// client. Call it in OnOpen.
func (lp *Loop) Accept(gc gnet.Conn) {
	lp.l.Accepted(gc)
	c := &Conn{lp: lp, c: gc, fd: int32(gc.Fd()), slot: -1}
	c.timer.Init()
	c.setRemote(gc.RemoteAddr())
	c.peer, _ = gc.Context().(*peers.Peer) // counted at accept (server.Server.admit)
	gc.SetContext(c)
	lp.conns.Add(c)
	c.awaitRequest(true)
	if _, tls := gc.(*tlsconn.Conn); !tls && lp.l.Snapshot().Config.Listeners.Proxy.ProxyProtocol {
		c.state = stProxyHeader // within the same header timeout (the plain listener's setting)
	}
	if lp.l.Shared.Draining.Load() {
		c.drainClose.set()
	}
}

// newStream takes a stream for the next request of c, with its exchange.
func (lp *Loop) newStream(c *Conn) *stream {
	st := lp.streams.Get()
	if st == nil {
		st = &stream{}
	}
	st.c = c
	addr := c.addr.Addr()
	st.client = exchange.Client{Remote: c.remote, Addr: addr, IP: addr.AppendTo(st.ipText[:0]), Scheme: "http", Peer: c.peer}
	if tc, ok := c.c.(*tlsconn.Conn); ok {
		st.client.Scheme, st.client.TLS = "https", tc.Info()
	}
	st.ex = lp.ex.Begin(st)
	return st
}

// freeStream retires st; it is recycled when the callback ends (a caller up
// the stack may still compare it with its connection's current stream).
func (lp *Loop) freeStream(st *stream) {
	if st != nil {
		if lp.pendingOf == st {
			lp.pending, lp.pendingOf = nil, nil
		}
		lp.streams.Retire(st)
	}
}

// drain starts the graceful shutdown on this loop: idle keep-alive connections
// close now; busy ones close once their current response is out.
func (lp *Loop) drain(_, _ int64) {
	lp.conns.EachBackwards(func(c *Conn) {
		c.drainClose.set()
		if c.state == stHead && c.headStart == 0 && c.c.InboundBuffered() == 0 {
			c.close()
		}
	})
}
