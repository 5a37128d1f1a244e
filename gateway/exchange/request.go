package exchange

import (
	"gozer/filters"
	"gozer/gateway/httpcodec"
)

var (
	crlf      = []byte("\r\n")
	lastChunk = []byte(httpcodec.FinalChunk)
)

// sendRequest writes the request head to the origin connection, then any
// body kept for replay, then whatever body the client already sent.
func (ex *Exchange) sendRequest() {
	c, l := ex.try.conn, ex.lp.l
	c.ArmRead()
	if !c.Write(ex.try.fwd) {
		return // OriginClosed took over
	}
	chunked := ex.req.Framing == httpcodec.FramingChunked
	if r := ex.body.replay; len(r) > 0 {
		if chunked {
			l.Iov = append(l.Iov[:0], httpcodec.AppendChunkHeader(l.ChunkHdr[:0], len(r)), r, crlf)
			if !c.Writev(l.Iov) {
				return
			}
		} else if !c.Write(r) {
			return
		}
	}
	if ex.body.done {
		if chunked {
			c.Write(ex.finalChunk())
		}
		return
	}
	ex.ds.ResumeBody()
	ex.pumpRequestBody()
}

// pumpRequestBody moves request body from the client to the origin (re-framed
// as chunks when chunked) until the client has no more now or the origin's
// side is full. The origin is the slow side then: the client's body waits (no
// body timer runs: the origin's read timer governs) until the origin drained.
func (ex *Exchange) pumpRequestBody() {
	c, ds := ex.try.conn, ex.ds
	if ex.body.done || c == nil || !ex.try.ready || ds == nil {
		return
	}
	// A failed write closes the origin connection inside gnet; while pumping,
	// OriginClosed only records it, and it is handled below, once the client's
	// buffer agrees with what was sent.
	ex.try.pumping = true
	before := ex.body.decoded
	done, err := ds.ReadBody(ex.bodySink)
	if err == nil && ex.body.err == nil {
		ex.flushGathered()
	}
	ex.lp.gather = ex.lp.gather[:0]
	ex.try.pumping = false
	if err == nil {
		err = ex.body.err
	}
	if err != nil {
		ex.failBody(err)
		return
	}
	if closeErr := ex.try.closeErr; closeErr != nil {
		ex.try.closeErr = nil
		ex.originClosed(closeErr)
		return
	}
	if done && !ex.body.done {
		ex.body.done = true
		if ex.req.Framing == httpcodec.FramingChunked && !c.Write(ex.finalChunk()) {
			return
		}
	}
	if (ex.body.decoded > before || done) && !c.GotBytes() {
		// The origin answers after the body: its read timer starts at the last piece.
		c.ArmRead()
	}
	if ex.body.done {
		ds.BodyExpected(false)
		return
	}
	if c.OutboundBuffered() > ex.snap.Limits.MaxBuffered {
		ds.PauseBody()
		if err := c.WatchWritable(); err != nil {
			ex.fail(filters.LocalInternal, err.Error())
		}
	}
}

// finalChunk ends a chunked request body for the origin: the last chunk and
// the trailer fields of the client's that may be passed on
// (httpcodec.Request.AppendTrailerFields: none that the gateway controls or
// that the head carries, so none can override what the inbound filters and
// the gateway decided there). A request body framed by its length has
// no place for trailers: an HTTP/2 request with content-length loses them.
// The bytes are valid until the exchange's next finalChunk.
func (ex *Exchange) finalChunk() []byte {
	var t []byte
	if ex.ds != nil {
		t = ex.ds.Trailer()
	}
	if len(t) == 0 {
		return lastChunk
	}
	b := append(ex.body.final[:0], "0\r\n"...)
	b = ex.req.AppendTrailerFields(b, t, ex.try.fwd, nil)
	if len(b)-len("0\r\n")+len("\r\n") > httpcodec.DefaultMaxTrailerBytes {
		// "name: value" is a byte longer a line than a client's "name:value":
		// a section the gateway took within 8 KiB goes out within 8 KiB too,
		// or an origin (Gozer's own decoder among them) would refuse it.
		b = ex.req.AppendTrailerFields(b[:len("0\r\n")], t, ex.try.fwd, httpcodec.CompactFields)
	}
	ex.body.final = append(b, "\r\n"...)
	return ex.body.final
}

