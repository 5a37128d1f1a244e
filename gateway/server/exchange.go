package server

import (
	"fmt"

	"github.com/rs/zerolog"

	"gozer/filters"
	"gozer/gateway/httpcodec"
	"gozer/gateway/origin"
)

var (
	crlf          = []byte("\r\n")
	lastChunk     = []byte("0\r\n\r\n")
	continue100   = []byte("HTTP/1.1 100 Continue\r\n\r\n")
	maxRespHeader = 64 << 10
)

// exchange is one request and its response: Zuul's request context plus the
// proxying state. It is owned by the client connection's loop and recycled there
// (loop.getExchange / putExchange): buffers survive, fields are reset.
type exchange struct {
	l  *loop
	cl *client
	up *upstream

	req  httpcodec.Request
	resp httpcodec.Response
	id   []byte

	origin      *origin.Origin
	server      *origin.Server
	attempts    int
	tried       uint64
	tries       [maxLoggedAttempts]attemptRecord // the attempts, for the access log
	admitted    bool                             // the origin's isolation admitted it: Finish must follow once
	admitAt     int64                            // the now given to Admit
	attemptOpen bool                             // the current attempt was picked by the balancer: AttemptDone must follow once
	fellBack    bool                             // the origin's fallback serves it
	localAnswer bool                             // the gateway (or a filter) answered, not the origin
	upgradeTo   string                           // the Upgrade header of a local 426 answer

	fwd        []byte // request head as sent to the origin, kept for retries
	replay     []byte // request body bytes sent so far, while they fit maxReplay
	replayLost bool   // body bytes were sent that replay no longer holds

	// filters
	fc         filters.Context
	chain      chain
	collecting bool // buffering the request body for an inbound filter

	// request body
	reqDone      bool
	reqRemaining int64
	reqBody      int64 // decoded body bytes taken from the client
	reqChunks    httpcodec.ChunkedDecoder

	// response
	respScan      httpcodec.HeadScanner
	respHeadDone  bool
	respRemaining int64
	respChunks    httpcodec.ChunkedDecoder
	respSent      bool // a response byte reached the client: errors can only close now
	respCollect   bool // collecting the response body for an outbound filter
	originEOF     bool // the origin closed; what it sent is all there is
	chunkedOut    bool
	closeAfter    bool
	pumping       bool
	staleRetried  bool // the free retry after a stale pooled connection was used
	attemptStart  int64

	// headRefused: the request head was refused while scanned or parsed;
	// headMethod and headTarget are what its request line held (copies; empty
	// when not received whole), for the access log.
	headRefused            bool
	headMethod, headTarget []byte

	started  int64
	status   int
	cause    filters.Cause
	reason   string
	bytesIn  int64
	bytesOut int64
}

func (ex *exchange) reset() {
	if ex.admitted && ex.origin != nil && ex.origin.Iso != nil {
		// Safety net: every admitted request leaves the bulkhead.
		ex.origin.Iso.Finish(origin.Canceled, ex.admitAt, ex.l.now)
	}
	ex.endAttempt(true)
	ex.admitted, ex.attemptOpen, ex.fellBack, ex.localAnswer = false, false, false, false
	ex.upgradeTo = ""
	ex.tries = [maxLoggedAttempts]attemptRecord{}
	ex.cl, ex.up, ex.origin, ex.server = nil, nil, nil, nil
	ex.req.Reset()
	ex.resp.Reset()
	ex.id = ex.id[:0]
	ex.attempts, ex.tried = 0, 0
	ex.fwd = ex.fwd[:0]
	ex.replay = ex.replay[:0]
	ex.replayLost = false
	ex.fc.Reset()
	ex.chain, ex.collecting = nil, false
	ex.reqDone, ex.reqRemaining, ex.reqBody = false, 0, 0
	ex.reqChunks.Reset()
	ex.respScan.Reset()
	ex.respHeadDone, ex.respRemaining = false, 0
	ex.respChunks.Reset()
	ex.respSent, ex.originEOF, ex.pumping, ex.staleRetried, ex.respCollect = false, false, false, false, false
	ex.chunkedOut, ex.closeAfter = false, false
	ex.headRefused, ex.headMethod, ex.headTarget = false, ex.headMethod[:0], ex.headTarget[:0]
	ex.started, ex.status, ex.cause, ex.reason = 0, 0, filters.Cause{}, ""
	ex.bytesIn, ex.bytesOut = 0, 0
}

