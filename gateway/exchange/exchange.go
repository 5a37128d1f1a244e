// Package exchange is the request's room: one request and its response from
// the moment its head was read to its access-log line, whatever protocol the
// client speaks. It runs the filter chain, routes, admits the request into its
// origin's isolation, makes the attempts (one retry decision), relays the
// request body to the origin and the response to the client with bounded
// buffering, answers locally (errors, filters' answers, push handshakes) and
// writes the access-log line. Trailers pass through it both ways as field
// lines (Downstream.Trailer to the origin after the last chunk, the origin's
// to Downstream.EndBody), but for a body it changed (compressed, or replaced
// by an outbound filter); each downstream writes them as its protocol does.
//
// The exchange talks to its client only through a Downstream (an HTTP/1.1
// connection's stream, or an HTTP/2 stream) and to the origin only through
// an OriginConn (originconn.Conn), so that both can be faked in its tests.
//
// Concurrency: an Exchange and its Loop belong to one event loop; everything
// runs on that loop's goroutine. An Exchange is recycled after its request
// (Loop.retire, at the end of the callback); nothing may keep a pointer to one
// past Downstream.Done, Abort or Hijack.
package exchange

import (
	"gozer/filters"
	"gozer/gateway/compress"
	"gozer/gateway/httpcodec"
	"gozer/gateway/loop"
	"gozer/gateway/origin"
	"gozer/gateway/peers"
)

// Exchange is one request and its response: Zuul's request context plus the
// proxying state. Its state is grouped by concern, each group resetting itself
// (so a field added to a group cannot be forgotten between requests).
type Exchange struct {
	lp   *Loop
	ds   Downstream
	snap *loop.Snapshot // the configuration the request started with

	req  httpcodec.Request
	resp httpcodec.Response
	id   []byte

	body  bodyState
	out   respState
	try   attemptState
	flt   filterState
	log   logState
	trace traceState
	fault faultState // an injected failure (faults.go)
	// pass is the request's passport (passport.go), in the filters'
	// Context.Passport while tracing.passport_threshold is on. Allocated the
	// first time this (recycled) exchange needs one, then kept: embedded, its
	// 1 KiB would sit in every exchange, a request waiting in an async
	// filter holds two (its own and its side call's), and the GC's mark
	// phase scans them all (bench/README.md, "Async filters").
	pass *filters.Passport
	// The body sinks, bound once: ex.sendPiece, ex.collectPiece, ex.bufferPiece.
	bodySink func([]byte) bool
	collect  func([]byte) bool
	buffer   func([]byte) bool
	resumeFn func() // ex.resumed, bound once: the filters' Context.Resume
	// peer is the client's count the request is in flight in (Peers.Begin),
	// given back by reset.
	peer *peers.Peer
}

// bodyState is the request body as the exchange relays it.
type bodyState struct {
	done       bool   // the whole body was received
	decoded    int64  // body bytes taken from the client
	replay     []byte // body bytes sent so far (or collected for a filter), while they fit
	replayLost bool   // body bytes were sent that replay no longer holds
	collecting bool   // buffering the body for an inbound filter before routing
	buffering  bool   // receiving the body (up to the origin's request_buffer) before taking a connection
	err        error  // why a body callback stopped the body (over a limit)
	final      []byte // the last chunk with the client's trailers (finalChunk)
}

func (b *bodyState) reset() {
	*b = bodyState{replay: trimBuf(b.replay[:0]), final: httpcodec.KeepTrailerBuffer(b.final)}
}

// respState is the response as the exchange relays it.
type respState struct {
	scan       httpcodec.HeadScanner
	headDone   bool
	body       httpcodec.BodyReader
	collecting bool // collecting the body for an outbound filter
	filtered   bool // an outbound filter replaced the whole body (RespBodySet): no trailers
	originEOF  bool // the origin closed; what it sent is all there is
	closeAfter bool // the client connection closes after this response
	local      bool // the gateway (or a filter) answered, not the origin
	upgradeTo  string
	ws         bool // the request goes to the origin as a websocket upgrade; it holds a tunnel slot
	head       Head // what head() built for the downstream
	parked     bool // the origin's reads are paused behind a slow client (Loop.parked counts it)
	parkedAt   *origin.Server
	enc        *compress.Encoder // the body is compressed (compress.go); from encPool
	encPool    *compress.Pool
	trailer    []byte // the origin's trailer section as it goes to the client (endBody)
	interim    uint8  // interim answers passed to the client, over all attempts (interim.go)
}

