package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// bodyRateServer is the server section of the min_body_rate tests: 1 KiB/s
// over 1 s windows, and a body timer too long to end anything first.
var bodyRateServer = map[string]string{"min_body_rate": "1KiB", "rate_window": "1s", "header_read_timeout": "60s"}

// TestHTTP2MinBodyRate: server.min_body_rate applies to HTTP/2 streams. A
// client that trickles its request body (10 bytes every 200 ms, 50 B/s,
// its windows open) is answered as over HTTP/1.1, 408
// FAILURE_CLIENT_BODY_TOO_SLOW after its first rate window, and its stream
// is reset (RST_STREAM NO_ERROR: stop sending, the 408 stands); a second
// stream on the same connection and another connection are served
// meanwhile, and the connection goes on.
func TestHTTP2MinBodyRate(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o := startOrigin(t, "o")
	g := h2Gozer(t, ca, o.Addr, nil, bodyRateServer)

	h := dialH2(t, g.ProxyAddr)
	if err := h.request(1, "POST", "/sink", false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var status1, status3 string
	var ended1, reset1 bool
	var code1 http2.ErrCode
	var at408 time.Duration
	next, asked3 := start, false
	for !reset1 && time.Since(start) < 15*time.Second {
		ev := h.next(time.Until(next))
		if ev.closed {
			t.Fatalf("the connection ended (stream 1: %q, stream 3: %q)", status1, status3)
		}
		switch {
		case ev.stream == 1 && ev.reset:
			reset1, code1 = true, ev.rst
		case ev.stream == 1 && ev.status != "":
			status1, at408 = ev.status, time.Since(start)
			ended1 = ended1 || ev.end
		case ev.stream == 1:
			ended1 = ended1 || ev.end
		case ev.stream == 3 && ev.status != "":
			status3 = ev.status
		}
		if time.Now().Before(next) {
			continue
		}
		next = next.Add(200 * time.Millisecond) // the trickle's pace
		if status1 == "" {
			if err := h.fr.WriteData(1, false, []byte("0123456789")); err != nil {
				t.Fatal(err)
			}
		}
		if !asked3 && time.Since(start) > 300*time.Millisecond {
			asked3 = true
			if err := h.request(3, "GET", "/", true); err != nil {
				t.Fatal(err)
			}
			servedMeanwhile(t, g) // another connection, while stream 1 trickles
		}
	}
	if status1 != "408" || !ended1 {
		t.Fatalf("the trickling stream got %q (END_STREAM %v), want 408 and its end", status1, ended1)
	}
	if at408 < 800*time.Millisecond {
		t.Errorf("408 after %v, before the first rate window (1 s) ended", at408)
	}
	if !reset1 || code1 != http2.ErrCodeNo {
		t.Errorf("the trickling stream's reset: %v %v, want RST_STREAM NO_ERROR after its 408", reset1, code1)
	}
	if status3 == "" {
		// The loop ends with stream 1's reset; on a loaded machine stream
		// 3's answer may come after it.
		status3, _ = h.waitStream(3, 5*time.Second)
	}
	if status3 != "200" {
		t.Errorf("a second stream on the same connection got %q, want 200", status3)
	}
	// DATA the client sent before the reset reached it is ignored (RFC
	// 9113 5.1), not answered RST_STREAM STREAM_CLOSED nor counted: Gozer
	// answers frames in order, so such a reset would come before stream 5's
	// answer.
	for range 3 {
		if err := h.fr.WriteData(1, false, []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	// So is its trailer section, in flight too (decoded: the HPACK state
	// it changes must follow, or stream 5's header block would not parse).
	h.eb.Reset()
	_ = h.enc.WriteField(hpack.HeaderField{Name: "x-checksum", Value: "in-flight"})
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.eb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.request(5, "GET", "/", true); err != nil {
		t.Fatal(err)
	}
	status5 := ""
	for deadline := time.Now().Add(5 * time.Second); status5 == "" && time.Now().Before(deadline); {
		ev := h.next(time.Until(deadline))
		switch {
		case ev.closed:
			t.Fatal("the connection ended after the reset")
		case ev.stream == 1 && ev.reset:
			t.Errorf("DATA in flight after the reset got RST_STREAM %v, want it ignored", ev.rst)
		case ev.stream == 5 && ev.status != "":
			status5 = ev.status
		}
	}
	if status5 != "200" {
		t.Errorf("a stream opened after the reset got %q, want 200: the connection must go on", status5)
	}
	if n := g.h2Ended(t, "protocol_error"); n != 0 {
		t.Errorf("/admin/edge counts %d protocol_error, want 0: frames in flight are no error", n)
	}
	if n := g.h2Ended(t, "slow_body"); n != 1 {
		t.Errorf("/admin/edge counts %d slow_body, want 1", n)
	}
	if n := g.adminOrigin(t, "demo").Requests["FAILURE_CLIENT_BODY_TOO_SLOW"]; n != 1 {
		t.Errorf("/admin/origins counts %d FAILURE_CLIENT_BODY_TOO_SLOW, want 1", n)
	}
	line := g.waitAccessLog(t, "the trickling stream", func(l accessLine) bool { return l.str("cause") == "FAILURE_CLIENT_BODY_TOO_SLOW" })[0]
	if s, _ := line.num("status"); s != 408 || line.str("protocol") != "HTTP/2.0" ||
		!strings.Contains(line.str("reason"), "request body slower than server.min_body_rate") {
		t.Errorf("access-log line %v, want 408 HTTP/2.0 and the min_body_rate reason", line)
	}
	// Its trailer section ended the stream on the client's side: another
	// HEADERS there is no longer in flight but the client's error, not
	// header blocks Gozer would decode for nothing, forever.
	h.eb.Reset()
	_ = h.enc.WriteField(hpack.HeaderField{Name: "x-checksum", Value: "again"})
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.eb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if code, ok := h.waitGoAway(5 * time.Second); !ok || code != http2.ErrCodeStreamClosed {
		t.Errorf("a second trailer section on the reset stream: GOAWAY %v (%v), want STREAM_CLOSED", code, ok)
	}
}

// slowBody is a request body that gives piece bytes every pace (the
// client's pace, not a wait for a condition), n pieces in all.
type slowBody struct {
	piece, n int
	pace     time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.pace)
	b.n--
	k := min(len(p), b.piece)
	for i := range p[:k] {
		p[i] = 'x'
	}
	return k, nil
}

// TestHTTP2MinBodyRateKept: what min_body_rate must not end. A slow body
// above the rate (10 KiB/s for 3 s) reaches the origin whole; a body that
// waits because Gozer stops reading it (its origin reads nothing for 4 s:
// the exchange pauses the body and the stream's window closes, so the
// client sends nothing for several rate windows) is not judged, and reaches
// the origin whole once it reads.
func TestHTTP2MinBodyRateKept(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o := startOrigin(t, "o")
	g := h2Gozer(t, ca, o.Addr, nil, bodyRateServer)
	const held = 32 << 20 // more than the origin's socket, Gozer's and the windows hold
	cases := []struct {
		name string
		path string
		body func() io.Reader
		want int64
	}{
		{"slow above the rate", "/sink", func() io.Reader { return &slowBody{piece: 2 << 10, n: 15, pace: 200 * time.Millisecond} }, 15 * 2 << 10},
		{"held by Gozer's window", "/slow-sink?delay=4s", func() io.Reader { return bytes.NewReader(make([]byte, held)) }, held},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", g.URL(tc.path), tc.body())
			if err != nil {
				t.Fatal(err)
			}
			resp, err := h2cClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var sink struct {
				Bytes int64 `json:"bytes"`
			}
			_ = json.Unmarshal(b, &sink)
			if resp.StatusCode != 200 || resp.ProtoMajor != 2 || sink.Bytes != tc.want {
				t.Fatalf("%s %d %s (%s), want HTTP/2 200 and %d bytes at the origin", resp.Proto, resp.StatusCode,
					resp.Header.Get("X-Gozer-Status"), strings.TrimSpace(string(b)), tc.want)
			}
		})
	}
	if n := g.adminOrigin(t, "demo").Requests["FAILURE_CLIENT_BODY_TOO_SLOW"]; n != 0 {
		t.Errorf("/admin/origins counts %d FAILURE_CLIENT_BODY_TOO_SLOW, want 0", n)
	}
}

