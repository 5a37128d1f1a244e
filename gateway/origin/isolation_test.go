package origin

import (
	"fmt"
	"testing"
	"time"

	"gozer/gateway/config"
)

// isoSeq keeps hystrix command names unique across tests (its registry is global).
var isoSeq int

func testIsolation(t testing.TB, servers []string, mod func(*IsolationConfig)) *Isolation {
	t.Helper()
	cfg := DefaultIsolationConfig()
	cfg.Breaker.HystrixSample = -1
	if mod != nil {
		mod(&cfg)
	}
	isoSeq++
	iso, err := NewIsolation(fmt.Sprintf("test-iso-%d", isoSeq), servers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iso.Close)
	return iso
}

// The whole request path: admitted, picked, retried on another server after a
// failure, finished; every counter back to zero.
func TestIsolationRequestPath(t *testing.T) {
	iso := testIsolation(t, []string{"10.0.0.1:80", "10.0.0.2:80"}, func(c *IsolationConfig) {
		c.MaxConcurrentRequests = 1
		c.Outlier.ConsecutiveFailures = 1
		c.Outlier.MaxEjectionPercent = 50
	})
	rnd := NewRand(1)
	now := t0
	if v := iso.Admit(now); v != Admitted {
		t.Fatalf("Admit = %v", v)
	}
	if v := iso.Admit(now); v != RefusedConcurrency {
		t.Fatalf("second Admit over max_concurrent_requests 1 = %v", v)
	}
	first := iso.Pick(0, rnd.Uint32(), now)
	if first.Outstanding() != 1 {
		t.Fatal("Pick did not count the attempt")
	}
	iso.AttemptDone(first, false, now) // connect failure: ejected (threshold 1)
	if !iso.TryRetry(now) {
		t.Fatal("first retry refused by the budget's floor")
	}
	second := iso.Pick(first.Bit(), rnd.Uint32(), now)
	if second == first {
		t.Fatal("retry went to the same server")
	}
	iso.AttemptDone(second, true, now)
	iso.Finish(Success, now, now+1)
	if iso.Bulkhead.InFlight() != 0 || first.Outstanding() != 0 || second.Outstanding() != 0 {
		t.Fatal("counters not back to zero")
	}
	// The ejected server gets no traffic; the other one stays (50 % cap of 2 is 1).
	for range 50 {
		s := iso.Pick(0, rnd.Uint32(), now)
		if s == first {
			t.Fatal("picked the ejected server")
		}
		iso.AttemptDone(s, true, now)
	}
	if !iso.Healthy(now) || !iso.Usable(now) {
		t.Fatal("origin with one good server not usable")
	}
}

// Admit asks the bulkhead before the breaker: a full bulkhead must not swallow
// the half-open trial.
func TestIsolationAdmitKeepsTrial(t *testing.T) {
	iso := testIsolation(t, []string{"10.0.0.1:80"}, func(c *IsolationConfig) {
		c.MaxConcurrentRequests = 1
		c.Breaker.RequestVolumeThreshold = 1
		c.Breaker.SleepWindow = time.Second
	})
	now := t0
	if iso.Admit(now) != Admitted {
		t.Fatal("not admitted")
	}
	iso.Finish(Failure, now, now)
	if iso.Admit(now) != RefusedOpen {
		t.Fatal("open breaker admitted")
	}
	if iso.Bulkhead.InFlight() != 0 {
		t.Fatal("a breaker refusal kept its bulkhead slot")
	}
	now += sec
	iso.Bulkhead.TryAcquire() // someone else holds the only slot
	if iso.Admit(now) != RefusedConcurrency {
		t.Fatal("bulkhead full but admitted")
	}
	iso.Bulkhead.Release()
	if iso.Admit(now) != Admitted {
		t.Fatal("the trial was lost to the bulkhead refusal")
	}
	iso.Finish(Success, now, now)
	if iso.Breaker.Open() {
		t.Fatal("trial success did not close")
	}
}

