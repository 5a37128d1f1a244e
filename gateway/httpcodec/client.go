package httpcodec

import "strconv"

// ResponseInfo says how to write an origin's response head to the client.
type ResponseInfo struct {
	// RequestID is set as X-Request-Id, replacing any origin value; empty
	// keeps the origin's.
	RequestID []byte
	// Via is appended to the origin's Via values with ", ", or set.
	Via string
	// Chunked re-frames the body as chunked: set it when the origin's
	// framing is FramingChunked or FramingUntilClose and the client speaks
	// HTTP/1.1. Ignored for responses without a body (FramingNone) and for
	// FramingLength.
	Chunked bool
	// Close adds "Connection: close"; the core then closes the client
	// connection after the body. Required when the body is FramingUntilClose
	// and not Chunked, or FramingChunked to an HTTP/1.0 client.
	Close bool
	// HTTP10: the client spoke HTTP/1.0. The status line is HTTP/1.1 anyway
	// (RFC 9110 §6.2: a server sends its own highest version); with HTTP10
	// and not Close, "Connection: keep-alive" is added. Do not combine with
	// Chunked: HTTP/1.0 clients do not understand chunked.
	HTTP10 bool
	// Upgrade, when set, is sent as the Upgrade header with "upgrade" added to
	// Connection: a 426 Upgrade Required must name the protocol (RFC 9110
	// §15.5.22). The origin's own Upgrade header is never passed on.
	Upgrade string
	// Trailers: the origin's trailer section follows this head to the client
	// (a chunked body to an HTTP/1.1 client, HTTP/2's trailing HEADERS), so
	// its Trailer header is kept, filtered to the names whose fields pass
	// (Response.AppendTrailerFields' rule); else it is dropped.
	Trailers bool
}

// AppendClientResponse appends the response head for the client:
//
//   - "HTTP/1.1 <r.Status> <reason>": the origin's reason phrase when
//     r.Status is still the origin's status, else the standard text.
//   - the current headers of r.Header (fasthttp's order: Content-Type,
//     Content-Encoding, Server and Set-Cookie first, then the others as
//     received), minus the hop-by-hop ones (as for AppendForwardRequest:
//     Connection and the headers it names, Keep-Alive, TE, Trailer,
//     Transfer-Encoding, Upgrade, Proxy-*) and Content-Length, which is
//     re-emitted from the framing. Trailer stays when ri.Trailers, with the
//     names of the fields that will pass only (none: no Trailer).
//   - X-Request-Id (ri.RequestID replaces the origin's), Via.
//   - the framing: "Content-Length: N" for FramingLength, and for a
//     FramingNone response to HEAD or a 304 when the origin sent a
//     Content-Length; "Transfer-Encoding: chunked" when ri.Chunked and the
//     response has a body; nothing otherwise.
//   - "Connection: close" when ri.Close, else "Connection: keep-alive" when
//     ri.HTTP10.
//
// It ends with the empty line. It does not allocate after warm-up when dst
// has room; it uses r's scratch buffers, so r must not be used concurrently.
func AppendClientResponse(dst []byte, r *Response, ri *ResponseInfo) []byte {
	status := ClientStatus(r)
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	if msg := r.statusMessage(); len(msg) > 0 && status == r.originStatus() {
		dst = appendSafe(dst, msg)
	} else {
		dst = append(dst, StatusText(status)...)
	}
	dst = append(dst, "\r\n"...)
	dst = AppendClientFields(dst, r, ri, status, nil)
	return append(dst, "\r\n"...)
}

// ClientStatus is the status AppendClientResponse sends: r.Status, else the
// origin's, and 500 for one out of range.
func ClientStatus(r *Response) int {
	status := r.Status
	if status == 0 {
		status = r.originStatus()
	}
	if status < 100 || status > 999 {
		status = 500
	}
	return status
}

// FieldWriter encodes the header fields of a response head: AppendField
// appends one field (name as the origin or a filter spelled it) to dst in its
// encoding and returns dst. name and value are valid for the call only.
// gateway/http2 writes HPACK; a nil FieldWriter is HTTP/1.1 text.
type FieldWriter interface {
	AppendField(dst, name, value []byte) []byte
}

