package lua

import (
	"slices"
	"strings"

	"github.com/rs/zerolog"
	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
)

// api holds the objects a filter reaches through its ctx argument. They are
// created once per Loop: ctx, ctx.req and ctx.resp are userdata whose
// metatable's __index is a table of functions created once, falling back to a
// Go function for the fields that depend on the request. A filter call only
// swaps Loop.ctx; nothing is built per request.
type api struct {
	ctx, req, resp *glua.LUserData

	methods map[string]glua.LValue // boxed method names ("GET" ...), shared
	causes  map[string]glua.LValue // boxed cause names, filled on use
	schemes [2]glua.LValue         // "http", "https", boxed once
	hdrs    []filters.Header       // scratch for ctx.respond
	fields                         // ctx.vars, ctx.req.path and .host as plain fields (fields.go)
}

// strMemo is a one-entry cache of a request field's Lua string (the last
// request's ctx.req.path, or host, that a filter read). Requests on a
// loop often repeat the path and host of the one before, and a hit saves the
// two allocations of a new Lua string (the bytes and their box): for
// ctx.req.path in BenchmarkBenchScripts, 2 of its 5 allocs/op.
type strMemo struct {
	s string
	v glua.LValue // glua.LString(s), nil until the first get
}

// get returns b as a Lua string, the cached one when it is the same text.
func (m *strMemo) get(b []byte) glua.LValue {
	if m.v != nil && string(b) == m.s { // compared without a copy
		return m.v
	}
	m.s = string(b)
	m.v = glua.LString(m.s)
	return m.v
}

// same reports whether b is the memo's text, without a copy.
func (m *strMemo) same(b []byte) bool { return m.v != nil && string(b) == m.s }

// initAPI creates the ctx objects on l's LState.
func (l *Loop) initAPI() {
	a := &l.api
	a.methods = make(map[string]glua.LValue)
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"} {
		a.methods[m] = glua.LString(m)
	}
	a.causes = make(map[string]glua.LValue)
	a.schemes = [2]glua.LValue{glua.LString("http"), glua.LString("https")}

	a.req = l.object("ctx.req", map[string]glua.LGFunction{
		"arg": l.reqArg, "header": l.reqHeader, "headers": l.reqHeaders,
		"set_header": l.reqSetHeader, "add_header": l.reqAddHeader, "del_header": l.reqDelHeader,
		"set_path": l.reqSetPath, "body": l.reqBody,
	}, l.reqIndex)
	a.resp = l.object("ctx.resp", map[string]glua.LGFunction{
		"header": l.respHeader, "headers": l.respHeaders, "set_status": l.respSetStatus, "set_header": l.respSetHeader,
		"add_header": l.respAddHeader, "del_header": l.respDelHeader, "body": l.respBody, "set_body": l.respSetBody,
	}, l.respIndex)
	a.ctx = l.object("ctx", map[string]glua.LGFunction{
		"now": l.ctxNow, "route": l.ctxRoute, "respond": l.ctxRespond, "log": l.ctxLog,
		"push_accept": l.ctxPushAccept, "push_verify": l.ctxPushVerify, "no_compress": l.ctxNoCompress,
		"http": l.ctxHTTP, "http_all": l.ctxHTTPAll, "shared": l.ctxShared, "cors": l.ctxCORS,
		"inject": l.ctxInject, // injectapi.go
		"limit":  l.ctxLimit, "deny": l.ctxDeny, "undeny": l.ctxUndeny,
	}, l.ctxIndex)
	// ctx.req and ctx.resp are the same objects for every request: plain
	// members, no Go call per access. The phase rule for ctx.resp is checked
	// by its functions and fields: using it in an inbound filter raises.
	members := membersOf(a.ctx)
	members.RawSetString("req", a.req)
	members.RawSetString("resp", a.resp)
	a.fields.init(a.ctx, a.req)
}

// object builds a read-only userdata named name: functions are members of
// its __index table, other fields come from dynamic. Its metatable is hidden
// from getmetatable and cannot be replaced.
func (l *Loop) object(name string, funcs map[string]glua.LGFunction, dynamic glua.LGFunction) *glua.LUserData {
	L := l.L
	members := L.CreateTable(0, len(funcs)+1)
	for k, f := range funcs {
		members.RawSetString(k, L.NewFunction(f))
	}
	mm := L.CreateTable(0, 1)
	mm.RawSetString("__index", L.NewFunction(dynamic))
	members.Metatable = mm
	mt := L.CreateTable(0, 3)
	mt.RawSetString("__index", members)
	mt.RawSetString("__newindex", L.NewFunction(func(L *glua.LState) int {
		L.RaiseError("%s is read-only (use ctx.vars for per-request values)", name)
		return 0
	}))
	mt.RawSetString("__metatable", glua.LFalse)
	ud := L.NewUserData()
	ud.Metatable = mt
	return ud
}

