package test

// Pipelining's edges, from a review of the turns and corking (pipeline.go and
// cork.go in gateway/http1): each test failed on the first version.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPipelinedThenPushReset: a local answer (corked: more is buffered) and an
// SSE push request in one segment, the client resetting right after. The
// corked answer's write fails as the connection is handed to push, which
// closes it; the push connection must not be served on the dead socket. It
// was: it never ended (16 of 300 left open locked the device id out with
// FAILURE_CLIENT_TOO_MANY_PUSH_CONNECTIONS), and its pushes went to the
// descriptor number the kernel gave the next client, another device's
// messages to a stranger.
func TestPipelinedThenPushReset(t *testing.T) {
	t.Parallel()
	cfg := pushConfig(t, nil)
	cfg.Routes = []route{{PathPrefix: "/api/", Origin: "demo"}}
	cfg.Server = map[string]string{"event_loops": "1"}
	g := startGozer(t, cfg)
	tok := g.pushToken(t, "dev1", "1h")
	req := "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /push/sse?token=" + tok + " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
	for range 300 {
		c, err := net.Dial("tcp", g.ProxyAddr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte(req))
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	// A push connection of a reset client may live a moment (until Gozer reads
	// the reset), and a connection the loop accepts late starts later: every
	// one must end. One served on a dead socket never did.
	ended := func(what string) {
		t.Helper()
		waitFor(t, 10*time.Second, what, func() bool {
			v, _ := g.adminPush(t)["connections"].(float64)
			return v == 0 && g.adminEdge(t).Connections == 0
		})
	}
	ended("every connection of the reset clients to end")
	// Clients that send nothing receive nothing, whatever descriptor they got.
	var fresh []net.Conn
	for range 30 {
		c, err := net.Dial("tcp", g.ProxyAddr)
		if err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, c)
	}
	// Stored (202), or reaching a reset client's connection that had not
	// ended yet (200): either way, none of the fresh clients.
	if resp, a := pushAPI(t, g.AdminAddr, "POST", "/push/dev1", []byte("SECRET-FOR-DEV1"), nil); resp.StatusCode != 200 && resp.StatusCode != 202 {
		t.Fatalf("POST /push/dev1: status %d %+v", resp.StatusCode, a)
	}
	for i, c := range fresh {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		b := make([]byte, 4096)
		if n, _ := c.Read(b); n > 0 {
			t.Errorf("client %d, which sent nothing, received %q", i, b[:n])
		}
		c.Close()
	}
	ended("the fresh clients' and any late push connection to end")
}

// TestPipelineHalfClose: a client that pipelines its requests and half-closes
// (shutdown of its write side, as `nc -N` does) gets every answer. A
// connection waiting for its turn was still read, and gnet closed it on the
// EOF: 17 answers of 40. Over TLS the half-close is the client's
// close_notify, which closed the connection as soon as it was decrypted,
// whatever came ahead of it waiting (0 answers of 17).
func TestPipelineHalfClose(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "hc")
	cfg := oneOrigin(nil, o.Addr)
	ca := withHTTPS(t, &cfg)
	cfg.Routes = []route{{PathPrefix: "/api/", Origin: "demo"}}
	cfg.Server = map[string]string{"event_loops": "1"}
	g := startGozer(t, cfg)
	for _, tc := range plainAndTLS(g, ca) {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{17, 40, 200} {
				for try := range 3 {
					c := tc.dial(t)
					_, _ = c.Write([]byte(strings.Repeat("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", n)))
					// Plain: a FIN; TLS: close_notify, which must not
					// end the connection before what came ahead of it.
					_ = c.Conn.(interface{ CloseWrite() error }).CloseWrite()
					_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
					// Every answer, then the close.
					got := 0
					for {
						resp, err := http.ReadResponse(c.br, nil)
						if err != nil {
							break
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						got++
					}
					c.Close()
					if got != n {
						t.Errorf("%d pipelined then half-closed (try %d): %d answers, want %d", n, try+1, got, n)
					}
				}
			}
		})
	}
}

// TestPipelinedFastReaders: clients that pipeline two large downloads and read
// as fast as they can are not slow readers. Corked streamed answers counted as
// unread (Buffered) made every origin read wait for the client to drain, and
// with few origin connections fast clients were cut as
// FAILURE_LOCAL_TOO_MANY_SLOW_READERS; only whole answers cork now.
func TestPipelinedFastReaders(t *testing.T) {
	t.Parallel()
	const chunks = 4000 // of 1000 bytes: a 4 MB chunked answer
	addr := chunkyOrigin(t, chunks)
	cfg := oneOrigin(map[string]string{"max_connections_per_server": "2"}, addr)
	cfg.Server = map[string]string{"event_loops": "1"}
	g := startGozer(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 5 {
				c, err := net.Dial("tcp", g.ProxyAddr)
				if err != nil {
					errs <- err.Error()
					return
				}
				_, _ = c.Write([]byte("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				br := bufio.NewReaderSize(c, 256<<10)
				for k := range 2 {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						errs <- fmt.Sprintf("round %d answer %d: %v", round, k, err)
						break
					}
					n, err := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || err != nil || n != chunks*1000 {
						errs <- fmt.Sprintf("round %d answer %d: status %d cause %q, %d bytes, %v", round, k, resp.StatusCode, resp.Header.Get("X-Gozer-Status"), n, err)
						break
					}
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for _, l := range g.accessLog() {
		if strings.Contains(l.str("cause"), "SLOW_READERS") {
			t.Errorf("a fast pipelining client was refused as a slow reader: %v", l)
		}
	}
}

// chunkyOrigin answers every request on a keep-alive connection with a
// chunked body of chunks pieces of 1000 bytes.
func chunkyOrigin(t *testing.T, chunks int) string {
	t.Helper()
	var body strings.Builder
	body.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	data := strings.Repeat("x", 1000)
	for range chunks {
		fmt.Fprintf(&body, "%x\r\n%s\r\n", len(data), data)
	}
	body.WriteString("0\r\n\r\n")
	return cannedOrigin(t, []byte(body.String()))
}

// cannedOrigin answers every request head (bodies are not read) with answer,
// on keep-alive connections, until the test ends; it returns its address.
func cannedOrigin(t *testing.T, answer []byte) string {
	t.Helper()
	return serveTCP(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == "\r\n" {
					break
				}
			}
			if _, err := c.Write(answer); err != nil {
				return
			}
		}
	})
}

// TestBytesOutUnsentHead: an origin whose head is fine and whose chunked body
// is broken in the same read: the client gets a 502 and nothing of the
// origin's head, and bytes_out counts the 502 only (it counted the 4 KB head
// too).
func TestBytesOutUnsentHead(t *testing.T) {
	t.Parallel()
	pad := strings.Repeat("p", 4000)
	addr := cannedOrigin(t, []byte("HTTP/1.1 200 OK\r\nX-Pad: "+pad+"\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nbroken\r\n"))
	g := startGozer(t, oneOrigin(nil, addr))
	c := dialRaw(t, g.ProxyAddr)
	resp, body := c.roundTrip("GET /x HTTP/1.1\r\nHost: gozer.test\r\n\r\n")
	if resp.StatusCode != 502 {
		t.Fatalf("status %d %q, want 502", resp.StatusCode, body)
	}
	id := resp.Header.Get("X-Request-Id")
	l := g.waitAccessLog(t, id, byRequestID(id))[0]
	if n, _ := l.num("bytes_out"); n > 2000 || n < float64(len(body)) {
		t.Errorf("bytes_out %v, want the 502's (about %d bytes), not the origin's %d-byte head", n, len(body)+300, len(pad))
	}
}
