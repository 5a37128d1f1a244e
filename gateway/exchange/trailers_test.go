package exchange

import (
	"strings"
	"testing"

	"gozer/gateway/config"
	"gozer/gateway/httpcodec"
)

// TestExchangeTrailers: a client's trailer section reaches the origin after
// the last chunk (its forbidden fields dropped), again on a retry, and not
// at all when the body goes with a Content-Length, without what the gateway
// controls; an origin's reaches the downstream's EndBody without what its
// Connection names and what must not be trailers, unless the exchange
// changed the body (compression).
func TestExchangeTrailers(t *testing.T) {
	const (
		chunkedPost = "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		chunkedPut  = "PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		trailed     = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5\r\nhello\r\n0\r\nGrpc-Status: 0\r\nContent-Length: 9\r\n\r\n"
		busy = "HTTP/1.1 503 x\r\nContent-Length: 0\r\n\r\n"
	)
	streamAtOnce := func(c *config.Config) {
		zero := config.Size(0)
		o := c.Origins["api"]
		o.RequestBuffer = &zero
		c.Origins["api"] = o
	}
	compressed := func(c *config.Config) {
		o := c.Origins["api"]
		o.Compression = config.Compression{Enabled: true, Encodings: []string{"gzip"}, Level: 1, MinSize: 1, Types: []string{"text/plain"}}
		c.Origins["api"] = o
	}
	// A value whose line "X-A:value\r\n" and the section's final CRLF make
	// 8 KiB: as "X-A: value" it would be a byte over.
	atBound := strings.Repeat("v", httpcodec.DefaultMaxTrailerBytes-8)
	tests := []struct {
		name      string
		head      string
		edit      func(*config.Config)
		reqTrail  string
		responses []string // one per attempt
		wantSent  []string // each attempt's body, after the head
		wantTrail string   // what EndBody got
	}{
		{name: "request trailers, body buffered first", head: chunkedPost, reqTrail: "X-Sum: 1\r\nHost: evil\r\n",
			responses: []string{ok200}, wantSent: []string{"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"}},
		{name: "request trailers, body streamed", head: chunkedPost, edit: streamAtOnce, reqTrail: "x-sum:\t1 \r\n",
			responses: []string{ok200}, wantSent: []string{"5\r\nhello\r\n0\r\nx-sum: 1\r\n\r\n"}},
		{name: "only forbidden request trailers: the plain last chunk", head: chunkedPost, reqTrail: "Content-Length: 3\r\n",
			responses: []string{ok200}, wantSent: []string{"5\r\nhello\r\n0\r\n\r\n"}},
		{name: "a Content-Length body has no place for them", head: postHead, reqTrail: "X-Sum: 1\r\n",
			responses: []string{ok200}, wantSent: []string{"hello"}},
		{name: "sent again on a retry", head: chunkedPut, reqTrail: "X-Sum: 1\r\n",
			responses: []string{busy, ok200},
			wantSent:  []string{"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"}},
		{name: "a client's 8 KiB section goes out within 8 KiB", head: chunkedPost, reqTrail: "X-A:" + atBound + "\r\n",
			responses: []string{ok200}, wantSent: []string{"5\r\nhello\r\n0\r\nX-A:" + atBound + "\r\n\r\n"}},
		{name: "request trailers that the gateway controls go", head: chunkedPost,
			reqTrail:  "X-Forwarded-For: 127.0.0.1\r\nX-Request-Id: x\r\nHost: evil\r\nX-Sum: 1\r\n",
			responses: []string{ok200}, wantSent: []string{"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"}},
		{name: "response trailers handed on filtered", head: getHead, responses: []string{trailed}, wantSent: []string{""},
			wantTrail: "Grpc-Status: 0\r\n"},
		{name: "response trailers the origin's Connection names go", head: getHead, wantSent: []string{""},
			responses: []string{"HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"5\r\nhello\r\n0\r\nX-Hop: 1\r\nGrpc-Status: 0\r\n\r\n"},
			wantTrail: "Grpc-Status: 0\r\n"},
		{name: "a response without trailers", head: getHead, responses: []string{ok200}, wantSent: []string{""}},
		{name: "compressed: the body changed, its trailers go", head: "GET /a HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n",
			edit: compressed, responses: []string{trailed}, wantSent: []string{""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoom(t, tc.edit)
			var pieces []string
			if tc.head != getHead && !strings.HasPrefix(tc.head, "GET") {
				pieces = []string{"hel", "lo"}
			}
			d := r.start(t, tc.head, pieces...)
			d.reqTrail = []byte(tc.reqTrail)
			for i, resp := range tc.responses {
				c := r.origins.last()
				r.event(d.ex.OriginOpen)
				_, body, _ := strings.Cut(c.wrote.String(), "\r\n\r\n")
				if body != tc.wantSent[i] {
					t.Errorf("attempt %d: origin got body %q, want %q", i+1, body, tc.wantSent[i])
				}
				r.respond(d, resp)
			}
			if !d.ended || !d.done {
				t.Fatalf("not ended (%v) or not done (%v); body %q", d.ended, d.done, d.body.String())
			}
			if gz := strings.HasPrefix(d.body.String(), "\x1f\x8b"); gz != (tc.edit != nil && strings.Contains(tc.name, "compressed")) {
				t.Errorf("body gzipped: %v (%q)", gz, d.body.String())
			}
			if string(d.trailer) != tc.wantTrail {
				t.Errorf("EndBody got trailer %q, want %q", d.trailer, tc.wantTrail)
			}
		})
	}
}