// arg0 is the stack index of a function's first argument: 2 when it was
// called with ':' (ctx.req:header("x")), else 1. Both forms work.
func (l *Loop) arg0(L *glua.LState) int {
	if ud, ok := L.Get(1).(*glua.LUserData); ok && (ud == l.api.req || ud == l.api.resp || ud == l.api.ctx) {
		return 2
	}
	return 1
}

// cur returns the request of the filter call in progress.
func (l *Loop) cur(L *glua.LState) *filters.Context {
	if l.ctx == nil {
		L.RaiseError("ctx is only usable while a filter runs")
	}
	return l.ctx
}

// only raises unless the current phase is one of ok.
func (l *Loop) only(L *glua.LState, what string, ok ...filters.Phase) {
	if !slices.Contains(ok, l.phase) {
		switch len(ok) {
		case 1:
			L.RaiseError("%s is only for %s filters", what, ok[0])
		default:
			L.RaiseError("%s is only for %s and %s filters", what, ok[0], ok[1])
		}
	}
}

// ctxIndex serves the per-request fields of ctx.
func (l *Loop) ctxIndex(L *glua.LState) int {
	ctx := l.cur(L)
	switch key := L.CheckString(2); key {
	case "vars":
		// Kept in the Context, not in the Loop: a suspended request keeps
		// its own while others run; Context.Reset recycles it (vars.go).
		L.Push(l.vars(ctx))
	case "id":
		L.Push(glua.LString(ctx.ID))
	case "trace_id":
		L.Push(glua.LString(ctx.TraceID))
	case "push":
		L.Push(l.pushKind(ctx))
	case "push_id":
		if ctx.PushID == "" {
			L.Push(glua.LNil)
		} else {
			L.Push(glua.LString(ctx.PushID))
		}
	case "start":
		L.Push(glua.LNumber(float64(ctx.Start) / 1e9))
	case "cause":
		l.only(L, "ctx.cause", filters.Outbound)
		v, ok := l.api.causes[ctx.Cause.Name]
		if !ok {
			v = glua.LString(ctx.Cause.Name)
			l.api.causes[ctx.Cause.Name] = v
		}
		L.Push(v)
	case "attempts":
		l.only(L, "ctx.attempts", filters.Outbound)
		L.Push(glua.LNumber(ctx.Attempts))
	default:
		L.RaiseError("ctx has no field %q", key)
	}
	return 1
}

// ctxNow is ctx.now(): seconds since the epoch, as a float, from the event
// loop's clock as of the current event (like ngx.now(): no system call).
func (l *Loop) ctxNow(L *glua.LState) int {
	L.Push(glua.LNumber(float64(l.cur(L).Now()) / 1e9))
	return 1
}

// ctxNoCompress is ctx.no_compress(): the response goes as the origin sent it,
// whatever the origin's compression settings.
func (l *Loop) ctxNoCompress(L *glua.LState) int {
	l.cur(L).NoCompress = true
	return 0
}

// ctxRoute is ctx.route{origin=, path=, host=, endpoint=}.
func (l *Loop) ctxRoute(L *glua.LState) int {
	ctx := l.cur(L)
	l.only(L, "ctx.route", filters.Inbound)
	t := L.CheckTable(l.arg0(L))
	// Check every field before changing anything: a bad call changes nothing.
	var set [4]glua.LString // origin, path, host, endpoint
	ws := glua.LValue(glua.LNil)
	t.ForEach(func(k, v glua.LValue) {
		i := -1
		switch k {
		case glua.LString("websocket"):
			if _, ok := v.(glua.LBool); !ok {
				L.RaiseError("ctx.route: websocket must be a boolean, not %s", luaRepr(v))
			}
			ws = v
			return
		case glua.LString("origin"):
			i = 0
		case glua.LString("path"):
			i = 1
		case glua.LString("host"):
			i = 2
		case glua.LString("endpoint"):
			i = 3
		default:
			L.RaiseError("ctx.route: unknown field %s (use origin, path, host, endpoint, websocket)", luaRepr(k))
		}
		s, ok := v.(glua.LString)
		if !ok || s == "" {
			L.RaiseError("ctx.route: %s must be a non-empty string, not %s", string(k.(glua.LString)), luaRepr(v))
		}
		set[i] = s
	})
	if p := set[1]; p != "" && p[0] != '/' {
		L.RaiseError("ctx.route: path must start with '/', not %q", string(p))
	}
	if h := set[2]; h != "" && !validHostValue(string(h)) {
		L.RaiseError("ctx.route: invalid host %q", string(h))
	}
	if set[0] != "" {
		ctx.Route.Origin = string(set[0])
	}
	if set[1] != "" {
		ctx.Route.Path = append(ctx.Route.Path[:0], set[1]...)
		l.api.drop(&l.api.path)
	}
	if set[2] != "" {
		ctx.Route.Host = append(ctx.Route.Host[:0], set[2]...)
		l.api.drop(&l.api.host)
	}
	if set[3] != "" {
		ctx.Route.Endpoint = string(set[3])
	}
	if b, ok := ws.(glua.LBool); ok {
		ctx.Route.WebSocket = filters.WebSocketOff
		if b {
			ctx.Route.WebSocket = filters.WebSocketOn
		}
	}
	return 0
}

