package admin

import (
	"encoding/json"
	"math"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	metricCollector "github.com/afex/hystrix-go/hystrix/metric_collector"

	"gozer/filters/lua"
	"gozer/gateway/origin"
)

func fptr(v float64) *float64 { return &v }

func sameF(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) < 1e-9
}

// TestDiffOrigin checks the rate and error-share math of one origin's card
// over one interval, and the status it gets.
func TestDiffOrigin(t *testing.T) {
	t0 := time.Unix(1000, 0)
	open := origin.BreakerStats{State: origin.Opened} // the zero BreakerStats is closed
	cases := []struct {
		name       string
		prev, cur  rawOrigin
		dt         time.Duration
		rate       float64
		errShare   *float64
		retryRate  float64
		refused    float64
		status     string
		latencyP99 *float64
	}{
		{name: "idle", prev: rawOrigin{Requests: 10}, cur: rawOrigin{Requests: 10, Servers: 1, Avail: 1},
			dt: time.Second, status: statusOK},
		{name: "healthy", prev: rawOrigin{Requests: 100}, cur: rawOrigin{Requests: 150, Servers: 2, Avail: 2},
			dt: time.Second, rate: 50, errShare: fptr(0), status: statusOK},
		{name: "half a second", prev: rawOrigin{Requests: 0}, cur: rawOrigin{Requests: 10, Servers: 1, Avail: 1},
			dt: 500 * time.Millisecond, rate: 20, errShare: fptr(0), status: statusOK},
		{name: "some errors", prev: rawOrigin{Requests: 100, Errors: 10}, cur: rawOrigin{Requests: 200, Errors: 20, Servers: 1, Avail: 1},
			dt: 2 * time.Second, rate: 50, errShare: fptr(0.1), status: statusWarn},
		{name: "mostly failing", prev: rawOrigin{Requests: 0}, cur: rawOrigin{Requests: 10, Errors: 6, Servers: 1, Avail: 1},
			dt: time.Second, rate: 10, errShare: fptr(0.6), status: statusSick},
		{name: "breaker open, no traffic", prev: rawOrigin{Requests: 5}, cur: rawOrigin{Requests: 5, Breaker: open, Servers: 1, Avail: 1},
			dt: time.Second, status: statusSick},
		{name: "breaker disabled", prev: rawOrigin{Requests: 5}, cur: rawOrigin{Requests: 15, NoBreak: true, Servers: 1, Avail: 1},
			dt: time.Second, rate: 10, errShare: fptr(0), status: statusOK},
		{name: "no server available", cur: rawOrigin{Servers: 2, Avail: 0, Ejected: 2},
			dt: time.Second, status: statusSick},
		{name: "counter reset by a reload", prev: rawOrigin{Requests: 1000, Errors: 10}, cur: rawOrigin{Requests: 30, Errors: 3, Servers: 1, Avail: 1},
			dt: time.Second, rate: 30, errShare: fptr(0.1), status: statusWarn},
		{name: "retries and refusals", prev: rawOrigin{Requests: 10, Retries: 4, Refused: 1}, cur: rawOrigin{Requests: 20, Retries: 8, Refused: 3, Servers: 1, Avail: 1},
			dt: time.Second, rate: 10, errShare: fptr(0), retryRate: 4, refused: 2, status: statusWarn},
		{name: "bulkhead nearly full", cur: rawOrigin{InFlight: 9, Max: 10, Servers: 1, Avail: 1},
			dt: time.Second, status: statusWarn},
		{name: "latency known", cur: rawOrigin{Servers: 1, Avail: 1, Latency: true, P50: time.Millisecond, P99: 25 * time.Millisecond},
			dt: time.Second, status: statusOK, latencyP99: fptr(25)},
		{name: "no interval", prev: rawOrigin{Requests: 0}, cur: rawOrigin{Requests: 10, Servers: 1, Avail: 1},
			dt: 0, rate: 0, errShare: fptr(0), status: statusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prev := rawSample{At: t0, Origins: []rawOrigin{c.prev}}
			cur := rawSample{At: t0.Add(c.dt), Origins: []rawOrigin{c.cur}}
			prev.Origins[0].Name, cur.Origins[0].Name = "o", "o"
			ev := diffSamples(&prev, &cur)
			d := ev.Origins[0]
			if math.Abs(d.Rate-c.rate) > 1e-9 || !sameF(d.ErrorShare, c.errShare) {
				t.Errorf("rate %v, error share %v; want %v, %v", d.Rate, deref(d.ErrorShare), c.rate, deref(c.errShare))
			}
			if d.RetryRate != c.retryRate || d.RefusedRate != c.refused {
				t.Errorf("retries/s %v, refused/s %v; want %v, %v", d.RetryRate, d.RefusedRate, c.retryRate, c.refused)
			}
			if d.Status != c.status {
				t.Errorf("status %q; want %q", d.Status, c.status)
			}
			if !sameF(d.P99, c.latencyP99) {
				t.Errorf("p99 %v; want %v", deref(d.P99), deref(c.latencyP99))
			}
		})
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestDiffSamples checks the event as a whole: the sort (sick first, then by
// name), the first interval's zero rates, origins added by a reload, push and
// filter rates.
func TestDiffSamples(t *testing.T) {
	t0 := time.Unix(1000, 0)
	org := func(name string, reqs, errs int64, st origin.BreakerState) rawOrigin {
		return rawOrigin{Name: name, Requests: reqs, Errors: errs, Breaker: origin.BreakerStats{State: st}, Servers: 1, Avail: 1}
	}
	prev := rawSample{At: t0,
		Origins: []rawOrigin{org("api", 100, 0, origin.Closed), org("zeta", 10, 0, origin.Closed), org("bad", 50, 50, origin.Closed)},
		Push:    rawPush{Connections: 3, Sent: 100},
		Filters: []lua.FilterStatus{{Name: "routes", File: "in/routes.lua", Calls: 100, Errors: 1, TotalTimeUS: 500}},
	}
	cur := rawSample{At: t0.Add(2 * time.Second),
		Origins: []rawOrigin{org("api", 300, 0, origin.Closed), org("zeta", 10, 0, origin.Closed), org("bad", 50, 50, origin.Opened), org("new", 8, 0, origin.Closed)},
		Push:    rawPush{Connections: 5, Sent: 140},
		Filters: []lua.FilterStatus{{Name: "routes", File: "in/routes.lua", Calls: 300, Errors: 5, TotalTimeUS: 1500}, {Name: "fresh", File: "out/fresh.lua"}},
	}
	ev := diffSamples(&prev, &cur)
	var names []string
	for _, o := range ev.Origins {
		names = append(names, o.Name+":"+o.Status)
	}
	if got, want := names, []string{"bad:sick", "api:ok", "new:ok", "zeta:ok"}; !slices.Equal(got, want) {
		t.Errorf("order %v; want %v", got, want)
	}
	if ev.Origins[1].Rate != 100 || ev.Origins[2].Rate != 4 {
		t.Errorf("api %v/s, new %v/s; want 100, 4 (a new origin counts from zero)", ev.Origins[1].Rate, ev.Origins[2].Rate)
	}
	if ev.Sick != 1 || ev.Breakers["open"] != 1 || ev.Breakers["closed"] != 3 {
		t.Errorf("sick %d, breakers %v", ev.Sick, ev.Breakers)
	}
	if ev.Push.Connections != 5 || ev.Push.Rate != 20 {
		t.Errorf("push %+v; want 5 connections, 20 msg/s", ev.Push)
	}
	f := ev.Filters[0]
	if f.CallRate != 100 || f.ErrorRate != 2 || !sameF(f.MeanUS, fptr(5)) {
		t.Errorf("filter %+v; want 100 calls/s, 2 errors/s, 5 µs/call", f)
	}
	if ev.Filters[1].MeanUS != nil || ev.Filters[1].CallRate != 0 {
		t.Errorf("idle filter %+v; want no mean, 0 calls/s", ev.Filters[1])
	}

	// The first interval: no previous sample, rates 0 rather than the
	// counters' history.
	first := diffSamples(&rawSample{}, &cur)
	for _, o := range first.Origins {
		if o.Rate != 0 || o.ErrorShare != nil {
			t.Errorf("first event: %s rate %v, error share %v; want 0, null", o.Name, o.Rate, deref(o.ErrorShare))
		}
	}
	if first.Push.Rate != 0 || first.Filters[0].CallRate != 0 {
		t.Errorf("first event: push %v/s, filter %v/s; want 0", first.Push.Rate, first.Filters[0].CallRate)
	}
	// Nulls stay nulls in JSON, and an event without origins has a list.
	b, _ := json.Marshal(diffSamples(&prev, &rawSample{At: t0.Add(time.Second)}))
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["origins"] == nil {
		t.Errorf("empty event %s: origins must be a list", b)
	}
}

// TestSamplerLifecycle: the goroutine runs only while a stream is
// subscribed, every subscriber gets the same events, the cap holds, and Close
// ends everything without a leaked goroutine.
func TestSamplerLifecycle(t *testing.T) {
	var n atomic.Int64
	collect := func(now time.Time) rawSample {
		k := n.Add(1)
		return rawSample{At: now, Origins: []rawOrigin{{Name: "o", Requests: k * 10, Servers: 1, Avail: 1}}}
	}
	base := runtime.NumGoroutine()
	s := newSampler(collect, 5*time.Millisecond)
	a, _, cancelA, err := s.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	b, _, cancelB, err := s.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	evA, evB := <-a, <-b
	var ea dashEvent
	if err := json.Unmarshal(evA, &ea); err != nil || len(ea.Origins) != 1 || ea.Origins[0].Rate <= 0 {
		t.Fatalf("event %s (%v): want one origin with a rate", evA, err)
	}
	_ = evB
	// The cap.
	var cancels []func()
	for i := 2; i < maxDashboardStreams; i++ {
		_, _, c, err := s.Subscribe()
		if err != nil {
			t.Fatalf("subscriber %d refused: %v", i+1, err)
		}
		cancels = append(cancels, c)
	}
	if _, _, _, err := s.Subscribe(); err != errTooManyStreams {
		t.Fatalf("subscriber %d: %v; want %v", maxDashboardStreams+1, err, errTooManyStreams)
	}
	for _, c := range cancels {
		c()
	}
	cancelA()
	cancelB()
	cancelB() // twice is harmless
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		running := s.running
		s.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sampler still runs 5 s after its last subscriber left")
		}
		runtime.Gosched()
	}
	// Again, then Close while subscribed.
	c, last, _, err := s.Subscribe()
	if err != nil || last != nil {
		t.Fatalf("resubscribe: last %s, %v; want no stale event", last, err)
	}
	<-c
	s.Close()
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed by Close")
	}
	if _, _, _, err := s.Subscribe(); err != errSamplerClosed {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	s.Close() // twice is harmless
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > base; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close; %d before", runtime.NumGoroutine(), base)
		}
		runtime.Gosched()
	}
}

