package http2

import (
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/net/http2"

	"gozer/gateway/exchange"
	"gozer/gateway/httpcodec"
	"gozer/gateway/telemetry"
)

// stream is one request of an HTTP/2 connection as its exchange sees it: the
// exchange.Downstream. It lives from the request's HEADERS until both sides
// ended (its response may outlive the exchange while flow control holds its
// last DATA). Streams are recycled per loop; nothing keeps one past forget.
type stream struct {
	c      *Conn
	id     uint32
	ex     *exchange.Exchange
	client exchange.Client
	ipText [48]byte

	// The request body: received, not yet taken by the exchange.
	body       []byte
	remoteDone bool  // END_STREAM came
	declared   int64 // content-length (-1: none)
	received   int64
	recvWindow int64
	recvCredit int64
	expectBody bool
	paused     bool  // PauseBody: no window given back, no OnBody
	fed        bool  // body came in this OnData: in c.fed, handed over at its end
	owed       int64 // body taken while paused, its window not given back yet
	bodyAt     int64 // the body timer's deadline (0: not armed)
	// The window of server.min_body_rate (bodyrate.go): at bodyRateAt, the
	// DATA that arrived since bodyMark (received when it began) must reach
	// the minimum, the window lengthened by the time Gozer held the body
	// back in it: its own holds (bodyHold), the connection window's since
	// bodyConnMark (Conn.bodyHold's total then).
	bodyRateAt   int64
	bodyMark     int64
	bodyHold     holdClock
	bodyConnMark int64
	// trailer is the request's trailer section as HTTP/1.1 field lines
	// (trailers.go), for the exchange's Trailer; bodyErr fails the body (a
	// trailer section over its bound).
	trailer []byte
	bodyErr error

	// The response: DATA waiting for a window (pend[poff:]).
	sendWindow int64
	pend       []byte
	poff       int
	endPending bool // EndBody came: END_STREAM after pend
	// respTrailer is the origin's trailer section (EndBody's, copied): the
	// trailing HEADERS that end the stream once pend left.
	respTrailer []byte
	localDone   bool // END_STREAM sent
	started     bool
	waiting     bool  // WaitWritable: OnWritable is owed
	sendAt      int64 // the send timer's deadline (0: not armed)
	queued      bool  // in c.blocked, waiting for the connection's window
	rateAt      int64 // the end of the window of server.min_send_rate (0: none; sendrate.go)
	rateMark    int64 // dataOut when it began
	reset       bool
	peerReset   bool        // the client reset it (onReset): it sends no more
	in, out     int64       // bytes each way, frame headers included (the access log's)
	dataOut     int64       // DATA payload sent: min_send_rate's measure (out would count 9 per frame)
	dataEnd     int64       // where its last DATA ends in the connection's output (Conn.sent's count)
	rateEnd     int64       // dataEnd when the window of min_send_rate began
	rateSocket  bool        // the last window ended with that DATA still in our send buffers
	rateAcked   int64       // the connection's acked() when such a window began (sendrate.go)
	push        *pushStream // an SSE push connection took the stream (push.go)
}

// start hands the request to a new exchange.
func (st *stream) start(b *block) {
	c := st.c
	st.ex = c.lp.ex.Begin(st)
	st.in = int64(b.bytes) + 9
	if b.over {
		c.lp.l.Shared.H2.Count(telemetry.H2HeaderListTooLarge)
		st.remoteDone = b.endStream
		reason := "header list over SETTINGS_MAX_HEADER_LIST_SIZE (server.max_header_bytes)"
		if b.many {
			reason = "too many header fields (server.max_headers)"
		}
		st.ex.Refuse(&httpcodec.Error{Status: 431, Cause: httpcodec.CauseHeadersTooLarge, Reason: reason}, nil, nil)
		return
	}
	l := c.lp.l
	h, declared, method, path, err := head(l.Buf[:0], b.fields, b.endStream)
	l.Buf = h[:0]
	if err != nil {
		c.resetStream(st.id, http2.ErrCodeProtocol, telemetry.H2ProtocolError, err.Error())
		return
	}
	st.declared = declared
	if b.endStream {
		st.remoteDone = true
		if declared > 0 {
			c.resetStream(st.id, http2.ErrCodeProtocol, telemetry.H2ProtocolError, "content-length and no DATA")
			return
		}
	}
	if err := st.ex.Request().Parse(h); err != nil {
		st.ex.Refuse(err, []byte(method), []byte(path))
		return
	}
	st.ex.Start()
}

