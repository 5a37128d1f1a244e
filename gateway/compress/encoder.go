package compress

import (
	"errors"
	"fmt"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// The level range of the configuration, with nginx's gzip_comp_level meaning: 1 is
// the cheapest, 9 compresses hardest. See the package comment for what each level
// means for each coding.
const (
	MinLevel     = 1
	MaxLevel     = 9
	DefaultLevel = 5
)

const (
	// brotliWindowBits is the base-2 log of brotli's window: 64 KiB (gzip's is
	// 32 KiB). The library's default, 22, costs megabytes per encoder, and not only
	// in the window: the ring buffer is twice the window, and the metablock that
	// brotli accumulates before it emits, with its output and command buffers,
	// grows with the ring buffer. Measured at level 5 after a 2 MiB body, 18 bits
	// hold 3.2 MiB per encoder and 16 bits 1.7 MiB, for output 1.3% larger on 2 MiB
	// of HTML and no different on 64 KiB (bodies this size fit the window anyway).
	brotliWindowBits = 16

	// zstdWindow bounds zstd's history the same way; the library's default is
	// 8 MiB. It is also what the frame header asks the client to allocate.
	zstdWindow = 256 << 10

	// brotliPiece is the most Encoder.Write hands brotli in one call (see Write).
	brotliPiece = 64 << 10

	// maxKeptOutput is the output buffer capacity an encoder keeps across
	// responses. A response written in big pieces grows the buffer; keeping that
	// in an idle encoder would make the pool's memory depend on the largest write
	// ever seen rather than on the number of encoders.
	maxKeptOutput = 64 << 10
)

// errClosed is returned for a Write or Flush after Close (before the encoder is
// reset or back in its pool).
var errClosed = errors.New("encoder is closed")

// Encoder compresses one response body at a time, as a stream: the body goes in by
// pieces as it arrives from the origin, and what each call returns is the
// compressed bytes ready to go to the client. (A small gzip body is compressed
// in one shot at Close instead: see Write.)
//
// Concurrency and buffers: an Encoder belongs to one goroutine at a time (the event
// loop that took it from its Pool). The slice returned by Write, Flush and Close
// aliases the encoder's output buffer and is valid only until the next call on the
// encoder (Write, Flush, Close, Reset, or Pool.Put): the caller copies it out (into
// the connection's outbound buffer) before calling again. The encoder keeps no
// reference to the input it is given.
//
// Errors: the codecs write into memory, so a failure is an encoder fault or a
// misuse (a Write after Close). After an error the stream is broken; the response
// cannot be finished, and the caller must end it abruptly (close the connection,
// or reset the stream) rather than send a truncated body as if it were complete.
// The encoder itself can be reset and reused.
type Encoder struct {
	coding Encoding
	level  int
	out    sink

	// By coding: gzip holds a body back while it may still be compressed in one
	// shot (held, by one), and streams it through gz otherwise (streaming); both
	// are built on first use. brotli and zstd always stream.
	gz        *gzip.Writer
	one       *oneShot
	held      []byte
	streaming bool
	br        *brotli.Writer
	zs        *zstd.Encoder

	closed bool
	err    error

	// Pool bookkeeping: the pool the encoder belongs to, and whether it is
	// checked out (so a second Put of the same encoder is ignored).
	pool       *Pool
	checkedOut bool
}

// sink is the io.Writer the codecs write to: it appends to the buffer the caller
// reads through Write, Flush and Close. It never fails.
type sink struct{ buf []byte }

func (s *sink) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	return len(p), nil
}

// NewEncoder returns an encoder for coding e at level (MinLevel..MaxLevel; out of
// range is an error), ready for its first response. Most callers take encoders from
// a Pool instead, which bounds how many exist and reuses their memory.
func NewEncoder(e Encoding, level int) (*Encoder, error) {
	if level < MinLevel || level > MaxLevel {
		return nil, fmt.Errorf("compression level %d: want %d..%d", level, MinLevel, MaxLevel)
	}
	enc := &Encoder{coding: e, level: level}
	switch e {
	case Gzip:
		// Nothing yet: a body that turns out small never needs klauspost's
		// megabyte of tables (see Write).
	case Brotli:
		enc.br = brotli.NewWriterOptions(&enc.out, brotli.WriterOptions{
			Quality: brotliQuality(level),
			LGWin:   brotliWindowBits,
		})
	case Zstd:
		zs, err := zstd.NewWriter(&enc.out,
			zstd.WithEncoderLevel(zstdLevel(level)),
			// One: the stream is then encoded on the caller's goroutine, block by
			// block; above one the encoder hands each block to goroutines.
			zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true),
			zstd.WithWindowSize(zstdWindow),
		)
		if err != nil {
			return nil, fmt.Errorf("new zstd encoder at level %d: %w", level, err)
		}
		enc.zs = zs
	default:
		return nil, fmt.Errorf("new encoder: unknown coding %d", e)
	}
	return enc, nil
}

// Encoding returns the coding the encoder produces, for the Content-Encoding field.
func (e *Encoder) Encoding() Encoding { return e.coding }

