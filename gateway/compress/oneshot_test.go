package compress

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	kflate "github.com/klauspost/compress/flate"
	kgzip "github.com/klauspost/compress/gzip"
)

// oneShotBodies are the bodies the one-shot tests run through: the edges of the
// format (nothing, shorter than a match, one symbol, runs past the longest match,
// matches as far back as the bound allows, every byte value, nothing to match)
// and the kinds of documents it is for.
func oneShotBodies(t testing.TB) map[string][]byte {
	t.Helper()
	api, page := testBody(t, "api.json"), testBody(t, "page.html")
	far := append(randomBytes(oneShotMax/2, 7), randomBytes(oneShotMax/2-64, 8)...)
	far = append(far, far[:64]...) // a match 16320 bytes back, at the end
	every := make([]byte, 0, 4*256)
	for i := range 4 * 256 {
		every = append(every, byte(i*7))
	}
	return map[string][]byte{
		"empty":           nil,
		"1 byte":          []byte("x"),
		"3 bytes":         []byte("abc"),
		"4 bytes":         []byte("abab"),
		"5 bytes":         []byte("aaaaa"),
		"one symbol":      bytes.Repeat([]byte("a"), 1000),
		"run past 258":    bytes.Repeat([]byte("ab"), 3000),
		"run, the bound":  bytes.Repeat([]byte{0}, oneShotMax),
		"far match":       far,
		"every byte":      every,
		"random small":    randomBytes(100, 3),
		"random, bound":   randomBytes(oneShotMax, 4),
		"text":            []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 40)),
		"json 1 KiB":      api[:1<<10],
		"json 2 KiB":      api[:2<<10],
		"json, the bound": api[:oneShotMax],
		"html 700":        page[:700],
		"html 8 KiB":      page[:8<<10],
		"html, the bound": page[:oneShotMax],
		"html, tail":      page[len(page)-oneShotMax:],
	}
}

// decodeWithBoth decodes a gzip member with the standard library and the deflate
// data inside it with klauspost's inflater too: two implementations, so that a
// stream only one of them tolerates does not pass.
func decodeWithBoth(t *testing.T, gz []byte) []byte {
	t.Helper()
	std, err := decodeAll(Gzip, gz)
	if err != nil {
		t.Fatalf("standard library: %v", err)
	}
	if len(gz) < 18 {
		t.Fatalf("%d bytes: shorter than a gzip header and trailer", len(gz))
	}
	k, err := io.ReadAll(kflate.NewReader(bytes.NewReader(gz[10 : len(gz)-8])))
	if err != nil {
		t.Fatalf("klauspost's inflater: %v", err)
	}
	if !bytes.Equal(std, k) {
		t.Fatalf("the two decoders disagree: %d and %d bytes", len(std), len(k))
	}
	return std
}

func TestOneShotRoundTrip(t *testing.T) {
	z := newOneShot() // one encoder for everything: nothing may leak between bodies
	for name, body := range oneShotBodies(t) {
		for level := MinLevel; level <= MaxLevel; level++ {
			t.Run(fmt.Sprintf("%s/%d", name, level), func(t *testing.T) {
				out := z.appendGzip([]byte("prefix"), body, level)
				if !bytes.HasPrefix(out, []byte("prefix")) {
					t.Fatal("appendGzip lost what dst held")
				}
				if got := decodeWithBoth(t, out[len("prefix"):]); !bytes.Equal(got, body) {
					t.Fatalf("decoded %d bytes, not the %d given", len(got), len(body))
				}
				// A body that does not compress is stored, not grown: header,
				// the stored block's 5 bytes, trailer.
				if max := 10 + 5 + len(body) + 8; len(out)-len("prefix") > max {
					t.Errorf("%d bytes for a %d-byte body, more than stored (%d)", len(out)-len("prefix"), len(body), max)
				}
			})
		}
	}
}

// TestOneShotBlockType: the block is whichever of stored, fixed and dynamic is
// smallest; each is written correctly (TestOneShotRoundTrip), and each is used.
func TestOneShotBlockType(t *testing.T) {
	z := newOneShot()
	for _, tc := range []struct {
		name  string
		body  []byte
		btype byte // RFC 1951: 0 stored, 1 fixed, 2 dynamic
	}{
		{"empty", nil, 1},
		{"short text", []byte("hello, hello, world"), 1},
		{"random", randomBytes(4000, 5), 0},
		{"json", testBody(t, "api.json")[:4000], 2},
	} {
		out := z.appendGzip(nil, tc.body, DefaultLevel)
		if got := out[10] >> 1 & 3; got != tc.btype {
			t.Errorf("%s: block type %d, want %d", tc.name, got, tc.btype)
		}
		if out[10]&1 != 1 {
			t.Errorf("%s: the block is not marked final", tc.name)
		}
	}
}

// TestOneShotHeader: the one-shot member starts as the streaming encoder's does
// (MTIME 0, XFL by level, OS unknown), so the path a body takes does not show.
func TestOneShotHeader(t *testing.T) {
	z := newOneShot()
	for level := MinLevel; level <= MaxLevel; level++ {
		var head bytes.Buffer
		w, _ := kgzip.NewWriterLevel(&head, level)
		setGzipHeader(w)
		_ = w.Close()
		one := z.appendGzip(nil, []byte("x"), level)
		if !bytes.Equal(one[:10], head.Bytes()[:10]) {
			t.Errorf("level %d: one-shot header %x, streaming %x", level, one[:10], head.Bytes()[:10])
		}
	}
}

// TestOneShotRatio: the one-shot encoder keeps the level's promise. Its matching
// is zlib's at the same level (lazy over hash chains, zlib's parameters), so it
// must compress about as well as klauspost's stream at that level, which
// compresses like zlib: within 3% on small JSON and HTML, at every level.
func TestOneShotRatio(t *testing.T) {
	api, page := testBody(t, "api.json"), testBody(t, "page.html")
	z := newOneShot()
	for level := MinLevel; level <= MaxLevel; level++ {
		for _, doc := range []struct {
			name string
			b    []byte
		}{{"json", api}, {"html", page}} {
			for _, n := range []int{1000, 2000, 4000, 8000, oneShotMax} {
				body := doc.b[:n]
				one := len(z.appendGzip(nil, body, level))
				var buf bytes.Buffer
				w, _ := kgzip.NewWriterLevel(&buf, level)
				_, _ = w.Write(body)
				_ = w.Close()
				if limit := buf.Len() + buf.Len()*3/100; one > limit {
					t.Errorf("level %d, %s %d bytes: one-shot %d bytes, klauspost %d", level, doc.name, n, one, buf.Len())
				}
			}
		}
	}
}

// TestOneShotLevels: a higher level never compresses worse than a much lower one.
func TestOneShotLevels(t *testing.T) {
	z := newOneShot()
	for name, body := range map[string][]byte{"json": testBody(t, "api.json")[:oneShotMax], "html": testBody(t, "page.html")[:oneShotMax]} {
		var sizes []int
		for level := MinLevel; level <= MaxLevel; level++ {
			sizes = append(sizes, len(z.appendGzip(nil, body, level)))
		}
		t.Logf("%s (%d bytes) at levels 1..9: %v", name, len(body), sizes)
		if sizes[MaxLevel-1] > sizes[MinLevel-1] || sizes[DefaultLevel-1] > sizes[MinLevel-1] {
			t.Errorf("%s: sizes by level %v", name, sizes)
		}
	}
}
