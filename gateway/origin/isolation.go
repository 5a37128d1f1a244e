package origin

import (
	"context"
	"fmt"
	"time"
)

// IsolationConfig gathers an origin's isolation settings; each field maps to a key
// under origins.NAME (ISOLATION.md lists them with their defaults).
type IsolationConfig struct {
	Balancer              Policy         // balancer: p2c | round_robin
	Weights               map[string]int // weights: {"host:port": n}
	MaxConcurrentRequests int            // max_concurrent_requests (0: no limit)
	Breaker               BreakerConfig  // breaker: {error_percent, request_volume, sleep_window, enabled}
	RetryBudget           RetryBudgetConfig
	Outlier               OutlierConfig
	HealthCheck           *HealthConfig // health_check; nil: not checked
	// Adaptive is adaptive_concurrency; nil: off.
	Adaptive   *AdaptiveConfig
	DNSRefresh time.Duration // dns_refresh (0: 30 s; negative: never)
	// Resolve replaces the DNS lookup (tests); nil is the system resolver.
	Resolve func(ctx context.Context, host string) ([]string, error)
	// Inherit is the isolation of the origin this one replaces (a reload
	// changed its config); nil for a new origin. Its servers that stay keep
	// their *Server (load, connections, ejection and health state, per-loop
	// pools), and its breaker and bulkhead are kept when their settings did
	// not change: a reload must not close a breaker that is open.
	Inherit *Inherited
}

// Inherited is what a rebuilt origin takes over from the one it replaces.
type Inherited struct {
	Servers  *ServerSet
	Breaker  *Breaker // nil: the breaker's settings changed
	Bulkhead *Bulkhead
	Adaptive *Adaptive // nil: the adaptive limit's settings changed (or it is off)
}

// DefaultIsolationConfig is what an origin gets when its config says nothing:
// P2C, no concurrency cap, the breaker on with hystrix's defaults (50 %, 20
// requests, 5 s), a 20 % retry budget, ejection after 5 failures.
func DefaultIsolationConfig() IsolationConfig {
	return IsolationConfig{Breaker: BreakerConfig{Enabled: true}}
}

// Isolation is one origin's isolation machinery, shared by every event loop. Its
// parts can be used one by one; the methods below are the request path in the
// order the core calls them (ISOLATION.md, "Wiring"):
//
//	Admit → Pick → AttemptDone → [TryRetry → Pick → AttemptDone]… → Finish
//
// All of them are safe for concurrent use and allocation-free; lock-free but
// for the breaker's sampled hystrix copy (Breaker: an append under a mutex, at
// most once per millisecond per origin).
type Isolation struct {
	Name      string
	Discovery *Discovery
	Balancer  *Balancer
	Breaker   *Breaker
	Bulkhead  *Bulkhead
	Budget    *RetryBudget
	Outlier   *Outlier
	Health    *HealthChecker // nil without a health check
	Adaptive  *Adaptive      // nil without adaptive_concurrency (adaptive.go)
}

// NewIsolation builds an origin's isolation over servers (host:port; names are
// resolved now, then re-resolved by Start's goroutine). Nothing runs in the
// background until Start.
func NewIsolation(origin string, servers []string, cfg IsolationConfig) (*Isolation, error) {
	dc := DiscoveryConfig{Servers: servers, Weights: cfg.Weights, Refresh: cfg.DNSRefresh, Resolve: cfg.Resolve}
	if cfg.Inherit != nil {
		dc.Seed = cfg.Inherit.Servers
	}
	d, err := NewDiscovery(origin, dc)
	if err != nil {
		return nil, err
	}
	iso := &Isolation{
		Name:      origin,
		Discovery: d,
		Balancer:  NewBalancer(cfg.Balancer, d),
		Breaker:   NewBreaker(origin, cfg.Breaker),
		Bulkhead:  NewBulkhead(cfg.MaxConcurrentRequests),
		Budget:    NewRetryBudget(cfg.RetryBudget),
		Outlier:   NewOutlier(cfg.Outlier, d),
	}
	if cfg.Adaptive != nil {
		if iso.Adaptive, err = NewAdaptive(*cfg.Adaptive); err != nil {
			return nil, fmt.Errorf("isolation of %s: adaptive_concurrency: %w", origin, err)
		}
	}
	if in := cfg.Inherit; in != nil {
		if in.Adaptive != nil && iso.Adaptive != nil {
			iso.Adaptive = in.Adaptive
		}
		if in.Breaker != nil {
			iso.Breaker = in.Breaker
		}
		if in.Bulkhead != nil {
			iso.Bulkhead = in.Bulkhead
		}
	}
	if cfg.HealthCheck != nil {
		if iso.Health, err = NewHealthChecker(origin, *cfg.HealthCheck, d); err != nil {
			return nil, fmt.Errorf("isolation of %s: %w", origin, err)
		}
	}
	return iso, nil
}

// Start launches the origin's background work: DNS refresh when it has names,
// health checks when configured.
func (i *Isolation) Start() {
	i.Discovery.Start()
	if i.Health != nil {
		i.Health.Start()
	}
}

// Close stops the background work and waits for it.
func (i *Isolation) Close() {
	i.Discovery.Close()
	if i.Health != nil {
		i.Health.Close()
	}
}

// Verdict is Admit's answer.
type Verdict uint8

