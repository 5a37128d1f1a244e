package test

// The Lua filter chain as a client and an origin see it: routing, header and path
// rewrites, short-circuit answers, endpoints, per-request vars, disabled filters.

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLuaFilterRouting: an inbound filter routes by path prefix and by Host to one of
// two origins; the config routes: table is the fallback when no filter routes; no
// route at all is a 404 FAILURE_LOCAL_NO_ROUTE, and outbound filters run on it too.
func TestLuaFilterRouting(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "inbound", "10_router.lua", luaFilter("router", "inbound", 10, "", `
    local p = ctx.req.path
    if p:sub(1, 3) == "/a/" then ctx.route{ origin = "a" }
    elseif p:sub(1, 3) == "/b/" then ctx.route{ origin = "b" }
    elseif ctx.req.host == "b.example" then ctx.route{ origin = "b" }
    elseif p == "/unknown-origin" then ctx.route{ origin = "nope" }
    end`))
	d.write(t, "outbound", "10_mark.lua", luaFilter("mark", "outbound", 10, "", `
    ctx.resp.set_header("X-Outbound", "ran")
    ctx.resp.set_header("X-Seen-Cause", ctx.cause)`))
	oa, ob := startOrigin(t, "a"), startOrigin(t, "b")
	g := luaGozer(t, d, filtersConfig{}, servers(oa, ob), route{PathPrefix: "/fallback/", Origin: "a"})
	c := newClient(t, 10*time.Second)

	tests := []struct {
		name, path, host string
		status           int
		origin           string // X-Origin-Name the client must see ("" for a gateway answer)
		cause            string // X-Gozer-Status ("" for none)
		seenCause        string // ctx.cause in the outbound filter
	}{
		{"path prefix to origin a", "/a/x", "", 200, "a", "", "SUCCESS"},
		{"path prefix to origin b", "/b/x", "", 200, "b", "", "SUCCESS"},
		{"Host to origin b before the route table", "/fallback/x", "b.example", 200, "b", "", "SUCCESS"},
		{"no filter route: route table fallback", "/fallback/x", "", 200, "a", "", "SUCCESS"},
		{"no route at all", "/nowhere", "", 404, "", "FAILURE_LOCAL_NO_ROUTE", "FAILURE_LOCAL_NO_ROUTE"},
		{"filter routes to an unknown origin", "/unknown-origin", "", 404, "", "FAILURE_LOCAL_NO_ROUTE", "FAILURE_LOCAL_NO_ROUTE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.host != "" {
				hdr["Host"] = tc.host
			}
			resp, body := fetch(t, c, "GET", g.URL(tc.path), nil, hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, tail(string(body), 300))
			}
			if got := resp.Header.Get("X-Origin-Name"); got != tc.origin {
				t.Errorf("answered by origin %q, want %q", got, tc.origin)
			}
			checkGozerStatus(t, resp, tc.cause)
			if got := resp.Header.Get("X-Outbound"); got != "ran" {
				t.Errorf("X-Outbound = %q: the outbound filter did not run on this response", got)
			}
			if got := resp.Header.Get("X-Seen-Cause"); got != tc.seenCause {
				t.Errorf("ctx.cause in the outbound filter = %q, want %q", got, tc.seenCause)
			}
		})
	}
}

