package test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWebSocketProxyEcho: an upgrade to an origin with websocket.enabled goes
// to the origin as an upgrade; text and a 1 MiB binary message (fragmented
// by both ends' writers) come back intact; the tunnel shows in /admin/origins
// and /metrics while open, and ends with one access-log line (status 101,
// bytes each way, who closed and the code).
func TestWebSocketProxyEcho(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, nil)
	g := wsGozer(t, o.Addr, "{enabled: true}", nil)
	c := dialTunnel(t, g, "/ws")
	if got := o.lastUpgrade.Load(); got != "Upgrade|websocket" {
		t.Errorf("origin got Connection|Upgrade %q; want the upgrade's hop-by-hop headers", got)
	}

	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	msgs := []struct {
		typ int
		b   []byte
	}{{websocket.TextMessage, []byte("hello through gozer")}, {websocket.BinaryMessage, big}, {websocket.TextMessage, []byte("after")}}
	for _, m := range msgs {
		w, err := c.NextWriter(m.typ)
		if err != nil {
			t.Fatal(err)
		}
		for p := m.b; len(p) > 0; { // pieces of 100 KiB: a fragmented message
			n := min(len(p), 100<<10)
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		typ, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read echo of %d bytes: %v", len(m.b), err)
		}
		if typ != m.typ || !bytes.Equal(got, m.b) {
			t.Fatalf("echo of %d bytes: type %d, %d bytes, equal %v", len(m.b), typ, len(got), bytes.Equal(got, m.b))
		}
	}

	origins := adminJSON(t, g, "/admin/origins").([]any)
	ws := origins[0].(map[string]any)["websocket"].(map[string]any)
	if ws["open_tunnels"] != 1.0 || ws["tunnels_total"] != 1.0 {
		t.Errorf("/admin/origins websocket %v; want 1 open, 1 total", ws)
	}
	fams := scrapeMetrics(t, g)
	if v := sumOf(fams, "gozer_origin_websocket_tunnels", "origin", "demo"); v != 1 {
		t.Errorf("gozer_origin_websocket_tunnels %v; want 1", v)
	}
	if v := sumOf(fams, "gozer_origin_websocket_bytes_total", "origin", "demo", "direction", "up"); v < 1<<20 {
		t.Errorf("gozer_origin_websocket_bytes_total up %v; want at least the 1 MiB message", v)
	}

	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done")
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := o.waitEnd(t); closeCode(err) != websocket.CloseNormalClosure {
		t.Errorf("origin's read ended with %v; want the client's close 1000", err)
	}
	if err := readUntilClose(t, c); closeCode(err) != websocket.CloseNormalClosure {
		t.Errorf("client's read ended with %v; want the origin's echo 1000", err)
	}
	line, wsl := tunnelLine(t, g, "/ws")
	if wsl["closed_by"] != "client" || wsl["close_code"] != 1000.0 {
		t.Errorf("tunnel line websocket %v; want closed_by client, close_code 1000", wsl)
	}
	up, _ := wsl["bytes_up"].(float64)
	down, _ := wsl["bytes_down"].(float64)
	if up < 1<<20 || down < 1<<20 || line.str("origin") != "demo" {
		t.Errorf("tunnel line %v: want over 1 MiB each way at origin demo", line)
	}
	waitFor(t, 10*time.Second, "the open-tunnels gauge back to 0", func() bool {
		return sumOf(scrapeMetrics(t, g), "gozer_origin_websocket_tunnels", "origin", "demo") == 0
	})
}

// TestWebSocketProxyOriginCloses: the origin's close frame and code reach the
// client; the log says the origin closed.
func TestWebSocketProxyOriginCloses(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, func(o *wsOrigin, c *websocket.Conn) {
		_, _, _ = c.ReadMessage() // one message, then goodbye
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"), time.Now().Add(5*time.Second))
		o.ends <- readUntilClose(t, c)
	})
	g := wsGozer(t, o.Addr, "{enabled: true}", nil)
	c := dialTunnel(t, g, "/ws")
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	err := readUntilClose(t, c)
	var ce *websocket.CloseError
	if closeCode(err) != 4001 || !strings.Contains(fmt.Sprint(err), "bye") {
		t.Fatalf("client's read ended with %v (%T %v); want close 4001 bye", err, err, ce)
	}
	if err := o.waitEnd(t); closeCode(err) != 4001 {
		t.Errorf("origin's read ended with %v; want the client's echo of 4001", err)
	}
	_, wsl := tunnelLine(t, g, "/ws")
	if wsl["closed_by"] != "origin" || wsl["close_code"] != 4001.0 {
		t.Errorf("tunnel line websocket %v; want closed_by origin, close_code 4001", wsl)
	}
}

