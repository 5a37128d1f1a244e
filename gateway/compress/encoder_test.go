package compress

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func TestRoundTrip(t *testing.T) {
	bodies := map[string][]byte{
		"empty":  nil,
		"byte":   []byte("x"),
		"hello":  []byte("hello, world\n"),
		"html":   testBody(t, "page.html"),
		"json":   testBody(t, "api.json"),
		"random": randomBytes(100<<10, 1),
		// Past the windows (zstd's 256 KiB is the largest) and zstd's block size.
		"large": bytes.Repeat(testBody(t, "api.json"), 6),
	}
	// The big bodies run at three levels only: the race detector makes the
	// codecs slow, and the levels differ in tables, not in framing.
	big := func(name string) bool { return name == "random" || name == "large" }
	for _, e := range codings {
		for level := MinLevel; level <= MaxLevel; level++ {
			enc, err := NewEncoder(e, level)
			if err != nil {
				t.Fatal(err)
			}
			for name, body := range bodies {
				if big(name) && level != MinLevel && level != DefaultLevel && level != MaxLevel {
					continue
				}
				for _, piece := range []int{0, 1000, 16 << 10} {
					if piece == 1000 && level != DefaultLevel {
						continue // small pieces: one level is enough
					}
					t.Run(fmt.Sprintf("%v/%d/%s/%d", e, level, name, piece), func(t *testing.T) {
						enc.Reset()
						compressed := encodeAll(t, enc, body, piece)
						got, err := decodeAll(e, compressed)
						if err != nil {
							t.Fatalf("decode: %v", err)
						}
						if !bytes.Equal(got, body) {
							t.Fatalf("decoded %d bytes, want the %d written", len(got), len(body))
						}
						if name == "html" && len(compressed) > len(body)/4 {
							t.Errorf("html compressed to %d of %d bytes: the level is not doing its job", len(compressed), len(body))
						}
					})
				}
			}
		}
	}
}

// TestStreamingFlush is what a client reading a streamed response needs: after
// every Flush, a decoder reading the bytes as they arrive reproduces everything
// written so far, without waiting for bytes that were not sent yet. The decoder
// reads from a pipe, so one that wanted to read ahead would block, and the test
// would time out on that piece.
func TestStreamingFlush(t *testing.T) {
	body := testBody(t, "page.html")
	pieces := [][]byte{[]byte("<"), []byte("!DOCTYPE html>\n"), body[:100], body[100:5000], body[5000:40000], nil, body[40000:]}
	for _, e := range codings {
		t.Run(e.String(), func(t *testing.T) {
			enc, err := NewEncoder(e, DefaultLevel)
			if err != nil {
				t.Fatal(err)
			}
			pr, pw := io.Pipe()
			defer pr.Close()
			c := &collector{plain: make(chan []byte, 64), err: make(chan error, 1)}
			go c.decode(e, pr)
			// send queues a copy of the encoder's output for a goroutine that writes
			// it into the pipe in order: a pipe write returns only when the reader
			// took all of it, and the decoder may be blocked handing us plain text.
			wire := make(chan []byte, 64)
			defer close(wire)
			go func() {
				for b := range wire {
					_, _ = pw.Write(b)
				}
				_ = pw.Close()
			}()
			send := func(b []byte) { wire <- bytes.Clone(b) }
			var want []byte
			for i, p := range pieces {
				out, err := enc.Write(p)
				if err != nil {
					t.Fatal(err)
				}
				send(out)
				out, err = enc.Flush()
				if err != nil {
					t.Fatal(err)
				}
				send(out)
				want = append(want, p...)
				c.expect(t, want, i)
			}
			out, err := enc.Close()
			if err != nil {
				t.Fatal(err)
			}
			send(out)
			c.expect(t, want, len(pieces))
		})
	}
}

// collector runs a decoder over a pipe and gathers the plain text it produces.
type collector struct {
	plain chan []byte
	err   chan error
	got   []byte
}

