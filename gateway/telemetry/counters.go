package telemetry

import (
	"sync/atomic"

	"gozer/filters"
)

// CauseCounters counts requests per origin and status cause, for GET
// /admin/origins: one fixed array of atomic counters per origin, indexed by
// filters.CauseIndex, so counting is a read of an immutable map and one atomic
// add, with no allocation.
//
// Concurrency: Add and Snapshot may be called from any goroutine; the set of
// origins is fixed by NewCauseCounters.
type CauseCounters struct {
	byOrigin map[string][]atomic.Int64
}

// NoOrigin is the name requests that never had an origin are counted under
// (refused heads, per-client refusals, no route, filter answers).
const NoOrigin = ""

// NewCauseCounters counts for the origins named, and for NoOrigin.
func NewCauseCounters(origins []string) *CauseCounters {
	c := &CauseCounters{byOrigin: make(map[string][]atomic.Int64, len(origins)+1)}
	for _, o := range append([]string{NoOrigin}, origins...) {
		c.byOrigin[o] = make([]atomic.Int64, len(filters.Causes()))
	}
	return c
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
	if arr := c.byOrigin[originName]; arr != nil {
		arr[i].Add(1)
	}
}

// Snapshot returns origin → cause → count (causes never seen are left out).
func (c *CauseCounters) Snapshot() map[string]map[string]int64 {
	out := make(map[string]map[string]int64, len(c.byOrigin))
	causes := filters.Causes()
	for o, arr := range c.byOrigin {
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
