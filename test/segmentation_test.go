package test

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestSegmentation: every protocol Gozer speaks, with every byte each way
// reaching it in pieces of 1 to 64 bytes, each in a read of its own: a
// client's requests, bodies and frames, and an origin's answers. Real
// networks cut streams anywhere (small segments, a slow link, TLS records,
// an attacker); a parser that assumes a head, a chunk line or a frame comes
// whole fails only there. Gozer once dropped an origin's incomplete head and
// a push device's incomplete frame at the end of each read (gnet reads
// Discard(0) as "everything"): an answer split over reads was a 502.
func TestSegmentation(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "seg")
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "seg", false, "127.0.0.1", "localhost")
	cfg := pushConfig(t, nil)
	cfg.Origins = map[string]originConfig{"demo": {Servers: []string{startFragmenter(t, o.Addr, 64)},
		Opts: map[string]string{"websocket": "{enabled: true}"}}}
	cfg.H2C = true
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	g := startGozer(t, cfg)
	plain := startFragmenter(t, g.ProxyAddr, 64)
	secure := startFragmenter(t, g.HTTPSAddr, 64)
	payload := make([]byte, 20000)
	rand.New(rand.NewSource(1)).Read(payload)

	t.Run("http1", func(t *testing.T) {
		tr := &http.Transport{MaxConnsPerHost: 1} // one connection: keep-alive across the requests
		t.Cleanup(tr.CloseIdleConnections)
		exchanges(t, &http.Client{Transport: tr, Timeout: 30 * time.Second}, "http://"+plain, payload)
	})
	t.Run("h2c", func(t *testing.T) { exchanges(t, h2cClient(t), "http://"+plain, payload) })
	t.Run("h2 over TLS", func(t *testing.T) { exchanges(t, h2TLSClient(t, ca), "https://"+secure, payload) })

	t.Run("websocket tunnel", func(t *testing.T) {
		c, _, err := wsDialer().Dial("ws://"+plain+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		for _, m := range [][]byte{[]byte("hello"), payload[:5000], payload} {
			if err := c.WriteMessage(websocket.BinaryMessage, m); err != nil {
				t.Fatal(err)
			}
			if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, m) {
				t.Fatalf("echo of %d bytes: %d bytes back, %v", len(m), len(got), err)
			}
		}
	})

	t.Run("push websocket", func(t *testing.T) {
		c := dialWSConn(t, "ws://"+plain+"/push/ws?token="+url.QueryEscape(g.pushToken(t, "seg-ws", "1h")), nil)
		pongs := make(chan string, 1)
		c.SetPongHandler(func(s string) error { pongs <- s; return nil })
		d := readWS("seg-ws", c)
		g.waitConnected(t, "seg-ws", true, 10*time.Second)
		if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		g.push(t, "seg-ws", strings.Repeat("m", 3000), 200)
		if m := d.next(t, 15*time.Second); string(m.data) != strings.Repeat("m", 3000) {
			t.Fatalf("pushed %d bytes, the device got %d", 3000, len(m.data))
		}
		select {
		case p := <-pongs:
			if p != "are you there" {
				t.Fatalf("pong %q", p)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no pong to a ping sent in pieces")
		}
	})

	t.Run("push SSE", func(t *testing.T) {
		d := dialSSEURL(t, "seg-sse", "http://"+plain+"/push/sse?token="+url.QueryEscape(g.pushToken(t, "seg-sse", "1h")), "")
		g.waitConnected(t, "seg-sse", true, 10*time.Second)
		g.push(t, "seg-sse", "an event", 200)
		for {
			if ev := d.nextEvent(t, 15*time.Second); !ev.comment {
				if ev.data != "an event" {
					t.Fatalf("event %+v", ev)
				}
				return
			}
		}
	})
}

// exchanges makes the HTTP requests of TestSegmentation with client at base:
// bodies of known and unknown length both ways, several on one connection.
func exchanges(t *testing.T, client *http.Client, base string, payload []byte) {
	t.Helper()
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   io.Reader // nil: none
		want   []byte    // nil: only the length n
		n      int
	}{
		{"answer with content-length", "GET", "/bytes?n=20000", nil, nil, 20000},
		{"chunked answer", "GET", "/bytes?n=20000&chunked=1", nil, nil, 20000},
		{"upload with content-length", "POST", "/echo", bytes.NewReader(payload), payload, 0},
		{"upload of unknown length", "POST", "/echo", io.MultiReader(bytes.NewReader(payload[:7000]), bytes.NewReader(payload[7000:])), payload, 0},
		{"a small one after", "GET", "/bytes?n=10", nil, nil, 10},
	} {
		req, err := http.NewRequest(tc.method, base+tc.path, tc.body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil || resp.StatusCode != 200:
			t.Fatalf("%s: %d %s, %d bytes, %v", tc.name, resp.StatusCode, resp.Header.Get("X-Gozer-Status"), len(got), err)
		case tc.want != nil && !bytes.Equal(got, tc.want):
			t.Fatalf("%s: %d bytes back, not the %d sent", tc.name, len(got), len(tc.want))
		case tc.want == nil && len(got) != tc.n:
			t.Fatalf("%s: %d bytes, want %d", tc.name, len(got), tc.n)
		}
	}
}

// startFragmenter relays the TCP connections made to the address it returns
// to target, and cuts what passes each way into pieces of 1 to max bytes,
// written apart (Nagle off, a pause between), so that the other side reads
// them one by one. Each connection's cuts come from its number as a seed: a
// run cuts the same way but for the order its connections are made in.
func startFragmenter(t testing.TB, target string, max int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var seed int64
	go func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, a, b)
			seed++
			s := seed
			mu.Unlock()
			go relayInPieces(b, a, max, rand.New(rand.NewSource(2*s)))
			go relayInPieces(a, b, max, rand.New(rand.NewSource(2*s+1)))
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// relayInPieces copies src to dst in pieces of 1 to max bytes, 100 µs
// apart, and half-closes dst when src ends.
func relayInPieces(dst, src net.Conn, max int, rng *rand.Rand) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for off := 0; off < n; {
			k := min(n-off, 1+rng.Intn(max))
			if _, werr := dst.Write(buf[off : off+k]); werr != nil {
				src.Close()
				return
			}
			off += k
			time.Sleep(100 * time.Microsecond) // each piece in a read of its own
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && !errors.Is(err, net.ErrClosed) {
				_ = tc.CloseWrite()
			} else {
				dst.Close()
			}
			return
		}
	}
}
