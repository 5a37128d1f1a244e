package lua

import (
	"testing"
	"time"

	"gozer/filters"
)

func TestSandboxEscapesFail(t *testing.T) {
	cases := []struct {
		name string
		code string
		err  string // substring of the raised error
	}{
		{"os.execute", `os.execute("touch /tmp/gozer-pwned")`, "attempt to index a non-table object(nil)"},
		{"io.open", `io.open("/etc/passwd")`, "attempt to index a non-table object(nil)"},
		{"require", `require("os")`, "attempt to call a non-function object"},
		{"load", `load("return 1")`, "attempt to call a non-function object"},
		{"loadstring", `loadstring("return 1")()`, "attempt to call a non-function object"},
		{"dofile", `dofile("/etc/passwd")`, "attempt to call a non-function object"},
		{"loadfile", `loadfile("/etc/passwd")`, "attempt to call a non-function object"},
		{"debug.traceback", `debug.traceback()`, "attempt to index a non-table object(nil)"},
		{"package.loaded", `local x = package.loaded`, "attempt to index a non-table object(nil)"},
		{"getfenv", `getfenv(1).x = 1`, "attempt to call a non-function object"},
		{"setfenv", `setfenv(1, {})`, "attempt to call a non-function object"},
		{"collectgarbage", `collectgarbage()`, "attempt to call a non-function object"},
		{"coroutine", `coroutine.create(function() end)`, "attempt to index a non-table object(nil)"},
		{"channel", `channel.make()`, "attempt to index a non-table object(nil)"},
		{"string.dump", `string.dump(function() end)`, "attempt to call a non-function object"},
		{"math.randomseed", `math.randomseed(1)`, "attempt to call a non-function object"},
		{"string.rep bomb", `local s = string.rep("x", 1e9)`, "string.rep result too large"},
		{"string.rep bomb as a method", `local s = ("xy"):rep(1e9)`, "string.rep result too large"},
		{"string.format width", `local s = string.format("%0999999d", 1)`, "invalid format (width or precision too long)"},
		{"string.format precision", `local s = string.format("%.999f", 1)`, "invalid format (width or precision too long)"},
		{"string.gsub bomb", `local s = string.gsub(string.rep("x", 20000), "x", string.rep("y", 100))`, "string.gsub result too large"},
		{"string.gsub match bomb", `local s = string.gsub(string.rep("x", 1e6), "", "")`, "more than 100000 matches"},
		{"table.concat bomb", `local t = {} for i = 1, 2000 do t[i] = string.rep("x", 1000) end local s = table.concat(t)`, "table.concat result too large"},
		{"deep recursion", `local function f(n) return 1 + f(n + 1) end f(1)`, "stack overflow"},
		{"metamethod recursion", `local t = setmetatable({}, { __index = function(t, k) return t[k] end }) local x = t.a`, "stack overflow"},
		{"unpack huge range", `local x = { unpack({}, 1, 1e7) }`, "overflow"},
		{"string metatable", `setmetatable("", {})`, "only tables can have a metatable"},
		{"number metatable", `setmetatable(1, { __index = function() return "pwned" end })`, "only tables can have a metatable"},
		{"string metatable hidden", `getmetatable("").__index.upper = nil`, "attempt to index a non-table object(boolean)"},
		{"ctx metatable", `setmetatable(ctx, {})`, "only tables can have a metatable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runAPICase(t, apiCase{code: c.code, err: c.err})
		})
	}
}

func TestSandboxLimitsAllowNormalUse(t *testing.T) {
	runAPICase(t, apiCase{code: `
		local parts = {}
		for w in string.gmatch("a=1&b=2", "(%w+)=(%w+)") do parts[#parts+1] = w end
		local s = string.gsub("hello world", "(%w+)", "<%1>")
		local u = string.gsub("abc", "%w", { a = "A" })
		local f = string.gsub("abc", "b", function(m) return m:upper() end)
		ctx.vars.v = table.concat(parts, ",") .. "|" .. s .. "|" .. u .. "|" .. f .. "|" ..
			string.format("%5.1f|%-3s|%x", 3.14159, "a", 255) .. "|" .. ("ab"):rep(3) .. "|" .. #string.rep("x", 1024 * 1024)`,
		check: wantVar("v", "a,b|<hello> <world>|Abc|aBc|  3.1|a  |ff|ababab|1048576"),
	})
}

