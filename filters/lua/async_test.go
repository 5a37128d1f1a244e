package lua

import (
	"strings"
	"testing"
	"time"

	"gozer/filters"
)

// fakeCaller stands for the core's side calls (gateway/exchange makes real
// ones; test/lua_async_test.go runs them end to end): it records each call
// and the test answers it, as the loop would, with answer.
type fakeCaller struct {
	calls []*fakeCall
}

type fakeCall struct {
	sc        filters.SideCall
	done      func(*filters.SideResult)
	cancelled bool
}

func (f *fakeCaller) Call(c *filters.SideCall, done func(*filters.SideResult)) filters.Pending {
	fc := &fakeCall{sc: *c, done: done}
	fc.sc.Headers = append([]filters.Header(nil), c.Headers...)
	f.calls = append(f.calls, fc)
	return fc
}

func (c *fakeCall) Cancel() { c.cancelled = true }

// answer completes call i with r.
func (f *fakeCaller) answer(t *testing.T, i int, r filters.SideResult) {
	t.Helper()
	if i >= len(f.calls) {
		t.Fatalf("call %d was never made (%d calls)", i, len(f.calls))
	}
	f.calls[i].done(&r)
}

// asyncCtx is a request context with a fake caller and a Resume that counts.
func asyncCtx(t *testing.T) (*filters.Context, *fakeCaller, *int) {
	ctx := newCtx(t, "", nil)
	fc := &fakeCaller{}
	resumed := new(int)
	ctx.Calls = fc
	ctx.Resume = func() { *resumed++ }
	return ctx, fc, resumed
}

func TestAsyncFilterResumesTheChain(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/a.lua": filterSrc("a", "inbound", 1, "", `ctx.vars.order = "a"`),
		"inbound/b.lua": filterSrc("b", "inbound", 2, "async = true,", `
      local res, err = ctx.http{ origin = "auth", method = "POST", path = "/check?u=1", host = "auth.local",
        headers = { ["X-One"] = "1" }, body = "hi", timeout = 0.25, max_body = 100 }
      ctx.vars.order = ctx.vars.order .. "b"
      ctx.vars.got = res.status .. " " .. res.body .. " " .. res.headers["x-user"] .. " " .. res.header("X-USER") .. " " .. res:header("x-user") .. " " .. tostring(err)`),
		"inbound/c.lua": filterSrc("c", "inbound", 3, "", `ctx.vars.order = ctx.vars.order .. "c"`),
	}, Options{})
	ctx, fc, resumed := asyncCtx(t)
	e.loop.Chain().Inbound(ctx)
	if !ctx.Suspended || vars(ctx, "order") != "a" || *resumed != 0 {
		t.Fatalf("after the call: suspended %v, order %q, resumed %d", ctx.Suspended, vars(ctx, "order"), *resumed)
	}
	if e.rt.Async().Suspended != 1 {
		t.Fatalf("suspended count %d, want 1", e.rt.Async().Suspended)
	}
	sc := fc.calls[0].sc
	if sc.Origin != "auth" || sc.Method != "POST" || sc.Path != "/check?u=1" || sc.Host != "auth.local" ||
		string(sc.Body) != "hi" || sc.Timeout != 250*time.Millisecond || sc.MaxBody != 100 ||
		len(sc.Headers) != 1 || sc.Headers[0] != (filters.Header{Name: "X-One", Value: "1"}) {
		t.Fatalf("call as sent: %+v", sc)
	}
	fc.answer(t, 0, filters.SideResult{Status: 201, Body: []byte("ok"), Headers: []filters.Header{{Name: "X-User", Value: "al"}}})
	if ctx.Suspended || *resumed != 1 || vars(ctx, "order") != "abc" || vars(ctx, "got") != "201 ok al al al nil" {
		t.Fatalf("after the answer: suspended %v, resumed %d, order %q, got %q", ctx.Suspended, *resumed, vars(ctx, "order"), vars(ctx, "got"))
	}
	if e.rt.Async().Suspended != 0 {
		t.Fatalf("suspended count %d after the chain ended", e.rt.Async().Suspended)
	}
	// The coroutine is reused by the next request (gopher-lua marks it dead).
	ctx2, fc2, resumed2 := asyncCtx(t)
	e.loop.Chain().Inbound(ctx2)
	fc2.answer(t, 0, filters.SideResult{Err: "timeout", Cause: filters.LocalCallTimeout})
	if *resumed2 != 1 || !strings.HasPrefix(vars(ctx2, "order"), "a") {
		t.Fatalf("second request: resumed %d, order %q; log:\n%s", *resumed2, vars(ctx2, "order"), e.log)
	}
}

