package httpcodec

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

var (
	errRespIncomplete = badResponse("incomplete response head")
	errRespTrailing   = badResponse("bytes after end of response head")
	errRespStatusLine = badResponse("malformed status line")
	errRespVersion    = badResponse("unsupported http version in response")
	errRespStatus     = badResponse("invalid status code")
	errRespHeaderLine = badResponse("malformed response header line")
	errRespDupCL      = badResponse("more than one content-length in response")
	errRespBadCL      = badResponse("invalid content-length in response")
	errRespDupTE      = badResponse("more than one transfer-encoding in response")
	errRespBadTE      = badResponse("transfer-encoding other than chunked in response")
	errRespTE10       = badResponse("transfer-encoding in http/1.0 response")
	errRespCLTE       = badResponse("content-length and transfer-encoding together in response")
	errRespMalformed  = badResponse("malformed response head")
)

// Response is a parsed response head from an origin.
//
// Parse validates the raw head (less strictly than requests, but never
// accepting ambiguous framing) and then lets fasthttp parse it into Header
// (with fasthttp's default Content-Type disabled). Parse copies what it
// keeps: the head buffer may be reused as soon as Parse returns. Slices
// obtained from Header stay valid until the header is modified, Reset or the
// next Parse.
//
// Concurrency: a Response belongs to one origin connection (or one request)
// and is used on its event loop goroutine only; it is not safe for concurrent
// use. Keep one and Reset it between responses: after warm-up, Parse and
// AppendClientResponse do not allocate.
type Response struct {
	// Header is the parsed header, valid until Reset or the next Parse.
	Header fasthttp.ResponseHeader
	// Status is the status code. AppendClientResponse writes Status, not
	// Header.StatusCode(): set Status to change it.
	Status int
	// Framing: FramingNone for a response to HEAD, 1xx, 204 and 304
	// whatever the headers say; else FramingChunked for "Transfer-Encoding:
	// chunked", FramingLength for a Content-Length, else FramingUntilClose.
	Framing Framing
	// ContentLength: the Content-Length value when HasContentLength (also
	// kept when Framing is FramingNone, e.g. for HEAD). AppendClientResponse
	// writes it for FramingLength: update it if the body is changed.
	ContentLength    int64
	HasContentLength bool
	// KeepAlive: the origin connection can be reused after this response:
	// HTTP/1.1 without "Connection: close" (HTTP/1.0 with "Connection:
	// keep-alive"), framing not FramingUntilClose, status not 101.
	KeepAlive bool
	HTTP10    bool
	// Skipped: bytes of leading empty lines skipped before the status line.
	Skipped int

	headReq  bool
	lazy     bool      // Header not filled yet: the head is kept raw (ParseLazy)
	raw      []byte    // the head after any skipped empty lines, while lazy
	lines    []rawLine // its header lines, while lazy
	connToks [][]byte  // header names the origin's Connection lists (slices of raw)

	// SetHeader's edits of a lazy head: the names and values (in kept), for
	// Materialize to apply to Header.
	edits []rawLine
	kept  []byte

	scratch []byte // values AppendClientFields makes (Content-Length, Via, ...)
}

// Reset clears r for the next response, keeping its buffers.
func (r *Response) Reset() {
	r.Header.Reset()
	r.resetFields()
}

func (r *Response) resetFields() {
	r.Status = 0
	r.Framing = FramingNone
	r.ContentLength = 0
	r.HasContentLength = false
	r.KeepAlive = false
	r.HTTP10 = false
	r.Skipped = 0
	r.headReq = false
	r.lazy = false
	r.raw = r.raw[:0]
	clear(r.connToks)
	r.connToks = r.connToks[:0]
	clear(r.lines)
	r.lines = r.lines[:0]
	clear(r.edits)
	r.edits = r.edits[:0]
	r.kept = r.kept[:0]
}

// rawLine is one header line of a lazily parsed head: slices into Response.raw.
type rawLine struct {
	name, value []byte
	kind        hdrKind
	del         bool // an edit that deletes name (DelHeader)
}