// TestLuaFilterHeaderRewrites: request headers set, added and deleted by an inbound
// filter and its path rewrites reach the origin; response headers set and deleted by
// an outbound filter reach the client, on the gateway's own 502 too.
func TestLuaFilterHeaderRewrites(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "inbound", "10_rewrite.lua", luaFilter("rewrite", "inbound", 10, "", `
    ctx.req.set_header("X-Set", "by-filter")
    ctx.req.add_header("X-Add", "from-filter")
    ctx.req.del_header("X-Del")
    if ctx.req.path == "/old/place" then
      ctx.req.set_path("/headers?moved=" .. (ctx.req.arg("q") or "none"))
    elseif ctx.req.path == "/old/route" then
      ctx.route{ path = "/headers?via=route" }
    end`))
	d.write(t, "inbound", "20_path_seen.lua", luaFilter("path_seen", "inbound", 20, "", `
    ctx.req.set_header("X-Path-Seen", ctx.req.path)`))
	d.write(t, "outbound", "10_resp.lua", luaFilter("resp", "outbound", 10, "", `
    ctx.resp.set_header("X-Out", "yes")
    ctx.resp.del_header("X-Origin-Name")
    ctx.resp.del_header("Content-Type")`))
	o := startOrigin(t, "o")
	origins := servers(o)
	origins["dead"] = originConfig{Servers: []string{closedPort(t)}}
	g := luaGozer(t, d, filtersConfig{}, origins,
		route{PathPrefix: "/dead/", Origin: "dead"}, route{PathPrefix: "/", Origin: "o"})
	c := newClient(t, 10*time.Second)

	sent := map[string]string{"X-Set": "client", "X-Add": "client", "X-Del": "client"}
	tests := []struct {
		name   string
		path   string
		status int
		cause  string
		check  func(t *testing.T, v originView)
	}{
		{"set, add and del headers", "/headers", 200, "", func(t *testing.T, v originView) {
			if got := v.Headers.Values("X-Set"); len(got) != 1 || got[0] != "by-filter" {
				t.Errorf("origin got X-Set %q, want only [by-filter]", got)
			}
			if got := v.Headers.Values("X-Add"); strings.Join(got, ",") != "client,from-filter" {
				t.Errorf("origin got X-Add %q, want [client from-filter]", got)
			}
			if got, ok := v.Headers["X-Del"]; ok {
				t.Errorf("origin got X-Del %q, deleted by the filter", got)
			}
		}},
		{"set_path rewrite", "/old/place?q=7", 200, "", func(t *testing.T, v originView) {
			if v.URI != "/headers?moved=7" {
				t.Errorf("origin got request-target %q, want /headers?moved=7", v.URI)
			}
			if got := v.Headers.Get("X-Path-Seen"); got != "/headers" {
				t.Errorf("ctx.req.path in a later filter = %q, want the rewritten /headers", got)
			}
		}},
		{"ctx.route path rewrite", "/old/route", 200, "", func(t *testing.T, v originView) {
			if v.URI != "/headers?via=route" {
				t.Errorf("origin got request-target %q, want /headers?via=route", v.URI)
			}
		}},
		{"outbound headers on a gateway 502", "/dead/x", 502, "FAILURE_ORIGIN_CONNECTIVITY", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := fetch(t, c, "GET", g.URL(tc.path), nil, sent)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, tail(string(body), 300))
			}
			checkGozerStatus(t, resp, tc.cause)
			if got := resp.Header.Get("X-Out"); got != "yes" {
				t.Errorf("X-Out = %q, want yes (set by the outbound filter)", got)
			}
			for _, h := range []string{"X-Origin-Name", "Content-Type"} {
				if got, ok := resp.Header[h]; ok {
					t.Errorf("client got %s %q, deleted by the outbound filter", h, got)
				}
			}
			if tc.check != nil {
				tc.check(t, decodeView(t, body))
			}
		})
	}
}

