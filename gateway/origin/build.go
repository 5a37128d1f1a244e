package origin

import (
	"context"
	"errors"
	"fmt"
	"net"

	"gozer/gateway/config"
)

// Build makes the origins of a validated config, whole: each with its servers,
// limits and isolation machinery (discovery, balancer, breaker, bulkhead, retry
// budget, outlier ejection, health checks). Host names are resolved once here
// (Discovery); nothing runs in the background until Isolation.Start.
func Build(cfg map[string]*config.Origin) (*Table, error) {
	t, err := NewTable(cfg)
	if err != nil {
		return nil, err
	}
	if err := attachIsolation(t, cfg); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// attachIsolation gives every origin of t its isolation from its config.
func attachIsolation(t *Table, cfg map[string]*config.Origin) error {
	for _, o := range t.List {
		ic, err := isolationConfig(o, cfg[o.Name])
		if err != nil {
			return err
		}
		if o.Iso, err = NewIsolation(o.Name, cfg[o.Name].Servers, ic); err != nil {
			return err // it names origins.NAME.servers already
		}
	}
	return nil
}

// isolationConfig is the isolation o's config oc asks for.
func isolationConfig(o *Origin, oc *config.Origin) (IsolationConfig, error) {
	ic := DefaultIsolationConfig()
	pol, err := ParsePolicy(oc.Balancer)
	if err != nil {
		return ic, fmt.Errorf("origins.%s.balancer: %w", o.Name, err)
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
	ic.RetryBudget = RetryBudgetConfig{Ratio: 0.2, MinPerSecond: oc.RetryBudget.MinPerSecond, Window: oc.RetryBudget.Window}
	if oc.RetryBudget.Ratio != nil {
		ic.RetryBudget.Ratio = *oc.RetryBudget.Ratio
	}
	ic.Outlier = OutlierConfig{
		ConsecutiveFailures: oc.Outlier.ConsecutiveFailures, BaseEjection: oc.Outlier.BaseEjection,
		MaxEjection: oc.Outlier.MaxEjection, MaxEjectionPercent: oc.Outlier.MaxEjectionPercent,
	}
	if h := oc.HealthCheck; h != nil {
		ic.HealthCheck = &HealthConfig{Path: h.Path, Host: h.Host, Interval: h.Interval,
			Timeout: h.Timeout, Healthy: h.Healthy, Unhealthy: h.Unhealthy}
		if o.TLS != nil {
			ic.HealthCheck.TLS = o.TLS.base // the checks speak as requests do
		}
	}
	ic.DNSRefresh = oc.DNSRefresh
	if ac := oc.AdaptiveConcurrency; ac != nil && ac.Enabled {
		ic.Adaptive = &AdaptiveConfig{Algorithm: ac.Algorithm, MinLimit: ac.MinLimit, MaxLimit: ac.MaxLimit,
			InitialLimit: ac.InitialLimit, Window: ac.Window, LongWindow: ac.LongWindow, Tolerance: ac.Tolerance}
	}
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
	return ic, nil
}
