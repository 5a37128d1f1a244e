package test

// CORS over real sockets, without a browser (push_browser_test.go has the
// browser): preflights answered before the auth filters with no origin
// call, the headers on the origin's answers, a filter's and the gateway's
// own errors, a refused origin (no headers, counted in /admin/edge and
// /metrics), ctx.cors from Lua, and the push paths' Origin policy (403 with
// its reason in the access log).

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// corsWeb is the policy the CORS tests configure as "web".
const corsWeb = `{allow_origins: ["http://localhost:3000", "https://*.example.com"], allow_methods: [GET, PUT],
    allow_headers: [X-Demo], expose_headers: [X-Request-Id], allow_credentials: true, max_age: 10m}`

// corsGozer starts gozer with the shipped push auth filter, push.cors web
// (policy), a push max_lifetime of 4 s (so that pages see go-aways), an
// "api" origin behind /api (cors web) and /plain (no cors), a closed one
// behind /down (cors web), and an API-key filter on /api (401 without
// X-Demo), plus the Lua policies of /lua and /own.
func corsGozer(t *testing.T, policy string) (*gozer, *fakeOrigin, config) {
	t.Helper()
	api := startFakeOrigin(t, "api", fakeServe)
	cfg := pushConfig(t, map[string]string{"cors": "web", "max_lifetime": "4s", "lifetime_dither": "0"})
	d := scriptDir(cfg.Filters.Dir)
	d.write(t, "inbound", "15_api_key.lua", luaFilter("api_key", "inbound", 15, `ctx.req.path:find("^/api") ~= nil`,
		`if ctx.req.header("X-Demo") == nil then ctx.respond(401, "X-Demo missing\n") end`))
	d.write(t, "inbound", "00_lua_cors.lua", luaFilter("lua_cors", "inbound", 0, "",
		`if ctx.req.path:find("^/lua") then ctx.cors{ allow = ctx.req.header("Origin") == "https://partner.test" }
    elseif ctx.req.path:find("^/own") then ctx.cors{ origins = { "https://own.test" }, methods = { "DELETE" }, max_age = 5 } end`))
	cfg.Origins = map[string]originConfig{"api": {Servers: []string{api.Addr}}, "down": {Servers: []string{closedPort(t)},
		Opts: map[string]string{"retries": "0"}}}
	cfg.Routes = []route{{PathPrefix: "/api", Origin: "api", CORS: "web"}, {PathPrefix: "/down", Origin: "down", CORS: "web"},
		{PathPrefix: "/lua", Origin: "api", CORS: "web"}, {PathPrefix: "/", Origin: "api"}}
	cfg.CORS = map[string]string{"web": policy}
	return startGozer(t, cfg), api, cfg
}

type corsEdge struct {
	Preflights int64            `json:"cors_preflights_total"`
	Refused    map[string]int64 `json:"cors_refused_total"`
}

func (g *gozer) corsEdge(t *testing.T) corsEdge {
	t.Helper()
	_, b := fetch(t, &http.Client{Timeout: 10 * time.Second}, "GET", "http://"+g.AdminAddr+"/admin/edge", nil, nil)
	var e corsEdge
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("GET /admin/edge: %v: %s", err, b)
	}
	return e
}

