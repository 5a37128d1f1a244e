package test

// Async Lua filters as a client, an origin and a side service see them:
// ctx.http and ctx.http_all through the named-origin machinery, their errors,
// the loop staying free while calls wait, the per-loop cap, a client that
// leaves while its request waits, and reload with calls in flight.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// authFilter asks the "auth" origin about the request's Authorization header
// and answers 401/403 itself, or forwards the user as X-User.
const authFilter = `
    local res, err = ctx.http{ origin = "auth", path = "/auth" .. (ctx.req.arg("delay") and ("?delay=" .. ctx.req.arg("delay")) or ""),
      headers = { Authorization = ctx.req.header("Authorization") or "" }, timeout = tonumber(ctx.req.arg("timeout") or "5") }
    if res == nil then
      ctx.respond(503, "auth unavailable: " .. err .. "\n")
      return
    end
    if res.status ~= 200 then
      ctx.respond(res.status, res.body)
      return
    end
    ctx.req.set_header("X-User", res.header("X-Auth-User"))
    ctx.req.set_header("X-Auth-Calls", res.headers["x-auth-calls"])`

func TestLuaAsyncCall(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "inbound", "10_auth.lua", luaFilter("auth", "inbound", 10, "", authFilter, "async = true"))
	api, auth := startOrigin(t, "api"), startOrigin(t, "auth")
	g := luaGozer(t, d, filtersConfig{}, servers(api, auth), route{PathPrefix: "/", Origin: "api"})
	c := newClient(t, 10*time.Second)

	tests := []struct {
		name, token string
		status      int
		user        string // the X-User the origin saw ("" when it was not reached)
		body        string
	}{
		{"allowed", "Bearer allow:alice", 200, "alice", ""},
		{"refused", "Bearer nope", 403, "", "token refused"},
		{"no token", "", 401, "", "no token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.token != "" {
				hdr["Authorization"] = tc.token
			}
			resp, body := fetch(t, c, "GET", g.URL("/headers"), nil, hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, tail(string(body), 300))
			}
			if tc.user != "" && !strings.Contains(string(body), `"X-User":["`+tc.user+`"]`) {
				t.Fatalf("origin did not see X-User %q: %s", tc.user, body)
			}
			if tc.body != "" && !strings.Contains(string(body), tc.body) {
				t.Fatalf("body %q, want it to say %q", body, tc.body)
			}
		})
	}
	// The side call has an access-log line of its own naming its parent, and
	// no protocol: no client spoke it.
	g.waitAccessLog(t, "the side call's access-log line", func(l accessLine) bool {
		return l.str("origin") == "auth" && l.str("parent_id") != "" && l.str("path") == "/auth" && l.str("protocol") == ""
	})
}

// asyncGozer is a gateway on one event loop (so that every request shares
// the loop the side calls wait on) with the filter src as inbound/10_auth.lua,
// origins "api" and "auth" (auth's extra options in authOpts), and
// filters.* settings f.
func asyncGozer(t *testing.T, src string, f filtersConfig, authOpts map[string]string) (*gozer, scriptDir, *origin, *origin) {
	t.Helper()
	d := newScriptDir(t)
	if src != "" {
		d.write(t, "inbound", "10_auth.lua", src)
	}
	api, auth := startOrigin(t, "api"), startOrigin(t, "auth")
	f.Dir = string(d)
	if f.Budget == "" {
		f.Budget = "1s"
	}
	origins := servers(api, auth)
	origins["auth"] = originConfig{Servers: []string{auth.Addr}, Opts: authOpts}
	g := startGozer(t, config{
		Origins: origins, Routes: []route{{PathPrefix: "/", Origin: "api"}}, Filters: &f,
		Server: map[string]string{"event_loops": "1"}, AdminPprof: true,
	})
	return g, d, api, auth
}

// asyncAuth is an async filter that asks auth for the requests whose path
// starts with /auth/ (delay and timeout from the query) and answers them
// itself with what came back: "status=N user=U" or "error=REASON".
var asyncAuth = luaFilter("auth", "inbound", 10, `ctx.req.path:sub(1, 6) == "/auth/"`, `
    local q = ""
    if ctx.req.arg("delay") then q = "?delay=" .. ctx.req.arg("delay") end
    local res, err = ctx.http{ origin = "auth", path = "/auth" .. q, timeout = tonumber(ctx.req.arg("timeout") or "10"),
      max_body = tonumber(ctx.req.arg("max_body") or "65536"),
      headers = { Authorization = ctx.req.header("Authorization") or "" } }
    if res == nil then
      ctx.respond(200, "error=" .. err)
    else
      ctx.respond(200, "status=" .. res.status .. " user=" .. (res.header("X-Auth-User") or ""))
    end`, "async = true")

