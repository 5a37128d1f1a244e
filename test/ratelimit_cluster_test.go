package test

// Cluster-wide limits end to end (issue 16, point 2): three gozer nodes
// sharing one limit through a real redis-server. The combined admitted rate
// stays within the documented bound (docs/ARCHITECTURE.md: ±10 % of the rate
// over a steady period); with Redis killed mid-run every node falls back to
// the whole rate locally (logged once), and no request fails other than by
// its limit.

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// clusterRun hammers the three nodes (2 connections each) for d and returns
// the times of the admitted answers and the count of answers other than 200
// or 429.
func clusterRun(t *testing.T, nodes []*gozer, d time.Duration, during func()) (admitted []time.Time, bad int) {
	return clusterRunPath(t, nodes, "/x", d, during)
}

// clusterRunPath is clusterRun on path.
func clusterRunPath(t *testing.T, nodes []*gozer, path string, d time.Duration, during func()) (admitted []time.Time, bad int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, g := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := hammer(t, g.URL(path), nil, 2, d, func(resp *http.Response, _ time.Time) {
				if resp.StatusCode == 200 {
					mu.Lock()
					admitted = append(admitted, time.Now())
					mu.Unlock()
				}
			})
			mu.Lock()
			bad += got[0]
			mu.Unlock()
		}()
	}
	if during != nil {
		during()
	}
	wg.Wait()
	return admitted, bad
}

func countBetween(ts []time.Time, from, to time.Time) int {
	n := 0
	for _, x := range ts {
		if !x.Before(from) && x.Before(to) {
			n++
		}
	}
	return n
}

