package lua

import (
	"strings"

	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
)

// answer is a side call's answer as a filter sees it (res): a read-only
// object whose fields are made when first read. A filter that looks at the
// status only pays for no header table, no header function, no body string.
//
// Concurrency: loop goroutine only, like the LState it lives on.
type answer struct {
	status  int
	body    string
	headers []filters.Header // the names and values share one string (exchange.sideCall)
	// Made on first access.
	bodyV  glua.LValue
	table  *glua.LTable
	header *glua.LFunction
}

// answerObject wraps r (valid only during the call) as res.
func (l *Loop) answerObject(r *filters.SideResult) *glua.LUserData {
	a := &answer{status: r.Status, body: string(r.Body)}
	if len(r.Headers) > 0 {
		a.headers = append([]filters.Header(nil), r.Headers...)
	}
	ud := l.L.NewUserData()
	ud.Value = a
	ud.Metatable = l.answerMeta()
	return ud
}

// answerMeta is the metatable every answer of this loop shares.
func (l *Loop) answerMeta() *glua.LTable {
	if l.ansMeta != nil {
		return l.ansMeta
	}
	L := l.L
	mt := L.CreateTable(0, 3)
	mt.RawSetString("__index", L.NewFunction(l.answerIndex))
	mt.RawSetString("__newindex", L.NewFunction(func(L *glua.LState) int {
		L.RaiseError("a side call's answer is read-only")
		return 0
	}))
	mt.RawSetString("__metatable", glua.LFalse)
	l.ansMeta = mt
	return mt
}

// answerIndex serves res.status, res.body, res.headers and res.header.
func (l *Loop) answerIndex(L *glua.LState) int {
	ud := L.CheckUserData(1)
	a, _ := ud.Value.(*answer)
	if a == nil {
		L.Push(glua.LNil)
		return 1
	}
	switch L.CheckString(2) {
	case "status":
		L.Push(glua.LNumber(a.status))
	case "body":
		if a.bodyV == nil {
			a.bodyV = glua.LString(a.body)
		}
		L.Push(a.bodyV)
	case "headers":
		L.Push(a.headerTable(L))
	case "header":
		if a.header == nil {
			a.header = L.NewFunction(func(L *glua.LState) int {
				n := 1
				if L.Get(1) == ud {
					n = 2 // res:header(name)
				}
				L.Push(a.headerTable(L).RawGetString(strings.ToLower(L.CheckString(n))))
				return 1
			})
		}
		L.Push(a.header)
	default:
		L.Push(glua.LNil)
	}
	return 1
}

// headerTable is res.headers: lower-case name → value, repeated headers
// joined with ", ".
func (a *answer) headerTable(L *glua.LState) *glua.LTable {
	if a.table != nil {
		return a.table
	}
	t := L.CreateTable(0, len(a.headers))
	for _, kv := range a.headers {
		k := glua.LString(strings.ToLower(kv.Name))
		if prev, ok := t.RawGet(k).(glua.LString); ok {
			t.RawSet(k, glua.LString(strings.Join([]string{string(prev), kv.Value}, ", ")))
		} else {
			t.RawSet(k, glua.LString(kv.Value))
		}
	}
	a.table = t
	return t
}
