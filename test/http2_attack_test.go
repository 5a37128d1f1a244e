package test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestHTTP2Attacks plays each HTTP/2 attack with a raw framer client and
// asserts the answer the RFC (or the defence) gives, the counter in
// /admin/edge, and that an ordinary client is served meanwhile.
func TestHTTP2Attacks(t *testing.T) {
	t.Parallel()
	plainGozer(t)
	ca := newTestCA(t)
	o := startOrigin(t, "o")
	g := h2Gozer(t, ca, o.Addr, map[string]string{"max_resets": "50", "max_control_frames": "200",
		"max_concurrent_streams": "10"}, nil)
	for _, tc := range []struct {
		name   string
		reason string // the /admin/edge counter
		attack func(t *testing.T, h *h2raw) string
		want   string
	}{
		{"rapid reset", "rapid_reset", func(t *testing.T, h *h2raw) string {
			for id := uint32(1); id < 2000; id += 2 {
				if h.request(id, "GET", "/slow?delay=2s", true) != nil || h.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
					break // the gateway closed
				}
			}
			return goAwayOf(h)
		}, "GOAWAY:ENHANCE_YOUR_CALM"},
		{"made you reset", "rapid_reset", func(t *testing.T, h *h2raw) string {
			// CVE-2025-8671: each stream starts an origin request, then a
			// WINDOW_UPDATE of 0 makes Gozer reset it (a stream error). Counted
			// as the client's own resets (max_resets 50), not as control
			// frames (max_control_frames 200: the counter would say
			// control_flood).
			h.fr.AllowIllegalWrites = true
			for id := uint32(1); id < 2000; id += 2 {
				if h.request(id, "GET", "/slow?delay=2s", true) != nil || h.fr.WriteWindowUpdate(id, 0) != nil {
					break // the gateway closed
				}
			}
			return goAwayOf(h)
		}, "GOAWAY:ENHANCE_YOUR_CALM"},
		{"continuation flood", "continuation_flood", func(t *testing.T, h *h2raw) string {
			blk := h.block("GET", "/")
			_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndHeaders: false})
			h.eb.Reset()
			_ = h.enc.WriteField(hpack.HeaderField{Name: "x-pad", Value: strings.Repeat("a", 50)})
			frag := append([]byte(nil), h.eb.Bytes()...)
			for i := 0; i < 10000; i++ {
				if h.fr.WriteContinuation(1, false, frag) != nil {
					break
				}
			}
			return goAwayOf(h)
		}, "GOAWAY:ENHANCE_YOUR_CALM"},
		{"hpack bomb", "header_list_too_large", func(t *testing.T, h *h2raw) string {
			// One 4000-byte field into the dynamic table, then 2000 one-byte
			// references to it: 8 MB of header list from 6 KB of wire.
			blk := h.block("GET", "/")
			h.eb.Reset()
			_ = h.enc.WriteField(hpack.HeaderField{Name: "x-bomb", Value: strings.Repeat("b", 4000)})
			blk = append(blk, h.eb.Bytes()...)
			blk = append(blk, bytes.Repeat([]byte{0x80 | 62}, 2000)...)
			_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndStream: true, EndHeaders: true})
			status, _ := h.waitStream(1, 10*time.Second)
			return status
		}, "431"},
		{"header field flood", "header_list_too_large", func(t *testing.T, h *h2raw) string {
			// 200 one-byte references to a small field: 7 KB of header list
			// (under max_header_bytes) but twice server.max_headers.
			blk := h.block("GET", "/")
			h.eb.Reset()
			_ = h.enc.WriteField(hpack.HeaderField{Name: "x-a", Value: "b"})
			blk = append(blk, h.eb.Bytes()...)
			blk = append(blk, bytes.Repeat([]byte{0x80 | 62}, 200)...)
			_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndStream: true, EndHeaders: true})
			status, _ := h.waitStream(1, 10*time.Second)
			return status
		}, "431"},
		{"ping flood", "control_flood", func(t *testing.T, h *h2raw) string {
			for i := 0; i < 5000; i++ {
				if h.fr.WritePing(false, [8]byte{byte(i)}) != nil {
					break
				}
			}
			return goAwayOf(h)
		}, "GOAWAY:ENHANCE_YOUR_CALM"},
		{"settings flood", "control_flood", func(t *testing.T, h *h2raw) string {
			for i := 0; i < 5000; i++ {
				if h.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: uint32(10000 + i)}) != nil {
					break
				}
			}
			return goAwayOf(h)
		}, "GOAWAY:ENHANCE_YOUR_CALM"},
		{"too many streams", "refused_stream", func(t *testing.T, h *h2raw) string {
			for id := uint32(1); id <= 21; id += 2 { // 11 streams, 10 allowed
				if err := h.request(id, "GET", "/slow?delay=3s", true); err != nil {
					t.Fatal(err)
				}
			}
			status, _ := h.waitStream(21, 10*time.Second)
			return status
		}, "RST:REFUSED_STREAM"},
		{"decreasing stream id", "protocol_error", func(t *testing.T, h *h2raw) string {
			_ = h.request(5, "GET", "/", true)
			_ = h.request(3, "GET", "/", true)
			return goAwayOf(h)
		}, "GOAWAY:PROTOCOL_ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := g.h2Ended(t, tc.reason)
			rss0, err := g.rss()
			if err != nil {
				t.Fatal(err)
			}
			h := dialH2(t, g.ProxyAddr)
			if got := tc.attack(t, h); got != tc.want {
				t.Errorf("%s: the gateway answered %q, want %q", tc.name, got, tc.want)
			}
			servedMeanwhile(t, g)
			waitFor(t, 5*time.Second, "/admin/edge counts "+tc.reason, func() bool { return g.h2Ended(t, tc.reason) > before })
			if rss, err := g.rss(); err != nil {
				t.Fatal(err)
			} else if rss-rss0 > 64<<20 {
				t.Errorf("%s: RSS grew by %d MiB", tc.name, (rss-rss0)>>20)
			}
		})
	}
	if n := g.countLog("http2 connection ended"); n == 0 || n > 20 {
		t.Errorf("%d log lines for the attacks: want some, sampled (one per reason and 10 s)", n)
	}
}