// TestLuaAsyncCallErrors: every way a side call can fail reaches the filter
// as nil and a reason, never as a failure of the request itself.
func TestLuaAsyncCallErrors(t *testing.T) {
	t.Parallel()
	g, _, _, auth := asyncGozer(t, asyncAuth, filtersConfig{}, map[string]string{"retries": "0"})
	c := newClient(t, 20*time.Second)
	get := func(path string) string {
		resp, body := fetch(t, c, "GET", g.URL(path), nil, map[string]string{"Authorization": "Bearer allow:bob"})
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: status %d, body %q", path, resp.StatusCode, body)
		}
		return string(body)
	}
	if got := get("/auth/ok"); got != "status=200 user=bob" {
		t.Fatalf("an answered call: %q", got)
	}
	start := time.Now()
	if got := get("/auth/slow?delay=5s&timeout=0.2"); got != "error=timeout" {
		t.Fatalf("a call past its timeout: %q, want error=timeout", got)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the timed-out call took %v: its 0.2 s timeout did not end it", d)
	}
	if got := get("/auth/big?max_body=5"); !strings.HasPrefix(got, "error=FAILURE_LOCAL_CALL_RESPONSE_TOO_LARGE") {
		t.Fatalf("an answer over max_body: %q", got)
	}
	g.waitAccessLog(t, "the timed-out side call's line", func(l accessLine) bool {
		return l.str("origin") == "auth" && l.str("cause") == "FAILURE_LOCAL_CALL_TIMEOUT"
	})
	auth.stop(2 * time.Second)
	if got := get("/auth/down"); !strings.HasPrefix(got, "error=FAILURE_ORIGIN_CONNECTIVITY") {
		t.Fatalf("a call to a server that is down: %q", got)
	}
}

// TestLuaAsyncUnknownOriginAndBadCalls: a call naming no configured origin
// comes back as an error; a malformed call raises in the filter (its error
// counted, the request unchanged by it).
func TestLuaAsyncUnknownOriginAndBadCalls(t *testing.T) {
	t.Parallel()
	src := luaFilter("calls", "inbound", 10, "", `
    if ctx.req.path == "/nowhere" then
      local res, err = ctx.http{ origin = "nope" }
      ctx.respond(200, "error=" .. tostring(err))
    elseif ctx.req.path == "/bad" then
      ctx.http{ origin = "auth", path = "no-slash" }
    end`, "async = true")
	g, _, _, _ := asyncGozer(t, src, filtersConfig{}, nil)
	c := newClient(t, 10*time.Second)
	resp, body := fetch(t, c, "GET", g.URL("/nowhere"), nil, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "error=FAILURE_LOCAL_NO_ROUTE") {
		t.Fatalf("unknown origin: status %d, body %q", resp.StatusCode, body)
	}
	resp, body = fetch(t, c, "GET", g.URL("/bad"), nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Origin-Name") != "api" {
		t.Fatalf("a malformed call: status %d from %q, body %q; want the request to go on to api", resp.StatusCode, resp.Header.Get("X-Origin-Name"), body)
	}
	waitFor(t, 5*time.Second, "the malformed call's error is counted", func() bool {
		for _, f := range g.adminFilters(t) {
			if f.Name == "calls" {
				return f.Errors == 1
			}
		}
		return false
	})
}

