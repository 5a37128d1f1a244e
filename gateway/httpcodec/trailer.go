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
// room. A proxy also drops what its message's head rules out: see
// Request.AppendTrailerFields and Response.AppendTrailerFields.
func AppendTrailerFields(dst, section []byte, w FieldWriter) []byte {
	return appendTrailerFields(dst, section, w, nil)
}

// appendTrailerFields is AppendTrailerFields that also drops the fields for
// which drop (when not nil) is true.
func appendTrailerFields(dst, section []byte, w FieldWriter, drop func(name []byte) bool) []byte {
	for len(section) > 0 {
		var name, value []byte
		if name, value, section = nextField(section); name == nil {
			continue
		}
		if ForbiddenTrailer(name) || drop != nil && drop(name) {
			continue
		}
		dst = AppendField(dst, w, name, TrimOWS(value))
	}
	return dst
}

// nextField cuts b's first line (LF or CRLF ended) and splits it at its
// colon: name nil for a line without a field (the empty line, no colon or
// an empty name); rest is what follows the line.
func nextField(b []byte) (name, value, rest []byte) {
	line := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line, rest = b[:i], b[i+1:]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, rest
	}
	return line[:colon], line[colon+1:], rest
}

// AppendTrailerFields is AppendTrailerFields for a request's trailer
// section going to an origin after the head fwd (AppendForwardRequest's,
// with the request line). Besides ForbiddenTrailer's fields it drops any
// field whose name the head carries, either head: r's (the client's, as the
// inbound filters left it: what its Connection names is hop-by-hop and
// must not reach the origin) or fwd (what filters set, what the gateway
// added). A recipient that merges trailers into the header section (RFC
// 9110 6.5.2 allows it where the field's definition does) would otherwise
// take a client's trailer over what the gateway decided, checked or
// replaced in the head: a spoofed identity header, a second
// X-Forwarded-For. It also drops the fields a filter deleted from the head
// (DeleteHeader, even when the head had none) and, with
// NoUnderscoreTrailers, those named with an "_". Each field is written as w encodes it (nil: "Name:
// value\r\n"). It uses r's scratch buffers (r must not be used
// concurrently) and allocates nothing when dst has room.
//
// The work is bounded (trailerWork): each field is looked for in both
// heads, and a client controls the fields and most of the head; past the
// bound, the fields left are dropped, as fields the head rules out.
func (r *Request) AppendTrailerFields(dst, section, fwd []byte, w FieldWriter) []byte {
	head := r.indexHeaders()
	left := trailerWork
	return appendTrailerFields(dst, section, w, func(name []byte) bool {
		if r.NoUnderscoreTrailers && bytes.IndexByte(name, '_') >= 0 || r.deletedName(name) {
			return true
		}
		return headRulesOut(head, name, &left) || headRulesOut(fwd, name, &left)
	})
}

// AppendTrailerFields is AppendTrailerFields for an origin's trailer section
// going to the client after r's head: it also drops the fields the origin's
// Connection header names (hop-by-hop: they end at the gateway, in a
// trailer as in the head; connToks, recorded by ParseLazy).
func (r *Response) AppendTrailerFields(dst, section []byte, w FieldWriter) []byte {
	return appendTrailerFields(dst, section, w, func(name []byte) bool {
		return nominated(r.connToks, name)
	})
}

// headRulesOut reports whether head (an HTTP/1.1 head: a start line, then
// field lines) has a field called name, or a Connection field that names it.
// Each line looked at costs *left one, and one per 128 bytes (a Connection
// line's tokens one per 8); once *left is spent, every name is ruled out.
func headRulesOut(head, name []byte, left *int) bool {
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[i+1:] // the start line
	}
	for len(head) > 0 {
		var n, v []byte
		if n, v, head = nextField(head); n == nil {
			continue // the empty line, or no field
		}
		line := len(n) + 1 + len(v)
		if *left -= 1 + line>>7; *left < 0 { // (a long line costs its scan)
			return true
		}
		if eqFoldBytes(n, name) {
			return true
		}
		if eqFold(n, "connection") {
			if *left -= line >> 3; *left < 0 || listHasTokenFold(v, name) {
				return true
			}
		}
	}
	return false
}

// The Trailer header a message forwards is bounded per head, whatever its
// Trailer lines list (a 32 KiB head could list thousands of names over
// hundreds of lines): one line, the names of all of them, each once, at
// most maxTrailerNames, and at most maxTrailerLooks distinct names checked
// (keep looks each through the head). Announcing is advisory (RFC 9110
// 6.6.2): a name past the bounds is not announced, its trailer field still
// passes. gRPC announces two or three.
const (
	maxTrailerNames = 32
	maxTrailerLooks = 2 * maxTrailerNames
)

