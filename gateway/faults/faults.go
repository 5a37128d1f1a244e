// Package faults injects failures into requests on purpose, to rehearse an
// origin's failure at the edge (issue 16, point 5): a delay, an abort with a
// chosen status, a reset of the client's connection, a slowed response body,
// each for a share of the requests a rule matches (by origin, path prefix,
// and optionally a header). Nothing is injected unless configured.
//
// The rules come from the config (fault_injection: compiled into the
// loop.Snapshot, so a reload swaps them with the rest) or from the admin
// API (PUT /admin/faults: Live.Set, which wins over the config's until
// DELETE /admin/faults). A filter may also ask for a failure itself
// (ctx.inject), which is how a Lua condition selects requests.
//
// Concurrency: a Set is immutable once compiled and shared by every loop;
// Live is safe for concurrent use (an atomic pointer and atomic counters).
// The request path pays one atomic load and a nil check when no rule is in
// service.
package faults

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"

	"gozer/filters"
	"gozer/gateway/config"
)

// Set is a compiled list of rules: the first rule that matches a request and
// wins its draw decides the injection.
type Set struct {
	rules []rule
	src   []config.FaultRule
}

type rule struct {
	origin     string
	host       []byte // exact, or the suffix ".example.com" when wildcard
	wildcard   bool
	pathPrefix []byte
	header     string
	value      []byte
	threshold  uint64 // draw < threshold wins (of 2^32)
	inj        filters.Injection
}

// Compile checks and compiles rules (nil for none: no rule costs nothing).
func Compile(rules []config.FaultRule) (*Set, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	s := &Set{src: append([]config.FaultRule(nil), rules...)}
	for i := range rules {
		r := &rules[i]
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("rule%d", i)
			s.src[i].Name = name
		}
		if err := r.Validate(fmt.Sprintf("fault_injection[%d]", i)); err != nil {
			return nil, err
		}
		host, wildcard := []byte(strings.ToLower(r.Host)), false
		if strings.HasPrefix(r.Host, "*.") {
			host, wildcard = host[1:], true
		}
		s.rules = append(s.rules, rule{
			origin: r.Origin, host: host, wildcard: wildcard, pathPrefix: []byte(r.PathPrefix), header: r.Header, value: []byte(r.HeaderValue),
			threshold: uint64(r.Percent / 100 * (1 << 32)),
			inj:       filters.Injection{Delay: r.Delay, Abort: r.Abort, Reset: r.Reset, SlowBody: int64(r.SlowBody), Rule: name},
		})
	}
	return s, nil
}

// Rules are the rules as given (with their names filled in).
func (s *Set) Rules() []config.FaultRule {
	if s == nil {
		return []config.FaultRule{}
	}
	return s.src
}

// Headers reads a request's headers (fasthttp's RequestHeader).
type Headers interface{ Peek(name string) []byte }

// Rand draws uniform uint32s (the loop's origin.Rand).
type Rand interface{ Uint32() uint32 }

// Match returns the injection for a request routed to origin for host
// (without its port) with path,
// drawing once for each rule it matches from rnd. A request outside a rule's
// condition never takes part in its draw. Any goroutine (with its own rnd);
// allocation-free.
func (s *Set) Match(origin string, host, path []byte, h Headers, rnd Rand) (filters.Injection, bool) {
	for i := range s.rules {
		r := &s.rules[i]
		if r.origin != "" && r.origin != origin {
			continue
		}
		if len(r.host) > 0 && !hostMatches(host, r.host, r.wildcard) {
			continue
		}
		if len(r.pathPrefix) > 0 && !bytes.HasPrefix(path, r.pathPrefix) {
			continue
		}
		if r.header != "" {
			v := h.Peek(r.header)
			if len(v) == 0 || len(r.value) > 0 && !bytes.Equal(v, r.value) {
				continue
			}
		}
		if uint64(rnd.Uint32()) < r.threshold {
			return r.inj, true
		}
	}
	return filters.Injection{}, false
}

// hostMatches is the route table's rule: exact, or a subdomain of a
// wildcard's suffix; case-insensitive.
func hostMatches(host, want []byte, wildcard bool) bool {
	if wildcard {
		return len(host) > len(want) && bytes.EqualFold(host[len(host)-len(want):], want)
	}
	return bytes.EqualFold(host, want)
}

// Kinds of injected failures, as counted.
var Kinds = []string{"delay", "abort", "reset", "slow_body"}

// Live is the node's fault injection state besides the config: the rules
// set through the admin API (winning over the config's) and the counts of
// injected failures by kind. Any goroutine.
type Live struct {
	override atomic.Pointer[override]
	counts   [4]atomic.Int64 // by Kinds
}

type override struct{ set *Set }

// NewLive returns a Live with no override.
func NewLive() *Live { return &Live{} }

// Active is the Set in service: the admin API's when set, else cfg (the
// snapshot's). nil: nothing to inject. One atomic load.
func (l *Live) Active(cfg *Set) *Set {
	if o := l.override.Load(); o != nil {
		return o.set
	}
	return cfg
}

// Overridden reports whether the admin API's rules are in service.
func (l *Live) Overridden() bool { return l.override.Load() != nil }

// Set puts s (nil: no rule at all) in service instead of the config's rules.
func (l *Live) Set(s *Set) { l.override.Store(&override{set: s}) }

// Clear goes back to the config's rules.
func (l *Live) Clear() { l.override.Store(nil) }

// Count counts one injection of inj.
func (l *Live) Count(inj *filters.Injection) {
	if inj.Delay > 0 {
		l.counts[0].Add(1)
	}
	switch {
	case inj.Abort != 0:
		l.counts[1].Add(1)
	case inj.Reset:
		l.counts[2].Add(1)
	case inj.SlowBody > 0:
		l.counts[3].Add(1)
	}
}

// Counts are the injections since start, by kind (Kinds' order).
func (l *Live) Counts() map[string]int64 {
	m := make(map[string]int64, len(Kinds))
	for i, k := range Kinds {
		m[k] = l.counts[i].Load()
	}
	return m
}
