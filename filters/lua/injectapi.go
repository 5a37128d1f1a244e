package lua

import (
	"time"

	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
)

// ctxInject is ctx.inject{ delay = seconds, abort = status, reset = true,
// slow_body = bytes_per_second }: an inbound filter injects a failure into
// this request (gateway/faults), instead of what the fault_injection rules
// would choose. A filter's own condition (a header, a client, a share of
// ctx.now) is how a Lua condition selects the requests. The request still
// goes through routing: the failure is applied once it is routed to an
// origin. Every field is checked before anything changes.
func (l *Loop) ctxInject(L *glua.LState) int {
	ctx := l.cur(L)
	l.only(L, "ctx.inject", filters.Inbound)
	t := L.CheckTable(l.arg0(L))
	var inj filters.Injection
	t.ForEach(func(k, v glua.LValue) {
		key, _ := k.(glua.LString)
		switch key {
		case "delay":
			n, ok := v.(glua.LNumber)
			if !ok || n < 0 || n > 3600 {
				L.RaiseError("ctx.inject: delay must be seconds from 0 to 3600, not %s", luaRepr(v))
			}
			inj.Delay = time.Duration(float64(n) * float64(time.Second))
		case "abort":
			n, ok := v.(glua.LNumber)
			if !ok || float64(n) != float64(int(n)) || n < 200 || n > 599 {
				L.RaiseError("ctx.inject: abort must be a status from 200 to 599, not %s", luaRepr(v))
			}
			inj.Abort = int(n)
		case "reset":
			b, ok := v.(glua.LBool)
			if !ok {
				L.RaiseError("ctx.inject: reset must be a boolean, not %s", luaRepr(v))
			}
			inj.Reset = bool(b)
		case "slow_body":
			n, ok := v.(glua.LNumber)
			if !ok || n < 1 {
				L.RaiseError("ctx.inject: slow_body must be bytes per second (≥ 1), not %s", luaRepr(v))
			}
			inj.SlowBody = int64(n)
		default:
			L.RaiseError("ctx.inject: unknown field %s (delay, abort, reset, slow_body)", luaRepr(k))
		}
	})
	n := 0
	for _, set := range []bool{inj.Abort != 0, inj.Reset, inj.SlowBody > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		L.RaiseError("ctx.inject: at most one of abort, reset and slow_body (with or without delay)")
	}
	ctx.Inject = inj
	return 0
}