// TestRateLimitCluster: limit "shared" (global key, 300/s, burst 30,
// cluster) on nodes A, B and C through one redis-server: 4 s of demand far
// over it on all three admit 300/s in total after the first second (at most
// 10 % over, never each node's whole rate); a Lua filter's ctx.limit with cluster = true (200/s) is shared
// alike; then Redis is killed mid-run: the nodes fall back to local limits
// (300/s each), logged once each, and every answer is 200 or 429.
func TestRateLimitCluster(t *testing.T) {
	r := startRedis(t)
	o := startOrigin(t, "o")
	d := newScriptDir(t)
	d.write(t, "inbound", "lualimit.lua", `return { name = "lualimit", type = "inbound", order = 5,
  should_filter = function(ctx) return ctx.req.path == "/lua" end,
  apply = function(ctx)
    local ok, retry_after = ctx.limit("lua-shared", { rate = 200, per = 1, burst = 20, cluster = true })
    if not ok then ctx.respond(429, "limited\n", { ["Retry-After"] = tostring(retry_after) }) end
  end }`)
	extra := `limits:
  redis: "` + r.Addr + `"
  sync_interval: 100ms
  window: 1s
  rules:
    - { name: shared, key: global, rate: 300, per: 1s, burst: 30, cluster: true, path_prefix: /x }
`
	var nodes []*gozer
	for range 3 {
		cfg := oneOrigin(nil, o.Addr)
		cfg.AccessLog = "off" // tens of thousands of requests, no line read
		cfg.Extra = extra
		cfg.Filters = &filtersConfig{Dir: string(d), Budget: "1s"}
		nodes = append(nodes, startGozer(t, cfg))
	}

	start := time.Now()
	admitted, bad := clusterRun(t, nodes, 5*time.Second, nil)
	if bad != 0 {
		t.Errorf("%d answers other than 200 or 429", bad)
	}
	from, to := start.Add(time.Second), start.Add(5*time.Second)
	n := countBetween(admitted, from, to)
	rate := float64(n) / to.Sub(from).Seconds()
	t.Logf("cluster admitted %.1f/s (configured 300/s) over %v; %d in total in the first second", rate, to.Sub(from), countBetween(admitted, start, from))
	// Shared, the three nodes admit 300/s (+10 %: docs/ARCHITECTURE.md);
	// each node alone would admit 900/s together. Below, the demand is this
	// test's own Go client on the same two cores: when it stalls, every
	// node's demand stops at once and the admissions lost are not the
	// limiter's (seen in the whole suite under -race: 266/s; traced in
	// docs/ARCHITECTURE.md, "Rate limits"), so 30 %.
	if rate > 300*1.1 || rate < 300*0.7 {
		t.Errorf("cluster admitted %.1f/s; want 300/s (+10%%, -30%%)", rate)
	}
	// ctx.limit's cluster option: the Lua-keyed bucket is shared the same way.
	start = time.Now()
	admitted, bad = clusterRunPath(t, nodes, "/lua", 4*time.Second, nil)
	if bad != 0 {
		t.Errorf("ctx.limit: %d answers other than 200 or 429", bad)
	}
	from, to = start.Add(time.Second), start.Add(4*time.Second)
	rate = float64(countBetween(admitted, from, to)) / to.Sub(from).Seconds()
	t.Logf("ctx.limit cluster admitted %.1f/s (configured 200/s)", rate)
	// The same bounds: shared, 200/s (+10 %), where each node alone would
	// admit 600/s together; below, the client's stalls (seen: 167/s).
	if rate > 200*1.1 || rate < 200*0.7 {
		t.Errorf("ctx.limit with cluster = true admitted %.1f/s on three nodes; want 200/s (+10%%, -30%%)", rate)
	}
	// The admin answers match docs/ADMIN.md's examples (with a deny entry
	// that ends, as the example's).
	if code, body := adminDo(t, nodes[0], "POST", "/admin/deny?network=198.51.100.0/24&ttl=1h", ""); code != 200 {
		t.Fatalf("POST /admin/deny: %d %s", code, body)
	}
	docs := docExamples(t)
	for _, path := range []string{"/admin/limits", "/admin/deny"} {
		t.Run(strings.TrimPrefix(path, "/admin/"), func(t *testing.T) { matchesDoc(t, docs, nodes[0], path) })
	}
	for i, g := range nodes {
		if v := g.adminLimits(t); v.Cluster == nil || v.Cluster.Fallback || v.Cluster.Rounds == 0 {
			t.Errorf("node %d cluster state %+v; want rounds, no fallback", i, v.Cluster)
		}
	}

	// Redis dies mid-run (about 0.5 s into a 4 s run).
	start = time.Now()
	rounds := func() (n int64) {
		for _, g := range nodes {
			if v := g.adminLimits(t); v.Cluster != nil {
				n = min(n, v.Cluster.Rounds)
				if n == 0 {
					n = v.Cluster.Rounds
				}
			}
		}
		return n
	}
	var stopped time.Time
	admitted, bad = clusterRun(t, nodes, 5*time.Second, func() {
		// Mid-run: once every node reconciled 5 more rounds under load.
		r0 := rounds()
		waitFor(t, 3*time.Second, "every node reconciles 5 rounds", func() bool { return rounds() >= r0+5 })
		r.stop(0)
		stopped = time.Now()
	})
	if bad != 0 {
		t.Errorf("Redis down: %d answers other than 200 or 429; want none", bad)
	}
	// From a second after Redis died (a failed round is one sync_interval)
	// to the end of the run.
	from, to = stopped.Add(time.Second), start.Add(5*time.Second)
	if to.Sub(from) < time.Second {
		t.Fatalf("Redis was stopped %v into a 5 s run: too late to measure the fallback", stopped.Sub(start))
	}
	rate = float64(countBetween(admitted, from, to)) / to.Sub(from).Seconds()
	t.Logf("Redis down: the three nodes admitted %.1f/s over %v (local fallback: 300/s each)", rate, to.Sub(from))
	// Each node admits its whole rate: 900/s. A machine running the whole
	// suite beside three nodes and their clients may not drive 900 answers a
	// second (seen: 437/s): at least 1.2 × the cluster's rate, which the
	// shared limit never admits (it stays within +10 %), at most 900 + 10 %.
	if rate < 300*1.2 || rate > 900*1.1 {
		t.Errorf("after Redis died: %.1f/s admitted; want each node's whole rate (900/s; at least 360/s, at most +10%%)", rate)
	}
	for i, g := range nodes {
		v := g.adminLimits(t)
		if v.Cluster == nil || !v.Cluster.Fallback || v.Cluster.Failures == 0 {
			t.Errorf("node %d cluster state %+v; want local fallback", i, v.Cluster)
		}
		if c := strings.Count(g.output(), "cluster limits fall back to local"); c != 1 {
			t.Errorf("node %d logged the fallback %d times; want once", i, c)
		}
	}
}