// TestLuaAsyncLoopStaysFree: while hundreds of requests wait on a slow side
// service, plain requests on the same (only) loop are served at once: every
// one of them is answered before the first waiting request is.
func TestLuaAsyncLoopStaysFree(t *testing.T) {
	t.Parallel()
	g, _, _, _ := asyncGozer(t, asyncAuth, filtersConfig{}, map[string]string{"max_connections_per_server": "1024"})
	const waiting = 300
	firstDone := make(chan time.Time, waiting)
	errs := make(chan error, waiting)
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: waiting}
	t.Cleanup(tr.CloseIdleConnections)
	slow := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for i := 0; i < waiting; i++ {
		go func() {
			resp, err := slow.Get(g.URL("/auth/x?delay=3s"))
			if err != nil {
				errs <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			firstDone <- time.Now()
		}()
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("%d requests wait in the async filter", waiting), func() bool {
		return g.asyncStatus(t).Suspended >= waiting
	})
	c := newClient(t, 10*time.Second)
	var worst time.Duration
	var lastPlain time.Time
	for i := 0; i < 50; i++ {
		start := time.Now()
		resp, body := fetch(t, c, "GET", g.URL("/plain"), nil, nil)
		if resp.StatusCode != 200 || resp.Header.Get("X-Origin-Name") != "api" {
			t.Fatalf("plain request %d: status %d, body %q", i, resp.StatusCode, tail(string(body), 200))
		}
		worst = max(worst, time.Since(start))
		lastPlain = time.Now()
	}
	select {
	case at := <-firstDone:
		t.Fatalf("a waiting request was answered at %v, before the plain requests were all done (%v)", at, lastPlain)
	case err := <-errs:
		t.Fatalf("a waiting request failed: %v", err)
	default:
	}
	t.Logf("50 plain requests while %d waited on the side service: slowest %v", waiting, worst)
	for i := 0; i < waiting; i++ {
		select {
		case <-firstDone:
		case err := <-errs:
			t.Fatalf("a waiting request failed: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d waiting requests were answered", i, waiting)
		}
	}
}

// TestLuaAsyncCap: filters.max_suspended requests wait; one more is answered
// 503 FAILURE_LOCAL_TOO_MANY_SUSPENDED at once, and the waiting ones finish.
func TestLuaAsyncCap(t *testing.T) {
	t.Parallel()
	g, _, _, _ := asyncGozer(t, asyncAuth, filtersConfig{MaxSuspended: 3}, nil)
	done := make(chan int, 3)
	for i := 0; i < 3; i++ {
		go func() {
			c := &http.Client{Timeout: 20 * time.Second}
			resp, err := c.Get(g.URL("/auth/x?delay=2s"))
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	waitFor(t, 10*time.Second, "3 requests wait", func() bool { return g.asyncStatus(t).Suspended == 3 })
	resp, body := fetch(t, newClient(t, 10*time.Second), "GET", g.URL("/auth/one-more"), nil,
		map[string]string{"X-Gozer-Debug": "1"})
	if resp.StatusCode != 503 || !strings.Contains(g.accessCause(t, resp), "FAILURE_LOCAL_TOO_MANY_SUSPENDED") {
		t.Fatalf("over the cap: status %d, body %q", resp.StatusCode, body)
	}
	for i := 0; i < 3; i++ {
		if st := <-done; st != 200 {
			t.Fatalf("a waiting request ended with %d", st)
		}
	}
	if n := g.asyncStatus(t).Suspended; n != 0 {
		t.Fatalf("suspended %d after every request ended", n)
	}
}

// TestLuaAsyncClientLeaves: clients that leave while their requests wait free
// everything: the side calls' connections to the service are closed, nothing
// stays suspended, and Gozer's goroutines are back to what they were.
func TestLuaAsyncClientLeaves(t *testing.T) {
	t.Parallel()
	g, _, _, auth := asyncGozer(t, asyncAuth, filtersConfig{}, nil)
	baseGoroutines := g.goroutines(t)
	const n = 50
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dialRaw(t, g.ProxyAddr)
		conns[i].send("GET /auth/x?delay=30s HTTP/1.1\r\nHost: gozer\r\n\r\n")
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("%d requests wait", n), func() bool { return g.asyncStatus(t).Suspended == n })
	if c := tcpConnsTo(t, auth.Addr); c < n {
		t.Fatalf("%d connections to the auth service for %d waiting calls", c, n)
	}
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, 10*time.Second, "nothing waits any more", func() bool { return g.asyncStatus(t).Suspended == 0 })
	waitFor(t, 10*time.Second, "the side calls' connections are closed", func() bool { return tcpConnsTo(t, auth.Addr) == 0 })
	if !eventually(20*time.Second, func() bool { return g.goroutines(t) <= baseGoroutines }) {
		// What is left, for the reader: the profile's groups (the admin
		// listener's own workers included, which goroutines leaves out).
		_, b := fetch(t, &http.Client{Timeout: 10 * time.Second}, "GET", "http://"+g.AdminAddr+"/debug/pprof/goroutine?debug=1", nil, nil)
		t.Fatalf("goroutines %d after 20s, %d before the requests; profile:\n%s", g.goroutines(t), baseGoroutines, tail(string(b), 6000))
	}
	if o := g.adminOrigin(t, "auth"); o.InFlight != 0 || o.Requests["FAILURE_LOCAL_CALL_ABANDONED"] != n {
		t.Fatalf("auth origin: in_flight %d, requests %v; want 0 and %d abandoned", o.InFlight, o.Requests, n)
	}
}

