package push_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"gozer/gateway/push"
)

// keepConn is a push.Conn that keeps the messages it is given without
// copying them, as the gateway's connections may until they are written.
type keepConn struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (c *keepConn) Push(msg []byte, _ bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, msg)
	return nil
}

// rawExchange writes req on a new connection to addr and returns everything
// the server sends until it closes the connection or goes quiet for 300 ms.
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String()
		}
	}
}

// The message a connection keeps is its own copy: the next requests on the
// same keep-alive connection, which fasthttp reads into the same buffers, do
// not change it.
func TestAPIMessageIsACopy(t *testing.T) {
	n := newNode(t, nil, nil)
	kc := new(keepConn)
	if _, err := n.reg.Add("user:k", kc); err != nil {
		t.Fatal(err)
	}
	want := []string{"first message", "2nd", "third message, longer than the others"}
	var req strings.Builder
	for _, m := range want {
		fmt.Fprintf(&req, "POST /push/user:k HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(m), m)
	}
	if got := strings.Count(rawExchange(t, n.addr, req.String()), "HTTP/1.1 200 OK"); got != len(want) {
		t.Fatalf("%d answers 200, want %d", got, len(want))
	}
	kc.mu.Lock()
	defer kc.mu.Unlock()
	for i, m := range kc.msgs {
		if string(m) != want[i] {
			t.Errorf("message %d is now %q, want %q", i, m, want[i])
		}
	}
}

// A body the API answered without reading (405, 400, GET with a body) is read
// and dropped: the next request on the connection is parsed from its start.
func TestAPIUnreadBodyKeepsConnection(t *testing.T) {
	n := newNode(t, nil, nil)
	n.connect(t, nil, "a1", "user:a", false)
	req := "PUT /push/user:a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nPOST /x y\r\n" +
		"POST /push/bad%20id HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
		"GET /push/user:a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /push/user:a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
	out := rawExchange(t, n.addr, req)
	for _, want := range []string{"HTTP/1.1 405", "HTTP/1.1 400", `"connected":true`, `{"reached":1,"nodes":["local"]}`} {
		if !strings.Contains(out, want) {
			t.Errorf("answers lack %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Connection: close") {
		t.Errorf("a connection closed:\n%s", out)
	}
	checkConns(t, []*apiNode{n}, map[string][]string{"a1": {"t:hello"}})
}

// A body far over the limit still gets its 413 (not a reset connection),
// whatever its framing, and the connection closes after it.
func TestAPITooLargeBody(t *testing.T) {
	n := newNode(t, nil, nil)
	n.connect(t, nil, "a1", "user:a", false)
	big := strings.Repeat("x", 4<<20)
	for _, q := range []apiReq{
		{method: "POST", path: "/push/user:a", body: big},
		{method: "POST", path: "/push/user:a", body: big, chunked: true},
	} {
		r := do(t, n.url, q)
		if r.status != 413 || !strings.Contains(r.body, "message too large") {
			t.Errorf("chunked %v: %d %s, want 413", q.chunked, r.status, r.body)
		}
		if !r.close {
			t.Errorf("chunked %v: the connection stays open", q.chunked)
		}
	}
	if s := n.api.Stats(); s.TooLarge != 2 || s.Delivered != 0 {
		t.Errorf("stats %+v", s)
	}
}

// On a server that reads bodies before calling the handler, the API works
// the same up to the server's own limit.
func TestAPIBufferingServer(t *testing.T) {
	reg := push.NewRegistry(0)
	c := new(testConn)
	if _, err := reg.Add("user:a", c); err != nil {
		t.Fatal(err)
	}
	api := push.NewAPI(push.APIConfig{Registry: reg, MaxMessage: 1024, Log: zerolog.Nop()})
	ln := listen(t)
	srv := &fasthttp.Server{Handler: api.ServeFastHTTP, Logger: testLogger{t}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(); _ = ln.Close() }) // ln too: Shutdown misses it if Serve has not started
	url := "http://" + ln.Addr().String()
	for _, tc := range []struct {
		req    apiReq
		status int
	}{
		{apiReq{method: "POST", path: "/push/user:a", body: "hello"}, 200},
		{apiReq{method: "POST", path: "/push/user:a", body: "chunked", chunked: true}, 200},
		{apiReq{method: "POST", path: "/push/user:a", body: strings.Repeat("x", 1025)}, 413},
		{apiReq{method: "POST", path: "/push/user:a", body: strings.Repeat("x", 1025), chunked: true}, 413},
	} {
		if r := do(t, url, tc.req); r.status != tc.status {
			t.Errorf("%+v: %d %s, want %d", tc.req.chunked, r.status, r.body, tc.status)
		}
	}
	if got, want := c.messages(), []string{"t:hello", "t:chunked"}; !slices.Equal(got, want) {
		t.Errorf("conn got %q, want %q", got, want)
	}
}

// discardConn is a push.Conn that takes every message and drops it.
type discardConn struct{ n atomic.Int64 }

func (c *discardConn) Push([]byte, bool) error { c.n.Add(1); return nil }

// BenchmarkAPIPush is POST /push/{id} of 64 bytes to one connection, over a
// loopback TCP connection to a fasthttp server, from fasthttp's client (which
// allocates nothing per request). allocs/op is the server's: the message's
// copy, plus with a rate limiter the id's string it keeps.
func BenchmarkAPIPush(b *testing.B) {
	for _, bc := range []struct {
		name    string
		limiter bool
	}{{"nolimit", false}, {"ratelimit", true}} {
		b.Run(bc.name, func(b *testing.B) {
			reg := push.NewRegistry(0)
			conn := new(discardConn)
			if _, err := reg.Add("user:1", conn); err != nil {
				b.Fatal(err)
			}
			cfg := push.APIConfig{Registry: reg, Log: zerolog.Nop()}
			if bc.limiter {
				cfg.Limiter = push.NewRateLimiter(1e9, 1e9, nil)
			}
			ln := listen(b)
			serveAPI(b, ln, push.NewAPI(cfg))
			c := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 1}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + ln.Addr().String() + "/push/user:1")
			req.Header.SetMethod("POST")
			req.Header.SetContentType("text/plain")
			req.SetBodyString(strings.Repeat("m", 64))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					b.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Body())
				}
			}
			if got := conn.n.Load(); got < int64(b.N) {
				b.Fatalf("%d messages delivered of %d", got, b.N)
			}
		})
	}
}
