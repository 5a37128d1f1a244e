package httpcodec

import (
	"bufio"
	"bytes"
	"sync"

	"github.com/valyala/fasthttp"

	"gozer/gateway/tracectx"
)

// Framing says how a message body is delimited.
type Framing uint8

const (
	// FramingNone: no body.
	FramingNone Framing = iota
	// FramingLength: exactly ContentLength bytes (possibly 0).
	FramingLength
	// FramingChunked: chunked transfer coding; decode with ChunkedDecoder.
	FramingChunked
	// FramingUntilClose: the body runs until the origin closes the
	// connection (responses only).
	FramingUntilClose
)

// String returns "none", "length", "chunked" or "until-close".
func (f Framing) String() string {
	switch f {
	case FramingNone:
		return "none"
	case FramingLength:
		return "length"
	case FramingChunked:
		return "chunked"
	case FramingUntilClose:
		return "until-close"
	}
	return "invalid"
}

// MaxRequestIDLen bounds a client's X-Request-Id: a longer one is ignored
// (dropped and replaced by the gateway's), so that it cannot bloat log lines.
const MaxRequestIDLen = 128

var (
	errIncompleteHead   = badRequest("incomplete head")
	errTrailingBytes    = badRequest("bytes after end of head")
	errRequestLine      = badRequest("malformed request line")
	errMethod           = badRequest("invalid method")
	errNoVersion        = badRequest("missing http version")
	errBadVersion       = badRequest("invalid http version")
	errVersion          = &Error{Status: 505, Cause: CauseBadRequest, Reason: "http version not supported"}
	errTarget           = badRequest("invalid request target")
	errAsterisk         = badRequest("asterisk target on a method other than options")
	errConnect          = badRequest("connect method not supported")
	errObsFold          = badRequest("obsolete line folding")
	errNoColon          = badRequest("header line without colon")
	errSpaceBeforeColon = badRequest("whitespace between header name and colon")
	errHeaderName       = badRequest("invalid header name")
	errHeaderValue      = badRequest("control character in header value")
	errNoHost           = badRequest("missing host")
	errDupHost          = badRequest("more than one host header")
	errBadHost          = badRequest("invalid host")
	errHostMismatch     = badRequest("host does not match absolute-form target")
	errFragment         = badRequest("fragment in request target")
	errDotSegment       = badRequest("dot-segment in request path")
	errBackslash        = badRequest("backslash in request path")
	errDupAuthorization = badRequest("more than one authorization header")
	errConnOptions      = badRequest("connection header names too many fields")
	errExpect           = &Error{Status: 417, Cause: CauseBadRequest, Reason: "unsupported expect value"}
	errMalformed        = badRequest("malformed head")
	errDupCL            = smuggling("more than one content-length")
	errBadCL            = smuggling("invalid content-length")
	errDupTE            = smuggling("more than one transfer-encoding")
	errBadTE            = smuggling("transfer-encoding other than chunked")
	errTE10             = smuggling("transfer-encoding in http/1.0")
	errCLTE             = smuggling("content-length and transfer-encoding together")
)

