package test

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestExpectContinueRefused: a request that asks "Expect: 100-continue" and is
// refused before it reaches an origin (an inbound filter's 401, no route, a
// body over the limit) gets its final answer without a 100 first: the client
// is not invited to upload a body that would be thrown away; nor when its
// origin's bulkhead is full (503) and its body would stream (request_buffer
// 0). One that is let
// through gets its 100 once the filters passed, and its body reaches the
// origin. Over HTTP/1.1 (raw, and net/http's client, which sends no body
// when the final answer comes first) and HTTP/2.
func TestExpectContinueRefused(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "expect")
	dir := newScriptDir(t)
	dir.write(t, "inbound", "auth.lua", luaFilter("auth", "inbound", 10, "",
		`if ctx.req.header("Authorization") == nil then ctx.respond(401, "who are you\n") end`))
	// request_buffer 0: the body streams, so admission comes before it (with a
	// buffer, the body is received first and admission after).
	cfg := oneOrigin(map[string]string{"max_concurrent_requests": "1", "request_buffer": "0"}, o.Addr)
	cfg.Routes = []route{{PathPrefix: "/sink", Origin: "demo"}, {PathPrefix: "/slow", Origin: "demo"}}
	cfg.Filters = &filtersConfig{Dir: string(dir)}
	cfg.Server = map[string]string{"max_request_body": "1MiB"}
	cfg.H2C = true
	g := startGozer(t, cfg)

	for _, tc := range []struct {
		name    string
		path    string
		headers []string
		n       int
		want    int
	}{
		{"refused by a filter", "/sink", nil, 1000, 401},
		{"no route", "/nope", []string{"Authorization: x"}, 1000, 404},
		{"body over the limit", "/sink", []string{"Authorization: x"}, 2 << 20, 413},
		{"let through", "/sink", []string{"Authorization: x"}, 1000, 100},
	} {
		t.Run("raw "+tc.name, func(t *testing.T) {
			c := dialRaw(t, g.ProxyAddr)
			c.send(request("POST", tc.path, append(tc.headers, "Content-Length: "+strconv.Itoa(tc.n), "Expect: 100-continue")...))
			resp, body := c.response("POST")
			if resp.StatusCode != tc.want {
				t.Fatalf("the first answer: %d %q, want %d", resp.StatusCode, body, tc.want)
			}
			if tc.want != 100 {
				c.mustClose("after refusing a body it did not read")
				return
			}
			c.send(strings.Repeat("x", tc.n))
			resp, body = c.response("POST")
			if s := decodeSink(t, body); resp.StatusCode != 200 || s.Bytes != int64(tc.n) {
				t.Fatalf("after the body: %d, the origin got %d bytes; want 200 and %d", resp.StatusCode, s.Bytes, tc.n)
			}
		})
		for _, cl := range []struct {
			name string
			c    *http.Client
			url  string
		}{
			{"http1", newClient(t, 0), g.URL(tc.path)},
			{"h2c", h2cClient(t), g.URL(tc.path)},
		} {
			t.Run(cl.name+" "+tc.name, func(t *testing.T) {
				if tr, ok := cl.c.Transport.(*http.Transport); ok {
					tr.ExpectContinueTimeout = 20e9 // the answer decides, not a timer
				}
				var read atomic.Int64
				req, _ := http.NewRequest("POST", cl.url, &countingReader{r: strings.NewReader(strings.Repeat("x", tc.n)), n: &read})
				req.ContentLength = int64(tc.n)
				req.Header.Set("Expect", "100-continue")
				for _, h := range tc.headers {
					k, v, _ := strings.Cut(h, ": ")
					req.Header.Set(k, v)
				}
				resp, err := cl.c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				want := tc.want
				if want == 100 {
					want = 200
				}
				if resp.StatusCode != want {
					t.Fatalf("status %d, want %d", resp.StatusCode, want)
				}
				if want != 200 && read.Load() > 0 {
					t.Errorf("the client sent %d body bytes for a request refused before its body", read.Load())
				}
			})
		}
	}

	// The origin's one slot (max_concurrent_requests) taken by a slow request:
	// the next is refused 503 before it is invited to send its body.
	slow := dialRaw(t, g.ProxyAddr)
	slow.send(request("GET", "/slow?delay=3s", "Authorization: x"))
	waitFor(t, 10*time.Second, "the slow request in flight", func() bool { return g.adminOrigin(t, "demo").InFlight == 1 })
	c := dialRaw(t, g.ProxyAddr)
	c.send(request("POST", "/sink", "Authorization: x", "Content-Length: 100", "Expect: 100-continue"))
	if resp, body := c.response("POST"); resp.StatusCode != 503 {
		t.Errorf("a full bulkhead: first answer %d %q, want 503 without a 100", resp.StatusCode, body)
	}
}

// countingReader counts what was read from r into n.
type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// TestExpectContinueLimits: with a filter that reads bodies, a Content-Length
// over filters.max_body_bytes is refused 413 without a 100, and a request let
// through gets its 100 before the filters run (they need the body: with such
// a filter in the chain, every request with a body does).
func TestExpectContinueLimits(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "expect-limits")
	dir := newScriptDir(t)
	dir.write(t, "inbound", "body.lua", luaFilter("body", "inbound", 10, `ctx.req.path == "/sink"`, `local b = ctx.req.body()`, "body = true"))
	cfg := oneOrigin(nil, o.Addr)
	cfg.Filters = &filtersConfig{Dir: string(dir), MaxBodyBytes: "4KiB"}
	g := startGozer(t, cfg)
	first := func(path string, n int) int {
		t.Helper()
		c := dialRaw(t, g.ProxyAddr)
		c.send(request("POST", path, "Content-Length: "+strconv.Itoa(n), "Expect: 100-continue"))
		resp, _ := c.response("POST")
		return resp.StatusCode
	}
	if s := first("/sink", 1<<20); s != 413 {
		t.Errorf("a body over filters.max_body_bytes: first answer %d, want 413 without a 100", s)
	}
	if s := first("/sink", 100); s != 100 {
		t.Errorf("a body a filter reads: first answer %d, want 100 (the filter needs the body)", s)
	}
}
