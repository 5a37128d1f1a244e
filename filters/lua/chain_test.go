package lua

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"gozer/filters"
)

func TestChainOrderAndShortCircuit(t *testing.T) {
	mark := func(tag string) string { return `ctx.vars.trail = (ctx.vars.trail or "") .. "` + tag + `"` }
	cases := []struct {
		name      string
		scripts   map[string]string
		wantTrail string
		responded bool
		failed    filters.Cause
	}{
		{
			name: "by order then name",
			scripts: map[string]string{
				"inbound/a.lua": filterSrc("b", "inbound", 10, "", mark("b")),
				"inbound/b.lua": filterSrc("a", "inbound", 10, "", mark("a")),
				"inbound/c.lua": filterSrc("c", "inbound", 5, "", mark("c")),
			},
			wantTrail: "cab",
		},
		{
			name: "should_filter false skips apply",
			scripts: map[string]string{
				"inbound/a.lua": filterSrc("a", "inbound", 1, `should_filter = function(ctx) return ctx.req.path == "/other" end,`, mark("a")),
				"inbound/b.lua": filterSrc("b", "inbound", 2, `should_filter = function(ctx) return ctx.req.path == "/a/b" end,`, mark("b")),
			},
			wantTrail: "b",
		},
		{
			name: "respond stops the inbound chain",
			scripts: map[string]string{
				"inbound/a.lua": filterSrc("a", "inbound", 1, "", mark("a")+`; ctx.respond(403, "no")`),
				"inbound/b.lua": filterSrc("b", "inbound", 2, "", mark("b")),
			},
			wantTrail: "a", responded: true,
		},
		{
			name: "non-fatal error: the chain goes on",
			scripts: map[string]string{
				"inbound/a.lua": filterSrc("a", "inbound", 1, "", mark("a")+`; error("boom")`),
				"inbound/b.lua": filterSrc("b", "inbound", 2, "", mark("b")),
			},
			wantTrail: "ab",
		},
		{
			name: "should_filter that raises: skipped, chain goes on",
			scripts: map[string]string{
				"inbound/a.lua": filterSrc("a", "inbound", 1, `should_filter = function(ctx) error("bad") end,`, mark("a")),
				"inbound/b.lua": filterSrc("b", "inbound", 2, "", mark("b")),
			},
			wantTrail: "b",
		},
		{
			name: "fatal error fails the request and stops the chain",
			scripts: map[string]string{
				"inbound/a.lua": filterSrc("a", "inbound", 1, "fatal = true,", mark("a")+`; error("boom")`),
				"inbound/b.lua": filterSrc("b", "inbound", 2, "", mark("b")),
			},
			wantTrail: "a", failed: filters.LocalFilterError,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.scripts, Options{})
			ctx := newCtx(t, "", nil)
			e.loop.Chain().Inbound(ctx)
			if got := vars(ctx, "trail"); got != c.wantTrail {
				t.Fatalf("trail %q, want %q; log:\n%s", got, c.wantTrail, e.log)
			}
			if ctx.Responded != c.responded {
				t.Fatalf("responded = %v", ctx.Responded)
			}
			if ctx.Failed != (c.failed != filters.Cause{}) || ctx.FailCause != c.failed {
				t.Fatalf("failed = %v %v %q", ctx.Failed, ctx.FailCause, ctx.FailReason)
			}
		})
	}
}

func TestFatalErrorReasonAndCounters(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/f.lua": filterSrc("f", "inbound", 1, "fatal = true,", `error("database says no")`),
	}, Options{})
	ctx := newCtx(t, "", nil)
	e.loop.Chain().Inbound(ctx)
	if !ctx.Failed || ctx.FailCause != filters.LocalFilterError || !strings.Contains(ctx.FailReason, "database says no") {
		t.Fatalf("failed %v %v %q", ctx.Failed, ctx.FailCause, ctx.FailReason)
	}
	st, _ := status(e.rt, "f")
	if st.Calls != 1 || st.Errors != 1 || st.Timeouts != 0 {
		t.Fatalf("status %+v", st)
	}
	line := e.log.find("error", "database says no")
	if line == nil || line["filter"] != "f" || !strings.Contains(line["error"].(string), "f.lua:4:") {
		t.Fatalf("log line %v; log:\n%s", line, e.log)
	}
}

func TestOutboundRunsEveryFilter(t *testing.T) {
	e := newEnv(t, map[string]string{
		"outbound/a.lua": filterSrc("a", "outbound", 1, "fatal = true,", `error("first fails")`),
		"outbound/b.lua": filterSrc("b", "outbound", 2, "", `ctx.resp.set_header("X-Gateway", "gozer")`),
	}, Options{})
	ctx := newCtx(t, "", nil)
	ctx.Resp = newResp(t)
	ctx.Failed, ctx.FailCause = true, filters.OriginConnectivity // a gateway error answer
	e.loop.Chain().Outbound(ctx)
	if string(ctx.Resp.Header.Peek("X-Gateway")) != "gozer" {
		t.Fatalf("second outbound filter did not run; log:\n%s", e.log)
	}
	if ctx.FailCause != filters.LocalFilterError {
		t.Fatalf("fail cause %v", ctx.FailCause)
	}
}