// TestGlobalsAreNotShared: one script's globals, library patches and _G
// changes never reach another script.
func TestGlobalsAreNotShared(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/a.lua": filterSrc("a", "inbound", 1, "", `
			shared = "from a"
			_G.tostring = function() return "pwned" end
			string.upper = function() return "pwned" end
			rawset(_G, "type", nil)
			table.concat = nil
			print = nil`),
		"inbound/b.lua": filterSrc("b", "inbound", 2, "", `
			ctx.vars.v = tostring(shared) .. "|" .. string.upper("x") .. "|" .. ("y"):upper() .. "|" ..
				type(1) .. "|" .. table.concat({ "c", "d" }) .. "|" .. tostring(tostring(1))
			print("still works")`),
	}, Options{})
	ctx := newCtx(t, "", nil)
	e.loop.Chain().Inbound(ctx)
	if got := vars(ctx, "v"); got != "nil|X|Y|number|cd|1" {
		t.Fatalf("b sees %q; log:\n%s", got, e.log)
	}
	if st, _ := status(e.rt, "b"); st.Errors != 0 {
		t.Fatalf("b raised; log:\n%s", e.log)
	}
}

func TestRunawayFilterStopped(t *testing.T) {
	cases := []struct {
		name, decl, code string
	}{
		{"busy loop", "", `while true do end`},
		{"pcall swallowing the stop", "", `while true do pcall(function() while true do end end) end`},
		{"tail-called pcall swallowing the stop", "", `return pcall(function() while true do end end)`},
		{"busy should_filter", `should_filter = function(ctx) while true do end end,`, `ctx.vars.ran = 1`},
		{"growing table", "", `local t = {} local i = 0 while true do i = i + 1 t[i] = i end`},
		{"growing string", "", `local s = "x" while true do s = s .. s if #s > 1e6 then s = "x" end end`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const budget = 20 * time.Millisecond
			e := newEnv(t, map[string]string{
				"inbound/spin.lua": filterSrc("spin", "inbound", 1, c.decl, c.code),
				"inbound/next.lua": filterSrc("next", "inbound", 2, "", `ctx.vars.next = "ran"`),
			}, Options{Budget: budget})
			ch := e.loop.Chain()
			ctx := newCtx(t, "", nil)
			start := time.Now()
			ch.Inbound(ctx)
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("runaway filter ran for %v", took)
			}
			if !ctx.Failed || ctx.FailCause != filters.LocalFilterTimeout || ctx.FailCause.Status != 500 {
				t.Fatalf("failed %v cause %v", ctx.Failed, ctx.FailCause)
			}
			if vars(ctx, "next") != "" || vars(ctx, "ran") != "" {
				t.Fatal("the chain went on after a timeout")
			}
			st, _ := status(e.rt, "spin")
			if st.Errors != 1 || st.Timeouts != 1 {
				t.Fatalf("status %+v", st)
			}
			if line := e.log.find("error", "filter ran past its time budget"); line == nil || line["filter"] != "spin" {
				t.Fatalf("timeout not logged; log:\n%s", e.log)
			}

			// The loop keeps serving: the same LState runs the next request,
			// with a fresh budget, through a chain without the runaway.
			for i := 0; i < 3; i++ {
				ok := newCtx(t, "", nil)
				ch.outbound = nil
				(&Chain{l: e.loop, inbound: ch.inbound[1:]}).Inbound(ok)
				if ok.Failed || vars(ok, "next") != "ran" {
					t.Fatalf("request %d after the timeout: failed=%v %q next=%q", i, ok.Failed, ok.FailReason, vars(ok, "next"))
				}
			}
		})
	}
}