// TestHTTP2MinBodyRateConnectionWindow: a stream whose body waits for the
// connection's window, which another stream's held body closed, is not
// judged either. The windows are 64 KiB each: stream A's upload, whose
// origin reads nothing for 4 s, holds its whole stream window, so the whole
// connection window, and stream B (its own window open, its origin reading)
// can send nothing for several rate windows; both reach their origins whole.
func TestHTTP2MinBodyRateConnectionWindow(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o := startOrigin(t, "o")
	g := h2Gozer(t, ca, o.Addr, map[string]string{"initial_window_size": "65535", "connection_window_size": "65535"}, bodyRateServer)
	client := h2cClient(t) // one connection for both streams
	const size = 32 << 20
	type result struct {
		name   string
		status int
		bytes  int64
		err    error
	}
	results := make(chan result, 2)
	for _, path := range []string{"/slow-sink?delay=4s", "/sink"} {
		go func() {
			r := result{name: path}
			resp, err := client.Post(g.URL(path), "application/octet-stream", bytes.NewReader(make([]byte, size)))
			if err != nil {
				r.err = err
				results <- r
				return
			}
			defer resp.Body.Close()
			var sink struct {
				Bytes int64 `json:"bytes"`
			}
			r.err = json.NewDecoder(resp.Body).Decode(&sink)
			r.status, r.bytes = resp.StatusCode, sink.Bytes
			results <- r
		}()
	}
	for range 2 {
		r := <-results
		if r.err != nil || r.status != 200 || r.bytes != size {
			t.Errorf("%s: %d, %d bytes at the origin, %v; want 200 and %d", r.name, r.status, r.bytes, r.err, size)
		}
	}
	if n := g.adminOrigin(t, "demo").Requests["FAILURE_CLIENT_BODY_TOO_SLOW"]; n != 0 {
		t.Errorf("/admin/origins counts %d FAILURE_CLIENT_BODY_TOO_SLOW, want 0", n)
	}
}