func (ex *exchange) begin(cl *client, now int64) {
	ex.cl = cl
	ex.started = now
	ex.respChunks.Response = true
	ex.respScan.Response = true
}

// start routes the parsed request and begins the first attempt.
func (ex *exchange) start() {
	l, req := ex.l, &ex.req
	if id := req.RequestID(); len(id) > 0 && len(id) <= 128 {
		ex.id = append(ex.id, id...)
	} else {
		ex.id = l.nextRequestID(ex.id)
	}
	ex.closeAfter = !req.KeepAlive || ex.cl.drainClose
	ex.initContext() // before any answer: outbound filters see the gateway's errors too
	switch req.Framing {
	case httpcodec.FramingNone:
		ex.reqDone = true
	case httpcodec.FramingLength:
		if l.limit.maxBody > 0 && req.ContentLength > l.limit.maxBody {
			ex.fail(filters.ClientBodyTooLarge, fmt.Sprintf("content-length %d over server.max_request_body %d", req.ContentLength, l.limit.maxBody))
			return
		}
		ex.reqRemaining = req.ContentLength
		ex.reqDone = req.ContentLength == 0
	}

	if req.ExpectContinue && !ex.reqDone && ex.cl.c.InboundBuffered() == 0 {
		if !ex.cl.write(continue100) {
			return
		}
	}
	if ex.chain != nil && !ex.reqDone && ex.chain.NeedsRequestBody() {
		ex.collecting = true // an inbound filter reads the body: route once it is all here
		ex.collectBody()
		return
	}
	ex.route()
}

// attempt sends the request to the next server: over an idle pooled connection when
// the loop has one, else over a new connection dialled onto this loop.
func (ex *exchange) attempt() {
	l, o := ex.l, ex.origin
	srv, pool := ex.pickServer(o)
	ex.server = srv
	ex.attempts++
	ex.attemptStart = l.now
	if u, ok := pool.Get(); ok {
		u.bind(ex)
		u.reused = true
		u.sendRequest()
		return
	}
	if !pool.Reserve() {
		ex.fail(filters.LocalOriginConnLimit, fmt.Sprintf("origin %s server %s: %d connections open from this loop (max_connections_per_server)", o.Name, srv.Addr, pool.Open()))
		return
	}
	if !srv.ReserveConn(o.MaxConnsTotal) {
		pool.Release()
		ex.fail(filters.LocalOriginConnLimit, fmt.Sprintf("origin %s server %s: %d connections open (max_connections_per_server_total)", o.Name, srv.Addr, srv.Conns()))
		return
	}
	u := newUpstream(l, o, srv, pool)
	u.bind(ex)
	u.dial()
}

// canRetry says whether a failed attempt may go to another server: the attempts
// left, no response byte seen, and the body sent so far still held for replay.
func (ex *exchange) canRetry() bool {
	return ex.attempts <= ex.origin.Retries && !ex.respSent && !ex.replayLost && ex.cl != nil
}

