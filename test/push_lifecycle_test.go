package test

// The life of push connections in the real gozer binary: pings and the ping
// timeout, the lifetime go-away, slow consumers, the SIGTERM drain, SSE (events,
// Last-Event-ID replay, keepalives, go-away) and device messages sent upstream.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestPushPingTimeout: with ping_interval 1s, a device that never answers pings
// (it does not read, so gorilla sends no pong) is closed within a few intervals
// and counted in ping_timeout_closed_total; a device that answers is pinged and
// stays connected well past that time.
func TestPushPingTimeout(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, map[string]string{"ping_interval": "1s"})
	start := time.Now()
	silent := dialWSConn(t, g.wsURL(g.pushToken(t, "ping-silent", "1h")), nil)
	aliveConn := dialWSConn(t, g.wsURL(g.pushToken(t, "ping-alive", "1h")), nil)
	var pingMu sync.Mutex
	var pings []time.Duration // since start
	aliveConn.SetPingHandler(func(data string) error {
		pingMu.Lock()
		pings = append(pings, time.Since(start))
		pingMu.Unlock()
		return aliveConn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	alive := readWS("ping-alive", aliveConn)
	g.waitConnected(t, "ping-silent", true, 5*time.Second)

	// First ping within an interval, a second one an interval later, closed at
	// the third: about 3 s; timers may fire a second late, and the machine may be
	// loaded: allow 8.
	g.waitPushCounter(t, "ping_timeout_closed_total", 1, 8*time.Second)
	closedAfter := time.Since(start)
	if l := g.pushClosedLine(t, "ping-silent"); l["closed_by"] != "ping_timeout" || l["reason"] != "two pings without an answer" {
		t.Errorf("access log: ping-silent %v, want closed_by ping_timeout with its reason", l)
	}
	g.waitConnected(t, "ping-silent", false, 2*time.Second)
	if closedAfter < 1500*time.Millisecond {
		t.Errorf("the silent device was closed after %v: before it could miss two pings 1s apart", closedAfter)
	}
	t.Logf("silent device closed for ping timeout after %v", closedAfter)
	// Its socket is closed: reading now ends (after the pings that were queued).
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := silent.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the silent device's socket is still open 5s after the ping timeout")
			}
			break
		}
	}

	// The device that answers stays, over at least three more intervals.
	alive.silent(t, time.Until(start.Add(closedAfter+3*time.Second)))
	pingMu.Lock()
	got := append([]time.Duration(nil), pings...)
	pingMu.Unlock()
	if len(got) < 3 {
		t.Errorf("the answering device got %d pings in %v with ping_interval 1s, want >= 3", len(got), time.Since(start))
	}
	// Pings come every ping_interval. Gozer's timer wheel has 1 s slots and fires
	// a timer up to a second late (plus what a loaded machine adds), but the
	// lateness must not add up: ping k comes at most a fixed lateness after
	// first + k intervals. Lateness that adds up (each ping scheduled from when
	// the last one fired) would put the last of n pings n-1 seconds further off.
	if n := len(got); n >= 3 {
		const slack = 2 * time.Second
		if span, want := got[n-1]-got[0], time.Duration(n-1)*time.Second; span > want+slack {
			t.Errorf("pings at %v: %d pings over %v with ping_interval 1s, want at most %v: the lateness adds up",
				roundAll(got), n, span.Round(time.Millisecond), want+slack)
		}
	}
	g.push(t, "ping-alive", "still here", 200)
	alive.expectText(t, "still here")
	if n := g.pushCounter(t, "ping_timeout_closed_total"); n != 1 {
		t.Errorf("ping_timeout_closed_total = %d, want 1 (only the silent device)", n)
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

// TestPushLifetimeGoAway: with max_lifetime 2s (dither 0.2) a websocket device gets
// close 1001 with a reason about the lifetime after 1.6 to 2 s (plus up to a second
// of timer lateness), and is then no longer registered; an SSE device gets an
// "event: goaway" and its stream ends.
func TestPushLifetimeGoAway(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, map[string]string{"max_lifetime": "2s", "lifetime_dither": "0.2"})
	start := time.Now()
	dev := dialWS(t, g, "life", g.pushToken(t, "life", "1h"))
	sse := dialSSE(t, g, "life-sse", g.pushToken(t, "life-sse", "1h"), "")

	ce := dev.expectClose(t, 6*time.Second)
	age := time.Since(start)
	if ce.Code != websocket.CloseGoingAway || !strings.Contains(ce.Text, "lifetime") {
		t.Errorf("close %d %q, want 1001 with a reason mentioning the lifetime", ce.Code, ce.Text)
	}
	if age < 1500*time.Millisecond {
		t.Errorf("go-away after %v, before max_lifetime 2s less its 20%% dither", age)
	}
	g.waitConnected(t, "life", false, 5*time.Second)

	ev := sse.nextEvent(t, 5*time.Second)
	if ev.event != "goaway" || !strings.Contains(ev.data, "lifetime") {
		t.Errorf("SSE: event %q data %q, want a goaway mentioning the lifetime", ev.event, ev.data)
	}
	waitFor(t, 5*time.Second, "the SSE stream ends after its go-away", func() bool {
		select {
		case _, ok := <-sse.events:
			return !ok
		default:
			return false
		}
	})
	g.waitConnected(t, "life-sse", false, 5*time.Second)
	if n := g.pushCounter(t, "goaway_total"); n < 2 {
		t.Errorf("/admin/push goaway_total = %d, want >= 2", n)
	}
	if by := g.waitPushClosed(t, "life-sse"); by != "lifetime" {
		t.Errorf("access log: life-sse closed_by %q, want lifetime", by)
	}
}

