package lua

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
)

// The async calls of the ctx API: ctx.http{...} and ctx.http_all{{...}, ...}.
// They are only for filters that declared async = true, in apply (not in
// should_filter). API.md documents them for filter authors.

// maxBatch bounds the calls of one ctx.http_all.
const maxBatch = 64

// ctxHTTP is ctx.http{origin=, method=, path=, host=, headers=, body=,
// timeout=, max_body=}: one side call; the filter goes on with (res, nil) or
// (nil, reason).
func (l *Loop) ctxHTTP(L *glua.LState) int {
	s := l.batch(L, "ctx.http")
	l.addCall(L, s, L.CheckTable(l.arg0(L)), "ctx.http")
	return l.startBatch(L, s, false)
}

// ctxHTTPAll is ctx.http_all{ {...}, {...} }: the calls run at once; the
// filter goes on with two tables: answers[i] (nil when call i failed) and
// errors[i] (its reason, or nil).
func (l *Loop) ctxHTTPAll(L *glua.LState) int {
	s := l.batch(L, "ctx.http_all")
	list := L.CheckTable(l.arg0(L))
	n := list.Len()
	if n == 0 || n > maxBatch {
		L.RaiseError("ctx.http_all: give a list of 1 to %d calls, not %d", maxBatch, n)
	}
	for i := 1; i <= n; i++ {
		t, ok := list.RawGetInt(i).(*glua.LTable)
		if !ok {
			L.RaiseError("ctx.http_all: call %d must be a table, not %s", i, luaRepr(list.RawGetInt(i)))
		}
		l.addCall(L, s, t, fmt.Sprintf("ctx.http_all[%d]", i))
	}
	return l.startBatch(L, s, true)
}

// batch checks that a side call may be made here and returns the running
// suspension, its batch empty.
func (l *Loop) batch(L *glua.LState, what string) *suspension {
	ctx := l.cur(L)
	s := l.co
	if s == nil || L != s.th {
		L.RaiseError("%s is only for async filters (add async = true to the filter's table), in apply", what)
	}
	if ctx.Calls == nil {
		L.RaiseError("%s: side calls are not available here", what)
	}
	if s.waiting > 0 {
		// A previous batch's yield was swallowed (errSwallowed): the
		// nesting check below should have refused it.
		s.lost = true
		l.cancelCalls(s)
		L.RaiseError("%v", errSwallowed)
	}
	if l.nestedLuaCall() {
		L.RaiseError("%s cannot be called inside pcall, xpcall, a metamethod, table.sort or string.gsub: call it at the filter's top level", what)
	}
	s.calls = s.calls[:0]
	return s
}

// slot adds a call to s's batch, reusing the slots of earlier batches.
func (s *suspension) slot() *callSlot {
	n := len(s.calls)
	if n < cap(s.calls) {
		s.calls = s.calls[:n+1]
		if c := s.calls[n]; c != nil {
			c.sc = filters.SideCall{Headers: c.sc.Headers[:0], Body: c.sc.Body[:0]}
			return c
		}
	} else {
		s.calls = append(s.calls, nil)
	}
	c := &callSlot{s: s}
	c.done = c.complete
	s.calls[n] = c
	return c
}

// addCall reads one call's table into a new slot of s's batch. Every field is
// checked before anything goes out: a bad call raises and sends nothing.
func (l *Loop) addCall(L *glua.LState, s *suspension, t *glua.LTable, fn string) {
	c := s.slot()
	sc := &c.sc
	t.ForEach(func(k, v glua.LValue) {
		key, _ := k.(glua.LString)
		switch key {
		case "origin":
			sc.Origin = callString(L, fn, "origin", v)
		case "method":
			sc.Method = callString(L, fn, "method", v)
			for i := 0; i < len(sc.Method); i++ {
				if !isTokenChar(sc.Method[i]) {
					L.RaiseError("%s: invalid method %q", fn, sc.Method)
				}
			}
		case "path":
			sc.Path = callString(L, fn, "path", v)
			if sc.Path[0] != '/' || strings.ContainsAny(sc.Path, " \t\r\n\x00\x7f") {
				L.RaiseError("%s: path must start with '/' and hold no spaces or control characters, not %q", fn, sc.Path)
			}
		case "host":
			if sc.Host = callString(L, fn, "host", v); !validHostValue(sc.Host) {
				L.RaiseError("%s: invalid host %q", fn, sc.Host)
			}
		case "headers":
			l.callHeaders(L, fn, sc, v)
		case "body":
			b, ok := v.(glua.LString)
			if !ok {
				L.RaiseError("%s: body must be a string, not %s", fn, luaRepr(v))
			}
			if len(b) > l.rt.opts.MaxBodyBytes {
				L.RaiseError("%s: body larger than %d bytes", fn, l.rt.opts.MaxBodyBytes)
			}
			sc.Body = append(sc.Body[:0], b...)
		case "timeout":
			n, ok := v.(glua.LNumber)
			if !ok || n <= 0 || n > 3600 {
				L.RaiseError("%s: timeout must be a number of seconds above 0, not %s", fn, luaRepr(v))
			}
			sc.Timeout = time.Duration(float64(n) * float64(time.Second))
		case "max_body":
			n, ok := v.(glua.LNumber)
			if !ok || n < 1 || float64(n) != float64(int(n)) {
				L.RaiseError("%s: max_body must be a positive integer, not %s", fn, luaRepr(v))
			}
			sc.MaxBody = int(n)
		default:
			L.RaiseError("%s: unknown field %s (use origin, method, path, host, headers, body, timeout, max_body)", fn, luaRepr(k))
		}
	})
	if sc.Origin == "" {
		L.RaiseError("%s: origin is required", fn)
	}
}

