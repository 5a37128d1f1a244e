package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// reporter records one bad value: the key, and a message that names the value.
type reporter func(key, format string, args ...any)

// Validate checks every value and names the key (and the value) of each bad one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	c.validateListeners(bad)
	c.validateServer(bad)
	c.validateLogAndFilters(bad)
	if len(c.Origins) == 0 {
		bad("origins", "at least one origin is needed")
	}
	names := make([]string, 0, len(c.Origins))
	for name := range c.Origins {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c.validateOrigin(name, bad)
	}
	c.validateRoutes(bad)
	c.validateEdge(bad)
	c.validatePush(bad)
	c.validateTracing(bad)
	c.validateCORS(bad)
	c.validateFaults(bad)
	c.validateLimits(bad)
	c.validateHTTP2(bad)
	return errors.Join(errs...)
}

func (c *Config) validateListeners(bad reporter) {
	checkAddr := func(key, addr string) {
		if _, port, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not host:port", addr)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad(key, "%q has no valid port", addr)
		}
	}
	checkAddr("listeners.proxy.addr", c.Listeners.Proxy.Addr)
	checkAddr("listeners.admin.addr", c.Listeners.Admin.Addr)
	if c.Listeners.HTTPS.Enabled() {
		checkAddr("listeners.https.addr", c.Listeners.HTTPS.Addr)
	}
	c.validateHTTPS(bad)
	c.validateAdminTLS(bad)
	if conflict(c.Listeners.Proxy.Addr, c.Listeners.Admin.Addr) {
		bad("listeners.admin.addr", "%q would take the port of listeners.proxy.addr %q: give each listener a port of its own",
			c.Listeners.Admin.Addr, c.Listeners.Proxy.Addr)
	}
}

func (c *Config) validateServer(bad reporter) {
	s := c.Server
	if s.EventLoops < 0 {
		bad("server.event_loops", "must be 0 (one per core) or more, got %d", s.EventLoops)
	}
	if s.MaxConnections <= 0 {
		bad("server.max_connections", "must be positive, got %d", s.MaxConnections)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"server.header_read_timeout", s.HeaderReadTimeout}, {"server.idle_timeout", s.IdleTimeout}, {"server.drain_timeout", s.DrainTimeout}} {
		if d.v <= 0 {
			bad(d.key, "must be a positive duration, got %v", d.v)
		}
	}
	if s.MaxRequestLine < 64 {
		bad("server.max_request_line", "must be at least 64 bytes, got %d", s.MaxRequestLine)
	}
	if s.MaxHeaderBytes < s.MaxRequestLine {
		bad("server.max_header_bytes", "must be at least server.max_request_line (%d), got %d", s.MaxRequestLine, s.MaxHeaderBytes)
	}
	if s.MaxHeaders < 1 || s.MaxHeaders > 10000 {
		bad("server.max_headers", "must be 1 to 10000, got %d", s.MaxHeaders)
	}
	if s.MemoryReclaimInterval < 0 {
		bad("server.memory_reclaim_interval", "must be 0 (off) or a positive duration, got %v", s.MemoryReclaimInterval)
	}
	if s.MaxBufferedPerConn < 4<<10 {
		bad("server.max_buffered_per_conn", "must be at least 4KiB, got %d", s.MaxBufferedPerConn)
	}
	switch s.HeadersWithUnderscores {
	case "drop", "reject", "allow":
	default:
		bad("server.headers_with_underscores", "must be one of drop, reject, allow; got %q", s.HeadersWithUnderscores)
	}
}

func (c *Config) validateLogAndFilters(bad reporter) {
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be one of debug, info, warn, error; got %q", c.Log.Level)
	}
	if c.Log.AccessLog == "" {
		bad("log.access_log", `must be "stdout", "stderr", "off" or a file path, got ""`)
	}
	if c.Filters.Budget <= 0 {
		bad("filters.budget", "must be a positive duration, got %v", c.Filters.Budget)
	}
	if c.Filters.MaxSuspended <= 0 {
		bad("filters.max_suspended", "must be positive, got %d", c.Filters.MaxSuspended)
	}
	if c.Filters.CallTimeout <= 0 {
		bad("filters.call_timeout", "must be a positive duration, got %v", c.Filters.CallTimeout)
	}
	for name, size := range c.Filters.SharedDicts {
		if size < 4096 {
			bad("filters.shared_dicts."+name, "must be at least 4KiB, got %d", size)
		}
	}
	if c.Filters.MaxBodyBytes <= 0 {
		bad("filters.max_body_bytes", "must be positive, got %d", c.Filters.MaxBodyBytes)
	}
}

