package origin

import (
	"fmt"
	"sync/atomic"
)

// Policy is how a Balancer chooses among an origin's servers.
type Policy uint8

const (
	// LeastOutstanding is weighted least-outstanding-requests over two random
	// choices (P2C), the default: two candidates are drawn in proportion to their
	// weights, and the one with fewer attempts in flight per unit of weight wins.
	// It needs no shared cursor and routes around a slow server at once, because a
	// slow server's attempts pile up.
	LeastOutstanding Policy = iota
	// RoundRobin walks the smooth weighted wheel with a cursor shared by all loops.
	RoundRobin
)

// ParsePolicy reads origins.NAME.balancer: "p2c" (or "" / "least_outstanding")
// and "round_robin".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "", "p2c", "least_outstanding":
		return LeastOutstanding, nil
	case "round_robin":
		return RoundRobin, nil
	}
	return 0, fmt.Errorf("balancer %q: want p2c or round_robin", s)
}

func (p Policy) String() string {
	if p == RoundRobin {
		return "round_robin"
	}
	return "p2c"
}

// Balancer chooses a server of one origin for each attempt.
//
// A Balancer is shared by every event loop and safe for concurrent use: Pick reads
// the current ServerSet (one atomic load) and each candidate's state (atomic loads);
// Start and Done are one atomic add on the server. Randomness comes from the
// caller's per-loop Rand, so loops never contend on a generator. Nothing allocates.
type Balancer struct {
	policy Policy
	src    ServerSource
	_      [64]byte // the round-robin cursor is written by every loop
	cursor atomic.Uint64
	_      [64]byte
}

// NewBalancer balances over the servers src publishes.
func NewBalancer(policy Policy, src ServerSource) *Balancer {
	return &Balancer{policy: policy, src: src}
}

// Pick chooses the server for an attempt at now. tried holds the Bit of every
// server the request already tried. In order it takes: a server neither tried nor
// unavailable (ejected, or down by health check); else one not tried (a retry must
// go elsewhere even if that server is in doubt); else one available; else any. It
// returns nil only when the origin has no server at all.
func (b *Balancer) Pick(tried uint64, rnd uint32, now int64) *Server {
	set := b.src.Servers()
	switch len(set.List) {
	case 0:
		return nil
	case 1:
		return set.List[0]
	}
	var pos uint64
	if b.policy == RoundRobin {
		pos = b.cursor.Add(1) // one turn per pick, whichever level finds the server
	}
	for level := range 4 {
		mask := tried
		if level >= 2 {
			mask = 0
		}
		avail := level == 0 || level == 2
		var s *Server
		if b.policy == RoundRobin {
			s = roundRobin(set, pos, mask, avail, now)
		} else {
			s = p2c(set, mask, avail, rnd, now)
		}
		if s != nil {
			return s
		}
	}
	return nil // unreachable: level 3 accepts any server
}

func eligible(s *Server, mask uint64, avail bool, now int64) bool {
	return s.Bit()&mask == 0 && (!avail || s.Available(now))
}

// p2c draws two different eligible candidates and keeps the one with fewer
// outstanding attempts per unit of weight. On a tie the first draw wins: with
// nothing outstanding (a light load), traffic then follows the weighted draw.
func p2c(set *ServerSet, mask uint64, avail bool, rnd uint32, now int64) *Server {
	a := sample(set, mask, avail, &rnd, now, nil)
	if a == nil {
		return nil
	}
	c := sample(set, mask, avail, &rnd, now, a)
	if c == nil {
		return a
	}
	// oc/wc < oa/wa without a division.
	if c.outstanding.Load()*int64(a.Weight) < a.outstanding.Load()*int64(c.Weight) {
		return c
	}
	return a
}

// sample draws an eligible server other than not: a few weighted random draws,
// which almost always succeed, then a scan from a random place so that a lone
// eligible server among many ineligible ones is still found.
func sample(set *ServerSet, mask uint64, avail bool, rnd *uint32, now int64, not *Server) *Server {
	list, wheel := set.List, set.wheel
	for range 3 {
		*rnd = xorshift(*rnd)
		s := list[wheel[below(*rnd, len(wheel))]]
		if s != not && eligible(s, mask, avail, now) {
			return s
		}
	}
	start := below(*rnd, len(list))
	for k := range list {
		s := list[(start+k)%len(list)]
		if s != not && eligible(s, mask, avail, now) {
			return s
		}
	}
	return nil
}

// roundRobin takes the first eligible server on the wheel from pos.
func roundRobin(set *ServerSet, pos, mask uint64, avail bool, now int64) *Server {
	n := uint64(len(set.wheel))
	// Bounded walk: past 2×servers steps the eligible ones are rare; scan the list.
	steps := min(n, 2*uint64(len(set.List)))
	for k := range steps {
		s := set.List[set.wheel[(pos+k)%n]]
		if eligible(s, mask, avail, now) {
			return s
		}
	}
	for k := range set.List {
		s := set.List[(int(pos%uint64(len(set.List)))+k)%len(set.List)]
		if eligible(s, mask, avail, now) {
			return s
		}
	}
	return nil
}

// Start counts an attempt sent to s; Done uncounts it. Every Start needs one Done.
func (b *Balancer) Start(s *Server) { s.outstanding.Add(1) }

// Done uncounts an attempt counted by Start.
func (b *Balancer) Done(s *Server) { s.outstanding.Add(-1) }

// Healthy reports whether at least one server is available at now; an origin with
// none goes to its fallback (Table.Resolve).
func (b *Balancer) Healthy(now int64) bool {
	for _, s := range b.src.Servers().List {
		if s.Available(now) {
			return true
		}
	}
	return false
}

// Servers is the set the balancer currently picks from.
func (b *Balancer) Servers() *ServerSet { return b.src.Servers() }