func TestFailoverResolve(t *testing.T) {
	tab, err := NewTable(map[string]*config.Origin{
		"primary":  {Servers: []string{"127.0.0.1:1"}},
		"backup":   {Servers: []string{"127.0.0.1:2"}},
		"loop":     {Servers: []string{"127.0.0.1:3"}},
		"selfish":  {Servers: []string{"127.0.0.1:4"}},
		"orphaned": {Servers: []string{"127.0.0.1:5"}},
		"solo":     {Servers: []string{"127.0.0.1:6"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(n string) *Origin { o, _ := tab.Get(n); return o }
	get("primary").Fallback = "backup"
	get("backup").Fallback = "loop"
	get("loop").Fallback = "primary"
	get("selfish").Fallback = "selfish"
	get("orphaned").Fallback = "missing"

	tests := []struct {
		name       string
		route      string
		open, sick []string
		want       string
		wantFell   bool
	}{
		{"usable primary", "primary", nil, nil, "primary", false},
		{"open primary falls back", "primary", []string{"primary"}, nil, "backup", true},
		{"primary with no healthy server falls back", "primary", nil, []string{"primary"}, "backup", true},
		{"fallback unusable: stay on primary", "primary", []string{"primary", "backup"}, nil, "primary", false},
		{"one hop only, even in a cycle", "backup", []string{"backup", "loop"}, nil, "backup", false},
		{"one hop of a cycle", "loop", []string{"loop"}, nil, "primary", true},
		{"self fallback ignored", "selfish", []string{"selfish"}, nil, "selfish", false},
		{"unknown fallback ignored", "orphaned", []string{"orphaned"}, nil, "orphaned", false},
		{"no fallback", "solo", []string{"solo"}, []string{"solo"}, "solo", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := func(list []string) func(*Origin) bool {
				return func(o *Origin) bool {
					for _, n := range list {
						if n == o.Name {
							return true
						}
					}
					return false
				}
			}
			sick := in(tc.sick)
			got, fell := tab.Resolve(get(tc.route), in(tc.open), func(o *Origin) bool { return !sick(o) })
			if got.Name != tc.want || fell != tc.wantFell {
				t.Fatalf("Resolve = %s, %v; want %s, %v", got.Name, fell, tc.want, tc.wantFell)
			}
		})
	}
}

// ResolveAt with real isolation: the primary's breaker opens, requests go to the
// fallback; when the trial is due, the primary gets it back and closes.
func TestFailoverResolveAt(t *testing.T) {
	tab, err := NewTable(map[string]*config.Origin{
		"primary": {Servers: []string{"127.0.0.1:1"}},
		"backup":  {Servers: []string{"127.0.0.1:2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := tab.Get("primary")
	b, _ := tab.Get("backup")
	p.Fallback = "backup"
	p.Iso = testIsolation(t, []string{"127.0.0.1:1"}, func(c *IsolationConfig) {
		c.Breaker.RequestVolumeThreshold = 2
		c.Breaker.SleepWindow = time.Second
	})
	b.Iso = testIsolation(t, []string{"127.0.0.1:2"}, nil)
	now := t0
	if o, fell := tab.ResolveAt(p, now); o != p || fell {
		t.Fatal("healthy primary not chosen")
	}
	for range 2 {
		p.Iso.Admit(now)
		p.Iso.Finish(Failure, now, now)
	}
	if o, fell := tab.ResolveAt(p, now); o != b || !fell {
		t.Fatal("open primary did not fall back")
	}
	now += sec
	o, fell := tab.ResolveAt(p, now)
	if o != p || fell {
		t.Fatal("primary's trial went to the fallback: it would never close")
	}
	if p.Iso.Admit(now) != Admitted {
		t.Fatal("trial not admitted")
	}
	p.Iso.Finish(Success, now, now)
	if o, _ := tab.ResolveAt(p, now); o != p {
		t.Fatal("closed primary not chosen")
	}
	tab.Close()
}

func TestResolveDoesNotAllocate(t *testing.T) {
	tab, _ := NewTable(map[string]*config.Origin{"a": {Servers: []string{"127.0.0.1:1"}}})
	a, _ := tab.Get("a")
	a.Iso = testIsolation(t, []string{"127.0.0.1:1"}, nil)
	if n := testing.AllocsPerRun(1000, func() { tab.ResolveAt(a, t0) }); n != 0 {
		t.Fatalf("ResolveAt allocates %v times", n)
	}
}

// The per-request sequence the core runs, as one loop would run it: resolve,
// admit, pick, attempt done, finish; "retry" adds a failed first attempt, the
// budget check and a second pick. Each op also reads the wall clock once, which
// the loop's cached clock saves. Target ≤ 1 µs, no allocation.
func BenchmarkRequestPath(b *testing.B) {
	cases := []struct {
		name   string
		policy Policy
		retry  bool
	}{
		{"p2c", LeastOutstanding, false},
		{"round_robin", RoundRobin, false},
		{"p2c_with_retry", LeastOutstanding, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			iso := testIsolation(b, []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}, func(c *IsolationConfig) {
				c.Balancer = tc.policy
				c.MaxConcurrentRequests = 1 << 20
				c.Outlier.ConsecutiveFailures = -1         // the failed attempts must not eject
				c.Breaker.RequestVolumeThreshold = 1 << 30 // nor open the breaker
				c.Breaker.HystrixSample = 0                // the default 1 ms sampled copy into hystrix, as deployed
			})
			o := &Origin{Name: iso.Name, Iso: iso}
			tab := &Table{byName: map[string]*Origin{o.Name: o}, List: []*Origin{o}}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rnd := NewRand(uint32(time.Now().UnixNano()))
				for pb.Next() {
					now := time.Now().UnixNano()
					or, _ := tab.ResolveAt(o, now)
					if or.Iso.Admit(now) != Admitted {
						b.Fatal("refused")
					}
					srv := or.Iso.Pick(0, rnd.Uint32(), now)
					outcome := Success
					if tc.retry {
						or.Iso.AttemptDone(srv, false, now)
						outcome = Failure
						if or.Iso.TryRetry(now) {
							srv = or.Iso.Pick(srv.Bit(), rnd.Uint32(), now)
							outcome = Success
						} else {
							srv = nil
						}
					}
					if srv != nil {
						or.Iso.AttemptDone(srv, true, now)
					}
					or.Iso.Finish(outcome, now, now)
				}
			})
		})
	}
}