func (c *Config) validateOrigin(name string, bad reporter) {
	o := c.Origins[name]
	key := "origins." + name
	if o == nil {
		bad(key, "is empty")
		return
	}
	if len(o.Servers) == 0 {
		bad(key+".servers", "at least one host:port is needed, got none")
	}
	validateOriginTLS(key, o.TLS, bad)
	for i, srv := range o.Servers {
		k := fmt.Sprintf("%s.servers[%d]", key, i)
		if host, port, err := net.SplitHostPort(srv); err != nil || host == "" {
			bad(k, "%q is not host:port", srv)
		} else if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			bad(k, "%q has no valid port", srv)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"connect_timeout", o.ConnectTimeout}, {"read_timeout", o.ReadTimeout}, {"idle_timeout", o.IdleTimeout},
		{"total_timeout", o.TotalTimeout}, {"call_timeout", o.CallTimeout}} {
		if d.v < 0 {
			bad(key+"."+d.name, "must not be negative, got %v", d.v)
		}
	}
	if o.Retries != nil && (*o.Retries < 0 || *o.Retries > 10) {
		bad(key+".retries", "must be between 0 and 10, got %d", *o.Retries)
	}
	switch o.Balancer {
	case "", "p2c", "round_robin":
	default:
		bad(key+".balancer", "must be p2c or round_robin, got %q", o.Balancer)
	}
	if o.Fallback != "" {
		if _, ok := c.Origins[o.Fallback]; !ok || o.Fallback == name {
			bad(key+".fallback", "must name another origin, got %q", o.Fallback)
		}
	}
	if o.DNSServer != "" {
		if _, _, err := net.SplitHostPort(o.DNSServer); err != nil {
			bad(key+".dns_server", "%q is not host:port", o.DNSServer)
		}
	}
	if p := o.Breaker.ErrorPercent; p < 0 || p > 100 {
		bad(key+".breaker.error_percent", "must be between 0 and 100, got %d", p)
	}
	if o.HealthCheck != nil && !strings.HasPrefix(o.HealthCheck.Path, "/") {
		bad(key+".health_check.path", "must start with /, got %q", o.HealthCheck.Path)
	}
	o.validateLimits(key, bad)
	o.validateCompression(key, bad)
	o.AdaptiveConcurrency.validate(key+".adaptive_concurrency", bad)
	o.WebSocket.validate(key, bad)
}

// validateLimits checks an origin's connection and request limits.
func (o *Origin) validateLimits(key string, bad reporter) {
	if o.MaxConnectionsPerServer < 0 {
		bad(key+".max_connections_per_server", "must be positive, got %d", o.MaxConnectionsPerServer)
	}
	if o.MaxRequestsPerConnection < 0 {
		bad(key+".max_requests_per_connection", "must be 0 (no limit) or more, got %d", o.MaxRequestsPerConnection)
	}
	if o.MaxConnectionsPerServerTotal < 0 {
		bad(key+".max_connections_per_server_total", "must be 0 (no cap) or more, got %d", o.MaxConnectionsPerServerTotal)
	}
	if o.MaxConcurrentRequests < 0 {
		bad(key+".max_concurrent_requests", "must be 0 (no limit) or more, got %d", o.MaxConcurrentRequests)
	}
	if o.MaxIdlePerServer < 0 || o.MaxIdlePerServer > o.MaxConnectionsPerServer {
		bad(key+".max_idle_per_server", "must be between 0 and max_connections_per_server, got %d", o.MaxIdlePerServer)
	}
}

func (c *Config) validateRoutes(bad reporter) {
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if r.Origin == "" {
			bad(key+".origin", "is required")
		} else if _, ok := c.Origins[r.Origin]; !ok {
			bad(key+".origin", "names unknown origin %q", r.Origin)
		}
		if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
			bad(key+".path_prefix", "must start with /, got %q", r.PathPrefix)
		}
	}
}

// conflict reports whether two listener addresses (already checked as
// host:port) would ask for the same port on an interface they share: the same
// port, and the same host or either one every interface. Port 0 (any free
// port) never conflicts.
func conflict(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb {
		return false
	}
	if n, err := strconv.Atoi(pa); err != nil || n == 0 {
		return false
	}
	return ha == hb || anyInterface(ha) || anyInterface(hb)
}

// anyInterface reports whether host (of a listen address) means every
// interface: empty, 0.0.0.0 or ::.
func anyInterface(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}
