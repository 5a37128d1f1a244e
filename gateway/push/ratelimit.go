package push

import (
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Clock returns the current time in nanoseconds on any fixed scale (only
// differences matter). Tests inject a fake one.
type Clock func() int64

// MonotonicClock returns a Clock that reads the monotonic clock.
func MonotonicClock() Clock {
	start := time.Now()
	return func() int64 { return int64(time.Since(start)) }
}

const limiterShards = 64

// RateLimiter limits the message rate per client id for the push API (over it:
// 429). Each id has a token bucket of burst messages refilled at rate per
// second, kept as the GCRA "theoretical arrival time": one int64 updated by
// compare-and-swap, so a bucket needs no lock. The map from id to bucket is
// sharded: a known id costs a shard read lock (shared, uncontended in
// practice) and a CAS; a new id takes the shard's write lock once.
//
// Memory: a bucket costs 30 to 40 bytes (its map slot and an 8-byte counter;
// 27 measured with 200,000 ids) plus the id's bytes when the string is not
// shared,
// and only ids pushed to recently have one: Sweep drops the buckets that are
// full again (indistinguishable from a new bucket). The core calls Sweep from
// a timer, every few seconds. A message counted on a bucket while Sweep drops
// it is forgotten: around a sweep an id may get one message over its burst.
//
// Concurrency: safe for any goroutine.
type RateLimiter struct {
	interval int64 // ns per message
	tol      int64 // burst * interval: how far ahead of now the TAT may run
	clock    Clock
	seed     maphash.Seed
	shards   [limiterShards]limiterShard
}

type limiterShard struct {
	mu sync.RWMutex
	m  map[string]*atomic.Int64
	_  [64 - 32]byte
}

// NewRateLimiter returns a limiter allowing rate messages per second per id
// with bursts of up to burst messages (at least 1), timed by clock
// (MonotonicClock() if nil). rate <= 0 means no limit: Allow always allows
// and keeps no bucket.
func NewRateLimiter(rate float64, burst int, clock Clock) *RateLimiter {
	if clock == nil {
		clock = MonotonicClock()
	}
	if burst < 1 {
		burst = 1
	}
	const limit = math.MaxInt64 / 4 // keeps TAT arithmetic far from overflow
	var interval, tol int64
	if rate > 0 {
		interval = int64(math.Max(1, math.Min(limit, 1e9/rate)))
		tol = int64(math.Min(limit, float64(interval)*float64(burst)))
	}
	l := &RateLimiter{interval: interval, tol: tol, clock: clock, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[string]*atomic.Int64)
	}
	return l
}

// Allow takes one message from id's bucket. When the bucket is empty it
// returns false and how long until a message would be allowed (for the 429's
// Retry-After).
func (l *RateLimiter) Allow(id string) (ok bool, retryAfter time.Duration) {
	if l.interval == 0 {
		return true, 0
	}
	now := l.clock()
	b := l.bucket(id, now)
	for {
		old := b.Load()
		next := max(old, now) + l.interval
		if wait := next - now - l.tol; wait > 0 {
			return false, time.Duration(wait)
		}
		if b.CompareAndSwap(old, next) {
			return true, 0
		}
	}
}

// bucket returns id's bucket, making it if needed. A new bucket's TAT is now:
// full.
func (l *RateLimiter) bucket(id string, now int64) *atomic.Int64 {
	s := &l.shards[maphash.String(l.seed, id)&(limiterShards-1)]
	s.mu.RLock()
	b := s.m[id]
	s.mu.RUnlock()
	if b != nil {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b = s.m[id]; b == nil {
		b = new(atomic.Int64)
		b.Store(now)
		// A copy: callers may pass a string that aliases a buffer they reuse
		// (the push API passes the id in fasthttp's request buffer).
		s.m[strings.Clone(id)] = b
	}
	return b
}

// Sweep drops the buckets that are full again and returns how many remain.
func (l *RateLimiter) Sweep() (remaining int) {
	now := l.clock()
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for id, b := range s.m {
			if b.Load() <= now {
				delete(s.m, id)
			}
		}
		remaining += len(s.m)
		s.mu.Unlock()
	}
	return remaining
}

// Len returns how many buckets the limiter holds.
func (l *RateLimiter) Len() (n int) {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