func (r *respState) reset() {
	body := r.body // its trailer buffer is reused (ChunkedDecoder.Reset)
	*r = respState{scan: httpcodec.HeadScanner{Response: true}, body: body, trailer: httpcodec.KeepTrailerBuffer(r.trailer)}
	r.body.Reset(httpcodec.FramingNone, 0, true)
}

// attemptState is the request's way through its origin: admission, the
// attempts and the connection of the current one.
type attemptState struct {
	origin     *origin.Origin
	server     *origin.Server
	conn       OriginConn
	n          int    // attempts made
	tried      uint64 // servers tried (Server.Bit)
	firstByte  bool   // the current attempt's first response byte was marked in the passport
	passOpen   bool   // the current attempt's end is still to be marked in the passport
	records    [maxLoggedAttempts]attemptRecord
	admitted   bool  // the origin's isolation admitted it: Finish must follow once
	admitAt    int64 // the now given to Admit
	headAt     int64 // when the origin's response head came (0: not yet): the adaptive limit's latency
	open       bool  // the current attempt was picked by the balancer: AttemptDone must follow once
	fellBack   bool  // the origin's fallback serves it
	staleRetry bool  // the free retry after a stale pooled connection was used
	start      int64 // when the current attempt started
	ready      bool  // conn is connected: it takes writes (pooled, or OriginOpen came)
	fwd        []byte
	pumping    bool  // writing body to the origin: its close is handled after the pump
	closeErr   error // why the origin closed during a pump
}

func (a *attemptState) reset() {
	*a = attemptState{fwd: trimBuf(a.fwd[:0])}
}

// filterState is what the filters of the request share.
type filterState struct {
	fc    filters.Context
	chain filters.Chain
	// suspended is the phase an async filter suspended (valid while
	// fc.Suspended, and in resumed).
	suspended filters.Phase
}

func (f *filterState) reset() {
	f.fc.Reset()
	f.fc.Body = trimBuf(f.fc.Body)
	f.fc.RespBody = trimBuf(f.fc.RespBody)
	f.fc.RespondBody = trimBuf(f.fc.RespondBody)
	f.chain = nil
}

// logState is what the access-log line says.
type logState struct {
	started int64
	status  int
	parent  []byte // a side call's: the id of the request whose filter made it
	cause   filters.Cause
	reason  string
	// headRefused: the request head was refused while read; method and target
	// are what its request line held (copies; empty when not received whole).
	headRefused    bool
	method, target []byte
	upgradeOut     int64 // the push handshake's answer, written after the line
}

func (g *logState) reset() {
	*g = logState{method: g.method[:0], target: g.target[:0], parent: g.parent[:0]}
}

// keepBuf is the largest buffer a recycled exchange keeps: a request that
// needed a bigger one (a body kept for replay or for a filter, a long head)
// does not pin it for the requests after it.
const keepBuf = 16 << 10

// trimBuf drops b when it grew past keepBuf.
func trimBuf(b []byte) []byte {
	if cap(b) > keepBuf {
		return nil
	}
	return b
}

// reset clears ex for the next request, keeping its buffers.
func (ex *Exchange) reset() {
	ex.releaseTunnelSlot()
	if ex.try.admitted && ex.try.origin != nil && ex.try.origin.Iso != nil {
		// Safety net: every admitted request leaves the bulkhead.
		ex.try.origin.Iso.Finish(origin.Canceled, ex.try.admitAt, ex.lp.l.Now())
	}
	ex.abandonFilters()
	ex.endAttempt(true)
	ex.unpark()
	ex.releaseEncoder()
	if ex.peer != nil {
		ex.lp.l.Shared.Peers.End(ex.peer)
		ex.peer = nil
	}
	ex.ds, ex.snap = nil, nil
	ex.req.Reset()
	ex.resp.Reset()
	ex.id = ex.id[:0]
	ex.body.reset()
	ex.out.reset()
	ex.try.reset()
	ex.flt.reset()
	ex.log.reset()
	ex.trace = traceState{}
	ex.fault.reset()
	if ex.pass != nil {
		ex.pass.Reset()
	}
}

// Request is where the downstream parses the request head, before Start.
func (ex *Exchange) Request() *httpcodec.Request { return &ex.req }

// ID is the request id (X-Request-Id).
func (ex *Exchange) ID() []byte { return ex.id }
