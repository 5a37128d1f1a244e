package http1

import (
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"gozer/gateway/exchange"
	"gozer/gateway/httpcodec"
	"gozer/gateway/loop"
)

// bigPiece is the body piece size from which a response piece is written on
// its own (writev after what is pending) instead of being copied.
const bigPiece = 16 << 10

var (
	crlf        = []byte("\r\n")
	lastChunk   = []byte(httpcodec.FinalChunk)
	continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")
)

// stream is one request of an HTTP/1.1 connection as its exchange sees it: the
// exchange.Downstream. It holds what lives only as long as the request (the
// body's framing, the response's framing, the request's timers and byte
// counts), so that an idle connection holds none of it. Streams are recycled
// per loop.
type stream struct {
	c      *Conn
	ex     *exchange.Exchange
	client exchange.Client
	ipText [48]byte // client.IP's bytes
	body   httpcodec.BodyReader

	http10       bool // the request was HTTP/1.0: close-delimited bodies only
	expectBody   bool // the exchange waits for request body (BodyExpected)
	chunked      bool // the response body is re-framed as chunks
	closeAfter   bool // the response's framing ends the connection (close-delimited)
	started      bool // a response byte went to the client
	ended        bool // EndBody was called: the response is whole
	bodyDeadline int64
	sendDeadline int64
	in, out      int64
	// The rate windows (server.min_body_rate, server.min_send_rate over
	// server.rate_window): at rateDeadline, the bytes that arrived (or that the
	// client took) since rateMark must reach the minimum.
	rateDeadline int64
	rateMark     int64
	rateSend     bool // the window measures the response (else the request body)
}

// begin prepares the stream for the request its exchange parsed.
func (st *stream) begin() {
	req := st.ex.Request()
	st.http10 = req.HTTP10
	st.client.Proto = "HTTP/1.1"
	if req.HTTP10 {
		st.client.Proto = "HTTP/1.0"
	}
	st.body.Reset(req.Framing, req.ContentLength, false)
}

// Client implements exchange.Downstream.
func (st *stream) Client() *exchange.Client { return &st.client }

// Draining implements exchange.Downstream.
func (st *stream) Draining() bool { return st.c.drainClose.on() }

// Continue implements exchange.Downstream: the 100 Continue goes only to a
// client that sent nothing of its body yet.
func (st *stream) Continue() {
	c := st.c
	if c.c.InboundBuffered() == 0 && c.state != stClosed {
		c.write(continue100)
	}
}

// ReadBody implements exchange.Downstream.
func (st *stream) ReadBody(fn func(piece []byte) bool) (bool, error) {
	c := st.c
	if st.body.Done() {
		return true, nil
	}
	// No more than the body can take: gnet copies what Peek returns where
	// its ring wraps, and pipelined requests may wait behind the body.
	n := c.c.InboundBuffered()
	if w := st.body.Want(); w >= 0 && w < int64(n) {
		n = int(w)
	}
	buf, _ := c.c.Peek(n)
	off := 0
	for off < len(buf) && !st.body.Done() {
		n, data, err := st.body.Next(buf[off:])
		off += n
		if err != nil {
			st.consume(off)
			return false, err
		}
		if len(data) > 0 && !fn(data) {
			break
		}
		if n == 0 {
			break
		}
	}
	st.consume(off)
	return st.body.Done(), nil
}

// Trailer implements exchange.Downstream: a chunked body's trailer section,
// kept by its decoder until the next request's begin.
func (st *stream) Trailer() []byte { return st.body.Trailer() }

// consume drops n bytes of request body the exchange took.
func (st *stream) consume(n int) {
	if n > 0 && st.c.state != stClosed {
		loop.Consume(st.c.c, n)
		st.in += int64(n)
	}
}

// onData runs when the client sent bytes during the exchange.
func (st *stream) onData() {
	c := st.c
	if st.expectBody && !st.body.Done() {
		// The body keeps coming: the client gets header_read_timeout between pieces.
		st.bodyDeadline = c.lp.l.Now() + c.lp.l.Snapshot().Limits.HeaderTimeout
		st.arm()
	}
	if !st.body.Done() {
		st.ex.OnBody()
		if c.st != st {
			return // the exchange ended
		}
	}
	// Body bytes the exchange cannot take yet (its origin connection is not
	// up), or the next pipelined request: keep them in gnet's buffer, but only
	// so many.
	c.pauseOverBacklog()
}

