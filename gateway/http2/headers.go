package http2

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

var (
	errClientReset = errors.New("client reset the stream (RST_STREAM)")
	errStreamGone  = errors.New("http2 stream ended")
)

// block is the header block being received: its fields as the decoder emits
// them, until the header list goes over SETTINGS_MAX_HEADER_LIST_SIZE (the
// rest is decoded, for HPACK's state, and dropped).
type block struct {
	active    bool
	id        uint32
	trailers  bool // a live stream's trailing HEADERS, not a request (no *stream kept: see fragment)
	endStream bool
	frames    int
	bytes     int
	size      uint32 // the header list's size as RFC 9113 6.5.2 counts it
	max       uint32
	over      bool // the list went over max, or over maxFields fields
	many      bool // ... because of maxFields
	cookie    bool // a cookie field was counted
	count     int  // fields but pseudo-headers and cookie crumbs after the first
	maxFields int  // server.max_headers
	pseudo    bool // a pseudo-header came (in trailers: malformed)
	reset     http2.ErrCode
	fields    []hpack.HeaderField
}

func (b *block) begin(c *Conn, id uint32, endStream bool) {
	*b = block{active: true, id: id, endStream: endStream, frames: 1, max: c.set.maxHeaderList,
		maxFields: c.set.maxFields, fields: b.fields[:0]}
}

// emit is the decoder's emit function.
func (b *block) emit(f hpack.HeaderField) {
	if f.IsPseudo() {
		b.pseudo = true
	}
	b.size += f.Size()
	// Cookie crumbs (RFC 9113 8.2.3: browsers send each cookie as a field of
	// its own, for HPACK) become one Cookie line: they count as one field.
	if !f.IsPseudo() && (f.Name != "cookie" || !b.cookie) {
		b.count++
		b.cookie = b.cookie || f.Name == "cookie"
	}
	if b.count > b.maxFields {
		b.many = true
	}
	if b.over || b.many || b.size > b.max {
		b.over = true
		return
	}
	b.fields = append(b.fields, f)
}

// malformed is a request that RFC 9113 8.1.1 says to reset with
// PROTOCOL_ERROR.
type malformed string

func (m malformed) Error() string { return string(m) }

// request is what a request's header fields say, once checked.
type request struct {
	method, scheme, authority, host, path string
	declared                              int64 // content-length (-1: none)
	seen                                  [4]bool
	hostSeen                              bool
}

// head turns a request's header fields into the HTTP/1.1 head the exchange
// parses (dst's bytes), and returns what the stream needs of it: the
// declared content-length (-1: none), the method and :path for the access
// log of a refused head.
func head(dst []byte, fields []hpack.HeaderField, endStream bool) (out []byte, declared int64, method, path string, err error) {
	r, err := check(fields)
	if err != nil {
		return dst, 0, "", "", err
	}
	return r.write(dst, fields, endStream), r.declared, r.method, r.path, nil
}

// check checks the fields as RFC 9113 8.2 and 8.3 say; a malformed error
// resets the stream.
func check(fields []hpack.HeaderField) (request, error) {
	r := request{declared: -1}
	regular := false
	for _, f := range fields {
		if !validValue(f.Value) {
			return r, malformed("control character in " + f.Name)
		}
		if f.IsPseudo() {
			if regular {
				return r, malformed("pseudo-header after a regular header")
			}
			if err := r.pseudo(f); err != nil {
				return r, err
			}
			continue
		}
		regular = true
		if err := r.regular(f); err != nil {
			return r, err
		}
	}
	if r.method == "CONNECT" {
		if r.seen[1] || r.seen[3] || !r.seen[2] {
			return r, malformed("malformed CONNECT")
		}
		r.path = "/" // refused by the exchange (CONNECT is not proxied)
	} else if !r.seen[0] || !r.seen[1] || r.path == "" {
		return r, malformed("missing :method, :scheme or :path")
	} else if r.path[0] != '/' && r.path != "*" {
		// RFC 9113 8.3.1: origin-form or "*"; an absolute-form target
		// would name its authority a second time.
		return r, malformed(":path not origin-form")
	}
	// RFC 9113 8.3.1: a Host that names another entity than :authority makes
	// the request malformed (which one would the origin and the routes
	// believe?); HTTP/1.1's absolute-form against its Host is a 400 alike.
	if r.authority != "" && r.hostSeen && !sameAuthority(r.authority, r.host, r.scheme) {
		return r, malformed(":authority and host differ")
	}
	if r.authority == "" {
		r.authority = r.host
	}
	return r, nil
}

