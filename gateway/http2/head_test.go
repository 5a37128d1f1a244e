package http2

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"

	"gozer/gateway/httpcodec"
)

// fields turns "name: value" strings into header fields.
func fields(lines ...string) []hpack.HeaderField {
	out := make([]hpack.HeaderField, len(lines))
	for i, l := range lines {
		n, v, _ := strings.Cut(l[1:], ":")
		out[i] = hpack.HeaderField{Name: l[:1] + n, Value: strings.TrimPrefix(v, " ")}
	}
	return out
}

var get = []string{":method: GET", ":scheme: https", ":authority: example.com", ":path: /a?b=1"}

func TestHead(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fields    []string
		endStream bool
		want      string // the head, or "malformed"
		declared  int64
	}{
		{"get", get, true, "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", -1},
		{"cookies joined", append(get, "cookie: a=1", "x: y", "cookie: b=2"), true,
			"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\ncookie: a=1; b=2\r\nx: y\r\n\r\n", -1},
		{"body of unknown length", append(get[:0:0], ":method: POST", ":scheme: http", ":authority: h", ":path: /"), false,
			"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", -1},
		{"content-length", append(get, "content-length: 5"), false,
			"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\ncontent-length: 5\r\n\r\n", 5},
		// Kept with its length even when it announces trailers (which then
		// cannot follow it), as nginx: origins that want a length (411) or
		// refuse chunked bodies stay reachable, and the exchange's early 413
		// for a declared body over server.max_request_body still applies.
		{"content-length, trailers announced", append(get, "content-length: 5", "trailer: x-sum"), false,
			"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\ncontent-length: 5\r\ntrailer: x-sum\r\n\r\n", 5},
		{"host without authority", []string{":method: GET", ":scheme: http", ":path: /", "host: h"}, true,
			"GET / HTTP/1.1\r\nHost: h\r\n\r\n", -1},
		{"host equal to authority, any case", append(get, "host: Example.COM"), true, "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", -1},
		{"host with the default port", append(get, "host: example.com:443"), true, "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", -1},
		{"empty authority, host", []string{":method: GET", ":scheme: http", ":authority: ", ":path: /", "host: h"}, true,
			"GET / HTTP/1.1\r\nHost: h\r\n\r\n", -1},
		{"host with another port", append(get, "host: example.com:8443"), true, "malformed", 0},
		// Which one would the routes and the origin believe? (RFC 9113 8.3.1)
		{"host other than authority", append(get, "host: evil.example"), true, "malformed", 0},
		{"host twice", []string{":method: GET", ":scheme: http", ":path: /", "host: h", "host: i"}, true, "malformed", 0},
		// (kept for the exchange, which says it again to the origin: httpcodec.ForwardInfo.Trailers)
		{"te trailers", append(get, "te: trailers"), true, "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nte: trailers\r\n\r\n", -1},
		{"te trailers upper case", append(get, "te: Trailers"), true, "malformed", 0},
		{"te gzip", append(get, "te: gzip"), true, "malformed", 0},
		{"connection header", append(get, "connection: close"), true, "malformed", 0},
		{"transfer-encoding", append(get, "transfer-encoding: chunked"), true, "malformed", 0},
		{"uppercase name", append(get, "X-Up: 1"), true, "malformed", 0},
		{"CRLF in a value", append(get, "x: a\r\nInjected: 1"), true, "malformed", 0},
		{"CRLF in the path", []string{":method: GET", ":scheme: http", ":authority: h", ":path: /\r\nX: 1"}, true, "malformed", 0},
		{"no path", get[:3], true, "malformed", 0},
		{"empty path", append(get[:3:3], ":path: "), true, "malformed", 0},
		{"absolute-form path", append(get[:3:3], ":path: http://example.com/x"), true, "malformed", 0},
		{"path without slash", append(get[:3:3], ":path: x"), true, "malformed", 0},
		{"unknown pseudo", append(get, ":protocol: websocket"), true, "malformed", 0},
		{"pseudo after regular", append(append(get[:3:3], "x: 1"), ":path: /"), true, "malformed", 0},
		{"pseudo twice", append(get, ":path: /b"), true, "malformed", 0},
		{"two content-lengths", append(get, "content-length: 1", "content-length: 2"), false, "malformed", 0},
		{"bad content-length", append(get, "content-length: -1"), false, "malformed", 0},
		{"CONNECT with a path", []string{":method: CONNECT", ":authority: h:443", ":path: /"}, true, "malformed", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, declared, _, _, err := head(nil, fields(tc.fields...), tc.endStream)
			if tc.want == "malformed" {
				if _, ok := err.(malformed); !ok {
					t.Fatalf("got %q, %v; want malformed", out, err)
				}
				return
			}
			if err != nil || string(out) != tc.want || declared != tc.declared {
				t.Fatalf("got %q (declared %d), %v; want %q (%d)", out, declared, err, tc.want, tc.declared)
			}
			var r httpcodec.Request
			if err := r.Parse(out); err != nil {
				t.Fatalf("the exchange refuses the head: %v", err)
			}
		})
	}
}

// FuzzHead: whatever fields a client sends, the head is one HTTP/1.1 head
// (no field can add a line or end it early), or the request is malformed.
// Input: fields as "name\x00value\n" lines.
func FuzzHead(f *testing.F) {
	f.Add([]byte(":method\x00GET\n:scheme\x00http\n:authority\x00h\n:path\x00/\ncookie\x00a\ncookie\x00b\n"), true)
	f.Add([]byte(":method\x00POST\n:scheme\x00http\n:path\x00/x\nhost\x00h\n"), false)
	f.Add([]byte(":method\x00GET\n:scheme\x00http\n:path\x00/\nx\x00a\r\nb: c\n"), true)
	f.Fuzz(func(t *testing.T, in []byte, end bool) {
		var fs []hpack.HeaderField
		for _, line := range bytes.Split(in, []byte("\n")) {
			n, v, _ := bytes.Cut(line, []byte{0})
			fs = append(fs, hpack.HeaderField{Name: string(n), Value: string(v)})
		}
		out, _, _, _, err := head(nil, fs, end)
		if err != nil {
			return
		}
		if !bytes.HasSuffix(out, []byte("\r\n\r\n")) || bytes.Count(out, []byte("\r\n\r\n")) != 1 {
			t.Fatalf("head %q ends early or late", out)
		}
		lines := bytes.Count(out, []byte("\n"))
		if bytes.Count(out, []byte("\r\n")) != lines || bytes.Count(out, []byte("\r")) != lines {
			t.Fatalf("head %q has a bare CR or LF", out)
		}
		var r httpcodec.Request
		_ = r.Parse(out) // may refuse (400); must not panic
	})
}
