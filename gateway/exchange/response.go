package exchange

import (
	"fmt"

	"gozer/filters"
	"gozer/gateway/httpcodec"
	"gozer/gateway/loop"
	"gozer/gateway/origin"
)

// maxRespHeader bounds an origin's response head.
const maxRespHeader = 64 << 10

// pumpResponse moves what the origin sent to the client: the head first
// (re-framed, hop-by-hop headers dropped), then body pieces, handed to the
// downstream to coalesce into as few writes as it can. It stops the origin's
// reads while the client's side holds more than the bound.
func (ex *Exchange) pumpResponse() {
	c, ds := ex.try.conn, ex.ds
	if c == nil || ds == nil || c.Closed() && !ex.out.originEOF {
		return
	}
	buf := c.Peek()
	off := 0
	if !ex.out.headDone {
		n, ok := ex.responseHead(buf)
		if !ok {
			return // answered, retried, or the head is not complete yet
		}
		off = n
	}
	body := buf[off:]
	q := ex.slowQuantum()
	if q > 0 && len(body) > q {
		body = body[:q] // an injected slow body (faults.go)
	}
	done, n, ok := ex.relayBody(body)
	off += n
	if !ok {
		return // the exchange moved on (failed, or a filter answered instead)
	}
	if done && ex.out.collecting {
		// The whole body is here: the filters see it, may replace it, and it goes
		// out with a Content-Length; but for an unchanged body with trailers,
		// which stays chunked so that they follow it, when the client can take
		// them (an HTTP/1.0 client cannot: chunked, it would get a
		// close-delimited body, and lose keep-alive, for nothing).
		ex.out.collecting = false
		ex.flt.fc.RespBodyOK = true
		if !ex.outbound() {
			return
		}
		ex.out.filtered = ex.flt.fc.RespBodySet
		body := ex.flt.fc.RespBody
		if ex.out.filtered || ex.out.body.Trailer() == nil || ex.req.HTTP10 {
			ex.resp.Framing, ex.resp.ContentLength, ex.resp.HasContentLength = httpcodec.FramingLength, int64(len(body)), true
		}
		ex.startCompression()
		ds.WriteHead(&ex.resp, ex.head())
		if !ex.writeBody(body) {
			return // the client went away during the write
		}
	}
	if done {
		if !ex.endBody() {
			return
		}
	} else if n > 0 && !ex.flushBody() {
		return
	}
	leftover := done && off < len(buf)
	c.Discard(off)
	if !ds.Flush() {
		return // the client is gone; OnGone ended the exchange
	}
	if done {
		ex.finish(leftover)
		return
	}
	if q > 0 && n > 0 {
		ex.throttle(c)
		return
	}
	if ds.Buffered() > loop.PauseAt(ex.lp.l.Shared.SendAllowance(ex.snap.Limits.MaxBuffered)) {
		// The client is the slow side now: the origin's reads pause (its read
		// timer stops), and the client must take the response at
		// server.min_send_rate, with progress within server.idle_timeout.
		if !ex.park() {
			return
		}
		c.Pause()
		ds.WaitWritable()
	}
}

// park counts the exchange's origin connection as held behind a slow client.
// Slow readers may hold at most half of a server's connections on a loop
// (max_connections_per_server), so that readers, however slow and however
// many addresses they come from, cannot take an origin's connections from
// everyone else; the response that would hold one more is ended (false).
func (ex *Exchange) park() bool {
	if ex.out.parked {
		return true
	}
	srv, o := ex.try.server, ex.try.origin
	share := max(1, o.MaxConnsPerServer/2)
	lp := ex.lp
	if lp.parked[srv] >= share {
		reason := fmt.Sprintf("origin %s: %d connections to %s held by slow readers on this loop (half of max_connections_per_server)",
			o.Name, share, srv.Addr)
		ex.penalize()
		ex.stopSending(filters.LocalSlowReaders, reason)
		return false
	}
	if lp.parked == nil {
		lp.parked = make(map[*origin.Server]int)
	}
	lp.parked[srv]++
	lp.l.Shared.Parked.Add(1)
	ex.out.parked, ex.out.parkedAt = true, srv
	return true
}

