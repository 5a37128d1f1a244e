package test

import (
	"fmt"
	"testing"
	"time"
)

// TestEjectionOfFailingServer: of 3 servers one answers 503 to everything. After 3
// consecutive failures it is ejected: it gets no more requests and /admin/origins
// shows it ejected; users never see its failures (retries 1). It returns by itself
// after base_ejection and receives requests again.
func TestEjectionOfFailingServer(t *testing.T) {
	t.Parallel()
	const baseEjection = 3 * time.Second
	bad := startFakeOrigin(t, "bad", fakeFail)
	good1, good2 := startFakeOrigin(t, "good1", fakeServe), startFakeOrigin(t, "good2", fakeServe)
	g := startGozer(t, oneOrigin(map[string]string{
		"retries":  "1",
		"balancer": "round_robin",
		"outlier":  fmt.Sprintf("{consecutive_failures: 3, base_ejection: %v, max_ejection_percent: 50}", baseEjection),
	}, bad.Addr, good1.Addr, good2.Addr))
	client := isolationClient(t, 10*time.Second)
	ejected := func() bool {
		s, ok := g.adminOrigin(t, "demo").server(bad.Addr)
		if !ok {
			t.Fatalf("/admin/origins does not list server %s", bad.Addr)
		}
		return s.Ejected
	}
	mustServe := func(what string) {
		t.Helper()
		if r := doGet(client, g.URL("/eject")); r.Status != 200 || r.Cause != "SUCCESS" || r.From == "bad" {
			t.Fatalf("%s: %v; want 200 SUCCESS from a good server", what, r)
		}
	}

	n := 0
	waitFor(t, 15*time.Second, "the failing server is ejected", func() bool {
		mustServe(fmt.Sprintf("request %d before the ejection", n))
		n++
		return ejected()
	})
	ejectedAt := time.Now()
	if got := bad.count(); got < 3 {
		t.Errorf("ejected after %d failures; consecutive_failures is 3", got)
	}

	// Ejected: a burst of requests, all served by the others.
	before := bad.count()
	for i := 0; i < 30 && time.Since(ejectedAt) < baseEjection/2; i++ {
		mustServe(fmt.Sprintf("request %d while ejected", i))
	}
	if got := bad.count() - before; got != 0 {
		t.Errorf("the ejected server got %d requests", got)
	}
	if !ejected() {
		t.Fatalf("the server came back within %v of its ejection; base_ejection is %v", time.Since(ejectedAt), baseEjection)
	}

	// It returns by itself (it still fails: nothing but time brings it back).
	waitFor(t, baseEjection+10*time.Second, "the ejected server returns", func() bool { return !ejected() })
	if back := time.Since(ejectedAt); back < baseEjection/2 {
		t.Errorf("the server returned %v after its ejection; base_ejection is %v", back, baseEjection)
	}
	before = bad.count()
	for i := 0; i < 20 && bad.count() == before; i++ {
		mustServe(fmt.Sprintf("request %d after the return", i))
	}
	if bad.count() == before {
		t.Errorf("the returned server got none of 20 round-robin requests")
	}
}

// TestHealthCheckTakesServerOutAndBack: a server whose /healthz turns to 500 stops
// receiving requests after `unhealthy` failed checks (though it still answers them
// well), and gets them again after `healthy` passed checks.
func TestHealthCheckTakesServerOutAndBack(t *testing.T) {
	t.Parallel()
	const healthy, unhealthy = 2, 3
	flaky, steady := startFakeOrigin(t, "flaky", fakeServe), startFakeOrigin(t, "steady", fakeServe)
	g := startGozer(t, oneOrigin(map[string]string{
		"balancer": "round_robin",
		"health_check": fmt.Sprintf("{path: /healthz, interval: 200ms, timeout: 1s, healthy: %d, unhealthy: %d}",
			healthy, unhealthy),
	}, flaky.Addr, steady.Addr))
	client := isolationClient(t, 10*time.Second)
	state := func() adminServer {
		s, ok := g.adminOrigin(t, "demo").server(flaky.Addr)
		if !ok {
			t.Fatalf("/admin/origins does not list server %s", flaky.Addr)
		}
		return s
	}
	reaches := func(what string) bool {
		t.Helper()
		before := flaky.count()
		for i := range 10 {
			if r := doGet(client, g.URL("/hc")); r.Status != 200 {
				t.Fatalf("%s, request %d: %v; want 200", what, i, r)
			}
		}
		return flaky.count() > before
	}
	waitFor(t, 10*time.Second, "the health checker checks the server", func() bool { return flaky.healthChecks()[0] > 0 })
	if !reaches("while healthy") {
		t.Fatalf("the healthy server got none of 10 round-robin requests")
	}

	flaky.setHealthy(false)
	failsBefore := flaky.healthChecks()[1]
	waitFor(t, 10*time.Second, "/admin/origins shows the server down", func() bool { return !state().Up })
	if fails := flaky.healthChecks()[1] - failsBefore; fails < unhealthy {
		t.Errorf("taken down after %d failed checks; unhealthy is %d", fails, unhealthy)
	}
	if s := state(); s.Available {
		t.Errorf("/admin/origins: the down server is still available: %+v", s)
	}
	if reaches("while down") {
		t.Errorf("the server down by health check still got requests")
	}

	flaky.setHealthy(true)
	passesBefore := flaky.healthChecks()[0]
	waitFor(t, 10*time.Second, "/admin/origins shows the server up again", func() bool { return state().Up })
	if passes := flaky.healthChecks()[0] - passesBefore; passes < healthy {
		t.Errorf("brought back after %d passed checks; healthy is %d", passes, healthy)
	}
	if !reaches("after the server came back") {
		t.Errorf("the server back up got none of 10 round-robin requests")
	}
}

// TestBalancerWeights: round robin and P2C spread sequential traffic as the weights
// say (loose bounds: ±40 % of each server's share).
func TestBalancerWeights(t *testing.T) {
	t.Parallel()
	const requests = 300
	tests := []struct {
		balancer string
		weights  []int
	}{
		{"round_robin", []int{1, 1, 1}},
		{"round_robin", []int{1, 2, 3}},
		{"p2c", []int{1, 2, 3}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %v", tc.balancer, tc.weights), func(t *testing.T) {
			t.Parallel()
			var fs []*fakeOrigin
			ws := map[*fakeOrigin]int{}
			total := 0
			for i, w := range tc.weights {
				f := startFakeOrigin(t, fmt.Sprintf("s%d", i), fakeServe)
				fs = append(fs, f)
				ws[f] = w
				total += w
			}
			g := startGozer(t, oneOrigin(map[string]string{"balancer": tc.balancer, "weights": weightsOf(ws)}, fakeAddrs(fs...)...))
			client := isolationClient(t, 10*time.Second)
			for i := range requests {
				if r := doGet(client, g.URL("/spread")); r.Status != 200 {
					t.Fatalf("request %d: %v", i, r)
				}
			}
			got := make([]int64, len(fs))
			for i, f := range fs {
				got[i] = f.count()
			}
			t.Logf("%s weights %v: %v of %d requests", tc.balancer, tc.weights, got, requests)
			for i, w := range tc.weights {
				want := float64(requests*w) / float64(total)
				if g := float64(got[i]); g < want*0.6 || g > want*1.4 {
					t.Errorf("server %d (weight %d) got %d requests, want about %.0f", i, w, got[i], want)
				}
			}
		})
	}
}
