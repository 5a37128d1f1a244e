package compress

import (
	"fmt"
	"testing"
)

// benchPiece is the size of the pieces the benchmarks write: what the relay would
// hand over from one read of the origin connection.
const benchPiece = 16 << 10

// BenchmarkEncode compresses a 64 KiB page and a 64 KiB API answer as the relay
// would: an encoder from a warm pool, the body in 16 KiB writes, Close, Put. MB/s
// is uncompressed bytes per second of one core; "ratio" is input over output. The
// 2 KiB answer shows the cost of a stream itself, which small bodies pay most.
//
//	go test -run '^$' -bench Encode -benchtime 2s ./gateway/compress/
func BenchmarkEncode(b *testing.B) {
	for _, e := range codings {
		for _, name := range []string{"page.html", "api.json"} {
			b.Run(fmt.Sprintf("%v/%s", e, name), func(b *testing.B) {
				benchEncode(b, e, DefaultLevel, testBody(b, name))
			})
		}
		b.Run(fmt.Sprintf("%v/api.json-2KiB", e), func(b *testing.B) {
			benchEncode(b, e, DefaultLevel, testBody(b, "api.json")[:2<<10])
		})
	}
}

// BenchmarkEncodeLevels is the same at every level, on the page: the figures
// behind the level mapping in the package comment.
func BenchmarkEncodeLevels(b *testing.B) {
	body := testBody(b, "page.html")
	for _, e := range codings {
		for level := MinLevel; level <= MaxLevel; level++ {
			b.Run(fmt.Sprintf("%v/%d", e, level), func(b *testing.B) {
				benchEncode(b, e, level, body)
			})
		}
	}
}

func benchEncode(b *testing.B, e Encoding, level int, body []byte) {
	p := NewPool(level, 1)
	out := 0
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		enc := p.Get(e)
		out = 0
		for rest := body; len(rest) > 0; rest = rest[min(benchPiece, len(rest)):] {
			c, err := enc.Write(rest[:min(benchPiece, len(rest))])
			if err != nil {
				b.Fatal(err)
			}
			out += len(c)
		}
		c, err := enc.Close()
		if err != nil {
			b.Fatal(err)
		}
		out += len(c)
		p.Put(enc)
	}
	b.ReportMetric(float64(len(body))/float64(out), "ratio")
}

func BenchmarkNegotiate(b *testing.B) {
	ae := []byte("gzip, deflate, br, zstd")
	offered := []Encoding{Zstd, Brotli, Gzip}
	b.ReportAllocs()
	for b.Loop() {
		if Negotiate(ae, offered) != Zstd {
			b.Fatal("wrong coding")
		}
	}
}

func BenchmarkCompressible(b *testing.B) {
	ct := []byte("application/json; charset=utf-8")
	types := DefaultTypes()
	b.ReportAllocs()
	for b.Loop() {
		if !Compressible(ct, types) {
			b.Fatal("not compressible")
		}
	}
}

// BenchmarkOneShot compares, on bodies of growing size, the one-shot gzip encoder
// with klauspost's stream at the default level, both through an Encoder from a
// warm pool (Write of the whole body, Close, Put): the figures behind oneShotMax.
//
//	go test -run '^$' -bench OneShot -count 5 ./gateway/compress/
func BenchmarkOneShot(b *testing.B) {
	api, page := testBody(b, "api.json"), testBody(b, "page.html")
	for _, n := range []int{1 << 10, 2 << 10, 4 << 10, oneShotMax} {
		for _, doc := range []struct {
			name string
			body []byte
		}{{"json", api[:n]}, {"html", page[:n]}} {
			for _, stream := range []bool{false, true} {
				path := "oneshot"
				if stream {
					path = "stream"
				}
				b.Run(fmt.Sprintf("%s/%dKiB/%s", doc.name, n>>10, path), func(b *testing.B) {
					p := NewPool(DefaultLevel, 1)
					b.SetBytes(int64(n))
					b.ReportAllocs()
					for b.Loop() {
						enc := p.Get(Gzip)
						if stream {
							_ = enc.startStream() // as a body past oneShotMax would
						}
						if _, err := enc.Write(doc.body); err != nil {
							b.Fatal(err)
						}
						if _, err := enc.Close(); err != nil {
							b.Fatal(err)
						}
						p.Put(enc)
					}
				})
			}
		}
	}
}
