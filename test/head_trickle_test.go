package test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestHeadTrickled: a request head sent a few bytes at a time (slowloris)
// is served whole, with the body and the pipelined request that follow its
// last piece in the same write, and costs Gozer a bounded amount of garbage:
// gnet's Peek used to copy everything held into a fresh buffer at every
// piece (17.8 MB of allocations for this 16 KB head, 10 bytes a time,
// measured before the change; the kept partial head copies each byte once).
func TestHeadTrickled(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	var b strings.Builder
	b.WriteString("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n")
	for i := range 80 { // under server.max_headers (100)
		fmt.Fprintf(&b, "X-Pad-%d: %s\r\n", i, strings.Repeat("v", 190))
	}
	b.WriteString("\r\n")
	head := b.String()
	second := "GET /headers HTTP/1.1\r\nHost: h\r\nX-Last: 1\r\n\r\n"

	before := allocated(t, g)
	c := dialRaw(t, g.ProxyAddr)
	const piece = 10
	cut := len(head) - piece
	for off := 0; off < cut; off += piece {
		c.send(head[off:min(off+piece, cut)])
		time.Sleep(200 * time.Microsecond) // a read each, mostly
	}
	// The head's last piece, the body and half of the next request, at once.
	c.send(head[cut:] + "hello" + second[:20])
	resp, body := c.response("POST")
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("first request: status %d, body %q", resp.StatusCode, tail(string(body), 200))
	}
	c.send(second[20:])
	resp, body = c.response("GET")
	if v := decodeView(t, body); resp.StatusCode != 200 || v.Headers.Get("X-Last") != "1" {
		t.Fatalf("pipelined request: status %d, origin saw %v", resp.StatusCode, v.Headers)
	}
	// 4 MB: several times what a trickled head costs now (the scrapes
	// included), under a quarter of what it cost before.
	if grew := allocated(t, g) - before; grew > 4<<20 {
		t.Errorf("a %d-byte head sent %d bytes at a time allocated %.1f MB in Gozer", len(head), piece, float64(grew)/(1<<20))
	}
}

// allocated is Gozer's go_memstats_alloc_bytes_total.
func allocated(t testing.TB, g *gozer) float64 {
	t.Helper()
	f := scrapeMetrics(t, g)["go_memstats_alloc_bytes_total"]
	if f == nil || len(f.Metric) == 0 {
		t.Fatal("no go_memstats_alloc_bytes_total in /metrics")
	}
	m := f.Metric[0]
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.GetUntyped().GetValue()
}

// TestFrameTrickled: an HTTP/2 frame sent a few bytes at a time (h2c) is
// read whole, the body echoed, and costs Gozer a bounded amount of garbage
// (the partial frame is kept out of gnet's buffer, as a partial head is).
func TestFrameTrickled(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "o1")
	cfg := oneOrigin(nil, o.Addr)
	cfg.H2C = true
	g := startGozer(t, cfg)
	h := dialH2(t, g.ProxyAddr)
	if err := h.request(1, "POST", "/echo", false, "content-length", "16384"); err != nil {
		t.Fatal(err)
	}
	var frame bytes.Buffer
	if err := http2.NewFramer(&frame, nil).WriteData(1, true, bytes.Repeat([]byte("d"), 16384)); err != nil {
		t.Fatal(err)
	}
	before := allocated(t, g)
	raw := frame.Bytes()
	const piece = 10
	for off := 0; off < len(raw); off += piece {
		if _, err := h.c.Write(raw[off:min(off+piece, len(raw))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	if st, n := h.waitStream(1, 20*time.Second); st != "200" || n != 16384 {
		t.Fatalf("status %s, %d bytes echoed; want 200 and 16384", st, n)
	}
	if grew := allocated(t, g) - before; grew > 4<<20 {
		t.Errorf("a %d-byte frame sent %d bytes at a time allocated %.1f MB in Gozer", len(raw), piece, float64(grew)/(1<<20))
	}
}