// TestPushSlowConsumer: a device that never reads (a small receive buffer, not
// one byte read after the handshake) is closed once its outbound bytes pass
// push.max_outbound_bytes; the push API then answers 202 stored for it (kept in
// the history, bounded by push.history.max_bytes, for its reconnect), the close is
// counted, and pushing 32 MiB at it does not grow gozer's memory by anything near
// that.
func TestPushSlowConsumer(t *testing.T) {
	t.Parallel()
	raceAlso(t, testPushSlowConsumer)
}

func testPushSlowConsumer(t *testing.T) {
	g := pushGozer(t, map[string]string{
		"max_message": "16KiB", "max_outbound_bytes": "64KiB", "rate": "1000000", "burst": "1000000",
	})
	tok := g.pushToken(t, "slow", "1h")
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", g.ProxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	wsHandshakeRaw(t, g, c, tok, 16)
	// From here the device reads nothing.
	g.waitConnected(t, "slow", true, 5*time.Second)
	base, err := g.rss()
	if err != nil {
		t.Fatal(err)
	}

	var peak atomic.Int64
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		for {
			if r, err := g.rss(); err == nil && r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	const total, workers = 2000, 4
	msg := bytes.Repeat([]byte("s"), 16<<10)
	var reached, notFound, other atomic.Int64
	var firstOther atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for i := 0; i < total/workers; i++ {
				resp, err := client.Post("http://"+g.AdminAddr+"/push/slow", "text/plain", bytes.NewReader(msg))
				if err != nil {
					other.Add(1)
					firstOther.CompareAndSwap(nil, err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200 && bytes.Contains(b, []byte(`"reached":1`)):
					reached.Add(1)
				case resp.StatusCode == 202 && bytes.Contains(b, []byte(`"stored":true`)):
					notFound.Add(1) // not reached: kept for its reconnect
				default:
					other.Add(1)
					firstOther.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, b))
				}
			}
		}()
	}
	wg.Wait()
	close(stopSampling)
	sampling.Wait()
	t.Logf("pushed %d × 16KiB: %d reached the device, %d answered 202 stored, %d other; RSS %d MiB, peak %d MiB",
		total, reached.Load(), notFound.Load(), other.Load(), base>>20, peak.Load()>>20)

	if other.Load() > 0 {
		t.Errorf("%d pushes failed otherwise, the first: %v", other.Load(), firstOther.Load())
	}
	if notFound.Load() == 0 {
		t.Errorf("all %d pushes reached the device that does not read: it was never closed", total)
	}
	g.waitPushCounter(t, "slow_consumer_closed_total", 1, 5*time.Second)
	g.waitConnected(t, "slow", false, 5*time.Second)
	g.push(t, "slow", "gone", 202)
	if grew := peak.Load() - base; grew > 20<<20 {
		t.Errorf("gozer's RSS grew by %d MiB (from %d MiB) while 32 MiB were pushed at a device that does not read",
			grew>>20, base>>20)
	}
}