// TestLuaAsyncBreaker: side calls to a failing service open its breaker like
// any request would; the filter then gets the breaker's refusal at once.
func TestLuaAsyncBreaker(t *testing.T) {
	t.Parallel()
	g, _, _, auth := asyncGozer(t, asyncAuth, filtersConfig{}, map[string]string{
		"retries": "0", "breaker": "{error_percent: 50, request_volume: 5, sleep_window: 30s}"})
	auth.stop(2 * time.Second)
	c := newClient(t, 10*time.Second)
	var last string
	waitFor(t, 10*time.Second, "the auth origin's breaker opens", func() bool {
		_, body := fetch(t, c, "GET", g.URL("/auth/x"), nil, nil)
		last = string(body)
		return strings.HasPrefix(last, "error=FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN")
	})
	if st := g.adminOrigin(t, "auth").Breaker.State; st != "open" {
		t.Fatalf("breaker %q after %q", st, last)
	}
}

// TestLuaAsyncHTTPAll: calls of one batch run at once (two 3 s calls take
// less than the 6 s they would one after the other) and each answer or error
// comes back in its place.
func TestLuaAsyncHTTPAll(t *testing.T) {
	t.Parallel()
	src := luaFilter("all", "inbound", 10, "", `
    local res, errs = ctx.http_all{
      { origin = "auth", path = "/auth?delay=3s", headers = { Authorization = "Bearer allow:a" }, timeout = 10 },
      { origin = "auth", path = "/auth?delay=3s", headers = { Authorization = "Bearer allow:b" }, timeout = 10 },
      { origin = "auth", path = "/auth?delay=5s", timeout = 0.3 },
    }
    ctx.respond(200, res[1]:header("x-auth-user") .. res[2].header("X-Auth-User") .. " " .. tostring(res[3]) .. " " .. errs[3] .. " " .. tostring(errs[1]))`,
		"async = true")
	g, _, _, _ := asyncGozer(t, src, filtersConfig{}, nil)
	start := time.Now()
	resp, body := fetch(t, newClient(t, 20*time.Second), "GET", g.URL("/"), nil, nil)
	took := time.Since(start)
	if resp.StatusCode != 200 || string(body) != "ab nil timeout nil" {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	if took >= 6*time.Second {
		t.Errorf("two 3 s calls took %v together: they did not run at once", took)
	}
}

// asyncStatus is GET /admin/async.
func (g *gozer) asyncStatus(t *testing.T) struct {
	Suspended int64 `json:"suspended"`
} {
	t.Helper()
	var st struct {
		Suspended int64 `json:"suspended"`
	}
	b, _ := json.Marshal(adminJSON(t, g, "/admin/async"))
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// goroutines is Gozer's goroutine count (/debug/pprof/goroutine: needs
// listeners.admin.pprof).
func (g *gozer) goroutines(t testing.TB) int {
	t.Helper()
	_, b := fetch(t, &http.Client{Timeout: 10 * time.Second}, "GET", "http://"+g.AdminAddr+"/debug/pprof/goroutine?debug=1", nil, nil)
	line, rest, _ := strings.Cut(string(b), "\n")
	if !strings.HasPrefix(line, "goroutine profile: total ") {
		t.Fatalf("goroutine profile starts %q", line)
	}
	// Leave out the admin listener's workers: fasthttp keeps one per open
	// connection (and idle ones up to 10 s), and the open connections are
	// the test's own, its polls' (a busy machine's parallel tests make the
	// shared client open more of them).
	n := 0
	for _, group := range strings.Split(rest, "\n\n") {
		count, _, _ := strings.Cut(group, " @ ")
		k, err := strconv.Atoi(strings.TrimSpace(count))
		if err != nil || strings.Contains(group, "fasthttp.(*workerPool)") {
			continue
		}
		n += k
	}
	if n == 0 { // a gozer has its loops at least: the profile's format moved
		t.Fatalf("no goroutine counted in the profile %q", tail(string(b), 300))
	}
	return n
}

// accessCause is the status cause the access log gives the request that
// resp answered.
func (g *gozer) accessCause(t testing.TB, resp *http.Response) string {
	t.Helper()
	id := resp.Header.Get("X-Request-Id")
	return g.waitAccessLog(t, "the line of request "+id, byRequestID(id))[0].str("cause")
}

// tcpConnsTo counts the established TCP connections to addr (127.0.0.1:PORT)
// on this machine, from /proc/net/tcp.
func tcpConnsTo(t testing.TB, addr string) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	want := fmt.Sprintf(":%04X", p)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st ...; st 01 is ESTABLISHED
		if len(fields) > 3 && strings.HasSuffix(fields[2], want) && fields[3] == "01" {
			n++
		}
	}
	return n
}