func TestAsyncCallErrorsAndBatches(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/b.lua": filterSrc("b", "inbound", 2, "async = true,", `
      local res, err = ctx.http{ origin = "auth" }
      ctx.vars.one = tostring(res) .. " " .. err
      local all, errs = ctx.http_all{ { origin = "a" }, { origin = "b" } }
      ctx.vars.all = all[1].status .. " " .. tostring(all[2]) .. " " .. tostring(errs[1]) .. " " .. errs[2]`),
	}, Options{})
	ctx, fc, resumed := asyncCtx(t)
	e.loop.Chain().Inbound(ctx)
	fc.answer(t, 0, filters.SideResult{Err: "FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN: open", Cause: filters.LocalOriginCircuitOpen})
	if len(fc.calls) != 3 || !ctx.Suspended {
		t.Fatalf("the batch: %d calls, suspended %v", len(fc.calls), ctx.Suspended)
	}
	fc.answer(t, 2, filters.SideResult{Err: "timeout"})
	if *resumed != 0 {
		t.Fatal("resumed before the batch's last answer")
	}
	fc.answer(t, 1, filters.SideResult{Status: 204})
	if *resumed != 1 || vars(ctx, "one") != "nil FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN: open" || vars(ctx, "all") != "204 nil nil timeout" {
		t.Fatalf("resumed %d, one %q, all %q; log:\n%s", *resumed, vars(ctx, "one"), vars(ctx, "all"), e.log)
	}
}

func TestAsyncBadCalls(t *testing.T) {
	tests := []struct {
		name, call, want string
	}{
		{"no origin", `ctx.http{ path = "/" }`, "origin is required"},
		{"unknown field", `ctx.http{ origin = "a", url = "/" }`, `unknown field "url"`},
		{"path without slash", `ctx.http{ origin = "a", path = "x" }`, "path must start with '/'"},
		{"path with a space", `ctx.http{ origin = "a", path = "/a b" }`, "no spaces or control characters"},
		{"bad method", `ctx.http{ origin = "a", method = "GE T" }`, "invalid method"},
		{"bad host", `ctx.http{ origin = "a", host = "a/b" }`, "invalid host"},
		{"header injection", `ctx.http{ origin = "a", headers = { X = "a\r\nB: c" } }`, "control character"},
		{"framing header", `ctx.http{ origin = "a", headers = { ["Content-Length"] = "1" } }`, "set by the gateway"},
		{"host header", `ctx.http{ origin = "a", headers = { Host = "x" } }`, "host ="},
		{"bad timeout", `ctx.http{ origin = "a", timeout = -1 }`, "timeout must be"},
		{"bad max_body", `ctx.http{ origin = "a", max_body = 1.5 }`, "max_body must be"},
		{"body not a string", `ctx.http{ origin = "a", body = {} }`, "body must be a string"},
		{"empty batch", `ctx.http_all{}`, "give a list of 1 to 64 calls"},
		{"batch of non-tables", `ctx.http_all{ "a" }`, "call 1 must be a table"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]string{"inbound/b.lua": filterSrc("b", "inbound", 1, "async = true,", tc.call)}, Options{})
			ctx, fc, resumed := asyncCtx(t)
			e.loop.Chain().Inbound(ctx)
			if len(fc.calls) != 0 || ctx.Suspended || *resumed != 0 {
				t.Fatalf("a bad call went out: %d calls, suspended %v", len(fc.calls), ctx.Suspended)
			}
			if line := e.log.find("error", tc.want); line == nil {
				t.Fatalf("no error line saying %q; log:\n%s", tc.want, e.log)
			}
		})
	}
}

func TestAsyncCallOnlyInAsyncApply(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/sync.lua": filterSrc("sync", "inbound", 1, "", `ctx.http{ origin = "a" }`),
		"inbound/should.lua": `return { name = "should", type = "inbound", order = 2, async = true,
      should_filter = function(ctx) ctx.http{ origin = "a" } return true end, apply = function(ctx) end }`,
	}, Options{})
	ctx, fc, _ := asyncCtx(t)
	e.loop.Chain().Inbound(ctx)
	if len(fc.calls) != 0 || ctx.Suspended {
		t.Fatalf("%d calls went out", len(fc.calls))
	}
	for _, name := range []string{"sync", "should"} {
		if st, _ := status(e.rt, name); st.Errors != 1 {
			t.Errorf("filter %s: %d errors, want 1", name, st.Errors)
		}
	}
	if e.log.find("error", "only for async filters") == nil {
		t.Fatalf("no line saying why; log:\n%s", e.log)
	}
	// async is not for outbound filters: such a script is refused.
	e2 := newEnv(t, map[string]string{"outbound/o.lua": filterSrc("o", "outbound", 1, "async = true,", "")}, Options{})
	if st, _ := status(e2.rt, "o.lua"); !strings.Contains(st.LastError, "async is for inbound and endpoint filters") {
		t.Fatalf("outbound async filter: %+v", st)
	}
}

func TestAsyncAbandon(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/b.lua": filterSrc("b", "inbound", 1, "async = true,", `ctx.http_all{ { origin = "a" }, { origin = "b" } }; ctx.vars.after = "ran"`),
	}, Options{})
	ctx, fc, resumed := asyncCtx(t)
	chain := e.loop.Chain()
	chain.Inbound(ctx)
	chain.Abandon(ctx)
	if !fc.calls[0].cancelled || !fc.calls[1].cancelled || ctx.Suspended || ctx.Pending != nil {
		t.Fatalf("after Abandon: cancelled %v %v, suspended %v", fc.calls[0].cancelled, fc.calls[1].cancelled, ctx.Suspended)
	}
	if e.rt.Async().Suspended != 0 || *resumed != 0 || vars(ctx, "after") != "" {
		t.Fatalf("after Abandon: suspended %d, resumed %d, after %q", e.rt.Async().Suspended, *resumed, vars(ctx, "after"))
	}
	// The loop goes on with a fresh coroutine.
	ctx2, fc2, resumed2 := asyncCtx(t)
	e.loop.Chain().Inbound(ctx2)
	fc2.answer(t, 0, filters.SideResult{Status: 200})
	fc2.answer(t, 1, filters.SideResult{Status: 200})
	if *resumed2 != 1 || vars(ctx2, "after") != "ran" {
		t.Fatalf("next request: resumed %d, after %q; log:\n%s", *resumed2, vars(ctx2, "after"), e.log)
	}
}

func TestAsyncCap(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/b.lua": filterSrc("b", "inbound", 1, "async = true,", `ctx.http{ origin = "a" }`),
	}, Options{MaxSuspended: 1})
	ctx1, _, _ := asyncCtx(t)
	e.loop.Chain().Inbound(ctx1)
	ctx2, fc2, resumed2 := asyncCtx(t)
	e.loop.Chain().Inbound(ctx2)
	if !ctx2.Failed || ctx2.FailCause != filters.LocalTooManySuspended || ctx2.Suspended || len(fc2.calls) != 0 || *resumed2 != 0 {
		t.Fatalf("over the cap: failed %v %v, suspended %v, %d calls", ctx2.Failed, ctx2.FailCause, ctx2.Suspended, len(fc2.calls))
	}
	if !ctx1.Suspended || e.rt.Async().Suspended != 1 {
		t.Fatalf("the first request: suspended %v, count %d", ctx1.Suspended, e.rt.Async().Suspended)
	}
}

func TestAsyncBudgetCountsRunTimeOnly(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/wait.lua":  filterSrc("wait", "inbound", 1, "async = true,", `ctx.http{ origin = "a" }; ctx.vars.done = "yes"`),
		"endpoint/spin.lua": filterSrc("spin", "endpoint", 1, "async = true,", `ctx.http{ origin = "a" }; while true do end`),
	}, Options{Budget: 50 * time.Millisecond})
	ctx, fc, resumed := asyncCtx(t)
	e.loop.Chain().Inbound(ctx)
	time.Sleep(150 * time.Millisecond) // waiting three budgets for the answer is free
	fc.answer(t, 0, filters.SideResult{Status: 200})
	if *resumed != 1 || ctx.Failed || vars(ctx, "done") != "yes" {
		t.Fatalf("a filter that waited: resumed %d, failed %v (%s)", *resumed, ctx.Failed, ctx.FailReason)
	}
	ctx2, fc2, resumed2 := asyncCtx(t)
	if !e.loop.Chain().Endpoint("spin", ctx2) || !ctx2.Suspended {
		t.Fatalf("the async endpoint did not suspend")
	}
	fc2.answer(t, 0, filters.SideResult{Status: 200})
	if *resumed2 != 1 || !ctx2.Failed || ctx2.FailCause != filters.LocalFilterTimeout {
		t.Fatalf("a filter that spins after its answer: resumed %d, failed %v %v", *resumed2, ctx2.Failed, ctx2.FailCause)
	}
}

func TestAsyncReloadWhileSuspended(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/v.lua": filterSrc("v", "inbound", 1, "async = true,", `ctx.http{ origin = "a" }; ctx.vars.v = "1"`),
	}, Options{})
	old, fc, resumed := asyncCtx(t)
	e.loop.Chain().Inbound(old)
	writeScript(t, e.dir, "inbound", "v.lua", filterSrc("v", "inbound", 1, "async = true,", `ctx.http{ origin = "a" }; ctx.vars.v = "2"`))
	e.rt.Rescan()
	fresh, fc2, _ := asyncCtx(t)
	e.loop.Chain().Inbound(fresh)
	fc.answer(t, 0, filters.SideResult{Status: 200})
	fc2.answer(t, 0, filters.SideResult{Status: 200})
	if *resumed != 1 || vars(old, "v") != "1" || vars(fresh, "v") != "2" {
		t.Fatalf("old request finished on v%q, new one on v%q; log:\n%s", vars(old, "v"), vars(fresh, "v"), e.log)
	}
}

// TestAsyncCallInsidePcall: gopher-lua cannot yield through a call from Go
// (pcall, a metamethod, table.sort): ctx.http refuses to run there, with an
// error the enclosing pcall catches, and works at the filter's top level.
func TestAsyncCallInsidePcall(t *testing.T) {
	tests := map[string]string{
		"pcall":  `local ok, err = pcall(ctx.http, { origin = "a" })`,
		"xpcall": `local ok, err = xpcall(function() return ctx.http{ origin = "a" } end, function(e) return e end)`,
		"metamethod": `local t = setmetatable({}, { __index = function() return ctx.http{ origin = "a" } end })
      local ok, err = pcall(function() return t.x end)`,
		"sort": `local ok, err = pcall(table.sort, { 2, 1 }, function(a, b) ctx.http{ origin = "a" } return a < b end)`,
	}
	for name, code := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, map[string]string{"inbound/b.lua": filterSrc("b", "inbound", 1, "async = true,",
				code+`
      ctx.vars.err = tostring(err)
      local res = ctx.http{ origin = "b" } -- at the top level it works
      ctx.vars.status = res.status`)}, Options{})
			ctx, fc, resumed := asyncCtx(t)
			e.loop.Chain().Inbound(ctx)
			if !strings.Contains(vars(ctx, "err"), "cannot be called inside pcall") {
				t.Fatalf("the nested call gave %q; log:\n%s", vars(ctx, "err"), e.log)
			}
			if !ctx.Suspended || len(fc.calls) != 1 || fc.calls[0].sc.Origin != "b" {
				t.Fatalf("the top-level call: suspended %v, %d calls", ctx.Suspended, len(fc.calls))
			}
			fc.answer(t, 0, filters.SideResult{Status: 204})
			if *resumed != 1 || vars(ctx, "status") != "204" || ctx.Failed {
				t.Fatalf("resumed %d, status %q, failed %v %q", *resumed, vars(ctx, "status"), ctx.Failed, ctx.FailReason)
			}
		})
	}
}
