package test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetrics sends known traffic, n successes to a healthy origin,
// failures to one that answers 503 to everything until its breaker opens,
// then a few refused by the open breaker, and requests to an origin one of
// whose two servers resets every request (retried on the other); it reads GET /metrics with
// Prometheus' own text parser and checks the numbers against what the
// clients saw: requests by origin, cause and status class, the histograms'
// counts, attempts, the breaker's state and opens, the pools' connections,
// the loops, and the Go and process collectors.
func TestMetrics(t *testing.T) {
	t.Parallel()
	good := startFakeOrigin(t, "good", fakeServe)
	bad := startFakeOrigin(t, "bad", fakeFail)
	// flaky: one server resets every request, the other serves: a request
	// that tries the first is retried on the second.
	resets, serves := startFakeOrigin(t, "resets", fakeReset), startFakeOrigin(t, "serves", fakeServe)
	g := startGozer(t, config{
		Origins: map[string]originConfig{
			"flaky": {Servers: []string{resets.Addr, serves.Addr}, Opts: map[string]string{
				"retries": "1",
				"outlier": "{consecutive_failures: -1}", // keep trying the resetting one
			}},
			"good": {Servers: []string{good.Addr}},
			"bad": {Servers: []string{bad.Addr}, Opts: map[string]string{
				"retries": "0",
				"breaker": yamlMap(map[string]string{"request_volume": "10", "error_percent": "50", "sleep_window": "10m"}),
				"outlier": "{consecutive_failures: -1}", // the breaker alone
			}},
		},
		Routes: []route{{PathPrefix: "/good", Origin: "good"}, {PathPrefix: "/bad", Origin: "bad"}, {PathPrefix: "/flaky", Origin: "flaky"}},
	})
	client := isolationClient(t, 10*time.Second)

	const flaky = 20
	for i := 0; i < flaky; i++ {
		if r := doGet(client, g.URL("/flaky/x")); r.Status != 200 || r.From != "serves" {
			t.Fatalf("request %d to flaky: %v; want 200 from serves", i, r)
		}
	}
	if resets.count() == 0 {
		t.Fatalf("no request of %d tried the resetting server: the retry count is not tested", flaky)
	}

	const n = 25
	for i := 0; i < n; i++ {
		if r := doGet(client, g.URL("/good/x")); r.Status != 200 || r.Cause != "SUCCESS" {
			t.Fatalf("request %d to good: %v; want 200 SUCCESS", i, r)
		}
	}
	// What the clients of "bad" saw, by cause and status class.
	seen := map[[2]string]int{}
	opened, refused := false, 0
	for i := 0; i < 40 && refused < 5; i++ {
		r := doGet(client, g.URL("/bad/x"))
		if r.Err != nil || r.Status != 503 {
			t.Fatalf("request %d to bad: %v; want 503", i, r)
		}
		seen[[2]string{r.Cause, "5xx"}]++
		if r.Cause == "FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN" {
			opened = true
			refused++
		}
	}
	if !opened {
		t.Fatalf("the breaker of bad did not open: %v", seen)
	}
	badTotal := 0
	for _, c := range seen {
		badTotal += c
	}

	// The metrics are recorded as each request ends, which may be a moment
	// after its client has the answer: wait until every request counted.
	var fams map[string]*dto.MetricFamily
	waitFor(t, 5*time.Second, "GET /metrics counts every request", func() bool {
		fams = scrapeMetrics(t, g)
		return sumOf(fams, "gozer_requests_total", "origin", "good") == n &&
			sumOf(fams, "gozer_requests_total", "origin", "flaky") == flaky &&
			sumOf(fams, "gozer_requests_total", "origin", "bad") == float64(badTotal)
	})

	// Requests by origin, cause and status class.
	if v := value(t, fams, "gozer_requests_total", "origin", "good", "cause", "SUCCESS", "code", "2xx"); v != n {
		t.Errorf("good SUCCESS 2xx = %v; want %d", v, n)
	}
	for k, c := range seen {
		if v := value(t, fams, "gozer_requests_total", "origin", "bad", "cause", k[0], "code", k[1]); v != float64(c) {
			t.Errorf("bad %s %s = %v; want %d (the clients' count)", k[0], k[1], v, c)
		}
	}

	// Histograms: one observation per request; at the origin only those admitted.
	checkHistogram(t, fams, "gozer_request_duration_seconds", "good", n)
	checkHistogram(t, fams, "gozer_request_duration_seconds", "bad", uint64(badTotal))
	checkHistogram(t, fams, "gozer_origin_duration_seconds", "good", n)
	checkHistogram(t, fams, "gozer_origin_duration_seconds", "flaky", flaky)
	if v := value(t, fams, "gozer_requests_total", "origin", "flaky", "cause", "SUCCESS", "code", "2xx"); v != flaky {
		t.Errorf("flaky SUCCESS 2xx = %v; want %d (every request succeeded on its retry or first try)", v, flaky)
	}
	checkHistogram(t, fams, "gozer_origin_duration_seconds", "bad", uint64(bad.count()))

	// Attempts: one per request that reached its origin, no retries (bad has
	// retries 0; good never failed).
	for _, c := range []struct {
		name, origin string
		want         float64
	}{
		{"gozer_origin_attempts_total", "good", float64(good.count())},
		{"gozer_origin_attempts_total", "bad", float64(bad.count())},
		{"gozer_origin_retries_total", "good", 0},
		{"gozer_origin_retries_total", "bad", 0},
		// Every attempt at the resetting server was retried on the other.
		{"gozer_origin_retries_total", "flaky", float64(resets.count())},
		{"gozer_origin_attempts_total", "flaky", float64(resets.count() + serves.count())},
		{"gozer_origin_breaker_opens_total", "bad", 1},
		{"gozer_origin_breaker_opens_total", "good", 0},
		{"gozer_origin_bulkhead_rejections_total", "good", 0},
		{"gozer_origin_in_flight_requests", "good", 0},
	} {
		if v := value(t, fams, c.name, "origin", c.origin); v != c.want {
			t.Errorf("%s{origin=%q} = %v; want %v", c.name, c.origin, v, c.want)
		}
	}
	if good.count() != n {
		t.Errorf("good saw %d requests; want %d", good.count(), n)
	}

	// Breaker state: a state set.
	for _, c := range []struct {
		origin, state string
		want          float64
	}{
		{"bad", "open", 1}, {"bad", "closed", 0}, {"bad", "half_open", 0},
		{"good", "closed", 1}, {"good", "open", 0},
	} {
		if v := value(t, fams, "gozer_origin_breaker_state", "origin", c.origin, "state", c.state); v != c.want {
			t.Errorf("breaker_state{origin=%q,state=%q} = %v; want %v", c.origin, c.state, v, c.want)
		}
	}

	// Pools: the connections open (busy + idle) are those opened less those
	// closed, and the healthy origin's keep-alive connections are reused.
	open := value(t, fams, "gozer_origin_connections_opened_total", "origin", "good", "server", good.Addr)
	closed := value(t, fams, "gozer_origin_connections_closed_total", "origin", "good", "server", good.Addr)
	busy := value(t, fams, "gozer_origin_connections", "origin", "good", "server", good.Addr, "state", "busy")
	idle := value(t, fams, "gozer_origin_connections", "origin", "good", "server", good.Addr, "state", "idle")
	if open < 1 || open >= n || busy+idle != open-closed || idle < 1 {
		t.Errorf("good's connections: opened %v, closed %v, busy %v, idle %v; want 1 ≤ opened < %d (reuse), busy+idle = opened-closed, idle ≥ 1",
			open, closed, busy, idle, n)
	}

	// Loops: the client connections they hold add up to the node's count, and
	// they were busy some of the time.
	if conns, clients := sumOf(fams, "gozer_loop_connections", "kind", "http"), value(t, fams, "gozer_client_connections"); conns != clients || conns < 1 {
		t.Errorf("loops hold %v HTTP connections, the node counts %v; want equal, ≥ 1", conns, clients)
	}
	if busySeconds := sumOf(fams, "gozer_loop_busy_seconds_total"); busySeconds <= 0 {
		t.Errorf("gozer_loop_busy_seconds_total = %v; want > 0", busySeconds)
	}
	if v := value(t, fams, "gozer_metrics_enabled"); v != 1 {
		t.Errorf("gozer_metrics_enabled = %v; want 1", v)
	}

	// Go runtime and process collectors.
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if fams[name] == nil || len(fams[name].Metric) == 0 {
			t.Errorf("%s missing from /metrics", name)
		}
	}

	// Every family is documented in docs/ADMIN.md's table.
	doc, err := os.ReadFile(filepath.Join(moduleRoot, "docs", "ADMIN.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range fams {
		if strings.HasPrefix(name, "gozer_") && !strings.Contains(string(doc), "| `"+name+"` |") {
			t.Errorf("%s is not in docs/ADMIN.md's table of GET /metrics", name)
		}
	}

	// Bounded cardinality: Gozer's series are labelled only by these.
	allowed := map[string]bool{"origin": true, "cause": true, "code": true, "state": true, "server": true, "health": true,
		"filter": true, "type": true, "reason": true, "result": true, "loop": true, "kind": true, "limit": true,
		"direction": true}
	for name, f := range fams {
		if !strings.HasPrefix(name, "gozer_") {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if !allowed[l.GetName()] {
					t.Errorf("%s has label %q: not one of Gozer's bounded labels", name, l.GetName())
				}
			}
		}
	}
}

