package httpcodec

import (
	"strconv"
)

// hdrKind classifies a header name for forwarding.
type hdrKind uint8

const (
	kOther         hdrKind = iota
	kHopByHop              // Keep-Alive, Transfer-Encoding, Upgrade, Proxy-*
	kConnection            // Connection (also hop-by-hop)
	kTE                    // TE (hop-by-hop; its "trailers" is this hop's to say again: ForwardInfo.Trailers)
	kTrailer               // Trailer (hop-by-hop here: a response's is filtered, AppendClientFields)
	kContentLength         // re-emitted from framing
	kExpect                // answered by the gateway
	kHost
	kVia
	kXFF
	kXFProto
	kXFHost
	kForwarded
	kXRealIP // X-Real-IP: a client address claim, as X-Forwarded-For; kept only when trusted
	kXRequestID
	kTraceparent // W3C Trace Context: replaced by the gateway's span
	kTracestate  // W3C Trace Context: dropped with an invalid traceparent
	kInvalid     // not a token: a header a filter set with a bad name; never written
)

// kindOf classifies name case-insensitively.
func kindOf(name []byte) hdrKind {
	if len(name) == 0 {
		return kInvalid
	}
	for _, c := range name {
		if !isTchar(c) {
			return kInvalid
		}
	}
	return kindOfToken(name)
}

// kindOfToken is kindOf for a name already known to be a token.
func kindOfToken(name []byte) hdrKind {
	switch len(name) {
	case 2:
		if eqFold(name, "te") {
			return kTE
		}
	case 3:
		if eqFold(name, "via") {
			return kVia
		}
	case 4:
		if eqFold(name, "host") {
			return kHost
		}
	case 6:
		if eqFold(name, "expect") {
			return kExpect
		}
	case 7:
		if eqFold(name, "trailer") {
			return kTrailer
		}
		if eqFold(name, "upgrade") {
			return kHopByHop
		}
	case 9:
		if eqFold(name, "forwarded") {
			return kForwarded
		}
		if eqFold(name, "x-real-ip") {
			return kXRealIP
		}
	case 10:
		if eqFold(name, "connection") {
			return kConnection
		}
		if eqFold(name, "keep-alive") {
			return kHopByHop
		}
		if eqFold(name, "tracestate") {
			return kTracestate
		}
	case 11:
		if eqFold(name, "traceparent") {
			return kTraceparent
		}
	case 12:
		if eqFold(name, "x-request-id") {
			return kXRequestID
		}
	case 14:
		if eqFold(name, "content-length") {
			return kContentLength
		}
	case 15:
		if eqFold(name, "x-forwarded-for") {
			return kXFF
		}
	case 16:
		if eqFold(name, "x-forwarded-host") {
			return kXFHost
		}
	case 17:
		if eqFold(name, "transfer-encoding") {
			return kHopByHop
		}
		if eqFold(name, "x-forwarded-proto") {
			return kXFProto
		}
	}
	if hasPrefixFold(name, "proxy-") {
		return kHopByHop
	}
	return kOther
}

// addConnTokens appends to toks the header names listed in a Connection
// value, leaving out the connection options close, keep-alive and upgrade
// (which name no header we would forward anyway).
func addConnTokens(toks [][]byte, value []byte) [][]byte {
	for len(value) > 0 {
		var t []byte
		t, value = nextToken(value)
		if len(t) == 0 || eqFold(t, "close") || eqFold(t, "keep-alive") {
			continue
		}
		toks = append(toks, t)
	}
	return toks
}

// nominated reports whether name is one of the Connection tokens.
func nominated(toks [][]byte, name []byte) bool {
	for _, t := range toks {
		if eqFoldBytes(t, name) {
			return true
		}
	}
	return false
}

// hline indexes one serialized header line "Name: value\r\n" in a buffer.
type hline struct {
	start, colon, end, next int32 // end: before CRLF; colon: -1 when none; next: after LF
	kind                    hdrKind
}

func (l *hline) name(b []byte) []byte {
	if l.colon < 0 {
		return b[l.start:l.end]
	}
	return b[l.start:l.colon]
}

func (l *hline) value(b []byte) []byte {
	if l.colon < 0 {
		return nil
	}
	v := b[l.colon+1 : l.end]
	if len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	return v
}

// raw returns the line with its CRLF.
func (l *hline) raw(b []byte) []byte { return b[l.start:l.next] }