// goAwayOf is GOAWAY's code as "GOAWAY:CODE", or what happened instead.
func goAwayOf(h *h2raw) string {
	code, ok := h.waitGoAway(10 * time.Second)
	if !ok {
		return "no GOAWAY"
	}
	return "GOAWAY:" + code.String()
}

// TestHTTP2ZeroWindow: clients that open no window (SETTINGS_INITIAL_WINDOW_SIZE
// 0) for big responses cost the gateway a bounded amount of memory: their
// origins are parked, their streams reset (CANCEL) after server.idle_timeout,
// counted; an ordinary client is served meanwhile.
func TestHTTP2ZeroWindow(t *testing.T) {
	t.Parallel()
	plainGozer(t)
	ca := newTestCA(t)
	o := startOrigin(t, "o")
	g := h2Gozer(t, ca, o.Addr, nil, map[string]string{"idle_timeout": "2s"})
	rss0, err := g.rss()
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	results := make([]string, n)
	for i := range n {
		h := dialH2(t, g.ProxyAddr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.request(1, "GET", "/bytes?n=50000000", true); err != nil {
				results[i] = err.Error()
				return
			}
			results[i], _ = h.waitStream(1, 20*time.Second)
		}()
	}
	servedMeanwhile(t, g)
	wg.Wait()
	for i, r := range results {
		if r != "RST:CANCEL" {
			t.Errorf("client %d: %q, want its stream reset with CANCEL", i, r)
		}
	}
	if rss, err := g.rss(); err == nil && rss-rss0 > 64<<20 {
		t.Errorf("%d clients that open no window for 50 MB each: RSS grew by %d MiB", n, (rss-rss0)>>20)
	}
	if got := g.h2Ended(t, "stream_stalled"); got < n {
		t.Errorf("stream_stalled %d, want %d", got, n)
	}
	l := g.waitAccessLog(t, "the stalled streams' lines", func(l accessLine) bool { return l.str("cause") == "FAILURE_CLIENT_TIMEOUT" })
	if l[0].str("protocol") != "HTTP/2.0" {
		t.Errorf("access log: %v", l[0])
	}
}

// TestHTTP2UploadBackpressure: clients that upload faster than their origin
// reads (it waits 2 s before reading) are held back by their stream windows:
// the gateway buffers a window per stream, not the uploads, and every upload
// arrives whole once the origin reads.
func TestHTTP2UploadBackpressure(t *testing.T) {
	t.Parallel()
	raceAlso(t, testHTTP2UploadBackpressure)
}

func testHTTP2UploadBackpressure(t *testing.T) {
	ca := newTestCA(t)
	o := startOrigin(t, "o")
	g := h2Gozer(t, ca, o.Addr, nil, nil)
	rss0, err := g.rss()
	if err != nil {
		t.Fatal(err)
	}
	const n, size = 8, 20 << 20
	body := bytes.Repeat([]byte("u"), size)
	var wg sync.WaitGroup
	var peak atomic.Int64
	stop := make(chan struct{})
	go func() { // the gateway's RSS while the uploads wait for their origin
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if r, err := g.rss(); err == nil && r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	errs := make([]string, n)
	client := h2cClient(t)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Post(g.URL("/slow-sink?delay=2s"), "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				errs[i] = err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), fmt.Sprintf(`"bytes":%d`, size)) {
				errs[i] = fmt.Sprintf("%d %s", resp.StatusCode, tail(string(b), 200))
			}
		}()
	}
	wg.Wait()
	close(stop)
	for i, e := range errs {
		if e != "" {
			t.Errorf("upload %d: %s", i, e)
		}
	}
	if grew := peak.Load() - rss0; grew > 64<<20 {
		t.Errorf("%d uploads of %d MiB to an origin that waits: RSS grew by %d MiB", n, size>>20, grew>>20)
	}
}

// TestHTTP2CookieCrumbs: a browser sends each cookie as a field of its own
// (RFC 9113 8.2.3); Gozer joins them into one Cookie line for the origin, and
// server.max_headers counts them as that one field: 150 crumbs are served.
func TestHTTP2CookieCrumbs(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "o")
	g := h2Gozer(t, newTestCA(t), o.Addr, nil, nil)
	var crumbs []string
	for i := range 150 {
		crumbs = append(crumbs, "cookie", fmt.Sprintf("c%d=v", i))
	}
	h := dialH2(t, g.ProxyAddr)
	if err := h.request(1, "GET", "/headers", true, crumbs...); err != nil {
		t.Fatal(err)
	}
	if status, n := h.waitStream(1, 10*time.Second); status != "200" || n == 0 {
		t.Fatalf("150 cookie crumbs: %s with %d bytes, want 200 and the origin's echo (crumbs count as one field)", status, n)
	}
}
