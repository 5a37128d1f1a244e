package config

import (
	"net/netip"
	"strconv"
	"time"

	"gozer/gateway/ratelimit"
)

// Limits configures the request rate limits (token buckets): the declarative
// ones (Rules), the keys the node keeps for them and for ctx.limit, and the
// Redis server the cluster-wide ones share their rates through.
type Limits struct {
	// MaxKeys bounds the buckets the node keeps (the least recently used go
	// first): declarative limits and ctx.limit together. Restart only.
	MaxKeys int `yaml:"max_keys"`
	// Redis (host:port) shares the rules marked cluster between the nodes;
	// empty: cluster rules are enforced per node. Restart only.
	Redis string `yaml:"redis"`
	// SyncInterval is how often a node reports its demand to Redis and reads
	// the cluster's; Window is the sliding window the demand is counted over.
	// Restart only.
	SyncInterval time.Duration `yaml:"sync_interval"`
	Window       time.Duration `yaml:"window"`
	// Rules are checked, in order, on every request routed to an origin;
	// live (a reload changes them, buckets of the same name keep their state).
	Rules []LimitRule `yaml:"rules"`
}

// LimitRule is one declarative limit: rate requests per Per, with room for
// Burst, per key (see ratelimit.ParseKey), for the requests to Origins (empty:
// all) whose path starts with PathPrefix.
type LimitRule struct {
	Name       string        `yaml:"name"`
	Key        string        `yaml:"key"`
	Rate       float64       `yaml:"rate"`
	Per        time.Duration `yaml:"per"`
	Burst      int           `yaml:"burst"`
	Cluster    bool          `yaml:"cluster"`
	Origins    []string      `yaml:"origins"`
	PathPrefix string        `yaml:"path_prefix"`
}

// Protect configures connection protection: the rate of new connections per
// client, the requests one connection may carry, and the networks denied.
// All live.
type Protect struct {
	// NewConnectionsPerIP is the new connections per second one client (an
	// IPv4 address, an IPv6 /64) may open, with room for NewConnectionsBurst
	// at once (0: no limit). Over it the connection is closed at accept.
	NewConnectionsPerIP float64 `yaml:"new_connections_per_ip"`
	NewConnectionsBurst int     `yaml:"new_connections_burst"`
	// MaxRequestsPerConnection closes a client connection after its answer to
	// this many requests (Connection: close; 0: no limit).
	MaxRequestsPerConnection int `yaml:"max_requests_per_connection"`
	// Deny are networks (CIDRs or addresses) whose connections are closed at
	// accept; POST /admin/deny and ctx.deny add more while serving.
	Deny []string `yaml:"deny"`
	// MaxDenied bounds the networks POST /admin/deny and ctx.deny add: past
	// it, an add evicts an expired entry, else an arbitrary one (counted).
	MaxDenied int `yaml:"max_denied"`
}

func limitsDefaults() Limits {
	return Limits{MaxKeys: 100000, SyncInterval: 100 * time.Millisecond, Window: time.Second}
}

// DenyPrefixes are protect.deny, parsed (the config is validated: they parse).
func (p *Protect) DenyPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(p.Deny))
	for _, s := range p.Deny {
		if n, err := ratelimit.ParsePrefix(s); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Compile builds the rules for the request path (config validated).
func (l *Limits) Compile(n *ratelimit.Node) []ratelimit.Rule {
	out := make([]ratelimit.Rule, 0, len(l.Rules))
	for _, r := range l.Rules {
		k, err := ratelimit.ParseKey(r.Key)
		if err != nil {
			continue
		}
		out = append(out, ratelimit.Rule{
			Name: r.Name, Key: k, Rate: ratelimit.NewRate(r.Rate, r.Per, r.Burst, r.Cluster),
			Origins: r.Origins, PathPrefix: r.PathPrefix, Prefix: append([]byte(r.Name), 0),
			Counter:   n.Counter(r.Name),
			LogReason: "limit:" + r.Name,
		})
	}
	return out
}

func (c *Config) validateLimits(bad reporter) {
	l := &c.Limits
	if l.MaxKeys < 64 {
		bad("limits.max_keys", "must be 64 or more, got %d", l.MaxKeys)
	}
	if l.SyncInterval < 10*time.Millisecond {
		bad("limits.sync_interval", "must be 10ms or more, got %v", l.SyncInterval)
	}
	if l.Window < 2*l.SyncInterval {
		bad("limits.window", "must be at least twice limits.sync_interval, got %v", l.Window)
	}
	seen := map[string]bool{}
	for i, r := range l.Rules {
		key := "limits.rules[" + strconv.Itoa(i) + "]"
		if r.Name == "" || r.Name == "lua" || seen[r.Name] {
			bad(key+".name", "must be unique, non-empty and not \"lua\" (ctx.limit's), got %q", r.Name)
		}
		seen[r.Name] = true
		if _, err := ratelimit.ParseKey(r.Key); err != nil {
			bad(key+".key", "%v", err)
		}
		if r.Rate <= 0 {
			bad(key+".rate", "must be positive, got %v", r.Rate)
		}
		if r.Per <= 0 {
			bad(key+".per", "must be a positive duration, got %v", r.Per)
		}
		if r.Burst < 0 {
			bad(key+".burst", "must be 0 (one) or more, got %d", r.Burst)
		}
		for _, o := range r.Origins {
			if _, ok := c.Origins[o]; !ok {
				bad(key+".origins", "names unknown origin %q", o)
			}
		}
	}
	p := &c.Protect
	if p.NewConnectionsPerIP < 0 || p.NewConnectionsBurst < 0 {
		bad("protect.new_connections_per_ip", "rate and burst must be 0 or more")
	}
	if p.MaxRequestsPerConnection < 0 || p.MaxRequestsPerConnection > 32767 {
		bad("protect.max_requests_per_connection", "must be 0 (no limit) to 32767, got %d", p.MaxRequestsPerConnection)
	}
	if p.MaxDenied < 1 {
		bad("protect.max_denied", "must be at least 1, got %d", p.MaxDenied)
	}
	for _, s := range p.Deny {
		if _, err := ratelimit.ParsePrefix(s); err != nil {
			bad("protect.deny", "%v", err)
		}
	}
}
