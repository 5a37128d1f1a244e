package lua

import (
	"testing"

	"gozer/filters"
)

// TestVarsRecycled: a request's ctx.vars starts empty (no entry, no
// metatable of an earlier request whose table it reuses), is shared by the
// request's filters, and its table goes back to the Loop when the Context is
// reset, at most once.
func TestVarsRecycled(t *testing.T) {
	e := newEnv(t, map[string]string{
		// The first request fills every part of the table; later ones must
		// find it empty.
		"inbound/a.lua": filterSrc("a", "inbound", 1, "", `
			local v = ctx.vars
			local n = 0
			for _ in pairs(v) do n = n + 1 end
			if n ~= 0 or #v ~= 0 or getmetatable(v) ~= nil then
				error("ctx.vars not empty: " .. n .. " entries, length " .. #v)
			end
			v.s, v[1], v[2], v[2.5], v[true] = "x", 1, 2, 3, 4
			v[ctx.req.header("X-Key") or "k"] = 1
			setmetatable(v, { __index = function() return "meta" end })`),
		"inbound/b.lua": filterSrc("b", "inbound", 2, "", `
			if ctx.vars.s ~= "x" or ctx.vars[2] ~= 2 then error("ctx.vars not shared") end`),
	}, Options{})
	ch := e.loop.Chain()
	ctx := newCtx(t, "", nil)
	req := ctx.Req
	var first *varsTable
	for i := range 5 {
		ctx.Reset()
		ctx.Req = req
		ch.Inbound(ctx)
		if ctx.Failed {
			t.Fatalf("request %d failed: %s", i, ctx.FailReason)
		}
		v, ok := ctx.Vars.(*varsTable)
		if !ok {
			t.Fatalf("request %d: Vars is %T", i, ctx.Vars)
		}
		if first == nil {
			first = v
		} else if v != first {
			t.Fatalf("request %d got a new table, not the recycled one", i)
		}
	}
	for _, name := range []string{"a", "b"} {
		if st, _ := status(e.rt, name); st.Errors != 0 || st.Calls != 5 {
			t.Fatalf("filter %s: %+v; log:\n%s", name, st, e.log)
		}
	}
	ctx.Reset()
	ctx.Reset() // a second reset must not hand the table back twice
	if n := len(e.loop.varsFree); n != 1 {
		t.Fatalf("free list holds %d tables after a double reset, want 1", n)
	}
}

// TestVarsRecycleBounds: a table is dropped, not recycled, after varsUses
// requests (gopher-lua keeps deleted keys) or when it held more than
// varsMaxKeys entries; the free list stays bounded.
func TestVarsRecycleBounds(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/a.lua": filterSrc("a", "inbound", 1, "", `
			local n = tonumber(ctx.req.header("X-N") or "1")
			for i = 1, n do ctx.vars["k" .. i] = i end`),
	}, Options{})
	ch := e.loop.Chain()
	run := func(head string) *varsTable {
		t.Helper()
		ctx := newCtx(t, head, nil)
		ch.Inbound(ctx)
		v := ctx.Vars.(*varsTable)
		ctx.Reset()
		return v
	}
	first := run("")
	for range varsUses - 1 {
		if v := run(""); v != first {
			t.Fatal("a table was dropped before varsUses requests")
		}
	}
	if v := run(""); v == first {
		t.Fatalf("a table served more than %d requests", varsUses)
	}
	e.loop.varsFree = nil
	big := run("GET / HTTP/1.1\r\nHost: h\r\nX-N: 40\r\n\r\n")
	if len(e.loop.varsFree) != 0 || run("") == big {
		t.Fatal("a table that held more than varsMaxKeys entries was recycled")
	}
	// Many requests holding tables at once (suspended ones do): each has its
	// own, and the free list keeps varsKeep of them once they end.
	var held []*filters.Context
	seen := map[*varsTable]bool{}
	for range varsKeep + 10 {
		ctx := newCtx(t, "", nil)
		ch.Inbound(ctx)
		held = append(held, ctx)
		if v := ctx.Vars.(*varsTable); seen[v] {
			t.Fatal("two requests in flight share a ctx.vars table")
		} else {
			seen[v] = true
		}
	}
	for _, ctx := range held {
		ctx.Reset()
	}
	if n := len(e.loop.varsFree); n != varsKeep {
		t.Fatalf("free list holds %d tables, want %d", n, varsKeep)
	}
}

// TestReqFieldMemo: ctx.req.path and ctx.req.host come from a one-entry
// cache (strMemo); consecutive requests with the same or another path and
// host, and a path rewritten in the request, read their own.
func TestReqFieldMemo(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/a.lua": filterSrc("a", "inbound", 1, "", `
			ctx.vars.v = ctx.req.path .. "|" .. ctx.req.host
			if ctx.req.header("X-Rewrite") then
				ctx.req.set_path(ctx.req.header("X-Rewrite"))
				ctx.vars.v = ctx.vars.v .. "|" .. ctx.req.path
			end`),
	}, Options{})
	ch := e.loop.Chain()
	for _, c := range []struct{ head, want string }{
		{"GET /a HTTP/1.1\r\nHost: h1\r\n\r\n", "/a|h1"},
		{"GET /a HTTP/1.1\r\nHost: h1\r\n\r\n", "/a|h1"},
		{"GET /b?x=1 HTTP/1.1\r\nHost: h2:80\r\n\r\n", "/b|h2"},
		{"GET /a HTTP/1.1\r\nHost: h1\r\nX-Rewrite: /c?q\r\n\r\n", "/a|h1|/c"},
		{"GET / HTTP/1.1\r\nHost: h1\r\n\r\n", "/|h1"},
	} {
		ctx := newCtx(t, c.head, nil)
		ch.Inbound(ctx)
		if got := vars(ctx, "v"); got != c.want {
			t.Fatalf("%q: got %q, want %q; log:\n%s", c.head, got, c.want, e.log)
		}
		ctx.Reset()
	}
}
