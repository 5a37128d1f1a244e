package test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsRouteConfig is the configuration of TestWebSocketProxyRouteKey: two
// origins on the same websocket server, "on" (websocket.enabled) and "off"
// (not), and routes that say yes, no or nothing about websocket; force and
// refuse are the websocket keys of /ws/force and /ws/refuse.
func wsRouteConfig(d scriptDir, addr, force, refuse string) config {
	return config{
		Origins: map[string]originConfig{
			"on":  {Servers: []string{addr}, Opts: map[string]string{"websocket": "{enabled: true}"}},
			"off": {Servers: []string{addr}},
		},
		Routes: []route{
			{PathPrefix: "/ws/refuse", Origin: "on", WebSocket: refuse},
			{PathPrefix: "/ws/force", Origin: "off", WebSocket: force},
			{PathPrefix: "/ws/luaroute", Origin: "off", WebSocket: "true"},
			{PathPrefix: "/ws/luaon", Origin: "on", WebSocket: "false"},
			{PathPrefix: "/ws/luaoff", Origin: "on"},
			{PathPrefix: "/ws/on", Origin: "on"},
			{PathPrefix: "/", Origin: "off"},
		},
		Filters: &filtersConfig{Dir: string(d), Budget: "1s"},
	}
}

// TestWebSocketProxyRouteKey: routes[].websocket tunnels upgrades to an
// origin whose websocket.enabled is off (true), refuses to tunnel to one
// whose is on (false: the upgrade reaches the origin as a plain request,
// which gorilla refuses with 400), and left out leaves it to the origin. A
// filter's ctx.route{websocket = true|false} overrides the route's key; a
// filter that chooses the origin takes the route table, its key included,
// out of the decision. A reload changes the key for new upgrades.
func TestWebSocketProxyRouteKey(t *testing.T) {
	t.Parallel()
	o := startWSOrigin(t, nil)
	d := newScriptDir(t)
	d.write(t, "inbound", "ws.lua", luaFilter("ws", "inbound", 10, "", `
    local p = ctx.req.path
    if p:find("^/ws/luaon") then ctx.route{ websocket = true }
    elseif p:find("^/ws/luaoff") then ctx.route{ websocket = false }
    elseif p:find("^/ws/luaroute") then ctx.route{ origin = "off" } end`))
	g := startGozer(t, wsRouteConfig(d, o.Addr, "true", "false"))

	check := func(path string, tunnels bool) {
		t.Helper()
		if !tunnels {
			if r := dialTunnelRefused(t, g, path); r.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %d; want the origin's 400 (no Upgrade reached it)", path, r.StatusCode)
			}
			return
		}
		c := dialTunnel(t, g, path)
		defer c.Close()
		if err := c.WriteMessage(websocket.TextMessage, []byte(path)); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, b, err := c.ReadMessage(); err != nil || string(b) != path {
			t.Errorf("%s: echo %q, %v", path, b, err)
		}
	}
	cases := []struct {
		path    string
		tunnels bool
	}{
		{"/ws/on", true},        // no key, the origin's websocket on
		{"/ws/plain", false},    // no key, the origin's websocket off
		{"/ws/force", true},     // websocket: true over the origin's off
		{"/ws/refuse", false},   // websocket: false over the origin's on
		{"/ws/luaon", true},     // Lua's websocket = true over the route's false
		{"/ws/luaoff", false},   // Lua's websocket = false over the origin's on
		{"/ws/luaroute", false}, // a filter chose the origin: the route's true does not apply
	}
	for _, c := range cases {
		check(c.path, c.tunnels)
	}

	g.rewrite(t, wsRouteConfig(d, o.Addr, "false", ""))
	if st, body := g.reloadNow(t); st != 200 {
		t.Fatalf("reload: %d %s", st, body)
	}
	check("/ws/force", false) // now websocket: false
	check("/ws/refuse", true) // now left out: the origin's on
}