// Request is a parsed request head.
//
// Parse validates the raw head strictly (see Parse) and then lets fasthttp
// parse it into Header, in fasthttp's "special headers disabled" mode: every
// header, Host, Cookie, Content-Length and Connection included, stays in
// Header's ordinary list in the client's order, so AppendForwardRequest can
// preserve that order. Use Header.Method, RequestURI, Host, Peek, PeekAll,
// Set, Add, Del (names
// match case-insensitively; fasthttp normalizes them to Canonical-Case) and
// VisitHeaders. Do not call Header.Cookie, CookieBytes, VisitAllCookie,
// Cookies, All, VisitAll or PeekKeys: fasthttp then moves Cookie headers out
// of the list and they would not be forwarded. In this mode
// Header.ContentLength and Peek("Content-Length") are meaningless (use
// Framing and ContentLength), and SetHost, SetUserAgent, SetContentType have
// no effect: use Header.Set("Host", ...) and so on.
//
// Parse copies what it keeps: the head buffer may be reused as soon as Parse
// returns. Slices obtained from Header (and RequestID) stay valid until the
// header is modified, Reset or the next Parse.
//
// Concurrency: a Request belongs to one connection and is used on that
// connection's event loop goroutine only; it is not safe for concurrent use.
// Keep one per connection and Reset it between requests: after warm-up,
// Parse, VisitHeaders and AppendForwardRequest do not allocate.
type Request struct {
	// Header is the parsed header, valid until Reset or the next Parse.
	Header fasthttp.RequestHeader

	Framing       Framing
	ContentLength int64 // body length when Framing == FramingLength (may be 0)

	// KeepAlive: HTTP/1.1 without "Connection: close", or HTTP/1.0 with
	// "Connection: keep-alive" (and without "close").
	KeepAlive bool
	HTTP10    bool
	// ExpectContinue: "Expect: 100-continue" (case-insensitive) on an
	// HTTP/1.1 request; the gateway answers it. Any other Expect value is
	// rejected with 417. On HTTP/1.0, 100-continue is ignored (RFC 9110
	// §10.1.1) and ExpectContinue stays false.
	ExpectContinue bool
	// Upgrade: the request asks for a protocol upgrade (a "Connection:
	// upgrade" token and an Upgrade header). AppendForwardRequest strips the
	// upgrade headers: upgraded connections are not proxied by this codec.
	Upgrade bool
	// IsHead: the method is HEAD (pass it to Response.Parse).
	IsHead bool
	// Skipped: bytes of leading empty lines skipped before the request line.
	Skipped int
	// Traceparent is the client's W3C traceparent, parsed while the head was
	// scanned (no second look at the headers), when TraceparentOK: exactly
	// one traceparent header, valid (tracectx.Parse). What a filter sets
	// later is not reflected.
	Traceparent   tracectx.Parent
	TraceparentOK bool
	// Underscores: a header name of the client's has an "_" in it, which
	// CGI, WSGI, Rack and PHP read as "-" (X_User is X-User to them, and
	// Content_Length Content-Length): the exchange drops such headers or
	// refuses the request (server.headers_with_underscores;
	// DropUnderscoreHeaders).
	Underscores bool
	// NoUnderscoreTrailers: the request's trailer fields named with an "_"
	// are dropped too (AppendTrailerFields), whatever the head had; the
	// exchange sets it per server.headers_with_underscores. Parse clears it.
	NoUnderscoreTrailers bool
	// PathToNormalize: the target has a "%" or a "//", so NormalizePath may
	// rewrite its path; Parse sets it.
	PathToNormalize bool

	scratch  []byte   // serialized header for VisitHeaders / forwarding
	deleted  []byte   // names DeleteHeader took, each followed by '\n': out of the trailers too
	uriBuf   []byte   // NormalizePath's output, copied into Header
	idx      []hline  // lines of scratch
	connToks [][]byte // header names listed in Connection, while forwarding
}

// Reset clears r for the next request, keeping its buffers.
func (r *Request) Reset() {
	r.Header.Reset()
	r.resetFields()
}

func (r *Request) resetFields() {
	r.Framing = FramingNone
	r.ContentLength = 0
	r.KeepAlive = false
	r.HTTP10 = false
	r.ExpectContinue = false
	r.Upgrade = false
	r.IsHead = false
	r.Skipped = 0
	r.TraceparentOK = false
	r.Underscores = false
	r.NoUnderscoreTrailers = false
	r.PathToNormalize = false
	r.deleted = r.deleted[:0]
}

