package push

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestRateLimiter(t *testing.T) {
	type step struct {
		advance time.Duration
		id      string
		ok      bool
		retry   time.Duration
	}
	tests := []struct {
		name  string
		rate  float64
		burst int
		steps []step
	}{
		{"burst then refill", 10, 3, []step{
			{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0},
			{0, "a", false, 100 * time.Millisecond},
			{40 * time.Millisecond, "a", false, 60 * time.Millisecond},
			{60 * time.Millisecond, "a", true, 0},
			{0, "a", false, 100 * time.Millisecond},
		}},
		{"ids are independent", 1, 1, []step{
			{0, "a", true, 0}, {0, "a", false, time.Second}, {0, "b", true, 0}, {0, "b", false, time.Second},
		}},
		{"idle refills only up to burst", 100, 2, []step{
			{0, "a", true, 0}, {time.Hour, "a", true, 0}, {0, "a", true, 0}, {0, "a", false, 10 * time.Millisecond},
		}},
		{"steady rate at the limit", 2, 1, []step{
			{0, "a", true, 0}, {500 * time.Millisecond, "a", true, 0}, {500 * time.Millisecond, "a", true, 0}, {499 * time.Millisecond, "a", false, time.Millisecond},
		}},
		{"zero rate means no limit", 0, 1, []step{
			{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var clk fakeClock
			clk.advance(time.Hour) // not at zero
			l := NewRateLimiter(tc.rate, tc.burst, clk.now)
			for i, s := range tc.steps {
				clk.advance(s.advance)
				ok, retry := l.Allow(s.id)
				if ok != s.ok || retry != s.retry {
					t.Fatalf("step %d: Allow(%q) = %v, %v; want %v, %v", i, s.id, ok, retry, s.ok, s.retry)
				}
			}
		})
	}
}

func TestRateLimiterSweep(t *testing.T) {
	var clk fakeClock
	l := NewRateLimiter(10, 5, clk.now)
	l.Allow("a")
	l.Allow("b")
	for i := 0; i < 5; i++ {
		l.Allow("c")
	}
	if l.Len() != 3 {
		t.Fatalf("%d buckets", l.Len())
	}
	clk.advance(100 * time.Millisecond) // a and b are full again, c is not
	if n := l.Sweep(); n != 1 {
		t.Fatalf("%d buckets after sweep", n)
	}
	clk.advance(time.Second)
	if n := l.Sweep(); n != 0 {
		t.Fatalf("%d buckets after the second sweep", n)
	}
}

// TestRateLimiterConcurrent checks that concurrent callers never get more than
// the burst at one instant.
func TestRateLimiterConcurrent(t *testing.T) {
	var clk fakeClock
	l := NewRateLimiter(1, 50, clk.now)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if ok, _ := l.Allow("hot"); ok {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 50 {
		t.Fatalf("%d allowed, want exactly the burst of 50", allowed.Load())
	}
}

func TestAllowNoAllocs(t *testing.T) {
	var clk fakeClock
	l := NewRateLimiter(1e9, 1, clk.now)
	l.Allow("user:1")
	if a := testing.AllocsPerRun(100, func() { clk.advance(time.Second); l.Allow("user:1") }); a != 0 {
		t.Fatalf("Allow allocates %.1f times", a)
	}
}
