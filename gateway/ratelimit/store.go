// Package ratelimit holds the gateway's request rate limits and connection
// protection: token buckets keyed by what the operator chooses (a client's
// network, a header, the origin, any key a Lua filter computes), their
// cluster-wide reconciliation through Redis, and the live deny list of
// networks.
//
// A bucket is kept as GCRA (the generic cell rate algorithm): one int64, the
// theoretical arrival time of the next request, is all the state of a token
// bucket of rate r and burst b. Buckets live in a Store: 64 shards, each a map
// and an LRU list under its own mutex, bounded in keys. A full bucket (one
// that refilled) is the same as a missing one, so evicting the least recently
// used keys loses only the state of keys idle the longest.
package ratelimit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// shardCount spreads the store's locks; a request takes one shard's lock once
// per limit that applies to it, for a few dozen nanoseconds.
const shardCount = 64

// Store is a bounded set of token buckets by key.
//
// Concurrency: every method may be called from any goroutine. Take locks the
// key's shard only; Len and Evicted are atomic reads; Drain (the cluster
// reconciler's) locks each shard in turn.
type Store struct {
	seed     maphash.Seed
	perShard int
	shards   [shardCount]shard
	keys     atomic.Int64
	evicted  atomic.Int64
}

type shard struct {
	mu   sync.Mutex
	m    map[string]*bucket
	head *bucket // most recently used
	tail *bucket // least recently used: evicted first
	// dirty are the cluster buckets with demand since the last Drain.
	dirty []*bucket
	_     [24]byte // keep neighbouring shards' locks off one cache line
}

// bucket is one key's state. Every field is under its shard's lock.
type bucket struct {
	key        string
	tat        int64 // unix ns: the theoretical arrival time (GCRA)
	prev, next *bucket

	// Cluster limits: requests seen since the last Drain, whether the bucket
	// is in its shard's dirty list, and the share of the configured rate this
	// node admits (1: the whole rate; set by the reconciler).
	demand  int64
	dirty   bool
	cluster bool
	share   float64
	// The node's own demand in the reconciler's windows (reconciler only).
	win, cur, prev1 int64
}

// NewStore returns a store holding at most maxKeys keys (at least one per
// shard).
func NewStore(maxKeys int) *Store {
	s := &Store{seed: maphash.MakeSeed(), perShard: max(1, (maxKeys+shardCount-1)/shardCount)}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*bucket)
	}
	return s
}

// Rate is a token bucket's shape: Interval ns between tokens (the period over
// the rate) and room for Burst tokens. A zero Interval admits everything.
type Rate struct {
	Interval int64
	Burst    int64
	// Cluster: the bucket's rate is shared by the cluster's nodes (its demand
	// is reported to the reconciler, which sets the node's share).
	Cluster bool
}

// Take spends one token of key's bucket at now (unix ns). It reports whether
// the request is admitted and, when it is not, how long (ns) until it would
// be. key is copied when the bucket is created: the caller may reuse it.
func (s *Store) Take(key []byte, now int64, r Rate) (bool, int64) {
	if r.Interval <= 0 {
		return true, 0
	}
	sh := &s.shards[maphash.Bytes(s.seed, key)%shardCount]
	sh.mu.Lock()
	b := sh.m[string(key)]
	if b == nil {
		b = s.insert(sh, string(key))
		b.cluster = r.Cluster
	} else if sh.head != b {
		sh.unlink(b)
		sh.pushFront(b)
	}
	interval, tau := r.Interval, r.Interval*max(r.Burst, 1)
	if b.cluster {
		if b.demand++; !b.dirty {
			b.dirty = true
			sh.dirty = append(sh.dirty, b)
		}
		if b.share < 1 {
			// The node's share of the cluster's rate: tokens come slower and
			// the burst shrinks alike (tau stays), but one request always fits.
			interval = min(int64(float64(interval)/b.share), tau)
		}
	}
	if b.tat > now+tau {
		// The bucket was filled under a larger burst or a slower rate (a
		// reload changed the limit): it is empty under this one, not in debt.
		b.tat = now + tau
	}
	tat := max(b.tat, now) + interval
	if wait := tat - now - tau; wait > 0 {
		sh.mu.Unlock()
		return false, wait
	}
	b.tat = tat
	sh.mu.Unlock()
	return true, 0
}

// insert adds a fresh bucket for key, evicting the least recently used one
// when the shard is full. Under sh.mu.
func (s *Store) insert(sh *shard, key string) *bucket {
	if len(sh.m) >= s.perShard && sh.tail != nil {
		old := sh.tail
		sh.unlink(old)
		delete(sh.m, old.key)
		s.evicted.Add(1)
		s.keys.Add(-1)
	}
	b := &bucket{key: key, share: 1}
	sh.m[key] = b
	sh.pushFront(b)
	s.keys.Add(1)
	return b
}

func (sh *shard) unlink(b *bucket) {
	if b.prev != nil {
		b.prev.next = b.next
	} else {
		sh.head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else {
		sh.tail = b.prev
	}
	b.prev, b.next = nil, nil
}

func (sh *shard) pushFront(b *bucket) {
	b.next = sh.head
	if sh.head != nil {
		sh.head.prev = b
	}
	sh.head = b
	if sh.tail == nil {
		sh.tail = b
	}
}

// Len is how many keys the store holds now.
func (s *Store) Len() int64 { return s.keys.Load() }

// Evicted counts the keys dropped to make room since the store was made.
func (s *Store) Evicted() int64 { return s.evicted.Load() }

// Cap is the most keys the store holds.
func (s *Store) Cap() int { return s.perShard * shardCount }

// Demand is one cluster bucket's requests since the previous Drain.
type Demand struct {
	b      *bucket
	Key    string
	Demand int64
}

// Drain takes the cluster buckets that saw requests since the last Drain,
// with their counts (reset). The reconciler reports them and then calls
// SetShare for each.
func (s *Store) Drain(into []Demand) []Demand {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, b := range sh.dirty {
			into = append(into, Demand{b: b, Key: b.key, Demand: b.demand})
			b.demand, b.dirty = 0, false
		}
		clear(sh.dirty)
		sh.dirty = sh.dirty[:0]
		sh.mu.Unlock()
	}
	return into
}

// setShare sets the share of the cluster's rate d's bucket admits (clamped to
// (0, 1]). The bucket may have been evicted meanwhile: then nothing sees it.
func (s *Store) setShare(d *Demand, share float64) {
	share = min(max(share, 1e-6), 1)
	sh := &s.shards[maphash.String(s.seed, d.Key)%shardCount]
	sh.mu.Lock()
	d.b.share = share
	sh.mu.Unlock()
}

// ResetShares gives every cluster bucket the whole rate back (the
// reconciler lost Redis: limits fall back to local).
func (s *Store) ResetShares() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, b := range sh.m {
			b.share = 1
		}
		sh.mu.Unlock()
	}
}
