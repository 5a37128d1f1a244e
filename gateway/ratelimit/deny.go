package ratelimit

import (
	"fmt"
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
// Concurrency: Denied is lock-free (one atomic load and a map lookup per
// distinct prefix length in the list) and may run on any goroutine; changes
// (Add, Remove, SetConfigured) serialize on a mutex and publish a new
// immutable set.
type DenyList struct {
	mu         sync.Mutex
	configured []netip.Prefix
	added      map[netip.Prefix]int64 // prefix → unix ns it ends (0: never)
	set        atomic.Pointer[denySet]
	denied     atomic.Int64
}

// denySet is an immutable lookup structure: per prefix length, the set of
// masked networks.
type denySet struct {
	lens []int // distinct prefix lengths, longest first
	nets map[netip.Prefix]struct{}
	// soonest is the earliest deadline of an added entry (0: none).
	soonest int64
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
	set := d.set.Load()
	if set == nil || len(set.lens) == 0 {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, n := range set.lens {
		if n > a.BitLen() {
			continue
		}
		p, _ := a.Prefix(n)
		if _, ok := set.nets[p]; ok {
			if set.soonest != 0 && set.soonest <= time.Now().UnixNano() && !d.stillDenied(a) {
				return false
			}
			d.denied.Add(1)
			return true
		}
	}
	return false
}

// stillDenied is Denied's slow path once an added entry expired: the set is
// rebuilt without the expired entries and asked again.
func (d *DenyList) stillDenied(a netip.Addr) bool {
	d.mu.Lock()
	d.publish()
	d.mu.Unlock()
	set := d.set.Load()
	for _, n := range set.lens {
		if n > a.BitLen() {
			continue
		}
		p, _ := a.Prefix(n)
		if _, ok := set.nets[p]; ok {
			return true
		}
	}
	return false
}

// Count is how many connections and requests Denied refused.
func (d *DenyList) Count() int64 { return d.denied.Load() }

// SetConfigured replaces the networks from the config (a reload).
func (d *DenyList) SetConfigured(ps []netip.Prefix) {
	d.mu.Lock()
	d.configured = slices.Clone(ps)
	d.publish()
	d.mu.Unlock()
}

// Add denies p until until (unix ns; 0: until removed).
func (d *DenyList) Add(p netip.Prefix, until int64) {
	d.mu.Lock()
	if d.added == nil {
		d.added = make(map[netip.Prefix]int64)
	}
	d.added[p.Masked()] = until
	d.publish()
	d.mu.Unlock()
}

// Remove lifts an added entry; false when p was not added (a configured
// network is lifted by editing the config).
func (d *DenyList) Remove(p netip.Prefix) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	p = p.Masked()
	if _, ok := d.added[p]; !ok {
		return false
	}
	delete(d.added, p)
	d.publish()
	return true
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
	d.publish()
	var out []DenyEntry
	for _, p := range d.configured {
		out = append(out, DenyEntry{Network: p.String(), Source: "config"})
	}
	for p, until := range d.added {
		e := DenyEntry{Network: p.String(), Source: "api"}
		if until > 0 {
			e.Until = time.Unix(0, until).UTC()
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b DenyEntry) int {
		return strings.Compare(a.Source+a.Network, b.Source+b.Network)
	})
	return out
}

// publish drops expired entries and builds the lookup set. Under d.mu.
func (d *DenyList) publish() {
	now := time.Now().UnixNano()
	set := &denySet{nets: make(map[netip.Prefix]struct{})}
	add := func(p netip.Prefix) {
		if _, ok := set.nets[p]; !ok {
			set.nets[p] = struct{}{}
			if !slices.Contains(set.lens, p.Bits()) {
				set.lens = append(set.lens, p.Bits())
			}
		}
	}
	for _, p := range d.configured {
		add(p)
	}
	for p, until := range d.added {
		if until != 0 && until <= now {
			delete(d.added, p)
			continue
		}
		if until != 0 && (set.soonest == 0 || until < set.soonest) {
			set.soonest = until
		}
		add(p)
	}
	slices.SortFunc(set.lens, func(a, b int) int { return b - a })
	d.set.Store(set)
}
