package compress

import (
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// codings lists the codings the tests run through.
var codings = []Encoding{Gzip, Brotli, Zstd}

// testBody reads a body from testdata.
func testBody(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randomBytes returns n bytes that do not compress.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// newDecoder returns a reader of what r carries encoded with e, using a decoder
// that is not the encoder's own where there is one: the standard library's gzip,
// brotli's reference port, klauspost's zstd decoder run without goroutines.
func newDecoder(e Encoding, r io.Reader) (io.Reader, error) {
	switch e {
	case Gzip:
		return stdgzip.NewReader(r)
	case Brotli:
		return brotli.NewReader(r), nil
	case Zstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("no decoder for coding %d", e)
}

// decodeAll decodes a whole compressed body.
func decodeAll(e Encoding, data []byte) ([]byte, error) {
	d, err := newDecoder(e, &onlyReader{data: data})
	if err != nil {
		return nil, err
	}
	return io.ReadAll(d)
}

// onlyReader is a plain io.Reader over a slice: no WriteTo or ByteReader that a
// decoder could use to take a shortcut real network input does not offer.
type onlyReader struct{ data []byte }

func (r *onlyReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// encodeAll compresses body with enc in pieces of the given size (the whole body
// at once when piece is 0), collecting every returned slice the way the relay
// would: by copying it out before the next call.
func encodeAll(t testing.TB, enc *Encoder, body []byte, piece int) []byte {
	t.Helper()
	var out []byte
	if piece <= 0 {
		piece = max(len(body), 1)
	}
	for p := body; len(p) > 0; {
		n := min(piece, len(p))
		b, err := enc.Write(p[:n])
		if err != nil {
			t.Fatalf("%v write: %v", enc.Encoding(), err)
		}
		out = append(out, b...)
		p = p[n:]
	}
	b, err := enc.Close()
	if err != nil {
		t.Fatalf("%v close: %v", enc.Encoding(), err)
	}
	return append(out, b...)
}
