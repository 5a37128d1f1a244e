package test

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// streamMsgs and streamMsg size the slow-reader tests' stream: 96 MiB, far
// more than the kernel's socket buffers and Gozer's bound hold together.
const (
	streamMsgs = 1536
	streamMsg  = 64 << 10
)

// sendStream writes the numbered messages of the slow-reader tests,
// counting the bytes written; it reports the error that stopped it.
func sendStream(c *websocket.Conn, written *atomic.Int64) error {
	msg := make([]byte, streamMsg)
	for i := 0; i < streamMsgs; i++ {
		binary.BigEndian.PutUint64(msg, uint64(i))
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			return err
		}
		written.Add(streamMsg)
	}
	return nil
}

// readStream reads the numbered messages of the slow-reader tests; an
// error says which is missing or out of order.
func readStream(c *websocket.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for i := 0; i < streamMsgs; i++ {
		_, b, err := c.ReadMessage()
		if err != nil {
			return fmt.Errorf("message %d of %d: %w", i, streamMsgs, err)
		}
		if n := binary.BigEndian.Uint64(b); n != uint64(i) || len(b) != streamMsg {
			return fmt.Errorf("message %d: got number %d, %d bytes: data lost or reordered", i, n, len(b))
		}
	}
	return nil
}

// waitStalled waits until written stops growing (the writer is blocked: the
// other side's reads are paused) and returns it.
func waitStalled(t testing.TB, written *atomic.Int64) int64 {
	t.Helper()
	var prev, stable int64 = -1, 0
	waitFor(t, 60*time.Second, "the writer blocked by backpressure", func() bool {
		cur := written.Load()
		if cur == prev && cur > 0 {
			stable++
		} else {
			stable = 0
		}
		prev = cur
		return stable >= 50 // a second without progress at 20 ms polls
	})
	return prev
}

// TestWebSocketProxySlowReader: a client that does not read pauses the
// origin's side (the origin's writes block long before its 96 MiB are out),
// Gozer's memory stays bounded meanwhile, and once the client reads every
// message arrives, in order. Then the other way: an origin that does not
// read pauses the client.
func TestWebSocketProxySlowReader(t *testing.T) {
	t.Parallel()
	raceAlso(t, testWebSocketProxySlowReader)
}

func testWebSocketProxySlowReader(t *testing.T) {
	var down, up atomic.Int64
	read := make(chan struct{})
	o := startWSOrigin(t, func(o *wsOrigin, c *websocket.Conn) {
		_ = sendStream(c, &down)
		<-read // the upload: not read until the test says so
		o.ends <- readStream(c)
	})
	g := wsGozer(t, o.Addr, "{enabled: true}", nil)
	before, err := g.rss()
	if err != nil {
		t.Fatal(err)
	}
	c := dialTunnel(t, g, "/ws")
	sent := waitStalled(t, &down)
	grown, _ := g.rss()
	if sent >= streamMsgs*streamMsg {
		t.Fatalf("the origin wrote all %d bytes to a client that reads nothing: no backpressure", sent)
	}
	if grown-before > 48<<20 {
		t.Errorf("gozer's RSS grew %d MiB while holding a slow reader's stream; want bounded", (grown-before)>>20)
	}
	t.Logf("down: origin blocked after %d MiB; gozer RSS %d → %d MiB", sent>>20, before>>20, grown>>20)
	// What the tunnel holds toward its client counts in the node's total
	// (server.max_buffered_total), bounded by an allowance and the reads
	// behind it, and leaves it once the client took it.
	if held := g.adminEdge(t).Buffered; held <= 0 || held > 4<<20 {
		t.Errorf("/admin/edge buffered_bytes %d behind a stalled tunnel; want counted, within 4 MiB", held)
	}
	if err := readStream(c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "buffered_bytes back to 0 once the client read", func() bool {
		return g.adminEdge(t).Buffered == 0
	})

	go func() { _ = sendStream(c, &up) }()
	sent = waitStalled(t, &up)
	if sent >= streamMsgs*streamMsg {
		t.Fatalf("the client wrote all %d bytes to an origin that reads nothing: no backpressure", sent)
	}
	close(read)
	if err := o.waitEnd(t); err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketProxyDrain: on SIGTERM both sides of a tunnel get close 1001,
// and Gozer exits once they are gone.
func TestWebSocketProxyDrain(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, nil)
	g := wsGozer(t, o.Addr, "{enabled: true}", nil)
	c := dialTunnel(t, g, "/ws")
	if err := c.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Process.Signal(terminate); err != nil {
		t.Fatal(err)
	}
	if err := readUntilClose(t, c); closeCode(err) != websocket.CloseGoingAway {
		t.Errorf("client's read ended with %v; want 1001", err)
	}
	if err := o.waitEnd(t); closeCode(err) != websocket.CloseGoingAway {
		t.Errorf("origin's read ended with %v; want 1001", err)
	}
	if code, ok := g.exitCode(15 * time.Second); !ok || code != 0 {
		t.Errorf("gozer after SIGTERM: exited %v, code %d; want 0", ok, code)
	}
	_, wsl := tunnelLine(t, g, "/ws")
	if wsl["closed_by"] != "drain" {
		t.Errorf("tunnel line %v; want closed_by drain", wsl)
	}
}