func TestCORS(t *testing.T) {
	t.Parallel()
	g, api, _ := corsGozer(t, corsWeb)
	c := newClient(t, 10*time.Second)
	const good, evil = "http://localhost:3000", "https://example.com.evil.com"
	preflight := func(path, origin, method, headers string) map[string]string {
		h := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
		if headers != "" {
			h["Access-Control-Request-Headers"] = headers
		}
		return h
	}
	type want map[string]string // header → value ("" absent); ":status" the status
	check := func(name string, resp *http.Response, w want) {
		t.Helper()
		for k, v := range w {
			got := resp.Header.Get(k)
			if k == ":status" {
				got = resp.Status[:3]
			}
			if got != v {
				t.Errorf("%s: %s %q, want %q", name, k, got, v)
			}
		}
	}

	before := api.count()
	resp, _ := fetch(t, c, "OPTIONS", g.URL("/api/items"), nil, preflight("/api/items", good, "PUT", "x-demo"))
	check("allowed preflight", resp, want{":status": "204", "Access-Control-Allow-Origin": good,
		"Access-Control-Allow-Methods": "GET, PUT", "Access-Control-Allow-Headers": "X-Demo",
		"Access-Control-Allow-Credentials": "true", "Access-Control-Max-Age": "600",
		"Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"})
	resp, _ = fetch(t, c, "OPTIONS", g.URL("/api/items"), nil, preflight("/api/items", "https://app.example.com", "GET", ""))
	check("wildcard preflight", resp, want{":status": "204", "Access-Control-Allow-Origin": "https://app.example.com"})
	resp, body := fetch(t, c, "OPTIONS", g.URL("/api/items"), nil, preflight("/api/items", evil, "GET", ""))
	check("refused preflight", resp, want{":status": "403", "Access-Control-Allow-Origin": "", "Vary": "Origin",
		"X-Gozer-Status": "FAILURE_CLIENT_ORIGIN_REFUSED"})
	// An allowed origin asking for what the policy does not allow: 403 with the
	// reason, counted (a browser would refuse the request anyway); the
	// safelisted methods are always allowed, as browsers send them whatever
	// the answer lists.
	for _, ask := range []struct{ name, method, headers, status string }{
		{"a method not listed", "DELETE", "", "403"},
		{"a header not listed", "PUT", "x-demo, x-secret", "403"},
		{"POST, not listed but safelisted", "POST", "X-Demo", "204"},
	} {
		resp, _ = fetch(t, c, "OPTIONS", g.URL("/api/items"), nil, preflight("/api/items", good, ask.method, ask.headers))
		check("preflight asking for "+ask.name, resp, want{":status": ask.status})
	}
	g.waitAccessLog(t, "the refused method's reason", func(l accessLine) bool {
		return l.str("cause") == "FAILURE_CLIENT_ORIGIN_REFUSED" && strings.Contains(l.str("reason"), `method "DELETE"`)
	})
	if api.count() != before {
		t.Errorf("preflights reached the origin (%d requests): the gateway answers them", api.count()-before)
	}
	_ = body

	// Actual requests: the origin's answer, the API-key filter's 401, the
	// gateway's own 502; a refused origin's answer without the headers.
	resp, body = fetch(t, c, "PUT", g.URL("/api/items"), []byte("x"), map[string]string{"Origin": good, "X-Demo": "1"})
	check("origin's answer", resp, want{":status": "200", "Access-Control-Allow-Origin": good, "Access-Control-Allow-Credentials": "true",
		"Access-Control-Expose-Headers": "X-Request-Id", "Vary": "Origin"})
	if !strings.Contains(string(body), "hello from api") {
		t.Errorf("origin's answer: %q", body)
	}
	resp, _ = fetch(t, c, "GET", g.URL("/api/items"), nil, map[string]string{"Origin": good})
	check("a filter's 401", resp, want{":status": "401", "Access-Control-Allow-Origin": good, "Vary": "Origin"})
	resp, _ = fetch(t, c, "GET", g.URL("/down/x"), nil, map[string]string{"Origin": good})
	check("the gateway's 502", resp, want{":status": "502", "Access-Control-Allow-Origin": good, "Vary": "Origin"})
	resp, _ = fetch(t, c, "GET", g.URL("/api/items"), nil, map[string]string{"Origin": evil, "X-Demo": "1"})
	check("refused origin's answer", resp, want{":status": "200", "Access-Control-Allow-Origin": "", "Vary": "Origin"})
	resp, _ = fetch(t, c, "GET", g.URL("/plain/x"), nil, map[string]string{"Origin": good})
	check("a route without cors", resp, want{":status": "200", "Access-Control-Allow-Origin": "", "Vary": ""})
	resp, _ = fetch(t, c, "OPTIONS", g.URL("/plain/x"), nil, preflight("/plain/x", good, "PUT", ""))
	check("a route without cors: its preflight goes to the origin", resp, want{":status": "200", "X-Origin-Name": "api"})

	// Lua: a verdict beats the list; a filter's own policy.
	resp, _ = fetch(t, c, "GET", g.URL("/lua/x"), nil, map[string]string{"Origin": "https://partner.test"})
	check("ctx.cors{allow=true}", resp, want{":status": "200", "Access-Control-Allow-Origin": "https://partner.test"})
	resp, _ = fetch(t, c, "GET", g.URL("/lua/x"), nil, map[string]string{"Origin": good})
	check("ctx.cors{allow=false}", resp, want{":status": "200", "Access-Control-Allow-Origin": ""})
	resp, _ = fetch(t, c, "OPTIONS", g.URL("/own/x"), nil, preflight("/own/x", "https://own.test", "DELETE", ""))
	check("ctx.cors{origins=...}", resp, want{":status": "204", "Access-Control-Allow-Origin": "https://own.test",
		"Access-Control-Allow-Methods": "DELETE", "Access-Control-Max-Age": "5", "Access-Control-Allow-Credentials": ""})

	// Push: a page of a refused origin gets 403 with its reason, whatever its
	// token; an allowed one's SSE answer carries the CORS headers.
	tok := g.pushToken(t, "cors-dev", "1h")
	resp, body = fetch(t, c, "GET", g.URL("/push/sse?token="+tok), nil, map[string]string{"Origin": evil})
	check("SSE from a refused origin", resp, want{":status": "403", "X-Gozer-Status": "FAILURE_CLIENT_ORIGIN_REFUSED"})
	if !strings.Contains(string(body), "not allowed by push.cors") {
		t.Errorf("SSE from a refused origin: body %q", body)
	}
	raw, _ := rawExchange(t, g.ProxyAddr, wsRequest("GET", "/push/ws?token="+tok, g.ProxyAddr, "Origin: "+evil+"\r\n"))
	if raw.StatusCode != 403 {
		t.Errorf("websocket from a refused origin: %d, want 403", raw.StatusCode)
	}
	g.waitAccessLog(t, "the refused push's reason", func(l accessLine) bool {
		return l.str("cause") == "FAILURE_CLIENT_ORIGIN_REFUSED" && strings.Contains(l.str("reason"), evil)
	})
	sse, err := http.NewRequest("GET", g.URL("/push/sse?token="+tok), nil)
	if err != nil {
		t.Fatal(err)
	}
	sse.Header.Set("Origin", good)
	resp, err = c.Do(sse)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	check("SSE from an allowed origin", resp, want{":status": "200", "Access-Control-Allow-Origin": good,
		"Access-Control-Allow-Credentials": "true", "Vary": "Origin"})

	e := g.corsEdge(t)
	if e.Preflights < 4 || e.Refused["preflight"] != 3 || e.Refused["request"] < 2 || e.Refused["push"] != 2 {
		t.Errorf("/admin/edge: %+v; want >= 4 preflights, refused: 3 preflights, >= 2 requests, 2 push", e)
	}
	fams := scrapeMetrics(t, g)
	if f := fams["gozer_cors_refused_total"]; f == nil || len(f.Metric) != 3 {
		t.Errorf("/metrics: gozer_cors_refused_total %v, want 3 series", f)
	}
}

