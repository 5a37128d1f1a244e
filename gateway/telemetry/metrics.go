package telemetry

import (
	"slices"
	"sync"
	"sync/atomic"

	"gozer/filters"
)

// Metrics holds the per-request metrics of the node (requests by origin,
// status cause and status class; attempts and retries; the request and
// origin latency histograms), recorded on the request path and read by GET
// /metrics and the dashboard.
//
// Why per-loop shards and not a metrics library's types on the request path:
// the hot-path operation (one latency observation and one counter add per
// request) was measured in this package's BenchmarkHotPath (bench_test.go;
// the table is in docs/ADMIN.md, "What the request path pays"). Of the two
// libraries, VictoriaMetrics/metrics v1.45.0 costs the request path less than
// prometheus/client_golang v1.25.0: 19.3 vs 32.6 ns single-threaded, 50 vs
// 270 ns with two loops in parallel (client_golang's histogram makes several
// atomic adds on lines every loop writes; VictoriaMetrics' is a short mutex),
// and both add a lookup per request (54 and 111 ns) for a series whose origin
// is known only at run time, unless the caller caches it. A LoopMetrics shard
// costs the same as VictoriaMetrics single-threaded (19.1 ns, lookup by origin
// name included) and is the only one that scales with loops (9.5 ns in
// parallel: each loop writes its own cache lines with plain atomic loads and
// stores). So the request path uses neither library, and the exposition (off
// the request path, at scrape time) is prometheus/client_golang's: a
// collector of const metrics built from these shards and the admin API's
// atomics, its Go runtime and process collectors, content negotiation (text,
// OpenMetrics, protobuf); with VictoriaMetrics/metrics the histograms with
// Prometheus' le buckets would be written by hand (gateway/admin/metrics.go).
//
// Concurrency: a Metrics is safe for any goroutine. Each event loop records
// through its own LoopMetrics (NewLoop), on that loop's goroutine only; every
// counter of a shard has one writer (its loop), which adds with an atomic load
// and store (no read-modify-write, no shared cache line), and readers
// (Snapshot, Latency) sum the shards of every loop with atomic loads. A read
// is not a consistent cut across counters: a request being recorded may show
// in one counter and not yet in the next. Origins are looked up by name and
// created on first use, so origins added at run time need nothing;
// DeleteOrigin forgets a removed one.
type Metrics struct {
	mu      sync.Mutex
	origins map[string][]*originShard // every loop's shard of each origin
	// gen changes when an origin is deleted: loops then drop their cached
	// shards and look origins up again.
	gen atomic.Uint64
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{origins: map[string][]*originShard{}}
}

// LatencyBuckets are the upper bounds, in seconds, of the latency
// histograms' buckets (the last bucket, +Inf, is implicit).
var LatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// NumBuckets is len(LatencyBuckets) + 1 (the +Inf bucket).
const NumBuckets = 17

// bucketNs are LatencyBuckets in nanoseconds.
var bucketNs = func() [NumBuckets - 1]int64 {
	var b [NumBuckets - 1]int64
	for i, s := range LatencyBuckets {
		b[i] = int64(s*1e9 + 0.5)
	}
	return b
}()

// StatusClasses are the values of the status-class label, indexed by
// StatusClass.
var StatusClasses = [numClasses]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

const numClasses = 6

// StatusClass is the index in StatusClasses of an HTTP status (0, or out of
// range: "none", no status was sent).
func StatusClass(status int) int {
	if status >= 100 && status < 600 {
		return status / 100
	}
	return 0
}

var numCauses = len(filters.Causes())

// originShard is one loop's counters of one origin. One writer (the loop).
type originShard struct {
	requests []atomic.Uint64 // [cause*numClasses + class]
	attempts atomic.Uint64
	retries  atomic.Uint64
	total    histogram // the whole request
	atOrigin histogram // from admission to its origin to the request's end
}

// histogram counts observations per bucket (not cumulative) and their sum.
type histogram struct {
	buckets [NumBuckets]atomic.Uint64
	sumNs   atomic.Uint64
}

// observe records ns; one writer.
func (h *histogram) observe(ns int64) {
	if ns < 0 {
		ns = 0
	}
	i := 0
	for i < len(bucketNs) && ns > bucketNs[i] {
		i++
	}
	inc(&h.buckets[i], 1)
	inc(&h.sumNs, uint64(ns))
}

// inc adds n to a counter that has one writer: an atomic load and store, which
// on amd64 and arm64 are plain moves (no locked instruction).
func inc(c *atomic.Uint64, n uint64) { c.Store(c.Load() + n) }

// LoopMetrics is one event loop's shard of Metrics. Loop goroutine only
// (nil-safe: a nil *LoopMetrics records nothing, which is metrics off).
type LoopMetrics struct {
	m        *Metrics
	gen      uint64
	origins  map[string]*originShard
	lastName string
	last     *originShard
}

// NewLoop returns the shard for one event loop; call it once per loop.
// Nil-safe: a nil Metrics returns a nil LoopMetrics.
func (m *Metrics) NewLoop() *LoopMetrics {
	if m == nil {
		return nil
	}
	return &LoopMetrics{m: m, gen: m.gen.Load(), origins: map[string]*originShard{}}
}