// Parse parses an origin's complete response head (as found by a HeadScanner
// with Response set). requestWasHEAD says whether the request was HEAD.
// Every problem is an *Error with Status 502 and CauseOriginBadResponse:
// a bare LF, a status line other than "HTTP/1.x NNN [reason]" (version 1.0
// or 1.1, status 100-599), a malformed header line (as for requests:
// whitespace before the colon, obs-fold, bad name, control characters),
// more than one Content-Length, a Content-Length that is not 1*DIGIT, more
// than one Transfer-Encoding or one other than "chunked" (OWS and case
// ignored), Transfer-Encoding on HTTP/1.0, Content-Length together with
// Transfer-Encoding, and a Trailer header naming a field forbidden in
// trailers (Content-Length, Host ...: fasthttp refuses those). Parse resets r
// first; after an error Header is empty and the other fields are
// unspecified.
func (r *Response) Parse(head []byte, requestWasHEAD bool) error {
	if err := r.ParseLazy(head, requestWasHEAD); err != nil {
		return err
	}
	return r.Materialize()
}

// ParseLazy is Parse without filling Header: it validates the head and sets the
// status and framing fields, and keeps a copy of the head. AppendClientResponse
// writes the kept header lines as they came (order and case preserved, hop-by-hop
// ones dropped), which spares the proxy path fasthttp's parse when no filter looks
// at the response headers. Call Materialize before using Header.
func (r *Response) ParseLazy(head []byte, requestWasHEAD bool) error {
	r.Reset()
	r.headReq = requestWasHEAD
	skip := 0
	for len(head)-skip >= 2 && head[skip] == '\r' && head[skip+1] == '\n' {
		skip += 2
		if skip > maxLeadingEmpty {
			return errRespLeadingEmpty
		}
	}
	r.Skipped = skip
	// Validate the kept copy, so the recorded lines point into it.
	r.raw = append(r.raw[:0], head[skip:]...)
	h := r.raw
	if len(h) < 4 || !bytes.HasSuffix(h, crlfcrlf) {
		return errRespIncomplete
	}
	eol := bytes.IndexByte(h, '\n')
	if eol == 0 || h[eol-1] != '\r' {
		return errRespBareLF
	}
	if err := r.parseStatusLine(h[:eol-1]); err != nil {
		return err
	}

	var seen respSeen
	if err := r.scanHeaders(h, eol+1, &seen); err != nil {
		return err
	}
	if seen.te > 0 && seen.cl > 0 {
		return errRespCLTE
	}
	r.lazy = true
	r.HasContentLength = seen.cl > 0
	r.ContentLength = seen.contentLength
	switch {
	case requestWasHEAD || r.Status < 200 || r.Status == 204 || r.Status == 304:
		r.Framing = FramingNone
	case seen.te > 0:
		r.Framing = FramingChunked
	case seen.cl > 0:
		r.Framing = FramingLength
	default:
		r.Framing = FramingUntilClose
	}
	if r.HTTP10 {
		r.KeepAlive = seen.connKeepAlive && !seen.connClose
	} else {
		r.KeepAlive = !seen.connClose
	}
	if r.Framing == FramingUntilClose || r.Status == 101 {
		r.KeepAlive = false
	}
	if len(r.connToks) > 0 {
		r.dropNominated()
	}
	return nil
}

// dropNominated deletes the lines the origin's Connection names (RFC 9110
// 7.6.1: meant for this hop only) as the head is parsed, so a field an
// outbound filter sets later under such a name is the filter's and reaches
// the client. (Dropped while writing instead, "Connection:
// Strict-Transport-Security" stripped the HSTS a filter had just added.) The
// names the writer handles itself (framing, Trailer, Via, X-Request-Id,
// Upgrade, Keep-Alive ...) stay for it, and so does Content-Encoding: the
// body is coded whatever Connection says, and without the field the relay
// would compress it a second time. Materialize deletes the same from Header
// (an edit each, before any filter's). connToks stays for the trailers: a
// trailer field Connection names is not passed either.
func (r *Response) dropNominated() {
	lines := r.lines[:0]
	for _, l := range r.lines {
		if endToEnd(l.kind) && nominated(r.connToks, l.name) && !eqFold(l.name, "content-encoding") {
			r.edits = append(r.edits, rawLine{name: l.name, del: true})
			continue
		}
		lines = append(lines, l)
	}
	clear(r.lines[len(lines):])
	r.lines = lines
}