func (c *collector) decode(e Encoding, r io.Reader) {
	defer close(c.plain)
	d, err := newDecoder(e, r)
	if err != nil {
		c.err <- err
		return
	}
	for {
		buf := make([]byte, 4096)
		n, err := d.Read(buf)
		if n > 0 {
			c.plain <- buf[:n]
		}
		if err != nil {
			if err != io.EOF {
				c.err <- err
			}
			return
		}
	}
}

// expect waits until the decoder produced exactly want (all the plain text written
// so far), failing if it does not within a few seconds.
func (c *collector) expect(t *testing.T, want []byte, piece int) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for len(c.got) < len(want) {
		select {
		case b, ok := <-c.plain:
			if !ok {
				t.Fatalf("after piece %d: decoder stopped at %d of %d bytes", piece, len(c.got), len(want))
			}
			c.got = append(c.got, b...)
		case err := <-c.err:
			t.Fatalf("after piece %d: decoder: %v", piece, err)
		case <-timeout:
			t.Fatalf("after piece %d: the decoder produced %d of the %d bytes flushed: a flushed prefix is not decodable", piece, len(c.got), len(want))
		}
	}
	if !bytes.Equal(c.got, want) {
		t.Fatalf("after piece %d: decoded bytes differ from those written", piece)
	}
}

// TestEncoderDoesNotKeepInput: the relay reuses its read buffer as soon as Write
// returns, so an encoder that kept a reference to it would compress garbage.
func TestEncoderDoesNotKeepInput(t *testing.T) {
	body := testBody(t, "api.json")
	for _, e := range codings {
		enc, err := NewEncoder(e, DefaultLevel)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 3000)
		var out []byte
		for p := body; len(p) > 0; {
			n := copy(buf, p)
			b, err := enc.Write(buf[:n])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b...)
			for i := range buf {
				buf[i] = '#'
			}
			p = p[n:]
		}
		b, err := enc.Close()
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeAll(e, append(out, b...))
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%v: the body did not survive its buffer's reuse (err %v)", e, err)
		}
	}
}

func TestEncoderAfterClose(t *testing.T) {
	for _, e := range codings {
		enc, err := NewEncoder(e, DefaultLevel)
		if err != nil {
			t.Fatal(err)
		}
		first := encodeAll(t, enc, []byte("some body"), 0)
		if _, err := enc.Write([]byte("more")); !errors.Is(err, errClosed) || !strings.HasPrefix(err.Error(), e.String()+": ") {
			t.Errorf("%v: Write after Close = %v, want %v prefixed by the coding", e, err, errClosed)
		}
		if _, err := enc.Flush(); !errors.Is(err, errClosed) {
			t.Errorf("%v: Flush after Close = %v, want %v", e, err, errClosed)
		}
		if b, err := enc.Close(); err != nil || len(b) != 0 {
			t.Errorf("%v: second Close = %d bytes, %v; want nothing", e, len(b), err)
		}
		// Reset makes it whole again, and the next stream is independent.
		enc.Reset()
		second := encodeAll(t, enc, []byte("some body"), 0)
		if !bytes.Equal(first, second) {
			t.Errorf("%v: the same body encoded after Reset differs: %x vs %x", e, first, second)
		}
	}
}

// TestEncoderResetMidStream: a response abandoned half-way (the client left)
// leaves nothing behind in the next one.
func TestEncoderResetMidStream(t *testing.T) {
	body := testBody(t, "page.html")
	for _, e := range codings {
		enc, err := NewEncoder(e, DefaultLevel)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enc.Write(body[:30000]); err != nil {
			t.Fatal(err)
		}
		enc.Reset()
		got, err := decodeAll(e, encodeAll(t, enc, body[30000:], 4096))
		if err != nil || !bytes.Equal(got, body[30000:]) {
			t.Errorf("%v: stream after a mid-stream Reset does not decode to its own body (err %v)", e, err)
		}
	}
}

func TestNewEncoderRejects(t *testing.T) {
	for _, tc := range []struct {
		e     Encoding
		level int
	}{{Gzip, 0}, {Gzip, 10}, {Brotli, -1}, {None, 5}, {Encoding(7), 5}} {
		if enc, err := NewEncoder(tc.e, tc.level); err == nil || enc != nil {
			t.Errorf("NewEncoder(%v, %d) = %v, %v; want an error", tc.e, tc.level, enc, err)
		}
	}
}

