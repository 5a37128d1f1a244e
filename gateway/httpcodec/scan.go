package httpcodec

import "bytes"

// Limits bounds the size of a request head. A zero or negative field means
// the default (DefaultMaxRequestLine, DefaultMaxHeaderBytes).
type Limits struct {
	// MaxRequestLine is the longest request line accepted, in bytes, without
	// its CRLF. Longer → 414 (CauseURITooLong). Not applied to responses.
	MaxRequestLine int
	// MaxHeaderBytes is the largest head accepted: request line (or status
	// line), header lines and all their CRLFs including the final empty line,
	// not counting skipped leading empty lines. Larger → 431
	// (CauseHeadersTooLarge) for requests, 502 for responses.
	MaxHeaderBytes int
	// MaxHeaders is the most header fields (lines after the request line) a
	// request head may have. More → 431 (CauseHeadersTooLarge) as soon as the
	// first one too many ends. Not applied to responses. Why a count beside
	// the byte limit: 32 KiB of 4-byte headers is 8,000 fields for the parser,
	// the filters and the origin, each costing more than its bytes.
	MaxHeaders int
}

// Default limits, the same as the gateway's configuration defaults.
const (
	DefaultMaxRequestLine = 8 << 10
	DefaultMaxHeaderBytes = 32 << 10
	// DefaultMaxHeaders is Envoy's default (HAProxy's is 101); browsers send
	// 10 to 30.
	DefaultMaxHeaders = 100
	// MaxMaxHeaders is the highest MaxHeaders a HeadScanner counts to.
	MaxMaxHeaders = 1<<16 - 1
)

// maxLeadingEmpty is how many bytes of empty lines (CRLF) may precede a
// request line or status line: RFC 9112 §2.2 asks a server to ignore at least
// one. Two lines are accepted; more is a 400.
const maxLeadingEmpty = 4

