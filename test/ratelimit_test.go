package test

// Request rate limits end to end (issue 16, point 1): declarative limits by
// client network and by header, ctx.limit from Lua, 429 with Retry-After and
// FAILURE_CLIENT_RATE_LIMITED, the admitted rate within the documented error,
// the keys held bounded, the counters in /admin/limits and /metrics.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// limitsView is GET /admin/limits (the part the tests read).
type limitsView struct {
	Keys     int64            `json:"keys"`
	MaxKeys  int              `json:"max_keys"`
	Evicted  int64            `json:"evicted_total"`
	Rejected map[string]int64 `json:"rejected_by_limit"`
	Limits   []struct {
		Name     string `json:"name"`
		Rejected int64  `json:"rejected_total"`
	} `json:"limits"`
	Connections struct {
		RefusedRate int64 `json:"refused_rate_total"`
		Denied      int64 `json:"denied_total"`
	} `json:"connections"`
	Cluster *struct {
		Fallback bool  `json:"local_fallback"`
		Rounds   int64 `json:"rounds_total"`
		Failures int64 `json:"failures_total"`
	} `json:"cluster"`
}

func (g *gozer) adminLimits(t testing.TB) limitsView {
	t.Helper()
	resp, err := g.adminClient.Get(g.adminURL("/admin/limits"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v limitsView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET /admin/limits: %v", err)
	}
	return v
}

// hammer sends GET path with hdr on conns keep-alive connections as fast as
// they answer for d, and counts the answers by status; any other outcome
// than 200 or 429 (an error, another status) is counted under 0. check, when
// not nil, sees each answer with the time its request was sent.
func hammer(t testing.TB, url string, hdr map[string]string, conns int, d time.Duration, check func(resp *http.Response, sent time.Time)) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer c.CloseIdleConnections()
			local := map[int]int{}
			for time.Now().Before(stop) {
				req, _ := http.NewRequest("GET", url, nil)
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				sent := time.Now()
				resp, err := c.Do(req)
				if err != nil {
					local[0]++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if check != nil {
					check(resp, sent)
				}
				switch resp.StatusCode {
				case 200, 429:
					local[resp.StatusCode]++
				default:
					local[0]++
				}
			}
			mu.Lock()
			for k, v := range local {
				counts[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return counts
}

// span is when a hammer's answered requests went out and came back. The
// limit admits requests between the first one sent and the last answer
// (at most rate × that + burst); and from the first answer to the last
// request sent, every connection kept asking (at least rate × that + burst).
// Both bounds come from what the client saw, not from the hammer's nominal
// duration: a client that stalls (its own collector, a loaded machine) sends
// nothing for a while, and an answer that comes late stretches the period.
type span struct {
	mu                          sync.Mutex
	firstSent, lastSent         time.Time
	firstAnswered, lastAnswered time.Time
}

// see records one answer to a request sent at sent.
func (s *span) see(sent time.Time) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstSent.IsZero() || sent.Before(s.firstSent) {
		s.firstSent = sent
	}
	if sent.After(s.lastSent) {
		s.lastSent = sent
	}
	if s.firstAnswered.IsZero() {
		s.firstAnswered = now
	}
	s.lastAnswered = now
}

// admits reports whether admitted requests fit a limit of rate per second
// with burst over the span, within frac plus slack, and the bounds it tried.
func (s *span) admits(admitted int, rate, burst, frac, slack float64) (ok bool, lo, hi float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lo = rate*s.lastSent.Sub(s.firstAnswered).Seconds() + burst
	hi = rate*s.lastAnswered.Sub(s.firstSent).Seconds() + burst
	got := float64(admitted)
	return got >= lo*(1-frac)-slack && got <= hi*(1+frac)+slack, lo, hi
}

// TestRateLimitLocal: a limit per client /24 and one per API key on /api/:
// over each, 429 FAILURE_CLIENT_RATE_LIMITED with Retry-After; the admitted
// count is rate × time + burst within 10 %; distinct API keys have their own
// buckets; the rejections are counted per limit in /admin/limits and /metrics.
func TestRateLimitLocal(t *testing.T) {
	o := startOrigin(t, "o")
	cfg := oneOrigin(nil, o.Addr)
	cfg.AccessLog = "off" // tens of thousands of requests, no line read
	cfg.Extra = `limits:
  rules:
    - { name: per-net, key: ip/24, rate: 100, per: 1s, burst: 20, path_prefix: /net/ }
    - { name: api-key, key: "header:X-Api-Key", rate: 40, per: 1s, burst: 10, path_prefix: /api/ }
`
	g := startGozer(t, cfg)
	var badRetry atomic.Int64
	var netSpan span
	check := func(resp *http.Response) {
		if resp.StatusCode != 429 {
			return
		}
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > 2 || resp.Header.Get("X-Gozer-Status") != "FAILURE_CLIENT_RATE_LIMITED" {
			badRetry.Add(1)
		}
	}
	got := hammer(t, g.URL("/net/x"), nil, 4, 2*time.Second, func(resp *http.Response, sent time.Time) { netSpan.see(sent); check(resp) })
	if got[0] != 0 || got[429] == 0 {
		t.Fatalf("per-net: %v; want only 200 and 429, some 429", got)
	}
	if ok, lo, hi := netSpan.admits(got[200], 100, 20, 0.1, 2); !ok {
		t.Errorf("per-net admitted %d; want %.0f to %.0f ±10%%", got[200], lo, hi)
	}
	if n := badRetry.Load(); n != 0 {
		t.Errorf("%d answers 429 without Retry-After 1..2 or FAILURE_CLIENT_RATE_LIMITED", n)
	}

	// Two API keys at once: each its own bucket.
	var wg sync.WaitGroup
	res := make([]map[int]int, 2)
	spans := make([]span, 2)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = hammer(t, g.URL("/api/x"), map[string]string{"X-Api-Key": fmt.Sprint("key-", i)}, 2, 2*time.Second,
				func(resp *http.Response, sent time.Time) { spans[i].see(sent); check(resp) })
		}()
	}
	wg.Wait()
	for i, r := range res {
		if ok, lo, hi := spans[i].admits(r[200], 40, 10, 0.1, 2); r[0] != 0 || !ok {
			t.Errorf("api key %d: %v; want %.0f to %.0f admitted ±10%%, no errors", i, r, lo, hi)
		}
	}
	// A request without the header is not limited by api-key.
	if r := hammer(t, g.URL("/api/x"), nil, 1, 300*time.Millisecond, nil); r[429] != 0 || r[0] != 0 {
		t.Errorf("no X-Api-Key: %v; want no 429", r)
	}

	v := g.adminLimits(t)
	rej := map[string]int64{}
	for _, l := range v.Limits {
		rej[l.Name] = l.Rejected
	}
	if rej["per-net"] != int64(got[429]) || rej["api-key"] != int64(res[0][429]+res[1][429]) {
		t.Errorf("/admin/limits rejected %v; want per-net %d, api-key %d", rej, got[429], res[0][429]+res[1][429])
	}
	fams := scrapeMetrics(t, g)
	if m := value(t, fams, "gozer_rate_limited_total", "limit", "per-net"); m != float64(got[429]) {
		t.Errorf("gozer_rate_limited_total{limit=per-net} = %v; want %d", m, got[429])
	}
	// Sampled log: a flood of 429 logs a handful of lines, not one each.
	lines := strings.Count(g.output(), "over a rate limit")
	if lines < 1 || lines > 4 {
		t.Errorf("%d log lines for %d refusals; want 1 to 4 (sampled)", lines, got[429])
	}
}