// endToEnd reports whether a response field of kind k reaches the client as
// the origin sent it (appendHeaderLines writes it unchanged).
func endToEnd(k hdrKind) bool {
	switch k {
	case kHopByHop, kConnection, kTE, kContentLength, kVia, kInvalid, kTrailer, kXRequestID:
		return false
	}
	return true
}

// respSeen is what a response head's header lines say about its framing.
type respSeen struct {
	te, cl                   int
	contentLength            int64
	connClose, connKeepAlive bool
}

// scanHeaders validates the header lines of h from pos to the final empty
// line, records each (r.lines) and what matters for framing.
func (r *Response) scanHeaders(h []byte, pos int, s *respSeen) error {
	for {
		i := bytes.IndexByte(h[pos:], '\n')
		lf := pos + i
		if h[lf-1] != '\r' {
			return errRespBareLF
		}
		line := h[pos : lf-1]
		pos = lf + 1
		if len(line) == 0 {
			if pos != len(h) {
				return errRespTrailing
			}
			return nil
		}
		name, rawValue, err := splitHeaderLine(line)
		if err != nil {
			return errRespHeaderLine
		}
		value := TrimOWS(rawValue)
		r.lines = append(r.lines, rawLine{name: name, value: value, kind: kindOfToken(name)})
		if err := r.respHeader(name, value, s); err != nil {
			return err
		}
	}
}

// respHeader records one response header line (value without OWS).
func (r *Response) respHeader(name, value []byte, s *respSeen) error {
	switch len(name) {
	case 10:
		if eqFold(name, "connection") {
			s.connClose = s.connClose || listHasToken(value, "close")
			s.connKeepAlive = s.connKeepAlive || listHasToken(value, "keep-alive")
			r.connToks = addConnTokens(r.connToks, value) // value is in r.raw: stable
		}
	case 14:
		if eqFold(name, "content-length") {
			if s.cl++; s.cl > 1 {
				return errRespDupCL
			}
			n, ok := parseDecimal(value)
			if !ok {
				return errRespBadCL
			}
			s.contentLength = n
		}
	case 17:
		if eqFold(name, "transfer-encoding") {
			if r.HTTP10 {
				return errRespTE10
			}
			if s.te++; s.te > 1 {
				return errRespDupTE
			}
			if !eqFold(value, "chunked") {
				return errRespBadTE
			}
		}
	}
	return nil
}

// Materialize fills Header from the head kept by ParseLazy (a no-op otherwise).
// An error (fasthttp refusing what the validation accepted, e.g. a Trailer naming
// a forbidden field) is an *Error with Status 502.
func (r *Response) Materialize() error {
	if !r.lazy {
		return nil
	}
	r.lazy = false
	h := r.raw
	r.Header.SetNoDefaultContentType(true)
	if err := readHead(&r.Header, h); err != nil {
		r.Header.Reset()
		return errRespMalformed
	}
	for _, e := range r.edits {
		r.Header.DelBytes(e.name)
		if !e.del {
			r.Header.SetBytesKV(e.name, e.value)
		}
	}
	return nil
}

// SetHeader sets the header name (a token, in the case to write) to value,
// replacing every line of that name (ASCII case-insensitively), lazy head or
// not. On a head kept by ParseLazy it edits the recorded lines: the first line of
// that name takes the value in its place, the others go, and a new header goes
// after the origin's; the head is not parsed for it (the relay's compression sets
// Content-Encoding and Vary on every compressed response, and a fasthttp parse
// of the head cost more than the rest of its work). Name and value are copied.
// Materialize afterwards applies the edits to Header. Content-Length is not for
// SetHeader: AppendClientResponse writes it from the framing fields.
func (r *Response) SetHeader(name string, value []byte) {
	if !r.lazy {
		r.Header.Del(name)
		r.Header.SetBytesV(name, value)
		return
	}
	// Copied into kept, whose earlier contents stay where they are when it
	// grows: the lines already pointing into it remain valid.
	if cap(r.kept)-len(r.kept) < len(name)+len(value) {
		r.kept = make([]byte, 0, max(256, 2*cap(r.kept), len(name)+len(value)))
	}
	start := len(r.kept)
	r.kept = append(append(r.kept, name...), value...)
	n, v := r.kept[start:start+len(name):start+len(name)], r.kept[start+len(name):len(r.kept):len(r.kept)]
	found := false
	lines := r.lines[:0]
	for _, l := range r.lines {
		if eqFoldBytes(l.name, n) {
			if found {
				continue
			}
			l.value, found = v, true
		}
		lines = append(lines, l)
	}
	clear(r.lines[len(lines):])
	r.lines = lines
	if !found {
		r.lines = append(r.lines, rawLine{name: n, value: v, kind: kindOf(n)})
	}
	r.edits = append(r.edits, rawLine{name: n, value: v})
}