// TestLuaFilterRespondShortCircuit: ctx.respond in an inbound filter answers at once:
// the origin never sees the request, later inbound filters are skipped, outbound
// filters run. An endpoint filter chosen with ctx.route{endpoint=} answers, and so
// does the built-in endpoint "health".
func TestLuaFilterRespondShortCircuit(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "inbound", "10_gate.lua", luaFilter("gate", "inbound", 10, "", `
    local p = ctx.req.path
    if p == "/blocked" then
      ctx.respond(403, "blocked by lua\n", { ["X-Blocked"] = "yes" })
    elseif p == "/ep" then ctx.route{ endpoint = "x" }
    elseif p == "/hc" then ctx.route{ endpoint = "health" }
    elseif p == "/ep-missing" then ctx.route{ endpoint = "nope" }
    end`))
	d.write(t, "inbound", "20_later.lua", luaFilter("later", "inbound", 20, "", `
    ctx.req.set_header("X-Later", "ran")
    ctx.vars.later = "ran"`))
	d.write(t, "endpoint", "x.lua", luaFilter("x", "endpoint", 0, "", `
    ctx.respond(200, "answered by endpoint x\n", { ["X-Endpoint"] = "x" })
    ctx.resp.set_header("X-Endpoint-Extra", "yes")`))
	d.write(t, "outbound", "10_after.lua", luaFilter("after", "outbound", 10, "", `
    ctx.resp.set_header("X-Out", "ran")
    ctx.resp.set_header("X-Later-Ran", tostring(ctx.vars.later))`))
	o := startOrigin(t, "o")
	g := luaGozer(t, d, filtersConfig{}, servers(o), route{PathPrefix: "/", Origin: "o"})
	c := newClient(t, 10*time.Second)

	tests := []struct {
		name      string
		path      string
		status    int
		body      string            // exact body ("" : not checked)
		headers   map[string]string // response headers the client must see
		reach     bool              // the origin gets the request
		laterRan  string            // ctx.vars.later as the outbound filter saw it
		gozerCode string
	}{
		{"ctx.respond short-circuits", "/blocked", 403, "blocked by lua\n",
			map[string]string{"X-Blocked": "yes"}, false, "nil", ""},
		{"endpoint filter answers", "/ep", 200, "answered by endpoint x\n",
			map[string]string{"X-Endpoint": "x", "X-Endpoint-Extra": "yes"}, false, "ran", ""},
		{"built-in health endpoint", "/hc", 200, "ok\n", nil, false, "ran", ""},
		{"unknown endpoint", "/ep-missing", 404, "", nil, false, "ran", "FAILURE_LOCAL_NO_ROUTE"},
		{"no short-circuit: proxied", "/headers", 200, "", nil, true, "ran", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uniqueID("respond")
			resp, body := fetch(t, c, "GET", g.URL(tc.path), nil, map[string]string{"X-Test-Id": id})
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, tail(string(body), 300))
			}
			if tc.body != "" && string(body) != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			for k, v := range tc.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			checkGozerStatus(t, resp, tc.gozerCode)
			if got := resp.Header.Get("X-Out"); got != "ran" {
				t.Errorf("X-Out = %q: the outbound filter did not run", got)
			}
			if got := resp.Header.Get("X-Later-Ran"); got != tc.laterRan {
				t.Errorf("the later inbound filter: ctx.vars.later = %q, want %q", got, tc.laterRan)
			}
			s := seen(t, o, id)
			switch {
			case tc.reach && s.Requests != 1:
				t.Errorf("the origin saw the request %d times, want once", s.Requests)
			case !tc.reach && s.Requests+s.Connections > 0:
				t.Errorf("the origin saw a request answered by a filter: %+v", s)
			}
			if tc.reach {
				if v := decodeView(t, body); v.Headers.Get("X-Later") != "ran" {
					t.Errorf("origin got X-Later %q, want ran", v.Headers.Get("X-Later"))
				}
			}
		})
	}
}