// trailerWork bounds the head lines one call compares names with
// (Request.AppendTrailerFields, the forwarded Trailer header): each trailer
// field or announced name is looked for in the head, and a client controls
// both (an 8 KiB trailer section is 2,000 fields, a 32 KiB head 3,500
// lines: 7 million comparisons, some 200 ms of loop CPU; the bound keeps
// it to a few milliseconds). An ordinary request (tens of lines, a few
// trailers) uses a few hundred; past the bound, the names left are taken as
// the head's (not announced, their fields dropped): the safe side.
const trailerWork = 1 << 16

// trailerNames gathers the names a head's Trailer lines announce into one
// value: at most maxTrailerNames, each once (case-insensitively), at most
// maxTrailerLooks checked by keep. The names' places in the value are kept
// (no allocation) so that a duplicate costs maxTrailerNames comparisons at
// most, not a parse of the value.
type trailerNames struct {
	from   int // where the value starts in dst
	looked int
	kept   int
	at     [maxTrailerNames][2]int32 // each kept name's start and end in dst
}

// full reports whether no more names can be announced.
func (tn *trailerNames) full() bool {
	return tn.kept == maxTrailerNames || tn.looked == maxTrailerLooks
}

// add appends to dst the names of a Trailer header's value v (a list of
// field names, RFC 9110 6.6.2) whose trailer fields will be passed on,
// ", "-joined after those already there: not ForbiddenTrailer's, not one
// already announced, and those keep accepts (nil: all). Names that are not
// tokens, and names past the bounds, are left out. keep does not escape:
// it allocates nothing.
func (tn *trailerNames) add(dst, v []byte, keep func(name []byte) bool) []byte {
	for len(v) > 0 && !tn.full() {
		var name []byte
		name, v = nextToken(v)
		if !isToken(name) || ForbiddenTrailer(name) || tn.has(dst, name) {
			continue
		}
		tn.looked++
		if keep != nil && !keep(name) {
			continue
		}
		if len(dst) > tn.from {
			dst = append(dst, ", "...)
		}
		tn.at[tn.kept] = [2]int32{int32(len(dst)), int32(len(dst) + len(name))}
		tn.kept++
		dst = append(dst, name...)
	}
	return dst
}

// has reports whether name was announced already (in dst).
func (tn *trailerNames) has(dst, name []byte) bool {
	for _, at := range tn.at[:tn.kept] {
		if eqFoldBytes(dst[at[0]:at[1]], name) {
			return true
		}
	}
	return false
}

// isToken reports whether b is a non-empty token (RFC 9110 5.6.2).
func isToken(b []byte) bool {
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return len(b) > 0
}

// listHasTokenFold is listHasToken for a token of any case.
func listHasTokenFold(list, tok []byte) bool {
	for len(list) > 0 {
		var t []byte
		t, list = nextToken(list)
		if eqFoldBytes(t, tok) {
			return true
		}
	}
	return false
}

// ForbiddenTrailer reports whether name (ASCII case-insensitive) may not be
// passed on in a trailer section: Go's net/http list (httpguts.badTrailer:
// framing, routing, request modifiers, authentication, content processing),
// conditionals (If-*), the hop-by-hop fields (Upgrade, Proxy-*), the rest
// of RFC 9110 6.5.1's kinds: cookies and the response control data (Age,
// Date, Expires, Location, Retry-After, Vary, Warning), and the fields the
// gateway itself vouches for in a head (AppendForwardRequest's
// X-Forwarded-*, Forwarded, Via, X-Request-Id, traceparent, tracestate; and
// X-Real-IP, which origins read as X-Forwarded-For): a client's value in a
// trailer would reach the origin unreplaced; and the status headers the
// gateway shows a client (X-Gozer-Status, X-Gozer-Attempts), which an
// origin's trailer could otherwise contradict.
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
		"retry-after", "vary", "warning",
		"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
		"via", "x-request-id", "x-real-ip", "traceparent", "tracestate",
		"x-gozer-status", "x-gozer-attempts":
		return true
	}
	return false
}

// CompactFields writes fields as "name:value\r\n", without the space
// AppendField puts after the colon: a trailer section so written is no
// longer than the one ChunkedDecoder kept (its lines are the same bytes, OWS
// trimmed), so within the 8 KiB the next hop's decoder allows when the
// client's was; "name: value" may not be (a byte more a line).
var CompactFields FieldWriter = compactFields{}

type compactFields struct{}

func (compactFields) AppendField(dst, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':')
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}