// unpark gives the parked origin connection's place back.
func (ex *Exchange) unpark() {
	if !ex.out.parked {
		return
	}
	lp, srv := ex.lp, ex.out.parkedAt
	if lp.parked[srv]--; lp.parked[srv] <= 0 {
		delete(lp.parked, srv)
	}
	lp.l.Shared.Parked.Add(-1)
	ex.out.parked, ex.out.parkedAt = false, nil
}

// responseHead reads the origin's response head at the start of buf: it
// passes interim answers on (interim) or skips them, retries a 502/503/504
// on another server when allowed, runs the outbound filters, and writes the
// client's head (unless a filter collects the body first). It returns how
// many bytes of buf the head took; ok is false when it has nothing to go on
// with (the head is incomplete, or the exchange failed or retried).
func (ex *Exchange) responseHead(buf []byte) (int, bool) {
	c := ex.try.conn
	off := 0
	for {
		n, err := ex.out.scan.Scan(buf[off:], httpcodec.Limits{MaxRequestLine: maxRespHeader, MaxHeaderBytes: maxRespHeader})
		if err == nil && n > 0 {
			// Lazily: fasthttp parses the headers only if an outbound filter reads them.
			err = ex.resp.ParseLazy(buf[off:off+n], ex.req.IsHead)
		}
		if err != nil {
			ex.fail(filters.OriginBadResponse, fmt.Sprintf("bad response head from %s: %v", c.Server().Addr, err))
			return 0, false
		}
		if n == 0 {
			if ex.out.originEOF {
				ex.fail(filters.OriginBadResponse, fmt.Sprintf("%s closed the connection inside the response head", c.Server().Addr))
				return 0, false
			}
			c.Discard(off)
			return 0, false
		}
		off += n
		if st := ex.resp.Status; st >= 100 && st < 200 {
			if st == 101 {
				if ex.out.ws {
					ex.openTunnel(buf[off-n:off], off)
					return 0, false
				}
				ex.fail(filters.OriginBadResponse, "origin switched protocols without an upgrade request")
				return 0, false
			}
			// Interim answers: 103 Early Hints and the like go on to the client
			// (interim.go); 100 Continue does not (the gateway answered the
			// client's 100-continue itself).
			if !ex.interim() {
				return 0, false // the client went away during the write
			}
			ex.resp.Reset()
			ex.out.scan.Reset()
			continue
		}
		break
	}
	ex.out.headDone = true
	ex.try.headAt = ex.lp.l.Now()
	ex.log.status = ex.resp.Status
	if isRetriableStatus(ex.log.status) && ex.retryOrFail(failStatus, c.Reused(), filters.Success, "") {
		return 0, false // another server may do better
	}
	// An upgrade the origin answered with a final status is no tunnel: its
	// slot under websocket.max_tunnels goes back before the client hears the
	// answer, so a client retrying at once is not refused for it (from the
	// exchange's end it could come a callback late, on another loop).
	ex.releaseTunnelSlot()
	if !ex.startResponse() {
		return 0, false
	}
	return off, true
}

// lazyHeadChain is a filters.Chain whose outbound filters may be given an
// unparsed response head (filters/lua.Chain: when they are all Lua filters);
// it spares the fasthttp parse of every response head (Response.Materialize).
type lazyHeadChain interface{ LazyResponseHead() bool }

// headForFilters readies the origin's response head for the outbound
// filters: parsed into Response.Header unless they all read the lazy head
// (lazyHeadChain); false when the head does not parse (the exchange failed).
func (ex *Exchange) headForFilters() bool {
	if lz, ok := ex.flt.chain.(lazyHeadChain); ok && lz.LazyResponseHead() {
		return true
	}
	if err := ex.resp.Materialize(); err != nil {
		ex.fail(filters.OriginBadResponse, fmt.Sprintf("bad response head from %s: %v", ex.try.server.Addr, err))
		return false
	}
	return true
}

