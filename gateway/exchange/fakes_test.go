package exchange

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"

	"gozer/filters"
	"gozer/gateway/config"
	"gozer/gateway/httpcodec"
	"gozer/gateway/loop"
	"gozer/gateway/origin"
	"gozer/gateway/originconn"
	"gozer/gateway/telemetry"
)

// The exchange's decisions, tested without sockets: a fake downstream stands
// for the client, a fake origin connection for each attempt. The tests drive
// the exchange as the connection kinds would (Start, OnBody, OriginData,
// OriginClosed ...) and look at what the client got.

// fakeDS is a downstream that records what the exchange did with it.
type fakeDS struct {
	ex      *Exchange
	client  Client
	pieces  [][]byte // request body still to come, decoded
	bodyEnd bool     // pieces end the body
	bodyErr error

	head     *httpcodec.Response
	status   int
	hdr      Head
	body     bytes.Buffer
	ended    bool
	trailer  []byte // what EndBody was given
	reqTrail []byte // the request's trailer section (Trailer, once the body ended)
	started  bool
	pending  bool
	done     bool
	closed   bool // Done(true) or Abort
	aborted  bool
	draining bool
	buffered int
	waiting  bool
	paused   bool
	expect   bool
	// interim holds the interim answers written (WriteInterim), as HTTP/1.1
	// text; noInterim: the downstream takes none (an HTTP/1.0 client).
	interim   []string
	noInterim bool
}

func (d *fakeDS) Client() *Client { return &d.client }
func (d *fakeDS) Draining() bool  { return d.draining }
func (d *fakeDS) Continue()       {}
func (d *fakeDS) ReadBody(fn func([]byte) bool) (bool, error) {
	for len(d.pieces) > 0 {
		p := d.pieces[0]
		d.pieces = d.pieces[1:]
		if !fn(p) {
			break
		}
	}
	return len(d.pieces) == 0 && d.bodyEnd, d.bodyErr
}
func (d *fakeDS) Trailer() []byte {
	if len(d.pieces) > 0 || !d.bodyEnd {
		return nil
	}
	return d.reqTrail
}
func (d *fakeDS) BodyExpected(on bool) { d.expect = on }
func (d *fakeDS) PauseBody()           { d.paused = true }
func (d *fakeDS) ResumeBody()          { d.paused = false }
func (d *fakeDS) WriteHead(r *httpcodec.Response, h *Head) {
	d.head, d.status, d.hdr = r, r.Status, *h
	d.body.Reset()
	d.pending = true
}
func (d *fakeDS) WriteInterim(r *httpcodec.Response, h *Head) bool {
	if d.noInterim {
		return false
	}
	// What an HTTP/1.1 client would read, at once (no Flush).
	d.interim = append(d.interim, string(httpcodec.AppendClientResponse(nil, r, &httpcodec.ResponseInfo{RequestID: h.RequestID, Via: h.Via})))
	return true
}
func (d *fakeDS) WriteBody(p []byte) { d.body.Write(p) }
func (d *fakeDS) EndBody(t []byte)   { d.ended, d.trailer = true, append(d.trailer[:0], t...) }
func (d *fakeDS) Flush() bool {
	if d.pending {
		d.started = true
	}
	return !d.aborted
}
func (d *fakeDS) Started() bool             { return d.started }
func (d *fakeDS) Buffered() int             { return d.buffered }
func (d *fakeDS) WaitWritable()             { d.waiting = true }
func (d *fakeDS) Bytes() (int64, int64)     { return 0, int64(d.body.Len()) }
func (d *fakeDS) Done(closeAfter bool)      { d.done, d.closed = true, closeAfter }
func (d *fakeDS) Abort(bool)                { d.aborted, d.closed = true, true }
func (d *fakeDS) Hijack() (gnet.Conn, bool) { return nil, false }

// fakeConn is an origin connection: what the exchange wrote, and what the
// origin "sent" (in).
type fakeConn struct {
	srv      *origin.Server
	reused   bool
	gotBytes bool
	closed   bool
	paused   bool
	wrote    bytes.Buffer
	in       []byte
	released bool
	aborted  bool
}

func (c *fakeConn) Server() *origin.Server { return c.srv }
func (c *fakeConn) Closed() bool           { return c.closed }
func (c *fakeConn) GotBytes() bool         { return c.gotBytes }
func (c *fakeConn) Reused() bool           { return c.reused }
func (c *fakeConn) Peek() []byte           { return c.in }
func (c *fakeConn) Discard(n int)          { c.in = c.in[n:] }
func (c *fakeConn) InboundBuffered() int   { return len(c.in) }
func (c *fakeConn) OutboundBuffered() int  { return 0 }
func (c *fakeConn) Write(b []byte) bool    { c.wrote.Write(b); return !c.closed }
func (c *fakeConn) Writev(bs [][]byte) bool {
	for _, b := range bs {
		c.wrote.Write(b)
	}
	return !c.closed
}
func (c *fakeConn) ArmRead()             {}
func (c *fakeConn) Disarm()              {}
func (c *fakeConn) Pause()               { c.paused = true }
func (c *fakeConn) Paused() bool         { return c.paused }
func (c *fakeConn) Resume()              { c.paused = false }
func (c *fakeConn) WatchWritable() error { return nil }
func (c *fakeConn) Release()             { c.released = true }
func (c *fakeConn) Abort()               { c.aborted, c.closed = true, true }

