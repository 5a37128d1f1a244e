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
//     re-emitted from the framing.
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
	status := r.Status
	if status == 0 {
		status = r.originStatus()
	}
	dst = append(dst, "HTTP/1.1 "...)
	if status < 100 || status > 999 {
		status = 500
	}
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	if msg := r.statusMessage(); len(msg) > 0 && status == r.originStatus() {
		dst = appendSafe(dst, msg)
	} else {
		dst = append(dst, StatusText(status)...)
	}
	dst = append(dst, "\r\n"...)

	if !r.lazy {
		// Headers set by filters live in fasthttp's header: list them the way a lazy
		// parse records a head's lines, then write both the same way.
		clear(r.lines)
		r.lines = r.lines[:0]
		for name, value := range r.Header.All() {
			r.lines = append(r.lines, rawLine{name: name, value: value, kind: kindOf(name)})
		}
	}
	return appendHeaderLines(dst, r, ri, status)
}

// appendFraming ends a client response head: framing, connection, empty line.
func appendFraming(dst []byte, r *Response, ri *ResponseInfo, status int) []byte {
	switch r.Framing {
	case FramingLength:
		dst = appendContentLength(dst, r.ContentLength)
	case FramingNone:
		if r.HasContentLength && (r.headReq || status == 304) {
			dst = appendContentLength(dst, r.ContentLength)
		}
	default:
		if ri.Chunked {
			dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
		}
	}
	if ri.Upgrade != "" {
		dst = append(dst, "Upgrade: "...)
		dst = append(dst, ri.Upgrade...)
		dst = append(dst, "\r\n"...)
	}
	switch {
	case ri.Upgrade != "" && ri.Close:
		dst = append(dst, "Connection: upgrade, close\r\n"...)
	case ri.Upgrade != "":
		dst = append(dst, "Connection: upgrade\r\n"...)
	case ri.Close:
		dst = append(dst, "Connection: close\r\n"...)
	case ri.HTTP10:
		dst = append(dst, "Connection: keep-alive\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// appendHeaderLines is the header part of AppendClientResponse, over r.lines.
func appendHeaderLines(dst []byte, r *Response, ri *ResponseInfo, status int) []byte {
	r.connToks = r.connToks[:0]
	viaSeen := false
	for i := range r.lines {
		switch r.lines[i].kind {
		case kConnection:
			r.connToks = addConnTokens(r.connToks, r.lines[i].value)
		case kVia:
			viaSeen = true
		}
	}
	replaceID := len(ri.RequestID) > 0
	for i := range r.lines {
		l := &r.lines[i]
		switch l.kind {
		case kHopByHop, kConnection, kContentLength, kVia, kInvalid:
			continue
		case kXRequestID:
			if replaceID {
				continue
			}
		default:
			if len(r.connToks) > 0 && nominated(r.connToks, l.name) {
				continue
			}
		}
		dst = append(dst, l.name...)
		dst = append(dst, ": "...)
		dst = append(dst, l.value...)
		dst = append(dst, "\r\n"...)
	}
	if replaceID {
		dst = append(dst, "X-Request-Id: "...)
		dst = appendSafe(dst, ri.RequestID)
		dst = append(dst, "\r\n"...)
	}
	if viaSeen || ri.Via != "" {
		dst = append(dst, "Via: "...)
		first := true
		for i := range r.lines {
			if l := &r.lines[i]; l.kind == kVia && len(l.value) > 0 {
				if !first {
					dst = append(dst, ", "...)
				}
				dst = append(dst, l.value...)
				first = false
			}
		}
		if ri.Via != "" {
			if !first {
				dst = append(dst, ", "...)
			}
			dst = appendSafeString(dst, ri.Via)
		}
		dst = append(dst, "\r\n"...)
	}
	return appendFraming(dst, r, ri, status)
}
