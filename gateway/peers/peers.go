// Package peers counts, per client address, the connections open and the
// requests in flight on the whole node, so that one address cannot take the
// gateway's max_connections or an origin's bulkhead (server.max_connections_per_ip,
// server.max_requests_per_ip).
//
// An IPv6 client is counted by its /64: one subscriber's network gets a /64
// (or more) and picks addresses in it at will, so counting single IPv6
// addresses would give one client as many allowances as it likes.
package peers

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// shardCount spreads the table's locks: a connection opens and closes under its
// shard's lock only.
const shardCount = 64

// Table is the node's count of connections and requests per client.
//
// Concurrency: every method may be called from any goroutine. Open and Close
// take a shard's lock (once per connection); Begin and End are one atomic add
// on the Peer a connection holds (once per request).
type Table struct {
	seed     maphash.Seed
	maxConns atomic.Int32 // 0: no limit
	maxReqs  atomic.Int32 // 0: no limit
	shards   [shardCount]shard

	refusedConns atomic.Int64
	refusedReqs  atomic.Int64
}

type shard struct {
	mu sync.Mutex
	m  map[netip.Addr]*Peer
	// lingering are peers without connections kept for their penalty (Sweep
	// forgets them once it ended).
	lingering []*Peer
	_         [16]byte // a cache line of its own
}

// Peer is one client (an IPv4 address, an IPv6 /64) while it has connections
// open. A connection keeps its Peer from Open to Close.
type Peer struct {
	key      netip.Addr
	conns    int32 // under the shard's lock
	lingers  bool  // in the shard's lingering list (under its lock)
	inflight atomic.Int32
	penalty  atomic.Int64 // unix ns until which the peer's cap is lowered (Penalize)
}

// penaltyShare is how much of max_requests_per_ip a penalized client keeps.
const penaltyShare = 16

// New returns a table with the given caps (0: no limit).
func New(maxConns, maxReqs int) *Table {
	t := &Table{seed: maphash.MakeSeed()}
	t.SetLimits(maxConns, maxReqs)
	for i := range t.shards {
		t.shards[i].m = make(map[netip.Addr]*Peer)
	}
	return t
}

// SetLimits changes the caps; connections and requests already counted stay.
func (t *Table) SetLimits(maxConns, maxReqs int) {
	t.maxConns.Store(int32(clamp(maxConns)))
	t.maxReqs.Store(int32(clamp(maxReqs)))
}

func clamp(n int) int {
	const most = 1<<31 - 1
	switch {
	case n < 0:
		return 0
	case n > most:
		return most
	}
	return n
}

// Key is the address a client is counted by: an IPv4 address (IPv4-mapped
// IPv6 included) as it is, an IPv6 address's /64.
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a.WithZone("")
}

// AppendKey appends a's Key as 16 bytes: the client's key in byte-keyed
// stores (the new-connection buckets of gateway/ratelimit).
func AppendKey(dst []byte, a netip.Addr) []byte {
	b := Key(a).As16()
	return append(dst, b[:]...)
}

func (t *Table) shardOf(k netip.Addr) *shard {
	return &t.shards[maphash.Comparable(t.seed, k)%shardCount]
}

// Open counts a new connection from a. It returns false (and counts nothing)
// when a already holds max_connections_per_ip connections.
func (t *Table) Open(a netip.Addr) (*Peer, bool) {
	k := Key(a)
	s := t.shardOf(k)
	max := t.maxConns.Load()
	s.mu.Lock()
	p := s.m[k]
	if p == nil {
		p = &Peer{key: k}
		s.m[k] = p
	}
	if max > 0 && p.conns >= max {
		s.mu.Unlock()
		t.refusedConns.Add(1)
		return nil, false
	}
	p.conns++
	s.mu.Unlock()
	return p, true
}

// Close forgets a connection Open counted. nil is ignored.
func (t *Table) Close(p *Peer) {
	if p == nil {
		return
	}
	s := t.shardOf(p.key)
	s.mu.Lock()
	if p.conns--; p.conns <= 0 {
		s.forget(p)
	}
	s.mu.Unlock()
}

