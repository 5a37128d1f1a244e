package dict

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrent has many goroutines (the loops) share two dictionaries: a
// small cache under eviction, expiry and the odd Flush, and a counter that
// evicts nothing, so that every increment must be there at the end. A
// reader checks the byte bound while they run; the race detector watches.
func TestConcurrent(t *testing.T) {
	const workers, ops = 16, 5000
	cache := New("cache", 128<<10)
	counters := New("counters", 1<<20)
	var clock atomic.Int64
	keys := make([]string, 500)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
	}
	done := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if st := cache.Stats(); st.Bytes > st.MaxBytes || st.Items < 0 {
				t.Errorf("cache stats while running: %+v", st)
				return
			}
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range ops {
				now := clock.Add(int64(r.IntN(int(time.Millisecond))))
				worker(t, r, cache, counters, keys, now)
			}
		})
	}
	wg.Wait()
	close(done)
	watcher.Wait()

	checkInvariants(t, cache)
	checkInvariants(t, counters)
	var sum float64
	for _, k := range keys[:10] {
		v, _ := counters.Get(k, clock.Load())
		sum += v.Num
	}
	if sum != workers*ops {
		t.Fatalf("counters sum to %v, want %d", sum, workers*ops)
	}
	if st := counters.Stats(); st.Evictions != 0 {
		t.Fatalf("counters evicted: %+v", st)
	}
	t.Logf("cache: %+v", cache.Stats())
}

// worker does one random operation on the cache and one increment.
func worker(t *testing.T, r *rand.Rand, cache, counters *Dict, keys []string, now int64) {
	if _, err := counters.Incr(keys[r.IntN(10)], 1, f64(0), 0, now); err != nil {
		t.Errorf("Incr counter: %v", err)
	}
	key := keys[r.IntN(len(keys))]
	ttl := time.Duration(r.IntN(4)) * 100 * time.Millisecond // 0: none
	var err error
	switch n := r.IntN(100); {
	case n < 40:
		cache.Get(key, now)
	case n < 60:
		err = cache.Set(key, StringValue(strings.Repeat("v", r.IntN(800))), ttl, now)
	case n < 70:
		_, err = cache.Add(key, NumberValue(1), ttl, now)
	case n < 85:
		_, err = cache.Incr(key, 1, f64(0), ttl, now)
	case n < 92:
		cache.Delete(key)
	case n < 99:
		cache.TTL(key, now)
	case r.IntN(10) == 0:
		cache.Flush()
	}
	if err != nil && !errors.Is(err, ErrNotNumber) {
		t.Errorf("cache: %v", err)
	}
}
