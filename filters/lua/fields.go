package lua

import (
	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
)

// Plain fields. ctx, ctx.req and ctx.resp are userdata whose members (the
// functions, ctx.req, ctx.resp) sit in one table; a field that depends on the
// request is served by a Go __index function instead. Reaching that function
// costs a nested VM call and boxes the key's string (gopher-lua's
// getFieldString): about 180 ns and an allocation a read, against 10 ns for a
// member (BenchmarkFieldDynamic, BenchmarkFieldMember and BenchmarkFieldNone in
// corebench_test.go: 1180, 1002 and 994 ns/op, the fastest of 6 runs of each
// with -test.cpu 1 -test.benchtime 300000x, before this file). The bench's
// scripts read two such fields per request, ctx.req.path and ctx.vars. So the hottest of them are kept in the members
// table while they are valid for the filter call in progress:
//
//   - ctx.vars is put there at the start of every Lua call (Loop.enter): the
//     request's table, taken when the request first enters Lua rather than when
//     a filter first reads it (a recycled table, vars.go: no allocation). The
//     field is rewritten only when the table differs from the last call's, which
//     the free list's order makes rare.
//   - ctx.req.path and ctx.req.host are put there by their first read (reqIndex)
//     and stay while the text is the same: Loop.enter compares it with the
//     request's (a memo compare, no allocation) and removes the field when it
//     differs, as do the functions that change them within a call (set_path,
//     ctx.route, a Host header). A field nobody read costs nothing per call.
//
// Between calls the fields hold the last call's values; no Lua code can read
// them then (Loop.ctx is nil only while no filter of this loop runs), and the
// next call refreshes them before its first instruction.
//
// Concurrency: the loop's goroutine only, like the rest of the Loop.

// liveField is one request field of ctx.req that its first read copies into
// the members table.
type liveField struct {
	key   string
	memo  strMemo
	shown bool // members[key] holds memo.v
	of    func(*filters.Context) []byte
}

// fields are the api's plain fields and the members tables they live in.
type fields struct {
	ctxMembers, reqMembers *glua.LTable
	path, host             liveField
	vars                   *glua.LTable // ctxMembers.vars, or nil when unset
}

func (f *fields) init(ctx, req *glua.LUserData) {
	f.ctxMembers = membersOf(ctx)
	f.reqMembers = membersOf(req)
	f.path = liveField{key: "path", of: (*filters.Context).Path}
	f.host = liveField{key: "host", of: (*filters.Context).Host}
}

// membersOf is the __index table of an object built by Loop.object.
func membersOf(ud *glua.LUserData) *glua.LTable {
	return ud.Metatable.(*glua.LTable).RawGetString("__index").(*glua.LTable)
}

// enter starts a Lua call of filter in on ctx: the Loop's current call and
// the plain fields, made right for ctx. Every path that runs a script's
// function (callLua, an async filter's should_filter and coroutine steps)
// goes through it.
func (l *Loop) enter(ctx *filters.Context, in *instance, ph filters.Phase) {
	l.ctx, l.in, l.phase = ctx, in, ph
	f := &l.api.fields
	if t := l.vars(ctx); t != f.vars {
		f.ctxMembers.RawSetString("vars", t)
		f.vars = t
	}
	f.check(&f.path, ctx)
	f.check(&f.host, ctx)
}

// check removes field lf from ctx.req's members unless it holds ctx's value.
func (f *fields) check(lf *liveField, ctx *filters.Context) {
	if lf.shown && (ctx.Req == nil || !lf.memo.same(lf.of(ctx))) {
		f.drop(lf)
	}
}

// drop removes field lf from ctx.req's members: the next read goes through
// reqIndex. Called by the functions that change the field's value.
func (f *fields) drop(lf *liveField) {
	if lf.shown {
		f.reqMembers.RawSetString(lf.key, glua.LNil)
		lf.shown = false
	}
}

// show returns lf's value for ctx as a Lua string and keeps it in ctx.req's
// members for the reads after this one.
func (f *fields) show(lf *liveField, ctx *filters.Context) glua.LValue {
	v := lf.memo.get(lf.of(ctx))
	if !lf.shown {
		f.reqMembers.RawSetString(lf.key, v)
		lf.shown = true
	}
	return v
}
