package lua

import (
	"testing"
	"time"

	"gozer/filters"
)

// Each benchmark op is one request through the loop's chain: Chain(),
// Inbound, Outbound on a recycled Context, as the core does. The request and
// response heads are parsed once; the op undoes the filters' header changes
// (the same undo in every benchmark, filters or not), so the difference to
// BenchmarkZeroFilters is the cost of the filters.
//
//	go test -run '^$' -bench . -benchmem ./filters/lua/

var (
	benchInbound  = filterSrc("route", "inbound", 10, "", `ctx.req.set_header("X-Route", ctx.req.path)`)
	benchOutbound = filterSrc("gateway", "outbound", 10, "", `ctx.resp.set_header("X-Gateway", "gozer") ctx.resp.del_header("Server")`)
	benchNow      = filterSrc("clock", "outbound", 20, "", `local t = ctx.now()`)
)

func benchRequests(b *testing.B, scripts map[string]string) {
	e := newEnv(b, scripts, Options{Budget: DefaultBudget})
	l := e.loop
	proto := newCtx(b, "", nil)
	req, resp := proto.Req, newResp(b)
	ctx := &filters.Context{}
	if got := l.Chain().Len(); got != len(scripts) {
		b.Fatalf("chain has %d filters, want %d; log:\n%s", got, len(scripts), e.log)
	}
	b.ReportAllocs()
	for b.Loop() {
		ctx.Reset()
		ctx.Req, ctx.ID, ctx.RemoteAddr = req, proto.ID, proto.RemoteAddr
		ch := l.Chain()
		ch.Inbound(ctx)
		ctx.Resp, ctx.Cause = resp, filters.Success
		ch.Outbound(ctx)
		if ctx.Failed {
			b.Fatalf("request failed: %s", ctx.FailReason)
		}
		req.Header.Del("X-Route")
		resp.Header.Del("X-Gateway")
		resp.Header.Set("Server", "origin")
	}
	b.StopTimer()
	if st, _ := status(e.rt, "route"); st.Errors != 0 {
		b.Fatalf("filter errors; log:\n%s", e.log)
	}
}

func BenchmarkZeroFilters(b *testing.B) { benchRequests(b, nil) }

// BenchmarkBenchScripts runs the three scripts of bench/run.sh's gozer-lua3
// target (bench/targets/gozer.sh: GOZER_LUA_ROUTE, GOZER_LUA_GW,
// GOZER_LUA_TIMING), word for word: what the bench's "µs per Lua step"
// measures, without the sockets.
func BenchmarkBenchScripts(b *testing.B) { benchRequests(b, benchScripts) }

// benchScripts are the three scripts of bench/run.sh's gozer-lua3 target,
// word for word (BenchmarkBenchScripts, BenchmarkCoreBenchScripts).
var benchScripts = map[string]string{
	"inbound/10_route.lua":   `return { name = "route", type = "inbound", order = 10, apply = function(ctx) ctx.req.set_header("X-Route", ctx.req.path) end }`,
	"outbound/10_gw.lua":     `return { name = "gw", type = "outbound", order = 10, apply = function(ctx) ctx.resp.set_header("X-Gateway", "gozer"); ctx.resp.del_header("Server") end }`,
	"outbound/90_timing.lua": `return { name = "timing", type = "outbound", order = 90, apply = function(ctx) ctx.vars.t = ctx.now() end }`,
}

func BenchmarkInboundOneFilter(b *testing.B) {
	benchRequests(b, map[string]string{"inbound/route.lua": benchInbound})
}

func BenchmarkThreeFilters(b *testing.B) {
	benchRequests(b, map[string]string{
		"inbound/route.lua":    benchInbound,
		"outbound/gateway.lua": benchOutbound,
		"outbound/clock.lua":   benchNow,
	})
}

// BenchmarkBudgetArmDisarm is the budget's share of each filter call: one
// timer Reset and one Stop on the loop's reusable context.
func BenchmarkBudgetArmDisarm(b *testing.B) {
	sb := newSandbox(minStringCap)
	b.ReportAllocs()
	for b.Loop() {
		sb.wd.arm(DefaultBudget)
		sb.wd.disarm()
	}
}

// BenchmarkChainReload is the cost a loop pays on its first request after a
// reload of one of two scripts (instantiating the changed one).
func BenchmarkChainReload(b *testing.B) {
	e := newEnv(b, map[string]string{"inbound/route.lua": benchInbound, "outbound/gateway.lua": benchOutbound}, Options{})
	l := e.loop
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		e.rt.mu.Lock()
		f := e.rt.files[e.dir+"/inbound/route.lua"]
		s := *f.live
		s.loadedAt = time.Now()
		f.live = &s
		e.rt.publish()
		e.rt.mu.Unlock()
		b.StartTimer()
		l.Chain()
	}
}