// TestRateLimitLua: ctx.limit keyed by what a filter computes, answering 429
// itself; 5,000 distinct keys into limits.max_keys 640 keep the node at its
// bound (the store's own test fills 100,000).
func TestRateLimitLua(t *testing.T) {
	o := startOrigin(t, "o")
	d := newScriptDir(t)
	d.write(t, "inbound", "limit.lua", `return { name = "limit", type = "inbound", order = 5,
  apply = function(ctx)
    local user = ctx.req.header("X-User") or "anon"
    local ok, retry = ctx.limit("login:" .. user, { rate = 5, per = 1, burst = 5 })
    if not ok then ctx.respond(429, "slow down\n", { ["Retry-After"] = tostring(retry) }) end
  end }`)
	cfg := config{Origins: servers(o), Routes: []route{{PathPrefix: "/", Origin: "o"}},
		Filters: &filtersConfig{Dir: string(d), Budget: "1s"}, Extra: "limits:\n  max_keys: 640\n"}
	g := startGozer(t, cfg)
	c := newClient(t, 5*time.Second)
	codes := map[int]int{}
	for range 8 {
		resp, _ := fetch(t, c, "GET", g.URL("/login"), nil, map[string]string{"X-User": "alice"})
		codes[resp.StatusCode]++
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "1" {
			t.Errorf("Retry-After %q; want 1", resp.Header.Get("Retry-After"))
		}
	}
	if codes[200] != 5 || codes[429] != 3 {
		t.Errorf("alice: %v; want 5 × 200 (the burst), 3 × 429", codes)
	}
	if resp, _ := fetch(t, c, "GET", g.URL("/login"), nil, map[string]string{"X-User": "bob"}); resp.StatusCode != 200 {
		t.Errorf("bob: %d; want 200 (a bucket of his own)", resp.StatusCode)
	}
	// 5,000 distinct users: the node keeps at most max_keys buckets.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(t, 5*time.Second)
			for i := w; i < 5000; i += 4 {
				resp, _ := fetch(t, c, "GET", g.URL("/login"), nil, map[string]string{"X-User": "u" + strconv.Itoa(i)})
				if resp.StatusCode != 200 {
					t.Errorf("user %d: %d", i, resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	v := g.adminLimits(t)
	if v.Keys > int64(v.MaxKeys) || v.MaxKeys != 640 || v.Evicted < 5000-640 {
		t.Errorf("/admin/limits keys %d of max %d, evicted %d; want ≤ 640 kept, ≥ %d evicted", v.Keys, v.MaxKeys, v.Evicted, 5000-640)
	}
	if v.Rejected["lua"] != 3 {
		t.Errorf("rejected lua %d; want 3", v.Rejected["lua"])
	}
}

// TestRateLimitReload: a reload changes the limits in service (a new rate,
// a new limit) without a restart; limits.redis is restart only; the
// deny list of the config follows the reload.
func TestRateLimitReload(t *testing.T) {
	o := startOrigin(t, "o")
	cfg := oneOrigin(nil, o.Addr)
	cfg.Extra = "limits:\n  rules:\n    - { name: tight, key: ip, rate: 1, per: 1m, burst: 2 }\n"
	g := startGozer(t, cfg)
	c := newClient(t, 5*time.Second)
	status := func() int {
		resp, _ := fetch(t, c, "GET", g.URL("/x"), nil, nil)
		return resp.StatusCode
	}
	if a, b, d := status(), status(), status(); a != 200 || b != 200 || d != 429 {
		t.Fatalf("burst 2: %d %d %d; want 200 200 429", a, b, d)
	}
	cfg.Extra = "limits:\n  rules:\n    - { name: tight, key: ip, rate: 1000, per: 1s, burst: 1000 }\nprotect:\n  deny: [\"192.0.2.0/24\"]\n"
	g.rewrite(t, cfg)
	if code, body := g.reloadNow(t); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	waitFor(t, 5*time.Second, "the new rate serves", func() bool { return status() == 200 })
	if code, body := adminDo(t, g, "GET", "/admin/deny", ""); code != 200 || !strings.Contains(body, "192.0.2.0/24") {
		t.Errorf("deny list after the reload: %d %s; want the config's network", code, body)
	}
	cfg.Extra = "limits:\n  redis: \"127.0.0.1:1\"\n"
	g.rewrite(t, cfg)
	if code, body := g.reloadNow(t); code == 200 || !strings.Contains(body, "limits.redis") {
		t.Errorf("reload with limits.redis changed: %d %s; want refused naming limits.redis", code, body)
	}
}
