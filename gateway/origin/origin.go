// Package origin describes the named origins behind the gateway and keeps, per
// event loop, the state of talking to them: round-robin cursors and connection pools;
// and, shared by every loop, each origin's isolation: discovery, balancing, breaker,
// bulkhead, retry budget, outlier ejection and health checks (ISOLATION.md).
//
// An Origin's configuration fields and a Server's Addr, Index and Weight are
// immutable once built and shared by every loop. A Server's load and health state
// is atomic and shared too. A LoopState and its Pools belong to one event loop and
// must only be used on that loop's goroutine: that is what lets the proxy path take
// and return connections without a lock.
package origin

import (
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"gozer/gateway/compress"
	"gozer/gateway/config"
)

// Origin is a named group of servers with its own timeouts and limits.
type Origin struct {
	Name string
	// Index is the origin's slot: loops index their per-origin state (pools,
	// cursors) by it. It stays the same for the origin's name across reloads,
	// and a new name takes a slot never used before (Table.Slots).
	Index int
	// Config is what the origin was built from (a reload compares it with
	// the new config's to keep an unchanged origin as it is).
	Config            *config.Origin
	Servers           []*Server
	ConnectTimeout    time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	Retries           int
	MaxConnsPerServer int
	MaxIdlePerServer  int
	// DefaultHost is the Host sent for a request that had none (HTTP/1.0).
	DefaultHost []byte
	// Fallback names the origin that takes this one's requests while its breaker
	// is open or none of its servers is available (Table.Resolve); "" for none.
	Fallback string
	// Iso is the origin's isolation machinery (Build attaches it; nil for a
	// table made by NewTable alone). It is shared by every loop.
	Iso *Isolation
	// ReplayBodyBytes is how much request body is kept so a retry can resend it.
	ReplayBodyBytes int
	// Compression is how the origin's responses are compressed (nil: they are not).
	Compression *Compression
	// RequestBuffer is how much request body is received before a request
	// takes a connection (all of a smaller body); 0: the body streams at once.
	RequestBuffer int
	// TotalTimeout bounds a request's time at the origin across attempts (0: none).
	TotalTimeout time.Duration
	// MaxRequestsPerConn retires a connection after this many requests (0: no limit).
	MaxRequestsPerConn int
	// MaxConnsTotal caps each server's connections from all loops (0: no cap).
	MaxConnsTotal int64
	// TLS is how its servers are spoken to over TLS (nil: plain HTTP).
	TLS *TLSClient
	// CallTimeout bounds an async filter's side call to this origin when the
	// call does not say (0: filters.call_timeout).
	CallTimeout time.Duration
}

// Server is one host:port of an origin.
//
// Addr, Index and Weight never change. The rest is the server's shared state,
// written by every event loop and by the health checker with atomics only.
type Server struct {
	Addr string
	// Index is the server's slot in its origin: for a static list its position in
	// Origin.Servers; for a discovered set, unique among the origin's current
	// servers for the server's whole life, and reused only after it left the set.
	// It keeps request "tried" bitmasks small (Bit).
	Index int
	// Weight is the server's share of traffic relative to its siblings (≥ 1).
	Weight int

	// Written on every request by every loop: kept on a cache line of their own so
	// they do not slow down reads of the fields above.
	_           [64]byte
	outstanding atomic.Int64 // attempts in flight (Balancer.Start/Done)
	conns       atomic.Int64 // connections open to it from all loops (ReserveConn)
	opened      atomic.Int64 // connections ever opened to it (ReserveConn)
	consecutive atomic.Int32 // failures in a row (Outlier.Report)
	ejections   atomic.Int32 // times ejected recently: the backoff exponent
	ejectedTill atomic.Int64 // unix nanoseconds; ejected while now < ejectedTill
	down        atomic.Bool  // the active health check failed it
	_           [64]byte
	// Written once per connection (not per request).
	closed atomic.Int64 // connections released (ReleaseConn)
}

// Bit is the server's bit in a request's tried mask; 0 (never marked) for a slot
// beyond 63, which then only costs that server's exclusion from the mask.
func (s *Server) Bit() uint64 {
	if s.Index < 0 || s.Index >= 64 {
		return 0
	}
	return 1 << uint(s.Index)
}

// Outstanding is the number of attempts in flight to the server from all loops.
func (s *Server) Outstanding() int64 { return s.outstanding.Load() }

// Available reports whether the balancer should send traffic to the server at now:
// neither ejected by outlier detection nor failed by the health check.
func (s *Server) Available(now int64) bool {
	return !s.down.Load() && s.ejectedTill.Load() <= now
}

// Up reports whether the active health check considers the server healthy.
func (s *Server) Up() bool { return !s.down.Load() }

func newServer(addr string, index, weight int) *Server {
	if weight < 1 {
		weight = 1
	}
	return &Server{Addr: addr, Index: index, Weight: weight}
}

// Table holds every origin by name. It is immutable once built: a reload
// builds a new one (Rebuild) and the loops move to it; any goroutine.
type Table struct {
	byName map[string]*Origin
	List   []*Origin
	// slots is one more than the highest Index ever given, in this table or
	// the ones it was rebuilt from: a new origin takes a slot never used, so a
	// loop's per-origin state of a removed origin is never mistaken for it.
	slots int
}

// Slots bounds the Index of every origin of t (and of the tables before it).
func (t *Table) Slots() int { return t.slots }

// NewTable builds the origins of a validated config without their isolation
// (Build adds it; tests of the pools use NewTable alone).
func NewTable(cfg map[string]*config.Origin) (*Table, error) {
	t := &Table{byName: make(map[string]*Origin, len(cfg))}
	for _, name := range sortedNames(cfg) {
		o, err := newOrigin(name, cfg[name], t.slots)
		if err != nil {
			return nil, err
		}
		t.slots++
		t.add(o)
	}
	return t, nil
}

