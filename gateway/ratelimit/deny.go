package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DenyList is the live list of networks whose connections are closed at
// accept: the ones the config names (protect.deny) and the ones added through
// the admin API or Lua (ctx.deny), optionally until a deadline.
//
// The added entries are bounded (protect.max_denied): past it, an Add evicts
// an expired entry, else an arbitrary one (counted: Evicted). An Add costs
// O(1): a filter banning every client that trips it (an IPv6 attacker has
// 2^64 addresses to be banned from) must not cost a rebuild of the list per
// ban, as it did (40,000 bans took 177 s of CPU, each under the lock every
// loop's request took).
//
// Concurrency: Denied may run on any goroutine. It takes no lock while no
// entry was added (the configured networks are an immutable set behind an
// atomic pointer); with added entries, the read lock of one shard per
// distinct prefix length among them of the address's family. Add, Remove,
// SetConfigured and Entries serialize on mu (and lock a shard to write it).
type DenyList struct {
	mu         sync.Mutex
	configured []netip.Prefix
	set        atomic.Pointer[denySet] // the configured networks
	shards     [denyShards]denyShard   // the added entries
	// lens has, per family (0: IPv4, 1: IPv6), a bit per prefix length some
	// added entry has; perLen counts them (under mu).
	lens    [2][3]atomic.Uint64
	perLen  [2][129]int
	added   atomic.Int64 // entries in shards
	max     int          // protect.max_denied (0: DefaultMaxDenied); under mu
	sweptAt int64        // the last sweep of expired entries (unix ns); under mu
	next    int          // the shard the next eviction starts at; under mu
	denied  atomic.Int64
	evicted atomic.Int64
}

// DefaultMaxDenied is protect.max_denied's default: about 6 MB of entries.
const DefaultMaxDenied = 100000

// denyShards spreads the added entries over locks, so that loops asking
// about different addresses do not share one.
const denyShards = 16

// denyShard is a part of the added entries: prefix → the unix ns it ends
// (0: never).
type denyShard struct {
	mu sync.RWMutex
	m  map[netip.Prefix]int64
	_  [32]byte // a cache line each
}

// denySet is an immutable lookup structure: per prefix length, the set of
// masked networks.
type denySet struct {
	lens []int // distinct prefix lengths, longest first
	nets map[netip.Prefix]struct{}
}

func (s *denySet) has(a netip.Addr) bool {
	for _, n := range s.lens {
		if n > a.BitLen() {
			continue
		}
		p, _ := a.Prefix(n)
		if _, ok := s.nets[p]; ok {
			return true
		}
	}
	return false
}

// ParsePrefix parses a CIDR or a bare address (a /32 or /128), masked.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("parse network %q: %w", s, err)
		}
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parse network %q: %w", s, err)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("parse network %q: an IPv4-mapped prefix needs 96 bits or more", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Denied reports whether a is in a denied network, and counts it when it is.
func (d *DenyList) Denied(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if set := d.set.Load(); set != nil && set.has(a) || d.added.Load() > 0 && d.addedHas(a) {
		d.denied.Add(1)
		return true
	}
	return false
}

// addedHas reports whether an added entry denies a (an expired one does
// not: it is dropped on the way).
func (d *DenyList) addedHas(a netip.Addr) bool {
	fam := familyOf(a)
	for w := range d.lens[fam] {
		for m := d.lens[fam][w].Load(); m != 0; m &= m - 1 {
			n := w*64 + bits.TrailingZeros64(m)
			if n > a.BitLen() {
				return false // longer lengths only from here
			}
			p, _ := a.Prefix(n)
			sh := &d.shards[shardOf(p)]
			sh.mu.RLock()
			until, ok := sh.m[p]
			sh.mu.RUnlock()
			if !ok {
				continue
			}
			if until == 0 || until > time.Now().UnixNano() {
				return true
			}
			d.expire(p)
		}
	}
	return false
}

// expire drops the added entry p if its deadline passed.
func (d *DenyList) expire(p netip.Prefix) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sh := &d.shards[shardOf(p)]
	sh.mu.Lock()
	until, ok := sh.m[p]
	gone := ok && until != 0 && until <= time.Now().UnixNano()
	if gone {
		delete(sh.m, p)
	}
	sh.mu.Unlock()
	if gone {
		d.counted(p, -1)
	}
}

// Count is how many connections and requests Denied refused.
func (d *DenyList) Count() int64 { return d.denied.Load() }

// Evicted is how many added entries were dropped before their end to make
// room for newer ones (protect.max_denied).
func (d *DenyList) Evicted() int64 { return d.evicted.Load() }

