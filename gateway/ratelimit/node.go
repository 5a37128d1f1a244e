package ratelimit

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Node is one gateway's limits: the request buckets (declarative limits and
// ctx.limit), the new-connection buckets per client, the deny list, and the
// counters the admin API shows.
//
// Concurrency: any goroutine. The request path calls Take (a shard lock of
// the Store) and reads Rules (an atomic load while the config in service is
// the one the rules were built from).
type Node struct {
	Requests *Store
	Conns    *Store
	Deny     DenyList

	rules atomic.Pointer[Rules]

	mu       sync.Mutex
	counters map[string]*Counter // by limit name ("lua" for ctx.limit)
	lua      *Counter

	// RefusedConns counts connections refused over the new-connection rate.
	RefusedConns atomic.Int64

	// Cluster is the Redis reconciler of cluster limits (nil: none).
	Cluster *Reconciler
}

// Counter is one limit's counts.
type Counter struct {
	Rejected atomic.Int64
}

// NewNode returns a node keeping at most maxKeys request buckets and
// maxConnKeys new-connection buckets.
func NewNode(maxKeys, maxConnKeys int) *Node {
	n := &Node{Requests: NewStore(maxKeys), Conns: NewStore(maxConnKeys), counters: make(map[string]*Counter)}
	n.lua = n.Counter("lua")
	return n
}

// Counter is the counter of the limit called name (made on first use; a
// limit keeps its counts across reloads).
func (n *Node) Counter(name string) *Counter {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.counters[name]
	if c == nil {
		c = &Counter{}
		n.counters[name] = c
	}
	return c
}

// Rule is one declarative limit, ready for the request path.
type Rule struct {
	Name       string
	Key        KeySpec
	Rate       Rate
	Origins    []string // empty: every origin
	PathPrefix string
	// Prefix is the bucket keys' prefix: the name and a NUL.
	Prefix  []byte
	Counter *Counter
	// LogReason is the rule's reason in the sampled log ("limit:" + Name).
	LogReason string
}

// Matches reports whether the rule applies to a request to origin at path.
func (r *Rule) Matches(origin string, path []byte) bool {
	if len(r.Origins) > 0 && !slices.Contains(r.Origins, origin) {
		return false
	}
	return len(path) >= len(r.PathPrefix) && string(path[:len(r.PathPrefix)]) == r.PathPrefix
}

// Rules are the declarative limits built from one configuration (Src).
type Rules struct {
	Src  any
	List []Rule
}

// RulesFor returns the rules built from src (the *config.Config in
// service), building them with build the first time src is seen: a reload
// swaps them with the configuration, without a hook.
func (n *Node) RulesFor(src any, build func(n *Node) []Rule) *Rules {
	if r := n.rules.Load(); r != nil && r.Src == src {
		return r
	}
	r := &Rules{Src: src, List: build(n)}
	n.rules.Store(r)
	return r
}

// NewRate is a Rate of rate tokens per per, with room for burst (at least 1).
func NewRate(rate float64, per time.Duration, burst int, cluster bool) Rate {
	if rate <= 0 || per <= 0 {
		return Rate{}
	}
	iv := float64(per) / rate
	if iv < 1 {
		iv = 1
	}
	if iv > math.MaxInt64/2 {
		iv = math.MaxInt64 / 2
	}
	b := int64(max(burst, 1))
	if b > math.MaxInt64/2/int64(iv) {
		b = math.MaxInt64 / 2 / int64(iv)
	}
	return Rate{Interval: int64(iv), Burst: b, Cluster: cluster}
}

// TakeLua is ctx.limit(key, {rate, per, burst}): key's bucket in the "lua"
// namespace. It returns whether the request is admitted and the wait (ns)
// until it would be.
func (n *Node) TakeLua(buf []byte, key string, r Rate, now int64) (bool, int64) {
	buf = AppendKeyPart(append(buf[:0], "lua\x00"...), []byte(key))
	ok, wait := n.Requests.Take(buf, now, r)
	if !ok {
		n.lua.Rejected.Add(1)
	}
	return ok, wait
}

// RetryAfter is the Retry-After value (whole seconds, at least 1) of a wait
// in ns.
func RetryAfter(wait int64) int64 {
	return max(1, (wait+int64(time.Second)-1)/int64(time.Second))
}

// Stats is what GET /admin/limits shows.
type Stats struct {
	Keys        int64            `json:"keys"`
	MaxKeys     int              `json:"max_keys"`
	Evicted     int64            `json:"evicted_total"`
	Rejected    map[string]int64 `json:"rejected_by_limit"`
	Limits      []RuleStats      `json:"limits"`
	Connections ConnStats        `json:"connections"`
	Cluster     *ReconcilerStats `json:"cluster,omitempty"`
	Deny        []DenyEntry      `json:"deny"`
}

// RuleStats is one declarative limit.
type RuleStats struct {
	Name       string   `json:"name"`
	Key        string   `json:"key"`
	Rate       float64  `json:"rate_per_second"`
	Burst      int64    `json:"burst"`
	Cluster    bool     `json:"cluster"`
	Origins    []string `json:"origins"` // empty: every origin
	PathPrefix string   `json:"path_prefix"`
	Rejected   int64    `json:"rejected_total"`
}

// ConnStats are the connection protections' counts.
type ConnStats struct {
	Keys         int64 `json:"rate_keys"`
	RefusedRate  int64 `json:"refused_rate_total"`
	DeniedTotal  int64 `json:"denied_total"`
	DenyNetworks int   `json:"deny_networks"`
	// DenyEvicted counts added networks dropped before their end to stay
	// within protect.max_denied.
	DenyEvicted int64 `json:"deny_evicted_total"`
}

// Stats gathers the counts; rules are the limits in service (nil: none).
func (n *Node) Stats(rules *Rules) Stats {
	st := Stats{Keys: n.Requests.Len(), MaxKeys: n.Requests.Cap(), Evicted: n.Requests.Evicted(),
		Rejected: map[string]int64{}, Limits: []RuleStats{}}
	n.mu.Lock()
	for name, c := range n.counters {
		st.Rejected[name] = c.Rejected.Load()
	}
	n.mu.Unlock()
	if rules != nil {
		for _, r := range rules.List {
			rate := 0.0
			if r.Rate.Interval > 0 {
				rate = float64(time.Second) / float64(r.Rate.Interval)
			}
			origins := r.Origins
			if origins == nil {
				origins = []string{}
			}
			st.Limits = append(st.Limits, RuleStats{Name: r.Name, Key: r.Key.String(), Rate: math.Round(rate*1000) / 1000,
				Burst: r.Rate.Burst, Cluster: r.Rate.Cluster, Origins: origins, PathPrefix: r.PathPrefix,
				Rejected: r.Counter.Rejected.Load()})
		}
	}
	st.Deny = n.Deny.Entries()
	if st.Deny == nil {
		st.Deny = []DenyEntry{}
	}
	st.Connections = ConnStats{Keys: n.Conns.Len(), RefusedRate: n.RefusedConns.Load(),
		DeniedTotal: n.Deny.Count(), DenyNetworks: len(st.Deny), DenyEvicted: n.Deny.Evicted()}
	if n.Cluster != nil {
		cs := n.Cluster.Stats()
		st.Cluster = &cs
	}
	return st
}
