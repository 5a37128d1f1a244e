package test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestHTTP2Fairness: one HTTP/2 connection that sends 50,000 requests
// answered by Gozer itself (404s: no origin, no wait) in as few writes as it
// can, then half-closes, does not hold its loop from another client, as a
// pipelining HTTP/1.1 client does not (TestPipelineFairness); and it gets
// every answer (its EOF waits behind its frames). Before streams began at
// most 32 per callback, the other client got 23 answers, one of them 300 ms
// late.
func TestHTTP2Fairness(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "fair")
	cfg := oneOrigin(nil, o.Addr)
	cfg.H2C = true
	ca := withHTTPS(t, &cfg)
	cfg.Routes = []route{{PathPrefix: "/api/", Origin: "demo"}}
	cfg.Server = map[string]string{"event_loops": "1"}
	g := startGozer(t, cfg)
	for _, tc := range []struct {
		name string
		dial func(t *testing.T) net.Conn
	}{
		{"h2c", func(t *testing.T) net.Conn {
			c, err := net.DialTimeout("tcp", g.ProxyAddr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"h2", func(t *testing.T) net.Conn {
			c, err := tls.Dial("tcp", g.HTTPSAddr, &tls.Config{RootCAs: ca.pool, NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatal(err)
			}
			if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
				t.Fatalf("ALPN chose %q, want h2", p)
			}
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { http2Fairness(t, newH2raw(t, tc.dial(t)), dialRaw(t, g.ProxyAddr)) })
	}
}

// http2Fairness has a's 50,000 requests and b's, one at a time, meet on one
// loop.
func http2Fairness(t *testing.T, a *h2raw, b *rawConn) {
	const requests = 50000
	if resp, _ := b.roundTrip("GET /api/x HTTP/1.1\r\nHost: b\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("the other client's first request: status %d, want 200", resp.StatusCode)
	}
	if err := a.fr.WriteWindowUpdate(0, 1<<30); err != nil { // room for every answer's body
		t.Fatal(err)
	}
	frames := h2Requests(requests, "/nope")
	aDone := make(chan error, 1)
	go func() {
		go func() {
			if _, err := a.c.Write(frames); err == nil {
				_ = a.c.(interface{ CloseWrite() error }).CloseWrite()
			}
		}()
		ended := 0
		for ended < requests {
			ev := a.next(2 * time.Minute)
			switch {
			case ev.closed || ev.timeout || ev.goaway || ev.reset:
				aDone <- fmt.Errorf("after %d answers: %+v", ended, ev)
				return
			case ev.status != "" && ev.status != "404":
				aDone <- fmt.Errorf("stream %d: status %s, want 404", ev.stream, ev.status)
				return
			}
			if ev.end {
				ended++
			}
		}
		aDone <- nil
	}()

	served := 0
	for {
		select {
		case err := <-aDone:
			if err != nil {
				t.Fatalf("HTTP/2 client: %v", err)
			}
			t.Logf("the other client was answered %d times while %d HTTP/2 requests were", served, requests)
			if served < 100 {
				t.Errorf("the other client was answered %d times while one HTTP/2 client's %d requests were: the connection holds the loop", served, requests)
			}
			return
		default:
		}
		resp, _ := b.roundTrip("GET /api/x HTTP/1.1\r\nHost: b\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("the other client: status %d, want 200", resp.StatusCode)
		}
		served++
	}
}

// h2Requests is n HEADERS frames, GET path on streams 1, 3, 5 ..., encoded
// as one HPACK encoder would (all but the first fully indexed: 13 bytes a
// request).
func h2Requests(n int, path string) []byte {
	var frames, blk bytes.Buffer
	fr := http2.NewFramer(&frames, nil)
	enc := hpack.NewEncoder(&blk)
	for i := range n {
		blk.Reset()
		for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
			{Name: ":authority", Value: "gozer.test"}, {Name: ":path", Value: path}} {
			_ = enc.WriteField(f)
		}
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: blk.Bytes(), EndStream: true, EndHeaders: true})
	}
	return frames.Bytes()
}