// sortedNames are cfg's origin names in order: tables list origins sorted.
func sortedNames(cfg map[string]*config.Origin) []string {
	names := make([]string, 0, len(cfg))
	for n := range cfg {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (t *Table) add(o *Origin) {
	t.byName[o.Name] = o
	t.List = append(t.List, o)
}

// newOrigin builds origin name from its validated config, in slot index.
func newOrigin(name string, oc *config.Origin, index int) (*Origin, error) {
	o := &Origin{
		Name: name, Index: index, Config: oc,
		ConnectTimeout: oc.ConnectTimeout, ReadTimeout: oc.ReadTimeout, IdleTimeout: oc.IdleTimeout,
		Retries: oc.RetryCount(), MaxConnsPerServer: oc.MaxConnectionsPerServer, MaxIdlePerServer: oc.MaxIdlePerServer,
		Fallback: oc.Fallback, ReplayBodyBytes: int(oc.ReplayBodyBytes), TotalTimeout: oc.TotalTimeout,
		RequestBuffer: int(oc.RequestBufferSize()), Compression: compressionOf(oc.Compression),
		MaxRequestsPerConn: oc.MaxRequestsPerConnection, MaxConnsTotal: int64(oc.MaxConnectionsPerServerTotal),
		CallTimeout: oc.CallTimeout,
	}
	var err error
	if o.TLS, err = newTLSClient(name, oc.TLS); err != nil {
		return nil, err
	}
	for i, s := range oc.Servers {
		// Names are not resolved here: Discovery resolves them, off the loops and
		// with the origin's own resolver (dns_server), and keeps every address.
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("origins.%s.servers[%d]: %q is not host:port", name, i, s)
		}
		o.Servers = append(o.Servers, newServer(net.JoinHostPort(host, port), i, 1))
	}
	o.DefaultHost = []byte(o.Servers[0].Addr)
	return o, nil
}

// Get returns the origin called name.
func (t *Table) Get(name string) (*Origin, bool) {
	o, ok := t.byName[name]
	return o, ok
}

// Resolve picks the origin that serves a request routed to o: o itself while it is
// usable, else its fallback when that one is usable. usable means healthy (some
// server available) and not open (the breaker would not refuse). It follows at most
// one hop, never the fallback's own fallback, so a cycle of fallbacks cannot loop.
// The bool reports that the fallback was chosen, for the request's status cause.
// When neither is usable it returns o, false: the request fails on its own
// origin's cause (breaker open, no server).
//
// healthy is asked before open, and open at most once per origin, only when that
// origin would otherwise be chosen. open should not take the breaker's half-open
// trial (use Breaker.Refusing): Isolation.Admit takes it afterwards, and a trial
// taken here would make Admit refuse. Both funcs run on the request path: build
// them once per loop (a closure over the loop's clock), not per request, or each
// call allocates. ResolveAt does all of this from the origins' own Iso.
func (t *Table) Resolve(o *Origin, open func(*Origin) bool, healthy func(*Origin) bool) (*Origin, bool) {
	if healthy(o) && !open(o) {
		return o, false
	}
	if o.Fallback == "" || o.Fallback == o.Name {
		return o, false
	}
	f, ok := t.byName[o.Fallback]
	if !ok || !healthy(f) || open(f) {
		return o, false
	}
	return f, true
}

// Close stops the background work (DNS refresh, health checks) of every origin's
// isolation. Call it when a reload replaced the table.
func (t *Table) Close() {
	for _, o := range t.List {
		if o.Iso != nil {
			o.Iso.Close()
		}
	}
}

// ForwardSamples hands each origin's sampled breaker outcomes to hystrix-go
// (Breaker.ForwardSamples): the server's tick, and its reloads for the table
// they replaced.
func (t *Table) ForwardSamples() {
	for _, o := range t.List {
		if o.Iso != nil {
			o.Iso.Breaker.ForwardSamples()
		}
	}
}

// ReserveConn counts a new connection to s against the origin-wide cap max (0: no
// cap); false when the cap is reached. Every true must be matched by ReleaseConn.
func (s *Server) ReserveConn(max int64) bool {
	if s.conns.Add(1) > max && max > 0 {
		s.conns.Add(-1)
		return false
	}
	s.opened.Add(1)
	return true
}

// Opened is the number of connections ever opened to s (from every loop,
// across reloads that kept s).
func (s *Server) Opened() int64 { return s.opened.Load() }

// ReleaseConn uncounts a connection reserved with ReserveConn.
func (s *Server) ReleaseConn() {
	s.conns.Add(-1)
	s.closed.Add(1)
}

// Closed is the number of connections to s ever closed (released: a dial
// that failed counts in Opened and here), from every loop. Any goroutine.
func (s *Server) Closed() int64 { return s.closed.Load() }

// Conns is the number of connections open to s from all loops.
func (s *Server) Conns() int64 { return s.conns.Load() }

// Compression is an origin's response compression, from its config.
type Compression struct {
	Offered []compress.Encoding // in the operator's order of preference
	Level   int
	MinSize int64
	Types   []string
}

// compressionOf is c built (nil when not enabled).
func compressionOf(c config.Compression) *Compression {
	if !c.Enabled {
		return nil
	}
	out := &Compression{Level: c.Level, MinSize: int64(c.MinSize), Types: c.Types}
	for _, name := range c.Encodings {
		if e, ok := compress.ParseEncoding(name); ok {
			out.Offered = append(out.Offered, e)
		}
	}
	return out
}