// startResponse decides what happens with the origin's response head: the
// outbound filters run on it now, or once its body was collected for them;
// then the client's head is written.
func (ex *Exchange) startResponse() bool {
	r := &ex.resp
	if ex.flt.chain != nil {
		if !ex.headForFilters() {
			return false
		}
		if ex.flt.chain.NeedsResponseBody() && r.Framing != httpcodec.FramingNone &&
			!(r.Framing == httpcodec.FramingLength && r.ContentLength > int64(ex.snap.Limits.MaxFilterBody)) {
			// An outbound filter reads the body: collect it, run the filters at its end.
			ex.out.collecting = true
			ex.flt.fc.RespBody = ex.flt.fc.RespBody[:0]
		} else if !ex.outbound() {
			return false
		}
	}
	ex.out.body.Reset(r.Framing, r.ContentLength, true) // the origin's framing, before compression changes the client's
	if !ex.body.done {
		ex.out.closeAfter = true // the rest of the request body is still coming: the stream is lost
	}
	if !ex.out.collecting {
		ex.startCompression()
		ex.ds.WriteHead(r, ex.head())
	}
	return true
}

// relayBody hands the body pieces at the start of buf to the client (or to
// the collecting filters). It returns whether the body is complete, how many
// bytes of buf it took, and false when the exchange moved on.
func (ex *Exchange) relayBody(buf []byte) (done bool, n int, ok bool) {
	b := &ex.out.body
	off := 0
	for off < len(buf) && !b.Done() {
		consumed, data, err := b.Next(buf[off:])
		off += consumed
		if err != nil {
			ex.try.conn.Discard(off)
			ex.fail(filters.OriginBadResponse, fmt.Sprintf("bad chunked body from %s: %v", ex.try.server.Addr, err))
			return false, off, false
		}
		if len(data) > 0 && !ex.emit(data) {
			return false, off, false
		}
		if consumed == 0 {
			break
		}
	}
	done = b.Done() || ex.resp.Framing == httpcodec.FramingUntilClose && ex.out.originEOF
	return done, off, true
}

// emit hands one body piece to the client, or keeps it for the outbound
// filters that read the body; false when the exchange moved on.
func (ex *Exchange) emit(data []byte) bool {
	if !ex.out.collecting {
		return ex.writeBody(data)
	}
	fc := &ex.flt.fc
	if len(fc.RespBody)+len(data) <= ex.snap.Limits.MaxFilterBody {
		fc.RespBody = append(fc.RespBody, data...)
		return true
	}
	// A body that outgrows filters.max_body_bytes is not the filters' to see:
	// they run on the head alone and the body streams on.
	ex.out.collecting = false
	if !ex.outbound() {
		return false
	}
	ex.startCompression()
	ex.ds.WriteHead(&ex.resp, ex.head())
	return ex.writeBody(fc.RespBody) && ex.writeBody(data)
}

// finish ends a complete response: the origin connection goes back to its pool
// when both sides are at a message boundary, and the client goes on.
func (ex *Exchange) finish(leftover bool) {
	c := ex.try.conn
	ex.try.conn = nil
	if ex.log.cause.Name == "" {
		ex.log.cause = filters.Success
	}
	ex.endAttempt(ex.log.status < 500)
	ex.logAccess()
	if c != nil {
		if ex.resp.KeepAlive && ex.body.done && !leftover && !ex.out.originEOF {
			c.Release()
		} else {
			c.Abort()
		}
	}
	ex.done()
}

// fail ends the exchange with an error. Before any response byte went out the
// client gets an error answer naming the cause; after that the only honest
// signal left is closing the connection, so the client never takes a cut body
// for a whole one.
func (ex *Exchange) fail(cause filters.Cause, reason string) {
	ex.abandonFilters()
	ex.log.cause, ex.log.reason = cause, reason
	ex.endAttempt(cause.Category != filters.CategoryOriginFailure)
	ex.dropConn()
	if ex.ds == nil {
		return
	}
	if ex.ds.Started() {
		ex.log.status = ex.resp.Status
		ex.logAccess()
		ex.abort(false)
		return
	}
	if !ex.body.done {
		ex.out.closeAfter = true // the rest of the body is still coming: the stream is lost
	}
	ex.answer(cause.Status, cause, nil, nil)
}
