package test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPipelineFairness: a client that pipelines thousands of requests Gozer
// answers itself (404s: no origin to wait for) must not hold the loop's other
// clients until its whole pipeline is answered. Another client on the same
// loop pipelines too, fewer; the order in which Gozer began their requests
// (the sequence in each answer's X-Request-Id, one counter per loop) shows
// them taking turns: while both have requests waiting, the first never gets
// more than a few callbacks' worth in a row (16 requests a callback).
// Before, a pipeline re-queued through gnet's Execute was answered whole
// once begun. Over TLS too, where the pipeline waits for its turn partly
// undecrypted. The measure does not depend on how fast the machine or the
// test's clients are, only on the order Gozer serves bytes already there.
func TestPipelineFairness(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "fair")
	cfg := oneOrigin(nil, o.Addr)
	ca := withHTTPS(t, &cfg)
	cfg.Routes = []route{{PathPrefix: "/api/", Origin: "demo"}}
	cfg.Server = map[string]string{"event_loops": "1"}
	g := startGozer(t, cfg)
	for _, tc := range plainAndTLS(g, ca) {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tc.dial(t), tc.dial(t)
			aIDs, bIDs, begun := make(chan idsOrErr, 1), make(chan idsOrErr, 1), make(chan struct{})
			go pipelineIDs(a, 20000, nil, begun, aIDs)
			go pipelineIDs(b, 2000, begun, nil, bIDs)
			checkTurns(t, "pipelining client", <-aIDs, <-bIDs, 16)
		})
	}
}

// idsOrErr is what a client's reader found: the request sequence numbers of
// its answers, or why it could not read them.
type idsOrErr struct {
	ids []uint64
	err error
}

// pipelineIDs pipelines n requests answered 404 on c, once wait is closed
// (nil: at once), and reads the request sequence number of each answer;
// begun (when not nil) is closed at the first.
func pipelineIDs(c *rawConn, n int, wait <-chan struct{}, begun chan<- struct{}, out chan<- idsOrErr) {
	if wait != nil {
		<-wait
	}
	go func() { _ = c.write(strings.Repeat("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", n)) }()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	br := bufio.NewReaderSize(c.br, 64<<10)
	ids := make([]uint64, 0, n)
	for i := range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			out <- idsOrErr{err: fmt.Errorf("answer %d: %w", i, err)}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		seq, err := requestSeq(resp.Header.Get("X-Request-Id"))
		if resp.StatusCode != 404 || err != nil {
			out <- idsOrErr{err: fmt.Errorf("answer %d: status %d, want 404 (%v)", i, resp.StatusCode, err)}
			return
		}
		ids = append(ids, seq)
		if i == 0 && begun != nil {
			close(begun)
		}
	}
	out <- idsOrErr{ids: ids}
}

// requestSeq is the loop's request counter in a request id (its last 16 hex
// digits).
func requestSeq(id string) (uint64, error) {
	if len(id) != 32 {
		return 0, fmt.Errorf("request id %q: want 32 hex digits", id)
	}
	return strconv.ParseUint(id[16:], 16, 64)
}

// checkTurns checks that while b had requests waiting (between its first
// and last), a's requests began at most 4 callbacks' worth in a row
// (perCallback each): one callback's worth, as b's requests are all in its
// socket from the start. Before turns, a's runs were its whole pipeline, or
// all one read brought.
func checkTurns(t *testing.T, who string, a, b idsOrErr, perCallback int) {
	t.Helper()
	if a.err != nil || b.err != nil {
		t.Fatalf("%s: %v; the other client: %v", who, a.err, b.err)
	}
	run := longestRun(a.ids, b.ids)
	t.Logf("%d and %d requests: at most %d of the first began in a row while the other's waited", len(a.ids), len(b.ids), run)
	// b began once a had an answer, with thousands of a's to go: taking
	// turns, some of a's come between b's. None there: one of them was
	// served whole before the other, which is the fault this looks for
	// (or b's bytes came only after a's last, which the sizes rule out).
	if run == 0 {
		t.Fatalf("%s: none of its requests began among the other client's (its %d..%d, the other's %d..%d): one was served whole first",
			who, slices.Min(a.ids), slices.Max(a.ids), slices.Min(b.ids), slices.Max(b.ids))
	}
	if limit := 4 * perCallback; run > limit {
		t.Errorf("%s: %d of its requests began in a row while another client's waited (want at most %d): it holds the loop", who, run, limit)
	}
}

// longestRun is the most sequence numbers of a found between two
// consecutive ones of b.
func longestRun(a, b []uint64) int {
	b = slices.Clone(b)
	slices.Sort(b)
	runs := make([]int, len(b))
	for _, x := range a {
		i, _ := slices.BinarySearch(b, x) // b[i-1] < x < b[i]
		if i > 0 && i < len(b) {
			runs[i]++
		}
	}
	return slices.Max(append(runs, 0))
}

