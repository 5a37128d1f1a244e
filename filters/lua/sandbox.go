package lua

import (
	"strings"

	glua "github.com/yuin/gopher-lua"
)

// Limits of every sandboxed LState. The call stack bounds recursion (Lua calls
// and metamethods called from Go alike: "stack overflow"); the registry (the
// value stack) starts small and may grow to registryMax slots, past which
// "registry overflow" is raised (unpack of a huge range, string.byte of a huge
// string, deep recursion with many locals).
const (
	callStackSize = 200
	registrySize  = 4 * 1024
	registryMax   = 64 * 1024
	// registryGrow: gopher-lua copies the whole registry at each growth; its
	// default step (32 slots) makes growing to registryMax quadratic (about
	// a second for one unpack of a huge range).
	registryGrow = 4 * 1024
	// maxMatches bounds the matches string.gsub and string.gmatch collect at
	// once (gopher-lua's matcher collects all of them before returning).
	maxMatches = 100_000
)

// baseNames are the base functions a script sees. Left out on purpose:
// dofile, loadfile, load, loadstring, require, module (code loading),
// getfenv, setfenv (reach other functions' environments), collectgarbage,
// newproxy, _printregs, and the coroutine library (a coroutine is a new
// LState with a context that would not inherit the budget).
var baseNames = []string{
	"assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall",
	"rawequal", "rawget", "rawset", "select", "tonumber", "tostring", "type",
	"unpack", "xpcall", "_VERSION",
}

// sandbox is one sandboxed LState with the libraries a filter may use, and the
// template every script environment is copied from.
//
// Concurrency: like the LState it holds, a sandbox belongs to one goroutine (an
// event loop's, or the loader's); nothing in it may be used from another.
type sandbox struct {
	L      *glua.LState
	wd     *watchdog
	maxStr int // largest string rep/format/gsub/concat may build

	base []envEntry   // base functions (and print, setmetatable wrappers)
	libs []libEntry   // string, table, math: copied into each environment
	say  func(string) // where print's line goes; set by the owner
}

type envEntry struct {
	name  string
	value glua.LValue
}

type libEntry struct {
	name string
	tbl  *glua.LTable
}

// newSandbox builds an LState with only the base, string, table and math
// libraries, the memory-bounded replacements of the string functions that can
// build huge strings, and a locked string metatable.
func newSandbox(maxStr int) *sandbox {
	L := glua.NewState(glua.Options{
		SkipOpenLibs:     true,
		CallStackSize:    callStackSize,
		RegistrySize:     registrySize,
		RegistryMaxSize:  registryMax,
		RegistryGrowStep: registryGrow,
	})
	s := &sandbox{L: L, maxStr: maxStr, say: func(string) {}}
	for _, lib := range []struct {
		name string
		open glua.LGFunction
	}{
		{glua.BaseLibName, glua.OpenBase},
		{glua.StringLibName, glua.OpenString},
		{glua.TabLibName, glua.OpenTable},
		{glua.MathLibName, glua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(glua.LString(lib.name))
		L.Call(1, 0)
	}
	g := L.G.Global
	for _, name := range baseNames {
		s.base = append(s.base, envEntry{name, g.RawGetString(name)})
	}
	setmt := g.RawGetString("setmetatable").(*glua.LFunction).GFunction
	s.base = append(s.base,
		envEntry{"print", L.NewFunction(s.print)},
		envEntry{"setmetatable", L.NewFunction(func(L *glua.LState) int {
			// gopher-lua keeps one metatable per non-table type for the whole
			// LState: setmetatable(1, mt) would change numbers for every script.
			if L.Get(1).Type() != glua.LTTable {
				L.RaiseError("setmetatable: only tables can have a metatable in a filter")
			}
			return setmt(L)
		})},
	)

	str := g.RawGetString(glua.StringLibName).(*glua.LTable)
	str.RawSetString("dump", glua.LNil)
	str.RawSetString("rep", L.NewFunction(s.strRep))
	str.RawSetString("format", L.NewFunction(s.strFormat(str.RawGetString("format").(*glua.LFunction).GFunction)))
	str.RawSetString("gsub", L.NewFunction(s.strGsub))
	gmatch := L.NewFunction(strGmatch)
	str.RawSetString("gmatch", gmatch)
	str.RawSetString("gfind", gmatch)
	str.RawSetString("__index", glua.LNil)
	// Method calls on strings ("x"):upper() go through this metatable to the
	// patched library table. __metatable hides it from getmetatable and makes
	// setmetatable refuse to change it, so no script can patch it for others.
	mt := L.NewTable()
	mt.RawSetString("__index", str)
	mt.RawSetString("__metatable", glua.LFalse)
	L.SetMetatable(glua.LString(""), mt)

	tbl := g.RawGetString(glua.TabLibName).(*glua.LTable)
	tbl.RawSetString("concat", L.NewFunction(s.tableConcat))

	math := g.RawGetString(glua.MathLibName).(*glua.LTable)
	math.RawSetString("randomseed", glua.LNil) // would reseed the process-wide source

	s.libs = []libEntry{{"string", str}, {"table", tbl}, {"math", math}}
	s.wd = newWatchdog(L)
	return s
}

// newEnv returns a fresh global environment for one script instance: its own
// copies of the library tables (so `string.rep = nil` in one script changes
// nothing for another), _G pointing to itself, nothing else. Globals a script
// sets live in its environment only.
func (s *sandbox) newEnv() *glua.LTable {
	env := s.L.CreateTable(0, len(s.base)+len(s.libs)+4)
	for _, e := range s.base {
		env.RawSetString(e.name, e.value)
	}
	for _, lib := range s.libs {
		cp := s.L.CreateTable(0, 32)
		lib.tbl.ForEach(func(k, v glua.LValue) { cp.RawSet(k, v) })
		env.RawSetString(lib.name, cp)
	}
	env.RawSetString("_G", env)
	return env
}

// print sends its arguments, tab-separated as Lua's print would, to the
// process log at debug level (through s.say) instead of stdout.
func (s *sandbox) print(L *glua.LState) int {
	var b strings.Builder
	top := L.GetTop()
	for i := 1; i <= top; i++ {
		if i > 1 {
			b.WriteByte('\t')
		}
		b.WriteString(L.ToStringMeta(L.Get(i)).String())
		if b.Len() > 16*1024 {
			break // a log line, not a data channel
		}
	}
	s.say(b.String())
	return 0
}
