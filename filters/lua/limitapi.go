package lua

import (
	"time"

	glua "github.com/yuin/gopher-lua"

	"gozer/gateway/ratelimit"
)

// ctx.limit(key, { rate = 10, per = 1, burst = 20 }): a token bucket of the
// node's, keyed by any string the filter computes. It returns true, 0 when
// the request may go on, or false and the seconds (whole, at least 1) until
// it would: the filter decides what to answer (usually
// ctx.respond(429, ..., { ["Retry-After"] = retry_after })).
//
//	local ok, retry_after = ctx.limit("login:" .. ctx.req.remote_ip, { rate = 10, per = 1, burst = 20 })
//
// per is in seconds (default 1), burst defaults to 1; cluster = true shares
// the rate with the other nodes through limits.redis, as a declarative
// limit's cluster: true (without limits.redis it stays the node's). The
// buckets are the declarative limits' store (limits.max_keys, least recently
// used evicted), shared by every loop; rejections count under "lua" in
// /admin/limits.
func (l *Loop) ctxLimit(L *glua.LState) int {
	fc := l.cur(L)
	n := l.arg0(L)
	key := L.CheckString(n)
	opts := L.CheckTable(n + 1)
	num := func(name string, def float64) float64 {
		switch v := opts.RawGetString(name).(type) {
		case glua.LNumber:
			return float64(v)
		case *glua.LNilType:
			return def
		default:
			L.RaiseError("ctx.limit: %s must be a number, not %s", name, luaRepr(v))
		}
		return 0
	}
	rate, per, burst := num("rate", 0), num("per", 1), num("burst", 1)
	cluster := false
	switch v := opts.RawGetString("cluster").(type) {
	case glua.LBool:
		cluster = bool(v)
	case *glua.LNilType:
	default:
		L.RaiseError("ctx.limit: cluster must be a boolean, not %s", luaRepr(v))
	}
	if rate <= 0 || per <= 0 || burst < 0 {
		L.RaiseError("ctx.limit: rate and per must be positive numbers, burst 0 or more")
	}
	lim := l.rt.opts.Limits
	if lim == nil {
		L.Push(glua.LTrue)
		L.Push(glua.LNumber(0))
		return 2
	}
	var buf [128]byte
	r := ratelimit.NewRate(rate, time.Duration(per*float64(time.Second)), int(burst), cluster)
	ok, wait := lim.TakeLua(buf[:0], key, r, fc.Now())
	if ok {
		L.Push(glua.LTrue)
		L.Push(glua.LNumber(0))
		return 2
	}
	L.Push(glua.LFalse)
	L.Push(glua.LNumber(ratelimit.RetryAfter(wait)))
	return 2
}

// ctx.deny(network, ttl): adds a network (a CIDR or an address) to the deny
// list: its new connections are closed at accept, its requests on open
// connections answered 403, until ttl seconds pass (0 or nil: until lifted
// with ctx.undeny or DELETE /admin/deny).
func (l *Loop) ctxDeny(L *glua.LState) int {
	l.cur(L)
	n := l.arg0(L)
	p, err := ratelimit.ParsePrefix(L.CheckString(n))
	if err != nil {
		L.RaiseError("ctx.deny: %v", err)
	}
	ttl := float64(L.OptNumber(n+1, 0))
	if ttl < 0 {
		L.RaiseError("ctx.deny: ttl must be 0 or more seconds")
	}
	lim := l.rt.opts.Limits
	if lim == nil {
		L.RaiseError("ctx.deny: no deny list on this runtime")
	}
	until := int64(0)
	if ttl > 0 {
		until = time.Now().Add(time.Duration(ttl * float64(time.Second))).UnixNano()
	}
	lim.Deny.Add(p, until)
	return 0
}

// ctx.undeny(network): lifts a network ctx.deny or the admin API added;
// returns whether it was on the list.
func (l *Loop) ctxUndeny(L *glua.LState) int {
	l.cur(L)
	p, err := ratelimit.ParsePrefix(L.CheckString(l.arg0(L)))
	if err != nil {
		L.RaiseError("ctx.undeny: %v", err)
	}
	lim := l.rt.opts.Limits
	L.Push(glua.LBool(lim != nil && lim.Deny.Remove(p)))
	return 1
}
