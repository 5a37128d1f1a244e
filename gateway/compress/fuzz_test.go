package compress

import (
	"bytes"
	"os"
	"slices"
	"testing"

	"gozer/gateway/internal/fuzzseed"
)

// negotiateSeeds are Accept-Encoding values worth starting from: what browsers
// and libraries send, and the edge cases of the table test. They are also
// committed under testdata/fuzz/FuzzNegotiate (regenerate with GOZER_WRITE_CORPUS=1).
// The byte after each is the operator's list, one coding per two bits.
var negotiateSeeds = []struct {
	ae      string
	offered byte
}{
	{"gzip, deflate, br, zstd", 0b11_10_01}, // Chrome: zstd, br, gzip offered
	{"gzip, deflate, br", 0b01_10},
	{"gzip;q=1.0, identity; q=0.5, *;q=0", 0b01_10_11},
	{"*;q=0.5, gzip;q=0", 0b11_10_01},
	{"br;q=1.0, gzip;q=0.8", 0b10_01},
	{" GZIP , x-gzip;q=0.001 ,,", 0b01},
	{`br;x="a,b;q=0\"", zstd;Q=1.000`, 0b10_11},
	{"identity;q=0, *;q=0", 0b11_10_01},
	{"gzip;q=0.1234", 0b01},
	{"", 0b00_11},
}

// FuzzNegotiate: whatever the header, Negotiate returns None or one of the
// offered codings, and never one the client refused in so many words.
func FuzzNegotiate(f *testing.F) {
	for _, s := range negotiateSeeds {
		f.Add([]byte(s.ae), s.offered)
	}
	f.Fuzz(func(t *testing.T, ae []byte, offeredBits byte) {
		// Two bits per coding: 0 is None, 1..3 are Gzip, Brotli, Zstd.
		var offered []Encoding
		for i := 0; i < 4; i++ {
			offered = append(offered, Encoding(offeredBits>>(2*i)&3))
		}
		got := Negotiate(ae, offered)
		if got != None && !slices.Contains(offered, got) {
			t.Fatalf("Negotiate(%q, %v) = %v, not offered", ae, offered, got)
		}
		if got == None {
			return
		}
		// Adding a refusal of the chosen coding must take it away.
		refused := append(append([]byte(nil), ae...), ", "+got.String()+";q=0"...)
		if again := Negotiate(refused, offered); again == got {
			t.Fatalf("Negotiate(%q, %v) = %v, which the field refuses", refused, offered, again)
		}
	})
}

// oneShotSeeds start FuzzOneShot from the edges of the one-shot encoder: nothing,
// shorter than a match, runs, text with repeats, bytes that do not compress.
// Committed under testdata/fuzz/FuzzOneShot (GOZER_WRITE_CORPUS=1).
var oneShotSeeds = []struct {
	body  string
	level byte
}{
	{"", 4},
	{"a", 0},
	{"abcd", 4},
	{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 4},
	{`{"items":[{"id":1,"name":"a"},{"id":2,"name":"b"},{"id":3,"name":"c"}]}`, 4},
	{"<ul><li>one</li><li>two</li><li>three</li></ul><ul><li>one</li></ul>", 8},
	{"\x00\xff\x10\x80\x7f\x01\xfe\x02", 2},
}

// FuzzOneShot: whatever the body (up to oneShotMax) and level, the one-shot
// member decodes, with the standard library and with klauspost's inflater, to
// the body. One encoder serves every input, as in an encoder's life: nothing of a
// body may leak into the next.
func FuzzOneShot(f *testing.F) {
	for _, s := range oneShotSeeds {
		f.Add([]byte(s.body), s.level)
	}
	z := newOneShot()
	f.Fuzz(func(t *testing.T, body []byte, level byte) {
		if len(body) > oneShotMax {
			body = body[:oneShotMax]
		}
		out := z.appendGzip(nil, body, MinLevel+int(level)%MaxLevel)
		if got := decodeWithBoth(t, out); !bytes.Equal(got, body) {
			t.Fatalf("decoded %d bytes, not the %d given", len(got), len(body))
		}
	})
}

// TestWriteSeedCorpus writes the seeds to testdata/fuzz when GOZER_WRITE_CORPUS=1,
// in the "go test fuzz v1" format.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("GOZER_WRITE_CORPUS") != "1" {
		t.Skip("set GOZER_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	for i, s := range negotiateSeeds {
		fuzzseed.Write(t, "FuzzNegotiate", i, []byte(s.ae), s.offered)
	}
	for i, s := range oneShotSeeds {
		fuzzseed.Write(t, "FuzzOneShot", i, []byte(s.body), s.level)
	}
}
