package telemetry

import (
	"math"
	"sync"
	"testing"

	"gozer/filters"
)

func TestStatusClass(t *testing.T) {
	for _, c := range []struct {
		status int
		want   string
	}{
		{0, "none"}, {99, "none"}, {100, "1xx"}, {200, "2xx"}, {304, "3xx"}, {404, "4xx"},
		{499, "4xx"}, {503, "5xx"}, {599, "5xx"}, {600, "none"}, {-1, "none"},
	} {
		if got := StatusClasses[StatusClass(c.status)]; got != c.want {
			t.Errorf("StatusClass(%d) = %s; want %s", c.status, got, c.want)
		}
	}
}

// TestHistogramBuckets: an observation lands in the first bucket whose bound
// it does not exceed (le), the +Inf bucket above the last.
func TestHistogramBuckets(t *testing.T) {
	for _, c := range []struct {
		ns     int64
		bucket int
	}{
		{-5, 0}, {0, 0}, {100_000, 0}, {100_001, 1}, {250_000, 1}, {999_999, 3}, {1_000_000, 3},
		{1_000_001, 4}, {10_000_000_000, 15}, {10_000_000_001, 16}, {math.MaxInt64, 16},
	} {
		var h histogram
		h.observe(c.ns)
		for i := range h.buckets {
			want := uint64(0)
			if i == c.bucket {
				want = 1
			}
			if got := h.buckets[i].Load(); got != want {
				t.Errorf("observe(%d ns): bucket %d = %d; want the observation in bucket %d", c.ns, i, got, c.bucket)
			}
		}
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	if q := h.Quantile(0.5); !math.IsNaN(q) {
		t.Errorf("empty histogram's p50 = %v; want NaN", q)
	}
	// 100 observations: 50 in (0.5ms, 1ms], 49 in (1ms, 2.5ms], 1 above 10 s.
	h.Buckets[3], h.Buckets[4], h.Buckets[16] = 50, 49, 1
	for _, c := range []struct{ q, want float64 }{
		{0, 0.0005},     // the lower bound of the first bucket with observations
		{0.25, 0.00075}, // halfway through (0.5ms, 1ms]
		{0.5, 0.001},
		{0.99, 0.0025},
		{1, 10}, // in +Inf: the highest finite bound
	} {
		if got := h.Quantile(c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Quantile(%v) = %v; want %v", c.q, got, c.want)
		}
	}
}

func TestSubAndCumulative(t *testing.T) {
	var prev, cur Histogram
	prev.Buckets[2], prev.Sum = 3, 1
	cur.Buckets[2], cur.Buckets[5], cur.Sum = 5, 4, 2.5
	d := cur.Sub(prev)
	if d.Buckets[2] != 2 || d.Buckets[5] != 4 || d.Count() != 6 || d.Sum != 1.5 {
		t.Errorf("Sub = %v (sum %v); want 2 in bucket 2, 4 in bucket 5, sum 1.5", d.Buckets, d.Sum)
	}
	// A histogram counted anew (the origin deleted) does not go negative.
	if z := prev.Sub(cur); z.Count() != 0 || z.Sum != 0 {
		t.Errorf("backwards Sub = %v; want empty", z)
	}
	cum := cur.Cumulative()
	if len(cum) != len(LatencyBuckets) || cum[1] != 0 || cum[2] != 5 || cum[4] != 5 || cum[5] != 9 || cum[len(cum)-1] != 9 {
		t.Errorf("Cumulative = %v", cum)
	}
}

// TestMetricsAcrossLoops: what several loops record sums per origin, by
// cause and class; the histograms count every request, the at-origin one only
// those admitted.
func TestMetricsAcrossLoops(t *testing.T) {
	m := NewMetrics()
	a, b := m.NewLoop(), m.NewLoop()
	success := filters.CauseIndex(filters.Success.Name)
	open := filters.CauseIndex(filters.LocalOriginCircuitOpen.Name)
	a.Request("api", success, 200, 2e6, 1e6, 1)
	b.Request("api", success, 200, 3e6, 2e6, 3) // two retries
	b.Request("api", open, 503, 1e4, -1, 0)     // refused by the breaker: never admitted
	a.Request(NoOrigin, filters.CauseIndex(filters.LocalNoRoute.Name), 404, 5e3, -1, 0)
	b.Request("api", -1, 200, 1, -1, 0) // an unknown cause: timed, not counted by cause

	snap := m.Snapshot()
	if len(snap) != 2 || snap[0].Origin != NoOrigin || snap[1].Origin != "api" {
		t.Fatalf("Snapshot origins = %+v; want \"\" then api", snap)
	}
	api := snap[1]
	want := []RequestCount{{"SUCCESS", "2xx", 2}, {"FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN", "5xx", 1}}
	if len(api.Requests) != len(want) {
		t.Fatalf("api requests = %+v; want %+v", api.Requests, want)
	}
	for i := range want {
		if api.Requests[i] != want[i] {
			t.Errorf("api requests[%d] = %+v; want %+v", i, api.Requests[i], want[i])
		}
	}
	if api.Attempts != 4 || api.Retries != 2 {
		t.Errorf("api attempts %d, retries %d; want 4, 2", api.Attempts, api.Retries)
	}
	if api.Duration.Count() != 4 || api.AtOrigin.Count() != 2 {
		t.Errorf("api histogram counts: duration %d, at origin %d; want 4, 2", api.Duration.Count(), api.AtOrigin.Count())
	}
	if math.Abs(api.AtOrigin.Sum-0.003) > 1e-12 {
		t.Errorf("api at-origin sum = %v; want 0.003", api.AtOrigin.Sum)
	}
	total, atOrigin, ok := m.Latency("api")
	if !ok || total != api.Duration || atOrigin != api.AtOrigin {
		t.Errorf("Latency(api) = %v, %v, %v; want the snapshot's", total, atOrigin, ok)
	}
	if _, _, ok := m.Latency("nope"); ok {
		t.Error("Latency of an origin never seen: ok")
	}
}

// TestDeleteOrigin: a deleted origin leaves the snapshot; loops that cached
// its shard count anew after it, from zero.
func TestDeleteOrigin(t *testing.T) {
	m := NewMetrics()
	lm := m.NewLoop()
	lm.Request("old", 0, 200, 1, 1, 1)
	lm.Request("kept", 0, 200, 1, 1, 1)
	m.DeleteOrigin("old")
	if snap := m.Snapshot(); len(snap) != 1 || snap[0].Origin != "kept" {
		t.Fatalf("after DeleteOrigin: %+v; want kept only", snap)
	}
	lm.Request("old", 0, 200, 1, 1, 1)
	snap := m.Snapshot()
	if len(snap) != 2 || snap[1].Origin != "old" || snap[1].Duration.Count() != 1 {
		t.Errorf("old counted anew: %+v; want one request", snap)
	}
	if snap[0].Duration.Count() != 1 {
		t.Errorf("kept: %d requests; want 1 (its shard survives another origin's deletion)", snap[0].Duration.Count())
	}
}

func TestMetricsOff(t *testing.T) {
	var m *Metrics
	lm := m.NewLoop()
	if lm != nil {
		t.Fatal("a nil Metrics gave a shard")
	}
	lm.Request("api", 0, 200, 1, 1, 1) // no panic
}

// TestMetricsConcurrent: loops recording while readers sum (run with -race):
// no race, and once the loops are done the sums are exact.
func TestMetricsConcurrent(t *testing.T) {
	m := NewMetrics()
	const loops, perLoop = 4, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
				m.Snapshot()
				m.Latency("api")
			}
		}
	}()
	for l := 0; l < loops; l++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lm := m.NewLoop()
			for i := 0; i < perLoop; i++ {
				lm.Request("api", 0, 200, int64(i)*1000, int64(i)*500, 1)
				if i%100 == 0 {
					lm.Request("other", 0, 502, 1, -1, 2)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	total, _, _ := m.Latency("api")
	if total.Count() != loops*perLoop {
		t.Errorf("api requests = %d; want %d", total.Count(), loops*perLoop)
	}
	for _, o := range m.Snapshot() {
		if o.Origin == "other" && (o.Retries != loops*perLoop/100 || o.Requests[0].Class != "5xx") {
			t.Errorf("other: %+v", o)
		}
	}
}