// ForwardInfo says how to build the request sent to the origin.
type ForwardInfo struct {
	ClientIP []byte // peer IP of the client connection
	Proto    string // scheme the client used: "http" (the default when empty) or "https"
	// TrustForwarded: when false, the client's X-Forwarded-For,
	// X-Forwarded-Proto, X-Forwarded-Host, Forwarded and X-Real-IP (a claim
	// of the client's address origins read as X-Forwarded-For) are dropped, and
	// X-Forwarded-* are set from the connection. When true, the client's
	// X-Forwarded-For values are kept and ClientIP appended ("a, b,
	// clientip"), and X-Forwarded-Proto / X-Forwarded-Host / Forwarded /
	// X-Real-IP are kept when present (the first three else set).
	TrustForwarded bool
	// RequestID is the X-Request-Id to send when the client sent none (see
	// Request.RequestID); when the client sent one, the client's is kept.
	RequestID []byte
	// Via is appended to the client's Via values with ", ", or set: e.g.
	// "1.1 gozer". Empty: Via is passed through unchanged.
	Via string
	// DefaultHost is sent as Host when the request has none (an HTTP/1.0
	// request without Host): set it to the origin server's host[:port], as
	// HTTP/1.1 origins require a Host. Empty: no Host is sent then.
	DefaultHost []byte
	// Path optionally replaces the request-target (nil keeps the original;
	// an absolute-form original is sent in origin-form). Control characters,
	// spaces and DEL in it are percent-encoded.
	Path []byte
	// Traceparent, when set, is sent as traceparent instead of the client's
	// (the gateway's own span of the trace); nil: the client's goes on.
	Traceparent []byte
	// DropTracestate leaves the client's tracestate out (its traceparent was
	// invalid or not accepted: the trace restarts).
	DropTracestate bool
	// Trailers: the origin's trailers can reach the client (the gateway
	// passes them on to it: not an HTTP/1.0 client, not a side call). Then a
	// client whose TE lists "trailers" has the gateway say "TE: trailers" to
	// the origin (see AppendForwardRequest).
	Trailers bool
}

// AppendForwardRequest appends the request head to send to the origin:
//
//   - "METHOD target HTTP/1.1": always HTTP/1.1, keep-alive, no Connection
//     header but "Connection: TE" beside a TE (below). The target is
//     fi.Path when set, else the client's target, in origin-form (an
//     absolute-form "http://h/p?q" is sent as "/p?q").
//   - every current header of r.Header in order (the client's order; headers
//     a filter Set keep their place, Add appends, and fasthttp's Del moves
//     the last header into the deleted one's place), except the hop-by-hop ones
//     (Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade,
//     Proxy-Connection and any "Proxy-*"; the fields a Connection value
//     named were deleted when the head was parsed, so that a field a filter
//     sets under such a name goes: Request.Parse),
//     Expect (the gateway answers 100-continue) and Content-Length
//     (re-framed). Trailer is hop-by-hop too, but said again, filtered, in
//     the first one's place when the body goes chunked: one line for all
//     the client's, with the names whose trailer fields
//     Request.AppendTrailerFields will pass (appendTrailerHeader); TE as
//     below. fi.DefaultHost
//     is sent as Host when the request has none (HTTP/1.0).
//   - X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host (the client's
//     Host) per fi.TrustForwarded; X-Request-Id (the client's first one is
//     kept in place, or fi.RequestID is added); Via; fi.Traceparent in place
//     of the client's traceparent, and its tracestate unless fi.DropTracestate.
//   - "TE: trailers" and "Connection: TE" (RFC 9110 10.1.4: TE is this
//     hop's, named in Connection) when fi.Trailers and a TE of the client's
//     lists "trailers", whatever else it lists and whether or not its
//     Connection named TE: the gateway accepts trailers on this hop because
//     the client does on its own, and passes them on (origins such as gRPC
//     servers send them only then). Other transfer codings never go: the
//     gateway speaks none to an origin but chunked, as Envoy forwards only
//     "te: trailers".
//   - the framing: "Content-Length: N" for FramingLength, "Transfer-Encoding:
//     chunked" for FramingChunked (the core re-encodes the body), and
//     "Content-Length: 0" for a POST, PUT or PATCH without a body.
//
// It ends with the empty line. It does not allocate after warm-up when dst
// has room; it uses r's scratch buffers, so r must not be used concurrently.
func AppendForwardRequest(dst []byte, r *Request, fi *ForwardInfo) []byte {
	b := r.indexHeaders()
	fs := forwardSeen{clientRID: r.RequestID() != nil}
	r.connToks = r.connToks[:0]
	for i := range r.idx {
		switch l := &r.idx[i]; l.kind {
		case kConnection:
			r.connToks = addConnTokens(r.connToks, l.value(b))
		case kVia:
			fs.via = true
		case kXFF:
			fs.xff = true
		case kTE:
			fs.te = fs.te || fi.Trailers && listHasToken(l.value(b), "trailers")
		}
	}

	method := r.Header.Method()
	dst = append(dst, method...)
	dst = append(dst, ' ')
	if fi.Path != nil {
		dst = appendTarget(dst, fi.Path)
	} else {
		dst = appendOriginForm(dst, r.Header.RequestURI())
	}
	dst = append(dst, " HTTP/1.1\r\n"...)
	dst = r.appendKeptHeaders(dst, b, fi, &fs)
	dst = r.appendForwardedHeaders(dst, b, fi, &fs)

	switch r.Framing {
	case FramingLength:
		dst = appendContentLength(dst, r.ContentLength)
	case FramingChunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	default:
		switch string(method) {
		case "POST", "PUT", "PATCH":
			dst = append(dst, "Content-Length: 0\r\n"...)
		}
	}
	return append(dst, "\r\n"...)
}

