package config

import (
	"fmt"
	"time"
)

// AdaptiveConcurrency is origins.NAME.adaptive_concurrency: a concurrency
// limit that follows the origin's latency (origin.Adaptive), besides the
// fixed max_concurrent_requests. Zero values take origin.AdaptiveConfig's
// defaults.
type AdaptiveConcurrency struct {
	Enabled      bool          `yaml:"enabled"`
	Algorithm    string        `yaml:"algorithm"` // gradient2 (default) | vegas
	MinLimit     int           `yaml:"min_limit"`
	MaxLimit     int           `yaml:"max_limit"`
	InitialLimit int           `yaml:"initial_limit"`
	Window       time.Duration `yaml:"window"`      // samples gathered before the limit moves
	LongWindow   int           `yaml:"long_window"` // windows in gradient2's long-term latency average
	Tolerance    float64       `yaml:"tolerance"`   // gradient2: latency over the long average tolerated
}

// validate reports the mistakes of an origin's adaptive_concurrency at key.
func (a *AdaptiveConcurrency) validate(key string, bad reporter) {
	if a == nil {
		return
	}
	switch a.Algorithm {
	case "", "gradient2", "vegas":
	default:
		bad(key+".algorithm", "must be gradient2 or vegas, got %q", a.Algorithm)
	}
	if a.MinLimit < 0 || a.MaxLimit < 0 || a.InitialLimit < 0 || a.LongWindow < 0 || a.Window < 0 || a.Tolerance < 0 {
		bad(key, "limits, window, long_window and tolerance must not be negative")
	}
	if a.MaxLimit > 0 && a.MinLimit > a.MaxLimit {
		bad(key+".max_limit", "must be at least min_limit (%d), got %d", a.MinLimit, a.MaxLimit)
	}
}

// FaultRule is one entry of fault_injection: a failure injected into a share
// of the requests it matches, to rehearse an origin's failure. Also the JSON
// of PUT /admin/faults.
type FaultRule struct {
	// Name identifies the rule in the access log ("fault_rule") and the admin API.
	Name string `yaml:"name" json:"name"`
	// Origin, Host and PathPrefix select the requests ("" any): routed to
	// this origin, for this host (exact, or "*.example.com" for its
	// subdomains, as routes say), with a path that starts so.
	Origin     string `yaml:"origin" json:"origin"`
	Host       string `yaml:"host" json:"host"`
	PathPrefix string `yaml:"path_prefix" json:"path_prefix"`
	// Header limits the rule to requests carrying it ("" all), with the
	// value HeaderValue when that is set.
	Header      string `yaml:"header" json:"header"`
	HeaderValue string `yaml:"header_value" json:"header_value"`
	// Percent is the share (0–100) of the matching requests injected.
	Percent float64 `yaml:"percent" json:"percent"`
	// What is injected: a delay before the request goes to its origin, then
	// at most one of an abort with this status, a reset of the client's
	// connection, or a response body slowed to SlowBody bytes per second.
	Delay    time.Duration `yaml:"delay" json:"delay"`
	Abort    int           `yaml:"abort" json:"abort"`
	Reset    bool          `yaml:"reset" json:"reset"`
	SlowBody Size          `yaml:"slow_body" json:"slow_body"`
}

// Validate checks one rule; key names it in the error.
func (r *FaultRule) Validate(key string) error {
	var errs []string
	bad := func(k, format string, args ...any) { errs = append(errs, k+": "+fmt.Sprintf(format, args...)) }
	r.validate(key, bad)
	if len(errs) > 0 {
		return fmt.Errorf("%s", errs[0])
	}
	return nil
}

func (r *FaultRule) validate(key string, bad reporter) {
	if r.Percent < 0 || r.Percent > 100 {
		bad(key+".percent", "must be within 0–100, got %v", r.Percent)
	}
	if r.Delay < 0 {
		bad(key+".delay", "must not be negative, got %v", r.Delay)
	}
	if r.Abort != 0 && (r.Abort < 200 || r.Abort > 599) {
		bad(key+".abort", "must be a status within 200–599, got %d", r.Abort)
	}
	if r.SlowBody < 0 {
		bad(key+".slow_body", "must not be negative, got %d", r.SlowBody)
	}
	n := 0
	for _, set := range []bool{r.Abort != 0, r.Reset, r.SlowBody > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		bad(key, "at most one of abort, reset and slow_body (with or without delay)")
	}
	if n == 0 && r.Delay == 0 {
		bad(key, "injects nothing: set delay, abort, reset or slow_body")
	}
	if r.HeaderValue != "" && r.Header == "" {
		bad(key+".header_value", "needs header")
	}
}

// validateFaults checks fault_injection: every rule, and that the origins
// they name exist.
func (c *Config) validateFaults(bad reporter) {
	for i := range c.FaultInjection {
		r := &c.FaultInjection[i]
		key := fmt.Sprintf("fault_injection[%d]", i)
		r.validate(key, bad)
		if r.Origin != "" {
			if _, ok := c.Origins[r.Origin]; !ok {
				bad(key+".origin", "names unknown origin %q", r.Origin)
			}
		}
	}
}