// onData takes a DATA frame's payload.
func (st *stream) onData(p []byte, end bool) {
	c := st.c
	st.received += int64(len(p))
	st.in += int64(len(p)) + 9
	if st.declared >= 0 && (st.received > st.declared || end && st.received != st.declared) {
		c.resetStream(st.id, http2.ErrCodeProtocol, telemetry.H2ProtocolError, "DATA does not match content-length")
		return
	}
	if st.ex == nil {
		c.credit(st, int64(len(p))) // answered already (or a push stream): what comes is dropped
	} else {
		st.body = append(st.body, p...)
	}
	if end {
		st.endOfBody()
		return
	}
	if st.ex != nil && !st.paused {
		// (Paused: the origin takes the body slower; what came waits here,
		// within the window, and no window is given back until it resumes.)
		if st.expectBody {
			st.bodyAt = c.lp.l.Now() + c.lp.l.Snapshot().Limits.HeaderTimeout
			c.arm(st)
		}
		if !st.fed {
			st.fed = true
			c.fed = append(c.fed, st)
		}
	}
}

// feedBodies hands the body that came in this OnData to the streams'
// exchanges, once per stream: the DATA frames of one read go to the origin
// together (a body sent a byte per frame was a write to the origin per
// frame; TestChunkedBodyTinyChunks). Loop goroutine, at the end of OnData.
func (c *Conn) feedBodies() {
	// OnBody may end streams or the connection, which feed no more.
	for i := 0; i < len(c.fed); i++ {
		st := c.fed[i]
		c.fed[i] = nil
		st.fed = false
		if st.c == c && st.ex != nil && !st.paused && !st.remoteDone && c.state != stClosed { // remoteDone: endOfBody fed it
			st.ex.OnBody()
		}
	}
	c.fed = c.fed[:0]
}

// endOfBody: the client's side of the stream ended.
func (st *stream) endOfBody() {
	st.remoteDone = true
	if st.ex != nil {
		st.ex.OnBody()
		return
	}
	if st.localDone && st.push == nil {
		st.c.forget(st)
	}
}

// due is the stream's earliest timer (0: none).
func (st *stream) due() int64 {
	d := int64(0)
	if st.expectBody && !st.paused && st.bodyAt > 0 {
		d = st.bodyAt
	}
	if st.sendAt > 0 && (d == 0 || st.sendAt < d) {
		d = st.sendAt
	}
	if st.rateAt > 0 && (d == 0 || st.rateAt < d) {
		d = st.rateAt
	}
	if st.bodyRateAt > 0 && (d == 0 || st.bodyRateAt < d) {
		d = st.bodyRateAt
	}
	return d
}

// onTimer runs when one of the stream's timers expired.
func (st *stream) onTimer(now int64) {
	c := st.c
	if st.sendAt > 0 && now >= st.sendAt {
		st.sendAt = 0
		if st.sendWindow <= 0 || c.sendWindow <= 0 {
			c.lp.l.Shared.H2.Count(telemetry.H2StreamStalled)
		}
		if st.ex != nil {
			st.ex.OnTimeout(exchange.TimeoutSend)
			return
		}
		c.resetStream(st.id, http2.ErrCodeCancel, telemetry.H2StreamStalled, "client opened no window for server.idle_timeout")
		return
	}
	if st.rateAt > 0 && now >= st.rateAt && !st.rateDue() {
		return
	}
	if st.bodyRateAt > 0 && now >= st.bodyRateAt && !st.bodyRateDue() {
		return
	}
	if st.ex != nil && st.expectBody && !st.paused && st.bodyAt > 0 && now >= st.bodyAt {
		st.bodyAt = 0
		st.ex.OnTimeout(exchange.TimeoutBody)
	}
}

