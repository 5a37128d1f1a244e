package server

import (
	"fmt"

	"gozer/filters"
	"gozer/gateway/httpcodec"
)

// bigPiece is the body piece size from which a response piece is written on its own
// instead of being copied into the coalescing buffer.
const bigPiece = 16 << 10

// pumpResponse moves what the origin sent to the client: the head first (re-framed,
// hop-by-hop headers dropped), then body pieces, coalesced into as few writes as
// possible. It stops the origin's reads while the client's buffer is over the bound.
func (ex *exchange) pumpResponse() {
	u, cl, l := ex.up, ex.cl, ex.l
	if u == nil || cl == nil || u.closed && !ex.originEOF {
		return
	}
	buf, _ := u.c.Peek(-1)
	off := 0
	out := l.wbuf[:0]
	if !ex.respHeadDone {
		for {
			n, err := ex.respScan.Scan(buf[off:], httpcodec.Limits{MaxRequestLine: maxRespHeader, MaxHeaderBytes: maxRespHeader})
			if err == nil && n > 0 {
				// Lazily: fasthttp parses the headers only if an outbound filter reads them.
				err = ex.resp.ParseLazy(buf[off:off+n], ex.req.IsHead)
			}
			if err != nil {
				ex.fail(filters.OriginBadResponse, fmt.Sprintf("bad response head from %s: %v", u.server.Addr, err))
				return
			}
			if n == 0 {
				if ex.originEOF {
					ex.fail(filters.OriginBadResponse, fmt.Sprintf("%s closed the connection inside the response head", u.server.Addr))
					return
				}
				_, _ = u.c.Discard(off)
				return
			}
			off += n
			if st := ex.resp.Status; st >= 100 && st < 200 {
				if st == 101 {
					ex.fail(filters.OriginBadResponse, "origin switched protocols without an upgrade request")
					return
				}
				// Interim answers (100 Continue, 103 Early Hints): the gateway answered
				// 100-continue itself, so they are dropped.
				ex.resp.Reset()
				ex.respScan.Reset()
				continue
			}
			break
		}
		ex.respHeadDone = true
		ex.status = ex.resp.Status
		if isRetriableStatus(ex.status) && ex.reqDone && isIdempotent(ex.req.Header.Method()) && ex.canRetry() && ex.retryAllowed() {
			// 502/503/504 before any byte reached the client: another server may do better.
			ex.endAttempt(false)
			ex.up = nil
			u.abort()
			ex.respHeadDone, ex.status, ex.originEOF = false, 0, false
			ex.resp.Reset()
			ex.respScan.Reset()
			ex.attempt()
			return
		}
		if ex.chain != nil {
			if err := ex.resp.Materialize(); err != nil {
				ex.fail(filters.OriginBadResponse, fmt.Sprintf("bad response head from %s: %v", u.server.Addr, err))
				return
			}
			if ex.chain.NeedsResponseBody() && ex.resp.Framing != httpcodec.FramingNone &&
				!(ex.resp.Framing == httpcodec.FramingLength && ex.resp.ContentLength > int64(l.limit.maxFilterBody)) {
				// An outbound filter reads the body: collect it, run the filters at its end.
				ex.respCollect = true
				ex.fc.RespBody = ex.fc.RespBody[:0]
			} else if !ex.outbound() {
				return
			}
		}
		switch ex.resp.Framing {
		case httpcodec.FramingLength:
			ex.respRemaining = ex.resp.ContentLength
		case httpcodec.FramingChunked, httpcodec.FramingUntilClose:
			if ex.req.HTTP10 {
				ex.closeAfter = true // an HTTP/1.0 client knows only close-delimited bodies
			} else {
				ex.chunkedOut = true
			}
		}
		if !ex.reqDone || cl.drainClose {
			ex.closeAfter = true
		}
		if !ex.respCollect {
			out = ex.appendHead(out)
		}
	}

	done, ok := false, true
	switch ex.resp.Framing {
	case httpcodec.FramingNone:
		done = true
	case httpcodec.FramingLength:
		n := len(buf) - off
		if int64(n) > ex.respRemaining {
			n = int(ex.respRemaining)
		}
		out, ok = ex.emit(out, buf[off:off+n])
		off += n
		ex.respRemaining -= int64(n)
		done = ex.respRemaining == 0
	case httpcodec.FramingChunked:
		for ok && off < len(buf) {
			consumed, data, last, err := ex.respChunks.Next(buf[off:])
			off += consumed
			if err != nil {
				_, _ = u.c.Discard(off)
				ex.fail(filters.OriginBadResponse, fmt.Sprintf("bad chunked body from %s: %v", u.server.Addr, err))
				return
			}
			if len(data) > 0 {
				out, ok = ex.emit(out, data)
			}
			if last {
				done = true
				break
			}
			if consumed == 0 {
				break
			}
		}
	case httpcodec.FramingUntilClose:
		out, ok = ex.emit(out, buf[off:])
		off = len(buf)
		done = ex.originEOF
	}
	if !ok {
		return // the client went away (or a filter answered instead); the exchange is over
	}
	if done && ex.respCollect {
		// The whole body is here: the filters see it, may replace it, and it goes
		// out with a Content-Length.
		ex.respCollect = false
		ex.fc.RespBodyOK = true
		if !ex.outbound() {
			return
		}
		body := ex.fc.RespBody
		ex.resp.Framing, ex.resp.ContentLength, ex.resp.HasContentLength = httpcodec.FramingLength, int64(len(body)), true
		ex.chunkedOut = false
		out = append(ex.appendHead(out), body...)
	}
	if done && ex.chunkedOut {
		out = append(out, lastChunk...)
	}
	leftover := done && off < len(buf)
	_, _ = u.c.Discard(off)
	if len(out) > 0 {
		ex.respSent = true
		ex.bytesOut += int64(len(out))
		if !cl.write(out) {
			return
		}
	}
	if done {
		ex.finish(leftover)
		return
	}
	if cl.c.OutboundBuffered() > l.limit.maxBuffered {
		// The client is the slow side now: the origin's read timer stops, and the
		// client gets idle_timeout to take more of the response.
		u.pause()
		cl.deadline = l.now + l.limit.idleTimeout
		cl.watchDrain()
	}
}