// TestSampledLatency: quantiles by nearest rank over the window; old
// samples age out.
func TestSampledLatency(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newSampledLatency(func() time.Time { return now })
	if _, _, ok := s.Quantiles("api"); ok {
		t.Fatal("quantiles of an unknown origin")
	}
	r := s.ring("api")
	for i := 1; i <= 100; i++ {
		r.Update(metricResult(time.Duration(i) * time.Millisecond))
	}
	p50, p99, ok := s.Quantiles("api")
	if !ok || p50 != 50*time.Millisecond || p99 != 99*time.Millisecond {
		t.Errorf("p50 %v, p99 %v, %v; want 50ms, 99ms", p50, p99, ok)
	}
	now = now.Add(latencyWindow + time.Second)
	if _, _, ok := s.Quantiles("api"); ok {
		t.Error("samples older than the window still count")
	}
	for i := 0; i < 2*latencyRingSize; i++ { // the ring keeps the newest
		r.Update(metricResult(time.Second))
	}
	if p50, p99, _ := s.Quantiles("api"); p50 != time.Second || p99 != time.Second {
		t.Errorf("after wrapping: p50 %v, p99 %v; want 1s", p50, p99)
	}
}

func metricResult(d time.Duration) metricCollector.MetricResult {
	return metricCollector.MetricResult{RunDuration: d}
}