// TestPushDrainOnSIGTERM: on SIGTERM, every connected websocket device gets close
// 1001 asking it to reconnect, every SSE device a goaway event, all before
// server.drain_timeout (2s) ends, and gozer exits with code 0. Gozer spreads the
// go-aways over 80 % of the drain timeout; with ten devices, one that gets its
// go-away late (after the drain deadline closed it: 1006, no close frame) is
// likely to show.
func TestPushDrainOnSIGTERM(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, nil) // server.drain_timeout: 2s (the harness's)
	var ws []*wsDevice
	for i := 0; i < 8; i++ {
		id := fmt.Sprintf("drain-ws-%d", i)
		ws = append(ws, dialWS(t, g, id, g.pushToken(t, id, "1h")))
	}
	var sse []*sseDevice
	for i := 0; i < 2; i++ {
		id := fmt.Sprintf("drain-sse-%d", i)
		sse = append(sse, dialSSE(t, g, id, g.pushToken(t, id, "1h"), ""))
		g.waitConnected(t, id, true, 5*time.Second)
	}

	start := time.Now()
	if err := g.cmd.Process.Signal(terminate); err != nil {
		t.Fatal(err)
	}
	for _, d := range ws {
		ce := d.expectClose(t, 5*time.Second)
		if ce.Code != websocket.CloseGoingAway || !strings.Contains(ce.Text, "reconnect") || !strings.Contains(ce.Text, "restart") {
			t.Errorf("device %s: close %d %q, want 1001 asking to reconnect after a restart", d.name, ce.Code, ce.Text)
		}
	}
	for _, d := range sse {
		ev := d.nextEvent(t, 5*time.Second)
		if ev.event != "goaway" || !strings.Contains(ev.data, "reconnect") {
			t.Errorf("SSE %s: event %q data %q, want a goaway asking to reconnect", d.name, ev.event, ev.data)
		}
	}
	code, exited := g.exitCode(10 * time.Second)
	if !exited {
		t.Fatalf("gozer still runs 10s after SIGTERM with drain_timeout 2s")
	}
	if code != 0 {
		t.Errorf("gozer exited with %d after SIGTERM, want 0", code)
	}
	if strings.Contains(g.stderr.String(), "drain deadline reached") {
		t.Errorf("the drain deadline closed push connections that had not had their go-away yet")
	}
	t.Logf("gozer drained 8 websocket and 2 SSE devices and exited %v after SIGTERM", time.Since(start))
}

// TestPushSSE: an SSE device gets 200 text/event-stream; pushed messages arrive as
// events with increasing ids (one id per message across the devices of an id,
// multi-line data as several data lines); a device that connects with
// Last-Event-ID gets the events after that id at once; keepalive comments come
// every ping_interval.
func TestPushSSE(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, map[string]string{"ping_interval": "1s"})
	tok := g.pushToken(t, "sse-1", "1h")
	a := dialSSE(t, g, "A", tok, "")
	b := dialSSE(t, g, "B", tok, "")
	g.waitConnected(t, "sse-1", true, 5*time.Second)

	msgs := []string{"first", "second", "line one\nline two"}
	for _, m := range msgs {
		if ans := g.push(t, "sse-1", m, 200); ans.Reached != 2 {
			t.Fatalf("push %q reached %d, want 2 (A and B)", m, ans.Reached)
		}
	}
	var ids []uint64
	for i, m := range msgs {
		evB, evA := b.nextEvent(t, 5*time.Second), a.nextEvent(t, 5*time.Second)
		if evB.data != m || evA.data != m {
			t.Fatalf("event %d: B got %q, A got %q, want %q", i, evB.data, evA.data, m)
		}
		if evA.id != evB.id {
			t.Errorf("event %d: A has id %q, B %q: one message must be one event id", i, evA.id, evB.id)
		}
		id, err := strconv.ParseUint(evB.id, 10, 64)
		if err != nil {
			t.Fatalf("event %d: id %q is not a number", i, evB.id)
		}
		if len(ids) > 0 && id <= ids[len(ids)-1] {
			t.Errorf("event ids %v then %d: not increasing", ids, id)
		}
		ids = append(ids, id)
	}

	c := dialSSE(t, g, "C", tok, strconv.FormatUint(ids[0], 10))
	for i, m := range msgs[1:] {
		ev := c.nextEvent(t, 2*time.Second)
		if ev.data != m || ev.id != strconv.FormatUint(ids[i+1], 10) {
			t.Errorf("replay %d: id %q data %q, want id %d data %q", i, ev.id, ev.data, ids[i+1], m)
		}
	}
	if ans := g.push(t, "sse-1", "fourth", 200); ans.Reached != 3 {
		t.Errorf("push reached %d, want 3 (A, B, C)", ans.Reached)
	}
	if ev := c.nextEvent(t, 5*time.Second); ev.data != "fourth" {
		t.Errorf("C got %q after the replay, want fourth", ev.data)
	}

	// Keepalives: with ping_interval 1s a comment line within 2.5 s.
	waitFor(t, 3*time.Second, "an SSE keepalive comment", func() bool {
		for {
			select {
			case ev, ok := <-b.events:
				if !ok {
					t.Fatalf("B's stream ended: %v", b.err)
				}
				if ev.comment {
					return true
				}
			default:
				return false
			}
		}
	})
	if st := g.pushStatus(t, "sse-1"); st.Local != 3 {
		t.Errorf("GET /push/sse-1: %+v, want 3 local devices", st)
	}
}

