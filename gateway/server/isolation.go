package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync/atomic"

	"gozer/filters"
	"gozer/gateway/config"
	"gozer/gateway/origin"
)

// attachIsolation gives every origin its isolation machinery (gateway/origin:
// balancer, breaker, bulkhead, retry budget, outlier ejection, discovery, health
// checks) from its config. Nothing runs in the background until Start.
func attachIsolation(t *origin.Table, cfg map[string]*config.Origin) error {
	for _, o := range t.List {
		oc := cfg[o.Name]
		ic := origin.DefaultIsolationConfig()
		pol, err := origin.ParsePolicy(oc.Balancer)
		if err != nil {
			return fmt.Errorf("origins.%s.balancer: %w", o.Name, err)
		}
		ic.Balancer = pol
		ic.Weights = oc.Weights
		ic.MaxConcurrentRequests = oc.MaxConcurrentRequests
		ic.Breaker.ErrorPercentThreshold = oc.Breaker.ErrorPercent
		ic.Breaker.RequestVolumeThreshold = oc.Breaker.RequestVolume
		ic.Breaker.SleepWindow = oc.Breaker.SleepWindow
		if oc.Breaker.Enabled != nil {
			ic.Breaker.Enabled = *oc.Breaker.Enabled
		}
		ic.RetryBudget = origin.RetryBudgetConfig{Ratio: 0.2, MinPerSecond: oc.RetryBudget.MinPerSecond, Window: oc.RetryBudget.Window}
		if oc.RetryBudget.Ratio != nil {
			ic.RetryBudget.Ratio = *oc.RetryBudget.Ratio
		}
		ic.Outlier = origin.OutlierConfig{
			ConsecutiveFailures: oc.Outlier.ConsecutiveFailures, BaseEjection: oc.Outlier.BaseEjection,
			MaxEjection: oc.Outlier.MaxEjection, MaxEjectionPercent: oc.Outlier.MaxEjectionPercent,
		}
		if h := oc.HealthCheck; h != nil {
			ic.HealthCheck = &origin.HealthConfig{Path: h.Path, Host: h.Host, Interval: h.Interval,
				Timeout: h.Timeout, Healthy: h.Healthy, Unhealthy: h.Unhealthy}
		}
		ic.DNSRefresh = oc.DNSRefresh
		if oc.DNSServer != "" {
			// A resolver of the origin's own (a service-discovery DNS, a sidecar) instead
			// of the system's.
			addr := oc.DNSServer
			r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}}
			ic.Resolve = func(ctx context.Context, host string) ([]string, error) {
				addrs, err := r.LookupHost(ctx, host)
				var de *net.DNSError
				if errors.As(err, &de) {
					de.Server = addr // Go names resolv.conf's server; ours was asked
				}
				return addrs, err
			}
		}
		iso, err := origin.NewIsolation(o.Name, oc.Servers, ic)
		if err != nil {
			return err // it names origins.NAME.servers already
		}
		o.Iso = iso
		o.Fallback = oc.Fallback
		o.ReplayBodyBytes = int(oc.ReplayBodyBytes)
		o.TotalTimeout = oc.TotalTimeout
		o.MaxRequestsPerConn = oc.MaxRequestsPerConnection
		o.MaxConnsTotal = int64(oc.MaxConnectionsPerServerTotal)
	}
	return nil
}

// admit routes the request through its origin's isolation: the fallback when the
// origin is open or has no available server, then the breaker and the bulkhead.
// It reports false when it answered the request itself (503).
func (ex *exchange) admit(o *origin.Origin) (*origin.Origin, bool) {
	l := ex.l
	o, ex.fellBack = l.srv.origins.ResolveAt(o, l.now)
	if o.Iso == nil {
		return o, true
	}
	switch o.Iso.Admit(l.now) {
	case origin.RefusedConcurrency:
		ex.origin = o
		ex.fail(filters.LocalOriginConcurrency, fmt.Sprintf("origin %s has %d requests in flight (max_concurrent_requests)", o.Name, o.Iso.Bulkhead.InFlight()))
		return nil, false
	case origin.RefusedOpen:
		ex.origin = o
		ex.fail(filters.LocalOriginCircuitOpen, "origin "+o.Name+" circuit breaker is open")
		return nil, false
	}
	ex.admitted, ex.admitAt = true, l.now
	return o, true
}

// pickServer chooses the server of the next attempt and its pool on this loop.
func (ex *exchange) pickServer(o *origin.Origin) (*origin.Server, *origin.Pool[*upstream]) {
	l := ex.l
	var srv *origin.Server
	if o.Iso != nil {
		srv = o.Iso.Pick(ex.tried, l.rnd.Uint32(), l.now)
	}
	if srv == nil {
		srv = l.origins.Next(o, ex.tried)
	} else {
		ex.attemptOpen = true
	}
	ex.tried |= srv.Bit()
	pool, stale := l.origins.PoolOf(o, srv)
	if stale != nil {
		// The slot now belongs to another server: its old pool takes no more
		// connections (busy ones close when released) and its idle ones close now.
		stale.Retire()
		stale.EvictIdle(math.MaxInt64, func(u *upstream) { u.close() })
	}
	return srv, pool
}

