package lua

import (
	"testing"
	"time"

	"gozer/filters"
)

func TestCtxInject(t *testing.T) {
	want := func(w filters.Injection) func(t *testing.T, ctx *filters.Context) {
		return func(t *testing.T, ctx *filters.Context) {
			if ctx.Inject != w {
				t.Fatalf("ctx.Inject = %+v, want %+v", ctx.Inject, w)
			}
		}
	}
	for _, c := range []apiCase{
		{name: "delay", code: `ctx.inject{ delay = 0.2 }`, check: want(filters.Injection{Delay: 200 * time.Millisecond})},
		{name: "abort", code: `ctx.inject{ abort = 503 }`, check: want(filters.Injection{Abort: 503})},
		{name: "delay and abort", code: `ctx.inject{ delay = 1, abort = 500 }`, check: want(filters.Injection{Delay: time.Second, Abort: 500})},
		{name: "reset", code: `ctx.inject{ reset = true }`, check: want(filters.Injection{Reset: true})},
		{name: "slow body", code: `ctx:inject{ slow_body = 1024 }`, check: want(filters.Injection{SlowBody: 1024})},
		{name: "bad status", code: `ctx.inject{ abort = 99 }`, err: "abort must be a status"},
		{name: "negative delay", code: `ctx.inject{ delay = -1 }`, err: "delay must be seconds"},
		{name: "two kinds", code: `ctx.inject{ abort = 503, reset = true }`, err: "at most one"},
		{name: "unknown field", code: `ctx.inject{ explode = true }`, err: "unknown field"},
		{name: "outbound", phase: "outbound", code: `ctx.inject{ abort = 503 }`, err: "only for inbound"},
	} {
		t.Run(c.name, func(t *testing.T) { runAPICase(t, c) })
	}
}

func TestInjectionKinds(t *testing.T) {
	for _, c := range []struct {
		inj  filters.Injection
		want string
	}{
		{filters.Injection{}, ""},
		{filters.Injection{Delay: 1}, "delay"},
		{filters.Injection{Abort: 503}, "abort"},
		{filters.Injection{Delay: 1, Reset: true}, "delay+reset"},
		{filters.Injection{SlowBody: 1}, "slow_body"},
	} {
		if got := c.inj.Kinds(); got != c.want || c.inj.Any() != (c.want != "") {
			t.Errorf("%+v: Kinds %q Any %v, want %q", c.inj, got, c.inj.Any(), c.want)
		}
	}
}