// ctxRespond is ctx.respond(status, body, headers): the request is answered
// by the filter; remaining inbound filters and the proxy are skipped.
func (l *Loop) ctxRespond(L *glua.LState) int {
	ctx := l.cur(L)
	l.only(L, "ctx.respond", filters.Inbound, filters.Endpoint)
	a := l.arg0(L)
	status := checkStatus(L, a, "ctx.respond")
	var body string
	switch v := L.Get(a + 1).(type) {
	case *glua.LNilType:
	case glua.LString:
		body = string(v)
	case glua.LNumber:
		body = v.String()
	default:
		L.RaiseError("ctx.respond: body must be a string or nil, not %s", luaRepr(v))
	}
	if len(body) > l.rt.opts.MaxBodyBytes {
		L.RaiseError("ctx.respond: body larger than %d bytes", l.rt.opts.MaxBodyBytes)
	}
	hs := l.api.hdrs[:0]
	switch t := L.Get(a + 2).(type) {
	case *glua.LNilType:
	case *glua.LTable:
		t.ForEach(func(k, v glua.LValue) {
			name, ok := k.(glua.LString)
			if !ok {
				L.RaiseError("ctx.respond: header names must be strings, not %s", luaRepr(k))
			}
			if v.Type() != glua.LTString && v.Type() != glua.LTNumber {
				L.RaiseError("ctx.respond: header %s must be a string, not %s", string(name), luaRepr(v))
			}
			checkHeader(L, "ctx.respond", string(name), v.String())
			hs = append(hs, filters.Header{Name: string(name), Value: v.String()})
		})
		// Lua tables have no order: sort for a deterministic response.
		slices.SortFunc(hs, func(x, y filters.Header) int { return strings.Compare(x.Name, y.Name) })
	default:
		L.RaiseError("ctx.respond: headers must be a table or nil, not %s", luaRepr(t))
	}
	l.api.hdrs = hs
	ctx.Respond(status, []byte(body), hs)
	return 0
}

var logLevels = map[string]zerolog.Level{
	"debug": zerolog.DebugLevel, "info": zerolog.InfoLevel, "warn": zerolog.WarnLevel, "error": zerolog.ErrorLevel,
}

// ctxLog is ctx.log(level, message): a line in the process log with the
// request id and the filter name.
func (l *Loop) ctxLog(L *glua.LState) int {
	l.cur(L)
	a := l.arg0(L)
	name := L.CheckString(a)
	lvl, ok := logLevels[name]
	if !ok {
		L.RaiseError(`ctx.log: level must be "debug", "info", "warn" or "error", not %q`, name)
	}
	msg := L.ToStringMeta(L.Get(a + 1)).String()
	if ev := l.event(lvl); ev != nil {
		ev.Msg(msg)
	}
	return 0
}

// checkStatus reads an HTTP status argument.
func checkStatus(L *glua.LState, n int, fn string) int {
	v, ok := L.Get(n).(glua.LNumber)
	if !ok || float64(v) != float64(int(v)) || v < 100 || v > 599 {
		L.RaiseError("%s: status must be an integer from 100 to 599, not %s", fn, luaRepr(L.Get(n)))
	}
	return int(v)
}

// checkHeader refuses header names that are not tokens and values with
// control characters (CR, LF, NUL: header injection), and the framing
// headers, which the gateway sets itself.
func checkHeader(L *glua.LState, fn, name, value string) {
	if name == "" {
		L.RaiseError("%s: empty header name", fn)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			L.RaiseError("%s: invalid header name %q", fn, name)
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 && c != '\t' || c == 0x7f {
			L.RaiseError("%s: control character in the value of header %s", fn, name)
		}
	}
	if strings.EqualFold(name, "Content-Length") || strings.EqualFold(name, "Transfer-Encoding") {
		L.RaiseError("%s: %s is set by the gateway", fn, name)
	}
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validHostValue accepts host[:port] characters only: no whitespace, '/',
// '@' or control characters.
func validHostValue(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~:[]!$&'()*+,;=%", c) >= 0) {
			return false
		}
	}
	return true
}
