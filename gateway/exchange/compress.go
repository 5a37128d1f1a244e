package exchange

import (
	"bytes"
	"fmt"

	"gozer/filters"
	"gozer/gateway/compress"
	"gozer/gateway/httpcodec"
)

// Response compression (origins.NAME.compression): the exchange compresses an
// origin's answer on its way out when the origin did not, the client accepts
// a coding the origin offers, and the answer is worth it (a compressible
// type, long enough, with a body of its own). The body is compressed as it
// streams: each relay of origin bytes is flushed to the client, so a stream
// of events is not held back, and the encoder (about 1 MiB of tables) comes
// from the loop's bounded pool; when the pool is spent the answer goes as is.

// startCompression decides, once the response head is final (the outbound
// filters ran), whether its body is compressed, and rewrites the head for it.
func (ex *Exchange) startCompression() {
	cc := ex.try.origin.Compression
	r := &ex.resp
	if cc == nil || ex.flt.fc.NoCompress || ex.req.IsHead || ex.out.upgradeTo != "" ||
		r.Status < 200 || r.Status == 204 || r.Status == 206 || r.Status == 304 || r.Framing == httpcodec.FramingNone ||
		r.Framing == httpcodec.FramingLength && r.ContentLength < cc.MinSize ||
		len(r.Get("content-encoding")) > 0 || len(r.Get("content-range")) > 0 ||
		!compress.Compressible(r.Get("content-type"), cc.Types) {
		return
	}
	if hasToken(r.Get("cache-control"), "no-transform") {
		return
	}
	// The head is edited without a fasthttp parse when it was not parsed yet
	// (SetHeader edits the lines ParseLazy kept); Content-Length needs no edit:
	// the client's head takes it from the framing set below.
	//
	// A cache must know the answer depends on Accept-Encoding, whether this
	// client got it compressed or not.
	var buf [128]byte // for the values built here; SetHeader copies them
	if vary := r.Get("vary"); !hasToken(vary, "accept-encoding") && !bytes.Equal(vary, []byte("*")) {
		if len(vary) == 0 {
			r.SetHeader("Vary", append(buf[:0], "Accept-Encoding"...))
		} else {
			r.SetHeader("Vary", append(append(buf[:0], vary...), ", Accept-Encoding"...))
		}
	}
	coding := compress.Negotiate(ex.req.Header.Peek("Accept-Encoding"), cc.Offered)
	if coding == compress.None {
		return
	}
	pool := ex.lp.encoders(cc.Level)
	enc := pool.Get(coding)
	if enc == nil {
		return // every encoder of this loop is busy: as is, rather than more memory
	}
	ex.out.enc, ex.out.encPool = enc, pool
	r.SetHeader("Content-Encoding", append(buf[:0], coding.String()...))
	if etag := r.Get("etag"); len(etag) > 0 && !bytes.HasPrefix(etag, []byte("W/")) {
		// Another representation: a strong validator would lie about its bytes.
		r.SetHeader("ETag", append(append(buf[:0], "W/"...), etag...))
	}
	r.Framing, r.ContentLength, r.HasContentLength = httpcodec.FramingChunked, -1, false
}

// encoders is the loop's encoder pool for level.
func (lp *Loop) encoders(level int) *compress.Pool {
	p := lp.pools[level]
	if p == nil {
		if lp.pools == nil {
			lp.pools = make(map[int]*compress.Pool)
		}
		p = compress.NewPool(level, compress.DefaultMaxEncoders)
		lp.pools[level] = p
	}
	return p
}

// writeBody hands a piece of response body to the client, through the
// encoder when the response is compressed; false when the exchange moved on.
func (ex *Exchange) writeBody(p []byte) bool {
	if enc := ex.out.enc; enc != nil {
		out, err := enc.Write(p)
		if err != nil {
			ex.compressFailed(err)
			return false
		}
		p = out
	}
	ex.ds.WriteBody(p)
	return ex.ds != nil // a big piece is written at once: the client may be gone
}

// flushBody makes what the encoder holds reach the client: the origin has no
// more for now. false when the exchange moved on.
func (ex *Exchange) flushBody() bool {
	if ex.out.enc == nil {
		return true
	}
	out, err := ex.out.enc.Flush()
	if err != nil {
		ex.compressFailed(err)
		return false
	}
	ex.ds.WriteBody(out)
	return ex.ds != nil
}

// endBody ends the response body (the encoder's last bytes first) and gives
// the encoder back; false when the exchange moved on. The origin's trailers
// go with it when the body goes as the origin sent it: a compressed body, or
// one an outbound filter replaced (ctx.resp.set_body), loses them, since a
// trailer describing the content (a checksum, a digest) would lie about the
// new one, as a strong ETag would.
func (ex *Exchange) endBody() bool {
	trailer := ex.out.body.Trailer()
	if !ex.trailersPass() {
		trailer = nil
	}
	if enc := ex.out.enc; enc != nil {
		out, err := enc.Close()
		if err != nil {
			ex.compressFailed(err)
			return false
		}
		ex.ds.WriteBody(out)
		if ex.ds == nil {
			return false
		}
		ex.releaseEncoder()
	}
	if len(trailer) > 0 {
		// What the origin's Connection header names ends here, in a trailer
		// as in the head; the downstream drops the rest that must not pass.
		ex.out.trailer = ex.resp.AppendTrailerFields(ex.out.trailer[:0], trailer, nil)
		trailer = ex.out.trailer
	}
	ex.ds.EndBody(trailer)
	return true
}

// trailersPass reports whether the origin's trailers, if its body carries
// any, go to the client with it (endBody), which the response head says in
// advance (Head.Trailers): not for a compressed body or one an outbound
// filter replaced, nor for the gateway's own answer.
func (ex *Exchange) trailersPass() bool {
	return !ex.out.local && ex.out.enc == nil && !ex.out.filtered
}

// releaseEncoder gives the response's encoder back to its pool (Put resets it).
func (ex *Exchange) releaseEncoder() {
	if enc := ex.out.enc; enc != nil {
		ex.out.encPool.Put(enc)
		ex.out.enc, ex.out.encPool = nil, nil
	}
}

// compressFailed ends a response whose compression broke: its body cannot be
// finished honestly.
func (ex *Exchange) compressFailed(err error) {
	ex.releaseEncoder()
	ex.fail(filters.LocalInternal, fmt.Sprintf("compress the response: %v", err))
}

// hasToken reports whether the comma-separated list v holds token (ASCII
// case-insensitive, parameters ignored).
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var item []byte
		item, v, _ = bytes.Cut(v, []byte(","))
		item, _, _ = bytes.Cut(item, []byte(";"))
		if bytes.EqualFold(bytes.TrimSpace(item), []byte(token)) {
			return true
		}
	}
	return false
}
