package httpcodec

import (
	"fmt"
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

// TestTrailerGatewayFieldsDropped: a trailer may not carry what the gateway
// vouches for in a head (a client's value would reach the origin
// unreplaced), nor the status headers it shows a client (an origin's
// trailer would contradict them).
func TestTrailerGatewayFieldsDropped(t *testing.T) {
	in := "X-Forwarded-For: 127.0.0.1\r\nx-forwarded-proto: https\r\nX-Forwarded-Host: a\r\nForwarded: for=1\r\n" +
		"Via: 1.1 x\r\nX-Request-Id: 1\r\nX-Real-IP: 127.0.0.1\r\ntraceparent: 00-x\r\ntracestate: a=b\r\n" +
		"X-Gozer-Status: SUCCESS\r\nx-gozer-attempts: 1\r\nX-Sum: 1\r\n"
	if got := string(AppendTrailerFields(nil, []byte(in), nil)); got != "X-Sum: 1\r\n" {
		t.Fatalf("got %q", got)
	}
}

// TestRequestTrailerFields: a request's trailer may not carry a field the
// client's head names in Connection, nor one either head carries (the
// client's as filters left it, the forwarded one with what filters set).
func TestRequestTrailerFields(t *testing.T) {
	var r Request
	if err := r.Parse([]byte("POST / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Internal\r\nX-Client: 1\r\nTransfer-Encoding: chunked\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	fwd := []byte("POST / HTTP/1.1\r\nHost: h\r\nX-User: alice\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n")
	in := "X-Internal: 1\r\nx-user: admin\r\nX-CLIENT: 2\r\nX-Forwarded-For: 127.0.0.1\r\nX-Sum: abc\r\n"
	if got := string(r.AppendTrailerFields(nil, []byte(in), fwd, nil)); got != "X-Sum: abc\r\n" {
		t.Fatalf("got %q, want only X-Sum", got)
	}
}

// TestResponseTrailerFields: an origin's trailer may not carry a field its
// head's Connection names (hop-by-hop), lazy head or not.
func TestResponseTrailerFields(t *testing.T) {
	head := []byte("HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nTransfer-Encoding: chunked\r\n\r\n")
	in := []byte("x-hop: 1\r\nGrpc-Status: 0\r\n")
	for _, lazy := range []bool{true, false} {
		var r Response
		parse := r.Parse
		if lazy {
			parse = r.ParseLazy
		}
		if err := parse(head, false); err != nil {
			t.Fatal(err)
		}
		if got := string(r.AppendTrailerFields(nil, in, nil)); got != "Grpc-Status: 0\r\n" {
			t.Fatalf("lazy %v: got %q", lazy, got)
		}
	}
}

func TestAppendTrailerNames(t *testing.T) {
	var names []string
	for i := range maxTrailerNames {
		names = append(names, fmt.Sprintf("x-%d", i))
	}
	many := strings.Join(names, ", ") + ", x-past"
	var refused []string // names keep refuses: each is looked through the head
	for i := range maxTrailerLooks {
		refused = append(refused, fmt.Sprintf("x-no-%d", i))
	}
	noNo := func(n []byte) bool { return !strings.HasPrefix(string(n), "x-no-") }
	tests := []struct {
		name, value, want string
		keep              func([]byte) bool
	}{
		{"kept", "Grpc-Status, x-checksum", "Grpc-Status, x-checksum", nil},
		{"forbidden dropped", "Content-Length, grpc-status, Set-Cookie, Host, If-Match, Trailer, Via", "grpc-status", nil},
		{"empty elements and non-tokens dropped", ",, a b, x-(y), \"q\" , ok,", "ok", nil},
		{"keep refuses", "x-a, x-b", "x-b", func(n []byte) bool { return string(n) != "x-a" }},
		{"none left", "Date, Age", "", nil},
		{"names past the bound not announced", many, strings.Join(names, ", "), nil},
		{"each name once", "x-a, X-A, x-b, x-a", "x-a, x-b", nil},
		{"looks bounded", strings.Join(refused[:maxTrailerLooks-1], ", ") + ", x-ok, x-past", "x-ok", noNo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tn trailerNames
			if got := string(tn.add(nil, []byte(tc.value), tc.keep)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