// DelHeader removes every line of the header name (ASCII case-insensitively),
// lazy head or not; on a lazy head, without parsing it (the outbound Lua
// filters' ctx.resp.del_header). Materialize afterwards applies it to Header.
func (r *Response) DelHeader(name string) {
	if !r.lazy {
		r.Header.Del(name)
		return
	}
	lines := r.lines[:0]
	for _, l := range r.lines {
		if !eqFoldString(l.name, name) {
			lines = append(lines, l)
		}
	}
	clear(r.lines[len(lines):])
	r.lines = lines
	// Copied into kept as SetHeader does: a fresh buffer when it is full, so
	// the lines already pointing into it remain valid.
	if cap(r.kept)-len(r.kept) < len(name) {
		r.kept = make([]byte, 0, max(256, 2*cap(r.kept), len(name)))
	}
	start := len(r.kept)
	r.kept = append(r.kept, name...)
	r.edits = append(r.edits, rawLine{name: r.kept[start:len(r.kept):len(r.kept)], del: true})
}

// Get is the first value of the header name (ASCII case-insensitively), from
// the lines ParseLazy recorded or from Header once materialized; nil when
// absent. It lets the relay decide on a header (compression looks at
// Content-Type, Content-Encoding, Cache-Control) and outbound filters read
// one without materializing the head. Valid as long as the head is.
func (r *Response) Get(name string) []byte {
	if !r.lazy {
		return r.Header.Peek(name)
	}
	for i := range r.lines {
		if eqFoldString(r.lines[i].name, name) {
			return r.lines[i].value
		}
	}
	return nil
}

// Headers calls fn with each header line in order, from the lines ParseLazy
// recorded (no full parse) or from Header once materialized. name and value
// are valid as long as the head is.
func (r *Response) Headers(fn func(name, value []byte)) {
	if r.lazy {
		for i := range r.lines {
			fn(r.lines[i].name, r.lines[i].value)
		}
		return
	}
	for k, v := range r.Header.All() {
		fn(k, v)
	}
}

// statusMessage is the origin's reason phrase.
func (r *Response) statusMessage() []byte {
	if !r.lazy {
		return r.Header.StatusMessage()
	}
	eol := bytes.IndexByte(r.raw, '\n')
	if eol < 14 {
		return nil
	}
	return r.raw[13 : eol-1]
}

// originStatus is the status the origin sent.
func (r *Response) originStatus() int {
	if !r.lazy {
		return r.Header.StatusCode()
	}
	if len(r.raw) < 12 {
		return 0
	}
	return int(r.raw[9]-'0')*100 + int(r.raw[10]-'0')*10 + int(r.raw[11]-'0')
}

// parseStatusLine validates "HTTP/1.x NNN [reason]" and sets Status and
// HTTP10.
func (r *Response) parseStatusLine(line []byte) error {
	if len(line) < 12 || line[8] != ' ' {
		return errRespStatusLine
	}
	switch string(line[:8]) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		r.HTTP10 = true
	default:
		return errRespVersion
	}
	code := line[9:12]
	if !isDigit(code[0]) || !isDigit(code[1]) || !isDigit(code[2]) {
		return errRespStatus
	}
	r.Status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if r.Status < 100 || r.Status > 599 {
		return errRespStatus
	}
	if len(line) > 12 {
		if line[12] != ' ' {
			return errRespStatusLine
		}
		for _, c := range line[13:] {
			if class[c]&classVchar == 0 && c != ' ' && c != '\t' {
				return errRespStatusLine
			}
		}
	}
	return nil
}