// Parse validates and parses a complete request head, as found by
// HeadScanner: optional leading empty lines (at most two), the request line,
// header lines and the final empty line; head must end with CRLFCRLF and
// contain nothing after it. Parse resets r first; after an error Header is
// empty and the other fields are unspecified.
//
// Rejected with a 400 and CauseSmuggling (framing): a bare LF; more than one
// Content-Length, even with equal values; a Content-Length that is not
// 1*DIGIT (a list "5, 6", a sign, spaces inside, overflow of int64); more
// than one Transfer-Encoding; a Transfer-Encoding value other than
// "chunked" (case-insensitive; optional whitespace (SP, HTAB) around it is
// accepted, as RFC 9110's list syntax allows: "chunked, x", "xchunked",
// "chunked,", ", chunked", "chun ked", "identity" are all rejected);
// Transfer-Encoding on HTTP/1.0; Content-Length together with
// Transfer-Encoding.
//
// Rejected with a 400 and CauseBadRequest: whitespace between a header name
// and its colon; a line starting with whitespace (obs-fold); a header name
// that is not a token; control characters other than HTAB in a value; a
// missing Host on HTTP/1.1, an empty or malformed Host, more than one Host
// (fasthttp and most origins refuse an empty Host too);
// a malformed request line (method not a token, not exactly two single SPs,
// missing or malformed HTTP-version, a target with control characters or
// spaces); a target that is not origin-form ("/..."), absolute-form
// ("http://host/...", "https://..."; its authority must then equal Host) or
// "*" with OPTIONS; a fragment ("#") in the target, a backslash or a
// dot-segment ("." or "..", literal or "%2e") in its path (checkPath); more
// than one Authorization; a Connection naming more than maxConnNamed fields;
// the CONNECT method (not supported); more than two leading
// empty lines. An HTTP-version "HTTP/x.y" other than 1.0 and 1.1 is a 505.
// An Expect value other than 100-continue is a 417.
func (r *Request) Parse(head []byte) error {
	r.Reset()
	skip := 0
	for len(head)-skip >= 2 && head[skip] == '\r' && head[skip+1] == '\n' {
		skip += 2
		if skip > maxLeadingEmpty {
			return errLeadingEmpty
		}
	}
	r.Skipped = skip
	h := head[skip:]
	if len(h) < 4 || !bytes.HasSuffix(h, crlfcrlf) {
		return errIncompleteHead
	}

	eol := bytes.IndexByte(h, '\n')
	if eol == 0 || h[eol-1] != '\r' {
		return errBareLF
	}
	authority, err := r.parseRequestLine(h[:eol-1])
	if err != nil {
		return err
	}
	var seen headSeen
	if err := seen.scan(h, eol+1, r.HTTP10); err != nil {
		return err
	}
	if seen.te > 0 && seen.cl {
		return errCLTE
	}
	if seen.hosts == 0 && !r.HTTP10 {
		return errNoHost
	}
	if authority != nil && seen.hosts > 0 && !eqFoldBytes(authority, seen.host) {
		return errHostMismatch
	}

	// Let fasthttp parse the validated head into Header.
	r.Header.DisableSpecialHeader()
	if err := readHead(&r.Header, h); err != nil {
		return errMalformed
	}
	if seen.hosts == 0 && authority != nil {
		// HTTP/1.0 absolute-form without Host: the target names the host.
		r.Header.SetBytesV(fasthttp.HeaderHost, authority)
	}
	r.frame(&seen)
	r.Underscores = seen.underscores
	if seen.connN > 0 && r.dropNominated(seen.connVals[:seen.connN]) {
		seen.traceparents = 0 // the client's was for this hop only
	}
	if seen.traceparents == 1 {
		r.Traceparent, r.TraceparentOK = tracectx.Parse(seen.traceparent)
	}
	return nil
}

// headSeen is what Parse's header scan found that framing and routing depend on.
type headSeen struct {
	hosts, te      int
	host           []byte
	cl             bool
	contentLength  int64
	connClose      bool
	connKeepAlive  bool
	connUpgrade    bool
	upgradeHdr     bool
	expectContinue bool
	underscores    bool // a name with "_"
	auths          int  // Authorization lines
	connNamed      int  // the fields Connection names, at most maxConnNamed
	// connVals are the Connection lines' values (slices of the head, valid
	// while Parse runs): what dropNominated reads. fasthttp's PeekAll is no
	// use there: on HTTP/1.0 without keep-alive it answers "close" alone.
	connVals     [maxConnNamed][]byte
	connN        int // Connection lines that name fields: dropNominated's work
	traceparents int
	traceparent  []byte // the first one's value
}

