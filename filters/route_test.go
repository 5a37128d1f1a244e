package filters

import (
	"testing"

	"gozer/gateway/config"
)

func TestRouteTable(t *testing.T) {
	on, off := true, false
	rt := NewRouteTable([]config.Route{
		{Host: "api.example.com", PathPrefix: "/", Origin: "api"},
		{Host: "*.cdn.example.com", PathPrefix: "/img", Origin: "images"},
		{PathPrefix: "/play", Origin: "playback"},
		{PathPrefix: "/chat", Origin: "web", WebSocket: &on},
		{PathPrefix: "/nows", Origin: "web", WebSocket: &off},
		{PathPrefix: "/", Origin: "web"},
	})
	cases := []struct {
		host, path, want string
		ws               WebSocketChoice
	}{
		{"api.example.com", "/anything", "api", WebSocketByOrigin},
		{"API.Example.COM", "/x", "api", WebSocketByOrigin},
		{"eu.cdn.example.com", "/img/a.png", "images", WebSocketByOrigin},
		{"cdn.example.com", "/img/a.png", "web", WebSocketByOrigin}, // wildcard needs a subdomain
		{"eu.cdn.example.com", "/other", "web", WebSocketByOrigin},
		{"other", "/playback/1", "playback", WebSocketByOrigin},
		{"other", "/chat/room", "web", WebSocketOn},
		{"other", "/nows", "web", WebSocketOff},
		{"other", "/", "web", WebSocketByOrigin},
	}
	for _, c := range cases {
		got, ok := rt.Route([]byte(c.host), []byte(c.path))
		if !ok || got.Origin != c.want || got.WebSocket != c.ws {
			t.Errorf("Route(%q, %q) = %+v, %v; want %q, websocket %d", c.host, c.path, got, ok, c.want, c.ws)
		}
	}
	empty := NewRouteTable([]config.Route{{Host: "a", PathPrefix: "/", Origin: "x"}})
	if o, ok := empty.Route([]byte("b"), []byte("/")); ok {
		t.Errorf("unmatched host routed to %q", o)
	}
}

func TestHostWithoutPort(t *testing.T) {
	for in, want := range map[string]string{
		"example.com:8080": "example.com", "example.com": "example.com",
		"[::1]:80": "[::1]", "[::1]": "[::1]", "": "",
	} {
		if got := string(HostWithoutPort([]byte(in))); got != want {
			t.Errorf("HostWithoutPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPathOf(t *testing.T) {
	cases := []struct{ uri, want string }{
		{"/", "/"},
		{"/a/b?x=1", "/a/b"},
		{"/a?", "/a"},
		{"http://example.com/p/q?z", "/p/q"},
		{"http://example.com", "/"},
		// The authority ends at "?" too: what forwarding sends is "/?/api/x".
		{"http://example.com?/api/x", "/"},
		{"https://example.com?a=/b/c#", "/"},
		{"*", "*"},
	}
	for _, c := range cases {
		if got := string(PathOf([]byte(c.uri))); got != c.want {
			t.Errorf("PathOf(%q) = %q, want %q", c.uri, got, c.want)
		}
	}
}

// TestWebSocketChoiceTunnels: a route's choice overrides the origin's
// websocket.enabled both ways; no choice leaves it to the origin.
func TestWebSocketChoiceTunnels(t *testing.T) {
	cases := []struct {
		c             WebSocketChoice
		origin, wants bool
	}{
		{WebSocketByOrigin, false, false},
		{WebSocketByOrigin, true, true},
		{WebSocketOn, false, true},
		{WebSocketOn, true, true},
		{WebSocketOff, false, false},
		{WebSocketOff, true, false},
	}
	for _, c := range cases {
		if got := c.c.Tunnels(c.origin); got != c.wants {
			t.Errorf("WebSocketChoice(%d).Tunnels(%v) = %v; want %v", c.c, c.origin, got, c.wants)
		}
	}
}