// emit appends one body piece to out in the client's framing. A big piece is written
// at once (after what out holds) rather than copied; ok is false if the client is gone.
func (ex *exchange) emit(out, data []byte) ([]byte, bool) {
	if len(data) == 0 {
		return out, true
	}
	if ex.respCollect {
		return ex.collect(out, data)
	}
	cl := ex.cl
	if ex.chunkedOut {
		out = httpcodec.AppendChunkHeader(out, len(data))
	}
	if len(data) < bigPiece {
		out = append(out, data...)
		if ex.chunkedOut {
			out = append(out, crlf...)
		}
		return out, true
	}
	l := ex.l
	l.iov = append(l.iov[:0], out, data)
	if ex.chunkedOut {
		l.iov = append(l.iov, crlf)
	}
	n := len(out) + len(data)
	if ex.chunkedOut {
		n += len(crlf)
	}
	ex.respSent = true
	ex.bytesOut += int64(n)
	if cl.state == stClosed {
		return out[:0], false
	}
	_, _ = cl.c.Writev(l.iov)
	return out[:0], cl.state != stClosed
}

// finish ends a complete response: the origin connection goes back to its pool when
// both sides are at a message boundary, and the client waits for its next request.
func (ex *exchange) finish(leftover bool) {
	u, cl := ex.up, ex.cl
	ex.up = nil
	if ex.cause.Name == "" {
		ex.cause = filters.Success
	}
	ex.endAttempt(ex.status < 500)
	ex.logAccess()
	if u != nil {
		if ex.resp.KeepAlive && ex.reqDone && !leftover && !ex.originEOF {
			u.release()
		} else {
			u.abort()
		}
	}
	if cl != nil {
		cl.finishExchange(ex.closeAfter)
	}
}

