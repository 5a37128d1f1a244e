package origin

import "sync/atomic"

// window counts two numbers (say requests and errors) over a sliding span of time
// cut into buckets, without a lock: every bucket is one uint64 holding the bucket's
// time tag and both counts, so one compare-and-swap both rolls a stale bucket over
// and counts into it. Event loops of every core record into the same window; a
// mutex there would make them queue behind each other on every request.
//
// Layout of a bucket word: tag (24 bits) | a (20 bits) | b (20 bits). The tag is
// the bucket's period number modulo 2^24 (194 days of 1 s periods), enough to tell
// a live bucket from one left over from an earlier lap of the ring. Counts saturate
// at 2^20-1 per bucket period (a million per second per origin on one gateway),
// which keeps ratios right even if ever reached.
//
// A window is safe for concurrent use by any number of goroutines.
type window struct {
	_       [64]byte // keep the hot words off the cache line of whatever precedes
	buckets []atomic.Uint64
	width   int64 // nanoseconds per bucket
	n       int64
}

const (
	winCountBits = 20
	winCountMax  = 1<<winCountBits - 1
	winTagBits   = 64 - 2*winCountBits
	winTagMask   = 1<<winTagBits - 1
)

func newWindow(buckets int, width int64) *window {
	if buckets < 1 {
		buckets = 1
	}
	if width < 1 {
		width = 1
	}
	return &window{buckets: make([]atomic.Uint64, buckets), width: width, n: int64(buckets)}
}

// add counts da and db into the bucket that holds now.
func (w *window) add(now int64, da, db uint64) {
	period := now / w.width
	slot := &w.buckets[period%w.n]
	tag := uint64(period) & winTagMask
	for {
		old := slot.Load()
		a, b := da, db
		if old>>(2*winCountBits) == tag {
			a = min(a+(old>>winCountBits)&winCountMax, winCountMax)
			b = min(b+old&winCountMax, winCountMax)
		}
		if slot.CompareAndSwap(old, tag<<(2*winCountBits)|a<<winCountBits|b) {
			return
		}
	}
}

// sum adds up both counts over the buckets of the span that ends at now.
func (w *window) sum(now int64) (a, b uint64) {
	period := now / w.width
	for age := int64(0); age < w.n && age <= period; age++ {
		p := period - age
		v := w.buckets[p%w.n].Load()
		if v>>(2*winCountBits) == uint64(p)&winTagMask {
			a += (v >> winCountBits) & winCountMax
			b += v & winCountMax
		}
	}
	return a, b
}

// reset forgets every count.
func (w *window) reset() {
	for i := range w.buckets {
		w.buckets[i].Store(0)
	}
}

// Rand is a xorshift32 generator: a few nanoseconds, no lock, no allocation. Each
// event loop owns one and passes its numbers to Balancer.Pick; it must not be
// shared between goroutines (math/rand/v2's global source is safe but contended).
type Rand struct{ s uint32 }

// NewRand seeds a generator; a zero seed is replaced, since xorshift stays at zero.
func NewRand(seed uint32) *Rand {
	if seed == 0 {
		seed = 0x9e3779b9
	}
	return &Rand{s: seed}
}

// Uint32 returns the next number.
func (r *Rand) Uint32() uint32 {
	r.s = xorshift(r.s)
	return r.s
}

func xorshift(x uint32) uint32 {
	if x == 0 {
		x = 0x9e3779b9
	}
	x ^= x << 13
	x ^= x >> 17
	x ^= x << 5
	return x
}

// below maps a random number onto [0, n) without a division (Lemire's reduction).
func below(r uint32, n int) int {
	return int(uint64(r) * uint64(n) >> 32)
}
