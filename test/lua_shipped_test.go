package test

// The Lua scripts Gozer ships (scripts/) in front of demo origins, and filters that
// read the request body.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLuaFilterShippedScripts runs the shipped scripts/ directory: debug routing to
// allowed origins only, the /robots.txt endpoint, the routes.lua prefixes and
// rewrite, X-Internal-* request headers stripped, origin self-description (Server,
// X-Powered-By, X-Internal-*) stripped from responses, and Server-Timing on every
// response.
func TestLuaFilterShippedScripts(t *testing.T) {
	t.Parallel()
	demo, other, secret := startOrigin(t, "demo"), startOrigin(t, "other"), startOrigin(t, "secret")
	// An origin that talks about itself, as many do (demo-origin sends no Server).
	leaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Server", "leaky/1.0")
		h.Set("X-Powered-By", "PHP/5.6")
		h.Set("X-Internal-Trace", "abc123")
		h.Set("X-Internal-Shard", "7")
		h.Set("X-Public", "ok")
		fmt.Fprintln(w, "leaky")
	}))
	t.Cleanup(leaky.Close)
	origins := servers(demo, other, secret)
	origins["leaky"] = originConfig{Servers: []string{strings.TrimPrefix(leaky.URL, "http://")}}
	origins["dead"] = originConfig{Servers: []string{closedPort(t)}}
	// server.headers_with_underscores: allow, so that the scripts' own
	// reading of "_" as "-" is what the underscore case tests (the core's
	// default would drop X_User before them).
	g := startGozer(t, config{Origins: origins, Filters: &filtersConfig{Dir: filepath.Join(moduleRoot, "scripts"), Budget: "1s"},
		Server: map[string]string{"headers_with_underscores": "allow"},
		Routes: []route{{PathPrefix: "/leaky/", Origin: "leaky"}, {PathPrefix: "/dead/", Origin: "dead"}, {PathPrefix: "/", Origin: "other"}}})
	c := newClient(t, 10*time.Second)
	timing := regexp.MustCompile(`^gozer;dur=\d+(\.\d+)?$`)

	tests := []struct {
		name   string
		path   string
		hdr    map[string]string
		status int
		origin string // X-Origin-Name ("" for none)
		check  func(t *testing.T, resp *http.Response, body []byte)
	}{
		{"debug route to an allowed origin", "/headers", map[string]string{"X-Gozer-Route-To": "demo"}, 200, "demo",
			func(t *testing.T, _ *http.Response, body []byte) {
				v := decodeView(t, body)
				if got := v.Headers.Get("X-Gozer-Route-To"); got != "" {
					t.Errorf("the origin got X-Gozer-Route-To %q; the filter removes it", got)
				}
				if got := v.Headers.Get("X-Gozer-Edge"); got != "gozer" {
					t.Errorf("the origin got X-Gozer-Edge %q, want gozer", got)
				}
			}},
		{"debug route to an origin not allowed", "/headers", map[string]string{"X-Gozer-Route-To": "secret", "X-Test-Id": "ID"}, 200, "other",
			func(t *testing.T, _ *http.Response, _ []byte) {
				g.waitLog(t, "debug_route", "not allowed", "secret")
			}},
		{"robots.txt endpoint", "/robots.txt", map[string]string{"X-Test-Id": "ID"}, 200, "",
			func(t *testing.T, resp *http.Response, body []byte) {
				if string(body) != "User-agent: *\nDisallow: /api/\n" {
					t.Errorf("body %q, want the robots.txt of scripts/endpoint/robots.lua", body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
					t.Errorf("Content-Type %q, want text/plain", ct)
				}
			}},
		{"routes.lua prefix with rewrite", "/api/v1/items?x=1", nil, 200, "demo",
			func(t *testing.T, _ *http.Response, body []byte) {
				if !strings.Contains(string(body), "path: /v1/items?x=1\n") {
					t.Errorf("the origin did not get /v1/items?x=1: %q", tail(string(body), 300))
				}
			}},
		{"routes.lua prefix", "/api/items", nil, 200, "demo",
			func(t *testing.T, _ *http.Response, body []byte) {
				if !strings.Contains(string(body), "path: /api/items\n") {
					t.Errorf("the origin did not get /api/items: %q", tail(string(body), 300))
				}
			}},
		{"X-Internal-* request headers stripped", "/headers",
			map[string]string{"X-Internal-User": "admin", "X-Internal-Debug": "1", "X-Public-Req": "kept"}, 200, "other",
			func(t *testing.T, _ *http.Response, body []byte) {
				v := decodeView(t, body)
				for name, vals := range v.Headers {
					if strings.HasPrefix(strings.ToLower(name), "x-internal-") {
						t.Errorf("the origin got %s %q", name, vals)
					}
				}
				if got := v.Headers.Get("X-Public-Req"); got != "kept" {
					t.Errorf("the origin got X-Public-Req %q, want kept", got)
				}
			}},
		// What origins trust the gateway to set: a client's own goes, "_" read as "-".
		{"client identity and internal headers stripped, underscores too", "/headers",
			map[string]string{"X-User": "admin", "X_User": "root", "X_Internal_Role": "admin", "X-User-Agent-Hint": "kept"}, 200, "other",
			func(t *testing.T, _ *http.Response, body []byte) {
				v := decodeView(t, body)
				for name, vals := range v.Headers {
					if n := strings.ReplaceAll(strings.ToLower(name), "_", "-"); n == "x-user" || strings.HasPrefix(n, "x-internal-") {
						t.Errorf("the origin got %s %q", name, vals)
					}
				}
				if got := v.Headers.Get("X-User-Agent-Hint"); got != "kept" {
					t.Errorf("the origin got X-User-Agent-Hint %q, want kept", got)
				}
			}},
		{"origin self-description stripped from the response", "/leaky/x", nil, 200, "",
			func(t *testing.T, resp *http.Response, body []byte) {
				for _, h := range []string{"X-Powered-By", "X-Internal-Trace", "X-Internal-Shard"} {
					if got, ok := resp.Header[h]; ok {
						t.Errorf("the client got %s %q", h, got)
					}
				}
				if resp.Header.Get("X-Public") != "ok" || string(body) != "leaky\n" {
					t.Errorf("the response itself changed: X-Public %q, body %q", resp.Header.Get("X-Public"), body)
				}
			}},
		{"gateway error", "/dead/x", nil, 502, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uniqueID("shipped")
			hdr := map[string]string{}
			for k, v := range tc.hdr {
				hdr[k] = strings.ReplaceAll(v, "ID", id)
			}
			resp, body := fetch(t, c, "GET", g.URL(tc.path), nil, hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, tail(string(body), 300))
			}
			if got := resp.Header.Get("X-Origin-Name"); got != tc.origin {
				t.Errorf("answered by origin %q, want %q", got, tc.origin)
			}
			if got := resp.Header.Get("Server-Timing"); !timing.MatchString(got) {
				t.Errorf("Server-Timing = %q, want gozer;dur=MILLISECONDS (scripts/outbound/90_server_timing.lua)", got)
			}
			if got, ok := resp.Header["Server"]; ok {
				t.Errorf("the client got Server %q (scripts/outbound/10_strip_internal.lua removes it)", got)
			}
			if _, ok := tc.hdr["X-Test-Id"]; ok {
				for _, o := range []*origin{demo, other, secret} {
					if s := seen(t, o, id); o.Name != tc.origin && s.Requests+s.Connections > 0 {
						t.Errorf("origin %s saw the request: %+v", o.Name, s)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, resp, body)
			}
		})
	}
	t.Run("shipped filters loaded and error free", func(t *testing.T) {
		want := map[string]bool{"debug_route": false, "routes": false, "request_headers": false,
			"robots": false, "strip_internal": false, "server_timing": false}
		for _, f := range g.adminFilters(t) {
			if _, ok := want[f.Name]; ok {
				want[f.Name] = true
			}
			if f.LastError != "" || f.Errors != 0 {
				t.Errorf("shipped filter %q (%s): last_error %q, errors %d of %d calls", f.Name, f.File, f.LastError, f.Errors, f.Calls)
			}
		}
		for name, found := range want {
			if !found {
				t.Errorf("shipped filter %q not listed in /admin/filters", name)
			}
		}
	})
}

