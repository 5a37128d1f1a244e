package test

// The request path as routes, filters and the origin see it: normalised
// (server.normalize_path, server.merge_slashes) so that "//admin/" and
// "/%61dmin/" are "/admin/" to a filter's deny rule as they are to the
// origin, over HTTP/1.1 and HTTP/2.

import (
	"strings"
	"testing"
	"time"
)

func TestPathNormalized(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "inbound", "10_deny.lua", luaFilter("deny", "inbound", 10, "", `
    if ctx.req.path:sub(1, 7) == "/admin/" then ctx.respond(403, "denied\n") end`))
	oa, ob := startOrigin(t, "a"), startOrigin(t, "b")
	start := func(server map[string]string) *gozer {
		f := filtersConfig{Dir: string(d), Budget: "1s"}
		return startGozer(t, config{Origins: servers(oa, ob), Filters: &f, Server: server, H2C: true,
			Routes: []route{{PathPrefix: "/api/", Origin: "a"}, {PathPrefix: "/", Origin: "b"}}})
	}
	on := start(nil) // the defaults: both on
	off := start(map[string]string{"normalize_path": "false", "merge_slashes": "false"})

	tests := []struct {
		name   string
		g      *gozer
		target string
		status int
		origin string // X-Origin-Name ("" for the filter's 403)
		path   string // the request path the origin printed ("" : not checked)
	}{
		{"slashes merged for the route and the origin", on, "//api//x", 200, "a", "/api/x"},
		{"unreserved escapes decoded, query untouched", on, "/%61pi/%7Ex?q=//%61", 200, "a", "/api/~x?q=//%61"},
		{"reserved escapes kept", on, "/api/a%2Fb%20c", 200, "a", "/api/a%2Fb%20c"},
		{"filter denies merged slashes", on, "//admin/x", 403, "", ""},
		{"filter denies decoded escapes", on, "/%61dmin/x", 403, "", ""},
		{"plain path", on, "/api/x", 200, "a", "/api/x"},
		// Absolute-form: the path ends the authority's "/" or "?"; a path
		// in the query is the query's ("/" routes to b, the origin gets it).
		{"absolute-form path normalised", on, "http://h//api//x", 200, "a", "/api/x"},
		{"absolute-form query is no path", on, "http://h?/api/x", 200, "b", "/?/api/x"},
		{"absolute-form query is not denied either", on, "http://h?/admin/x", 200, "b", "/?/admin/x"},
		// Off, the bytes decide: the route and the filter miss, the origin
		// gets the raw path (its mux, Go's, answers a 307 to the clean one).
		{"off: slashes reach the catch-all route", off, "//api//x", 307, "b", ""},
		{"off: escapes pass the filter", off, "/%61dmin/x", 200, "b", "/%61dmin/x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := dialRaw(t, tc.g.ProxyAddr).roundTrip("GET " + tc.target + " HTTP/1.1\r\nHost: h\r\n\r\n")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, tail(string(body), 300))
			}
			if got := resp.Header.Get("X-Origin-Name"); got != tc.origin {
				t.Fatalf("answered by origin %q, want %q", got, tc.origin)
			}
			if tc.path != "" && !strings.Contains(string(body), "\npath: "+tc.path+"\n") {
				t.Fatalf("origin did not print path %q: %q", tc.path, tail(string(body), 300))
			}
		})
	}

	// HTTP/2 streams become the same request: the same path.
	t.Run("http2", func(t *testing.T) {
		h := dialH2(t, on.ProxyAddr)
		for i, tc := range []struct {
			path, status string
		}{{"//admin/x", "403"}, {"/%61dmin/x", "403"}, {"//api//x", "200"}} {
			id := uint32(2*i + 1)
			if err := h.request(id, "GET", tc.path, true); err != nil {
				t.Fatal(err)
			}
			if st, _ := h.waitStream(id, 10*time.Second); st != tc.status {
				t.Fatalf("%s: status %s, want %s", tc.path, st, tc.status)
			}
		}
	})
}
