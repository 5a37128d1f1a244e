package filters

import (
	"bytes"
	"strings"

	"gozer/gateway/config"
)

// Router chooses the origin for a request. It is the seam where inbound filters
// plug in: the core asks the Router once per request, on the request's event loop.
// Implementations must be safe for concurrent use by all event loops (RouteTable
// is immutable after construction).
type Router interface {
	// Route returns the origin name for the request's host (without port) and path.
	Route(host, path []byte) (origin string, ok bool)
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
	origin   string
}

// NewRouteTable builds the table from the config's routes (already validated).
func NewRouteTable(routes []config.Route) *RouteTable {
	t := &RouteTable{}
	for _, r := range routes {
		e := routeEntry{prefix: []byte(r.PathPrefix), origin: r.Origin}
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
func (t *RouteTable) Route(host, path []byte) (string, bool) {
	for i := range t.entries {
		e := &t.entries[i]
		if len(e.host) > 0 && !hostMatches(host, e.host, e.wildcard) {
			continue
		}
		if bytes.HasPrefix(path, e.prefix) {
			return e.origin, true
		}
	}
	return "", false
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
