package lua

import (
	"fmt"
	"strings"
	"testing"

	"gozer/filters"
)

// TestPlainFieldsFollowTheRequest: ctx.req.path, ctx.req.host and ctx.vars
// are kept in the objects' member tables between reads (fields.go); whatever
// changed them since (another request on the loop, a rewrite in the same
// call, a Go filter between two Lua ones, a request without a request head),
// a read gives what reqIndex and ctxIndex would.
func TestPlainFieldsFollowTheRequest(t *testing.T) {
	const show = `ctx.req.set_header("X-Got", table.concat(got, "|"))`
	cases := []struct {
		name  string
		code  string
		paths []string // one request per path, in turn, on the same loop
		want  []string // X-Got of each
	}{
		{"path per request", `local got = {ctx.req.path, ctx.req.path}` + "\n" + show,
			[]string{"/a", "/a", "/b", "/a", "/"}, []string{"/a|/a", "/a|/a", "/b|/b", "/a|/a", "/|/"}},
		{"set_path in the call", `local got = {ctx.req.path}; ctx.req.set_path("/z?q=1"); got[2] = ctx.req.path; got[3] = ctx.req.query` + "\n" + show,
			[]string{"/a", "/a"}, []string{"/a|/z|q=1", "/a|/z|q=1"}},
		{"route path in the call", `local got = {ctx.req.path}; ctx.route{path = "/r"}; got[2] = ctx.req.path` + "\n" + show,
			[]string{"/a", "/a"}, []string{"/a|/r", "/a|/r"}},
		{"host header set", `local got = {ctx.req.host}; ctx.req.set_header("HOST", "other.example:81"); got[2] = ctx.req.host` + "\n" + show,
			[]string{"/a", "/a"}, []string{"example.com|other.example", "example.com|other.example"}},
		{"host header deleted", `local got = {ctx.req.host}; ctx.req.del_header("host"); got[2] = "[" .. ctx.req.host .. "]"` + "\n" + show,
			[]string{"/a", "/a"}, []string{"example.com|[]", "example.com|[]"}},
		{"host header added", `local got = {ctx.req.host}; ctx.req.add_header("Host", "added.example"); got[2] = ctx.req.host` + "\n" + show,
			[]string{"/a"}, []string{"example.com|example.com"}}, // the first Host stays
		{"route host in the call", `local got = {ctx.req.host}; ctx.route{host = "routed.example"}; got[2] = ctx.req.host` + "\n" + show,
			[]string{"/a", "/b"}, []string{"example.com|routed.example", "example.com|routed.example"}},
		{"other headers keep host", `local got = {ctx.req.host}; ctx.req.set_header("X-Host", "x"); got[2] = ctx.req.host` + "\n" + show,
			[]string{"/a", "/b"}, []string{"example.com|example.com", "example.com|example.com"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, map[string]string{"inbound/f.lua": filterSrc("f", "inbound", 1, "", c.code)}, Options{})
			for i, p := range c.paths {
				ctx := newCtx(t, fmt.Sprintf("GET %s HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", p), nil)
				e.loop.Chain().Inbound(ctx)
				if got := string(ctx.Req.Header.Peek("X-Got")); got != c.want[i] || ctx.Failed {
					t.Fatalf("request %d (%s): X-Got %q, want %q (failed %v); log:\n%s", i, p, got, c.want[i], ctx.Failed, e.log)
				}
			}
		})
	}
}

// TestPlainFieldsBetweenCalls: a Go filter that rewrites the path between two
// Lua filters of one request is seen by the second; requests whose calls
// interleave on the loop each see their own ctx.vars; a request without a
// request head still gets the error for ctx.req.path after one with a head
// left the field in place.
func TestPlainFieldsBetweenCalls(t *testing.T) {
	rewrite := syncGo{&goFilter{name: "rewrite", phase: filters.Inbound, order: 2,
		apply: func(ctx *filters.Context) { ctx.SetPath([]byte("/rewritten")) }}}
	e := newEnv(t, map[string]string{
		"inbound/a.lua":  filterSrc("a", "inbound", 1, "", `ctx.vars.first = ctx.req.path`),
		"inbound/b.lua":  filterSrc("b", "inbound", 3, "", `ctx.req.set_header("X-Got", ctx.vars.first .. "|" .. ctx.req.path)`),
		"outbound/c.lua": filterSrc("c", "outbound", 1, "", `ctx.resp.set_header("X-Vars", ctx.vars.first)`),
	}, Options{GoFilters: []filters.Filter{rewrite}})
	ch := e.loop.Chain()
	x := newCtx(t, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n", nil)
	y := newCtx(t, "GET /y HTTP/1.1\r\nHost: h\r\n\r\n", nil)
	ch.Inbound(x)
	ch.Inbound(y)
	for _, c := range []struct {
		ctx  *filters.Context
		want string
	}{{x, "/x|/rewritten"}, {y, "/y|/rewritten"}} {
		if got := string(c.ctx.Req.Header.Peek("X-Got")); got != c.want {
			t.Fatalf("X-Got %q, want %q; log:\n%s", got, c.want, e.log)
		}
	}
	// Outbound in the other order: each request's own vars.
	for _, c := range []struct {
		ctx  *filters.Context
		want string
	}{{y, "/y"}, {x, "/x"}} {
		c.ctx.Resp, c.ctx.Cause = newResp(t), filters.Success
		ch.Outbound(c.ctx)
		if got := string(c.ctx.Resp.Header.Peek("X-Vars")); got != c.want {
			t.Fatalf("X-Vars %q, want %q; log:\n%s", got, c.want, e.log)
		}
	}

	// No request head: ctx.req.path raises, though the last call left it in place.
	e = newEnv(t, map[string]string{"outbound/p.lua": filterSrc("p", "outbound", 1, "",
		`local ok, err = pcall(function() return ctx.req.path end)
		ctx.resp.set_header("X-P", ok and ctx.req.path or tostring(err))`)}, Options{})
	ch = e.loop.Chain()
	for i, withReq := range []bool{true, false, true} {
		ctx := newCtx(t, "GET /p HTTP/1.1\r\nHost: h\r\n\r\n", nil)
		if !withReq {
			ctx.Req = nil
		}
		ctx.Resp, ctx.Cause = newResp(t), filters.Success
		ch.Outbound(ctx)
		got := string(ctx.Resp.Header.Peek("X-P"))
		if withReq && got != "/p" || !withReq && !strings.Contains(got, "has no request") {
			t.Fatalf("request %d (head %v): X-P %q; log:\n%s", i, withReq, got, e.log)
		}
	}
}
