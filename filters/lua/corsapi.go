package lua

import (
	"time"

	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
	"gozer/filters/cors"
)

// ctxCORS is ctx.cors{...}: the request's CORS policy and origin decision,
// for custom policies. Fields (all optional):
//
//	allow = true|false      decide the request's Origin (beats the policy's list)
//	policy = "NAME"         use the configured policy cors.NAME
//	origins, methods, headers, expose = {...}, credentials = bool, max_age = seconds
//	                        a policy of the filter's own (origins required)
//
// Inbound; before the built-in "cors" filter (order 1) it decides
// preflights too. A bad call raises and changes nothing.
func (l *Loop) ctxCORS(L *glua.LState) int {
	ctx := l.cur(L)
	l.only(L, "ctx.cors", filters.Inbound)
	t := L.CheckTable(l.arg0(L))
	var (
		o           cors.Options
		own, named  bool
		policy      *cors.Policy
		verdict     = filters.VerdictNone
		strs        = func(k string, v glua.LValue) []string { return corsStrings(L, k, v) }
		policyName  string
		credentials bool
	)
	t.ForEach(func(k, v glua.LValue) {
		key, _ := k.(glua.LString)
		switch key {
		case "allow":
			b, ok := v.(glua.LBool)
			if !ok {
				L.RaiseError("ctx.cors: allow must be a boolean, not %s", luaRepr(v))
			}
			verdict = filters.VerdictRefuse
			if b {
				verdict = filters.VerdictAllow
			}
		case "policy":
			s, ok := v.(glua.LString)
			if !ok {
				L.RaiseError("ctx.cors: policy must be a string, not %s", luaRepr(v))
			}
			named, policyName = true, string(s)
		case "origins":
			own, o.AllowOrigins = true, strs("origins", v)
		case "methods":
			own, o.AllowMethods = true, strs("methods", v)
		case "headers":
			own, o.AllowHeaders = true, strs("headers", v)
		case "expose":
			own, o.ExposeHeaders = true, strs("expose", v)
		case "credentials":
			b, ok := v.(glua.LBool)
			if !ok {
				L.RaiseError("ctx.cors: credentials must be a boolean, not %s", luaRepr(v))
			}
			own, credentials = true, bool(b)
		case "max_age":
			n, ok := v.(glua.LNumber)
			if !ok || n < 0 {
				L.RaiseError("ctx.cors: max_age must be a number of seconds, not %s", luaRepr(v))
			}
			own, o.MaxAge = true, time.Duration(float64(n)*float64(time.Second))
		default:
			L.RaiseError("ctx.cors: unknown field %s (use allow, policy, origins, methods, headers, expose, credentials, max_age)", luaRepr(k))
		}
	})
	o.AllowCredentials = credentials
	switch {
	case own && named:
		L.RaiseError("ctx.cors: policy names a configured policy; origins, methods, headers, expose, credentials, max_age make one: not both")
	case named:
		if policy = ctx.CORS.Table.Named(policyName); policy == nil {
			L.RaiseError("ctx.cors: no CORS policy %q in the configuration (cors:)", policyName)
		}
	case own:
		p, err := cors.New(o)
		if err != nil {
			L.RaiseError("ctx.cors: %s", err.Error())
		}
		policy = p
	}
	if policy != nil {
		ctx.CORS.SetPolicy(policy)
	}
	if verdict != filters.VerdictNone {
		ctx.CORS.SetVerdict(verdict)
	}
	return 0
}

// corsStrings reads a Lua array of strings.
func corsStrings(L *glua.LState, key string, v glua.LValue) []string {
	t, ok := v.(*glua.LTable)
	if !ok {
		L.RaiseError("ctx.cors: %s must be a list of strings, not %s", key, luaRepr(v))
	}
	var out []string
	for i := 1; i <= t.Len(); i++ {
		s, ok := t.RawGetInt(i).(glua.LString)
		if !ok {
			L.RaiseError("ctx.cors: %s[%d] must be a string, not %s", key, i, luaRepr(t.RawGetInt(i)))
		}
		out = append(out, string(s))
	}
	return out
}
