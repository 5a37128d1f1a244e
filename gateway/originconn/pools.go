package originconn

import (
	"errors"
	"fmt"
	"math"

	"gozer/gateway/loop"
	"gozer/gateway/origin"
)

// Loop is one event loop's origin connections: a pool per server of every
// origin (idle connections ready for reuse, and the count of open ones) and
// the wheel that times their reads. Loop goroutine only.
type Loop struct {
	l     *loop.Loop
	table *origin.Table
	state *origin.LoopState[*Conn]
	wheel *loop.Wheel[*Conn]
}

// NewLoop returns l's origin connections for the origins of table, and hooks
// their timers and idle eviction into l's tick.
func NewLoop(l *loop.Loop, table *origin.Table) *Loop {
	lp := &Loop{l: l, table: table, state: origin.NewLoopState[*Conn](table)}
	lp.wheel = loop.NewConnWheel(l, func(c *Conn) int64 { return c.deadline }, (*Conn).onTimer)
	l.OnTick(lp.evict)
	return lp
}

// evict closes the pooled connections idle for their origin's idle_timeout,
// after moving to the origins a reload swapped in, if any: the loop finds
// out at its next tick, and until then a request of the new table makes
// pools as it needs them.
func (lp *Loop) evict(now int64) {
	if cur := lp.l.Snapshot().Origins; cur != lp.table {
		lp.state.Adopt(lp.table, cur, (*Conn).close)
		lp.table = cur
	}
	lp.state.EvictIdle(lp.table, now, (*Conn).close)
}

// PoolCount is one server's connections from one loop.
type PoolCount struct {
	Origin, Server string
	Open, Idle     int // open (busy, idle and dialling); idle in the pool
}

// Pools returns this loop's connections per server of every origin (for
// GET /metrics). Loop goroutine.
func (lp *Loop) Pools() []PoolCount {
	var out []PoolCount
	lp.state.EachPool(lp.table, func(o *origin.Origin, srv *origin.Server, p *origin.Pool[*Conn]) {
		out = append(out, PoolCount{Origin: o.Name, Server: srv.Addr, Open: p.Open(), Idle: p.Idle()})
	})
	return out
}

// Limit errors of Acquire: the request gets a 503 naming the limit.
var (
	ErrLoopLimit  = errors.New("max_connections_per_server")
	ErrTotalLimit = errors.New("max_connections_per_server_total")
)

// PickServer chooses the server of an attempt at o (tried: the servers this
// request tried already) and reports whether the balancer picked it (then
// AttemptDone must follow), as opposed to the plain round robin used when the
// balancer has no available server.
func (lp *Loop) PickServer(o *origin.Origin, tried uint64) (srv *origin.Server, balanced bool) {
	if o.Iso != nil {
		srv = o.Iso.Pick(tried, lp.l.Rand.Uint32(), lp.l.Now())
	}
	if srv != nil {
		return srv, true
	}
	return lp.state.Next(o, tried), false
}

// Acquire returns a connection to srv for owner, whose request started at
// started: an idle one from the pool (ready: reused is true, send at once) or
// a new one being dialled (OriginOpen or OriginDialFailed follows). It fails
// with a wrapped ErrLoopLimit or ErrTotalLimit when srv has too many
// connections open.
func (lp *Loop) Acquire(o *origin.Origin, srv *origin.Server, owner Owner, started int64) (c *Conn, reused bool, err error) {
	pool, stale := lp.state.PoolOf(o, srv)
	if stale != nil {
		// The slot now belongs to another server: its old pool takes no more
		// connections (busy ones close when released) and its idle ones close now.
		stale.Retire()
		stale.EvictIdle(math.MaxInt64, (*Conn).close)
	}
	if c, ok := pool.Get(); ok {
		c.origin = o // a reload may have rebuilt o since c was opened: its settings apply now
		c.bind(owner, started)
		c.reused = true
		return c, true, nil
	}
	if !pool.Reserve() {
		return nil, false, fmt.Errorf("origin %s server %s: %d connections open from this loop (%w)", o.Name, srv.Addr, pool.Open(), ErrLoopLimit)
	}
	if !srv.ReserveConn(o.MaxConnsTotal) {
		pool.Release()
		return nil, false, fmt.Errorf("origin %s server %s: %d connections open (%w)", o.Name, srv.Addr, srv.Conns(), ErrTotalLimit)
	}
	c = &Conn{lp: lp, origin: o, server: srv, pool: pool, fd: -1}
	c.timer.Init()
	c.bind(owner, started)
	c.dial()
	return c, false, nil
}
