package test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Failure injection (fault_injection, /admin/faults, ctx.inject) and the
// adaptive concurrency limit, end to end: a real gozer, a real demo-origin.

// adminFaults is GET /admin/faults.
type adminFaults struct {
	Source   string           `json:"source"`
	Rules    []map[string]any `json:"rules"`
	Injected map[string]int64 `json:"injected_by_kind"`
}

func (g *gozer) faults(t testing.TB, method, body string) (int, adminFaults, string) {
	t.Helper()
	req, err := http.NewRequest(method, g.adminURL("/admin/faults"), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := g.adminClient.Do(req)
	if err != nil {
		t.Fatalf("%s /admin/faults: %v", method, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v adminFaults
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s /admin/faults: %v: %s", method, err, b)
		}
	}
	return resp.StatusCode, v, string(b)
}

// faultGozer is one demo-origin behind a gozer with the given
// fault_injection rules (YAML list items, each "{...}").
func faultGozer(t *testing.T, rules ...string) (*gozer, *origin) {
	o := startOrigin(t, "demo")
	cfg := oneOrigin(nil, o.Addr)
	if len(rules) > 0 {
		cfg.Extra = "fault_injection:\n"
		for _, r := range rules {
			cfg.Extra += "  - " + r + "\n"
		}
	}
	return startGozer(t, cfg), o
}

// injectedLines are the access-log lines marked injected, and the others.
func injectedLines(g *gozer) (injected, clean []accessLine) {
	for _, l := range g.accessLog() {
		if l.str("injected") != "" {
			injected = append(injected, l)
		} else {
			clean = append(clean, l)
		}
	}
	return injected, clean
}

// TestFaultConditioned: a 100 % abort for requests with a header hits every
// one of them and none of the others, each kind marked and counted.
func TestFaultConditioned(t *testing.T) {
	g, _ := faultGozer(t, `{name: chaos, origin: demo, header: X-Chaos, percent: 100, abort: 503}`)
	c := newClient(t, 10*time.Second)
	const n = 40
	for i := 0; i < n; i++ {
		if r := doGet(c, g.URL("/"), "X-Chaos: 1"); r.Status != 503 || r.Cause != "FAILURE_LOCAL_INJECTED" {
			t.Fatalf("with the header: %v, want 503 FAILURE_LOCAL_INJECTED", r)
		}
		if r := doGet(c, g.URL("/")); r.Status != 200 || r.Cause != "SUCCESS" {
			t.Fatalf("without the header: %v, want 200 SUCCESS", r)
		}
	}
	waitFor(t, 10*time.Second, "every request in the access log", func() bool { return len(g.accessLog()) >= 2*n })
	inj, clean := injectedLines(g)
	if len(inj) != n || len(clean) != n {
		t.Fatalf("%d lines marked injected and %d not, want %d each", len(inj), len(clean), n)
	}
	for _, l := range inj {
		if l.str("injected") != "abort" || l.str("fault_rule") != "chaos" || l.str("cause") != "FAILURE_LOCAL_INJECTED" {
			t.Fatalf("injected line: %v", l)
		}
	}
	if _, f, _ := g.faults(t, "GET", ""); f.Injected["abort"] != n || f.Source != "config" || len(f.Rules) != 1 {
		t.Fatalf("GET /admin/faults: %+v, want %d aborts from the config's rule", f, n)
	}
	fams := scrapeMetrics(t, g)
	if v := value(t, fams, "gozer_faults_injected_total", "kind", "abort"); v != n {
		t.Fatalf("gozer_faults_injected_total{kind=abort} = %v, want %d", v, n)
	}
	if o := g.adminOrigin(t, "demo"); o.Requests["FAILURE_LOCAL_INJECTED"] != n {
		t.Fatalf("origin's requests_by_cause: %v", o.Requests)
	}
}

// TestFaultPercent: a 50 % abort over N requests aborts a share within a
// bound the binomial law makes impossible to miss by chance (±8 standard
// deviations: p < 1e-15), and every other request succeeds.
func TestFaultPercent(t *testing.T) {
	g, _ := faultGozer(t, `{percent: 50, abort: 502}`)
	c := newClient(t, 10*time.Second)
	const n = 400 // mean 200, sd 10
	aborted := 0
	for i := 0; i < n; i++ {
		switch r := doGet(c, g.URL("/")); {
		case r.Status == 502 && r.Cause == "FAILURE_LOCAL_INJECTED":
			aborted++
		case r.Status != 200:
			t.Fatalf("request %d: %v, want 200 or the injected 502", i, r)
		}
	}
	if aborted < 120 || aborted > 280 {
		t.Fatalf("%d of %d aborted at 50 %%, want 120–280", aborted, n)
	}
}

// TestFaultDelay: a delay holds the request it hits for the delay, on a
// timer: meanwhile the loop serves others (2 event loops, 6 other requests
// on one connection while one waits).
func TestFaultDelay(t *testing.T) {
	g, _ := faultGozer(t, `{name: slow, header: X-Delay, percent: 100, delay: 1500ms}`)
	c := newClient(t, 10*time.Second)
	done := make(chan clientReply, 1)
	go func() { done <- doGet(c, g.URL("/"), "X-Delay: 1") }()
	waitFor(t, 5*time.Second, "the delayed request is counted", func() bool {
		_, f, _ := g.faults(t, "GET", "")
		return f.Injected["delay"] == 1
	})
	other := newClient(t, 10*time.Second)
	for i := 0; i < 6; i++ {
		if r := doGet(other, g.URL("/")); r.Status != 200 || r.Took > time.Second {
			t.Fatalf("a request without the header while one is delayed: %v", r)
		}
	}
	// A request body waits (paused) through the delay and reaches the origin whole.
	body := strings.Repeat("0123456789", 5000)
	if r := doRequest(other, "POST", g.URL("/echo"), []byte(body), "X-Delay: 1"); r.Status != 200 || r.Body != body || r.Took < 1500*time.Millisecond {
		t.Fatalf("delayed POST with a body: %v (%d bytes)", r, len(r.Body))
	}
	r := <-done
	if r.Status != 200 || r.Took < 1500*time.Millisecond {
		t.Fatalf("delayed request: %v, want 200 after ≥ 1.5s", r)
	}
	l := g.waitAccessLog(t, "the delayed request", byRequestID(r.ID))[0]
	if l.str("injected") != "delay" || l.str("cause") != "SUCCESS" {
		t.Fatalf("access log of the delayed request: %v", l)
	}
}

// TestFaultReset: the client's connection is reset, no answer; the others
// are served.
func TestFaultReset(t *testing.T) {
	g, _ := faultGozer(t, `{header: X-Reset, header_value: "yes", percent: 100, reset: true}`)
	c := newClient(t, 10*time.Second)
	if r := doGet(c, g.URL("/"), "X-Reset: yes"); r.Err == nil {
		t.Fatalf("reset request got an answer: %v", r)
	}
	if r := doGet(c, g.URL("/"), "X-Reset: no"); r.Status != 200 {
		t.Fatalf("another header value: %v, want 200", r)
	}
	l := g.waitAccessLog(t, "the reset request", func(l accessLine) bool { return l.str("injected") == "reset" })[0]
	if l.str("cause") != "FAILURE_LOCAL_INJECTED_RESET" {
		t.Fatalf("access log of the reset: %v", l)
	}
}

// TestFaultSlowBody: the body comes whole, at the slowed rate.
func TestFaultSlowBody(t *testing.T) {
	g, o := faultGozer(t, `{header: X-Slow, percent: 100, slow_body: 20000}`)
	c := newClient(t, 20*time.Second)
	want := doGet(c, o.URL("/bytes?n=10000")).Body
	fast := doGet(c, g.URL("/bytes?n=10000"))
	slow := doGet(c, g.URL("/bytes?n=10000"), "X-Slow: 1")
	if slow.Status != 200 || slow.Body != want || fast.Body != want {
		t.Fatalf("slowed body: %v (%d bytes), want the origin's %d", slow, len(slow.Body), len(want))
	}
	// 10,000 B at 20,000 B/s: 2,000 B per 100 ms, 4 waits at least.
	if slow.Took < 400*time.Millisecond {
		t.Fatalf("slowed body took %v, want ≥ 400ms", slow.Took)
	}
	l := g.waitAccessLog(t, "the slowed request", byRequestID(slow.ID))[0]
	if l.str("injected") != "slow_body" {
		t.Fatalf("access log: %v", l)
	}
	// Chunked: the pieces are cut inside chunks and their heads, and still whole.
	chunked := doGet(c, g.URL("/bytes?n=10000&chunked=1"), "X-Slow: 1")
	if chunked.Status != 200 || chunked.Body != want || chunked.Took < 400*time.Millisecond {
		t.Fatalf("slowed chunked body: %v (%d bytes)", chunked, len(chunked.Body))
	}
}

// TestFaultAdminLive: PUT /admin/faults puts rules in service at once (over
// the config's), a bad one changes nothing, DELETE goes back.
func TestFaultAdminLive(t *testing.T) {
	g, _ := faultGozer(t)
	c := newClient(t, 10*time.Second)
	if r := doGet(c, g.URL("/")); r.Status != 200 {
		t.Fatalf("before: %v", r)
	}
	for _, bad := range []string{
		`{"rules": [{"percent": 100}]}`,
		`{"rules": [{"percent": 150, "abort": 503}]}`,
		`{"rules": [{"origin": "nope", "percent": 100, "abort": 503}]}`,
		`{"rules": [{"percent": 100, "abort": 503, "reset": true}]}`,
		`{"rulez": []}`,
	} {
		if st, _, body := g.faults(t, "PUT", bad); st != 400 {
			t.Fatalf("PUT %s: %d %s, want 400", bad, st, body)
		}
	}
	st, f, body := g.faults(t, "PUT", `{"rules": [{"name": "live", "path_prefix": "/status", "percent": 100, "abort": 504, "delay": "50ms"}]}`)
	if st != 200 || f.Source != "admin" || len(f.Rules) != 1 || f.Rules[0]["delay"] != "50ms" {
		t.Fatalf("PUT: %d %s", st, body)
	}
	if r := doGet(c, g.URL("/status?code=200")); r.Status != 504 || r.Cause != "FAILURE_LOCAL_INJECTED" {
		t.Fatalf("under the admin's rule: %v", r)
	}
	if r := doGet(c, g.URL("/")); r.Status != 200 {
		t.Fatalf("outside the rule's path: %v", r)
	}
	if st, f, _ := g.faults(t, "DELETE", ""); st != 200 || f.Source != "config" || len(f.Rules) != 0 || f.Injected["delay"] != 1 || f.Injected["abort"] != 1 {
		t.Fatalf("DELETE: %d %+v", st, f)
	}
	if r := doGet(c, g.URL("/status?code=200")); r.Status != 200 {
		t.Fatalf("after DELETE: %v", r)
	}
}

// TestFaultReload: fault_injection is live: a reload puts rules in service
// and takes them out; the admin API's override outlives a reload.
func TestFaultReload(t *testing.T) {
	o := startOrigin(t, "demo")
	cfg := oneOrigin(nil, o.Addr)
	g := startGozer(t, cfg)
	c := newClient(t, 10*time.Second)
	if r := doGet(c, g.URL("/")); r.Status != 200 {
		t.Fatalf("before: %v", r)
	}
	cfg.Extra = "fault_injection:\n  - {name: reloaded, percent: 100, abort: 500}\n"
	g.rewrite(t, cfg)
	if st, body := g.reloadNow(t); st != 200 {
		t.Fatalf("reload: %d %s", st, body)
	}
	if r := doGet(c, g.URL("/")); r.Status != 500 || r.Cause != "FAILURE_LOCAL_INJECTED" {
		t.Fatalf("after the reload: %v", r)
	}
	if st, _, body := g.faults(t, "PUT", `{"rules": []}`); st != 200 {
		t.Fatalf("PUT: %d %s", st, body)
	}
	cfg.Extra = "fault_injection:\n  - {name: again, percent: 100, abort: 502}\n"
	g.rewrite(t, cfg)
	if st, body := g.reloadNow(t); st != 200 {
		t.Fatalf("reload: %d %s", st, body)
	}
	if r := doGet(c, g.URL("/")); r.Status != 200 {
		t.Fatalf("the admin's empty rules outlive a reload: %v", r)
	}
	g.faults(t, "DELETE", "")
	if r := doGet(c, g.URL("/")); r.Status != 502 {
		t.Fatalf("after DELETE, the reloaded config's rule: %v", r)
	}
	cfg.Extra = ""
	g.rewrite(t, cfg)
	if st, body := g.reloadNow(t); st != 200 {
		t.Fatalf("reload: %d %s", st, body)
	}
	if r := doGet(c, g.URL("/")); r.Status != 200 {
		t.Fatalf("rules removed by a reload: %v", r)
	}
}

// TestFaultLua: ctx.inject from a filter, on the filter's own condition.
func TestFaultLua(t *testing.T) {
	o := startOrigin(t, "demo")
	d := newScriptDir(t)
	d.write(t, "inbound", "chaos.lua", luaFilter("chaos", "inbound", 10, `ctx.req:header("x-lua-chaos") ~= nil`,
		`if ctx.req:header("x-lua-chaos") == "abort" then ctx.inject{ abort = 503 } else ctx.inject{ delay = 0.3 } end`))
	g := luaGozer(t, d, filtersConfig{}, servers(o), route{PathPrefix: "/", Origin: "demo"})
	c := newClient(t, 10*time.Second)
	if r := doGet(c, g.URL("/"), "X-Lua-Chaos: abort"); r.Status != 503 || r.Cause != "FAILURE_LOCAL_INJECTED" {
		t.Fatalf("ctx.inject{abort=503}: %v", r)
	}
	if r := doGet(c, g.URL("/"), "X-Lua-Chaos: delay"); r.Status != 200 || r.Took < 300*time.Millisecond {
		t.Fatalf("ctx.inject{delay=0.3}: %v", r)
	}
	for i := 0; i < 10; i++ {
		if r := doGet(c, g.URL("/")); r.Status != 200 {
			t.Fatalf("without the header: %v", r)
		}
	}
	l := g.waitAccessLog(t, "the Lua abort", func(l accessLine) bool { return l.str("injected") == "abort" })[0]
	if l.str("fault_rule") != "lua" {
		t.Fatalf("access log: %v", l)
	}
	waitFor(t, 10*time.Second, "every request in the access log", func() bool { return len(g.accessLog()) >= 12 })
	inj, clean := injectedLines(g)
	if len(inj) != 2 || len(clean) != 10 {
		t.Fatalf("%d injected lines, %d clean, want 2 and 10", len(inj), len(clean))
	}
}

// adaptiveOf is origin name's adaptive_concurrency in GET /admin/origins.
type adaptiveOf struct {
	Algorithm string `json:"algorithm"`
	Limit     int64  `json:"limit"`
	InFlight  int64  `json:"in_flight"`
	Rejected  int64  `json:"rejected_total"`
}

func (g *gozer) adaptive(t testing.TB, name string) adaptiveOf {
	t.Helper()
	resp, err := g.adminClient.Get(g.adminURL("/admin/origins"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var all []struct {
		Name     string      `json:"name"`
		Adaptive *adaptiveOf `json:"adaptive_concurrency"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatal(err)
	}
	for _, o := range all {
		if o.Name == name && o.Adaptive != nil {
			return *o.Adaptive
		}
	}
	t.Fatalf("no adaptive_concurrency for origin %s in /admin/origins", name)
	return adaptiveOf{}
}

// TestAdaptiveConcurrency: 24 clients in a loop; the origin's latency rises
// from 20 ms to 300 ms → the limit falls below half (requests over it: 503,
// counted); it recovers → the limit rises back to 3/4 of what it was. With
// 24 clients a healthy limit stops growing at 48 (twice what is used).
// Healthy is 20 ms, not less: Vegas grows only while a window's latency is
// within a few per cent of the least it has seen, and on a loaded CI machine
// the scheduler's jitter alone is more than that of 2 ms (the limit then
// stayed low for 30 s after the origin recovered).
func TestAdaptiveConcurrency(t *testing.T) {
	for _, algo := range []string{"gradient2", "vegas"} {
		t.Run(algo, func(t *testing.T) { adaptiveConcurrency(t, algo) })
	}
}

func adaptiveConcurrency(t *testing.T, algo string) {
	o := startOrigin(t, "demo")
	g := startGozer(t, oneOrigin(map[string]string{
		"adaptive_concurrency": "{enabled: true, algorithm: " + algo + ", min_limit: 2, max_limit: 200, initial_limit: 20, window: 50ms, long_window: 300}",
	}, o.Addr))
	var delay atomic.Value
	delay.Store("20ms")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok200, rejected atomic.Int64
	c := isolationClient(t, 20*time.Second)
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace := time.NewTimer(0)
			defer pace.Stop()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := doGet(c, g.URL("/slow?delay="+delay.Load().(string)))
				switch {
				case r.Status == 200:
					ok200.Add(1)
				case r.Status == 503 && r.Cause == "FAILURE_LOCAL_THROTTLED_ORIGIN_ADAPTIVE":
					rejected.Add(1)
					// A refused client comes back 10 ms later: load, not a spin.
					pace.Reset(10 * time.Millisecond)
					select {
					case <-pace.C:
					case <-stop:
						return
					}
				case r.Err != nil && errors.Is(r.Err, io.EOF):
				default:
					t.Errorf("unexpected answer: %v", r)
					return
				}
			}
		}()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })

	var healthy int64
	waitFor(t, 20*time.Second, "a healthy origin's limit grows past 40", func() bool {
		a := g.adaptive(t, "demo")
		healthy = a.Limit
		return healthy >= 40 && a.Algorithm == algo
	})
	delay.Store("300ms")
	var low int64
	waitFor(t, 45*time.Second, "the limit falls below half when the origin slows down", func() bool {
		low = g.adaptive(t, "demo").Limit
		return low <= healthy/2
	})
	a := g.adaptive(t, "demo")
	if a.Rejected == 0 {
		waitFor(t, 10*time.Second, "requests over the lowered limit are refused", func() bool { return g.adaptive(t, "demo").Rejected > 0 })
	}
	delay.Store("20ms")
	waitFor(t, 30*time.Second, "the limit rises back when the origin recovers", func() bool {
		return g.adaptive(t, "demo").Limit >= healthy*3/4
	})
	t.Logf("limit: healthy %d, slow %d, recovered %d; %d ok, %d refused", healthy, low, g.adaptive(t, "demo").Limit, ok200.Load(), rejected.Load())
	fams := scrapeMetrics(t, g)
	if v := value(t, fams, "gozer_origin_adaptive_limit", "origin", "demo"); v < 1 {
		t.Fatalf("gozer_origin_adaptive_limit = %v", v)
	}
	if v := value(t, fams, "gozer_origin_adaptive_rejections_total", "origin", "demo"); v < 1 {
		t.Fatalf("gozer_origin_adaptive_rejections_total = %v", v)
	}
	if o := g.adminOrigin(t, "demo"); o.Requests["FAILURE_LOCAL_THROTTLED_ORIGIN_ADAPTIVE"] == 0 {
		t.Fatalf("requests_by_cause: %v", o.Requests)
	}
}

// TestChaosAdminMatchesTheDocs: GET /admin/faults and an origin's
// adaptive_concurrency answer with exactly the keys of docs/ADMIN.md's
// examples.
func TestChaosAdminMatchesTheDocs(t *testing.T) {
	o := startOrigin(t, "demo")
	g := startGozer(t, oneOrigin(map[string]string{"adaptive_concurrency": "{enabled: true}"}, o.Addr))
	docs := docExamples(t)
	if st, _, body := g.faults(t, "PUT", `{"rules": [{"name": "api-drill", "origin": "demo", "header": "X-Chaos", "percent": 100, "delay": "10ms", "abort": 503}]}`); st != 200 {
		t.Fatalf("PUT /admin/faults: %d %s", st, body)
	}
	if r := doGet(newClient(t, 5*time.Second), g.URL("/"), "X-Chaos: 1"); r.Status != 503 {
		t.Fatalf("drill: %v", r)
	}
	matchesDoc(t, docs, g, "/admin/faults")
	all, ok := adminJSON(t, g, "/admin/origins").([]any)
	if !ok || len(all) != 1 {
		t.Fatalf("GET /admin/origins: %v", all)
	}
	compareShapes(t, "adaptive_concurrency", docs["adaptive_concurrency"], all[0].(map[string]any)["adaptive_concurrency"], false)
}
