package test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestHTTP2Fairness: one HTTP/2 connection that sends 20,000 requests
// answered by Gozer itself (404s: no origin, no wait) in one write does not
// hold its loop from another client, as a pipelining HTTP/1.1 client does not
// (TestPipelineFairness, whose measure this is: the order Gozer began the
// requests in). Before streams began at most 32 per callback, a read's worth
// (about 5,000 requests of 13 bytes) began in a row, and another client
// asking one request at a time got 23 answers while 50,000 went to the first,
// one of them 300 ms late.
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
		t.Run(tc.name, func(t *testing.T) {
			a, b := newH2raw(t, tc.dial(t)), dialRaw(t, g.ProxyAddr)
			if err := a.fr.WriteWindowUpdate(0, 1<<30); err != nil { // room for every answer's body
				t.Fatal(err)
			}
			aIDs, bIDs, begun := make(chan idsOrErr, 1), make(chan idsOrErr, 1), make(chan struct{})
			go h2IDs(a, 20000, begun, aIDs)
			go pipelineIDs(b, 2000, begun, nil, bIDs)
			checkTurns(t, "HTTP/2 client", <-aIDs, <-bIDs, 32)
		})
	}
}

// h2IDs sends n requests answered 404 on h in one write and reads the
// request sequence number of each answer; begun is closed at the first.
func h2IDs(h *h2raw, n int, begun chan<- struct{}, out chan<- idsOrErr) {
	go func() { _, _ = h.c.Write(h2Requests(n, "/nope")) }()
	_ = h.c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	ids := make([]uint64, 0, n)
	for len(ids) < n {
		f, err := h.fr.ReadFrame()
		if err != nil {
			out <- idsOrErr{err: fmt.Errorf("after %d answers: %w", len(ids), err)}
			return
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			seq, err := requestSeq(headerValue(f, "x-request-id"))
			if status := f.PseudoValue("status"); status != "404" || err != nil {
				out <- idsOrErr{err: fmt.Errorf("stream %d: status %s, want 404 (%v)", f.StreamID, status, err)}
				return
			}
			ids = append(ids, seq)
			if len(ids) == 1 {
				close(begun)
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame, *http2.RSTStreamFrame:
			out <- idsOrErr{err: fmt.Errorf("after %d answers: %v", len(ids), f)}
			return
		}
	}
	out <- idsOrErr{ids: ids}
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

// TestHTTP2HalfCloseTLS: an HTTP/2 client over TLS that sends its requests
// and then its close_notify gets every answer, then the end of the
// connection (with GOAWAY NO_ERROR when the close_notify came while frames
// waited for their turn; it sends nothing more, so Gozer does not wait for
// the idle timeout).
func TestHTTP2HalfCloseTLS(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "hc2")
	cfg := oneOrigin(nil, o.Addr)
	ca := withHTTPS(t, &cfg)
	cfg.Routes = []route{{PathPrefix: "/api/", Origin: "demo"}}
	g := startGozer(t, cfg)
	for try := range 5 {
		c, err := tls.Dial("tcp", g.HTTPSAddr, &tls.Config{RootCAs: ca.pool, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		h := newH2raw(t, c)
		const n = 200 // past a callback's 32: some wait for their turn
		if _, err := c.Write(h2Requests(n, "/nope")); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil { // close_notify
			t.Fatal(err)
		}
		ended := 0
		for {
			ev := h.next(10 * time.Second)
			if ev.timeout {
				t.Fatalf("try %d: %d answers, and the connection still open after 10 s", try+1, ended)
			}
			if ev.closed || ev.goaway && ev.code != http2.ErrCodeNo {
				break
			}
			if ev.end {
				ended++
			}
		}
		if ended != n {
			t.Errorf("try %d: %d of %d answers before the connection ended", try+1, ended, n)
		}
	}
}

// TestHTTP2PartialPrefaceCloseNotify: a TLS client that chose h2, sent half
// the connection preface, then its close_notify, is closed at once: the
// preface can no longer end (it waited for header_read_timeout, 60 s here).
func TestHTTP2PartialPrefaceCloseNotify(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "pp")
	cfg := oneOrigin(nil, o.Addr)
	ca := withHTTPS(t, &cfg)
	cfg.Server = map[string]string{"header_read_timeout": "60s"}
	g := startGozer(t, cfg)
	c, err := tls.Dial("tcp", g.HTTPSAddr, &tls.Config{RootCAs: ca.pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(http2.ClientPreface[:10])); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection still open 10 s after a partial preface and close_notify")
	}
}