// scan validates the header lines of h from pos (after the request line) to
// the final empty line and records what matters of them.
func (s *headSeen) scan(h []byte, pos int, http10 bool) error {
	for {
		i := bytes.IndexByte(h[pos:], '\n') // found: h ends with LF
		lf := pos + i
		if h[lf-1] != '\r' {
			return errBareLF
		}
		line := h[pos : lf-1]
		pos = lf + 1
		if len(line) == 0 {
			if pos != len(h) {
				return errTrailingBytes
			}
			return nil
		}
		name, rawValue, err := splitHeaderLine(line)
		if err != nil {
			return err
		}
		if err := s.header(name, TrimOWS(rawValue), http10); err != nil {
			return err
		}
	}
}

// header records one header line (value without OWS).
func (s *headSeen) header(name, value []byte, http10 bool) error {
	if !s.underscores && bytes.IndexByte(name, '_') >= 0 {
		s.underscores = true
	}
	switch len(name) {
	case 4:
		if eqFold(name, "host") {
			s.hosts++
			if s.hosts > 1 {
				return errDupHost
			}
			if !validHost(value) {
				return errBadHost
			}
			s.host = value
		}
	case 6:
		if eqFold(name, "expect") {
			if !eqFold(value, "100-continue") {
				return errExpect
			}
			s.expectContinue = true
		}
	case 7:
		if eqFold(name, "upgrade") {
			s.upgradeHdr = true
		}
	case 10:
		if eqFold(name, "connection") {
			if err := s.connection(value); err != nil {
				return err
			}
		}
	case 11:
		if eqFold(name, "traceparent") {
			if s.traceparents++; s.traceparents == 1 {
				s.traceparent = value
			}
		}
	case 13:
		// One credential: a filter checks the first, an origin may use
		// another (RFC 9110 5.3: not a list field). nginx refuses it too.
		if eqFold(name, "authorization") {
			if s.auths++; s.auths > 1 {
				return errDupAuthorization
			}
		}
	case 14:
		if eqFold(name, "content-length") {
			if s.cl {
				return errDupCL
			}
			s.cl = true
			n, ok := parseDecimal(value)
			if !ok {
				return errBadCL
			}
			s.contentLength = n
		}
	case 17:
		if eqFold(name, "transfer-encoding") {
			if http10 {
				return errTE10
			}
			if s.te++; s.te > 1 {
				return errDupTE
			}
			// OWS around the value is list syntax (RFC 9110 5.6.1), valid and
			// unambiguous; value has it trimmed.
			if !eqFold(value, "chunked") {
				return errBadTE
			}
		}
	}
	return nil
}

// maxConnNamed bounds the fields a request's Connection lines may name (and
// the lines): each named field is a delete over the whole header list
// (dropNominated), so thousands of them in a 32 KiB head would cost the loop
// tens of milliseconds a request. Real clients name one or two.
const maxConnNamed = 32

// connection records the tokens of a Connection header that matter, and the
// line's value when it names fields.
func (s *headSeen) connection(value []byte) error {
	named := false
	for v := value; len(v) > 0; {
		var tok []byte
		tok, v = nextToken(v)
		switch {
		case eqFold(tok, "close"):
			s.connClose = true
		case eqFold(tok, "keep-alive"):
			s.connKeepAlive = true
		case eqFold(tok, "upgrade"):
			s.connUpgrade = true
		case len(tok) > 0:
			if s.connNamed++; s.connNamed > maxConnNamed {
				return errConnOptions
			}
			named = true
		}
	}
	if named {
		s.connVals[s.connN] = value // connN <= connNamed <= maxConnNamed
		s.connN++
	}
	return nil
}

// frame sets the request's framing and connection fields from what the scan saw.
func (r *Request) frame(s *headSeen) {
	switch {
	case s.te > 0:
		r.Framing = FramingChunked
	case s.cl:
		r.Framing = FramingLength
		r.ContentLength = s.contentLength
	}
	if r.HTTP10 {
		r.KeepAlive = s.connKeepAlive && !s.connClose
	} else {
		r.KeepAlive = !s.connClose
		r.ExpectContinue = s.expectContinue
	}
	r.Upgrade = s.connUpgrade && s.upgradeHdr
}

var crlfcrlf = []byte("\r\n\r\n")