// TestHTTP2MinBodyRateAnswered: min_body_rate judges a body only while no
// response has started. Once the origin answered, a stream that sends
// little is the origin's choice (gRPC client streaming and bidi): a client
// that trickles its body (10 bytes every 200 ms, 50 B/s, for 2.4 s: over
// two rate windows) to a full-duplex origin (request_buffer 0), which answers 200 at once and
// echoes the body as it reads it, gets every byte back and its stream's
// end, no reset, and no FAILURE_CLIENT_BODY_TOO_SLOW is counted.
func TestHTTP2MinBodyRateAnswered(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "o")
	// request_buffer 0: the body streams at once, so the origin answers
	// while it trickles (as an interactive, gRPC, route is set).
	cfg := oneOrigin(map[string]string{"request_buffer": "0"}, o.Addr)
	cfg.H2C, cfg.Server = true, bodyRateServer
	g := startGozer(t, cfg)

	h := dialH2(t, g.ProxyAddr)
	if err := h.request(1, "POST", "/echo", false); err != nil {
		t.Fatal(err)
	}
	const pieces, piece = 12, "0123456789"
	status, echoed, sent, ended := "", 0, 0, false
	deadline := time.Now().Add(20 * time.Second)
	next := time.Now()
	for !ended && time.Now().Before(deadline) {
		if sent < pieces && !time.Now().Before(next) {
			sent++
			if err := h.fr.WriteData(1, sent == pieces, []byte(piece)); err != nil {
				t.Fatal(err)
			}
			next = next.Add(200 * time.Millisecond) // the trickle's pace
		}
		wait := time.Until(deadline)
		if sent < pieces {
			wait = time.Until(next)
		}
		ev := h.next(wait)
		switch {
		case ev.closed:
			t.Fatalf("the connection ended after %d pieces (status %q, %d bytes echoed)", sent, status, echoed)
		case ev.stream != 1:
			continue
		case ev.reset:
			t.Fatalf("stream reset (%v) after %d pieces (status %q, %d bytes echoed): an answered stream must not be judged",
				ev.rst, sent, status, echoed)
		}
		if ev.status != "" {
			status = ev.status
		}
		echoed += ev.data
		ended = ev.end
	}
	if status != "200" || echoed != pieces*len(piece) || !ended {
		t.Fatalf("status %q, %d bytes echoed, END_STREAM %v; want 200, %d bytes and the end", status, echoed, ended, pieces*len(piece))
	}
	if n := g.adminOrigin(t, "demo").Requests["FAILURE_CLIENT_BODY_TOO_SLOW"]; n != 0 {
		t.Errorf("/admin/origins counts %d FAILURE_CLIENT_BODY_TOO_SLOW, want 0", n)
	}
}