// BodyExpected implements exchange.Downstream.
func (st *stream) BodyExpected(on bool) {
	st.expectBody = on
	st.bodyDeadline = 0
	if on {
		st.bodyDeadline = st.c.lp.l.Now() + st.c.lp.l.Snapshot().Limits.HeaderTimeout
		st.bodyWindow()
	} else if !st.rateSend {
		st.rateDeadline = 0
	}
	st.arm()
}

// arrived is how many bytes of the request the client sent so far (read or
// waiting in gnet's buffer).
func (st *stream) arrived() int64 { return st.in + int64(st.c.c.InboundBuffered()) }

// taken is how many bytes of the response the client took so far.
func (st *stream) taken() int64 { return st.out - int64(st.c.c.OutboundBuffered()) }

// bodyWindow starts a window of server.min_body_rate: the body the client
// sends from now on is measured.
func (st *stream) bodyWindow() {
	lim := &st.c.lp.l.Snapshot().Limits
	if lim.MinBodyRate <= 0 || st.rateSend {
		return
	}
	st.rateMark = st.arrived()
	st.rateDeadline = st.c.lp.l.Now() + lim.RateWindow
}

// sendWindow starts a window of server.min_send_rate: the response the
// client takes from now on is measured (while it holds some up).
func (st *stream) sendWindow() {
	lim := &st.c.lp.l.Snapshot().Limits
	if lim.MinSendRate <= 0 {
		return
	}
	st.rateSend = true
	st.rateMark = st.taken()
	st.rateDeadline = st.c.lp.l.Now() + lim.RateWindow
}

// rateDue checks the window that ended at now: ok when the client kept up
// the minimum over it (a new window starts), or has nothing left to keep up
// with; false when it was slower.
func (st *stream) rateDue() bool {
	lim := &st.c.lp.l.Snapshot().Limits
	if st.rateSend {
		if st.c.c.OutboundBuffered() == 0 {
			st.rateSend, st.rateDeadline = false, 0 // it caught up
			return true
		}
		if st.taken()-st.rateMark < lim.MinSendRate*lim.RateWindow/1e9 {
			return false
		}
		st.sendWindow()
		return true
	}
	if !st.expectBody || st.body.Done() {
		st.rateDeadline = 0
		return true
	}
	if st.c.reads.Paused() {
		st.bodyWindow() // the gateway holds the body back: not the client's time
		return true
	}
	if st.arrived()-st.rateMark < lim.MinBodyRate*lim.RateWindow/1e9 {
		return false
	}
	st.bodyWindow()
	return true
}

// PauseBody implements exchange.Downstream.
func (st *stream) PauseBody() {
	st.c.pause()
	st.arm()
}

// ResumeBody implements exchange.Downstream.
func (st *stream) ResumeBody() {
	c := st.c
	if !c.reads.Paused() {
		return
	}
	c.resume()
	if st.expectBody {
		st.bodyDeadline = c.lp.l.Now() + c.lp.l.Snapshot().Limits.HeaderTimeout
		st.bodyWindow() // the time the gateway held the body back was not the client's
	}
	st.arm()
}

// arm sets the connection's timer to the stream's earliest one: the body
// timer while the body is expected and not paused by the gateway, the send
// timer while a response waits for the client.
func (st *stream) arm() {
	c := st.c
	d := int64(0)
	if st.expectBody && !c.reads.Paused() && st.bodyDeadline > 0 {
		d = st.bodyDeadline
	}
	if st.sendDeadline > 0 && (d == 0 || st.sendDeadline < d) {
		d = st.sendDeadline
	}
	if st.rateDeadline > 0 && (d == 0 || st.rateDeadline < d) {
		d = st.rateDeadline
	}
	c.setDeadline(d)
}