// forwardSeen is what of the client's headers AppendForwardRequest kept.
type forwardSeen struct {
	host                    []byte // the first Host's value
	hostSeen, rid, xfp, xfh bool
	via, xff                bool
	clientRID               bool // the client sent a usable X-Request-Id
	te                      bool // TE: trailers goes (ForwardInfo.Trailers)
	trailer                 bool // the Trailer header was written
}

// appendKeptHeaders appends the client's headers that go on to the origin:
// not hop-by-hop, not Content-Length (re-framed), one Host, the client's
// X-Request-Id, and the X-Forwarded-*, Forwarded and X-Real-IP only when trusted.
func (r *Request) appendKeptHeaders(dst, b []byte, fi *ForwardInfo, fs *forwardSeen) []byte {
	trust := fi.TrustForwarded
	for i := range r.idx {
		l := &r.idx[i]
		switch l.kind {
		case kHopByHop, kConnection, kTE, kContentLength, kExpect, kVia, kXFF, kInvalid:
			continue
		case kTrailer:
			if !fs.trailer { // the first Trailer line says them all
				fs.trailer = true
				dst = r.appendTrailerHeader(dst, b, i)
			}
			continue
		case kHost:
			if fs.hostSeen {
				continue
			}
			fs.hostSeen, fs.host = true, l.value(b)
		case kXRequestID:
			if !fs.clientRID || fs.rid {
				continue
			}
			fs.rid = true
		case kXFProto:
			if !trust || fs.xfp {
				continue
			}
			fs.xfp = true
		case kXFHost:
			if !trust || fs.xfh {
				continue
			}
			fs.xfh = true
		case kForwarded, kXRealIP:
			if !trust {
				continue
			}
		case kTraceparent, kTracestate:
			if l.kind == kTraceparent && fi.Traceparent != nil || l.kind == kTracestate && fi.DropTracestate {
				continue
			}
		default:
			// The fields the client's Connection named are gone since
			// Parse (dropNominated): a field of that name now is a filter's.
			if l.colon < 0 {
				continue
			}
		}
		dst = append(dst, l.raw(b)...)
	}
	if !fs.hostSeen && len(fi.DefaultHost) > 0 {
		dst = append(dst, "Host: "...)
		dst = appendSafe(dst, fi.DefaultHost)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// appendTrailerHeader appends the client's Trailer header, one line for
// all its Trailer lines (r.idx[first] is the first; b: the head), when its
// trailers reach the origin (a chunked body: finalChunk), with the names
// whose fields Request.AppendTrailerFields will pass: not
// ForbiddenTrailer's, none the head carries or its Connection names (what
// the gateway adds to the forwarded head is all ForbiddenTrailer's), within
// trailerNames' and trailerWork's bounds. Nothing when none is left, or
// when the client's Connection names Trailer.
func (r *Request) appendTrailerHeader(dst, b []byte, first int) []byte {
	if r.Framing != FramingChunked || len(r.connToks) > 0 && nominated(r.connToks, r.idx[first].name(b)) {
		return dst
	}
	start := len(dst)
	dst = append(dst, "Trailer: "...)
	tn := trailerNames{from: len(dst)}
	left := trailerWork
	keep := func(name []byte) bool {
		if left -= len(r.connToks) + len(r.idx); left < 0 {
			return false // the work's bound: not announced
		}
		if len(r.connToks) > 0 && nominated(r.connToks, name) {
			return false
		}
		for i := range r.idx {
			if eqFoldBytes(r.idx[i].name(b), name) {
				return false
			}
		}
		return true
	}
	for i := first; i < len(r.idx) && !tn.full(); i++ {
		if l := &r.idx[i]; l.kind == kTrailer {
			dst = tn.add(dst, l.value(b), keep)
		}
	}
	if len(dst) == tn.from {
		return dst[:start]
	}
	return append(dst, "\r\n"...)
}

// appendForwardedHeaders appends what the gateway adds: X-Forwarded-For (the
// trusted chain, then the client's address), X-Forwarded-Proto and -Host
// unless kept, X-Request-Id when the client sent none, and Via.
func (r *Request) appendForwardedHeaders(dst, b []byte, fi *ForwardInfo, fs *forwardSeen) []byte {
	trust := fi.TrustForwarded
	if trust && fs.xff || len(fi.ClientIP) > 0 {
		dst = append(dst, "X-Forwarded-For: "...)
		first := true
		if trust && fs.xff {
			dst, first = r.appendValues(dst, b, kXFF)
		}
		if len(fi.ClientIP) > 0 {
			if !first {
				dst = append(dst, ", "...)
			}
			dst = appendSafe(dst, fi.ClientIP)
		}
		dst = append(dst, "\r\n"...)
	}
	if !fs.xfp {
		dst = append(dst, "X-Forwarded-Proto: "...)
		if fi.Proto == "" {
			dst = append(dst, "http"...)
		} else {
			dst = appendSafeString(dst, fi.Proto)
		}
		dst = append(dst, "\r\n"...)
	}
	if !fs.xfh && len(fs.host) > 0 {
		dst = append(dst, "X-Forwarded-Host: "...)
		dst = append(dst, fs.host...)
		dst = append(dst, "\r\n"...)
	}
	if !fs.clientRID && len(fi.RequestID) > 0 {
		dst = append(dst, "X-Request-Id: "...)
		dst = appendSafe(dst, fi.RequestID)
		dst = append(dst, "\r\n"...)
	}
	if fi.Traceparent != nil {
		dst = append(dst, "traceparent: "...)
		dst = appendSafe(dst, fi.Traceparent)
		dst = append(dst, "\r\n"...)
	}
	if fs.te {
		dst = append(dst, "TE: trailers\r\nConnection: TE\r\n"...)
	}
	if fs.via || fi.Via != "" {
		dst = append(dst, "Via: "...)
		first := true
		if fs.via {
			dst, first = r.appendValues(dst, b, kVia)
		}
		if fi.Via != "" {
			if !first {
				dst = append(dst, ", "...)
			}
			dst = appendSafeString(dst, fi.Via)
		}
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// appendValues appends the non-empty values of the indexed lines of kind k,
// joined with ", ". first is false when something was appended.
func (r *Request) appendValues(dst, b []byte, k hdrKind) (_ []byte, first bool) {
	first = true
	for i := range r.idx {
		l := &r.idx[i]
		if l.kind != k {
			continue
		}
		v := l.value(b)
		if len(v) == 0 {
			continue
		}
		if !first {
			dst = append(dst, ", "...)
		}
		dst = append(dst, v...)
		first = false
	}
	return dst, first
}

func appendContentLength(dst []byte, n int64) []byte {
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, "\r\n"...)
}

// appendOriginForm appends target in origin-form: an absolute-form target
// loses its scheme and authority ("/" when its path is empty).
func appendOriginForm(dst, target []byte) []byte {
	if _, rest, ok := splitAbsolute(target); ok {
		if len(rest) == 0 || rest[0] != '/' {
			dst = append(dst, '/')
		}
		if len(rest) == 0 {
			return dst
		}
		return appendTarget(dst, rest)
	}
	return appendTarget(dst, target)
}

const hexDigits = "0123456789ABCDEF"

// appendTarget appends a request-target, percent-encoding the bytes that
// cannot appear in one (controls, SP, DEL). An empty target is "/".
func appendTarget(dst, t []byte) []byte {
	if len(t) == 0 {
		return append(dst, '/')
	}
	for _, c := range t {
		if c <= ' ' || c == 0x7f {
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
