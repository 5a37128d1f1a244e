package filters

import (
	"bytes"
	"strings"

	"gozer/gateway/config"
)

// Router chooses the origin for a request. It is the seam where inbound filters
// plug in: the core asks the Router once per request, on the request's event loop,
// when no filter chose an origin. Implementations must be safe for concurrent use
// by all event loops (RouteTable is immutable after construction).
type Router interface {
	// Route returns what the route matching the request's host (without port)
	// and path decides.
	Route(host, path []byte) (m Match, ok bool)
}

// Match is what the route table decided for a request: its origin, and the
// route's say on websocket proxying (routes[].websocket).
type Match struct {
	Origin    string
	WebSocket WebSocketChoice
}

// WebSocketChoice is what a route says about websocket proxying: whether a
// websocket upgrade request it routes goes to the origin as an upgrade (and,
// on the origin's 101, becomes a tunnel). It says nothing to a request that
// does not ask to upgrade.
type WebSocketChoice uint8

// The choices: a config route's websocket key left out, true, false; a Lua
// filter's ctx.route{websocket = true|false}.
const (
	// WebSocketByOrigin leaves it to the origin's websocket.enabled.
	WebSocketByOrigin WebSocketChoice = iota
	// WebSocketOn tunnels even when the origin's websocket.enabled is off
	// (its max_tunnels, idle_timeout and max_lifetime still apply).
	WebSocketOn
	// WebSocketOff never tunnels: the Upgrade header stops at Gozer, as for
	// an origin without websocket, even when the origin's is on.
	WebSocketOff
)

// Tunnels reports whether an upgrade request goes to an origin whose
// websocket.enabled is originEnabled as an upgrade under choice c.
func (c WebSocketChoice) Tunnels(originEnabled bool) bool {
	switch c {
	case WebSocketOn:
		return true
	case WebSocketOff:
		return false
	}
	return originEnabled
}

// webSocketChoice is a config route's websocket key as a choice.
func webSocketChoice(b *bool) WebSocketChoice {
	switch {
	case b == nil:
		return WebSocketByOrigin
	case *b:
		return WebSocketOn
	}
	return WebSocketOff
}

// RouteTable is the configured fallback route table: the first entry whose host
// and path prefix match wins.
type RouteTable struct {
	entries []routeEntry
}

type routeEntry struct {
	host     []byte // lower-case exact host, or suffix ".example.com" when wildcard
	wildcard bool
	prefix   []byte
	match    Match
}

// NewRouteTable builds the table from the config's routes (already validated).
func NewRouteTable(routes []config.Route) *RouteTable {
	t := &RouteTable{}
	for _, r := range routes {
		e := routeEntry{prefix: []byte(r.PathPrefix), match: Match{Origin: r.Origin, WebSocket: webSocketChoice(r.WebSocket)}}
		h := strings.ToLower(r.Host)
		if strings.HasPrefix(h, "*.") {
			e.wildcard, e.host = true, []byte(h[1:])
		} else if h != "" {
			e.host = []byte(h)
		}
		t.entries = append(t.entries, e)
	}
	return t
}

// Route implements Router.
func (t *RouteTable) Route(host, path []byte) (Match, bool) {
	for i := range t.entries {
		e := &t.entries[i]
		if len(e.host) > 0 && !hostMatches(host, e.host, e.wildcard) {
			continue
		}
		if bytes.HasPrefix(path, e.prefix) {
			return e.match, true
		}
	}
	return Match{}, false
}

func hostMatches(host, want []byte, wildcard bool) bool {
	if wildcard {
		return len(host) > len(want) && bytes.EqualFold(host[len(host)-len(want):], want)
	}
	return bytes.EqualFold(host, want)
}

// HostWithoutPort strips an optional ":port" from a Host header value,
// keeping IPv6 literals ("[::1]:80" → "[::1]") intact.
func HostWithoutPort(h []byte) []byte {
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h[i:], ']') < 0 {
		return h[:i]
	}
	return h
}
