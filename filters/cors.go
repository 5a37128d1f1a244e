package filters

import (
	"bytes"
	"strings"

	"gozer/filters/cors"
	"gozer/gateway/config"
)

// CORS is a request's cross-origin state: the policy that applies to it and
// what was decided. The core fills Policy, Table and Stats when the request
// starts (from its snapshot: routes[].cors by the route table's host and
// path, push.cors at the push paths); a Lua filter may replace the policy or
// decide the origin (ctx.cors); the built-in filters "cors" (preflights,
// inbound) and "cors_response" (the headers, outbound) and the push handshake
// read the decision (CORSAllowed). Part of the Context: the request's loop only.
type CORS struct {
	Policy *cors.Policy // nil: no CORS for this request (the route has none)
	Table  *CORSTable   // the snapshot's policies (ctx.cors{policy=NAME})
	Stats  *cors.Stats  // the node's counters; nil: not counted
	// Verdict is a Lua filter's decision on the request's Origin
	// (ctx.cors{allow=...}): VerdictNone lets the policy's list decide.
	Verdict Verdict
	// Preflight: the gateway answered the request as a CORS preflight.
	Preflight bool
	decided   uint8 // 0: not yet; 1: allowed; 2: refused; 3: not cross-origin
}

// Verdict is a Lua filter's decision on a request's Origin.
type Verdict uint8

// The verdicts.
const (
	VerdictNone Verdict = iota
	VerdictAllow
	VerdictRefuse
)

// SetPolicy replaces the request's policy (a Lua filter's own) and forgets a
// decision taken with the previous one.
func (c *CORS) SetPolicy(p *cors.Policy) { c.Policy, c.decided = p, 0 }

// SetVerdict records a Lua filter's decision and forgets one taken before.
func (c *CORS) SetVerdict(v Verdict) { c.Verdict, c.decided = v, 0 }

// CORSKind says what a refused origin is counted as.
type CORSKind uint8

// The kinds of refusal counted in cors.Stats.
const (
	CORSRequest CORSKind = iota
	CORSPreflight
	CORSPush
)

// CrossOrigin returns the request's Origin header when it names an origin
// other than the request's own (scheme://Host): nil for a same-origin
// request or one without Origin (not a browser's cross-origin request).
func (c *Context) CrossOrigin() []byte {
	o := c.Req.Header.Peek("Origin")
	if len(o) == 0 {
		return nil
	}
	if s, rest, ok := bytes.Cut(o, []byte("://")); ok && string(s) == c.Scheme && bytes.EqualFold(rest, c.Req.Header.Host()) {
		return nil
	}
	return o
}

// CORSAllowed decides, once per request (and again after SetPolicy or
// SetVerdict), whether the request's cross-origin Origin is allowed: by a Lua
// filter's verdict, else by the policy's list (no policy: refused). A
// same-origin request or one without Origin is not cross-origin: ok false,
// cross false. A refusal is counted as kind.
func (c *Context) CORSAllowed(kind CORSKind) (origin []byte, ok, cross bool) {
	s := &c.CORS
	origin = c.CrossOrigin()
	if origin == nil {
		s.decided = 3
		return nil, false, false
	}
	if s.decided == 0 {
		allowed := false
		switch {
		case s.Verdict == VerdictAllow:
			allowed = true
		case s.Verdict == VerdictRefuse:
		case s.Policy != nil:
			allowed = s.Policy.AllowsOrigin(origin)
		}
		s.decided = 2
		if allowed {
			s.decided = 1
		} else if st := s.Stats; st != nil {
			switch kind {
			case CORSPreflight:
				st.RefusedPreflight.Add(1)
			case CORSPush:
				st.RefusedPush.Add(1)
			default:
				st.RefusedRequest.Add(1)
			}
		}
	}
	return origin, s.decided == 1, true
}

// IsPreflight reports whether the request is a CORS preflight: OPTIONS with
// Origin and Access-Control-Request-Method.
func (c *Context) IsPreflight() bool {
	h := &c.Req.Header
	return string(h.Method()) == "OPTIONS" && len(h.Peek("Origin")) > 0 && len(h.Peek("Access-Control-Request-Method")) > 0
}

// AppendCORSHeaders appends the CORS headers of an actual (not preflight)
// response to an allowed origin: Access-Control-Allow-Origin, -Credentials,
// -Expose-Headers. Vary: Origin is the caller's (it merges with the
// response's own).
func (c *Context) AppendCORSHeaders(dst []Header, origin []byte) []Header {
	p := c.CORS.Policy
	if p == nil { // allowed by a Lua verdict without a policy: the origin alone
		return append(dst, Header{"Access-Control-Allow-Origin", string(origin)})
	}
	dst = append(dst, Header{"Access-Control-Allow-Origin", string(p.AllowOriginValue(origin))})
	if p.Credentials() {
		dst = append(dst, Header{"Access-Control-Allow-Credentials", "true"})
	}
	if p.ExposeValue != "" {
		dst = append(dst, Header{"Access-Control-Expose-Headers", p.ExposeValue})
	}
	return dst
}

// MergeVary returns the Vary value with name added (nil when it is already
// there, or "*").
func MergeVary(vary []byte, name string) []byte {
	for _, f := range bytes.Split(vary, []byte{','}) {
		f = bytes.TrimSpace(f)
		if string(f) == "*" || strings.EqualFold(string(f), name) {
			return nil
		}
	}
	if len(bytes.TrimSpace(vary)) == 0 {
		return []byte(name)
	}
	return append(append(append([]byte{}, vary...), ", "...), name...)
}

// CORSTable is the configuration's CORS policies compiled, and which one a
// request gets: push.cors at the push paths, else the routes[].cors of the
// first route whose host and path prefix match (the route table's rule).
// Immutable, in the snapshot: every loop.
type CORSTable struct {
	named  map[string]*cors.Policy
	push   *cors.Policy
	routes []corsRoute
}

type corsRoute struct {
	entry  routeEntry
	policy *cors.Policy // nil: the route has no CORS
}

// NewCORSTable compiles cfg's policies (already validated).
func NewCORSTable(cfg *config.Config) *CORSTable {
	t := &CORSTable{named: cfg.CORSPolicies()}
	t.push = t.named[cfg.Push.CORS]
	any := false
	for _, r := range cfg.Routes {
		any = any || r.CORS != ""
	}
	if any {
		rt := NewRouteTable(cfg.Routes)
		for i, r := range cfg.Routes {
			t.routes = append(t.routes, corsRoute{entry: rt.entries[i], policy: t.named[r.CORS]})
		}
	}
	return t
}

// Named is the policy cors.NAME, nil when there is none.
func (t *CORSTable) Named(name string) *cors.Policy {
	if t == nil {
		return nil
	}
	return t.named[name]
}

// For is the policy of a request: push.cors at a push path, else the policy
// of the route that host (without port) and path match; nil for none.
func (t *CORSTable) For(push PushKind, host, path []byte) *cors.Policy {
	if t == nil {
		return nil
	}
	if push != PushNone {
		return t.push
	}
	for i := range t.routes {
		e := &t.routes[i].entry
		if len(e.host) > 0 && !hostMatches(host, e.host, e.wildcard) {
			continue
		}
		if bytes.HasPrefix(path, e.prefix) {
			return t.routes[i].policy
		}
	}
	return nil
}