// pumpRequestBody moves request body bytes from the client to the origin, re-framing
// chunked bodies, until the client's buffer is empty or the origin's side is full.
func (ex *exchange) pumpRequestBody() {
	cl, u := ex.cl, ex.up
	if ex.reqDone || u == nil || !u.connected || cl == nil {
		return
	}
	buf, _ := cl.c.Peek(-1)
	off, ok := 0, true
	// A failed write closes the origin connection inside gnet; while pumping, its
	// close handler leaves the exchange alone and the pump reports it below, once
	// the client's buffer agrees with what was sent.
	ex.pumping = true
	for ok && off < len(buf) && !ex.reqDone {
		if ex.req.Framing == httpcodec.FramingLength {
			n := len(buf) - off
			if int64(n) > ex.reqRemaining {
				n = int(ex.reqRemaining)
			}
			data := buf[off : off+n]
			off += n
			ex.reqRemaining -= int64(n)
			ex.reqDone = ex.reqRemaining == 0
			ok = ex.sendBody(data, false)
			continue
		}
		consumed, data, done, err := ex.reqChunks.Next(buf[off:])
		off += consumed
		if err == nil && ex.l.limit.maxBody > 0 && ex.reqBody+int64(len(data)) > ex.l.limit.maxBody {
			err = &httpcodec.Error{Status: 413, Cause: filters.ClientBodyTooLarge.Name, Reason: "chunked body over server.max_request_body"}
		}
		if err != nil {
			ex.pumping = false
			_, _ = cl.c.Discard(off)
			ex.failBody(err)
			return
		}
		if len(data) > 0 {
			ok = ex.sendBody(data, true)
		}
		if ok && done {
			ex.reqDone = true
			ok = u.write(lastChunk)
		}
		if consumed == 0 {
			break
		}
	}
	ex.pumping = false
	_, _ = cl.c.Discard(off)
	ex.bytesIn += int64(off)
	if !ok {
		ex.upstreamClosed(u, u.closeErr)
		return
	}
	if off > 0 && !u.gotBytes {
		// The origin answers after the body: its read timer starts at the last piece.
		u.deadline = ex.l.now + int64(u.origin.ReadTimeout)
	}
	if ex.reqDone {
		if cl.paused || cl.ex != ex {
			return
		}
		cl.deadline = 0
		return
	}
	if u.c.OutboundBuffered() > ex.l.limit.maxBuffered {
		// The origin is the slow side: stop reading the client; the client is not
		// timed while we hold it, the origin is (read_timeout without progress).
		cl.pause()
		if !u.paused {
			// The origin's read timer governs now. But when the origin is paused too
			// (this client does not read its answer), only the client's send timer
			// is left to end the standoff: keep it.
			cl.deadline = 0
		}
		u.watchDrain()
	}
}

// sendBody writes one piece of decoded body to the origin (as a chunk when chunked)
// and keeps it for replay while it fits. It reports false when the exchange moved on
// (the origin connection failed and a retry or an error answer took over).
func (ex *exchange) sendBody(data []byte, chunked bool) bool {
	ex.reqBody += int64(len(data))
	if !ex.replayLost {
		if len(ex.replay)+len(data) <= ex.origin.ReplayBodyBytes {
			ex.replay = append(ex.replay, data...)
		} else {
			ex.replayLost = true
			ex.replay = ex.replay[:0]
		}
	}
	u := ex.up
	if chunked {
		l := ex.l
		l.iov = append(l.iov[:0], httpcodec.AppendChunkHeader(l.chunkHdr[:0], len(data)), data, crlf)
		return u.writev(l.iov)
	}
	return u.write(data)
}

// failBody answers a request whose body turned out bad or too large.
func (ex *exchange) failBody(err error) {
	cause, reason := filters.ClientBadRequest, err.Error()
	if ce, ok := err.(*httpcodec.Error); ok {
		reason = ce.Reason
		if c, ok := filters.CauseByName(ce.Cause); ok {
			cause = c
		}
	}
	ex.closeAfter = true
	ex.fail(cause, reason)
}

// fail ends the exchange with an error. Before any response byte went out the client
// gets an error answer naming the cause; after that the only honest signal left is
// closing the connection, so the client never takes a cut body for a whole one.
func (ex *exchange) fail(cause filters.Cause, reason string) {
	ex.cause, ex.reason = cause, reason
	ex.endAttempt(cause.Category != filters.CategoryOriginFailure)
	if u := ex.up; u != nil {
		ex.up = nil
		u.abort()
	}
	cl := ex.cl
	if cl == nil {
		return
	}
	if ex.respSent {
		ex.status = ex.resp.Status
		ex.logAccess()
		cl.ex = nil
		cl.l.retire(ex)
		cl.close()
		return
	}
	if !ex.reqDone {
		ex.closeAfter = true // the rest of the body is still coming: the stream is lost
	}
	ex.answer(cause.Status, cause, nil, nil)
}

