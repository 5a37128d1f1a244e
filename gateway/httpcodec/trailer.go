package httpcodec

import "bytes"

// Trailers (RFC 9110 6.5, RFC 9112 7.1.2): the fields a chunked body, or an
// HTTP/2 stream's trailing HEADERS, carries after its content. A proxy passes
// them on as they came, but for the fields that must not be trailers: a field
// that frames, routes, authenticates or controls the message is only
// meaningful in the header section, where a recipient has already acted on
// its absence; taken from a trailer it could smuggle what the head's checks
// refused (a second Content-Length, a Host). Such fields are dropped, not
// refused: the rest of the trailer section, and the message, are fine.

// AppendTrailerFields appends the fields of a trailer section that may be
// passed on, each as w encodes it ("Name: value\r\n" when w is nil; HPACK
// for gateway/http2), and returns dst. section is field lines
// "name:value\r\n" as ChunkedDecoder.Trailer keeps them; values lose their
// OWS; a line without a name is skipped. Fields ForbiddenTrailer names are
// dropped. It keeps nothing of section and does not allocate when dst has
// room.
func AppendTrailerFields(dst, section []byte, w FieldWriter) []byte {
	for len(section) > 0 {
		line := section
		if i := bytes.IndexByte(section, '\n'); i >= 0 {
			line, section = section[:i], section[i+1:]
		} else {
			section = nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := line[:colon]
		if ForbiddenTrailer(name) {
			continue
		}
		dst = AppendField(dst, w, name, TrimOWS(line[colon+1:]))
	}
	return dst
}

// ForbiddenTrailer reports whether name (ASCII case-insensitive) may not be
// passed on in a trailer section: Go's net/http list (httpguts.badTrailer:
// framing, routing, request modifiers, authentication, content processing),
// conditionals (If-*), the hop-by-hop fields (Upgrade, Proxy-*), and the
// rest of RFC 9110 6.5.1's kinds: cookies and the response control data
// (Age, Date, Expires, Location, Retry-After, Vary, Warning).
func ForbiddenTrailer(name []byte) bool {
	var low [24]byte
	n := copy(low[:], name)
	for i := 0; i < n; i++ {
		low[i] = lowerTable[low[i]]
	}
	if n >= 3 && string(low[:3]) == "if-" || n >= 6 && string(low[:6]) == "proxy-" {
		return true
	}
	if len(name) > len(low) {
		return false // longer than any name below
	}
	switch string(low[:n]) {
	case "authorization", "cache-control", "connection", "content-encoding",
		"content-length", "content-range", "content-type", "expect", "host",
		"keep-alive", "max-forwards", "pragma", "range", "realm", "te",
		"trailer", "transfer-encoding", "www-authenticate", "upgrade",
		"cookie", "set-cookie", "age", "date", "expires", "location",
		"retry-after", "vary", "warning":
		return true
	}
	return false
}
