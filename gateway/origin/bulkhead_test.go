package origin

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBulkheadCaps(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		acquires int
		wantOK   int
	}{
		{"under the cap", 3, 2, 2},
		{"at the cap", 3, 3, 3},
		{"over the cap", 3, 5, 3},
		{"no limit", 0, 1000, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBulkhead(tc.max)
			ok := 0
			for range tc.acquires {
				if b.TryAcquire() {
					ok++
				}
			}
			if ok != tc.wantOK || b.InFlight() != int64(tc.wantOK) {
				t.Fatalf("acquired %d (in flight %d), want %d", ok, b.InFlight(), tc.wantOK)
			}
			if b.Refused() != int64(tc.acquires-tc.wantOK) {
				t.Fatalf("refused %d, want %d", b.Refused(), tc.acquires-tc.wantOK)
			}
			for range ok {
				b.Release()
			}
			if b.InFlight() != 0 || !b.TryAcquire() {
				t.Fatal("slots not given back")
			}
		})
	}
}

// Under contention the cap holds exactly and no slot is lost.
func TestBulkheadConcurrent(t *testing.T) {
	const max = 10
	b := NewBulkhead(max)
	var peak, cur atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5000 {
				if !b.TryAcquire() {
					continue
				}
				n := cur.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				cur.Add(-1)
				b.Release()
			}
		}()
	}
	wg.Wait()
	if peak.Load() > max {
		t.Fatalf("%d in flight at once, cap %d", peak.Load(), max)
	}
	if b.InFlight() != 0 {
		t.Fatalf("in flight %d after all released", b.InFlight())
	}
}

func TestRetryBudget(t *testing.T) {
	tests := []struct {
		name     string
		cfg      RetryBudgetConfig
		requests int
		tries    int
		want     int
	}{
		{"20 % of 100 plus none", RetryBudgetConfig{Ratio: 0.2, MinPerSecond: -1, Window: 10 * time.Second}, 100, 50, 20},
		{"floor lets a quiet origin retry", RetryBudgetConfig{Ratio: 0.2, MinPerSecond: 2, Window: 10 * time.Second}, 0, 50, 20},
		{"ratio plus floor", RetryBudgetConfig{Ratio: 0.1, MinPerSecond: 1, Window: 5 * time.Second}, 100, 50, 15},
		{"defaults: 20 % + 10/s over 10 s", RetryBudgetConfig{}, 1000, 1000, 300},
		{"negative ratio: unbudgeted", RetryBudgetConfig{Ratio: -1}, 0, 500, 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRetryBudget(tc.cfg)
			for range tc.requests {
				r.RecordRequest(t0)
			}
			got := 0
			for range tc.tries {
				if r.TryRetry(t0) {
					got++
				}
			}
			if got != tc.want {
				t.Fatalf("%d retries allowed, want %d", got, tc.want)
			}
			if _, retries := r.Counts(t0); retries != uint64(got) {
				t.Fatalf("counted %d retries, allowed %d", retries, got)
			}
		})
	}
}

// The window slides: a burst of requests stops funding retries once it is older
// than the window, and a spent budget comes back.
func TestRetryBudgetSlides(t *testing.T) {
	r := NewRetryBudget(RetryBudgetConfig{Ratio: 0.5, MinPerSecond: -1, Window: 3 * time.Second})
	for range 10 {
		r.RecordRequest(t0)
	}
	for range 5 {
		if !r.TryRetry(t0 + 2*sec) {
			t.Fatal("retry within budget refused")
		}
	}
	if r.TryRetry(t0 + 2*sec) {
		t.Fatal("retry over budget allowed")
	}
	// At t0+3 s the t0 bucket is out: no requests fund retries any more.
	if r.TryRetry(t0 + 3*sec) {
		t.Fatal("requests older than the window still fund retries")
	}
	for range 4 {
		r.RecordRequest(t0 + 5*sec)
	}
	// 0.5 × 4 = 2 retries, and no third.
	for i, want := range []bool{true, true, false} {
		if got := r.TryRetry(t0 + 5*sec); got != want {
			t.Fatalf("retry %d on fresh requests = %v, want %v", i+1, got, want)
		}
	}
}

// Under a total outage every request fails and wants every retry; the budget holds
// retries to ratio × requests whatever the loops do.
func TestRetryBudgetCapsStormConcurrently(t *testing.T) {
	r := NewRetryBudget(RetryBudgetConfig{Ratio: 0.2, MinPerSecond: -1, Window: 10 * time.Second})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	const loops, perLoop = 4, 5000
	for range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perLoop {
				now := t0 + int64(i)*int64(time.Millisecond) // 5 s of traffic
				r.RecordRequest(now)
				for range 3 { // up to three retries each
					if r.TryRetry(now) {
						allowed.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	limit := int64(0.2*loops*perLoop) + loops // overshoot bounded by the loop count
	if a := allowed.Load(); a > limit || a < limit-2*loops {
		t.Fatalf("%d retries allowed for %d requests; want about %d", a, loops*perLoop, limit-loops)
	}
}