// TestWebSocketProxyRefusals: an origin that answers 403 instead of 101 has
// its answer relayed; an origin that is down gets 502 before any upgrade;
// max_tunnels and the bulkhead answer 503 naming their cause.
func TestWebSocketProxyRefusals(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, nil)
	g := wsGozer(t, o.Addr, "{enabled: true, max_tunnels: 1}", nil)
	if r := dialTunnelRefused(t, g, "/forbidden"); r.StatusCode != 403 {
		t.Errorf("origin's 403: client got %d", r.StatusCode)
	}
	c := dialTunnel(t, g, "/ws") // the one tunnel max_tunnels allows
	r := dialTunnelRefused(t, g, "/ws")
	if r.StatusCode != 503 || r.Header.Get("X-Gozer-Status") != "FAILURE_LOCAL_THROTTLED_ORIGIN_WEBSOCKETS" {
		t.Errorf("second tunnel over max_tunnels 1: %d %q", r.StatusCode, r.Header.Get("X-Gozer-Status"))
	}
	c.Close()
	waitFor(t, 10*time.Second, "a tunnel slot free again", func() bool {
		c2, _, err := wsDialer().Dial("ws://"+g.ProxyAddr+"/ws", nil)
		if err == nil {
			c2.Close()
		}
		return err == nil
	})

	down := wsGozer(t, closedPort(t), "{enabled: true}", map[string]string{"retries": "0"})
	if r := dialTunnelRefused(t, down, "/ws"); r.StatusCode != 502 || r.Header.Get("X-Gozer-Status") != "FAILURE_ORIGIN_CONNECTIVITY" {
		t.Errorf("origin down: %d %q; want 502 FAILURE_ORIGIN_CONNECTIVITY", r.StatusCode, r.Header.Get("X-Gozer-Status"))
	}

	bh := wsGozer(t, o.Addr, "{enabled: true}", map[string]string{"max_concurrent_requests": "1"})
	held := dialTunnel(t, bh, "/ws") // holds the bulkhead's one slot for its whole life
	r = dialTunnelRefused(t, bh, "/ws")
	if r.StatusCode != 503 || r.Header.Get("X-Gozer-Status") != "FAILURE_LOCAL_THROTTLED_ORIGIN_CONCURRENCY" {
		t.Errorf("tunnel over the bulkhead: %d %q", r.StatusCode, r.Header.Get("X-Gozer-Status"))
	}
	held.Close()
}

// TestWebSocketProxyTimeouts: an idle tunnel and one past its lifetime are
// closed with 1001 to both sides, each logged with its reason.
func TestWebSocketProxyTimeouts(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, nil)
	g := wsGozer(t, o.Addr, "{enabled: true, idle_timeout: 1s, max_lifetime: 3s}", nil)

	idle := dialTunnel(t, g, "/ws")
	if err := readUntilClose(t, idle); closeCode(err) != websocket.CloseGoingAway {
		t.Errorf("idle client's read ended with %v; want 1001", err)
	}
	if err := o.waitEnd(t); closeCode(err) != websocket.CloseGoingAway {
		t.Errorf("idle origin's read ended with %v; want 1001", err)
	}
	_, wsl := tunnelLine(t, g, "/ws")
	if wsl["closed_by"] != "idle_timeout" {
		t.Errorf("idle tunnel line %v; want closed_by idle_timeout", wsl)
	}

	busy := dialTunnel(t, g, "/ws/busy")
	start := time.Now()
	ended := make(chan error, 1)
	go func() { ended <- readUntilClose(t, busy) }()
	var err error
	for done := false; !done; {
		select {
		case err = <-ended:
			done = true
		case <-time.After(200 * time.Millisecond): // busy enough never to be idle
			_ = busy.WriteMessage(websocket.TextMessage, []byte("tick"))
		}
	}
	if closeCode(err) != websocket.CloseGoingAway || time.Since(start) < 2*time.Second {
		t.Errorf("busy tunnel ended with %v after %v; want 1001 at max_lifetime 3s", err, time.Since(start))
	}
	_, wsl = tunnelLine(t, g, "/ws/busy")
	if wsl["closed_by"] != "max_lifetime" {
		t.Errorf("busy tunnel line %v; want closed_by max_lifetime", wsl)
	}
}

// TestWebSocketProxyReload: origins.NAME.websocket is live. A reload that
// raises max_tunnels lets one more tunnel in (the open ones still count);
// one that turns websocket off sends new upgrades to the origin as plain
// requests; tunnels opened before either keep relaying.
func TestWebSocketProxyReload(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, nil)
	g := wsGozer(t, o.Addr, "{enabled: true, max_tunnels: 1}", nil)
	first := dialTunnel(t, g, "/ws")
	if r := dialTunnelRefused(t, g, "/ws"); r.StatusCode != 503 {
		t.Fatalf("over max_tunnels 1: %d", r.StatusCode)
	}
	echoes := func(c *websocket.Conn, what string) {
		t.Helper()
		if err := c.WriteMessage(websocket.TextMessage, []byte(what)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, b, err := c.ReadMessage(); err != nil || string(b) != what {
			t.Fatalf("%s: echo %q, %v", what, b, err)
		}
	}
	reload := func(ws string) {
		t.Helper()
		g.rewrite(t, oneOrigin(map[string]string{"websocket": ws}, o.Addr))
		if st, body := g.reloadNow(t); st != 200 {
			t.Fatalf("reload to websocket %s: %d %s", ws, st, body)
		}
	}
	reload("{enabled: true, max_tunnels: 2}")
	second := dialTunnel(t, g, "/ws")
	if r := dialTunnelRefused(t, g, "/ws"); r.StatusCode != 503 {
		t.Errorf("over max_tunnels 2 with two open: %d", r.StatusCode)
	}
	echoes(first, "first, after the reload")
	echoes(second, "second")

	reload("{enabled: false}")
	if r := dialTunnelRefused(t, g, "/ws"); r.StatusCode != http.StatusBadRequest {
		t.Errorf("upgrade with websocket off: %d; want the origin's 400 (no Upgrade reached it)", r.StatusCode)
	}
	echoes(first, "first, websocket off for new ones")
}
