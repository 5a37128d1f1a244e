package lua

import (
	"errors"
	"math"
	"time"

	glua "github.com/yuin/gopher-lua"

	"gozer/filters/dict"
)

// ctx.shared(name): the node's shared dictionaries (filters.shared_dicts),
// one object per dictionary and loop, its methods called with ':':
//
//	local d = ctx.shared("auth")
//	d:get(key)                       value (string, number, boolean) or nil
//	d:set(key, value, ttl)           true, or nil and a reason; value nil deletes
//	d:add(key, value, ttl)           true; false when the key is there; nil, reason
//	d:incr(key, delta, init, ttl)    the new number, or nil and a reason
//	d:delete(key), d:ttl(key), d:flush_all()
//
// ttl is in seconds (0 or nil: none). The dictionaries are shared by every
// loop (filters/dict shards them, no global lock); their values are copies,
// never Lua tables.

// ctxShared is ctx.shared(name).
func (l *Loop) ctxShared(L *glua.LState) int {
	l.cur(L)
	name := L.CheckString(l.arg0(L))
	if ud, ok := l.dicts[name]; ok {
		L.Push(ud)
		return 1
	}
	d, ok := l.rt.opts.Dicts.Get(name)
	if !ok {
		L.RaiseError("ctx.shared: no shared dictionary %q (declare it under filters.shared_dicts)", name)
	}
	if l.dicts == nil {
		l.dicts = make(map[string]*glua.LUserData)
	}
	ud := l.dictObject(d)
	l.dicts[name] = ud
	L.Push(ud)
	return 1
}

// dictObject is the Lua object of d on this loop.
func (l *Loop) dictObject(d *dict.Dict) *glua.LUserData {
	L := l.L
	ud := L.NewUserData()
	ud.Value = d
	if l.dictMeta == nil {
		members := L.CreateTable(0, 7)
		for k, f := range map[string]glua.LGFunction{
			"get": l.dictGet, "set": l.dictSet, "add": l.dictAdd, "incr": l.dictIncr,
			"delete": l.dictDelete, "ttl": l.dictTTL, "flush_all": l.dictFlush,
		} {
			members.RawSetString(k, L.NewFunction(f))
		}
		mt := L.CreateTable(0, 3)
		mt.RawSetString("__index", members)
		mt.RawSetString("__newindex", L.NewFunction(func(L *glua.LState) int {
			L.RaiseError("a shared dictionary is read-only: use its set method")
			return 0
		}))
		mt.RawSetString("__metatable", glua.LFalse)
		l.dictMeta = mt
	}
	ud.Metatable = l.dictMeta
	return ud
}

// dictOf is the dictionary a method was called on (with ':').
func dictOf(L *glua.LState, method string) *dict.Dict {
	ud, ok := L.Get(1).(*glua.LUserData)
	if ok {
		if d, ok := ud.Value.(*dict.Dict); ok {
			return d
		}
	}
	L.RaiseError("shared dictionary: call %s with ':' (d:%s(...))", method, method)
	return nil
}

// clock is the dictionaries' time: the monotonic clock, the same on every loop.
func clock() int64 { return int64(now()) }

// dictValue converts a Lua value for the dictionary.
func dictValue(L *glua.LState, v glua.LValue, method string) dict.Value {
	switch v := v.(type) {
	case glua.LString:
		return dict.StringValue(string(v))
	case glua.LNumber:
		return dict.NumberValue(float64(v))
	case glua.LBool:
		return dict.BoolValue(bool(v))
	}
	L.RaiseError("shared dictionary %s: values are strings, numbers or booleans, not %s", method, luaRepr(v))
	return dict.Value{}
}

// luaValue is a dictionary value as Lua sees it.
func luaValue(v dict.Value) glua.LValue {
	switch v.Kind {
	case dict.String:
		return glua.LString(v.Str)
	case dict.Number:
		return glua.LNumber(v.Num)
	case dict.Bool:
		return glua.LBool(v.Bool)
	}
	return glua.LNil
}

// optTTL reads an optional ttl argument in seconds.
func optTTL(L *glua.LState, n int, method string) time.Duration {
	switch v := L.Get(n).(type) {
	case *glua.LNilType:
		return 0
	case glua.LNumber:
		if v >= 0 && !math.IsInf(float64(v), 0) && v <= 1e9 {
			return time.Duration(float64(v) * float64(time.Second))
		}
	}
	L.RaiseError("shared dictionary %s: ttl must be a number of seconds, 0 or more, not %s", method, luaRepr(L.Get(n)))
	return 0
}

// fail pushes nil and the reason for a refused operation; a key that is not
// a string raises, it is a bug in the script.
func dictFail(L *glua.LState, err error) int {
	if errors.Is(err, dict.ErrEmptyKey) || errors.Is(err, dict.ErrKeyTooLong) {
		L.RaiseError("shared dictionary: %v", err)
	}
	L.Push(glua.LNil)
	L.Push(glua.LString(err.Error()))
	return 2
}

func (l *Loop) dictGet(L *glua.LState) int {
	d := dictOf(L, "get")
	v, ok := d.Get(L.CheckString(2), clock())
	if !ok {
		L.Push(glua.LNil)
		return 1
	}
	L.Push(luaValue(v))
	return 1
}

func (l *Loop) dictSet(L *glua.LState) int {
	d := dictOf(L, "set")
	key := L.CheckString(2)
	if L.Get(3) == glua.LNil {
		d.Delete(key)
		L.Push(glua.LTrue)
		return 1
	}
	if err := d.Set(key, dictValue(L, L.Get(3), "set"), optTTL(L, 4, "set"), clock()); err != nil {
		return dictFail(L, err)
	}
	L.Push(glua.LTrue)
	return 1
}

func (l *Loop) dictAdd(L *glua.LState) int {
	d := dictOf(L, "add")
	ok, err := d.Add(L.CheckString(2), dictValue(L, L.Get(3), "add"), optTTL(L, 4, "add"), clock())
	if err != nil {
		return dictFail(L, err)
	}
	L.Push(glua.LBool(ok))
	return 1
}

func (l *Loop) dictIncr(L *glua.LState) int {
	d := dictOf(L, "incr")
	key := L.CheckString(2)
	delta := 1.0
	if v, ok := L.Get(3).(glua.LNumber); ok {
		delta = float64(v)
	} else if L.Get(3) != glua.LNil {
		L.RaiseError("shared dictionary incr: delta must be a number, not %s", luaRepr(L.Get(3)))
	}
	var init *float64
	if v, ok := L.Get(4).(glua.LNumber); ok {
		f := float64(v)
		init = &f
	} else if L.Get(4) != glua.LNil {
		L.RaiseError("shared dictionary incr: init must be a number, not %s", luaRepr(L.Get(4)))
	}
	n, err := d.Incr(key, delta, init, optTTL(L, 5, "incr"), clock())
	if err != nil {
		return dictFail(L, err)
	}
	L.Push(glua.LNumber(n))
	return 1
}

func (l *Loop) dictDelete(L *glua.LState) int {
	dictOf(L, "delete").Delete(L.CheckString(2))
	return 0
}

func (l *Loop) dictTTL(L *glua.LState) int {
	left, ok := dictOf(L, "ttl").TTL(L.CheckString(2), clock())
	if !ok {
		L.Push(glua.LNil)
		return 1
	}
	L.Push(glua.LNumber(left.Seconds()))
	return 1
}

func (l *Loop) dictFlush(L *glua.LState) int {
	dictOf(L, "flush_all").Flush()
	return 0
}