// TestGzipHeader: no made-up modification time (klauspost writes the zero
// time.Time as a date in 2042), and a header the standard library reads.
func TestGzipHeader(t *testing.T) {
	enc, err := NewEncoder(Gzip, DefaultLevel)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second stream runs on a Reset encoder
		r, err := stdgzip.NewReader(bytes.NewReader(encodeAll(t, enc, []byte("x"), 0)))
		if err != nil {
			t.Fatal(err)
		}
		if !r.ModTime.IsZero() {
			t.Errorf("gzip MTIME = %v, want none", r.ModTime)
		}
		enc.Reset()
	}
}

// TestZstdStartsNoGoroutines: with concurrency 1, klauspost's zstd encodes on the
// caller's goroutine. Anything else would break the loop's rules (and leak
// goroutines per response).
func TestZstdStartsNoGoroutines(t *testing.T) {
	body := bytes.Repeat(testBody(t, "api.json"), 8)
	before := runtime.NumGoroutine()
	encs := make([]*Encoder, 8)
	for i := range encs {
		enc, err := NewEncoder(Zstd, MaxLevel)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enc.Write(body); err != nil {
			t.Fatal(err)
		}
		if _, err := enc.Flush(); err != nil {
			t.Fatal(err)
		}
		encs[i] = enc
	}
	// More would be the encoders' own; fewer is another test's goroutine that
	// ended meanwhile (it happened: 3 before, 2 after).
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines: %d before, %d with live zstd encoders", before, after)
	}
	for _, enc := range encs {
		if _, err := enc.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLevelMappingInRange: every level maps to a setting the libraries accept, and
// a higher level never compresses worse than a much lower one.
func TestLevelMappingInRange(t *testing.T) {
	body := testBody(t, "page.html")
	for _, e := range codings {
		sizes := make([]int, MaxLevel+1)
		for level := MinLevel; level <= MaxLevel; level++ {
			enc, err := NewEncoder(e, level)
			if err != nil {
				t.Fatalf("%v level %d: %v", e, level, err)
			}
			sizes[level] = len(encodeAll(t, enc, body, 0))
		}
		t.Logf("%v: html (%d bytes) at levels 1..9: %v", e, len(body), sizes[1:])
		if sizes[MaxLevel] > sizes[MinLevel] {
			t.Errorf("%v: level %d gives %d bytes, more than level %d's %d", e, MaxLevel, sizes[MaxLevel], MinLevel, sizes[MinLevel])
		}
	}
}

// TestSmallWritesKeepRatio: the relay writes what each read of the origin gave, often
// a few hundred bytes; an encoder must keep its history across writes. (Brotli's
// qualities 0 and 1 do not, which is why no level maps to them.)
func TestSmallWritesKeepRatio(t *testing.T) {
	body := testBody(t, "page.html")
	for _, e := range codings {
		for _, level := range []int{MinLevel, DefaultLevel, MaxLevel} {
			enc, err := NewEncoder(e, level)
			if err != nil {
				t.Fatal(err)
			}
			whole := len(encodeAll(t, enc, body, 0))
			enc.Reset()
			small := len(encodeAll(t, enc, body, 500))
			if small > whole+whole/10 {
				t.Errorf("%v level %d: %d bytes written in 500-byte pieces, %d at once", e, level, small, whole)
			}
		}
	}
}

// TestZstdWindow: the frame tells the client how much history to keep. Browsers
// refuse more than 8 MiB (RFC 9659); Gozer asks for its own small window, whatever
// the body's length.
func TestZstdWindow(t *testing.T) {
	body := bytes.Repeat(testBody(t, "api.json"), 40) // 2.5 MiB
	for _, level := range []int{MinLevel, DefaultLevel, MaxLevel} {
		enc, err := NewEncoder(Zstd, level)
		if err != nil {
			t.Fatal(err)
		}
		var h zstd.Header
		if err := h.Decode(encodeAll(t, enc, body, 64<<10)); err != nil {
			t.Fatal(err)
		}
		t.Logf("level %d: zstd frame window %d KiB", level, h.WindowSize>>10)
		if h.SingleSegment || h.WindowSize > zstdWindow {
			t.Errorf("level %d: frame window %d (single segment %v), want at most %d", level, h.WindowSize, h.SingleSegment, zstdWindow)
		}
	}
}

// TestGzipPaths: a gzip body closed before it outgrows oneShotMax, and never
// flushed, is compressed in one shot; any other streams through klauspost, with
// what was held back first. Either way the client gets the body, and the path
// does not show in the header.
func TestGzipPaths(t *testing.T) {
	body := bytes.Repeat(testBody(t, "api.json"), 2)[:3*oneShotMax]
	type step struct {
		n     int  // bytes written next (0: none)
		flush bool // then Flush
	}
	for _, tc := range []struct {
		name    string
		steps   []step
		oneShot bool
	}{
		{"nothing", nil, true},
		{"one write", []step{{n: 1935}}, true},
		{"pieces", []step{{n: 1000}, {n: 1000}, {n: 3000}}, true},
		{"the bound in one write", []step{{n: oneShotMax}}, true},
		{"the bound in pieces", []step{{n: oneShotMax - 1}, {n: 1}}, true},
		{"past the bound in one write", []step{{n: oneShotMax + 1}}, false},
		{"past the bound by a piece", []step{{n: oneShotMax}, {n: 1}}, false},
		{"much more", []step{{n: 1000}, {n: 2 * oneShotMax}, {n: 100}}, false},
		{"flushed", []step{{n: 1000, flush: true}, {n: 1000}}, false},
		{"flushed before any byte", []step{{flush: true}, {n: 1000}}, false},
		{"flushed last", []step{{n: 1000, flush: true}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := NewEncoder(Gzip, DefaultLevel)
			if err != nil {
				t.Fatal(err)
			}
			for round := range 2 { // the second runs on a Reset encoder
				var out []byte
				off := 0
				for _, s := range tc.steps {
					b, err := enc.Write(body[off : off+s.n])
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, b...)
					off += s.n
					if s.flush {
						b, err := enc.Flush()
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, b...)
						if got, err := decodeFlushed(out); err != nil || !bytes.Equal(got, body[:off]) {
							t.Fatalf("after Flush, %d bytes decode (err %v), want the %d written", len(got), err, off)
						}
					}
				}
				if enc.streaming == tc.oneShot {
					t.Errorf("round %d: streaming %v, want %v", round, enc.streaming, !tc.oneShot)
				}
				b, err := enc.Close()
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b...)
				got, err := decodeAll(Gzip, out)
				if err != nil || !bytes.Equal(got, body[:off]) {
					t.Fatalf("round %d: %d bytes decoded (err %v), want the %d written", round, len(got), err, off)
				}
				if !bytes.Equal(out[:10], []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}) {
					t.Errorf("round %d: gzip header %x", round, out[:10])
				}
				enc.Reset()
			}
		})
	}
}

// decodeFlushed decodes a gzip stream that is not finished yet: everything up to
// the last flush.
func decodeFlushed(data []byte) ([]byte, error) {
	r, err := stdgzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	got, err := io.ReadAll(r)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil // the stream goes on
	}
	return got, err
}

// TestGzipOneShotMemory: an encoder that only ever compressed small bodies never
// built klauspost's writer (about a megabyte of tables), and held-back input is
// not kept past the encoder's next Reset beyond oneShotMax.
func TestGzipOneShotMemory(t *testing.T) {
	enc, err := NewEncoder(Gzip, DefaultLevel)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		encodeAll(t, enc, testBody(t, "api.json")[:oneShotMax], 1000)
		enc.Reset()
	}
	if enc.gz != nil {
		t.Error("small bodies built the streaming writer")
	}
	if cap(enc.held) > oneShotMax {
		t.Errorf("held back %d bytes of capacity, more than oneShotMax", cap(enc.held))
	}
}