// AppendField appends one field as w encodes it, "Name: value\r\n" when w
// is nil. The text case stays inline: through the interface, HTTP/1.1's
// head took 15-30% longer (BenchmarkClientResponse).
func AppendField(dst []byte, w FieldWriter, name, value []byte) []byte {
	if w != nil {
		return w.AppendField(dst, name, value)
	}
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// AppendClientFields appends the header fields of the client response head
// (everything AppendClientResponse writes between its status line and its
// empty line, in the same order), each as w encodes it; status is
// ClientStatus(r); w nil: HTTP/1.1 text. So an HTTP/2 stream sends the head HTTP/1.1 would, in
// HPACK, without HTTP/1.1 text in between. Values made here (X-Request-Id,
// Via, Content-Length) live in r's scratch buffer: it does not allocate after
// warm-up when dst has room, and r must not be used concurrently.
func AppendClientFields(dst []byte, r *Response, ri *ResponseInfo, status int, w FieldWriter) []byte {
	if !r.lazy {
		// Headers set by filters live in fasthttp's header: list them the way a lazy
		// parse records a head's lines, then write both the same way.
		clear(r.lines)
		r.lines = r.lines[:0]
		for name, value := range r.Header.All() {
			r.lines = append(r.lines, rawLine{name: name, value: value, kind: kindOf(name)})
		}
	}
	return appendHeaderLines(dst, r, ri, status, w)
}

// Names of the fields the client response head makes.
var (
	nameContentLength    = []byte("Content-Length")
	nameTransferEncoding = []byte("Transfer-Encoding")
	nameUpgrade          = []byte("Upgrade")
	nameConnection       = []byte("Connection")
	nameRequestID        = []byte("X-Request-Id")
	nameVia              = []byte("Via")
	valueChunked         = []byte("chunked")
	valueUpgradeClose    = []byte("upgrade, close")
	valueUpgrade         = []byte("upgrade")
	valueClose           = []byte("close")
	valueKeepAlive       = []byte("keep-alive")
)

// appendTrailerHeader appends the origin's Trailer header, one field for
// all its Trailer lines (r.lines[first] is the first), when its trailers
// reach the client (ri.Trailers), with the names whose fields
// Response.AppendTrailerFields will pass (not ForbiddenTrailer's, not named
// by the response's Connection), within trailerNames' bounds; nothing when
// none is left. Its value is made in r.scratch.
func (r *Response) appendTrailerHeader(dst []byte, first int, ri *ResponseInfo, w FieldWriter) []byte {
	name := r.lines[first].name
	if !ri.Trailers || len(r.connToks) > 0 && nominated(r.connToks, name) {
		return dst
	}
	keep := func(name []byte) bool {
		return len(r.connToks) == 0 || !nominated(r.connToks, name)
	}
	var tn trailerNames
	v := r.scratch[:0]
	for i := first; i < len(r.lines) && !tn.full(); i++ {
		if l := &r.lines[i]; l.kind == kTrailer {
			v = tn.add(v, l.value, keep)
		}
	}
	r.scratch = v
	if len(v) == 0 {
		return dst
	}
	return AppendField(dst, w, name, v)
}

// appendFraming ends a client response's fields: framing, connection.
func appendFraming(dst []byte, r *Response, ri *ResponseInfo, status int, w FieldWriter) []byte {
	switch r.Framing {
	case FramingLength:
		r.scratch = strconv.AppendInt(r.scratch[:0], r.ContentLength, 10)
		dst = AppendField(dst, w, nameContentLength, r.scratch)
	case FramingNone:
		if r.HasContentLength && (r.headReq || status == 304) {
			r.scratch = strconv.AppendInt(r.scratch[:0], r.ContentLength, 10)
			dst = AppendField(dst, w, nameContentLength, r.scratch)
		}
	default:
		if ri.Chunked {
			dst = AppendField(dst, w, nameTransferEncoding, valueChunked)
		}
	}
	if ri.Upgrade != "" {
		r.scratch = append(r.scratch[:0], ri.Upgrade...)
		dst = AppendField(dst, w, nameUpgrade, r.scratch)
	}
	switch {
	case ri.Upgrade != "" && ri.Close:
		dst = AppendField(dst, w, nameConnection, valueUpgradeClose)
	case ri.Upgrade != "":
		dst = AppendField(dst, w, nameConnection, valueUpgrade)
	case ri.Close:
		dst = AppendField(dst, w, nameConnection, valueClose)
	case ri.HTTP10:
		dst = AppendField(dst, w, nameConnection, valueKeepAlive)
	}
	return dst
}

// appendHeaderLines is the header part of AppendClientFields, over r.lines.
func appendHeaderLines(dst []byte, r *Response, ri *ResponseInfo, status int, w FieldWriter) []byte {
	viaSeen := false
	for i := range r.lines {
		if r.lines[i].kind == kVia {
			viaSeen = true
		}
	}
	replaceID := len(ri.RequestID) > 0
	trailer := false // the Trailer header was written
	for i := range r.lines {
		l := &r.lines[i]
		switch l.kind {
		case kHopByHop, kConnection, kTE, kContentLength, kVia, kInvalid:
			continue
		case kTrailer:
			if !trailer { // the first Trailer line says them all
				trailer = true
				dst = r.appendTrailerHeader(dst, i, ri, w)
			}
			continue
		case kXRequestID:
			if replaceID {
				continue
			}
		} // what the origin's Connection named is gone already (dropNominated)
		if w != nil {
			dst = w.AppendField(dst, l.name, l.value)
			continue
		}
		dst = append(dst, l.name...) // (inline: see AppendField)
		dst = append(dst, ": "...)
		dst = append(dst, l.value...)
		dst = append(dst, "\r\n"...)
	}
	if replaceID {
		r.scratch = appendSafe(r.scratch[:0], ri.RequestID)
		dst = AppendField(dst, w, nameRequestID, r.scratch)
	}
	if viaSeen || ri.Via != "" {
		v := r.scratch[:0]
		for i := range r.lines {
			if l := &r.lines[i]; l.kind == kVia && len(l.value) > 0 {
				if len(v) > 0 {
					v = append(v, ", "...)
				}
				v = append(v, l.value...)
			}
		}
		if ri.Via != "" {
			if len(v) > 0 {
				v = append(v, ", "...)
			}
			v = appendSafeString(v, ri.Via)
		}
		r.scratch = v
		dst = AppendField(dst, w, nameVia, v)
	}
	return appendFraming(dst, r, ri, status, w)
}
