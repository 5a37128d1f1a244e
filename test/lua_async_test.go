package test

// Async Lua filters as a client, an origin and a side service see them:
// ctx.http and ctx.http_all through the named-origin machinery, their errors,
// the loop staying free while calls wait, the per-loop cap, a client that
// leaves while its request waits, and reload with calls in flight.

import (
	"strings"
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
	// The side call has an access-log line of its own naming its parent.
	g.waitAccessLog(t, "the side call's access-log line", func(l accessLine) bool {
		return l.str("origin") == "auth" && l.str("parent_id") != "" && l.str("path") == "/auth"
	})
}