// endAttempt closes the current attempt in the origin's balancer and outlier
// detector; ok is false when the server failed it (connect, reset, timeout, 5xx).
func (ex *exchange) endAttempt(ok bool) {
	if !ex.attemptOpen || ex.origin == nil || ex.origin.Iso == nil {
		return
	}
	ex.attemptOpen = false
	ex.origin.Iso.AttemptDone(ex.server, ok, ex.l.now)
	if i := ex.attempts - 1; i >= 0 && i < maxLoggedAttempts {
		result := "ok"
		if !ok {
			result = "failed"
		}
		ex.tries[i] = attemptRecord{server: ex.server.Addr, result: result, durUS: (ex.l.now - ex.attemptStart) / 1000}
	}
}

// maxLoggedAttempts is how many attempts of one request the access log details.
const maxLoggedAttempts = 8

// attemptRecord is one attempt as the access log shows it.
type attemptRecord struct {
	server string
	result string // ok | failed
	durUS  int64
}

// retryAllowed asks the origin's retry budget for one more attempt.
func (ex *exchange) retryAllowed() bool {
	if ex.origin == nil || ex.origin.Iso == nil {
		return true
	}
	return ex.origin.Iso.TryRetry(ex.l.now)
}

// finishIsolation ends an admitted request in its origin's breaker and bulkhead,
// exactly once, and counts its cause for the origin.
func (ex *exchange) finishIsolation() {
	if ex.origin != nil {
		ex.l.srv.counters.add(ex.origin.Name, ex.statusName())
	}
	if !ex.admitted {
		return
	}
	ex.admitted = false
	outcome := origin.Success
	switch {
	case ex.cause == filters.OriginReadTimeout || ex.cause == filters.OriginStalledRequest:
		outcome = origin.Timeout
	case ex.cause.Category == filters.CategoryOriginFailure:
		outcome = origin.Failure
	case ex.cause.Category == filters.CategorySuccess && ex.status >= 500 && !ex.localAnswer:
		outcome = origin.Failure
	case ex.cause.Category != filters.CategorySuccess:
		outcome = origin.Canceled
	}
	br := ex.origin.Iso.Breaker
	wasOpen := br.Open()
	ex.origin.Iso.Finish(outcome, ex.admitAt, ex.l.now)
	if open := br.Open(); open != wasOpen {
		// The breaker's transitions are what an operator wants to see, once each.
		if open {
			ex.l.srv.log.Warn().Str("origin", ex.origin.Name).Str("cause", ex.statusName()).Msg("circuit breaker opened")
		} else {
			ex.l.srv.log.Info().Str("origin", ex.origin.Name).Msg("circuit breaker closed")
		}
	}
}

// isRetriableStatus: a 502/503/504 from the origin is retried (on another server)
// for idempotent methods, before any of it reached the client.
func isRetriableStatus(status int) bool {
	return status == 502 || status == 503 || status == 504
}

// appendStatusHeaders ends a client response head with the request's status cause
// and attempt count (head ends with the empty line; it is re-ended).
func (ex *exchange) appendStatusHeaders(head []byte) []byte {
	head = head[:len(head)-2]
	head = append(head, "X-Gozer-Status: "...)
	head = append(head, ex.statusName()...)
	if ex.attempts > 0 {
		head = append(head, "\r\nX-Gozer-Attempts: "...)
		head = strconv.AppendInt(head, int64(ex.attempts), 10)
	}
	return append(head, "\r\n\r\n"...)
}

// statusName is the cause shown to the client and in the log.
func (ex *exchange) statusName() string {
	if ex.cause.Name == "" || ex.cause == filters.Success {
		if ex.fellBack {
			return filters.SuccessViaFallback.Name
		}
		return filters.Success.Name
	}
	return ex.cause.Name
}

// causeCounters counts requests per origin and status cause, for /admin/origins:
// one fixed array of atomic counters per origin, indexed by filters.CauseIndex, so
// counting is a read of an immutable map and one atomic add, with no allocation.
type causeCounters struct {
	byOrigin map[string][]atomic.Int64 // built by New, read-only afterwards
}

func newCauseCounters(t *origin.Table) causeCounters {
	c := causeCounters{byOrigin: make(map[string][]atomic.Int64, len(t.List))}
	for _, o := range t.List {
		c.byOrigin[o.Name] = make([]atomic.Int64, len(filters.Causes()))
	}
	return c
}

func (c *causeCounters) add(originName, cause string) {
	if i := filters.CauseIndex(cause); i >= 0 {
		if arr := c.byOrigin[originName]; arr != nil {
			arr[i].Add(1)
		}
	}
}

// snapshot returns origin → cause → count (causes never seen are left out).
func (c *causeCounters) snapshot() map[string]map[string]int64 {
	out := make(map[string]map[string]int64, len(c.byOrigin))
	causes := filters.Causes()
	for o, arr := range c.byOrigin {
		m := map[string]int64{}
		for i := range arr {
			if n := arr[i].Load(); n > 0 {
				m[causes[i].Name] = n
			}
		}
		out[o] = m
	}
	return out
}