// TestPipelineBacklogOverTLS: a client whose request waits on a slow origin and
// that pipelines more meanwhile is not read past server.max_buffered_per_conn:
// the client's writes stall instead of Gozer buffering what it sends. Over TLS
// the bytes not decrypted yet count too (the decrypted ones stop at 128 KiB,
// the transport's buffer; with a larger max_buffered_per_conn the rest piled
// up in gnet's buffer without bound).
func TestPipelineBacklogOverTLS(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "backlog")
	cfg := oneOrigin(nil, o.Addr)
	ca := withHTTPS(t, &cfg)
	cfg.Server = map[string]string{"max_buffered_per_conn": "1MiB"}
	g := startGozer(t, cfg)
	c := dialTLS1(t, g, ca)
	if _, err := io.WriteString(c, "GET /slow?delay=20s HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the request to reach the origin", func() bool { return g.adminOrigin(t, "demo").InFlight == 1 })
	more := []byte(strings.Repeat("GET /x HTTP/1.1\r\nHost: a\r\n\r\n", 1<<15)) // ~900 KiB a write
	sent := 0
	for sent < 128<<20 {
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Write(more)
		sent += n
		if err != nil {
			break // stalled: Gozer stopped reading
		}
	}
	t.Logf("the client wrote %d MiB before its writes stalled", sent>>20)
	// What the kernel's socket buffers hold both ways, and Gozer's MiB.
	if sent > 24<<20 {
		t.Errorf("the client wrote %d MiB behind a request waiting on its origin: Gozer kept reading past max_buffered_per_conn", sent>>20)
	}
}

// TestPipelinedMixedAnswers: the answers to one write of pipelined requests,
// some answered by Gozer itself (404: they are gathered and leave in one
// write), some by the origin (fast, slow, with a body), some with heads longer
// than the 4 KiB a backlog is first looked at, come back whole and in order,
// over plain TCP and TLS; a request that asks to close is answered
// after every answer before it, and then the connection closes.
func TestPipelinedMixedAnswers(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "mixed")
	cfg := oneOrigin(nil, o.Addr)
	ca := withHTTPS(t, &cfg)
	cfg.Routes = []route{{PathPrefix: "/headers", Origin: "demo"}, {PathPrefix: "/slow", Origin: "demo"}, {PathPrefix: "/sink", Origin: "demo"}}
	g := startGozer(t, cfg)

	var reqs strings.Builder
	var want []int
	add := func(n int, req string, status int) {
		for range n {
			reqs.WriteString(req)
			want = append(want, status)
		}
	}
	add(3, request("GET", "/nope"), 404)
	add(1, request("GET", "/headers?seq=1"), 200)
	add(20, request("GET", "/nope"), 404)
	add(1, request("GET", "/slow?delay=100ms"), 200)
	add(2, request("GET", "/nope"), 404)
	add(1, request("POST", "/sink", "Content-Length: 5")+"hello", 200)
	add(40, request("GET", "/nope"), 404)
	// Heads longer than the first look at a backlog (4 KiB): read whole.
	add(1, request("GET", "/headers?seq=big", "X-Big: "+strings.Repeat("b", 10000)), 200)
	add(2, request("GET", "/nope", "X-Big: "+strings.Repeat("b", 5000)), 404)
	add(1, request("GET", "/nope", "Connection: close"), 404)
	add(1, request("GET", "/headers?seq=never"), 0) // after the close: never answered

	for _, tc := range plainAndTLS(g, ca) {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.dial(t)
			c.send(reqs.String())
			for i, status := range want[:len(want)-1] {
				resp, body := c.response("GET")
				if resp.StatusCode != status {
					t.Fatalf("answer %d: status %d %q, want %d", i+1, resp.StatusCode, body, status)
				}
			}
			c.mustClose("after the answer to Connection: close")
		})
	}
}

// TestPipelinedThenUpgrade: a websocket upgrade pipelined behind requests Gozer
// answers itself: their answers, gathered, go out before the 101, and the
// tunnel's frames after it.
func TestPipelinedThenUpgrade(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, nil)
	cfg := oneOrigin(map[string]string{"websocket": "{enabled: true}"}, o.Addr)
	cfg.Routes = []route{{PathPrefix: "/ws", Origin: "demo"}}
	g := startGozer(t, cfg)
	c := dialRaw(t, g.ProxyAddr)
	c.send(strings.Repeat(request("GET", "/nope"), 5) + request("GET", "/ws", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="))
	for i := range 5 {
		if resp, body := c.response("GET"); resp.StatusCode != 404 {
			t.Fatalf("answer %d: status %d %q, want 404", i+1, resp.StatusCode, body)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("the upgrade's answer: %v %v, want 101", resp, err)
	}
	// A masked text frame "hi" (mask 0): the origin echoes it unmasked.
	if _, err := c.Write([]byte{0x81, 0x82, 0, 0, 0, 0, 'h', 'i'}); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, 4)
	if _, err := io.ReadFull(c.br, echo); err != nil || string(echo) != "\x81\x02hi" {
		t.Fatalf("echo %q %v, want the frame back", echo, err)
	}
}

// http1Dialer names a way to reach Gozer's HTTP/1.1.
type http1Dialer struct {
	name string
	dial func(t *testing.T) *rawConn
}

// plainAndTLS are g's proxy listener and its HTTPS one (HTTP/1.1 by ALPN,
// trusting ca), for tests that run over both.
func plainAndTLS(g *gozer, ca *testCA) []http1Dialer {
	return []http1Dialer{
		{"plain", func(t *testing.T) *rawConn { return dialRaw(t, g.ProxyAddr) }},
		{"tls", func(t *testing.T) *rawConn { return dialTLS1(t, g, ca) }},
	}
}

// dialTLS1 connects to g's HTTPS listener speaking HTTP/1.1 (ALPN), trusting ca.
func dialTLS1(t *testing.T, g *gozer, ca *testCA) *rawConn {
	t.Helper()
	c, err := tls.Dial("tcp", g.HTTPSAddr, &tls.Config{RootCAs: ca.pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return dialed(t, c)
}
