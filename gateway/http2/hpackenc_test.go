package http2

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"

	"gozer/gateway/exchange"
	"gozer/gateway/httpcodec"
)

// decodeBlock decodes a header block as a client does (x/net's decoder,
// whose dynamic table a size update must fit).
func decodeBlock(t *testing.T, blk []byte) []string {
	t.Helper()
	var got []string
	d := hpack.NewDecoder(4096, func(f hpack.HeaderField) { got = append(got, f.Name+": "+f.Value) })
	if _, err := d.Write(blk); err != nil {
		t.Fatalf("block %x: %v", blk, err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("block %x: %v", blk, err)
	}
	return got
}

// TestHeadEncoderStaticNames: every name given a static index decodes as
// that name (a wrong index would name another header).
func TestHeadEncoderStaticNames(t *testing.T) {
	names := []string{"accept-ranges", "access-control-allow-origin", "age", "allow", "cache-control",
		"content-disposition", "content-encoding", "content-language", "content-length", "content-location",
		"content-range", "content-type", "date", "etag", "expires", "last-modified", "link", "location",
		"proxy-authenticate", "refresh", "retry-after", "server", "set-cookie", "strict-transport-security",
		"vary", "via", "www-authenticate", "x-not-static"}
	var e headEncoder
	for _, n := range names {
		blk := e.AppendField(nil, []byte(strings.ToUpper(n)), []byte("v a l u e"))
		got := decodeBlock(t, blk)
		if len(got) != 1 || got[0] != n+": v a l u e" {
			t.Errorf("%s: decoded %q", n, got)
		}
	}
}

// TestHeadEncoderStatus: each status decodes as itself, static or not, and
// a size update leads the block after SETTINGS_HEADER_TABLE_SIZE only.
func TestHeadEncoderStatus(t *testing.T) {
	var e headEncoder
	for _, code := range []int{100, 101, 200, 204, 206, 301, 304, 400, 404, 429, 500, 503, 999} {
		got := decodeBlock(t, e.status(nil, code))
		if want := fmt.Sprintf(":status: %d", code); len(got) != 1 || got[0] != want {
			t.Errorf("status %d: decoded %q", code, got)
		}
	}
	e.resize = true
	blk := e.status(nil, 200)
	if !bytes.Equal(blk, []byte{0x20, 0x88}) {
		t.Fatalf("after SETTINGS_HEADER_TABLE_SIZE: block %x, want 20 88", blk)
	}
	if blk := e.status(nil, 200); !bytes.Equal(blk, []byte{0x88}) {
		t.Fatalf("second block %x, want 88", blk)
	}
}

// TestHeadEncoderLongStrings: lengths past the 7-bit prefix (RFC 7541 5.1).
func TestHeadEncoderLongStrings(t *testing.T) {
	var e headEncoder
	for _, n := range []int{126, 127, 128, 300, 20000} {
		v := strings.Repeat("\x01~", n/2) // not shorter in Huffman: raw
		h := strings.Repeat("a", n)       // shorter in Huffman
		got := decodeBlock(t, e.AppendField(nil, []byte("x-"+h), []byte(v)))
		if len(got) != 1 || got[0] != "x-"+h+": "+v {
			t.Errorf("length %d: decoded wrong", n)
		}
	}
}

// TestWriteHeadFields: an HTTP/2 response head carries the fields an
// HTTP/1.1 head of the same response does (lowercased, in order, without the
// connection-specific ones), status fields included.
func TestWriteHeadFields(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		ri         httpcodec.ResponseInfo
		h          exchange.Head
	}{
		{"proxied", "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sat, 05 Dec 2026 04:00:00 GMT\r\nContent-Type: text/plain\r\n" +
			"Content-Length: 128\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nETag: \"5f-1\"\r\nVia: 1.1 o\r\nX-Request-Id: o\r\n\r\n",
			httpcodec.ResponseInfo{RequestID: []byte("rid-1"), Via: "1.1 gozer"}, exchange.Head{Status: "SUCCESS", Attempts: 2}},
		{"chunked, odd status", "HTTP/1.1 418 Teapot\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\nX-A: b\r\n\r\n",
			httpcodec.ResponseInfo{}, exchange.Head{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r httpcodec.Response
			if err := r.ParseLazy([]byte(tc.head), false); err != nil {
				t.Fatal(err)
			}
			text := httpcodec.AppendClientResponse(nil, &r, &tc.ri)
			text = tc.h.AppendStatusHeaders(text)
			var want []string
			for i, line := range strings.Split(strings.TrimSuffix(string(text), "\r\n\r\n"), "\r\n") {
				if i == 0 {
					want = append(want, ":status: "+line[9:12])
					continue
				}
				n, v, _ := strings.Cut(line, ": ")
				if n = strings.ToLower(n); !hopByHop([]byte(n)) {
					want = append(want, n+": "+v)
				}
			}
			var e headEncoder
			status := httpcodec.ClientStatus(&r)
			blk := httpcodec.AppendClientFields(e.status(nil, status), &r, &tc.ri, status, &e)
			blk = tc.h.AppendStatusFields(blk, &e)
			if got := decodeBlock(t, blk); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("HTTP/2 fields\n%s\nwant (the HTTP/1.1 head's)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestWriteHeadAllocs: a response head costs no allocation once the
// buffers grew (the HPACK path made a string per field before).
func TestWriteHeadAllocs(t *testing.T) {
	var r httpcodec.Response
	head := "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sat, 05 Dec 2026 04:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 128\r\n\r\n"
	if err := r.ParseLazy([]byte(head), false); err != nil {
		t.Fatal(err)
	}
	ri := httpcodec.ResponseInfo{RequestID: []byte("rid-1"), Via: "1.1 gozer"}
	h := exchange.Head{Status: "SUCCESS", Attempts: 1}
	var e headEncoder
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() {
		blk := httpcodec.AppendClientFields(e.status(buf[:0], 200), &r, &ri, 200, &e)
		buf = h.AppendStatusFields(blk, &e)
	}); n != 0 {
		t.Fatalf("%v allocations per head", n)
	}
}

// TestHeadEncoderTrimsValues: a value a filter set with leading or trailing
// whitespace (HTTP/1.1 tolerates it) goes out trimmed, as RFC 9113 8.2.1
// wants; inner whitespace stays.
func TestHeadEncoderTrimsValues(t *testing.T) {
	var e headEncoder
	for _, tc := range []struct{ in, want string }{
		{"v", "v"}, {" v", "v"}, {"v \t", "v"}, {"\t a b ", "a b"}, {"   ", ""},
	} {
		got := decodeBlock(t, e.AppendField(nil, []byte("X-A"), []byte(tc.in)))
		if len(got) != 1 || got[0] != "x-a: "+tc.want {
			t.Errorf("%q: decoded %q, want %q", tc.in, got, "x-a: "+tc.want)
		}
	}
}
