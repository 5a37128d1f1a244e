package filters

import (
	"testing"

	"gozer/gateway/config"
)

func TestRouteTable(t *testing.T) {
	rt := NewRouteTable([]config.Route{
		{Host: "api.example.com", PathPrefix: "/", Origin: "api"},
		{Host: "*.cdn.example.com", PathPrefix: "/img", Origin: "images"},
		{PathPrefix: "/play", Origin: "playback"},
		{PathPrefix: "/", Origin: "web"},
	})
	cases := []struct {
		host, path, want string
	}{
		{"api.example.com", "/anything", "api"},
		{"API.Example.COM", "/x", "api"},
		{"eu.cdn.example.com", "/img/a.png", "images"},
		{"cdn.example.com", "/img/a.png", "web"}, // wildcard needs a subdomain
		{"eu.cdn.example.com", "/other", "web"},
		{"other", "/playback/1", "playback"},
		{"other", "/", "web"},
	}
	for _, c := range cases {
		got, ok := rt.Route([]byte(c.host), []byte(c.path))
		if !ok || got != c.want {
			t.Errorf("Route(%q, %q) = %q, %v; want %q", c.host, c.path, got, ok, c.want)
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
		{"*", "*"},
	}
	for _, c := range cases {
		if got := string(PathOf([]byte(c.uri))); got != c.want {
			t.Errorf("PathOf(%q) = %q, want %q", c.uri, got, c.want)
		}
	}
}
