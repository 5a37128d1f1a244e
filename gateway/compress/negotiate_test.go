package compress

import (
	"testing"
)

// The operator's orders of preference the table uses.
var (
	prefBr   = []Encoding{Brotli, Zstd, Gzip}
	prefGzip = []Encoding{Gzip, Brotli, Zstd}
	onlyGzip = []Encoding{Gzip}
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		ae      string
		offered []Encoding
		want    Encoding
	}{
		// No field value, nothing acceptable.
		{"", prefBr, None},
		{" \t ", prefBr, None},
		{",,", prefBr, None},
		{"identity", prefBr, None},
		{"deflate, compress", prefBr, None},

		// Plain tokens, case, whitespace, empty elements.
		{"gzip", prefBr, Gzip},
		{"GZIP", prefBr, Gzip},
		{"Br", prefBr, Brotli},
		{"zStD", prefBr, Zstd},
		{" gzip , br", prefBr, Brotli},
		{" gzip , br", prefGzip, Gzip},
		{"gzip,,br", prefBr, Brotli},
		{",gzip,", prefBr, Gzip},
		{"gzip\t;\tq=0.5", prefBr, Gzip},
		{"gzip ;q=0.5 , br;q=0.4", prefBr, Gzip},
		{"gzip; q = 0.5", prefBr, Gzip}, // whitespace around "=": tolerated

		// q-values: refusal, order by weight, then the operator's order.
		{"gzip;q=0", prefBr, None},
		{"gzip;q=0, br", prefBr, Brotli},
		{"gzip;q=0.000", prefBr, None},
		{"gzip;q=0.001", prefBr, Gzip},
		{"br;q=1.0, gzip;q=0.8", prefGzip, Brotli},
		{"br;q=0.8, gzip", prefBr, Gzip},
		{"zstd;q=0.9, br;q=0.9, gzip;q=0.9", prefBr, Brotli},
		{"zstd;q=0.9, br;q=0.9, gzip;q=0.9", prefGzip, Gzip},
		{"gzip;Q=0.5, br;q=0.25", prefBr, Gzip},
		{"gzip;q=1.", prefBr, Gzip},
		{"gzip;q=0.", prefBr, None},
		{"gzip;q=1.000", prefBr, Gzip},
		{"gzip;q=0.123", prefBr, Gzip},

		// "*" covers what is not listed; identity is never refused, never chosen.
		{"*", prefBr, Brotli},
		{"*", prefGzip, Gzip},
		{"*;q=0", prefBr, None},
		{"*;q=0.5, gzip;q=0", prefBr, Brotli},
		{"*;q=0.5, gzip;q=0", onlyGzip, None},
		{"gzip;q=0.4, *;q=0.5", prefGzip, Brotli},
		{"*;q=0.1, br;q=0", prefBr, Zstd},
		{"identity;q=0", prefBr, None},
		{"identity;q=0, *;q=0", prefBr, None},
		{"identity;q=0, gzip", prefBr, Gzip},

		// x-gzip is gzip.
		{"x-gzip", prefBr, Gzip},
		{"X-GZIP;Q=0.5, br;q=0.4", prefBr, Gzip},
		{"x-gzip;q=0, gzip", prefBr, None}, // the same coding twice: the lower weight

		// The same coding twice: the refusal wins.
		{"gzip, gzip;q=0", prefBr, None},
		{"gzip;q=0, gzip", prefBr, None},
		{"gzip;q=0.3, br;q=0.5, gzip;q=0.9", prefGzip, Brotli},

		// Other parameters are ignored when well-formed.
		{"br;level=5, gzip", prefBr, Brotli},
		{`br;x="a,b;q=0", gzip;q=0.5`, prefBr, Brotli},
		{`br;x="a\"b", gzip;q=0.5`, prefBr, Brotli},

		// Malformed: the whole field is ignored.
		{"gzip;q=1.001", prefBr, None},
		{"gzip;q=2", prefBr, None},
		{"gzip;q=-1", prefBr, None},
		{"gzip;q=0.1234", prefBr, None},
		{"gzip;q=1.0000", prefBr, None},
		{"gzip;q=", prefBr, None},
		{"gzip;q", prefBr, None},
		{"gzip;=1", prefBr, None},
		{"gzip;;q=1", prefBr, None},
		{"gzip;q=0.5x", prefBr, None},
		{"gzip;q=.5", prefBr, None},
		{"gzip br", prefBr, None},
		{"gzip, br;q=0.5;", prefBr, None},
		{`br;x="unterminated, gzip`, prefBr, None},
		{"br;x=\"a\x01b\", gzip", prefBr, None},
		{"gzip\x00", prefBr, None},
		{"gzip, (br)", prefBr, None},
		{"q=1", prefBr, None},
		{"garbage/(", prefBr, None},
		{"gzip;q=0.5, \xff", prefBr, None},

		// The offered list: empty, with None or a bad value, with duplicates.
		{"gzip, br", nil, None},
		{"gzip, br", []Encoding{}, None},
		{"gzip, br", []Encoding{None, Encoding(9), Gzip}, Gzip},
		{"*", []Encoding{None}, None},
		{"br", []Encoding{Gzip, Gzip, Brotli}, Brotli},
	}
	for _, tc := range tests {
		if got := Negotiate([]byte(tc.ae), tc.offered); got != tc.want {
			t.Errorf("Negotiate(%q, %v) = %v, want %v", tc.ae, tc.offered, got, tc.want)
		}
	}
}

func TestNegotiateDoesNotAllocate(t *testing.T) {
	ae := []byte(`gzip;q=0.8, br;q=1.0, zstd;q=0.9, *;q=0.1, identity, x;y="z"`)
	var got Encoding
	allocs := testing.AllocsPerRun(100, func() { got = Negotiate(ae, prefGzip) })
	if allocs != 0 {
		t.Errorf("Negotiate allocates %.1f times per call", allocs)
	}
	if got != Brotli {
		t.Errorf("Negotiate = %v, want br", got)
	}
}

func TestEncodingString(t *testing.T) {
	for _, tc := range []struct {
		e    Encoding
		want string
	}{{None, ""}, {Gzip, "gzip"}, {Brotli, "br"}, {Zstd, "zstd"}, {Encoding(42), ""}} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("Encoding(%d).String() = %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestParseEncoding(t *testing.T) {
	for _, e := range []Encoding{Gzip, Brotli, Zstd} {
		got, ok := ParseEncoding(e.String())
		if !ok || got != e {
			t.Errorf("ParseEncoding(%q) = %v, %v; want %v, true", e.String(), got, ok, e)
		}
	}
	for _, s := range []string{"", "identity", "GZIP", "x-gzip", "brotli", "deflate", " gzip"} {
		if got, ok := ParseEncoding(s); ok || got != None {
			t.Errorf("ParseEncoding(%q) = %v, %v; want None, false", s, got, ok)
		}
	}
}