// TestLuaFilterRequestBody: a filter with body = true reads the request body (here
// it routes by a JSON field); the origin still gets the whole body, intact, for
// Content-Length and chunked framing; a body over filters.max_body_bytes is a 413
// that never reaches an origin.
func TestLuaFilterRequestBody(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	d := newScriptDir(t)
	d.write(t, "inbound", "10_body_router.lua", luaFilter("body_router", "inbound", 10, `ctx.req.method == "POST"`, `
    local body = ctx.req.body()
    if body == nil then ctx.vars.body_len = "nil"; return end
    ctx.vars.body_len = tostring(#body)
    local target = body:match('"target"%s*:%s*"([%w_]+)"')
    if target then ctx.route{ origin = target } end`, "body = true"))
	d.write(t, "outbound", "10_body_len.lua", luaFilter("body_len", "outbound", 10, "",
		`ctx.resp.set_header("X-Body-Len", tostring(ctx.vars.body_len))`))
	oa, ob := startOrigin(t, "a"), startOrigin(t, "b")
	g := luaGozer(t, d, filtersConfig{MaxBodyBytes: "64KiB"}, servers(oa, ob), route{PathPrefix: "/", Origin: "a"})

	jsonOf := func(target string, size int) []byte {
		head := fmt.Sprintf(`{"target": %q, "pad": "`, target)
		return []byte(head + strings.Repeat("p", size-len(head)-2) + `"}`)
	}
	tests := []struct {
		name    string
		body    []byte
		chunked bool
		status  int
		origin  string
	}{
		{"Content-Length body routes to b", jsonOf("b", 60<<10), false, 200, "b"},
		{"chunked body routes to b", jsonOf("b", 50<<10), true, 200, "b"},
		{"body routes to a", jsonOf("a", 1000), false, 200, "a"},
		{"body exactly at max_body_bytes", jsonOf("b", limit), false, 200, "b"},
		{"body over max_body_bytes", jsonOf("b", limit+1), false, 413, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uniqueID("body")
			req := "POST /sink HTTP/1.1\r\nHost: gozer.test\r\nX-Test-Id: " + id + "\r\nContent-Type: application/json\r\n"
			if tc.chunked {
				req += "Transfer-Encoding: chunked\r\n\r\n" + chunked(tc.body, 16<<10)
			} else {
				req += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(tc.body), tc.body)
			}
			c := dialRaw(t, g.ProxyAddr)
			_ = c.write(req) // Gozer may answer a 413 before it read everything
			resp, body, err := c.readResponse("POST")
			if resp == nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, tail(string(body), 300))
			}
			if got := resp.Header.Get("X-Origin-Name"); got != tc.origin {
				t.Errorf("answered by origin %q, want %q", got, tc.origin)
			}
			if tc.status != 200 {
				wantGozerStatus(t, resp, "FAILURE_CLIENT_BODY_TOO_LARGE")
				for _, o := range []*origin{oa, ob} {
					if s := seen(t, o, id); s.Requests+s.Connections > 0 {
						t.Errorf("origin %s saw the request refused with 413: %+v", o.Name, s)
					}
				}
				return
			}
			if got, want := resp.Header.Get("X-Body-Len"), fmt.Sprint(len(tc.body)); got != want {
				t.Errorf("the filter read a body of %s bytes, want %s", got, want)
			}
			sum := sha256.Sum256(tc.body)
			if s := decodeSink(t, body); s.Bytes != int64(len(tc.body)) || s.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("the origin got %d bytes sha256 %s, want %d bytes sha256 %x", s.Bytes, s.SHA256, len(tc.body), sum)
			}
		})
	}
	t.Run("GET without a body", func(t *testing.T) {
		resp, body := fetch(t, newClient(t, 10*time.Second), "GET", g.URL("/headers"), nil, nil)
		if resp.StatusCode != 200 || resp.Header.Get("X-Origin-Name") != "a" {
			t.Errorf("status %d from origin %q, want 200 from a (the route table); body %q",
				resp.StatusCode, resp.Header.Get("X-Origin-Name"), tail(string(body), 200))
		}
	})
}