// fakeOrigins hands out fake connections: pooled ones while pooled is set,
// dialling ones otherwise, round robin over the servers not tried yet.
type fakeOrigins struct {
	pooled bool
	conns  []*fakeConn
	next   int
}

func (f *fakeOrigins) PickServer(o *origin.Origin, tried uint64) (*origin.Server, bool) {
	list := o.Iso.Discovery.Servers().List
	for range list {
		s := list[f.next%len(list)]
		f.next++
		if tried&s.Bit() == 0 {
			return s, false
		}
	}
	s := list[f.next%len(list)]
	f.next++
	return s, false
}

func (f *fakeOrigins) Acquire(o *origin.Origin, srv *origin.Server, owner originconn.Owner, started int64) (OriginConn, bool, error) {
	c := &fakeConn{srv: srv, reused: f.pooled}
	f.conns = append(f.conns, c)
	return c, f.pooled, nil
}

// last is the connection of the latest attempt.
func (f *fakeOrigins) last() *fakeConn { return f.conns[len(f.conns)-1] }

// noLoop is a gnet.EventLoop for a Loop that never leaves the test's goroutine.
type noLoop struct{}

func (noLoop) Register(context.Context, net.Addr) (<-chan gnet.RegisteredResult, error) {
	return nil, nil
}
func (noLoop) Enroll(context.Context, net.Conn) (<-chan gnet.RegisteredResult, error) {
	return nil, nil
}
func (noLoop) Execute(ctx context.Context, r gnet.Runnable) error           { return r.Run(ctx) }
func (noLoop) Schedule(context.Context, gnet.Runnable, time.Duration) error { return nil }
func (noLoop) Close(gnet.Conn) error                                        { return nil }

// testRoom is an exchange Loop over a fake origin "api" of two servers.
type testRoom struct {
	lp      *Loop
	origins *fakeOrigins
	api     *origin.Origin
}

// newRoom builds the room; edit changes the config before it is built.
func newRoom(t *testing.T, edit func(*config.Config)) *testRoom {
	t.Helper()
	cfg, err := config.Parse([]byte(`
server:
  status_headers: {expose: all}
origins:
  api:
    servers: ["127.0.0.1:1001", "127.0.0.1:1002"]
    breaker: {enabled: false}
routes:
  - {path_prefix: /, origin: api}
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	tab, err := origin.Build(cfg.Origins)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tab.Close)
	snap := loop.NewSnapshot(cfg, tab, filters.NewRouteTable(cfg.Routes))
	shared := loop.NewShared(snap, zerolog.Nop(), telemetry.NewAccessLog(nil), nil)
	l := loop.New(noLoop{}, -1, shared)
	fo := &fakeOrigins{}
	lp := NewLoop(Config{Loop: l})
	lp.origins = fo
	api, _ := tab.Get("api")
	return &testRoom{lp: lp, origins: fo, api: api}
}

// start begins an exchange for the request head (with body pieces, and
// whether they end the body) and returns its downstream.
func (r *testRoom) start(t *testing.T, head string, pieces ...string) *fakeDS {
	t.Helper()
	d := &fakeDS{client: Client{Remote: "192.0.2.1:1234", Addr: netip.MustParseAddr("192.0.2.1"), IP: []byte("192.0.2.1")}, bodyEnd: true}
	for _, p := range pieces {
		d.pieces = append(d.pieces, []byte(p))
	}
	r.lp.l.Enter()
	defer r.lp.l.Leave()
	d.ex = r.lp.Begin(d)
	if err := d.ex.Request().Parse([]byte(head)); err != nil {
		t.Fatalf("parse %q: %v", head, err)
	}
	d.ex.Start()
	return d
}

// respond makes the current attempt's origin send b and tells the exchange.
func (r *testRoom) respond(d *fakeDS, b string) {
	c := r.origins.last()
	c.in = append(c.in, b...)
	c.gotBytes = true
	r.lp.l.Enter()
	d.ex.OriginData()
	r.lp.l.Leave()
}

// event runs fn as one callback of the loop (the exchange may be recycled at
// its end).
func (r *testRoom) event(fn func()) {
	r.lp.l.Enter()
	fn()
	r.lp.l.Leave()
}