// splitHeaderLine validates one header line (without CRLF) and returns its
// name and raw value (everything after the colon).
func splitHeaderLine(line []byte) (name, value []byte, err *Error) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, errObsFold
	}
	i := 0
	for i < len(line) && isTchar(line[i]) {
		i++
	}
	switch {
	case i == len(line):
		return nil, nil, errNoColon
	case line[i] == ':':
		if i == 0 {
			return nil, nil, errHeaderName
		}
	case line[i] == ' ' || line[i] == '\t':
		return nil, nil, errSpaceBeforeColon
	default:
		return nil, nil, errHeaderName
	}
	value = line[i+1:]
	for _, c := range value {
		if class[c]&classVchar == 0 && c != ' ' && c != '\t' {
			return nil, nil, errHeaderValue
		}
	}
	return line[:i], value, nil
}

// RequestID returns the client's X-Request-Id value, or nil when the client
// sent none, an empty one or one longer than 128 bytes (such a value is
// dropped by AppendForwardRequest and replaced). The slice stays valid until
// Header is modified, Reset or the next Parse.
func (r *Request) RequestID() []byte {
	v := r.Header.Peek("X-Request-Id")
	if len(v) == 0 || len(v) > MaxRequestIDLen {
		return nil
	}
	return v
}

// VisitHeaders calls f for each header of the current Header, in order (the
// client's order, then headers added since), until f returns false. name and
// value are valid only during the call. It does not allocate after warm-up.
func (r *Request) VisitHeaders(f func(name, value []byte) bool) {
	b := r.indexHeaders()
	for i := range r.idx {
		l := &r.idx[i]
		if !f(l.name(b), l.value(b)) {
			return
		}
	}
}

// indexHeaders serializes Header into r.scratch with fasthttp's AppendBytes
// (request line, "Name: value\r\n" lines, final CRLF) and indexes its header
// lines into r.idx. It returns r.scratch.
func (r *Request) indexHeaders() []byte {
	r.scratch = r.Header.AppendBytes(r.scratch[:0])
	b := r.scratch
	r.idx = r.idx[:0]
	pos := bytes.IndexByte(b, '\n') + 1 // skip the request line
	if pos == 0 {
		return b
	}
	for pos < len(b) {
		i := bytes.IndexByte(b[pos:], '\n')
		if i < 0 {
			break
		}
		next := pos + i + 1
		end := pos + i
		if end > pos && b[end-1] == '\r' {
			end--
		}
		if end == pos {
			break // the final empty line
		}
		l := hline{start: int32(pos), colon: -1, end: int32(end), next: int32(next)}
		for j := pos; j < end; j++ { // names are short: a plain loop beats IndexByte
			if b[j] == ':' {
				l.colon = int32(j)
				break
			}
		}
		l.kind = kindOf(l.name(b))
		r.idx = append(r.idx, l)
		pos = next
	}
	return b
}

// headReaders lend the bufio.Reader that fasthttp's Header.Read (its only
// exported parser) reads a complete, validated head from. A reader is needed
// only for the length of one parse, so a request or response does not keep
// one: a request waiting in an async filter held two 4 KiB readers (its own
// and its side call's), a third of its heap (bench/README.md, "asyncwait":
// the heap per waiting request).
var headReaders = sync.Pool{New: func() any {
	hr := &headReader{}
	hr.br = bufio.NewReaderSize(&hr.src, 4096)
	return hr
}}

type headReader struct {
	src bytes.Reader
	br  *bufio.Reader
}

// maxPooledHead: a reader grown past it for a large head is not pooled.
const maxPooledHead = 16 << 10

// readHead parses the head h into dst through a pooled reader. Any
// goroutine; h is not retained.
func readHead(dst interface{ Read(*bufio.Reader) error }, h []byte) error {
	hr := headReaders.Get().(*headReader)
	hr.src.Reset(h)
	if hr.br.Size() < len(h) {
		size := 4096
		for size < len(h) {
			size *= 2
		}
		hr.br = bufio.NewReaderSize(&hr.src, size)
	} else {
		hr.br.Reset(&hr.src)
	}
	err := dst.Read(hr.br)
	hr.src.Reset(nil)
	if hr.br.Size() <= maxPooledHead {
		headReaders.Put(hr)
	}
	return err
}