// TestWatchdogShortTicksNeverSpendALongerBudget: the ticker runs free at the
// period of the last call armed; a call with a longer budget after calls with
// tiny ones may see a tick or two of the old period, never enough to be
// stopped.
func TestWatchdogShortTicksNeverSpendALongerBudget(t *testing.T) {
	sb := newSandbox(minStringCap)
	w := sb.wd
	for i := 0; i < 300; i++ {
		w.arm(time.Duration(i%4) * time.Microsecond) // ticks race the disarm below
		for j := 0; j < i%5; j++ {
			w.cur.Done()
		}
		w.disarm()
		w.arm(time.Hour)
		time.Sleep(50 * time.Microsecond) // let a tick of the short period land
		for j := 0; j < 10; j++ {
			if w.cur.Done() != nil || w.cur.used > 1 {
				t.Fatalf("round %d: the hour-long call counted %d ticks", i, w.cur.used)
			}
		}
		if w.disarm() {
			t.Fatalf("round %d: an hour-long budget was spent", i)
		}
	}
}

// TestWatchdogTickerStopsWhenIdle: without calls the ticker stops (an idle
// loop has no wake-ups), and the next call starts it again.
func TestWatchdogTickerStopsWhenIdle(t *testing.T) {
	sb := newSandbox(minStringCap)
	w := sb.wd
	w.arm(40 * time.Microsecond) // ticks every 10 µs
	w.disarm()
	waitFor(t, "the ticker stops", 5*time.Second, func() bool { return !w.cur.running.Load() })
	before := w.cur.ticks.Load()
	time.Sleep(20 * time.Millisecond)
	if n := w.cur.ticks.Load() - before; n != 0 {
		t.Fatalf("%d ticks while stopped", n)
	}
	w.arm(40 * time.Microsecond)
	start := time.Now()
	for w.cur.Done() == nil {
		if time.Since(start) > 5*time.Second {
			t.Fatal("a running call was never stopped after the ticker had stopped")
		}
	}
	w.disarm()
	w.close()
	time.Sleep(time.Millisecond) // a tick already under way lands
	before = w.cur.ticks.Load()
	time.Sleep(20 * time.Millisecond)
	if n := w.cur.ticks.Load() - before; n != 0 {
		t.Fatalf("%d ticks after close", n)
	}
}

// TestWatchdogCountsRunningTime: a call that keeps executing is stopped after
// its budget; time during which it executed nothing (its thread descheduled)
// counts as one tick at most.
func TestWatchdogCountsRunningTime(t *testing.T) {
	const budget = 20 * time.Millisecond
	sb := newSandbox(minStringCap)
	w := sb.wd

	w.arm(budget)
	c := w.cur
	time.Sleep(5 * budget) // "descheduled": no instruction runs
	if c.Done() != nil {
		t.Fatal("budget spent by time the filter did not run")
	}
	start := time.Now()
	for c.Done() == nil { // "running": instructions poll Done
		if time.Since(start) > 5*time.Second {
			t.Fatal("a running call was never stopped")
		}
	}
	// At most one tick was counted for the sleep: the running part took at
	// least two more ticks.
	if took := time.Since(start); took < 2*budget/ticksPerBudget {
		t.Fatalf("stopped after %v of running", took)
	}
	if c.Err() == nil || !w.disarm() {
		t.Fatal("spent budget not reported")
	}

	w.arm(budget)
	start = time.Now()
	for w.cur.Done() == nil {
		if time.Since(start) > 5*time.Second {
			t.Fatal("a running call was never stopped")
		}
	}
	if took := time.Since(start); took < budget*(ticksPerBudget-1)/ticksPerBudget {
		t.Fatalf("a busy call was stopped after %v, budget %v", took, budget)
	}
	w.disarm()
}