// upstreamClosed handles the origin connection closing under a live exchange.
func (ex *exchange) upstreamClosed(u *upstream, err error) {
	if ex.respHeadDone && ex.resp.Framing == httpcodec.FramingUntilClose {
		ex.originEOF = true // the close is the end of this body
		ex.pumpResponse()
		return
	}
	if !ex.respHeadDone && u.c.InboundBuffered() > 0 {
		ex.originEOF = true // a complete small response may sit unread behind a close
		ex.pumpResponse()
		if ex.cl == nil || ex.up != u {
			return
		}
	}
	ex.up = nil
	what := "closed the connection"
	if isReset(err) {
		what = "reset the connection"
	}
	switch {
	case !ex.respHeadDone && !u.gotBytes && u.reused && !ex.staleRetried && isIdempotent(ex.req.Header.Method()):
		// A pooled connection the origin closed while it sat idle: the request most
		// likely never reached it. One free retry, on a fresh attempt, as browsers and
		// Go's transport do; it does not count against the origin's retries.
		ex.staleRetried = true
		ex.attempts--
		ex.endAttempt(true)
		ex.upstreamFailed(filters.OriginReset, fmt.Sprintf("%s %s a reused connection before responding", u.server.Addr, what), true)
	case !ex.respHeadDone && !u.gotBytes:
		ex.upstreamFailed(filters.OriginReset, fmt.Sprintf("%s %s before responding", u.server.Addr, what), true)
	case !ex.respHeadDone:
		ex.fail(filters.OriginBadResponse, fmt.Sprintf("%s %s inside the response head", u.server.Addr, what))
	default:
		ex.fail(filters.OriginClosedMidBody, fmt.Sprintf("%s %s mid-body", u.server.Addr, what))
	}
}

// upstreamFailed retries on another server when allowed, else answers the error.
func (ex *exchange) upstreamFailed(cause filters.Cause, reason string, retriable bool) {
	if ex.cl == nil {
		return
	}
	if retriable && ex.canRetry() {
		if !(ex.staleRetried && !ex.attemptOpen) && !ex.retryAllowed() {
			ex.fail(cause, reason+" (retry budget exhausted)")
			return
		}
		ex.endAttempt(false)
		ex.l.srv.log.Debug().Bytes("request_id", ex.id).Str("reason", reason).Int("attempt", ex.attempts).Msg("retrying on another server")
		ex.respScan.Reset()
		ex.resp.Reset()
		ex.originEOF = false
		ex.attempt()
		return
	}
	ex.fail(cause, reason)
}

func isIdempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// appendHead appends the client's response head for ex.resp.
func (ex *exchange) appendHead(out []byte) []byte {
	ri := httpcodec.ResponseInfo{RequestID: ex.id, Via: ex.l.srv.cfg.Server.Via, Chunked: ex.chunkedOut, Close: ex.closeAfter, HTTP10: ex.req.HTTP10}
	return ex.appendStatusHeaders(httpcodec.AppendClientResponse(out, &ex.resp, &ri))
}

// outbound runs the outbound filters on the origin's response. A fatal one drops the
// origin's answer for a 500; outbound then reports false (the exchange is answered).
func (ex *exchange) outbound() bool {
	ex.runOutbound()
	if !ex.fc.Failed {
		return true
	}
	if u := ex.up; u != nil {
		ex.up = nil
		u.abort()
	}
	ex.chain = nil // the outbound filters already ran on this response
	ex.closeAfter = ex.closeAfter || !ex.reqDone
	ex.answer(ex.fc.FailCause.Status, ex.fc.FailCause, nil, nil)
	return false
}

// collect keeps a response body piece for the outbound filters. A body that outgrows
// filters.max_body_bytes is not theirs to see: they run on the head alone and the
// body streams on.
func (ex *exchange) collect(out, data []byte) ([]byte, bool) {
	fc := &ex.fc
	if len(fc.RespBody)+len(data) <= ex.l.limit.maxFilterBody {
		fc.RespBody = append(fc.RespBody, data...)
		return out, true
	}
	ex.respCollect = false
	if !ex.outbound() {
		return out, false
	}
	out = ex.appendHead(out)
	out, ok := ex.emit(out, fc.RespBody)
	if !ok {
		return out, false
	}
	return ex.emit(out, data)
}