// Client implements exchange.Downstream.
func (st *stream) Client() *exchange.Client { return &st.client }

// Draining implements exchange.Downstream: HTTP/2 ends the connection with
// GOAWAY, not after this response.
func (st *stream) Draining() bool { return false }

// Continue implements exchange.Downstream: a 100 for a client that sent no
// body yet.
func (st *stream) Continue() {
	c := st.c
	if st.received > 0 || st.remoteDone || st.reset {
		return
	}
	st.out += int64(c.writeHeaders(st.id, c.enc.status(c.hb[:0], 100), false))
	c.flush()
}

// ReadBody implements exchange.Downstream: the body received so far, as one
// piece; what it takes is credited back to the client's windows.
func (st *stream) ReadBody(fn func(piece []byte) bool) (bool, error) {
	if len(st.body) > 0 {
		p := st.body
		st.body = st.body[:0]
		fn(p)
		st.owed += int64(len(p))
		if !st.paused {
			st.c.credit(st, st.owed)
			st.owed = 0
		}
	}
	if st.bodyErr != nil {
		return false, st.bodyErr
	}
	return st.remoteDone, nil
}

// BodyExpected implements exchange.Downstream.
func (st *stream) BodyExpected(on bool) {
	st.expectBody = on
	st.bodyAt = 0
	if on {
		st.bodyAt = st.c.lp.l.Now() + st.c.lp.l.Snapshot().Limits.HeaderTimeout
	}
	st.bodyWatch() // (off: no window)
	st.c.arm(st)
}

// PauseBody implements exchange.Downstream: the body stays in its buffer
// and no window is given back, so the client stops within its window.
func (st *stream) PauseBody() {
	st.paused = true
	st.noteHold() // min_body_rate: from now on the wait is Gozer's
}

// ResumeBody implements exchange.Downstream.
func (st *stream) ResumeBody() {
	if !st.paused {
		return
	}
	st.paused = false
	st.noteHold() // the time Gozer held the body back was not the client's
	if st.owed > 0 {
		st.c.credit(st, st.owed) // the body taken while paused: the client may send more
		st.owed = 0
	}
	if st.expectBody {
		st.bodyAt = st.c.lp.l.Now() + st.c.lp.l.Snapshot().Limits.HeaderTimeout
	}
	st.c.arm(st)
}

// WriteHead implements exchange.Downstream: HEADERS, with END_STREAM when
// the response has no body. The head's fields are those HTTP/1.1 would send
// (httpcodec.AppendClientFields decides them), encoded by c.enc.
func (st *stream) WriteHead(r *httpcodec.Response, h *exchange.Head) {
	c := st.c
	end := r.Framing == httpcodec.FramingNone || r.Framing == httpcodec.FramingLength && r.ContentLength == 0
	ri := httpcodec.ResponseInfo{RequestID: h.RequestID, Via: h.Via, Trailers: h.Trailers && !end}
	status := httpcodec.ClientStatus(r)
	blk := c.enc.status(c.hb[:0], status)
	blk = httpcodec.AppendClientFields(blk, r, &ri, status, &c.enc)
	blk = h.AppendStatusFields(blk, &c.enc)
	st.out += int64(c.writeHeaders(st.id, blk, end))
	st.started = true
	st.bodyRateAt = 0 // min_body_rate judges no more: the origin answered (bodyrate.go)
	if end {
		st.localDone, st.endPending = true, true
	}
}