// SetConfigured replaces the networks from the config and the bound on
// added entries (max <= 0: DefaultMaxDenied), on a reload.
func (d *DenyList) SetConfigured(ps []netip.Prefix, max int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.configured = slices.Clone(ps)
	d.max = max
	set := &denySet{nets: make(map[netip.Prefix]struct{}, len(ps))}
	for _, p := range ps {
		if _, ok := set.nets[p]; !ok {
			set.nets[p] = struct{}{}
			if !slices.Contains(set.lens, p.Bits()) {
				set.lens = append(set.lens, p.Bits())
			}
		}
	}
	slices.SortFunc(set.lens, func(a, b int) int { return b - a })
	d.set.Store(set)
	for d.added.Load() > int64(d.limit()) {
		d.evictOne() // the bound was lowered
	}
}

// Add denies p until until (unix ns; 0: until removed).
func (d *DenyList) Add(p netip.Prefix, until int64) {
	p = p.Masked()
	d.mu.Lock()
	defer d.mu.Unlock()
	sh := &d.shards[shardOf(p)]
	sh.mu.Lock()
	_, renewed := sh.m[p]
	if renewed {
		sh.m[p] = until
	}
	sh.mu.Unlock()
	if renewed {
		return
	}
	if d.added.Load() >= int64(d.limit()) {
		if now := time.Now().UnixNano(); now-d.sweptAt >= int64(time.Second) {
			d.sweep(now) // at most once a second: O(entries)
		}
		if d.added.Load() >= int64(d.limit()) {
			d.evictOne()
		}
	}
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[netip.Prefix]int64)
	}
	sh.m[p] = until
	sh.mu.Unlock()
	d.counted(p, 1)
}

// Remove lifts an added entry; false when p was not added (a configured
// network is lifted by editing the config).
func (d *DenyList) Remove(p netip.Prefix) bool {
	p = p.Masked()
	d.mu.Lock()
	defer d.mu.Unlock()
	sh := &d.shards[shardOf(p)]
	sh.mu.Lock()
	_, ok := sh.m[p]
	delete(sh.m, p)
	sh.mu.Unlock()
	if ok {
		d.counted(p, -1)
	}
	return ok
}

// DenyEntry is one network of the list, as GET /admin/deny shows it.
type DenyEntry struct {
	Network string    `json:"network"`
	Source  string    `json:"source"` // "config" or "api" (admin API or Lua)
	Until   time.Time `json:"until,omitzero"`
}

// Entries lists the networks denied now, sorted.
func (d *DenyList) Entries() []DenyEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sweep(time.Now().UnixNano())
	out := make([]DenyEntry, 0, len(d.configured)+int(d.added.Load()))
	for _, p := range d.configured {
		out = append(out, DenyEntry{Network: p.String(), Source: "config"})
	}
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.RLock()
		for p, until := range sh.m {
			e := DenyEntry{Network: p.String(), Source: "api"}
			if until > 0 {
				e.Until = time.Unix(0, until).UTC()
			}
			out = append(out, e)
		}
		sh.mu.RUnlock()
	}
	slices.SortFunc(out, func(a, b DenyEntry) int {
		return strings.Compare(a.Source+a.Network, b.Source+b.Network)
	})
	return out
}

// limit is the bound on added entries. Under mu.
func (d *DenyList) limit() int {
	if d.max <= 0 {
		return DefaultMaxDenied
	}
	return d.max
}

// sweep drops the expired added entries. Under mu.
func (d *DenyList) sweep(now int64) {
	d.sweptAt = now
	for i := range d.shards {
		sh := &d.shards[i]
		var gone []netip.Prefix
		sh.mu.Lock()
		for p, until := range sh.m {
			if until != 0 && until <= now {
				delete(sh.m, p)
				gone = append(gone, p)
			}
		}
		sh.mu.Unlock()
		for _, p := range gone {
			d.counted(p, -1)
		}
	}
}

// evictOne drops one added entry (the first a shard's map gives, the
// shards taken in turn), counted. Under mu.
func (d *DenyList) evictOne() {
	for range denyShards {
		sh := &d.shards[d.next]
		d.next = (d.next + 1) % denyShards
		sh.mu.Lock()
		for p := range sh.m {
			delete(sh.m, p)
			sh.mu.Unlock()
			d.counted(p, -1)
			d.evicted.Add(1)
			return
		}
		sh.mu.Unlock()
	}
}

// counted records that an added entry of p's family and length came (1)
// or went (-1). Under mu.
func (d *DenyList) counted(p netip.Prefix, delta int) {
	fam, n := familyOf(p.Addr()), p.Bits()
	d.perLen[fam][n] += delta
	d.added.Add(int64(delta))
	w, bit := n/64, uint64(1)<<(n%64)
	switch c := d.perLen[fam][n]; {
	case c == 1 && delta > 0:
		d.lens[fam][w].Store(d.lens[fam][w].Load() | bit)
	case c == 0:
		d.lens[fam][w].Store(d.lens[fam][w].Load() &^ bit)
	}
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// denySeed seeds shardOf's hash (the zero DenyList is ready to use).
var denySeed = maphash.MakeSeed()

// shardOf spreads prefixes over the shards.
func shardOf(p netip.Prefix) int {
	return int(maphash.Comparable(denySeed, p) % denyShards)
}
