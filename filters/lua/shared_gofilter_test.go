package lua

import (
	"strings"
	"testing"

	"gozer/filters"
	"gozer/filters/dict"
)

func TestSharedDictAPI(t *testing.T) {
	dicts := dict.NewSet(map[string]int64{"cache": 1 << 20})
	e := newEnv(t, map[string]string{
		"inbound/d.lua": filterSrc("d", "inbound", 1, "", `
      local d = ctx.shared("cache")
      local out = {}
      local function put(v) out[#out + 1] = tostring(v) end
      put(d:get("k"))                 -- nil
      put(d:set("k", "v", 10))        -- true
      put(d:get("k"))                 -- v
      put(d:add("k", "w"))            -- false
      put(d:add("n", 1))              -- true
      put(d:incr("n", 2))             -- 3
      put(d:incr("m", 1, 10, 5))      -- 11
      local v, err = d:incr("k", 1)
      put(v) put(err)                 -- nil  dict: value not a number
      put(d:set("b", true)) put(d:get("b"))  -- true true
      put(d:ttl("k") > 9 and d:ttl("k") <= 10) -- true
      put(d:ttl("n"))                 -- 0
      d:delete("k") put(d:get("k"))   -- nil
      put(d:set("n", nil)) put(d:get("n")) -- true nil
      put(ctx.shared("cache") == d)   -- true
      d:flush_all() put(d:get("m"))   -- nil
      ctx.vars.out = table.concat(out, ",")`),
		"inbound/f.lua": filterSrc("f", "inbound", 0, "", `ctx.vars.seen = tostring(ctx.shared("cache"):get("from_go"))`),
		"inbound/e.lua": filterSrc("e", "inbound", 2, "", `
      local ok, err = pcall(function() ctx.shared("nope") end)
      ctx.vars.unknown = err
      ok, err = pcall(function() ctx.shared("cache"):set("k", {}) end)
      ctx.vars.table = err
      ok, err = pcall(function() ctx.shared("cache").get("k") end)
      ctx.vars.dot = err`),
	}, Options{Dicts: dicts})
	ctx := newCtx(t, "", nil)
	e.loop.Chain().Inbound(ctx)
	want := "nil,true,v,false,true,3,11,nil,dict: value not a number,true,true,true,0,nil,true,nil,true,nil"
	if got := vars(ctx, "out"); got != want {
		t.Fatalf("got  %s\nwant %s\nlog:\n%s", got, want, e.log)
	}
	for key, sub := range map[string]string{
		"unknown": `no shared dictionary "nope"`, "table": "values are strings, numbers or booleans", "dot": "call get with ':'",
	} {
		if got := vars(ctx, key); !strings.Contains(got, sub) {
			t.Errorf("%s: %q, want it to say %q", key, got, sub)
		}
	}
	// Every loop sees the same dictionaries, and so does Go.
	if err := mustDict(t, dicts, "cache").Set("from_go", dict.StringValue("x"), 0, clock()); err != nil {
		t.Fatal(err)
	}
	other := e.rt.NewLoop()
	defer other.Close()
	ctx2 := newCtx(t, "", nil)
	other.Chain().Inbound(ctx2)
	if got := vars(ctx2, "seen"); got != "x" {
		t.Fatalf("another loop read %q", got)
	}
}

func mustDict(t *testing.T, s *dict.Set, name string) *dict.Dict {
	d, ok := s.Get(name)
	if !ok {
		t.Fatalf("no dict %q", name)
	}
	return d
}

// goFilter is a configurable Go filter.
type goFilter struct {
	name  string
	phase filters.Phase
	order int
	apply func(ctx *filters.Context)
	async func(ctx *filters.Context, done func())
}

func (g *goFilter) Name() string                       { return g.name }
func (g *goFilter) Phase() filters.Phase               { return g.phase }
func (g *goFilter) Order() int                         { return g.order }
func (g *goFilter) ShouldFilter(*filters.Context) bool { return true }

type syncGo struct{ *goFilter }

func (s syncGo) Apply(ctx *filters.Context) { s.apply(ctx) }

type asyncGo struct{ *goFilter }

func (a asyncGo) ApplyAsync(ctx *filters.Context, done func()) { a.async(ctx, done) }

// mark appends s to the request's trail (RespondBody is a spare buffer here).
func mark(ctx *filters.Context, s string) { ctx.RespondBody = append(ctx.RespondBody, s...) }

