package test

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// startWSGreeter is a websocket origin that answers its 101 with X-Origin
// and X-Secret, sends "hello" at once behind it (before the client says
// anything: bytes the gateway must not lose while its outbound filters run
// on the 101), then echoes until the read fails (reported on ends).
func startWSGreeter(t testing.TB) (addr string, ends chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ends = make(chan error, 16)
	up := websocket.Upgrader{}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, http.Header{"X-Origin": {"1"}, "X-Secret": {"s"}})
		if err != nil {
			return
		}
		defer c.Close()
		if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			ends <- err
			return
		}
		for {
			mt, msg, err := c.ReadMessage()
			if err == nil {
				err = c.WriteMessage(mt, msg)
			}
			if err != nil {
				ends <- err
				return
			}
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), ends
}

// TestWebSocketProxyOutbound101: the outbound filters run on the origin's
// 101 before the client gets it: a Lua filter's header edits (one that lists
// the headers, which parses the head, and one that does not) and the
// built-in Go filter's Server-Timing reach the client, and the origin's
// first message, sent behind its 101, is not lost. Edits of what makes the
// upgrade (the status, Upgrade, Connection, Sec-WebSocket-Accept) are
// ignored and logged; a fatal filter's error fails the upgrade with 500 and
// closes the origin's websocket. Each tunnel still logs one line.
func TestWebSocketProxyOutbound101(t *testing.T) {
	t.Parallel()
	addr, ends := startWSGreeter(t)
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
