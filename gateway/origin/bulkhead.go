package origin

import "sync/atomic"

// Bulkhead caps the requests in flight to one origin across every event loop
// (origins.NAME.max_concurrent_requests). Over the cap a request is refused at
// once: no queue, so a slow origin can hold at most max requests, never the
// gateway's memory or its other origins' share of the loops.
//
// A Bulkhead is safe for concurrent use; TryAcquire and Release are one or two
// atomic operations and never block.
type Bulkhead struct {
	_        [64]byte // the counter is written by every loop: give it its own line
	inFlight atomic.Int64
	max      int64
	refused  atomic.Int64
	_        [64]byte
}

// NewBulkhead allows max concurrent requests; max ≤ 0 means no limit (the
// requests are still counted, for InFlight).
func NewBulkhead(max int) *Bulkhead {
	return &Bulkhead{max: int64(max)}
}

// TryAcquire takes a slot; false when all max are taken. A compare-and-swap loop
// rather than add-then-undo: two loops racing for the last slot must not both see
// the counter over the cap and both refuse.
func (b *Bulkhead) TryAcquire() bool {
	if b.max <= 0 {
		b.inFlight.Add(1)
		return true
	}
	for {
		n := b.inFlight.Load()
		if n >= b.max {
			b.refused.Add(1)
			return false
		}
		if b.inFlight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release gives back a slot taken by TryAcquire; call it exactly once per success.
func (b *Bulkhead) Release() { b.inFlight.Add(-1) }

// InFlight is the number of slots taken.
func (b *Bulkhead) InFlight() int64 { return b.inFlight.Load() }

// Max is the cap (≤ 0: none).
func (b *Bulkhead) Max() int64 { return b.max }

// Refused counts the refusals since start.
func (b *Bulkhead) Refused() int64 { return b.refused.Load() }
