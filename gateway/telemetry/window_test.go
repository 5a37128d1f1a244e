package telemetry

import (
	"testing"
	"time"
)

// TestLatencyWindow: quantiles over the requests of the last window only,
// with a clock the test moves.
func TestLatencyWindow(t *testing.T) {
	m := NewMetrics()
	lm := m.NewLoop()
	clock := time.Unix(1000, 0)
	w := NewLatencyWindow(m, 5*time.Second)
	w.now = func() time.Time { return clock }

	if _, _, ok := w.Quantiles("api"); ok {
		t.Fatal("an origin without requests has quantiles")
	}
	// Slow requests first: 100 at the origin for 400 ms.
	for i := 0; i < 100; i++ {
		lm.Request("api", 0, 200, 401e6, 400e6, 1)
	}
	for _, c := range []struct {
		step     time.Duration
		fast     int // requests of 2 ms at the origin before this call
		p50, p99 time.Duration
		ok       bool
	}{
		// The first call: since start, the slow ones. (0.25 s, 0.5 s] bucket.
		{0, 0, 375 * time.Millisecond, 497500 * time.Microsecond, true},
		// Nothing new within the window: no answer.
		{time.Second, 0, 0, 0, false},
		// Fast ones now: the window's base is the first call's sample.
		{time.Second, 100, 1750 * time.Microsecond, 2485 * time.Microsecond, true},
		{time.Second, 0, 1750 * time.Microsecond, 2485 * time.Microsecond, true},
		// 6 s after the fast ones the window has none left.
		{6 * time.Second, 0, 0, 0, false},
	} {
		clock = clock.Add(c.step)
		for i := 0; i < c.fast; i++ {
			lm.Request("api", 0, 200, 3e6, 2e6, 1)
		}
		p50, p99, ok := w.Quantiles("api")
		if ok != c.ok || (ok && (absDiff(p50, c.p50) > time.Microsecond || absDiff(p99, c.p99) > time.Microsecond)) {
			t.Errorf("at +%v: p50 %v, p99 %v, ok %v; want %v, %v, %v", clock.Sub(time.Unix(1000, 0)), p50, p99, ok, c.p50, c.p99, c.ok)
		}
	}
	m.DeleteOrigin("api")
	if _, _, ok := w.Quantiles("api"); ok || len(w.kept) != 0 {
		t.Errorf("a deleted origin: ok %v, kept %d; want nothing", ok, len(w.kept))
	}
}

func absDiff(a, b time.Duration) time.Duration {
	if a > b {
		return a - b
	}
	return b - a
}