// WriteInterim implements exchange.Downstream: an interim answer is a
// HEADERS frame without END_STREAM before the final one (RFC 9113 8.1),
// its fields encoded as WriteHead's; HEADERS are not flow-controlled, so it
// leaves with the loop's batch (flushSoon) whatever the windows. The stream
// is not started by it.
func (st *stream) WriteInterim(r *httpcodec.Response, h *exchange.Head) bool {
	c := st.c
	if c.state == stClosed || st.reset || st.started || st.localDone {
		return false
	}
	ri := httpcodec.ResponseInfo{RequestID: h.RequestID, Via: h.Via}
	status := httpcodec.ClientStatus(r)
	blk := c.enc.status(c.hb[:0], status)
	blk = httpcodec.AppendClientFields(blk, r, &ri, status, &c.enc)
	st.out += int64(c.writeHeaders(st.id, blk, false))
	c.flushSoon()
	return true
}

// WriteBody implements exchange.Downstream: what the windows allow leaves
// as DATA now, the rest waits in pend (and counts in Buffered).
func (st *stream) WriteBody(p []byte) {
	if len(p) == 0 || st.localDone {
		return
	}
	if st.poff == len(st.pend) {
		st.pend, st.poff = st.pend[:0], 0
		n := st.sendNow(p, false)
		p = p[n:]
	}
	st.pend = append(st.pend, p...)
	st.c.pendTotal += len(p)
	st.sendPending()
}

// EndBody implements exchange.Downstream: END_STREAM once the DATA waiting
// left, on the last DATA frame, or on trailing HEADERS that carry the
// trailer fields that may be passed on (sendTrailers).
func (st *stream) EndBody(trailer []byte) {
	if st.localDone {
		return
	}
	st.endPending = true
	st.respTrailer = append(st.respTrailer[:0], trailer...)
	st.sendPending()
}

// sendNow writes what of p the windows allow as DATA frames (END_STREAM
// with the last when end) and returns how much went.
func (st *stream) sendNow(p []byte, end bool) int {
	c := st.c
	sent := 0
	for {
		n := int(max(0, min(int64(len(p)-sent), st.sendWindow, c.sendWindow, int64(c.peerFrame))))
		if n == 0 && !(end && sent == len(p)) {
			break
		}
		last := end && sent+n == len(p)
		_ = c.fr.WriteData(st.id, last, p[sent:sent+n])
		c.flushSoon() // a window opened in the client's callback, or the exchange's Flush comes first
		sent += n
		st.sendWindow -= int64(n)
		c.sendWindow -= int64(n)
		st.out += int64(n) + 9
		st.dataOut += int64(n)
		c.dataSent += int64(n)
		st.dataEnd = c.sent + int64(len(c.out))
		if last {
			st.localDone = true
			break
		}
		if len(c.out) >= 64<<10 {
			c.flush()
		}
	}
	return sent
}

// sendPending sends the DATA waiting in pend that the windows allow, and
// END_STREAM once all went.
func (st *stream) sendPending() {
	c := st.c
	if st.reset || st.localDone && st.poff == len(st.pend) {
		return
	}
	trailers := len(st.respTrailer) > 0
	n := st.sendNow(st.pend[st.poff:], st.endPending && !trailers)
	st.poff += n
	c.pendTotal -= n
	if trailers && st.endPending && st.poff == len(st.pend) {
		st.sendTrailers() // not flow-controlled: they go at once
	}
	if n > 0 && st.sendAt > 0 {
		st.sendAt = c.lp.l.Now() + c.lp.l.Snapshot().Limits.IdleTimeout // progress
	}
	if st.poff < len(st.pend) && c.sendWindow <= 0 && !st.queued {
		st.queued = true
		c.blocked = append(c.blocked, st)
	}
	if st.poff < len(st.pend) {
		if st.rateAt == 0 {
			st.rateWatch() // held up by a window: min_send_rate measures it
		}
		// pend grew or stayed while nothing may have been written: no flush
		// comes to count it (Shared.Buffered) or to start the connection's
		// window of min_send_rate when its window is the hold-up.
		c.account()
	}
	if st.localDone {
		st.pend, st.poff = st.pend[:0], 0
		st.sendAt = 0
		if st.ex == nil && st.push == nil {
			st.finish()
		}
	}
}

