package test

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// startWSGreeter is a raw websocket origin (no library: it controls its
// writes) that answers its 101 with X-Origin and X-Secret and its first
// message, "hello", in the same write (before the client says anything: the
// bytes behind the 101 come in the gateway's read of the 101 itself, which
// it must not lose while its outbound filters run on the 101), then echoes
// the client's messages (small text frames) until a close, which it echoes
// before it hangs up, or until its read fails; each connection's end is
// reported on ends.
func startWSGreeter(t testing.TB) (addr string, ends chan error) {
	t.Helper()
	ends = make(chan error, 16)
	return serveTCP(t, func(c net.Conn) { ends <- greet(c) }), ends
}

// greet is one connection of startWSGreeter; it returns why it ended.
func greet(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // a bound for a broken test
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\nX-Origin: 1\r\nX-Secret: s\r\n\r\n"
	if _, err := c.Write(append([]byte(head), 0x81, 5, 'h', 'e', 'l', 'l', 'o')); err != nil { // one write
		return err
	}
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return err
		}
		n := int(h[1] & 0x7f)
		if h[1]&0x80 == 0 || n > 125 {
			return fmt.Errorf("frame %x: want a masked frame under 126 bytes", h)
		}
		p := make([]byte, 4+n)
		if _, err := io.ReadFull(br, p); err != nil {
			return err
		}
		for i := range p[4:] {
			p[4+i] ^= p[i%4]
		}
		if _, err := c.Write(append([]byte{h[0], byte(n)}, p[4:]...)); err != nil {
			return err
		}
		if h[0]&0x0f == 8 { // close, echoed
			return io.EOF
		}
	}
}

// TestWebSocketProxyOutbound101: the outbound filters run on the origin's
// 101 before the client gets it: a Lua filter's header edits (one that lists
// the headers, which parses the head, and one that does not) and the
// built-in Go filter's Server-Timing reach the client, and the origin's
// first message, sent in the same write as its 101, is not lost. The core
// leaves the head lazy here (not parsed into Resp.Header): Lua filters and
// server_timing, a filters.LazyHeadFilter as every built-in outbound Go
// filter is, work on it; TestUpgradeEdits (gateway/exchange) covers a
// parsed head. Edits of what makes the upgrade (the status, Upgrade,
// Connection, Sec-WebSocket-Accept) are ignored and logged; a fatal filter's
// error fails the upgrade with 500 and closes the origin's websocket. Each
// tunnel still logs one line.
func TestWebSocketProxyOutbound101(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "outbound", "ws101.lua", luaFilter("ws101", "outbound", 10, "ctx.resp.status == 101", `
    local p = ctx.req.path
    ctx.resp.set_header("X-Trace", "t-" .. p)
    if p == "/ws/listed" then
      for name in ctx.resp.headers() do
        if name:lower() == "x-secret" then ctx.resp.del_header(name) end
      end
    else
      ctx.resp.del_header("X-Secret")
    end
    if p == "/ws/break" then
      ctx.resp.set_status(200)
      ctx.resp.del_header("Upgrade")
      ctx.resp.del_header("Connection")
      ctx.resp.set_header("Sec-WebSocket-Accept", "bogus")
    elseif p == "/ws/fail" then
      error("refused in outbound")
    end`, "fatal = true"))
	addr, ends := startWSGreeter(t)
	g := luaGozer(t, d, filtersConfig{}, map[string]originConfig{"demo": {Servers: []string{addr},
		Opts: map[string]string{"websocket": "{enabled: true}"}}}, route{PathPrefix: "/", Origin: "demo"})

	for _, path := range []string{"/ws", "/ws/listed", "/ws/break"} {
		c, resp, err := wsDialer().Dial("ws://"+g.ProxyAddr+path, nil)
		if err != nil {
			t.Fatalf("%s: dial: %v", path, err) // a broken upgrade fails gorilla's handshake checks
		}
		h := resp.Header
		if h.Get("X-Trace") != "t-"+path || h.Get("X-Origin") != "1" || h.Get("X-Secret") != "" || h.Get("Server-Timing") == "" {
			t.Errorf("%s: 101 headers %v; want X-Trace, X-Origin and Server-Timing, no X-Secret", path, h)
		}
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, b, err := c.ReadMessage(); err != nil || string(b) != "hello" {
			t.Fatalf("%s: the origin's first message: %q %v", path, b, err)
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("echo "+path)); err != nil {
			t.Fatal(err)
		}
		if _, b, err := c.ReadMessage(); err != nil || string(b) != "echo "+path {
			t.Fatalf("%s: echo %q %v", path, b, err)
		}
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
		_ = readUntilClose(t, c)
		c.Close()
		tunnelLine(t, g, path)
	}
	l := g.waitLog(t, "websocket_upgrade_edit")
	if f, _ := l.fields["fields"].(string); f != "status,Upgrade,Connection,Sec-WebSocket-Accept" {
		t.Errorf("ignored edits logged as %q; want status,Upgrade,Connection,Sec-WebSocket-Accept", f)
	}

	r := dialTunnelRefused(t, g, "/ws/fail")
	if r.StatusCode != 500 || r.Header.Get("X-Gozer-Status") != "FAILURE_LOCAL_FILTER_ERROR" {
		t.Errorf("fatal outbound filter on the 101: %d %q; want 500 FAILURE_LOCAL_FILTER_ERROR", r.StatusCode, r.Header.Get("X-Gozer-Status"))
	}
	for i := 0; i < 4; i++ { // the three tunnels, then the failed upgrade's origin side
		select {
		case <-ends:
		case <-time.After(15 * time.Second):
			t.Fatalf("origin websocket %d of 4 did not end", i+1)
		}
	}
	waitFor(t, 10*time.Second, "no tunnel open after the failed upgrade", func() bool {
		return sumOf(scrapeMetrics(t, g), "gozer_origin_websocket_tunnels", "origin", "demo") == 0
	})
}