// onTimer runs when the stream's timer expired.
func (st *stream) onTimer(now int64) {
	if st.sendDeadline > 0 && now >= st.sendDeadline {
		st.ex.OnTimeout(exchange.TimeoutSend)
		return
	}
	if st.rateDeadline > 0 && now >= st.rateDeadline && !st.rateDue() {
		if st.rateSend {
			st.ex.OnTimeout(exchange.TimeoutSendRate)
		} else {
			st.ex.OnTimeout(exchange.TimeoutBodyRate)
		}
		return
	}
	if st.expectBody && !st.c.reads.Paused() && st.bodyDeadline > 0 && now >= st.bodyDeadline {
		st.ex.OnTimeout(exchange.TimeoutBody)
		return
	}
	st.arm() // neither is due (a timer moved): wait for the next
}

// WriteHead implements exchange.Downstream: the head for the client, framed
// for HTTP/1.1 (chunked for a body of unknown length) or for an HTTP/1.0
// client (close-delimited).
func (st *stream) WriteHead(r *httpcodec.Response, h *exchange.Head) {
	lp := st.c.lp
	st.chunked, st.closeAfter = false, false
	switch r.Framing {
	case httpcodec.FramingChunked, httpcodec.FramingUntilClose:
		if st.http10 {
			st.closeAfter = true // an HTTP/1.0 client knows only close-delimited bodies
		} else {
			st.chunked = true
		}
	}
	ri := httpcodec.ResponseInfo{RequestID: h.RequestID, Via: h.Via, Chunked: st.chunked,
		Close: h.Close || st.closeAfter, HTTP10: st.http10, Upgrade: h.Upgrade, Trailers: h.Trailers && st.chunked}
	if lp.pendingOf == st {
		// Its answer so far was never sent (the exchange failed before
		// Flush and answers with an error instead): not counted out.
		st.out -= int64(len(lp.pending))
	}
	head := httpcodec.AppendClientResponse(lp.l.Buf[:0], r, &ri)
	lp.pending, lp.pendingOf = h.AppendStatusHeaders(head), st
	st.out += int64(len(lp.pending)) // bytes out count what the stream wrote, pending too
}

// WriteBody implements exchange.Downstream. A big piece is written at once
// (after what is pending) rather than copied.
func (st *stream) WriteBody(p []byte) {
	if len(p) == 0 {
		return
	}
	lp := st.c.lp
	out := lp.pending
	if out == nil {
		out = lp.l.Buf[:0]
	}
	was := len(out)
	if st.chunked {
		out = httpcodec.AppendChunkHeader(out, len(p))
	}
	if len(p) < bigPiece {
		out = append(out, p...)
		if st.chunked {
			out = append(out, crlf...)
		}
		lp.pending, lp.pendingOf = out, st
		st.out += int64(len(out) - was)
		return
	}
	l := lp.l
	l.Iov = append(l.Iov[:0], out, p)
	if st.chunked {
		l.Iov = append(l.Iov, crlf)
	}
	n := len(out) - was + len(p)
	if st.chunked {
		n += len(crlf)
	}
	lp.pending, lp.pendingOf = out[:0], nil
	st.started = true
	st.out += int64(n)
	st.c.uncork()               // what it gathered goes first
	if st.c.state != stClosed { // (the uncork's write may have closed it)
		_, _ = st.c.c.Writev(l.Iov)
		st.c.account()
	}
}

// EndBody implements exchange.Downstream: a chunked response ends with the
// last chunk and the trailer fields that may be passed on; a response framed
// otherwise (Content-Length, or close-delimited for an HTTP/1.0 client) has
// no place for trailers and drops them.
func (st *stream) EndBody(trailer []byte) {
	st.ended = true
	if !st.chunked {
		return
	}
	lp := st.c.lp
	if lp.pending == nil {
		lp.pending = lp.l.Buf[:0]
	}
	lp.pendingOf = st
	was := len(lp.pending)
	if len(trailer) == 0 {
		lp.pending = append(lp.pending, lastChunk...)
	} else {
		lp.pending = append(lp.pending, "0\r\n"...)
		lp.pending = httpcodec.AppendTrailerFields(lp.pending, trailer, nil)
		lp.pending = append(lp.pending, crlf...)
	}
	st.out += int64(len(lp.pending) - was)
}

