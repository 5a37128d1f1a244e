package test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIsolationBlackHoledNeighbour: origin a accepts connections and never answers
// (read_timeout 2s) while 50 clients keep requests to it in flight; origin b, on its
// own route, must not notice: every request to b succeeds, each in well under a second.
func TestIsolationBlackHoledNeighbour(t *testing.T) {
	t.Parallel()
	const (
		saturation = 50
		bPhase     = 3 * time.Second // spans at least one wave of a's read timeouts
		bBound     = time.Second
	)
	a := startFakeOrigin(t, "a", fakeBlackHole)
	b := startOrigin(t, "b")
	g := startGozer(t, config{
		Origins: map[string]originConfig{
			// No breaker on a: it stays black-holed and saturated for the whole test.
			"a": {Servers: []string{a.Addr}, Opts: map[string]string{
				"read_timeout": "2s", "retries": "0", "breaker": "{enabled: false}"}},
			"b": {Servers: []string{b.Addr}, Opts: map[string]string{"read_timeout": "2s"}},
		},
		Routes: []route{{PathPrefix: "/a/", Origin: "a"}, {PathPrefix: "/b/", Origin: "b"}},
	})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var aTimeouts, aOther atomic.Int64
	var aOtherSample atomic.Value
	aClient := isolationClient(t, 30*time.Second)
	for i := range saturation {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", g.URL(fmt.Sprintf("/a/%d", i)), nil)
				resp, err := aClient.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						aOther.Add(1)
						aOtherSample.Store(err.Error())
					}
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 504 && resp.Header.Get("X-Gozer-Status") == "FAILURE_ORIGIN_READ_TIMEOUT" {
					aTimeouts.Add(1)
				} else {
					aOther.Add(1)
					aOtherSample.Store(fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Gozer-Status")))
				}
			}
		}()
	}
	waitFor(t, 15*time.Second, fmt.Sprintf("%d requests held by black-holed origin a", saturation), func() bool {
		return a.hanging.Load() >= saturation
	})

	// Origin b, from 4 clients, paced, for bPhase.
	type bResult struct {
		n, failed int
		worst     time.Duration
		sample    string
	}
	results := make(chan bResult, 4)
	bClient := isolationClient(t, 10*time.Second)
	start := time.Now()
	for w := range 4 {
		go func() {
			var r bResult
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for time.Since(start) < bPhase {
				got := doGet(bClient, g.URL(fmt.Sprintf("/b/%d/%d", w, r.n)))
				r.n++
				r.worst = max(r.worst, got.Took)
				if got.Err != nil || got.Status != 200 || got.From != "b" || got.Took >= bBound {
					r.failed++
					if r.sample == "" {
						r.sample = got.String()
					}
				}
				<-tick.C
			}
			results <- r
		}()
	}
	var total, failed int
	var worst time.Duration
	var samples []string
	for range 4 {
		r := <-results
		total, failed, worst = total+r.n, failed+r.failed, max(worst, r.worst)
		if r.sample != "" {
			samples = append(samples, r.sample)
		}
	}
	stillHeld := a.hanging.Load()
	t.Logf("origin b: %d requests, %d failed or slower than %v, worst %v; origin a: %d answered 504 meanwhile, %d held at the end",
		total, failed, bBound, worst.Round(time.Millisecond), aTimeouts.Load(), stillHeld)
	if failed > 0 {
		t.Errorf("origin b: %d of %d requests failed or took ≥ %v while origin a was black-holed; first: %v", failed, total, bBound, samples)
	}
	if total < 20 {
		t.Errorf("origin b served only %d requests in %v", total, bPhase)
	}
	if aTimeouts.Load() == 0 {
		t.Errorf("no request to black-holed origin a ended 504 FAILURE_ORIGIN_READ_TIMEOUT within %v (read_timeout 2s)", time.Since(start))
	}
	if n := aOther.Load(); n > 0 {
		t.Errorf("%d requests to origin a got another answer than 504 FAILURE_ORIGIN_READ_TIMEOUT, e.g. %v", n, aOtherSample.Load())
	}
}