// TestLuaAsyncReloadWithCallsPending: the async filter is changed while
// requests wait in it under load: none fails, the waiting ones finish on the
// version they started in, new ones get the new version.
func TestLuaAsyncReloadWithCallsPending(t *testing.T) {
	t.Parallel()
	version := func(v string) string {
		return luaFilter("versioned", "inbound", 10, "", `
    local res, err = ctx.http{ origin = "auth", path = "/auth?delay=300ms", headers = { Authorization = "Bearer allow:v" }, timeout = 10 }
    if res == nil then ctx.respond(500, err) return end
    ctx.req.set_header("X-Version", "`+v+`")`, "async = true")
	}
	g, d, _, _ := asyncGozer(t, version("1"), filtersConfig{}, nil)
	const workers = 16
	type result struct {
		status         int
		version        string
		start, stopped time.Time
	}
	results := make(chan result, 10000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 20 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				resp, err := c.Get(g.URL("/headers"))
				if err != nil {
					results <- result{start: start, stopped: time.Now()}
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				v := ""
				if resp.StatusCode == 200 {
					v = decodeView(t, body).Headers.Get("X-Version")
				}
				results <- result{status: resp.StatusCode, version: v, start: start, stopped: time.Now()}
			}
		}()
	}
	waitFor(t, 10*time.Second, "requests wait in version 1", func() bool { return g.asyncStatus(t).Suspended >= workers/2 })
	changed := time.Now()
	d.write(t, "inbound", "10_auth.lua", version("2"))
	var all []result
	sawNew := 0
	deadline := time.After(30 * time.Second)
	for sawNew < workers {
		select {
		case r := <-results:
			all = append(all, r)
			if r.version == "2" {
				sawNew++
			}
		case <-deadline:
			t.Fatalf("after 30 s only %d requests of version 2", sawNew)
		}
	}
	close(stop)
	go func() { wg.Wait(); close(results) }()
	for r := range results {
		all = append(all, r)
	}
	oldFinishedLate := 0
	for _, r := range all {
		if r.status != 200 || r.version == "" {
			t.Fatalf("a request failed during the reload: status %d", r.status)
		}
		if r.start.Before(changed) && r.stopped.After(changed) && r.version == "1" {
			oldFinishedLate++
		}
		if r.start.After(changed.Add(reloadDeadline)) && r.version != "2" {
			t.Fatalf("a request started %v after the change ran version %s", r.start.Sub(changed), r.version)
		}
	}
	if oldFinishedLate == 0 {
		t.Fatal("no request that waited in version 1 at the change finished after it")
	}
	t.Logf("%d requests, %d waited in version 1 across the change and finished on it", len(all), oldFinishedLate)
}

