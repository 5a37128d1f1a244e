package httpcodec

import "strconv"

// Chunked decoding limits.
const (
	// MaxChunkSize is the largest chunk-size accepted (2^62).
	MaxChunkSize = 1 << 62
	// MaxChunkLine bounds a chunk-size line: hex digits, whitespace and
	// chunk extensions, without its CRLF.
	MaxChunkLine = 4 << 10
	// DefaultMaxTrailerBytes bounds the trailer section (all trailer lines
	// and the final CRLF) when ChunkedDecoder.MaxTrailerBytes is 0.
	DefaultMaxTrailerBytes = 8 << 10
)

// FinalChunk is the last-chunk and empty trailer section that ends a chunked
// body.
const FinalChunk = "0\r\n\r\n"

type chunkErr int

const (
	ceBadSize chunkErr = iota
	ceOverflow
	ceLineTooLong
	ceBadExt
	ceBareLF
	ceNoCRLF
	ceBadTrailer
	ceTrailerTooLarge
	ceCount
)

var chunkReasons = [ceCount]string{
	ceBadSize:         "invalid chunk size",
	ceOverflow:        "chunk size too large",
	ceLineTooLong:     "chunk size line too long",
	ceBadExt:          "invalid chunk extension",
	ceBareLF:          "bare lf in chunked body",
	ceNoCRLF:          "missing crlf in chunked body",
	ceBadTrailer:      "invalid trailer field",
	ceTrailerTooLarge: "trailer section too large",
}

// chunkErrs[0] for requests, chunkErrs[1] for responses.
var chunkErrs = func() (t [2][ceCount]*Error) {
	for k := chunkErr(0); k < ceCount; k++ {
		t[0][k] = smuggling(chunkReasons[k])
		t[1][k] = badResponse(chunkReasons[k])
	}
	return t
}()

type chunkState uint8

const (
	csSize         chunkState = iota // chunk-size hex digits
	csSizeBWS                        // whitespace after the size: only ";" may follow
	csExt                            // chunk extensions, up to CR
	csSizeLF                         // CR of the size line seen
	csData                           // chunk data
	csDataCR                         // CRLF after the data
	csDataLF                         //
	csTrailerStart                   // start of a trailer line or the final CRLF
	csTrailerName                    // trailer field name
	csTrailerValue                   // trailer field value, up to CR
	csTrailerLF                      // CR of a trailer line seen
	csEndLF                          // CR of the final empty line seen
	csDone
)

// ChunkedDecoder decodes a chunked body (RFC 9112 §7.1) incrementally, over
// any split of its input.
//
// Next consumes framing and returns at most one data segment per call: the
// caller loops while consumed > 0 && !done, passing in[consumed:]. Next
// consumes all of in unless it returns data (then it stops after that
// segment), reaches the end of the body (then the bytes after it, e.g. a
// pipelined request, are not consumed) or fails; partial framing is kept in
// the decoder's state, so the caller never has to keep unconsumed bytes for
// it. done becomes true after the last-chunk and the trailer section.
// Trailer fields are validated, counted against MaxTrailerBytes and kept,
// as received, for Trailer (a proxy passes them on: AppendTrailerFields).
//
// Strictness: the chunk-size is 1*HEXDIG up to MaxChunkSize (2^62); after
// it only BWS followed by ";" chunk extensions, or CRLF, may come (so
// "5 \r\n" is rejected); the size line is at most MaxChunkLine bytes;
// extensions may not contain control characters other than HTAB; data must
// be followed by CRLF; every LF must be preceded by CR; trailer lines must be
// "token:value" without control characters and without obs-fold.
//
// Errors are *Error: 400 with CauseSmuggling, or, when Response is set, 502
// with CauseOriginBadResponse. After an error, Next keeps returning it until
// Reset.
//
// Concurrency: a ChunkedDecoder belongs to one message stream and is used on
// its connection's event loop goroutine only. It holds no reference to in
// between calls; returned data is a subslice of in, valid as long as in is.
// It allocates only to keep a trailer section, into a buffer it reuses after
// Reset (at most MaxTrailerBytes are kept), so a body without trailers never
// allocates.
type ChunkedDecoder struct {
	// Response selects response errors (502). Kept by Reset.
	Response bool
	// MaxTrailerBytes bounds the trailer section; 0 means
	// DefaultMaxTrailerBytes. Kept by Reset.
	MaxTrailerBytes int

	state     chunkState
	digits    int
	line      int
	size      uint64
	remaining uint64
	trailer   int
	err       *Error
	// fields is the trailer section's field lines as received ("name:value\r\n"
	// each, validated), without the section's final CRLF.
	fields []byte
}