// TestCORSReload: the policies are live settings: a reload that changes
// cors.web's origins (and push.cors) applies to the next request, no restart.
func TestCORSReload(t *testing.T) {
	t.Parallel()
	g, _, cfg := corsGozer(t, corsWeb)
	c := newClient(t, 10*time.Second)
	allowed := func(origin string) string {
		resp, _ := fetch(t, c, "GET", g.URL("/api/x"), nil, map[string]string{"Origin": origin, "X-Demo": "1"})
		return resp.Header.Get("Access-Control-Allow-Origin")
	}
	if got := allowed("https://new.test"); got != "" {
		t.Fatalf("before the reload https://new.test is allowed (%q)", got)
	}
	cfg.CORS = map[string]string{"web": `{allow_origins: ["https://new.test"]}`, "none": `{allow_origins: ["https://nobody.test"]}`}
	cfg.Push["cors"] = "none"
	g.rewrite(t, cfg)
	if st, body := g.reloadNow(t); st != 200 {
		t.Fatalf("reload: %d %s", st, body)
	}
	if got := allowed("https://new.test"); got != "https://new.test" {
		t.Errorf("after the reload https://new.test gets %q", got)
	}
	if got := allowed("http://localhost:3000"); got != "" {
		t.Errorf("after the reload http://localhost:3000 still gets %q", got)
	}
	tok := g.pushToken(t, "reload-page", "1h")
	resp, _ := fetch(t, c, "GET", g.URL("/push/sse?token="+tok), nil, map[string]string{"Origin": "http://localhost:3000"})
	if resp.StatusCode != 403 {
		t.Errorf("push from a page push.cors no longer allows: %d, want 403", resp.StatusCode)
	}
}
