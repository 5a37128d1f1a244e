package exchange

import (
	"gozer/filters"
	"gozer/gateway/compress"
	"gozer/gateway/loop"
	"gozer/gateway/origin"
	"gozer/gateway/originconn"
	"gozer/gateway/pushconn"
	"gozer/gateway/telemetry"
	"gozer/gateway/tracectx"
	"gozer/gateway/tunnel"
)

// OriginConn is an exchange's connection to an origin server: an
// *originconn.Conn, or a fake in tests. Loop goroutine.
type OriginConn interface {
	Server() *origin.Server
	Closed() bool
	GotBytes() bool
	Reused() bool
	Peek() []byte
	Discard(n int)
	InboundBuffered() int
	OutboundBuffered() int
	Write(b []byte) bool
	Writev(bs [][]byte) bool
	ArmRead()
	Disarm()
	Pause()
	Paused() bool
	Resume()
	WatchWritable() error
	Release()
	Abort()
}

// Origins opens origin connections for the exchanges of one loop
// (originconn.Loop; a fake in tests).
type Origins interface {
	// PickServer chooses the server of an attempt; balanced: the balancer
	// picked it (its AttemptDone must follow).
	PickServer(o *origin.Origin, tried uint64) (srv *origin.Server, balanced bool)
	// Acquire returns a connection to srv for owner: pooled (reused: send at
	// once) or dialling (OriginOpen or OriginDialFailed follows).
	Acquire(o *origin.Origin, srv *origin.Server, owner originconn.Owner, started int64) (c OriginConn, reused bool, err error)
}

// originLoop adapts originconn.Loop to Origins.
type originLoop struct{ *originconn.Loop }

func (o originLoop) Acquire(og *origin.Origin, srv *origin.Server, owner originconn.Owner, started int64) (OriginConn, bool, error) {
	c, reused, err := o.Loop.Acquire(og, srv, owner, started)
	if err != nil {
		return nil, false, err
	}
	return c, reused, nil
}

// Loop is the exchanges' side of one event loop: what they need of it, and the
// recycled exchanges. Loop goroutine only.
type Loop struct {
	l       *loop.Loop
	origins Origins
	push    *pushconn.Loop
	tunnels *tunnel.Loop         // websocket tunnels (nil: not proxied)
	chains  func() filters.Chain // the current filter chain (nil: no filters)
	counts  *telemetry.CauseCounters
	// metrics is this loop's shard of the request metrics (nil: metrics off).
	metrics *telemetry.LoopMetrics

	pool    *loop.Recycler[Exchange] // recycled exchanges: their buffers stay warm
	errBody []byte
	// parked counts, per server, the origin connections of this loop paused
	// behind slow clients (Exchange.park).
	parked map[*origin.Server]int
	// pools are the loop's response encoders, by compression level.
	pools map[int]*compress.Pool
	// calls are recycled side calls (sidecall.go).
	calls []*sideCall
	// clock is l.Now, bound once: the filters' Context.Clock.
	clock func() int64
	// ids makes the loop's trace and span ids (trace.go).
	ids *tracectx.IDSource
	// gather holds the small pieces of a chunked request body one pump
	// sends as one chunk (request.go, gatherPiece); empty between pumps.
	gather []byte
}

// Config is what a Loop is built from.
type Config struct {
	Loop *loop.Loop
	// Origins are the loop's origin connections; nil: none (a test without
	// sockets), and a request routed to an origin fails with a 500.
	Origins *originconn.Loop
	Push    *pushconn.Loop
	// Tunnels are the loop's websocket tunnels; nil: websocket upgrades are
	// not proxied (the Upgrade header is dropped as hop-by-hop).
	Tunnels *tunnel.Loop
	// Chains returns the filter chain for new requests (nil: none); nil: no filters.
	Chains func() filters.Chain
	// Counts counts requests per origin and status cause.
	Counts *telemetry.CauseCounters
	// Metrics records the request metrics (GET /metrics); nil: metrics off.
	Metrics *telemetry.Metrics
}

// NewLoop returns the exchanges' side of cfg.Loop and hooks its recycling into
// the end of every callback.
func NewLoop(cfg Config) *Loop {
	lp := &Loop{l: cfg.Loop, push: cfg.Push, tunnels: cfg.Tunnels, chains: cfg.Chains, counts: cfg.Counts, metrics: cfg.Metrics.NewLoop()}
	lp.clock = cfg.Loop.Now
	lp.ids = tracectx.NewIDSource()
	if cfg.Origins != nil {
		lp.origins = originLoop{cfg.Origins}
	}
	lp.pool = loop.NewRecycler(cfg.Loop, (*Exchange).reset)
	return lp
}

// Loop is the event loop the exchanges run on.
func (lp *Loop) Loop() *loop.Loop { return lp.l }

// Begin takes an exchange for a request from ds whose head is complete now.
func (lp *Loop) Begin(ds Downstream) *Exchange {
	ex := lp.pool.Get()
	if ex == nil {
		ex = &Exchange{lp: lp}
		ex.out.scan.Response = true
		ex.bodySink = ex.sendPiece
		ex.collect = ex.collectPiece
		ex.buffer = ex.bufferPiece
		ex.resumeFn = ex.resumed
	}
	ex.ds = ds
	ex.snap = lp.l.Snapshot()
	ex.log.started = lp.l.Now()
	return ex
}

// retire hands a finished exchange back for recycling (after the callback).
func (lp *Loop) retire(ex *Exchange) { lp.pool.Retire(ex) }
