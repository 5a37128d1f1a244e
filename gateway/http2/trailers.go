package http2

import (
	"golang.org/x/net/http2"

	"gozer/gateway/httpcodec"
	"gozer/gateway/telemetry"
)

// Trailers, both ways. Origins speak HTTP/1.1, so a trailer section travels
// as HTTP/1.1 field lines ("name: value\r\n") between the exchange and a
// stream, as a chunked body's trailer section does: a request's trailing
// HEADERS is written so for the exchange (Trailer), which sends it to the
// origin after the last chunk; an origin's trailer section comes to EndBody
// so, and leaves as trailing HEADERS with END_STREAM (RFC 9113 8.1). Both
// ways, httpcodec.AppendTrailerFields drops the fields that must not be
// trailers (Content-Length, Host, ...) and headEncoder lower-cases names and
// drops connection-specific ones.

// errTrailerTooLarge fails the body of a request whose trailer section goes
// over SETTINGS_MAX_HEADER_LIST_SIZE, or over httpcodec.DefaultMaxTrailerBytes
// as an HTTP/1.1 section, lines and final CRLF (what an origin's chunked
// decoder accepts): the request
// is answered 431 when its response has not started, else the stream is
// reset.
var errTrailerTooLarge = &httpcodec.Error{Status: 431, Cause: httpcodec.CauseHeadersTooLarge,
	Reason: "trailer section over SETTINGS_MAX_HEADER_LIST_SIZE or 8 KiB"}

// takeTrailers checks a request's trailing header block b (RFC 9113 8.1,
// 8.2: lowercase names, no control characters, no connection-specific
// field) and keeps it for the exchange as HTTP/1.1 field lines. A malformed
// one resets the stream (false); one over its bound fails the body.
func (st *stream) takeTrailers(b *block) bool {
	c := st.c
	for _, f := range b.fields {
		reason := ""
		switch {
		case !validName(f.Name):
			reason = "invalid trailer name"
		case !validValue(f.Value):
			reason = "control character in trailer " + f.Name
		case hopByHop([]byte(f.Name)) && !(f.Name == "te" && f.Value == "trailers"):
			reason = "connection-specific trailer " + f.Name
		}
		if reason != "" {
			c.resetStream(st.id, http2.ErrCodeProtocol, telemetry.H2ProtocolError, reason)
			return false
		}
	}
	if st.ex == nil {
		return true // answered already: nothing takes them
	}
	if b.over {
		return st.trailerTooLarge()
	}
	t := st.trailer[:0]
	for _, f := range b.fields {
		t = append(t, f.Name...)
		t = append(t, ": "...)
		t = append(t, f.Value...)
		t = append(t, "\r\n"...)
		if len(t)+len("\r\n") > httpcodec.DefaultMaxTrailerBytes { // the section ends with a CRLF: the origin's decoder counts it
			st.trailer = t[:0]
			return st.trailerTooLarge()
		}
	}
	st.trailer = t
	return true
}

// trailerTooLarge fails the request's body (ReadBody's error); true: the
// stream goes on to its end.
func (st *stream) trailerTooLarge() bool {
	st.c.lp.l.Shared.H2.Count(telemetry.H2HeaderListTooLarge)
	st.bodyErr = errTrailerTooLarge
	return true
}

// Trailer implements exchange.Downstream: the trailing HEADERS' fields as
// HTTP/1.1 field lines, once the stream's body ended; valid until the stream
// is recycled (after Done or Abort).
func (st *stream) Trailer() []byte {
	if !st.remoteDone || len(st.trailer) == 0 {
		return nil
	}
	return st.trailer
}

// sendTrailers ends the response with trailing HEADERS and END_STREAM: the
// origin's trailer fields that may be passed on, HPACK-encoded (an empty
// DATA frame ends the stream when none is left). The caller checked that
// every DATA frame left.
func (st *stream) sendTrailers() {
	c := st.c
	resize := c.enc.resize
	start := c.enc.begin(c.hb[:0])
	blk := httpcodec.AppendTrailerFields(start, st.respTrailer, &c.enc)
	st.respTrailer = st.respTrailer[:0]
	if len(blk) == len(start) {
		c.hb, c.enc.resize = blk[:0], resize // the size update goes with the next block
		st.sendNow(nil, true)
		return
	}
	st.out += int64(c.writeHeaders(st.id, blk, true))
	c.flushSoon()
	st.localDone = true
}
