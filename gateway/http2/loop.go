package http2

import (
	"context"
	"net"
	"net/netip"

	"github.com/panjf2000/gnet/v2"

	"gozer/gateway/exchange"
	"gozer/gateway/httpcodec"
	"gozer/gateway/loop"
	"gozer/gateway/peers"
	"gozer/gateway/tlsconn"
)

// Loop is one event loop's HTTP/2 connections: the list a drain walks, their
// timers and their recycled streams. Loop goroutine only.
type Loop struct {
	l       *loop.Loop
	ex      *exchange.Loop
	conns   loop.SlotList[*Conn]
	wheel   *loop.Wheel[*Conn]
	streams *loop.Recycler[stream]

	// The connections whose frames wait for the end of the loop's batch of
	// events (flushSoon), and whether flushBatch is queued for it.
	batch       []*Conn
	batchQueued bool
	batchTask   gnet.RunnableFunc // flushBatch, made once

	parts loop.BufPool // buffers for partial frames (partial.go)
}

// NewLoop returns l's HTTP/2 connections, whose streams go to ex; their
// timers run on l's tick and their drain on l's drain.
func NewLoop(l *loop.Loop, ex *exchange.Loop) *Loop {
	lp := &Loop{l: l, ex: ex, parts: loop.NewBufPool(partBufSize, 64)}
	lp.wheel = loop.NewConnWheel(l, func(c *Conn) int64 { return c.deadline }, (*Conn).onTimer)
	lp.streams = loop.NewRecycler(l, func(st *stream) {
		*st = stream{body: trim(st.body[:0]), pend: trim(st.pend[:0]), trailer: httpcodec.KeepTrailerBuffer(st.trailer), respTrailer: httpcodec.KeepTrailerBuffer(st.respTrailer)}
	})
	l.OnDrain(lp.drain)
	lp.batchTask = func(context.Context) error { lp.flushBatch(); return nil }
	return lp
}

// queueFlush adds c to the connections flushed at the end of this batch of
// events. gnet has no hook there: a task given to its loop (Execute) runs
// after the callbacks of the events epoll_wait returned with it, at the cost
// of one eventfd write per batch, which is what makes several responses of a
// connection leave in one write (one syscall, one TLS record) instead of one
// each. A loop that is shutting down takes no task: flushed now.
func (lp *Loop) queueFlush(c *Conn) {
	lp.batch = append(lp.batch, c)
	if lp.batchQueued {
		return
	}
	lp.batchQueued = true
	if err := lp.l.EL.Execute(context.Background(), lp.batchTask); err != nil {
		lp.flushBatch()
	}
}

// flushBatch flushes the connections queueFlush gathered, as a callback.
func (lp *Loop) flushBatch() {
	lp.l.Enter()
	lp.batchQueued = false
	// A flush that fails closes its connection, whose streams' ends may
	// queue more: the list is read to its end as it grows.
	for i := 0; i < len(lp.batch); i++ {
		c := lp.batch[i]
		lp.batch[i] = nil
		c.flushing = false
		c.flush()
	}
	lp.batch = lp.batch[:0]
	lp.l.Leave()
}

// trim drops a buffer that grew past what a recycled stream keeps.
func trim(b []byte) []byte {
	if cap(b) > 64<<10 {
		return nil
	}
	return b
}

// Conns is the number of HTTP/2 connections open on this loop.
func (lp *Loop) Conns() int { return lp.conns.Len() }

// Accept makes gc an HTTP/2 connection: a TLS connection whose ALPN chose h2,
// or a plain one gateway/http1 handed over after seeing the preface (still
// in gc's buffer). peer is the client's count (nil: not counted). The
// connection counts in Shared.Clients already.
func (lp *Loop) Accept(gc gnet.Conn, peer *peers.Peer) {
	c := &Conn{lp: lp, c: gc, fd: int32(gc.Fd()), slot: -1, peer: peer}
	c.timer.Init()
	c.setRemote(gc.RemoteAddr())
	c.scheme = "http"
	if tc, ok := gc.(*tlsconn.Conn); ok {
		c.scheme, c.tls = "https", tc.Info()
	}
	gc.SetContext(c)
	lp.conns.Add(c)
	lp.l.Shared.H2.Conns.Add(1)
	c.start()
	if gc.InboundBuffered() > 0 {
		c.OnData()
	}
}

// newStream takes a stream for request id of c, with its exchange.
func (lp *Loop) newStream(c *Conn, id uint32) *stream {
	st := lp.streams.Get()
	if st == nil {
		st = &stream{}
	}
	st.c, st.id = c, id
	st.declared = -1
	st.sendWindow = int64(c.peerWindow)
	st.recvWindow = int64(c.set.window)
	addr := c.addr.Addr()
	st.client = exchange.Client{Remote: c.remote, Addr: addr, IP: addr.AppendTo(st.ipText[:0]), Scheme: c.scheme,
		TLS: c.tls, Peer: c.peer, Proto: "HTTP/2.0"}
	return st
}

// freeStream retires st; it is recycled when the callback ends.
func (lp *Loop) freeStream(st *stream) { lp.streams.Retire(st) }

// drain starts the graceful shutdown on this loop: every connection gets
// GOAWAY NO_ERROR and closes once its streams are done.
func (lp *Loop) drain(_, _ int64) {
	lp.conns.EachBackwards(func(c *Conn) { c.goAway() })
}

// setRemote records the client's address.
func (c *Conn) setRemote(a net.Addr) {
	if ta, ok := a.(*net.TCPAddr); ok {
		c.addr = netip.AddrPortFrom(loop.AddrOf(ta), uint16(ta.Port))
		c.remote = c.addr.String()
		return
	}
	if a != nil {
		c.remote = a.String()
		if ap, err := netip.ParseAddrPort(c.remote); err == nil {
			c.addr = ap
		}
	}
}