// Flush implements exchange.Downstream.
func (st *stream) Flush() bool {
	lp, c := st.c.lp, st.c
	out := lp.pending
	lp.pending, lp.pendingOf = nil, nil
	lp.l.Buf = out[:0] // keep what the buffer grew to
	if c.state == stClosed || c.st != st {
		return false
	}
	if len(out) > 0 {
		st.started = true
		if st.ended {
			c.write(out) // a whole answer: it may wait for the callback's end
		} else {
			c.uncork() // a response streaming: it goes now, behind what was gathered
			if c.state != stClosed {
				_, _ = c.c.Write(out)
			}
		}
		c.account()
	}
	return c.state != stClosed && c.st == st
}

// WriteInterim implements exchange.Downstream: the 1xx head goes at once,
// behind what the connection's earlier responses left in its send buffer
// (a pipelined request's interim answer follows the answers before it, as
// its final one will); nothing goes to an HTTP/1.0 client (RFC 9110 15.2).
// It is no part of the response: started stays false (lp.pending is not
// used: nothing of this response is pending before its head), and it counts
// in the bytes out and in the node's buffered bytes (account) as any write.
func (st *stream) WriteInterim(r *httpcodec.Response, h *exchange.Head) bool {
	c, lp := st.c, st.c.lp
	if st.http10 || c.state == stClosed || c.st != st {
		return false
	}
	ri := httpcodec.ResponseInfo{RequestID: h.RequestID, Via: h.Via}
	out := httpcodec.AppendClientResponse(lp.l.Buf[:0], r, &ri)
	lp.l.Buf = out[:0] // keep what the buffer grew to
	st.out += int64(len(out))
	c.write(out)
	c.account()
	return true
}

// Buffered implements exchange.Downstream.
func (st *stream) Buffered() int { return st.c.c.OutboundBuffered() + st.c.corked() }

// WaitWritable implements exchange.Downstream: the client gets idle_timeout to
// take more of the response.
func (st *stream) WaitWritable() {
	st.sendProgress()
	st.c.watchWritable()
}

// sendProgress restarts the send timer: the client took part of the response.
// The first wait starts a send-rate window, which runs on until the client
// caught up.
func (st *stream) sendProgress() {
	st.sendDeadline = st.c.lp.l.Now() + st.c.lp.l.Snapshot().Limits.IdleTimeout
	if !st.rateSend {
		st.sendWindow()
	}
	st.arm()
}

// writable runs when the client took enough of the response: the send timer
// stops and the exchange goes on.
func (st *stream) writable() {
	st.sendDeadline = 0
	st.arm()
	st.ex.OnWritable()
}

// Started implements exchange.Downstream.
func (st *stream) Started() bool { return st.started }

// Bytes implements exchange.Downstream.
func (st *stream) Bytes() (in, out int64) { return st.in, st.out }

// Done implements exchange.Downstream.
func (st *stream) Done(closeAfter bool) {
	st.c.done(closeAfter || st.closeAfter)
}

// Abort implements exchange.Downstream.
func (st *stream) Abort(reset bool) {
	c := st.c
	c.lp.freeStream(st)
	c.st = nil
	if reset && c.state != stClosed {
		// SO_LINGER 0: close sends a reset and frees the socket's buffers now.
		_ = unix.SetsockoptLinger(int(c.fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	c.close()
}

// Hijack implements exchange.Downstream: the connection leaves HTTP for good
// (a push connection takes it); it is no longer this loop's client.
func (st *stream) Hijack() (gnet.Conn, bool) {
	c := st.c
	lp := c.lp
	lp.freeStream(st)
	c.st = nil
	if !c.leave() { // a push connection's own queue is bounded by push.* settings
		return nil, false // the answers before went and the write closed it
	}
	return c.c, true
}

// leave takes the connection out of this room for good (another kind takes
// its gnet.Conn: a push connection, a tunnel, HTTP/2 after an h2c preface):
// no more timers, write wake-ups or paused reads here; it keeps its place in
// the node's counts, which the new kind carries on.
func (c *Conn) leave() bool {
	c.uncork() // the answers before go first
	if c.state == stClosed {
		return false // the write failed: OnClose ended it
	}
	lp := c.lp
	lp.conns.Remove(c)
	lp.wheel.Cancel(c)
	c.writable.Release(lp.l, int(c.fd))
	if c.reads.Paused() {
		c.resume()
	}
	c.state = stClosed
	c.account()
	return true
}