// TestWebSocketProxyTLS: wss:// to the HTTPS listener, ws:// to the origin.
func TestWebSocketProxyTLS(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, nil)
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost", "127.0.0.1")
	cfg := oneOrigin(map[string]string{"websocket": "{enabled: true}"}, o.Addr)
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	g := startGozer(t, cfg)
	d := wsDialer()
	d.TLSClientConfig = &tls.Config{RootCAs: ca.pool, ServerName: "localhost"}
	c, _, err := d.Dial("wss://"+g.HTTPSAddr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 300<<10) // several TLS records
	for i := range msg {
		msg[i] = byte(i)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, got, err := c.ReadMessage(); err != nil || string(got) != string(msg) {
		t.Fatalf("wss echo: %d bytes, err %v", len(got), err)
	}
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(5*time.Second))
	if err := readUntilClose(t, c); closeCode(err) != 1000 {
		t.Errorf("wss close: %v", err)
	}
	line, _ := tunnelLine(t, g, "/ws")
	if _, ok := line["tls"]; !ok {
		t.Errorf("wss tunnel line without tls: %v", line)
	}
}

// TestWebSocketProxyTLSOrigin: ws:// to Gozer, wss:// to an origin with
// origins.NAME.tls on: the upgrade and the frames go over the origin's TLS.
func TestWebSocketProxyTLSOrigin(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "origin", false, "127.0.0.1")
	o := startWSOriginTLS(t, nil, cert, key)
	g := wsGozer(t, o.Addr, "{enabled: true}", map[string]string{"tls": fmt.Sprintf("{enabled: true, ca_file: %q}", ca.caFile())})
	c := dialTunnel(t, g, "/ws")
	msg := make([]byte, 200<<10)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, got, err := c.ReadMessage(); err != nil || string(got) != string(msg) {
		t.Fatalf("echo over the origin's TLS: %d bytes, err %v", len(got), err)
	}
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(5*time.Second))
	if err := o.waitEnd(t); closeCode(err) != 1000 {
		t.Errorf("TLS origin's read ended with %v; want 1000", err)
	}
}

// TestWebSocketProxyOriginVanishes: an origin whose connection breaks
// without a close frame takes its client's connection with it; the log
// says the origin ended it.
func TestWebSocketProxyOriginVanishes(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, func(o *wsOrigin, c *websocket.Conn) {
		_, _, _ = c.ReadMessage()
		_ = c.UnderlyingConn().Close() // no close frame
	})
	g := wsGozer(t, o.Addr, "{enabled: true}", nil)
	c := dialTunnel(t, g, "/ws")
	if err := c.WriteMessage(websocket.TextMessage, []byte("bye?")); err != nil {
		t.Fatal(err)
	}
	// gorilla reports a connection closed without a close frame as 1006.
	if err := readUntilClose(t, c); closeCode(err) != websocket.CloseAbnormalClosure {
		t.Errorf("client's read ended with %v; want the connection closed without a close frame (1006)", err)
	}
	_, wsl := tunnelLine(t, g, "/ws")
	if wsl["closed_by"] != "origin" {
		t.Errorf("tunnel line %v; want closed_by origin", wsl)
	}
}

// TestWebSocketProxyProtocolError: a client frame without a mask (RFC 6455
// forbids it) ends the tunnel with close 1002 to the client, counted and
// logged.
func TestWebSocketProxyProtocolError(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, nil)
	g := wsGozer(t, o.Addr, "{enabled: true}", nil)
	nc, err := net.DialTimeout("tcp", g.ProxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(nc, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	_, _ = nc.Write([]byte{0x81, 0x02, 'h', 'i'}) // text "hi", unmasked
	rest, _ := io.ReadAll(br)
	if len(rest) < 4 || rest[0] != 0x88 || binary.BigEndian.Uint16(rest[2:4]) != 1002 {
		t.Fatalf("after an unmasked frame the client got % x; want a close frame with 1002", rest)
	}
	_, wsl := tunnelLine(t, g, "/ws")
	if wsl["closed_by"] != "protocol_error" {
		t.Errorf("tunnel line %v; want closed_by protocol_error", wsl)
	}
	if v := sumOf(scrapeMetrics(t, g), "gozer_origin_websocket_protocol_errors_total", "origin", "demo"); v != 1 {
		t.Errorf("gozer_origin_websocket_protocol_errors_total %v; want 1", v)
	}
}

// TestWebSocketProxyLuaRoute: ctx.route{websocket = true} tunnels to an
// origin whose websocket.enabled is off; without it, the upgrade is not
// proxied (its hop-by-hop headers stop at Gozer and the origin refuses).
func TestWebSocketProxyLuaRoute(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, nil)
	d := newScriptDir(t)
	d.write(t, "inbound", "ws.lua", luaFilter("ws", "inbound", 10, "", `
    if ctx.req.path:find("^/ws/lua") then ctx.route{ origin = "chat", websocket = true } end`))
	g := luaGozer(t, d, filtersConfig{}, map[string]originConfig{"chat": {Servers: []string{o.Addr}}},
		route{PathPrefix: "/", Origin: "chat"})
	c := dialTunnel(t, g, "/ws/lua")
	if err := c.WriteMessage(websocket.TextMessage, []byte("via lua")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || string(b) != "via lua" {
		t.Fatalf("echo through a Lua-routed tunnel: %q %v", b, err)
	}
	if r := dialTunnelRefused(t, g, "/ws/plain"); r.StatusCode != http.StatusBadRequest {
		t.Errorf("upgrade to an origin without websocket: %d; want the origin's 400", r.StatusCode)
	}
}