func (l Limits) withDefaults() Limits {
	if l.MaxRequestLine <= 0 {
		l.MaxRequestLine = DefaultMaxRequestLine
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	l.MaxHeaders = min(l.MaxHeaders, MaxMaxHeaders-1)
	return l
}

var (
	errURITooLong      = &Error{Status: 414, Cause: CauseURITooLong, Reason: "request line too long"}
	errHeadersTooLarge = &Error{Status: 431, Cause: CauseHeadersTooLarge, Reason: "request head too large"}
	errTooManyHeaders  = &Error{Status: 431, Cause: CauseHeadersTooLarge, Reason: "too many header fields (server.max_headers)"}
	errBareLF          = smuggling("bare lf in head")
	errLeadingEmpty    = badRequest("too many empty lines before request line")

	errRespHeadTooLarge = badResponse("response head too large")
	errRespBareLF       = badResponse("bare lf in response head")
	errRespLeadingEmpty = badResponse("too many empty lines before status line")
)

// HeadScanner finds the end of a request or response head incrementally.
//
// The caller accumulates the bytes read from the connection in one buffer and
// calls Scan with the whole buffer each time more bytes arrive; bytes already
// scanned are not scanned again (the scanner keeps its position, so the
// buffer's prefix must not change between calls). Scan returns n > 0 when the
// head is buf[:n], final CRLFCRLF included; bytes after it (a body, pipelined
// requests) are not looked at. It returns n == 0, err == nil when it needs
// more bytes.
//
// Leading empty lines: up to two empty lines (CRLF, 4 bytes) before the
// request line are accepted (RFC 9112 §2.2); they are part of buf[:n], Skipped
// reports their length, and Request.Parse and Response.Parse skip them. More
// is a 400. A bare LF anywhere (an LF not preceded by CR) is a 400 with
// CauseSmuggling. For requests the limits are enforced as soon as they are
// known to be exceeded: a request line grown past MaxRequestLine without its
// CRLF is a 414 at once, a head grown past MaxHeaderBytes a 431 at once, and
// so is a head whose header line one past MaxHeaders ends.
//
// Set Response before the first Scan to scan an origin's response head: then
// MaxRequestLine is not applied and every error is a 502 with
// CauseOriginBadResponse.
//
// Once Scan has returned a head or an error it keeps returning the same result
// until Reset. Reset keeps Response.
//
// Concurrency: a HeadScanner belongs to one connection and is used on that
// connection's event loop goroutine only; it is not safe for concurrent use.
// It holds no reference to buf between calls.
type HeadScanner struct {
	// Response selects response mode (see above). Kept by Reset.
	Response bool

	// Laid out small: an idle client connection keeps one.
	firstDone bool
	skipped   uint8  // bytes of leading empty lines
	fields    uint16 // header lines so far (requests: MaxHeaders)
	off       int    // next byte to scan
	lineStart int    // start of the line being scanned
	n         int
	err       *Error
}

// Reset prepares the scanner for the next head. It keeps Response.
func (s *HeadScanner) Reset() {
	*s = HeadScanner{Response: s.Response}
}

// Skipped returns the number of bytes of leading empty lines at the start of
// the head (0, 2 or 4).
func (s *HeadScanner) Skipped() int { return int(s.skipped) }

// Scan scans buf, the whole buffer accumulated so far; see HeadScanner.
func (s *HeadScanner) Scan(buf []byte, lim Limits) (n int, err error) {
	if s.n > 0 {
		return s.n, nil
	}
	if s.err != nil {
		return 0, s.err
	}
	lim = lim.withDefaults()
	for s.off < len(buf) {
		i := bytes.IndexByte(buf[s.off:], '\n')
		if i < 0 {
			s.off = len(buf)
			break
		}
		lf := s.off + i
		s.off = lf + 1
		// First the checks that a Scan of buf[:lf] would have made, so that
		// the outcome does not depend on how the input was split.
		if err := s.checkPartial(buf[:lf], lim); err != nil {
			return 0, err
		}
		if lf == 0 || buf[lf-1] != '\r' {
			return 0, s.fail(errBareLF, errRespBareLF)
		}
		lineLen := lf - 1 - s.lineStart
		s.lineStart = s.off
		switch {
		case !s.firstDone && lineLen == 0:
			s.skipped += 2
			if s.skipped > maxLeadingEmpty {
				return 0, s.fail(errLeadingEmpty, errRespLeadingEmpty)
			}
			continue
		case !s.firstDone:
			if !s.Response && lineLen > lim.MaxRequestLine {
				return 0, s.fail(errURITooLong, nil)
			}
			s.firstDone = true
		case lineLen == 0:
			if s.off-int(s.skipped) > lim.MaxHeaderBytes {
				return 0, s.fail(errHeadersTooLarge, errRespHeadTooLarge)
			}
			s.n = s.off
			return s.n, nil
		case !s.Response:
			s.fields++
			if int(s.fields) > lim.MaxHeaders {
				return 0, s.fail(errTooManyHeaders, nil)
			}
		}
		// At least the final CRLF is still to come.
		if s.off+2-int(s.skipped) > lim.MaxHeaderBytes {
			return 0, s.fail(errHeadersTooLarge, errRespHeadTooLarge)
		}
	}
	if err := s.checkPartial(buf, lim); err != nil {
		return 0, err
	}
	return 0, nil
}

// checkPartial applies the limits to buf, which ends inside a line (the
// line starting at s.lineStart): the request line so far must fit
// MaxRequestLine (a final CR may be the start of its CRLF), and the head,
// which is not complete, must already be under MaxHeaderBytes. With
// MaxHeaderBytes > MaxRequestLine+1, as the configuration ensures, the result
// is the same whichever prefix of the line buf ends at.
func (s *HeadScanner) checkPartial(buf []byte, lim Limits) *Error {
	if !s.firstDone && !s.Response {
		partial := len(buf) - s.lineStart
		if partial > 0 && buf[len(buf)-1] == '\r' {
			partial--
		}
		if partial > lim.MaxRequestLine {
			return s.fail(errURITooLong, nil)
		}
	}
	if len(buf)-int(s.skipped) > lim.MaxHeaderBytes {
		return s.fail(errHeadersTooLarge, errRespHeadTooLarge)
	}
	return nil
}

func (s *HeadScanner) fail(req, resp *Error) *Error {
	if s.Response {
		s.err = resp
	} else {
		s.err = req
	}
	return s.err
}
