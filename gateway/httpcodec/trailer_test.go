package httpcodec

import (
	"strings"
	"testing"
)

func TestChunkedTrailerKept(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"none", "5\r\nhello\r\n0\r\n\r\n", ""},
		{"two fields", "5\r\nhello\r\n0\r\nExpires: never\r\nX-Sum:abc\r\n\r\n", "Expires: never\r\nX-Sum:abc\r\n"},
		{"empty value", "1\r\nx\r\n0\r\nX-Empty:\r\n\r\n", "X-Empty:\r\n"},
		{"with extension on the last chunk", "0;ext\r\nGrpc-Status: 0\r\n\r\n", "Grpc-Status: 0\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{0, 1, 2, 5} {
				var r BodyReader
				r.Reset(FramingChunked, -1, false)
				if got := r.Trailer(); got != nil {
					t.Fatalf("Trailer before the end: %q", got)
				}
				in := []byte(tc.in)
				for off := 0; off < len(in) && !r.Done(); {
					end := len(in)
					if step > 0 {
						end = min(off+step, len(in))
					}
					n, _, err := r.Next(in[off:end])
					if err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
					off += n
				}
				if !r.Done() || string(r.Trailer()) != tc.want {
					t.Fatalf("step %d: done %v trailer %q, want %q", step, r.Done(), r.Trailer(), tc.want)
				}
				// The next body starts without it; the buffer is kept.
				r.Reset(FramingChunked, -1, false)
				if r.Trailer() != nil {
					t.Fatal("Reset kept the trailer")
				}
			}
		})
	}
	var r BodyReader
	r.Reset(FramingLength, 2, false)
	if _, _, err := r.Next([]byte("ok")); err != nil || !r.Done() || r.Trailer() != nil {
		t.Fatalf("a Content-Length body has a trailer: %q %v", r.Trailer(), err)
	}
}

func TestAppendTrailerFields(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"kept, OWS trimmed", "Grpc-Status:  0 \r\nx-sum:\tabc\r\n", "Grpc-Status: 0\r\nx-sum: abc\r\n"},
		{"empty value", "X-Empty:\r\n", "X-Empty: \r\n"},
		{"framing dropped", "Content-Length: 5\r\ntransfer-encoding: chunked\r\nTrailer: X\r\nX-A: 1\r\n", "X-A: 1\r\n"},
		{"routing and hop-by-hop dropped", "Host: evil\r\nConnection: close\r\nKeep-Alive: 1\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Authorization: x\r\nProxy-Whatever: y\r\n", ""},
		{"controls and conditionals dropped", "Cache-Control: no-store\r\nExpect: 100-continue\r\nRange: bytes=0-1\r\nIf-None-Match: *\r\nif-modified-since: x\r\nMax-Forwards: 1\r\nPragma: x\r\n", ""},
		{"authentication and cookies dropped", "Authorization: b\r\nWWW-Authenticate: x\r\nSet-Cookie: a=b\r\nCookie: a=b\r\n", ""},
		{"content processing dropped", "Content-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Range: bytes 0-1/2\r\n", ""},
		{"response control data dropped", "Location: /x\r\nRetry-After: 1\r\nVary: *\r\nAge: 1\r\nDate: x\r\nExpires: 0\r\nWarning: x\r\n", ""},
		{"a long name is kept", "X-A-Very-Long-Trailer-Name-Indeed: 1\r\n", "X-A-Very-Long-Trailer-Name-Indeed: 1\r\n"},
		{"near miss kept", "Hosts: 1\r\nContent-Lengths: 2\r\n", "Hosts: 1\r\nContent-Lengths: 2\r\n"},
		{"line without a name skipped", ":x\r\nnocolon\r\nX: 1\r\n", "X: 1\r\n"},
		{"last line without CRLF", "X: 1", "X: 1\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(AppendTrailerFields([]byte("0\r\n"), []byte(tc.in), nil)); got != "0\r\n"+tc.want {
				t.Fatalf("got %q, want %q", got, "0\r\n"+tc.want)
			}
		})
	}
}

func TestAppendTrailerFieldsDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	section := []byte("Grpc-Status: 0\r\nContent-Length: 5\r\nX-A-Very-Long-Trailer-Name-Indeed: 1\r\n")
	dst := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { dst = AppendTrailerFields(dst[:0], section, nil) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
	if !strings.Contains(string(dst), "Grpc-Status: 0") {
		t.Fatalf("%q", dst)
	}
}

// TestChunkedTrailerBufferKept: a decoder keeps a small trailer section's
// buffer for the next body, not a big one's (recycled streams would each
// hold up to the bound).
func TestChunkedTrailerBufferKept(t *testing.T) {
	for _, tc := range []struct {
		value int
		kept  bool
	}{{10, true}, {2 << 10, false}} {
		var d ChunkedDecoder
		in := "0\r\nX-A: " + strings.Repeat("a", tc.value) + "\r\n\r\n"
		if _, done, _, err := decodeAll(&d, []byte(in), 0); !done || err != nil {
			t.Fatalf("%v %v", done, err)
		}
		d.Reset()
		if kept := cap(d.fields) > 0; kept != tc.kept {
			t.Errorf("a %d-byte trailer: buffer kept %v, want %v", tc.value, kept, tc.kept)
		}
	}
}