// callString reads a call's non-empty string field.
func callString(L *glua.LState, fn, field string, v glua.LValue) string {
	s, ok := v.(glua.LString)
	if !ok || s == "" {
		L.RaiseError("%s: %s must be a non-empty string, not %s", fn, field, luaRepr(v))
	}
	return string(s)
}

// callHeaders reads a call's headers table (name → string or number).
func (l *Loop) callHeaders(L *glua.LState, fn string, sc *filters.SideCall, v glua.LValue) {
	t, ok := v.(*glua.LTable)
	if !ok {
		L.RaiseError("%s: headers must be a table, not %s", fn, luaRepr(v))
	}
	t.ForEach(func(k, v glua.LValue) {
		name, ok := k.(glua.LString)
		if !ok {
			L.RaiseError("%s: header names must be strings, not %s", fn, luaRepr(k))
		}
		if v.Type() != glua.LTString && v.Type() != glua.LTNumber {
			L.RaiseError("%s: header %s must be a string, not %s", fn, string(name), luaRepr(v))
		}
		checkHeader(L, fn, string(name), v.String())
		if strings.EqualFold(string(name), "Host") {
			L.RaiseError("%s: set the Host with host =, not in headers", fn)
		}
		sc.Headers = append(sc.Headers, filters.Header{Name: string(name), Value: v.String()})
	})
}

// startBatch sends the batch and yields until its last answer (callSlot.
// complete). The request counts against filters.max_suspended from its first
// yield: over the cap it is answered 503 instead.
func (l *Loop) startBatch(L *glua.LState, s *suspension, all bool) int {
	ctx := s.ctx
	if !s.counted {
		if int64(l.suspended) >= l.rt.maxSuspended.Load() {
			ctx.Fail(filters.LocalTooManySuspended,
				fmt.Sprintf("%d requests wait on async filters on this loop (filters.max_suspended)", l.suspended))
			L.RaiseError("too many requests wait on async filters (filters.max_suspended): the request is refused")
		}
		s.counted = true
		l.countSuspended(1)
	}
	ctx.Suspended, ctx.Pending = true, s
	s.all = all
	s.waiting = len(s.calls)
	for _, c := range s.calls {
		c.p = ctx.Calls.Call(&c.sc, c.done)
	}
	return L.Yield()
}

// nestedLuaCall reports whether the running Lua code was called from Go
// inside the coroutine (pcall, a metamethod, table.sort's comparator ...):
// gopher-lua runs each such call in a VM loop of its own on the Go stack, and
// a yield from there would return to that Go caller, not to the loop, leaving
// the coroutine broken. So ctx.http walks the Go stack up to the coroutine's
// base (threadRun) and counts the VM loops on the way: one is the
// coroutine's own. Only the few frames up to the base are unwound, and each
// return address is classified once per loop (pcKind), not symbolized per
// call: symbolizing every frame cost ~11 µs a call (16.5 % of gozer-async's
// CPU in `BENCH_PROFILE=gozer-async BENCH_SUITE=async bash bench/run.sh`).
// A stack deeper than the buffer before the base counts as nested (refused).
// The buffer is as short as the call from the coroutine's own VM loop needs
// (the base is its 6th frame: batch, ctx.http, callGFunction, the OP_CALL
// handler, the VM loop, threadRun), with room for two more: runtime.Callers unwinds
// as many frames as the buffer holds, and the ~20 below the base (the loop's
// callback, gnet) cost 5 % of gozer-async's CPU with a buffer of 24. A
// gopher-lua upgrade that deepens the call fails the async tests (every
// ctx.http refused), not silently.
func (l *Loop) nestedLuaCall() bool {
	var pcs [8]uintptr
	n := runtime.Callers(2, pcs[:])
	loops := 0
	for _, pc := range pcs[:n] {
		switch l.pcKind(pc) {
		case pcVMLoop:
			if loops++; loops > 1 {
				return true
			}
		case pcThreadBase:
			return false
		}
	}
	return true
}

const (
	pcOther = iota + 1
	pcVMLoop
	pcThreadBase
)

// pcKind classifies a return address: a gopher-lua VM loop, the coroutine's
// base, or anything else; cached per loop (loop goroutine only).
func (l *Loop) pcKind(pc uintptr) int {
	if k, ok := l.pcKinds[pc]; ok {
		return k
	}
	k := pcOther
	if f := runtime.FuncForPC(pc - 1); f != nil {
		switch name := f.Name(); {
		case strings.HasPrefix(name, "github.com/yuin/gopher-lua.mainLoop"):
			k = pcVMLoop
		case name == "github.com/yuin/gopher-lua.threadRun":
			k = pcThreadBase
		}
	}
	if l.pcKinds == nil {
		l.pcKinds = make(map[uintptr]int)
	}
	l.pcKinds[pc] = k
	return k
}
