package origin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ServerSet is an immutable snapshot of an origin's servers. A new set is published
// whole when discovery sees a change; whoever holds the old one (a request between
// attempts) keeps a consistent view. A *Server keeps its identity across sets while
// its host:port stays, so per-loop pools and load counters keyed by *Server survive
// a DNS refresh.
type ServerSet struct {
	List    []*Server
	Version uint64 // grows by one with every published change
	// wheel is the smooth weighted round-robin order: positions in List, each
	// appearing in proportion to its weight, spread out (nginx's algorithm). Round
	// robin walks it; P2C draws its candidates from it so weights shape both.
	wheel []int32
}

// Servers makes a ServerSet its own ServerSource: a static set.
func (s *ServerSet) Servers() *ServerSet { return s }

// ServerSource gives the current server set. Discovery is one; a ServerSet is a
// fixed one. Servers is called on the request path: it must be a load, not a lookup.
type ServerSource interface {
	Servers() *ServerSet
}

// maxWheel bounds the round-robin wheel; weights are scaled down to fit.
const maxWheel = 1024

// NewServerSet builds a set from servers (weights as they are) with version.
func NewServerSet(list []*Server, version uint64) *ServerSet {
	s := &ServerSet{List: list, Version: version}
	if len(list) == 0 {
		return s
	}
	w := make([]int, len(list))
	g, total := 0, 0
	for i, srv := range list {
		w[i] = max(srv.Weight, 1)
		g = gcd(g, w[i])
	}
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	if total > maxWheel {
		sum := total
		total = 0
		for i := range w {
			w[i] = max(w[i]*maxWheel/sum, 1)
			total += w[i]
		}
	}
	cur := make([]int, len(list))
	s.wheel = make([]int32, 0, total)
	for range total {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		s.wheel = append(s.wheel, int32(best))
	}
	return s
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// DiscoveryConfig is where an origin's servers come from.
type DiscoveryConfig struct {
	// Servers are host:port entries: literal IPs are used as they are, names are
	// resolved (every address of a name becomes a server).
	Servers []string
	// Weights by entry, as written in Servers (a name's weight goes to each of its
	// addresses). Missing: 1.
	Weights map[string]int
	// Refresh is how often names are resolved again (origins.NAME.dns_refresh).
	// 0 means 30 s; negative: resolved once, at start.
	Refresh time.Duration
	// LookupTimeout bounds one lookup; 0 means 5 s.
	LookupTimeout time.Duration
	// Resolve looks a host name up; nil means net.DefaultResolver.LookupHost.
	Resolve func(ctx context.Context, host string) ([]string, error)
	// Seed is the server set of the discovery this one replaces (a reload):
	// the addresses that stay keep their *Server and slot.
	Seed *ServerSet
}

const (
	defaultDNSRefresh    = 30 * time.Second
	defaultLookupTimeout = 5 * time.Second
)

type dnsEntry struct {
	host, port string
	weight     int
	literal    bool
	last       []string // last good addresses (sorted), for names
}

// Discovery publishes an origin's current ServerSet. Names are resolved off the
// event loops, on a goroutine of the origin's own (Start); a failed or empty lookup
// keeps that name's last good addresses, so a DNS outage never empties an origin.
//
// Servers is safe for concurrent use and is one atomic load. Refresh serializes
// itself with a mutex: it runs on the refresh goroutine, never on a loop.
type Discovery struct {
	origin  string
	cfg     DiscoveryConfig
	entries []dnsEntry
	names   bool

	cur     atomic.Pointer[ServerSet]
	lastErr atomic.Pointer[string]
	mu      sync.Mutex // serializes Refresh (entries' last, slot choice)

	startOnce, closeOnce sync.Once
	ctx                  context.Context // canceled by Close: ends a lookup in progress
	cancel               context.CancelFunc
	done                 chan struct{}
}

// NewDiscovery parses the entries and resolves the names once. It fails when an
// entry is malformed or when not a single server could be found.
func NewDiscovery(origin string, cfg DiscoveryConfig) (*Discovery, error) {
	d := &Discovery{origin: origin, cfg: cfg, done: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if d.cfg.Refresh == 0 {
		d.cfg.Refresh = defaultDNSRefresh
	}
	if d.cfg.LookupTimeout <= 0 {
		d.cfg.LookupTimeout = defaultLookupTimeout
	}
	if d.cfg.Resolve == nil {
		d.cfg.Resolve = net.DefaultResolver.LookupHost
	}
	for i, s := range cfg.Servers {
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" {
			return nil, fmt.Errorf("origins.%s.servers[%d]: %q is not host:port", origin, i, s)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("origins.%s.servers[%d]: %q has no valid port", origin, i, s)
		}
		e := dnsEntry{host: host, port: port, weight: 1}
		if w, ok := cfg.Weights[s]; ok {
			if w < 1 {
				return nil, fmt.Errorf("origins.%s.weights[%q]: must be at least 1, got %d", origin, s, w)
			}
			e.weight = w
		}
		if _, err := netip.ParseAddr(host); err == nil {
			e.literal = true
		} else {
			d.names = true
		}
		d.entries = append(d.entries, e)
	}
	if cfg.Seed != nil {
		d.cur.Store(cfg.Seed)
	} else {
		d.cur.Store(NewServerSet(nil, 0))
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.LookupTimeout)
	defer cancel()
	err := d.Refresh(ctx)
	if len(d.cur.Load().List) == 0 {
		if err == nil {
			err = errors.New("no servers")
		}
		return nil, fmt.Errorf("origins.%s.servers: %w", origin, err)
	}
	return d, nil
}

// Servers is the current set; it never returns nil.
func (d *Discovery) Servers() *ServerSet { return d.cur.Load() }

// LastError is the last refresh's lookup failure ("" after a clean one).
func (d *Discovery) LastError() string {
	if p := d.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// Refresh resolves every name once and publishes a new set if anything changed.
// A name whose lookup fails keeps its previous addresses; the error names it.
func (d *Discovery) Refresh(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for i := range d.entries {
		e := &d.entries[i]
		if e.literal {
			continue
		}
		addrs, err := d.cfg.Resolve(ctx, e.host)
		if err == nil && len(addrs) == 0 {
			err = errors.New("no addresses")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve %q: %w", e.host, err))
			continue
		}
		// DNS servers rotate their answers; sorted, the same addresses are the same set.
		addrs = slices.Clone(addrs)
		slices.Sort(addrs)
		e.last = slices.Compact(addrs)
	}
	err := errors.Join(errs...)
	if err != nil {
		msg := err.Error()
		d.lastErr.Store(&msg)
	} else {
		d.lastErr.Store(nil)
	}
	d.publish()
	return err
}

type want struct {
	addr   string
	weight int
}

// publish builds the wanted list from the entries and swaps in a new set when it
// differs from the current one, keeping the *Server of every address that stays.
func (d *Discovery) publish() {
	var wanted []want
	seen := map[string]bool{}
	add := func(addr string, weight int) {
		if !seen[addr] {
			seen[addr] = true
			wanted = append(wanted, want{addr, weight})
		}
	}
	for _, e := range d.entries {
		if e.literal {
			add(net.JoinHostPort(e.host, e.port), e.weight)
			continue
		}
		for _, ip := range e.last {
			add(net.JoinHostPort(ip, e.port), e.weight)
		}
	}
	cur := d.cur.Load()
	if len(wanted) == 0 || sameServers(cur.List, wanted) {
		return // nothing found keeps the last good set; nothing new keeps the version
	}
	old := make(map[string]*Server, len(cur.List))
	for _, s := range cur.List {
		old[s.Addr] = s
	}
	used := map[int]bool{}
	for _, w := range wanted {
		if s, ok := old[w.addr]; ok && s.Weight == w.weight {
			used[s.Index] = true
		}
	}
	list := make([]*Server, 0, len(wanted))
	slot := 0
	for _, w := range wanted {
		if s, ok := old[w.addr]; ok && s.Weight == w.weight {
			list = append(list, s)
			continue
		}
		for used[slot] {
			slot++
		}
		used[slot] = true
		list = append(list, newServer(w.addr, slot, w.weight))
	}
	d.cur.Store(NewServerSet(list, cur.Version+1))
}

func sameServers(list []*Server, wanted []want) bool {
	if len(list) != len(wanted) {
		return false
	}
	for i, s := range list {
		if s.Addr != wanted[i].addr || s.Weight != wanted[i].weight {
			return false
		}
	}
	return true
}

// Start launches the refresh goroutine when the origin has names to re-resolve;
// a static list needs none. Calling it again does nothing.
func (d *Discovery) Start() {
	d.startOnce.Do(func() {
		if !d.names || d.cfg.Refresh < 0 {
			close(d.done)
			return
		}
		go d.run()
	})
}

func (d *Discovery) run() {
	defer close(d.done)
	t := time.NewTicker(d.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(d.ctx, d.cfg.LookupTimeout)
			_ = d.Refresh(ctx) // the failure is kept in LastError; the set stays
			cancel()
		}
	}
}

// Close stops the refresh goroutine and waits for it.
func (d *Discovery) Close() {
	d.closeOnce.Do(func() {
		d.cancel()
		d.Start() // so that done is closed even if Start was never called
		<-d.done
	})
}