func TestGoFiltersSortIntoTheChain(t *testing.T) {
	var pending func()
	gos := []filters.Filter{
		syncGo{&goFilter{name: "g2", phase: filters.Inbound, order: 2, apply: func(ctx *filters.Context) { mark(ctx, "g2") }}},
		asyncGo{&goFilter{name: "g4", phase: filters.Inbound, order: 4, async: func(ctx *filters.Context, done func()) {
			mark(ctx, "g4")
			pending = done
		}}},
		syncGo{&goFilter{name: "panics", phase: filters.Inbound, order: 5, apply: func(*filters.Context) { panic("boom") }}},
		syncGo{&goFilter{name: "off", phase: filters.Inbound, order: 6, apply: func(ctx *filters.Context) { mark(ctx, "off") }}},
	}
	e := newEnv(t, map[string]string{
		"inbound/l1.lua": filterSrc("l1", "inbound", 1, "", `ctx.vars.x = 1`),
		"inbound/l3.lua": filterSrc("l3", "inbound", 3, "", `ctx.vars.x = 3`),
		"inbound/l9.lua": filterSrc("l9", "inbound", 9, "", `ctx.vars.x = 9`),
		"inbound/g2.lua": filterSrc("g2", "inbound", 7, "", ``), // takes a Go filter's name: refused
	}, Options{GoFilters: gos, Disabled: []string{"off"}})
	ctx, _, resumed := asyncCtx(t)
	e.loop.Chain().Inbound(ctx)
	if string(ctx.RespondBody) != "g2g4" || vars(ctx, "x") != "3" || !ctx.Suspended {
		t.Fatalf("before done: trail %q, x %q, suspended %v", ctx.RespondBody, vars(ctx, "x"), ctx.Suspended)
	}
	pending()
	pending() // a second done is ignored
	if *resumed != 1 || vars(ctx, "x") != "9" || string(ctx.RespondBody) != "g2g4" || ctx.Failed {
		t.Fatalf("after done: resumed %d, x %q, trail %q, failed %v", *resumed, vars(ctx, "x"), ctx.RespondBody, ctx.Failed)
	}
	if e.log.find("error", "go filter panicked: boom") == nil {
		t.Fatalf("the panic was not logged:\n%s", e.log)
	}
	if st, _ := status(e.rt, "g2.lua"); !strings.Contains(st.LastError, "built-in Go filter") {
		t.Fatalf("a script taking a Go filter's name: %+v", st)
	}
	if st, _ := status(e.rt, "g4"); st.File != "(go)" || st.Calls != 1 {
		t.Fatalf("/admin/filters entry of g4: %+v", st)
	}
}

func TestAsyncGoFilterCallsAndAbandon(t *testing.T) {
	var done func()
	var calls []filters.Pending
	g := asyncGo{&goFilter{name: "g", phase: filters.Inbound, order: 1, async: func(ctx *filters.Context, d func()) {
		done = d
		calls = append(calls, ctx.Calls.Call(&filters.SideCall{Origin: "a"}, func(*filters.SideResult) {}))
	}}}
	sync := asyncGo{&goFilter{name: "now", phase: filters.Inbound, order: 2, async: func(ctx *filters.Context, d func()) {
		mark(ctx, "now")
		d() // done at once: the chain goes on without suspending
	}}}
	e := newEnv(t, nil, Options{GoFilters: []filters.Filter{g, sync}})
	ctx, fc, resumed := asyncCtx(t)
	chain := e.loop.Chain()
	chain.Inbound(ctx)
	if !ctx.Suspended || len(fc.calls) != 1 || e.rt.Async().Suspended != 1 {
		t.Fatalf("suspended %v, %d calls, count %d", ctx.Suspended, len(fc.calls), e.rt.Async().Suspended)
	}
	chain.Abandon(ctx)
	if !fc.calls[0].cancelled || ctx.Calls != filters.Caller(fc) || e.rt.Async().Suspended != 0 {
		t.Fatalf("after Abandon: cancelled %v, caller restored %v, count %d", fc.calls[0].cancelled, ctx.Calls == filters.Caller(fc), e.rt.Async().Suspended)
	}
	done() // late: ignored
	if *resumed != 0 {
		t.Fatal("an abandoned request resumed")
	}
	ctx2, _, resumed2 := asyncCtx(t)
	e.loop.Chain().Inbound(ctx2)
	done()
	if *resumed2 != 1 || string(ctx2.RespondBody) != "now" {
		t.Fatalf("second request: resumed %d, trail %q", *resumed2, ctx2.RespondBody)
	}
}
