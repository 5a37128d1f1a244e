package telemetry

import (
	"maps"
	"sync"
	"sync/atomic"

	"gozer/filters"
)

// CauseCounters counts requests per origin and status cause, for GET
// /admin/origins: one fixed array of atomic counters per origin, indexed by
// filters.CauseIndex, so counting is a read of an immutable map and one atomic
// add, with no allocation.
//
// Concurrency: Add, Snapshot and Ensure may be called from any goroutine.
// The map is copied on write (Ensure, when a reload adds origins), so Add
// stays one atomic load, a map read and one atomic add.
type CauseCounters struct {
	byOrigin atomic.Pointer[map[string][]atomic.Int64]
	mu       sync.Mutex // serializes Ensure
}

// NoOrigin is the name requests that never had an origin are counted under
// (refused heads, per-client refusals, no route, filter answers).
const NoOrigin = ""

// NewCauseCounters counts for the origins named, and for NoOrigin.
func NewCauseCounters(origins []string) *CauseCounters {
	c := &CauseCounters{}
	m := make(map[string][]atomic.Int64, len(origins)+1)
	c.byOrigin.Store(&m)
	c.Ensure(append([]string{NoOrigin}, origins...))
	return c
}

// Ensure counts for the origins named too (a reload added them). The
// counts of an origin a reload removed are kept: they are counts since
// start, and the origin may come back.
func (c *CauseCounters) Ensure(origins []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := *c.byOrigin.Load()
	var m map[string][]atomic.Int64
	for _, o := range origins {
		if _, ok := cur[o]; ok {
			continue
		}
		if m == nil {
			m = maps.Clone(cur)
		}
		m[o] = make([]atomic.Int64, len(filters.Causes()))
	}
	if m != nil {
		c.byOrigin.Store(&m)
	}
}

// Add counts one request of originName that ended with cause.
func (c *CauseCounters) Add(originName, cause string) {
	c.AddIndex(originName, filters.CauseIndex(cause))
}

// AddIndex counts one request of originName that ended with the cause at
// index i of filters.Causes (-1: none). Nil-safe.
func (c *CauseCounters) AddIndex(originName string, i int) {
	if c == nil || i < 0 {
		return
	}
	if arr := (*c.byOrigin.Load())[originName]; arr != nil {
		arr[i].Add(1)
	}
}

// Snapshot returns origin → cause → count (causes never seen are left out).
func (c *CauseCounters) Snapshot() map[string]map[string]int64 {
	byOrigin := *c.byOrigin.Load()
	out := make(map[string]map[string]int64, len(byOrigin))
	causes := filters.Causes()
	for o, arr := range byOrigin {
		m := map[string]int64{}
		for i := range arr {
			if n := arr[i].Load(); n > 0 {
				m[causes[i].Name] = n
			}
		}
		out[o] = m
	}
	return out
}