const (
	// Admitted: go ahead; Finish must follow exactly once.
	Admitted Verdict = iota
	// RefusedOpen: the breaker is open; answer 503 (or use the fallback) at once.
	RefusedOpen
	// RefusedConcurrency: max_concurrent_requests are in flight; answer 503 at once.
	RefusedConcurrency
	// RefusedAdaptive: the adaptive concurrency limit is reached; answer 503 at once.
	RefusedAdaptive
)

func (v Verdict) String() string {
	switch v {
	case RefusedOpen:
		return "breaker_open"
	case RefusedConcurrency:
		return "concurrency_limit"
	case RefusedAdaptive:
		return "adaptive_limit"
	}
	return "admitted"
}

// Admit decides, before the first attempt, whether a request may go to the origin
// at now; when admitted it holds a bulkhead slot and is counted by the retry
// budget. The bulkhead is asked first: asking the breaker first could hand the
// half-open trial to a request the bulkhead then refuses, and the trial would be
// lost for a sleep window. The adaptive limit (when configured) is asked
// between the two, for the same reason.
func (i *Isolation) Admit(now int64) Verdict {
	if !i.Bulkhead.TryAcquire() {
		return RefusedConcurrency
	}
	if a := i.Adaptive; a != nil && !a.TryAcquire() {
		i.Bulkhead.Release()
		return RefusedAdaptive
	}
	if !i.Breaker.AllowAt(now) {
		i.Bulkhead.Release()
		if a := i.Adaptive; a != nil {
			a.Release(Canceled, 0, now)
		}
		return RefusedOpen
	}
	i.Budget.RecordRequest(now)
	return Admitted
}

// Pick chooses the server of an attempt and counts it outstanding; every Pick
// needs one AttemptDone. rnd comes from the loop's Rand.
func (i *Isolation) Pick(tried uint64, rnd uint32, now int64) *Server {
	s := i.Balancer.Pick(tried, rnd, now)
	if s != nil {
		i.Balancer.Start(s)
	}
	return s
}

// AttemptDone ends an attempt on srv: ok is false for a connect failure, a reset
// or close before a complete response, a read timeout, or a 5xx status; true for
// any other response. An attempt abandoned because the client left is ok=true:
// it says nothing against the server.
func (i *Isolation) AttemptDone(srv *Server, ok bool, now int64) {
	i.Balancer.Done(srv)
	i.Outlier.Report(srv, ok, now)
}

// TryRetry asks the retry budget for one more attempt at now (and counts it).
func (i *Isolation) TryRetry(now int64) bool { return i.Budget.TryRetry(now) }

// Finish ends an admitted request: its final outcome goes to the breaker (start is
// the now given to Admit) and to the adaptive limit (with its latency,
// now − start), and its bulkhead slot is released.
func (i *Isolation) Finish(outcome Outcome, start, now int64) {
	i.FinishTimed(outcome, start, now-start, now)
}

// FinishTimed is Finish with the origin's latency given: the exchange
// passes the time from admission to the response head, so that a slow
// client taking a long body does not make the origin look slow to the
// adaptive limit.
func (i *Isolation) FinishTimed(outcome Outcome, start, latency, now int64) {
	i.Breaker.ReportAt(outcome, start, now)
	if a := i.Adaptive; a != nil {
		a.Release(outcome, latency, now)
	}
	i.Bulkhead.Release()
}

// Healthy reports whether some server is available at now.
func (i *Isolation) Healthy(now int64) bool { return i.Balancer.Healthy(now) }

// Usable reports whether a request should go to this origin at now rather than
// to its fallback: some server available and the breaker not refusing. It does
// not take the breaker's trial (Admit does).
func (i *Isolation) Usable(now int64) bool {
	return !i.Breaker.Refusing(now) && i.Balancer.Healthy(now)
}

// ResolveAt is Resolve with the origins' own isolation at now: the same rules,
// no funcs to build. An origin without Iso counts as usable.
func (t *Table) ResolveAt(o *Origin, now int64) (*Origin, bool) {
	if usableAt(o, now) || o.Fallback == "" || o.Fallback == o.Name {
		return o, false
	}
	if f, ok := t.byName[o.Fallback]; ok && usableAt(f, now) {
		return f, true
	}
	return o, false
}

func usableAt(o *Origin, now int64) bool { return o.Iso == nil || o.Iso.Usable(now) }

// Do runs one request of a blocking caller (off the event loops: the push
// device-message sender) through the origin's isolation, the sequence the
// exchange runs across events: admission (bulkhead, breaker), then up to
// 1+retries attempts on distinct servers the balancer picks, each reported to
// the balancer and the outlier detection, and the outcome to the breaker. try
// makes one attempt on srv and says whether it succeeded; now and rnd are the
// caller's clock (unix ns) and random source. It returns the admission's
// verdict (not Admitted: nothing was tried) and whether an attempt succeeded.
// An origin without Iso is refused as open.
func (o *Origin) Do(now func() int64, rnd func() uint32, retries int, try func(srv *Server) bool) (Verdict, bool) {
	iso := o.Iso
	if iso == nil {
		return RefusedOpen, false
	}
	start := now()
	if v := iso.Admit(start); v != Admitted {
		return v, false
	}
	outcome, ok := Failure, false
	var tried uint64
	for attempt := 0; attempt <= retries && !ok; attempt++ {
		srv := iso.Pick(tried, rnd(), now())
		if srv == nil {
			break
		}
		tried |= srv.Bit()
		ok = try(srv)
		iso.AttemptDone(srv, ok, now())
	}
	if ok {
		outcome = Success
	}
	iso.Finish(outcome, start, now())
	return Admitted, ok
}
