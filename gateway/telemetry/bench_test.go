package telemetry

import (
	"sync/atomic"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkHotPath measures what the request path pays per request for its
// metrics, three ways: the operation is one latency observation and one
// counter add (the per-request minimum), single goroutine and RunParallel
// (every goroutine a loop). The numbers behind Metrics' choice are in
// docs/ADMIN.md § Cost; rerun with
//
//	go test -run '^$' -bench HotPath -benchtime 2s ./gateway/telemetry/
//
// "prom" is prometheus/client_golang (children resolved once, as a request
// path would cache them; "prom-labels" looks them up by label values per
// request, which a dynamic origin set needs without a cache), "vm" is
// VictoriaMetrics/metrics (likewise "vm-lookup" by name per request), "shard"
// is this package's LoopMetrics (one shard per goroutine, as per loop), and
// "shard-request" the whole of LoopMetrics.Request (two histograms, the
// cause counter, attempts).
func BenchmarkHotPath(b *testing.B) {
	const durNs = 1_234_567
	const dur = float64(durNs) / 1e9

	b.Run("prom", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "d_seconds", Buckets: LatencyBuckets}, []string{"origin"})
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r_total"}, []string{"origin", "cause", "code"})
		reg.MustRegister(hv, cv)
		h, c := hv.WithLabelValues("api"), cv.WithLabelValues("api", "SUCCESS", "2xx")
		run(b, func() func() { return func() { h.Observe(dur); c.Inc() } })
	})
	b.Run("prom-labels", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "d_seconds", Buckets: LatencyBuckets}, []string{"origin"})
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r_total"}, []string{"origin", "cause", "code"})
		reg.MustRegister(hv, cv)
		run(b, func() func() {
			return func() {
				hv.WithLabelValues("api").Observe(dur)
				cv.WithLabelValues("api", "SUCCESS", "2xx").Inc()
			}
		})
	})
	b.Run("vm", func(b *testing.B) {
		s := vm.NewSet()
		h := s.NewPrometheusHistogramExt(`d_seconds{origin="api"}`, LatencyBuckets)
		c := s.NewCounter(`r_total{origin="api",cause="SUCCESS",code="2xx"}`)
		run(b, func() func() { return func() { h.Update(dur); c.Inc() } })
	})
	b.Run("vm-lookup", func(b *testing.B) {
		s := vm.NewSet()
		run(b, func() func() {
			return func() {
				s.GetOrCreatePrometheusHistogramExt(`d_seconds{origin="api"}`, LatencyBuckets).Update(dur)
				s.GetOrCreateCounter(`r_total{origin="api",cause="SUCCESS",code="2xx"}`).Inc()
			}
		})
	})
	b.Run("shard", func(b *testing.B) {
		m := NewMetrics()
		run(b, func() func() {
			lm := m.NewLoop()
			return func() {
				s := lm.shard("api")
				s.total.observe(durNs)
				inc(&s.requests[2], 1)
			}
		})
	})
	b.Run("shard-request", func(b *testing.B) {
		m := NewMetrics()
		run(b, func() func() {
			lm := m.NewLoop()
			return func() { lm.Request("api", 0, 200, durNs, durNs-100_000, 1) }
		})
	})
}

// run benchmarks the op that mk makes (once per goroutine) single-threaded
// ("serial") and from every GOMAXPROCS goroutine ("parallel").
func run(b *testing.B, mk func() func()) {
	b.Run("serial", func(b *testing.B) {
		op := mk()
		b.ReportAllocs()
		for b.Loop() {
			op()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			op := mk()
			for pb.Next() {
				op()
			}
		})
	})
}

// BenchmarkRequestCost is everything metrics on adds to one proxied request,
// besides GET /metrics' scrape: LoopMetrics.Request, and the busy share's
// work at the end of each outermost loop callback (gateway/loop.Loop.Leave;
// a keep-alive request takes about two: the client's bytes, the origin's): a
// random draw, and one time in loop.BusySample (8) a clock read. "clock" is
// that clock read alone (time.Now), what timing every callback would cost.
func BenchmarkRequestCost(b *testing.B) {
	b.Run("request", func(b *testing.B) {
		m := NewMetrics()
		lm := m.NewLoop()
		var busy atomic.Int64
		var rnd uint32 = 1
		entered := time.Now().UnixNano()
		b.ReportAllocs()
		for b.Loop() {
			lm.Request("api", 0, 200, 1_234_567, 1_134_567, 1)
			for range 2 {
				rnd ^= rnd << 13
				rnd ^= rnd >> 17
				rnd ^= rnd << 5
				if rnd%8 == 0 {
					busy.Store(busy.Load() + 8*(time.Now().UnixNano()-entered))
				}
			}
		}
	})
	b.Run("clock", func(b *testing.B) {
		var sink int64
		for b.Loop() {
			sink += time.Now().UnixNano()
		}
		_ = sink
	})
}