// TestLuaFilterVarsPerRequest: ctx.vars is shared by the filters of one request
// (inbound to inbound to outbound) and starts empty for the next request on the same
// keep-alive connection.
func TestLuaFilterVarsPerRequest(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "inbound", "10_tag.lua", luaFilter("tag", "inbound", 10, "", `
    local tag = ctx.req.header("X-Tag")
    if tag then ctx.vars.tag = tag end
    ctx.vars.n = (ctx.vars.n or 0) + 1`))
	d.write(t, "inbound", "20_count.lua", luaFilter("count", "inbound", 20, "", `
    ctx.vars.n = (ctx.vars.n or 0) + 10`))
	d.write(t, "outbound", "10_show.lua", luaFilter("show", "outbound", 10, "", `
    ctx.resp.set_header("X-Vars-Tag", tostring(ctx.vars.tag))
    ctx.resp.set_header("X-Vars-N", tostring(ctx.vars.n))`))
	o := startOrigin(t, "o")
	g := luaGozer(t, d, filtersConfig{}, servers(o), route{PathPrefix: "/", Origin: "o"})

	conn := dialRaw(t, g.ProxyAddr) // one keep-alive connection for every step
	steps := []struct {
		tag, wantTag string
	}{
		{"one", "one"},
		{"", "nil"},
		{"two", "two"},
		{"", "nil"},
		{"", "nil"},
	}
	for i, st := range steps {
		var hs []string
		if st.tag != "" {
			hs = append(hs, "X-Tag: "+st.tag)
		}
		resp, body := conn.roundTrip(request("GET", "/headers", hs...))
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d, body %q", i+1, resp.StatusCode, tail(string(body), 200))
		}
		if got := resp.Header.Get("X-Vars-Tag"); got != st.wantTag {
			t.Errorf("request %d (X-Tag %q): ctx.vars.tag in the outbound filter = %q, want %q", i+1, st.tag, got, st.wantTag)
		}
		if got := resp.Header.Get("X-Vars-N"); got != "11" {
			t.Errorf("request %d: ctx.vars.n = %q, want 11 (1 + 10, from two inbound filters of this request only)", i+1, got)
		}
	}
}

// TestLuaFilterDisabledByConfig: a filter named in filters.disabled never runs,
// though its file is loaded and listed as disabled in /admin/filters.
func TestLuaFilterDisabledByConfig(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "outbound", "10_off.lua", luaFilter("off", "outbound", 10, "", `ctx.resp.set_header("X-Off", "ran")`))
	d.write(t, "outbound", "20_on.lua", luaFilter("on", "outbound", 20, "", `ctx.resp.set_header("X-On", "ran")`))
	d.write(t, "inbound", "10_off_in.lua", luaFilter("off_in", "inbound", 10, "",
		`ctx.respond(418, "the disabled inbound filter ran\n")`))
	o := startOrigin(t, "o")
	g := luaGozer(t, d, filtersConfig{Disabled: []string{"off", "off_in"}}, servers(o), route{PathPrefix: "/", Origin: "o"})
	c := newClient(t, 10*time.Second)

	for i := range 4 {
		resp, body := fetch(t, c, "GET", g.URL("/headers"), nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d, body %q (a disabled inbound filter answers 418)", i, resp.StatusCode, tail(string(body), 200))
		}
		if got := resp.Header.Get("X-Off"); got != "" {
			t.Errorf("request %d: X-Off = %q: the disabled filter ran", i, got)
		}
		if got := resp.Header.Get("X-On"); got != "ran" {
			t.Errorf("request %d: X-On = %q: the enabled filter did not run", i, got)
		}
	}
	for _, tc := range []struct {
		name     string
		disabled bool
	}{{"off", true}, {"off_in", true}, {"on", false}} {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := g.adminFilter(t, tc.name)
			switch {
			case !ok:
				t.Fatalf("/admin/filters does not list %q: %+v", tc.name, g.adminFilters(t))
			case f.Disabled != tc.disabled:
				t.Errorf("/admin/filters %q disabled = %v, want %v", tc.name, f.Disabled, tc.disabled)
			case tc.disabled && f.Calls != 0:
				t.Errorf("/admin/filters %q calls = %d, want 0 for a disabled filter", tc.name, f.Calls)
			case !tc.disabled && f.Calls < 4:
				t.Errorf("/admin/filters %q calls = %d, want >= 4", tc.name, f.Calls)
			case f.Hash == "" || f.File == "":
				t.Errorf("/admin/filters %q: file %q hash %q: the file should be loaded", tc.name, f.File, f.Hash)
			}
		})
	}
}