// sendPiece writes one piece of decoded body to the origin (as a chunk when
// chunked) and keeps it for replay while it fits; false stops the pump (the
// origin connection failed, or the body went over server.max_request_body).
func (ex *Exchange) sendPiece(p []byte) bool {
	if !ex.underMaxBody(len(p)) {
		return false
	}
	ex.body.decoded += int64(len(p))
	if !ex.body.replayLost {
		if len(ex.body.replay)+len(p) <= ex.try.origin.ReplayBodyBytes {
			ex.body.replay = append(ex.body.replay, p...)
		} else {
			ex.body.replayLost = true
			ex.body.replay = ex.body.replay[:0]
		}
	}
	if ex.req.Framing == httpcodec.FramingChunked {
		return ex.gatherPiece(p)
	}
	return ex.try.conn.Write(p)
}

// gatherMax bounds the pieces of a chunked body gathered into one chunk.
const gatherMax = 16 << 10

// gatherPiece sends p, a piece of a chunked body, as part of one chunk with
// the pieces around it: pieces are gathered (Loop.gather) until gatherMax
// or the end of the pump (flushGathered), so a client that sends its body a
// byte per chunk costs one write to the origin per read of it, not one per
// chunk (2 million one-byte chunks took 12 s, a writev each, and held the
// loop's other clients for up to half a second; TestChunkedBodyTinyChunks).
// A piece of gatherMax or more goes as a chunk of its own, uncopied.
func (ex *Exchange) gatherPiece(p []byte) bool {
	lp := ex.lp
	if len(lp.gather)+len(p) <= gatherMax {
		lp.gather = append(lp.gather, p...)
		return true
	}
	if !ex.flushGathered() {
		return false
	}
	if len(p) < gatherMax {
		lp.gather = append(lp.gather, p...)
		return true
	}
	l := lp.l
	l.Iov = append(l.Iov[:0], httpcodec.AppendChunkHeader(l.ChunkHdr[:0], len(p)), p, crlf)
	return ex.try.conn.Writev(l.Iov)
}

// flushGathered writes the pieces gatherPiece gathered as one chunk; false
// when the write failed (the origin connection closed).
func (ex *Exchange) flushGathered() bool {
	lp := ex.lp
	if len(lp.gather) == 0 {
		return true
	}
	l := lp.l
	l.Iov = append(l.Iov[:0], httpcodec.AppendChunkHeader(l.ChunkHdr[:0], len(lp.gather)), lp.gather, crlf)
	lp.gather = lp.gather[:0]
	return ex.try.conn.Writev(l.Iov)
}

// bufferBody receives the request body into the replay buffer before the
// request takes an origin connection (and a bulkhead slot): all of a body up
// to the origin's request_buffer, the first request_buffer bytes of a bigger
// one. A slow upload then costs the origin nothing while it trickles in (the
// downstream's minimum body rate ends it), and a body received whole can be
// sent again on a retry. This is why nginx buffers request bodies before it
// picks an upstream.
func (ex *Exchange) bufferBody() {
	done, err := ex.ds.ReadBody(ex.buffer)
	if err == nil {
		err = ex.body.err
	}
	if err != nil {
		ex.failBody(err)
		return
	}
	if done {
		ex.body.done = true
		ex.ds.BodyExpected(false)
	} else if len(ex.body.replay) < ex.try.origin.RequestBuffer {
		return // more to come: OnBody calls again
	}
	ex.body.buffering = false
	ex.proceed(ex.try.origin)
}

// bufferPiece keeps one piece of request body before the request goes to its
// origin; false once request_buffer bytes are here (the piece is kept all the
// same: a piece given to a sink is consumed).
func (ex *Exchange) bufferPiece(p []byte) bool {
	if !ex.underMaxBody(len(p)) {
		return false
	}
	ex.body.decoded += int64(len(p))
	ex.body.replay = append(ex.body.replay, p...)
	return len(ex.body.replay) < ex.try.origin.RequestBuffer
}

// underMaxBody checks a chunked body (whose length no header announced)
// against server.max_request_body as its pieces come; false, with body.err
// set, past it.
func (ex *Exchange) underMaxBody(n int) bool {
	if max := ex.snap.Limits.MaxBody; max > 0 && ex.req.Framing == httpcodec.FramingChunked && ex.body.decoded+int64(n) > max {
		ex.body.err = &Failure{filters.ClientBodyTooLarge, "chunked body over server.max_request_body"}
		return false
	}
	return true
}

// failBody answers a request whose body turned out bad, too large or too slow.
func (ex *Exchange) failBody(err error) {
	cause, reason := causeOf(err)
	ex.out.closeAfter = true
	ex.fail(cause, reason)
}
