package test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A trailer must not carry what the gateway or its filters decided in the
// head: an origin that merges trailers into headers (many do) would trust a
// client's X-Forwarded-For or identity header over the gateway's. Request
// trailers lose the fields the gateway controls, those the client's
// Connection names, and those either head carries (what a filter set);
// response trailers lose those the origin's Connection names.

// TestTrailersCannotOverrideHead: a client's chunked (HTTP/1.1) or trailing
// HEADERS (h2c) trailers with X-Forwarded-For, X-Real-IP, traceparent, a
// header an inbound Lua filter set (X-User) and, over HTTP/1.1, one its
// Connection header names reach the origin as X-Sum only; an origin's
// trailer that its Connection header names does not reach the client.
func TestTrailersCannotOverrideHead(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "inbound", "10_identity.lua", luaFilter("identity", "inbound", 10, "", `ctx.req.set_header("X-User", "alice")`))
	o := trailerOrigin(t)
	hop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: X-Hop, close\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"5\r\nhello\r\n0\r\nX-Hop: 1\r\nGrpc-Status: 0\r\n\r\n")
	}))
	t.Cleanup(hop.Close)
	cfg := config{
		Origins: map[string]originConfig{"demo": {Servers: []string{o.Listener.Addr().String()}},
			"hop": {Servers: []string{hop.Listener.Addr().String()}}},
		Routes:  []route{{PathPrefix: "/hop", Origin: "hop"}, {PathPrefix: "/", Origin: "demo"}},
		Filters: &filtersConfig{Dir: string(d), Budget: "1s"},
	}
	cfg.H2C = true
	g := startGozer(t, cfg)
	const want = `"trailer":{"X-Sum":["abc"]}`

	t.Run("http1", func(t *testing.T) {
		resp, body := rawExchange(t, g.ProxyAddr, "POST /echo-trailers HTTP/1.1\r\nHost: x\r\nConnection: X-Internal\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"5\r\nhello\r\n0\r\nX-Forwarded-For: 127.0.0.1\r\nX-Internal: 1\r\nX-User: admin\r\nX-Real-IP: 127.0.0.1\r\n"+
			"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nX-Sum: abc\r\n\r\n")
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Fatalf("the origin got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("h2c", func(t *testing.T) {
		h := dialH2(t, g.ProxyAddr)
		status, body := h.postTrailers(1, nil, "hello", "x-forwarded-for", "127.0.0.1", "x-user", "admin",
			"x-request-id", "spoofed", "via", "1.1 trusted", "x-sum", "abc")
		if status != "200" || !strings.Contains(body, want) {
			t.Fatalf("the origin got %s %s", status, body)
		}
	})
	t.Run("response: the origin's Connection names it", func(t *testing.T) {
		resp, err := newClient(t, 20*time.Second).Get(g.URL("/hop"))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "hello" || resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("X-Hop") != "" {
			t.Fatalf("%q %v trailers %v", body, err, resp.Trailer)
		}
	})
}