func TestEndpointByName(t *testing.T) {
	e := newEnv(t, map[string]string{
		"endpoint/robots.lua": filterSrc("robots", "endpoint", 0, "", `ctx.respond(200, "User-agent: *\n", { ["Content-Type"] = "text/plain" })`),
	}, Options{})
	ch := e.loop.Chain()
	ctx := newCtx(t, "", nil)
	if ch.Endpoint("nope", ctx) {
		t.Fatal("Endpoint(nope) = true")
	}
	if !ch.Endpoint("robots", ctx) || !ctx.Responded || ctx.RespondStatus != 200 || string(ctx.RespondBody) != "User-agent: *\n" {
		t.Fatalf("endpoint answer %v %d %q", ctx.Responded, ctx.RespondStatus, ctx.RespondBody)
	}
}

func TestVarsPerRequest(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/a.lua":  filterSrc("a", "inbound", 1, "", `ctx.vars.seen = (ctx.vars.seen or 0) + 1; ctx.vars.from_a = "x"`),
		"outbound/b.lua": filterSrc("b", "outbound", 1, "", `ctx.resp.set_header("X-From-A", ctx.vars.from_a .. ctx.vars.seen)`),
	}, Options{})
	ch := e.loop.Chain()
	ctx := newCtx(t, "", nil)
	for i := 0; i < 3; i++ {
		req := ctx.Req
		ctx.Reset() // the core recycles the Context between requests
		ctx.Req = req
		ch.Inbound(ctx)
		ctx.Resp = newResp(t)
		ch.Outbound(ctx)
		if got := string(ctx.Resp.Header.Peek("X-From-A")); got != "x1" {
			t.Fatalf("request %d: X-From-A = %q (vars leaked across requests?)", i, got)
		}
	}
}

func TestDisabledByName(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/a.lua":   filterSrc("a", "inbound", 1, "", `ctx.vars.a = 1`),
		"inbound/off.lua": filterSrc("off", "inbound", 2, "body = true,", `ctx.vars.off = 1`),
	}, Options{Disabled: []string{"off"}})
	ch := e.loop.Chain()
	ctx := newCtx(t, "", nil)
	ch.Inbound(ctx)
	if ch.Len() != 1 || vars(ctx, "a") != "1" || vars(ctx, "off") != "" || ch.NeedsRequestBody() {
		t.Fatalf("len %d a=%q off=%q needsBody=%v", ch.Len(), vars(ctx, "a"), vars(ctx, "off"), ch.NeedsRequestBody())
	}
	st, ok := status(e.rt, "off")
	if !ok || !st.Disabled || st.Hash == "" || st.Calls != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestNeedsBody(t *testing.T) {
	cases := []struct {
		name      string
		scripts   map[string]string
		req, resp bool
	}{
		{"none", map[string]string{"inbound/a.lua": filterSrc("a", "inbound", 0, "", "")}, false, false},
		{"inbound", map[string]string{"inbound/a.lua": filterSrc("a", "inbound", 0, "body = true,", "")}, true, false},
		{"endpoint", map[string]string{"endpoint/a.lua": filterSrc("a", "endpoint", 0, "body = true,", "")}, true, false},
		{"outbound", map[string]string{"outbound/a.lua": filterSrc("a", "outbound", 0, "body = true,", "")}, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch := newEnv(t, c.scripts, Options{}).loop.Chain()
			if ch.NeedsRequestBody() != c.req || ch.NeedsResponseBody() != c.resp {
				t.Fatalf("NeedsRequestBody %v NeedsResponseBody %v", ch.NeedsRequestBody(), ch.NeedsResponseBody())
			}
		})
	}
}

func TestErrorLogRateLimited(t *testing.T) {
	e := newEnv(t, map[string]string{"inbound/a.lua": filterSrc("a", "inbound", 0, "", `error("again")`)}, Options{})
	ch := e.loop.Chain()
	for i := 0; i < 50; i++ {
		ch.Inbound(newCtx(t, "", nil))
	}
	n := 0
	for _, m := range e.log.lines() {
		if m["message"] == "lua filter error" {
			n++
		}
	}
	st, _ := status(e.rt, "a")
	if n < 1 || n > 2 || st.Errors != 50 {
		t.Fatalf("%d error lines for 50 errors (want 1 or 2), errors=%d", n, st.Errors)
	}
}

func TestLoggerFallback(t *testing.T) {
	e := newEnv(t, map[string]string{"inbound/a.lua": filterSrc("a", "inbound", 0, "", `ctx.log("error", "via runtime log")`)}, Options{})
	e.loop.Chain().Inbound(newCtx(t, "", nil)) // ctx.Log nil: Options.Log
	if e.log.find("message", "via runtime log") == nil {
		t.Fatalf("log:\n%s", e.log)
	}
	other := &logBuf{}
	lg := zerolog.New(other)
	e.loop.Chain().Inbound(newCtx(t, "", &lg))
	if other.find("message", "via runtime log") == nil {
		t.Fatalf("ctx.Log not used; log:\n%s", other)
	}
}
