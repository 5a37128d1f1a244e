package admin

import (
	"math"
	"slices"
	"sync"
	"time"

	metricCollector "github.com/afex/hystrix-go/hystrix/metric_collector"
)

// The dashboard's stand-alone latency: the outcomes that each origin's
// breaker already mirrors into hystrix-go (origin.Breaker.mirror: at most one
// per millisecond per origin, the request's time from admission to its end)
// reach a hystrix metric collector, which keeps the last few hundred per
// origin. Nothing is added to the request path. An origin whose breaker is
// off mirrors nothing: its latency shows as "–". A LatencySource from real
// per-origin histograms (Prometheus metrics) replaces it in Sources.Latency.

const (
	// latencyRingSize bounds the durations kept per origin.
	latencyRingSize = 512
	// latencyWindow is how far back Quantiles looks.
	latencyWindow = 5 * time.Second
)

// SampledLatency is a LatencySource over the breakers' hystrix samples.
// Concurrency: hystrix-go's metric goroutines call the collectors, the
// dashboard's sampler calls Quantiles; one mutex per origin.
type SampledLatency struct {
	mu       sync.Mutex
	byOrigin map[string]*latencyRing
	now      func() time.Time
}

var (
	hystrixLatency     *SampledLatency
	hystrixLatencyOnce sync.Once
)

// HystrixLatency returns the process's SampledLatency, registering it with
// hystrix-go's collectors on the first call: call it before the origins'
// breakers are built, or their circuits will not report to it.
func HystrixLatency() *SampledLatency {
	hystrixLatencyOnce.Do(func() {
		hystrixLatency = newSampledLatency(time.Now)
		metricCollector.Registry.Register(func(name string) metricCollector.MetricCollector {
			return hystrixLatency.ring(name)
		})
	})
	return hystrixLatency
}

func newSampledLatency(now func() time.Time) *SampledLatency {
	return &SampledLatency{byOrigin: map[string]*latencyRing{}, now: now}
}

// ring is origin's ring, made on first use.
func (s *SampledLatency) ring(origin string) *latencyRing {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.byOrigin[origin]
	if r == nil {
		r = &latencyRing{now: s.now}
		s.byOrigin[origin] = r
	}
	return r
}

// Quantiles is the p50 and p99 of origin's samples of the last
// latencyWindow; ok is false without any.
func (s *SampledLatency) Quantiles(origin string) (p50, p99 time.Duration, ok bool) {
	s.mu.Lock()
	r := s.byOrigin[origin]
	s.mu.Unlock()
	if r == nil {
		return 0, 0, false
	}
	return r.quantiles(s.now().Add(-latencyWindow))
}

// latencyRing is the last latencyRingSize samples of one origin, a
// hystrix-go MetricCollector.
type latencyRing struct {
	mu   sync.Mutex
	at   [latencyRingSize]int64 // unix ns of each sample
	dur  [latencyRingSize]time.Duration
	next int
	now  func() time.Time
}

// Update takes one outcome from hystrix-go (successes, failures and
// timeouts alike: the time the request took).
func (r *latencyRing) Update(m metricCollector.MetricResult) {
	r.mu.Lock()
	r.at[r.next] = r.now().UnixNano()
	r.dur[r.next] = m.RunDuration
	r.next = (r.next + 1) % latencyRingSize
	r.mu.Unlock()
}

// Reset is hystrix-go's; the ring forgets by age instead.
func (r *latencyRing) Reset() {}

// quantiles is the p50 and p99 of the samples taken since since.
func (r *latencyRing) quantiles(since time.Time) (p50, p99 time.Duration, ok bool) {
	var buf [latencyRingSize]time.Duration
	d := buf[:0]
	cut := since.UnixNano()
	r.mu.Lock()
	for i := range r.at {
		if r.at[i] >= cut && r.at[i] != 0 {
			d = append(d, r.dur[i])
		}
	}
	r.mu.Unlock()
	if len(d) == 0 {
		return 0, 0, false
	}
	slices.Sort(d)
	return quantile(d, 0.50), quantile(d, 0.99), true
}

// quantile is the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank-1, 0), len(sorted)-1)]
}