// finish forgets a stream whose exchange ended and whose response left; a
// client still sending its body is told to stop (RFC 9113 8.1).
func (st *stream) finish() {
	c := st.c
	if !st.remoteDone {
		_ = c.fr.WriteRSTStream(st.id, http2.ErrCodeNo)
		c.flushSoon()
	}
	c.forget(st)
}

// Flush implements exchange.Downstream: the frames leave at the end of the
// loop's batch of events (flushSoon), with the other streams' of this batch.
func (st *stream) Flush() bool {
	c := st.c
	c.flushSoon()
	return c.state != stClosed && !st.reset && st.ex != nil
}

// Buffered implements exchange.Downstream: the stream's DATA waiting for a
// window, and the connection's send buffer (shared by its streams).
func (st *stream) Buffered() int { return len(st.pend) - st.poff + st.c.c.OutboundBuffered() }

// WaitWritable implements exchange.Downstream: OnWritable comes once the
// client opened its windows or took the send buffer; without progress for
// server.idle_timeout the exchange gets TimeoutSend.
func (st *stream) WaitWritable() {
	c := st.c
	if !st.waiting {
		st.waiting = true
		c.waiters = append(c.waiters, st)
	}
	st.sendAt = c.lp.l.Now() + c.lp.l.Snapshot().Limits.IdleTimeout
	c.arm(st)
	// Frames still in c.out (flushSoon: they leave at the end of the batch)
	// may fill the socket too: watch for them as for gnet's buffer.
	if c.c.OutboundBuffered() > 0 || len(c.out) > 0 {
		c.watchWritable()
	}
}

// writable: the client took enough; the exchange goes on. The caller took
// st out of c.waiters.
func (st *stream) writable() {
	st.waiting = false
	st.sendAt = 0 // (the connection's timer finds out when it fires: arm)
	if st.ex != nil {
		st.ex.OnWritable()
	}
}

// Started implements exchange.Downstream.
func (st *stream) Started() bool { return st.started }

// Bytes implements exchange.Downstream.
func (st *stream) Bytes() (in, out int64) { return st.in, st.out }

// Done implements exchange.Downstream: the exchange ended; the stream ends
// once its response left.
func (st *stream) Done(bool) {
	st.ex = nil
	st.expectBody = false
	st.bodyRateAt = 0
	if n := int64(len(st.body)) + st.owed; n > 0 {
		st.c.credit(st, n)
		st.body, st.owed = st.body[:0], 0
	}
	if st.localDone && st.poff == len(st.pend) {
		st.finish()
		return
	}
	st.c.arm(st)
}

// Abort implements exchange.Downstream: the response cannot be finished; the
// stream is reset (CANCEL for a client that does not take it, else
// INTERNAL_ERROR), the connection goes on.
func (st *stream) Abort(reset bool) {
	c := st.c
	st.ex = nil
	code := http2.ErrCodeInternal
	if reset {
		code = http2.ErrCodeCancel
	}
	if c.state != stClosed && !st.reset {
		_ = c.fr.WriteRSTStream(st.id, code)
		st.reset = true
		c.forget(st)
		c.flush()
	}
}

// Hijack implements exchange.Downstream: an SSE push connection takes the
// stream (the connection goes on with its other streams); see pushStream.
// A websocket handshake never gets here over HTTP/2 (its Connection and
// Upgrade headers make the request malformed).
func (st *stream) Hijack() (gnet.Conn, bool) {
	c := st.c
	st.ex = nil
	st.expectBody = false
	if c.state != stOpen && c.state != stGoingAway || st.reset {
		return nil, false
	}
	return st.hijackPush()
}