// TestBulkheadRefusesAtOnce: with max_concurrent_requests 2 and two slow requests in
// flight, a third is answered 503 FAILURE_LOCAL_THROTTLED_ORIGIN_CONCURRENCY at once,
// without reaching the origin; once the slow ones are done the origin takes requests again.
func TestBulkheadRefusesAtOnce(t *testing.T) {
	t.Parallel()
	const slow = 4 * time.Second
	g, o := proxied(t, nil, map[string]string{"max_concurrent_requests": "2"})
	client := isolationClient(t, 30*time.Second)
	done := make(chan clientReply, 2)
	for range 2 {
		go func() { done <- doGet(client, g.URL("/slow?delay="+slow.String())) }()
	}
	waitFor(t, 10*time.Second, "2 requests in flight to origin demo in /admin/origins", func() bool {
		return g.adminOrigin(t, "demo").InFlight == 2
	})

	id := uniqueID("bulkhead")
	third := doGet(client, g.URL("/"), "X-Test-Id: "+id)
	slowDone := len(done)
	if third.Status != 503 || third.Cause != "FAILURE_LOCAL_THROTTLED_ORIGIN_CONCURRENCY" {
		t.Errorf("third concurrent request: %v; want 503 FAILURE_LOCAL_THROTTLED_ORIGIN_CONCURRENCY", third)
	}
	if third.Took > time.Second || slowDone > 0 {
		t.Errorf("third request answered after %v (%d of the %v requests already done); want it at once", third.Took, slowDone, slow)
	}
	if s := seen(t, o, id); s.Requests+s.Connections > 0 {
		t.Errorf("the origin saw the refused request: %+v", s)
	}
	a := g.adminOrigin(t, "demo")
	if a.Refused < 1 || a.Requests["FAILURE_LOCAL_THROTTLED_ORIGIN_CONCURRENCY"] < 1 {
		t.Errorf("/admin/origins: refused_concurrency %d, requests_by_cause %v; want the refusal counted", a.Refused, a.Requests)
	}

	for range 2 {
		if r := <-done; r.Status != 200 || r.Cause != "SUCCESS" {
			t.Errorf("slow request: %v; want 200 SUCCESS", r)
		}
	}
	waitFor(t, 10*time.Second, "no request in flight to origin demo", func() bool {
		return g.adminOrigin(t, "demo").InFlight == 0
	})
	if r := doGet(client, g.URL("/")); r.Status != 200 {
		t.Errorf("after the slow requests: %v; want 200", r)
	}
}

// TestBreakerOpensAndCloses: an origin answering 503 to everything opens its breaker
// after request_volume requests; while open, requests get 503
// FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN fast and never reach the origin. After the sleep
// window, with the origin healthy again, one trial request closes it.
func TestBreakerOpensAndCloses(t *testing.T) {
	t.Parallel()
	const sleepWindow = 2 * time.Second
	f := startFakeOrigin(t, "f", fakeFail)
	g := startGozer(t, oneOrigin(map[string]string{
		"retries": "0",
		"breaker": yamlMap(map[string]string{"request_volume": "10", "error_percent": "50", "sleep_window": sleepWindow.String()}),
		"outlier": "{consecutive_failures: -1}", // the breaker alone
	}, f.Addr))
	client := isolationClient(t, 10*time.Second)

	// The error burst.
	var burst []clientReply
	for len(burst) < 30 {
		r := doGet(client, g.URL("/burst"))
		burst = append(burst, r)
		if r.Cause == "FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN" {
			break
		}
		if r.Status != 503 || r.From != "f" {
			t.Fatalf("burst request %d: %v; want the origin's own 503", len(burst), r)
		}
	}
	openAt := time.Now()
	last := burst[len(burst)-1]
	if last.Cause != "FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN" {
		t.Fatalf("the breaker did not open after %d failed requests (request_volume 10, error_percent 50); last: %v", len(burst), last)
	}
	if failures := len(burst) - 1; failures < 10 || failures > 12 {
		t.Errorf("the breaker opened after %d failures; want it at request_volume 10", failures)
	}
	if last.Status != 503 {
		t.Errorf("open breaker answered %v; want 503", last)
	}

	// Open: fast refusals that the origin never sees.
	before := f.count()
	var open []clientReply
	for len(open) < 10 && time.Since(openAt) < sleepWindow*3/4 {
		open = append(open, doGet(client, g.URL("/while-open")))
	}
	if got := f.count() - before; got != 0 {
		t.Errorf("the origin saw %d of the %d requests made while the breaker was open", got, len(open))
	}
	for i, r := range open {
		if r.Status != 503 || r.Cause != "FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN" || r.Took > time.Second {
			t.Errorf("request %d while open: %v; want 503 FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN at once", i, r)
		}
	}
	a := g.adminOrigin(t, "demo")
	if !a.Breaker.Refusing || a.Breaker.State != "open" || a.Requests["FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN"] < 1 {
		t.Errorf("/admin/origins while open: breaker %+v, requests_by_cause %v; want state open, refusing", a.Breaker, a.Requests)
	}

	// Recovery: the origin heals; after the sleep window one trial closes the breaker.
	f.setMode(fakeServe)
	healedAt := f.count()
	var first clientReply
	waitFor(t, sleepWindow+10*time.Second, "a request succeeds after the sleep window", func() bool {
		first = doGet(client, g.URL("/recover"))
		if first.Status != 503 || first.Cause != "FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN" {
			return true
		}
		return false
	})
	closedAfter := time.Since(openAt)
	if first.Status != 200 || first.Cause != "SUCCESS" || first.From != "f" {
		t.Fatalf("first answer after the sleep window: %v; want 200 SUCCESS from f", first)
	}
	if closedAfter < sleepWindow*3/4 {
		t.Errorf("the breaker let a request through %v after opening; sleep_window is %v", closedAfter, sleepWindow)
	}
	if trials := f.count() - healedAt; trials != 1 {
		t.Errorf("the origin saw %d requests until the first success; want exactly 1 trial while half-open", trials)
	}
	for i := range 10 {
		if r := doGet(client, g.URL("/closed")); r.Status != 200 || r.Cause != "SUCCESS" {
			t.Errorf("request %d after the trial: %v; want 200 SUCCESS (breaker closed)", i, r)
		}
	}
	if a := g.adminOrigin(t, "demo"); a.Breaker.Refusing || a.Breaker.State != "closed" {
		t.Errorf("/admin/origins after recovery: breaker %+v, want closed", a.Breaker)
	}
	// Each transition is one line in the process log, for the operator.
	g.waitLog(t, "circuit breaker opened", "demo")
	g.waitLog(t, "circuit breaker closed", "demo")
}