// sameAuthority reports whether a and b name one server: equal but for case
// and the scheme's default port ("example.com" and "example.com:443" over
// https).
func sameAuthority(a, b, scheme string) bool {
	port := ":443"
	if scheme == "http" {
		port = ":80"
	}
	return strings.EqualFold(strings.TrimSuffix(a, port), strings.TrimSuffix(b, port))
}

// pseudo takes a pseudo-header: each known one once, no other.
func (r *request) pseudo(f hpack.HeaderField) error {
	i := -1
	switch f.Name {
	case ":method":
		i, r.method = 0, f.Value
	case ":scheme":
		i, r.scheme = 1, f.Value
	case ":authority":
		i, r.authority = 2, f.Value
	case ":path":
		i, r.path = 3, f.Value
	default:
		return malformed("unknown pseudo-header " + f.Name)
	}
	if r.seen[i] {
		return malformed("pseudo-header " + f.Name + " twice")
	}
	r.seen[i] = true
	return nil
}

// regular takes a regular header: lowercase, no connection-specific one.
func (r *request) regular(f hpack.HeaderField) error {
	if !validName(f.Name) {
		return malformed("invalid header name")
	}
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return malformed("connection-specific header " + f.Name)
	case "te":
		if f.Value != "trailers" {
			return malformed("te other than trailers")
		}
	case "host":
		if r.hostSeen { // as HTTP/1.1's second Host: which one is meant?
			return malformed("host twice")
		}
		r.host, r.hostSeen = f.Value, true
	case "content-length":
		n, err := strconv.ParseInt(f.Value, 10, 64)
		if err != nil || n < 0 || r.declared >= 0 && n != r.declared {
			return malformed("invalid content-length")
		}
		r.declared = n
	}
	return nil
}

// write appends the HTTP/1.1 head: the request line, Host from :authority,
// the fields (cookie crumbs joined, RFC 9113 8.2.3; te, only ever
// "trailers", kept for the exchange, which says it again to the origin when
// trailers can reach the client: httpcodec.ForwardInfo.Trailers), and
// chunked framing for a body of unknown length.
func (r *request) write(dst []byte, fields []hpack.HeaderField, endStream bool) []byte {
	dst = append(dst, r.method...)
	dst = append(dst, ' ')
	dst = append(dst, r.path...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	if r.authority != "" {
		dst = append(dst, "Host: "...)
		dst = append(dst, r.authority...)
		dst = append(dst, "\r\n"...)
	}
	cookies := false
	for _, f := range fields {
		switch {
		case f.IsPseudo() || f.Name == "host":
			continue
		case f.Name == "cookie":
			if !cookies {
				cookies = true
				dst = appendCookies(dst, fields)
			}
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		dst = append(dst, "\r\n"...)
	}
	if r.declared < 0 && !endStream {
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	return append(dst, "\r\n"...)
}

func appendCookies(dst []byte, fields []hpack.HeaderField) []byte {
	dst = append(dst, "cookie: "...)
	first := true
	for _, f := range fields {
		if f.Name != "cookie" {
			continue
		}
		if !first {
			dst = append(dst, "; "...)
		}
		first = false
		dst = append(dst, f.Value...)
	}
	return append(dst, "\r\n"...)
}

// validName: a lowercase token (RFC 9113 8.2.1).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
}

// validValue: no NUL, CR, LF or other control character but HTAB.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// hopByHop are response headers HTTP/2 forbids (RFC 9113 8.2.2).
func hopByHop(name []byte) bool {
	switch string(name) {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te":
		return true
	}
	return false
}

// writeHeaders writes the header block blk (in c.hb) as HEADERS and as many
// CONTINUATION frames as the client's frame size needs.
func (c *Conn) writeHeaders(id uint32, blk []byte, endStream bool) int {
	c.hb = blk[:0]
	n := len(blk)
	max := int(c.peerFrame)
	first := blk
	if len(first) > max {
		first = first[:max]
	}
	blk = blk[len(first):]
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(blk) == 0})
	for len(blk) > 0 {
		p := blk
		if len(p) > max {
			p = p[:max]
		}
		blk = blk[len(p):]
		_ = c.fr.WriteContinuation(id, len(blk) == 0, p)
	}
	return n + 9
}