// Request records one finished request of originName (NoOrigin when it had
// none): its status cause (index in filters.Causes), the status the client
// got (0: none), its duration (ns), its time at the origin (ns; negative when
// it was never admitted to one) and its attempts (retries are those past the
// first).
func (lm *LoopMetrics) Request(originName string, cause, status int, dur, atOrigin int64, attempts int) {
	if lm == nil {
		return
	}
	s := lm.shard(originName)
	if cause >= 0 && cause < numCauses {
		inc(&s.requests[cause*numClasses+StatusClass(status)], 1)
	}
	if attempts > 0 {
		inc(&s.attempts, uint64(attempts))
		if attempts > 1 {
			inc(&s.retries, uint64(attempts-1))
		}
	}
	s.total.observe(dur)
	if atOrigin >= 0 {
		s.atOrigin.observe(atOrigin)
	}
}

// shard returns this loop's shard of originName, made on first use.
func (lm *LoopMetrics) shard(name string) *originShard {
	if g := lm.m.gen.Load(); g != lm.gen {
		lm.gen = g
		clear(lm.origins)
		lm.last, lm.lastName = nil, ""
	}
	if lm.last != nil && lm.lastName == name {
		return lm.last
	}
	s := lm.origins[name]
	if s == nil {
		s = &originShard{requests: make([]atomic.Uint64, numCauses*numClasses)}
		lm.m.mu.Lock()
		lm.m.origins[name] = append(lm.m.origins[name], s)
		lm.m.mu.Unlock()
		lm.origins[name] = s
	}
	lm.last, lm.lastName = s, name
	return s
}

// DeleteOrigin forgets originName's counters (an origin a reload removed,
// once its requests finished): its series leave GET /metrics. A request of it
// that finishes later counts it anew, from zero. Any goroutine.
func (m *Metrics) DeleteOrigin(originName string) {
	m.mu.Lock()
	delete(m.origins, originName)
	m.gen.Add(1)
	m.mu.Unlock()
}

// RequestCount is the number of requests of one status cause and status class.
type RequestCount struct {
	Cause string // filters.Cause.Name
	Class string // one of StatusClasses
	N     uint64
}

// OriginStats is one origin's metrics summed over the loops, since start.
type OriginStats struct {
	Origin   string         // NoOrigin: requests that never had one
	Requests []RequestCount // non-zero counts only, by cause then class
	Attempts uint64         // attempts made at its servers, retries included
	Retries  uint64         // attempts past the first
	Duration Histogram      // the whole request
	// AtOrigin is the time of admitted requests from their admission to the
	// origin (before the first attempt) to their end.
	AtOrigin Histogram
}

// Histogram is a latency histogram since start: Buckets[i] counts the
// observations in (LatencyBuckets[i-1], LatencyBuckets[i]] (not cumulative;
// the last is above every bound), Sum is their total in seconds.
type Histogram struct {
	Buckets [NumBuckets]uint64
	Sum     float64
}

// Snapshot sums every loop's shards: the metrics of every origin seen since
// start (or since DeleteOrigin), sorted by origin name. Any goroutine.
func (m *Metrics) Snapshot() []OriginStats {
	m.mu.Lock()
	names := make([]string, 0, len(m.origins))
	for name := range m.origins {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]OriginStats, 0, len(names))
	causes := filters.Causes()
	for _, name := range names {
		st := OriginStats{Origin: name}
		sum := make([]uint64, numCauses*numClasses)
		for _, s := range m.origins[name] {
			for i := range s.requests {
				sum[i] += s.requests[i].Load()
			}
			st.Attempts += s.attempts.Load()
			st.Retries += s.retries.Load()
			s.total.addTo(&st.Duration)
			s.atOrigin.addTo(&st.AtOrigin)
		}
		for i, n := range sum {
			if n > 0 {
				st.Requests = append(st.Requests, RequestCount{Cause: causes[i/numClasses].Name, Class: StatusClasses[i%numClasses], N: n})
			}
		}
		out = append(out, st)
	}
	m.mu.Unlock()
	return out
}

// Latency returns originName's request and at-origin latency histograms since
// start, summed over the loops; ok is false for an origin with no request
// yet. For a recent window, keep the previous answer and use Sub, then
// Quantile:
//
//	total, _, _ := m.Latency("api") // every second
//	p99 := total.Sub(prev).Quantile(0.99)
//
// Any goroutine.
func (m *Metrics) Latency(originName string) (total, atOrigin Histogram, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	shards, ok := m.origins[originName]
	for _, s := range shards {
		s.total.addTo(&total)
		s.atOrigin.addTo(&atOrigin)
	}
	return total, atOrigin, ok
}

// addTo adds h's counts to dst.
func (h *histogram) addTo(dst *Histogram) {
	for i := range h.buckets {
		dst.Buckets[i] += h.buckets[i].Load()
	}
	dst.Sum += float64(h.sumNs.Load()) / 1e9
}