// Write compresses p and returns the compressed bytes that are ready now, which may
// be none: the codecs hold input back until they have a block worth encoding, so a
// small piece often yields nothing until Flush or Close. See the type's comment for
// how long the result is valid.
//
// gzip holds back (copies) the first oneShotMax bytes of a body: when Close comes
// before more arrive and before any Flush, the body is compressed in one shot
// (oneshot.go), at a fraction of a stream's fixed cost; else it streams as the
// other codings do, starting with what was held.
func (e *Encoder) Write(p []byte) ([]byte, error) {
	e.out.buf = e.out.buf[:0]
	if err := e.usable(); err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, nil
	}
	var err error
	switch {
	case e.coding == Gzip:
		if !e.streaming && len(e.held)+len(p) <= oneShotMax {
			if e.held == nil {
				e.held = make([]byte, 0, oneShotMax) // never grown: see the test of the bound
			}
			e.held = append(e.held, p...)
			break
		}
		if err = e.startStream(); err == nil {
			_, err = e.gz.Write(p)
		}
	case e.br != nil:
		// In bounded pieces: brotli sizes its hash table from the first input it
		// sees (at quality 4, 4 MiB instead of 512 KiB from 1 MiB on), and keeps
		// that table across Reset, so one big write would bloat the encoder for
		// good.
		for len(p) > 0 && err == nil {
			n := min(len(p), brotliPiece)
			_, err = e.br.Write(p[:n])
			p = p[n:]
		}
	default:
		_, err = e.zs.Write(p)
	}
	return e.result("write", err)
}

// Flush compresses everything written so far and returns it, ending on a boundary
// from which the client's decoder can reproduce all of that input: the relay calls
// it when it has forwarded what the origin had sent so far and the origin is
// silent (a stream of events, a slow page), so the client is not kept waiting for
// bytes stuck in the encoder. Each Flush costs a few bytes and some compression,
// so it is not for every small write of a body that is still arriving fast.
func (e *Encoder) Flush() ([]byte, error) {
	e.out.buf = e.out.buf[:0]
	if err := e.usable(); err != nil {
		return nil, err
	}
	var err error
	switch {
	case e.coding == Gzip:
		// A flushed body is a stream: its client is to see each part as it comes.
		if err = e.startStream(); err == nil {
			err = e.gz.Flush()
		}
	case e.br != nil:
		err = e.br.Flush()
	default:
		err = e.zs.Flush()
	}
	return e.result("flush", err)
}

// Close ends the stream and returns its last bytes (trailer, checksum). The encoder
// then refuses Write and Flush until it is reset or put back in its pool; a second
// Close returns nothing.
func (e *Encoder) Close() ([]byte, error) {
	e.out.buf = e.out.buf[:0]
	if e.err != nil {
		return nil, e.err
	}
	if e.closed {
		return nil, nil
	}
	e.closed = true
	var err error
	switch {
	case e.coding == Gzip && !e.streaming:
		if e.one == nil {
			e.one = newOneShot()
		}
		e.out.buf = e.one.appendGzip(e.out.buf, e.held, e.level)
	case e.coding == Gzip:
		err = e.gz.Close()
	case e.br != nil:
		err = e.br.Close()
	default:
		err = e.zs.Close()
	}
	return e.result("close", err)
}

// Reset discards the stream in progress, if any, and makes the encoder ready for a
// new response with the same coding and level. Pool.Put does it; a caller that
// owns an encoder without a pool calls it between responses. The codecs keep their
// tables and windows across Reset: that reuse is what the pool is for.
func (e *Encoder) Reset() {
	if cap(e.out.buf) > maxKeptOutput {
		e.out.buf = nil
	}
	e.out.buf = e.out.buf[:0]
	e.closed = false
	e.err = nil
	switch {
	case e.coding == Gzip:
		e.held = e.held[:0]
		if e.streaming {
			e.gz.Reset(&e.out)
			setGzipHeader(e.gz)
			e.streaming = false
		}
	case e.br != nil:
		e.br.Reset(&e.out)
	default:
		e.zs.Reset(&e.out)
	}
}

// startStream turns a gzip body from held back to streamed: klauspost's writer
// (built on first use) gets what was held. Once streaming, it does nothing.
func (e *Encoder) startStream() error {
	if e.streaming {
		return nil
	}
	if e.gz == nil {
		gz, err := gzip.NewWriterLevel(&e.out, gzipLevel(e.level))
		if err != nil {
			return fmt.Errorf("new gzip encoder at level %d: %w", e.level, err)
		}
		e.gz = gz
		setGzipHeader(gz)
	}
	e.streaming = true
	if len(e.held) == 0 {
		return nil
	}
	_, err := e.gz.Write(e.held)
	e.held = e.held[:0]
	return err
}

// usable returns why the encoder cannot take a Write or Flush, or nil.
func (e *Encoder) usable() error {
	if e.err != nil {
		return e.err
	}
	if e.closed {
		return fmt.Errorf("%s: %w", e.coding, errClosed)
	}
	return nil
}

// result turns a codec call's outcome into what the Encoder returns. A codec error
// sticks: the compressed stream is corrupt from that point on.
func (e *Encoder) result(op string, err error) ([]byte, error) {
	if err != nil {
		e.err = fmt.Errorf("%s %s: %w", e.coding, op, err)
		return nil, e.err
	}
	return e.out.buf, nil
}

// setGzipHeader fills the gzip header Reset cleared. klauspost's gzip writes
// uint32(ModTime.Unix()) as MTIME without checking for the zero time, which would
// stamp every response with a made-up date (1970 plus whatever the negative number
// wraps to). The Unix epoch gives MTIME 0, "no time stamp" (RFC 1952).
func setGzipHeader(gz *gzip.Writer) {
	gz.ModTime = time.Unix(0, 0)
}