// forget drops p, which has no connection left, unless it is penalized: the
// penalty must outlast the connection it came from, or the client would shed
// it by reconnecting. Under s.mu.
func (s *shard) forget(p *Peer) {
	if p.penalty.Load() > time.Now().UnixNano() {
		if !p.lingers {
			p.lingers = true
			s.lingering = append(s.lingering, p)
		}
		return
	}
	delete(s.m, p.key)
}

// Sweep forgets the peers kept for a penalty that ended by now (unix ns) and
// still have no connection. Call it every second or so (the server's
// ticker); it costs the lingering peers, not the table.
func (t *Table) Sweep(now int64) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		keep := s.lingering[:0]
		for _, p := range s.lingering {
			if p.conns == 0 && p.penalty.Load() > now {
				keep = append(keep, p)
				continue
			}
			p.lingers = false
			if p.conns == 0 && s.m[p.key] == p {
				delete(s.m, p.key)
			} // else: back with a connection; its Close decides again
		}
		clear(s.lingering[len(keep):])
		s.lingering = keep
		s.mu.Unlock()
	}
}

// CloseAddr forgets a connection from a that Open counted, for a connection
// kind that keeps the address rather than the Peer (a push connection).
func (t *Table) CloseAddr(a netip.Addr) {
	k := Key(a)
	s := t.shardOf(k)
	s.mu.Lock()
	if p := s.m[k]; p != nil {
		if p.conns--; p.conns <= 0 {
			s.forget(p)
		}
	}
	s.mu.Unlock()
}

// InFlight is what p has in flight on the node: requests, and TLS handshakes
// (Begin counted each); 0 for nil. Any goroutine.
func (p *Peer) InFlight() int32 {
	if p == nil {
		return 0
	}
	return p.inflight.Load()
}

// Begin counts a request in flight from p at now (unix ns); false (nothing
// counted) when p has max_requests_per_ip in flight already, or a sixteenth
// of it while p is penalized. A nil p is not limited.
func (t *Table) Begin(p *Peer, now int64) bool {
	if p == nil {
		return true
	}
	max := t.maxReqs.Load()
	if max > 0 && now < p.penalty.Load() {
		max = (max + penaltyShare - 1) / penaltyShare
	}
	if n := p.inflight.Add(1); max > 0 && n > max {
		p.inflight.Add(-1)
		t.refusedReqs.Add(1)
		return false
	}
	return true
}

// Penalize lowers p's cap of requests in flight to a sixteenth of
// max_requests_per_ip (at least 1) until until (unix ns): the client sent a
// request too slowly or read its answer too slowly. An attacker that comes
// back at once on new connections from the same address then costs an
// immediate 429, not another origin request and its buffers; a client sharing
// the address (behind a NAT) keeps some requests in flight meanwhile.
// No effect without a cap, or on a nil p.
func (t *Table) Penalize(p *Peer, until int64) {
	if p == nil || t.maxReqs.Load() == 0 {
		return
	}
	if p.penalty.Load() < until {
		p.penalty.Store(until)
	}
}

// Penalized reports whether p's cap is lowered at now.
func (t *Table) Penalized(p *Peer, now int64) bool { return p != nil && now < p.penalty.Load() }

// End forgets a request Begin counted.
func (t *Table) End(p *Peer) {
	if p != nil {
		p.inflight.Add(-1)
	}
}

// Stats is what the table counted, for the admin API.
type Stats struct {
	Clients          int   // clients with a connection open
	RefusedConns     int64 // connections refused since start (over max_connections_per_ip)
	RefusedRequests  int64 // requests refused since start (over max_requests_per_ip)
	MaxConnsPerIP    int
	MaxRequestsPerIP int
}

// Stats counts the clients (taking every shard's lock in turn: for the admin
// API, not for a hot path).
func (t *Table) Stats() Stats {
	st := Stats{RefusedConns: t.refusedConns.Load(), RefusedRequests: t.refusedReqs.Load(),
		MaxConnsPerIP: int(t.maxConns.Load()), MaxRequestsPerIP: int(t.maxReqs.Load())}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		st.Clients += len(s.m)
		for _, p := range s.lingering {
			if p.conns == 0 {
				st.Clients-- // kept for its penalty only
			}
		}
		s.mu.Unlock()
	}
	return st
}