// clientGone runs when the client connection closed under a live exchange.
func (ex *exchange) clientGone(err error) {
	if ex.cause.Name == "" {
		ex.cause = filters.ClientClosed
		ex.status = filters.ClientClosed.Status
		if err != nil {
			ex.reason = "client closed the connection: " + err.Error()
		} else {
			ex.reason = "client closed the connection"
		}
		ex.logAccess()
	}
	ex.endAttempt(true) // the client left: nothing against the server
	ex.cl = nil
	if u := ex.up; u != nil {
		ex.up = nil
		u.abort()
	}
}

// logAccess writes the request's access-log line, and a process-log line for failures.
func (ex *exchange) logAccess() {
	l := ex.l
	dur := (l.now - ex.started) / 1000
	var originName, serverAddr string
	if ex.origin != nil {
		originName = ex.origin.Name
	}
	if ex.server != nil {
		serverAddr = ex.server.Addr
	}
	remote := ""
	if ex.cl != nil {
		remote = ex.cl.remote
	}
	method, path := ex.req.Header.Method(), filters.PathOf(ex.req.Header.RequestURI())
	if ex.headRefused {
		// What was received, not the empty request's defaults (GET /).
		method, path = orDash(ex.headMethod), orDash(filters.PathOf(ex.headTarget))
	}
	ex.finishIsolation()
	if e := l.log.Logger.Log(); e != nil {
		e.Bytes("request_id", ex.id).Str("client", remote).Bytes("method", method).
			Bytes("path", path).Int("status", ex.status).Str("cause", ex.statusName()).
			Str("origin", originName).Str("server", serverAddr).Int("attempts", ex.attempts).
			Int64("bytes_in", ex.bytesIn).Int64("bytes_out", ex.bytesOut).Int64("duration_us", dur)
		if ex.reason != "" {
			e.Str("reason", ex.reason)
		}
		if n := min(ex.attempts, maxLoggedAttempts); n > 0 {
			arr := zerolog.Arr()
			for i := 0; i < n; i++ {
				t := &ex.tries[i]
				arr.Dict(zerolog.Dict().Str("server", t.server).Str("result", t.result).Int64("duration_us", t.durUS))
			}
			e.Array("attempt_log", arr)
		}
		e.Send()
	}
	if ex.cause.Category != filters.CategorySuccess {
		// Clients misbehave all day (and close mid-request at will): info. What the
		// gateway or an origin did wrong is a warning.
		// Requests shed by an open breaker or a full bulkhead come by the thousand while
		// an origin is sick: the breaker's own state change is what deserves attention.
		lvl := zerolog.WarnLevel
		if ex.cause.Category == filters.CategoryClientFailure ||
			ex.cause == filters.LocalOriginCircuitOpen || ex.cause == filters.LocalOriginConcurrency {
			lvl = zerolog.InfoLevel
		}
		l.srv.log.WithLevel(lvl).Bytes("request_id", ex.id).Str("client", remote).Bytes("path", path).
			Int("status", ex.status).Str("cause", ex.cause.Name).Str("origin", originName).
			Str("server", serverAddr).Str("reason", ex.reason).Msg("request failed")
	}
}

var dash = []byte("-")

// orDash is b, or "-" when b is empty (the access log's "not received").
func orDash(b []byte) []byte {
	if len(b) == 0 {
		return dash
	}
	return b
}

// errorResponse appends the gateway's own answer for cause to dst.
func errorResponse(dst []byte, cause filters.Cause, requestID []byte, close bool) []byte {
	return httpcodec.AppendError(dst, cause.Status, cause.Name, "", requestID, close)
}
