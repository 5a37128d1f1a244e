package lua

import (
	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
)

// ctx.vars tables are recycled. A gopher-lua table costs about nine
// allocations (750 bytes) by its first string key (the table, its string map,
// the key index map and slice, the boxed key), which was most of what a request
// through the bench's three filters allocated (BenchmarkBenchScripts: 13
// allocs/op, 800 B/op before, see bench_test.go). A request takes a table
// from its Loop's free list at its first Lua call (Loop.enter puts it in ctx's
// members as a plain field, fields.go); filters.Context.Reset hands it back
// once the request is over, emptied.
//
// The table is the request's for as long as the request lasts: a script that
// keeps ctx.vars in a module-level variable past its request would see a
// later request's values there (API.md says not to keep it).

const (
	// varsKeep bounds the emptied tables a Loop keeps.
	varsKeep = 64
	// varsUses: a table serves this many requests, then is dropped. gopher-lua
	// never forgets a string key once set (its key index keeps deleted keys):
	// a script that names its keys after the request would grow a table
	// forever, and this bounds how far.
	varsUses = 64
	// varsMaxKeys: a table that held more entries than this is not recycled
	// (emptying it costs what a new one does).
	varsMaxKeys = 32
)

// varsTable is one ctx.vars table and its recycling state: what a request's
// filters.Context.Vars holds.
//
// Concurrency: like its Loop, used on the loop's goroutine only; Recycle is
// called there by filters.Context.Reset.
type varsTable struct {
	t     *glua.LTable
	l     *Loop
	uses  int
	inUse bool // handed to a request and not recycled since
}

// vars returns ctx's vars table, taking one when ctx has none yet.
func (l *Loop) vars(ctx *filters.Context) *glua.LTable {
	if v, ok := ctx.Vars.(*varsTable); ok && v.inUse {
		return v.t
	}
	var v *varsTable
	if n := len(l.varsFree); n > 0 {
		v = l.varsFree[n-1]
		l.varsFree[n-1] = nil
		l.varsFree = l.varsFree[:n-1]
	} else {
		v = &varsTable{t: l.L.CreateTable(0, 4), l: l}
	}
	v.uses++
	v.inUse = true
	ctx.Vars = v
	return v.t
}

// Recycle empties the table and gives it back to its Loop, unless it served
// varsUses requests or held many entries: then it is left to the GC. A second
// call (a Context reset twice) does nothing.
func (v *varsTable) Recycle() {
	if !v.inUse {
		return
	}
	v.inUse = false
	l := v.l
	if v.uses >= varsUses || len(l.varsFree) >= varsKeep || !clearTable(v.t, varsMaxKeys) {
		return
	}
	l.varsFree = append(l.varsFree, v)
}

// clearTable removes every entry and the metatable of t; false when t held
// more than max entries (then it is only partly cleared). Next hands out keys
// gopher-lua boxed already: no allocation. Removing the key just returned is
// safe, Next finds its place by the key's index, which it keeps.
func clearTable(t *glua.LTable, max int) bool {
	t.Metatable = glua.LNil
	n := 0
	for k, _ := t.Next(glua.LNil); k != glua.LNil; k, _ = t.Next(k) {
		if n++; n > max {
			return false
		}
		t.RawSet(k, glua.LNil)
	}
	return true
}