// Reset prepares the decoder for the next body. It keeps Response and
// MaxTrailerBytes, and the trailer buffer's memory, emptied, while it is
// small (KeepTrailerBuffer): a pooled decoder does not hold a big section's.
func (d *ChunkedDecoder) Reset() {
	*d = ChunkedDecoder{Response: d.Response, MaxTrailerBytes: d.MaxTrailerBytes, fields: KeepTrailerBuffer(d.fields)}
}

// KeepTrailerBuffer returns b emptied when its memory is worth keeping for the
// next message (at most 1 KiB: the trailer sections seen in practice, gRPC's
// status and message), nil otherwise, so that recycled streams and exchanges
// do not each keep up to a bound's worth after one big trailer section.
func KeepTrailerBuffer(b []byte) []byte {
	if cap(b) > 1<<10 {
		return nil
	}
	return b[:0]
}

// Done reports whether the whole body, trailers included, has been decoded.
func (d *ChunkedDecoder) Done() bool { return d.state == csDone }

// Trailer returns the trailer section's field lines once Done: each
// "name:value\r\n" as the sender wrote it (names are tokens, values have no
// control character but HTAB and may carry OWS), without the final empty
// line; nil before Done or when the section is empty. Valid until Reset.
func (d *ChunkedDecoder) Trailer() []byte {
	if d.state != csDone || len(d.fields) == 0 {
		return nil
	}
	return d.fields
}

func (d *ChunkedDecoder) fail(k chunkErr) *Error {
	mode := 0
	if d.Response {
		mode = 1
	}
	d.err = chunkErrs[mode][k]
	return d.err
}

// Next decodes from in; see ChunkedDecoder.
func (d *ChunkedDecoder) Next(in []byte) (consumed int, data []byte, done bool, err error) {
	if d.err != nil {
		return 0, nil, false, d.err
	}
	if d.state == csDone {
		return 0, nil, true, nil
	}
	maxTrailer := d.MaxTrailerBytes
	if maxTrailer <= 0 {
		maxTrailer = DefaultMaxTrailerBytes
	}
	i := 0
	for i < len(in) {
		if d.state == csData {
			n := len(in) - i
			if uint64(n) > d.remaining {
				n = int(d.remaining)
			}
			data = in[i : i+n]
			i += n
			d.remaining -= uint64(n)
			if d.remaining == 0 {
				d.state = csDataCR
			}
			return i, data, false, nil
		}
		c := in[i]
		i++
		var err *Error
		switch d.state {
		case csSize, csSizeBWS, csExt:
			err = d.sizeLineByte(c)
		case csSizeLF:
			err = d.sizeLineEnd(c)
		case csDataCR:
			if c != '\r' {
				err = d.fail(ceNoCRLF)
			}
			d.state = csDataLF
		case csDataLF:
			if c != '\n' {
				err = d.fail(ceNoCRLF)
			}
			d.state = csSize
		default:
			if err = d.trailerByte(c, maxTrailer); err == nil && d.state == csDone {
				return i, nil, true, nil
			}
		}
		if err != nil {
			return i, nil, false, err
		}
	}
	return i, nil, false, nil
}