// TestLuaAsyncShippedAuth: scripts/inbound/15_auth.lua with the shipped
// scripts: a bearer token is judged by the auth origin and the decision is
// cached; no token passes untouched; the service down fails closed.
func TestLuaAsyncShippedAuth(t *testing.T) {
	t.Parallel()
	api, auth := startOrigin(t, "api"), startOrigin(t, "auth")
	origins := servers(api, auth)
	origins["auth"] = originConfig{Servers: []string{auth.Addr}, Opts: map[string]string{"retries": "0"}}
	// headers_with_underscores: allow, so that X_User below meets the
	// scripts, not the core's default drop.
	g := startGozer(t, config{Origins: origins, Routes: []route{{PathPrefix: "/", Origin: "api"}},
		Server:  map[string]string{"headers_with_underscores": "allow"},
		Filters: &filtersConfig{Dir: filepath.Join(moduleRoot, "scripts"), Budget: "1s", SharedDicts: map[string]string{"auth": "1MiB"}}})
	c := newClient(t, 10*time.Second)
	get := func(token string) (*http.Response, []byte) {
		hdr := map[string]string{}
		if token != "" {
			hdr["Authorization"] = token
		}
		return fetch(t, c, "GET", g.URL("/headers"), nil, hdr)
	}
	// users: the X-User values the origin got, whatever their case or "_".
	users := func(body []byte) (got []string) {
		for name, vals := range decodeView(t, body).Headers {
			if strings.ReplaceAll(strings.ToLower(name), "_", "-") == "x-user" {
				got = append(got, vals...)
			}
		}
		return got
	}
	resp, body := get("Bearer allow:carol")
	if u := users(body); resp.StatusCode != 200 || len(u) != 1 || u[0] != "carol" {
		t.Fatalf("allowed: status %d, X-User %q, body %q", resp.StatusCode, u, tail(string(body), 300))
	}
	if resp, _ := get("Bearer nope"); resp.StatusCode != 403 {
		t.Fatalf("refused token: status %d", resp.StatusCode)
	}
	resp, body = get("")
	if u := users(body); resp.StatusCode != 200 || len(u) != 0 {
		t.Fatalf("no token: status %d, X-User %q", resp.StatusCode, u)
	}
	// The demo origin counts its /auth calls (X-Auth-Calls); asking it
	// directly counts one more.
	authCalls := func() int {
		resp, _ := fetch(t, c, "GET", "http://"+auth.Addr+"/auth", nil, nil)
		n, _ := strconv.Atoi(resp.Header.Get("X-Auth-Calls"))
		return n
	}
	before := authCalls()
	for i := 0; i < 5; i++ {
		if resp, _ := get("Bearer allow:carol"); resp.StatusCode != 200 {
			t.Fatalf("cached allow: status %d", resp.StatusCode)
		}
		if resp, _ := get("Bearer nope"); resp.StatusCode != 403 {
			t.Fatalf("cached refusal: status %d", resp.StatusCode)
		}
	}
	if n := authCalls(); n != before+1 {
		t.Fatalf("%d calls to auth for cached decisions", n-before-1)
	}
	// A client's own X-User never reaches the origin in the head: not without a token,
	// not beside the one the auth service named (raw: two copies, "_").
	for _, tc := range []struct {
		name, head string
		want       []string
	}{
		{"no token", "X-User: admin\r\nX_User: root\r\n", nil},
		{"allowed token", "Authorization: Bearer allow:carol\r\nX-User: root\r\nX-User: admin\r\nX_User: root\r\n", []string{"carol"}},
		// Connection names the client's fields for this hop, not the filter's.
		{"allowed token, X-User named in Connection", "Authorization: Bearer allow:carol\r\nConnection: X-User, X-Gozer-Edge\r\n", []string{"carol"}},
	} {
		resp, body := rawExchange(t, g.ProxyAddr, "GET /headers HTTP/1.1\r\nHost: x\r\n"+tc.head+"Connection: close\r\n\r\n")
		if u := users([]byte(body)); resp.StatusCode != 200 || fmt.Sprint(u) != fmt.Sprint(tc.want) {
			t.Fatalf("%s, client-sent X-User: status %d, the origin got X-User %q, want %q", tc.name, resp.StatusCode, u, tc.want)
		}
		if edge := decodeView(t, []byte(body)).Headers.Get("X-Gozer-Edge"); edge != "gozer" {
			t.Fatalf("%s: the origin got X-Gozer-Edge %q, want the filter's gozer", tc.name, edge)
		}
	}
	// One credential per request: the filter would judge the first, an
	// origin might use the second.
	if resp, _ := rawExchange(t, g.ProxyAddr, "GET /headers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer allow:carol\r\n"+
		"Authorization: Bearer allow:mallory\r\nConnection: close\r\n\r\n"); resp.StatusCode != 400 {
		t.Fatalf("two Authorization headers: status %d, want 400", resp.StatusCode)
	}
	matchesDoc(t, docExamples(t), g, "/admin/async")
	auth.stop(2 * time.Second)
	if resp, _ := get("Bearer allow:dave"); resp.StatusCode != 503 {
		t.Fatalf("auth service down: status %d, want 503 (fail closed)", resp.StatusCode)
	}
}