// TestMetricsOff: listeners.admin.metrics false: no GET /metrics, requests
// served as ever.
func TestMetricsOff(t *testing.T) {
	t.Parallel()
	o := startFakeOrigin(t, "o", fakeServe)
	cfg := oneOrigin(nil, o.Addr)
	cfg.NoMetrics = true
	g := startGozer(t, cfg)
	client := isolationClient(t, 10*time.Second)
	if r := doGet(client, g.URL("/")); r.Status != 200 {
		t.Fatalf("request with metrics off: %v; want 200", r)
	}
	resp, err := g.adminClient.Get(g.adminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics with metrics off: %d; want 404", resp.StatusCode)
	}
}

// scrapeMetrics reads GET /metrics and parses it with Prometheus' text parser.
func scrapeMetrics(t testing.TB, g *gozer) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := g.adminClient.Get(g.adminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics Content-Type %q; want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// matches reports whether m has every label of kv (name, value, name, value…).
func matches(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.Label {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// sample is a counter's or gauge's value.
func sample(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetUntyped().GetValue()
}

// sumOf sums the series of family name that have the labels kv.
func sumOf(fams map[string]*dto.MetricFamily, name string, kv ...string) float64 {
	var s float64
	if f := fams[name]; f != nil {
		for _, m := range f.Metric {
			if matches(m, kv) {
				s += sample(m)
			}
		}
	}
	return s
}

// value is the one series of family name with the labels kv.
func value(t testing.TB, fams map[string]*dto.MetricFamily, name string, kv ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Errorf("%s missing from /metrics", name)
		return -1
	}
	var found []*dto.Metric
	for _, m := range f.Metric {
		if matches(m, kv) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Errorf("%s%v: %d series; want 1", name, kv, len(found))
		return -1
	}
	return sample(found[0])
}

// checkHistogram checks origin's histogram name: count observations, its
// +Inf bucket equal to the count, its buckets cumulative.
func checkHistogram(t testing.TB, fams map[string]*dto.MetricFamily, name, origin string, count uint64) {
	t.Helper()
	f := fams[name]
	if f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("%s: missing, or not a histogram", name)
		return
	}
	for _, m := range f.Metric {
		if !matches(m, []string{"origin", origin}) {
			continue
		}
		h := m.GetHistogram()
		if h.GetSampleCount() != count {
			t.Errorf("%s{origin=%q}_count = %d; want %d", name, origin, h.GetSampleCount(), count)
		}
		if count > 0 && h.GetSampleSum() <= 0 {
			t.Errorf("%s{origin=%q}_sum = %v; want > 0", name, origin, h.GetSampleSum())
		}
		var prev uint64
		for _, b := range h.Bucket {
			if b.GetCumulativeCount() < prev || b.GetCumulativeCount() > count {
				t.Errorf("%s{origin=%q} bucket le=%v: %d after %d, count %d: not cumulative", name, origin, b.GetUpperBound(), b.GetCumulativeCount(), prev, count)
			}
			prev = b.GetCumulativeCount()
		}
		return
	}
	t.Errorf("%s{origin=%q} missing", name, origin)
}

// TestMetricsFilters: a Lua filter's calls and errors in GET /metrics match
// the requests sent through it.
func TestMetricsFilters(t *testing.T) {
	t.Parallel()
	o := startFakeOrigin(t, "o", fakeServe)
	d := newScriptDir(t)
	d.write(t, "inbound", "10_pick.lua", `return { name = "pick", type = "inbound", order = 10, fatal = true,
  apply = function(ctx) if ctx.req.path == "/boom" then error("boom") end end }`)
	g := luaGozer(t, d, filtersConfig{}, map[string]originConfig{"o": {Servers: []string{o.Addr}}}, route{PathPrefix: "/", Origin: "o"})
	client := isolationClient(t, 10*time.Second)
	const ok, boom = 6, 4
	for i := 0; i < ok; i++ {
		if r := doGet(client, g.URL("/fine")); r.Status != 200 {
			t.Fatalf("GET /fine: %v; want 200", r)
		}
	}
	for i := 0; i < boom; i++ {
		if r := doGet(client, g.URL("/boom")); r.Status != 500 || r.Cause != "FAILURE_LOCAL_FILTER_ERROR" {
			t.Fatalf("GET /boom: %v; want 500 FAILURE_LOCAL_FILTER_ERROR", r)
		}
	}
	var fams map[string]*dto.MetricFamily
	waitFor(t, 5*time.Second, "GET /metrics counts every request", func() bool {
		fams = scrapeMetrics(t, g)
		return sumOf(fams, "gozer_requests_total") == ok+boom
	})
	for _, c := range []struct {
		name string
		want float64
	}{
		{"gozer_filter_calls_total", ok + boom},
		{"gozer_filter_errors_total", boom},
		{"gozer_filter_timeouts_total", 0},
	} {
		if v := value(t, fams, c.name, "filter", "pick", "type", "inbound"); v != c.want {
			t.Errorf("%s{filter=pick} = %v; want %v", c.name, v, c.want)
		}
	}
	if v := value(t, fams, "gozer_filter_duration_seconds_total", "filter", "pick", "type", "inbound"); v <= 0 {
		t.Errorf("gozer_filter_duration_seconds_total{filter=pick} = %v; want > 0", v)
	}
	// The inbound filter failed before a route: no origin (an empty label).
	if v := value(t, fams, "gozer_requests_total", "cause", "FAILURE_LOCAL_FILTER_ERROR", "code", "5xx"); v != boom {
		t.Errorf("requests FAILURE_LOCAL_FILTER_ERROR = %v; want %d", v, boom)
	}
	if v := value(t, fams, "gozer_requests_total", "origin", "o", "cause", "SUCCESS", "code", "2xx"); v != ok {
		t.Errorf("requests of o SUCCESS = %v; want %d", v, ok)
	}
}