// TestFallbackServesWhenPrimaryUnavailable: origin primary names fallback secondary.
// When primary's breaker is open, or all its servers are ejected, its requests are
// served by secondary with X-Gozer-Status SUCCESS_VIA_FALLBACK, and primary sees none.
func TestFallbackServesWhenPrimaryUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mode    fakeMode
		servers int
		opts    map[string]string
		why     func(adminOrigin) bool
	}{
		{"breaker open", fakeFail, 1, map[string]string{
			"retries": "0",
			"breaker": "{request_volume: 5, error_percent: 50, sleep_window: 60s}",
			"outlier": "{consecutive_failures: -1}",
		}, func(a adminOrigin) bool { return a.Breaker.Refusing }},
		{"all servers ejected", fakeReset, 2, map[string]string{
			"retries": "1",
			"breaker": "{enabled: false}",
			"outlier": "{consecutive_failures: 2, base_ejection: 60s, max_ejection_percent: 100}",
		}, func(a adminOrigin) bool {
			return !slices.ContainsFunc(a.Servers, func(s adminServer) bool { return !s.Ejected })
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var primary []*fakeOrigin
			for i := range tc.servers {
				primary = append(primary, startFakeOrigin(t, fmt.Sprintf("primary%d", i), tc.mode))
			}
			secondary := startOrigin(t, "secondary")
			opts := map[string]string{"fallback": "secondary"}
			for k, v := range tc.opts {
				opts[k] = v
			}
			g := startGozer(t, config{
				Origins: map[string]originConfig{
					"primary":   {Servers: fakeAddrs(primary...), Opts: opts},
					"secondary": {Servers: []string{secondary.Addr}},
				},
				Routes: []route{{PathPrefix: "/", Origin: "primary"}},
			})
			primaryCount := func() (n int64) {
				for _, p := range primary {
					n += p.count()
				}
				return n
			}
			client := isolationClient(t, 10*time.Second)
			var failing []clientReply
			waitFor(t, 10*time.Second, "requests to primary are served via the fallback", func() bool {
				r := doGet(client, g.URL("/fail"))
				failing = append(failing, r)
				return r.Cause == "SUCCESS_VIA_FALLBACK" || len(failing) > 40
			})
			if last := failing[len(failing)-1]; last.Cause != "SUCCESS_VIA_FALLBACK" {
				t.Fatalf("after %d requests to the failing primary still no fallback; last: %v", len(failing), last)
			}
			if a := g.adminOrigin(t, "primary"); !tc.why(a) || a.Fallback != "secondary" {
				t.Errorf("/admin/origins primary: %+v; want it unusable, with fallback secondary", a)
			}
			before := primaryCount()
			for i := range 10 {
				r := doGet(client, g.URL(fmt.Sprintf("/via-fallback/%d", i)))
				if r.Status != 200 || r.Cause != "SUCCESS_VIA_FALLBACK" || r.From != "secondary" {
					t.Errorf("request %d: %v; want 200 SUCCESS_VIA_FALLBACK from secondary", i, r)
				}
			}
			if got := primaryCount() - before; got != 0 {
				t.Errorf("primary saw %d of the requests served via the fallback", got)
			}
		})
	}
}