// TestPushUpstream: a device's text message reaches push.upstream_origin as POST
// push.upstream_path with X-Push-Client-Id; binary messages, and every message
// when no upstream origin is configured, are dropped and counted.
func TestPushUpstream(t *testing.T) {
	t.Parallel()
	col := &collector{}
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)
	cfg := pushConfig(t, map[string]string{"upstream_origin": "pushorigin", "upstream_path": `"/device/messages"`})
	cfg.Origins = map[string]originConfig{"pushorigin": {Servers: []string{strings.TrimPrefix(srv.URL, "http://")}}}
	cfg.Routes = []route{{PathPrefix: "/", Origin: "pushorigin"}}
	g := startGozer(t, cfg)
	dev := dialWS(t, g, "up-1", g.pushToken(t, "up-1", "1h"))

	msg := []byte("hello upstream ✓")
	if err := dev.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	var got collected
	waitFor(t, 5*time.Second, "the device's message reaches the push origin", func() bool {
		var ok bool
		got, ok = col.find(msg)
		return ok
	})
	if got.method != "POST" || got.path != "/device/messages" || got.clientID != "up-1" {
		t.Errorf("push origin got %s %s with X-Push-Client-Id %q, want POST /device/messages with up-1",
			got.method, got.path, got.clientID)
	}
	g.waitPushCounter(t, "upstream_sent_total", 1, 5*time.Second)
	// The push origin counts the message like a request, by its status cause.
	if n := g.adminOrigin(t, "pushorigin").Requests["SUCCESS"]; n != 1 {
		t.Errorf("/admin/origins pushorigin requests_by_cause SUCCESS = %d, want 1 (the upstream message)", n)
	}
	srv.Close() // the push origin goes away: the next message fails, counted by its cause
	if err := dev.conn.WriteMessage(websocket.TextMessage, []byte("nobody home")); err != nil {
		t.Fatal(err)
	}
	g.waitPushCounter(t, "upstream_failed_total", 1, 10*time.Second)
	// Refused at connect, or its pooled connection found closed: either way
	// one origin failure.
	byCause := g.adminOrigin(t, "pushorigin").Requests
	if n := byCause["FAILURE_ORIGIN_CONNECTIVITY"] + byCause["FAILURE_ORIGIN_RESET"]; n != 1 {
		t.Errorf("/admin/origins pushorigin requests_by_cause %v, want one connectivity or reset failure", byCause)
	}

	if err := dev.conn.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	g.waitPushCounter(t, "upstream_dropped_total", 1, 5*time.Second)
	if _, ok := col.find([]byte{1, 2, 3}); ok {
		t.Errorf("a binary device message was sent upstream")
	}
	g.push(t, "up-1", "the connection is fine", 200)
	dev.expectText(t, "the connection is fine")

	t.Run("no upstream origin", func(t *testing.T) {
		g2 := pushGozer(t, nil)
		dev := dialWS(t, g2, "up-2", g2.pushToken(t, "up-2", "1h"))
		for i := 0; i < 3; i++ {
			if err := dev.conn.WriteMessage(websocket.TextMessage, []byte("nobody listens")); err != nil {
				t.Fatal(err)
			}
		}
		g2.waitPushCounter(t, "upstream_dropped_total", 3, 5*time.Second)
		if n := g2.pushCounter(t, "upstream_sent_total"); n != 0 {
			t.Errorf("upstream_sent_total = %d without an upstream origin", n)
		}
		g2.push(t, "up-2", "still connected", 200)
		dev.expectText(t, "still connected")
	})
}
