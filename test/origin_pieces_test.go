package test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestOriginAnswerInPieces: an origin's answer that reaches Gozer in several
// reads (a head bigger than a segment, a server that writes its status line
// first, a slow one) is read whole. Gozer once dropped what it had of an
// incomplete head at the end of each read (gnet reads Discard(0) as
// "everything"): such answers became 502 FAILURE_ORIGIN_BAD_RESPONSE.
func TestOriginAnswerInPieces(t *testing.T) {
	t.Parallel()
	bytewise := func(s string) []string { return strings.Split(s, "") }
	cases := map[string]struct {
		pieces []string
		pause  time.Duration
		body   string
	}{
		"/head-split-in-a-line": {[]string{"HTTP/1.1 200 OK\r\nConte", "nt-Length: 2\r\n", "\r\nh", "i"}, 30 * time.Millisecond, "hi"},
		"/final-crlf-alone":     {[]string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", "\r\n", "hi"}, 30 * time.Millisecond, "hi"},
		"/early-hints-then-split-head": {[]string{"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 2",
			"00 OK\r\nContent-Length: 2\r\n\r\nhi"}, 30 * time.Millisecond, "hi"},
		"/chunked-byte-by-byte": {bytewise("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
			2 * time.Millisecond, "hello world"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tc, ok := cases[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for _, p := range tc.pieces {
			if _, err := io.WriteString(c, p); err != nil {
				return
			}
			time.Sleep(tc.pause) // the pieces must reach Gozer in reads of their own
		}
	}))
	t.Cleanup(srv.Close)
	g := startGozer(t, oneOrigin(map[string]string{"retries": "0"}, srv.Listener.Addr().String()))
	client := newClient(t, 20*time.Second)
	for path, tc := range cases {
		t.Run(path[1:], func(t *testing.T) {
			resp, err := client.Get(g.URL(path))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != tc.body || err != nil {
				t.Fatalf("%d %s %q (%v), want 200 %q", resp.StatusCode, resp.Header.Get("X-Gozer-Status"), b, err, tc.body)
			}
		})
	}
}

// TestRequestLoopDetected: an origin whose address leads back to Gozer (here
// a TCP relay to its own proxy port) makes a request call itself. The fifth
// pass, whose Via names this gateway four times, is answered 508 Loop
// Detected (FAILURE_LOCAL_LOOP_DETECTED), and the loop ends there; it used to
// go on until sockets or the per-client cap ran out (2,000 hops with the
// tests' caps off), answered with a misleading 502 or 429.
func TestRequestLoopDetected(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var target atomic.Value // Gozer's proxy address, once it started
	var hops atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hops.Add(1)
			go func() {
				defer c.Close()
				g, err := net.Dial("tcp", target.Load().(string))
				if err != nil {
					return
				}
				defer g.Close()
				go func() { _, _ = io.Copy(g, c) }()
				_, _ = io.Copy(c, g)
			}()
		}
	}()
	g := startGozer(t, oneOrigin(map[string]string{"retries": "0"}, ln.Addr().String()))
	target.Store(g.ProxyAddr)
	resp, err := newClient(t, 20*time.Second).Get(g.URL("/x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 508 {
		t.Fatalf("a request that loops: %d %s, want 508", resp.StatusCode, resp.Header.Get("X-Gozer-Status"))
	}
	if n := hops.Load(); n != 4 {
		t.Errorf("%d passes through the relay, want 4 (the fifth pass through Gozer is refused)", n)
	}
	g.waitLog(t, "request failed", "FAILURE_LOCAL_LOOP_DETECTED")
}