// sizeLineByte advances the chunk-size line (size, BWS, extensions) by one
// byte, up to its CR.
func (d *ChunkedDecoder) sizeLineByte(c byte) *Error {
	switch d.state {
	case csSize:
		if class[c]&classHexDig != 0 {
			v := uint64(hexVal(c))
			if d.size > (MaxChunkSize-v)/16 {
				return d.fail(ceOverflow)
			}
			d.size = d.size*16 + v
			d.digits++
			break
		}
		if d.digits == 0 {
			return d.fail(ceBadSize)
		}
		switch c {
		case ';':
			d.state = csExt
		case ' ', '\t':
			d.state = csSizeBWS
		case '\r':
			d.state = csSizeLF
		case '\n':
			return d.fail(ceBareLF)
		default:
			return d.fail(ceBadSize)
		}
	case csSizeBWS:
		switch c {
		case ' ', '\t':
		case ';':
			d.state = csExt
		default:
			return d.fail(ceBadSize)
		}
	case csExt:
		switch {
		case c == '\r':
			d.state = csSizeLF
		case c == '\n':
			return d.fail(ceBareLF)
		case (c < 0x20 && c != '\t') || c == 0x7f:
			return d.fail(ceBadExt)
		}
	}
	d.line++
	if d.line > MaxChunkLine {
		return d.fail(ceLineTooLong)
	}
	return nil
}

// sizeLineEnd takes the LF that ends a chunk-size line: data follows, or the
// trailer section after the last chunk.
func (d *ChunkedDecoder) sizeLineEnd(c byte) *Error {
	if c != '\n' {
		return d.fail(ceNoCRLF)
	}
	if d.size == 0 {
		d.state = csTrailerStart
	} else {
		d.remaining = d.size
		d.state = csData
	}
	d.size, d.digits, d.line = 0, 0, 0
	return nil
}

// trailerByte advances the trailer section state machine by one byte.
func (d *ChunkedDecoder) trailerByte(c byte, maxTrailer int) *Error {
	d.trailer++
	if d.trailer > maxTrailer {
		return d.fail(ceTrailerTooLarge)
	}
	if d.state != csEndLF && !(d.state == csTrailerStart && c == '\r') {
		// A byte of a field line (the final CRLF is not kept); a bad one
		// fails below, and a failed decoder's Trailer is never read.
		d.fields = append(d.fields, c)
	}
	switch d.state {
	case csTrailerStart:
		switch {
		case c == '\r':
			d.state = csEndLF
		case c == '\n':
			return d.fail(ceBareLF)
		case isTchar(c):
			d.state = csTrailerName
		default: // obs-fold, empty name, other bytes
			return d.fail(ceBadTrailer)
		}
	case csTrailerName:
		switch {
		case c == ':':
			d.state = csTrailerValue
		case c == '\n':
			return d.fail(ceBareLF)
		case !isTchar(c):
			return d.fail(ceBadTrailer)
		}
	case csTrailerValue:
		switch {
		case c == '\r':
			d.state = csTrailerLF
		case c == '\n':
			return d.fail(ceBareLF)
		case (c < 0x20 && c != '\t') || c == 0x7f:
			return d.fail(ceBadTrailer)
		}
	case csTrailerLF:
		if c != '\n' {
			return d.fail(ceNoCRLF)
		}
		d.state = csTrailerStart
	case csEndLF:
		if c != '\n' {
			return d.fail(ceNoCRLF)
		}
		d.state = csDone
	}
	return nil
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// AppendChunkHeader appends the chunk-size line for a chunk of n bytes
// ("1f4\r\n"). The caller then writes the n bytes and "\r\n"; the body ends
// with FinalChunk ("0\r\n\r\n"). n must be > 0 (0 would end the body).
func AppendChunkHeader(dst []byte, n int) []byte {
	dst = strconv.AppendUint(dst, uint64(n), 16)
	return append(dst, '\r', '\n')
}
