package test

// Lua filters that misbehave: runaway loops stopped by the budget, raised errors
// (fatal or not), sandbox escapes. Each fails cleanly, is counted in /admin/filters,
// and the gateway keeps serving everyone else.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLuaFilterRunawayBudget: a filter stuck in `while true do end` with budget 20ms
// is stopped: its requests get a 500 FAILURE_LOCAL_FILTER_TIMEOUT within seconds,
// the requests it does not apply to keep succeeding meanwhile, and /admin/filters
// counts its timeouts.
func TestLuaFilterRunawayBudget(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "inbound", "10_runaway.lua", luaFilter("runaway", "inbound", 10,
		`ctx.req.path:sub(1, 5) == "/spin"`, `while true do end`))
	d.write(t, "outbound", "10_out.lua", luaFilter("out", "outbound", 10, "", `ctx.resp.set_header("X-Out", "ran")`))
	o := startOrigin(t, "o")
	g := luaGozer(t, d, filtersConfig{Budget: "20ms"}, servers(o), route{PathPrefix: "/", Origin: "o"})

	// Background traffic on keep-alive connections, to a path the runaway skips.
	const background = 4
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64
	errs := make([]error, background)
	for i := range background {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = keepSending(g.ProxyAddr, "/headers", stop, &served)
		}()
	}
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer halt()

	const spins = 6
	var spinWG sync.WaitGroup
	spinErrs := make([]string, spins)
	for i := range spins {
		spinWG.Add(1)
		go func() {
			defer spinWG.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			start := time.Now()
			resp, err := c.Get(g.URL(fmt.Sprintf("/spin/%d", i)))
			if err != nil {
				spinErrs[i] = err.Error()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			switch {
			case resp.StatusCode != 500 || resp.Header.Get("X-Gozer-Status") != "FAILURE_LOCAL_FILTER_TIMEOUT":
				spinErrs[i] = fmt.Sprintf("status %d, X-Gozer-Status %q, want 500 FAILURE_LOCAL_FILTER_TIMEOUT",
					resp.StatusCode, resp.Header.Get("X-Gozer-Status"))
			case resp.Header.Get("X-Out") != "ran":
				spinErrs[i] = "the outbound filter did not run on the timeout answer"
			case took > 5*time.Second: // loose bound: the budget is 20 ms
				spinErrs[i] = fmt.Sprintf("answered after %v, want within 5 s (budget 20ms)", took)
			}
		}()
	}
	spinWG.Wait()
	for i, e := range spinErrs {
		if e != "" {
			t.Errorf("runaway request %d: %s", i, e)
		}
	}
	// Background requests kept being served after the runaway calls too.
	before := served.Load()
	waitFor(t, 5*time.Second, "background requests keep succeeding", func() bool { return served.Load() >= before+20 })
	halt()
	for i, err := range errs {
		if err != nil {
			t.Errorf("background connection %d: %v", i, err)
		}
	}
	t.Logf("%d background requests served while %d runaway requests were stopped", served.Load(), spins)
	f := g.waitFilterErrors(t, "runaway", spins)
	if f.Timeouts < spins {
		t.Errorf("/admin/filters runaway: timeouts = %d, want >= %d", f.Timeouts, spins)
	}
	// The gateway still answers a runaway request the same way (the loop is not wedged).
	resp, _ := fetch(t, newClient(t, 10*time.Second), "GET", g.URL("/spin/again"), nil, nil)
	if resp.StatusCode != 500 {
		t.Errorf("runaway request after the others: status %d, want 500", resp.StatusCode)
	}
}

// keepSending sends GET path on one keep-alive connection until stop is closed and
// returns the first failure: an error, a status other than 200, a short body, or a
// request slower than ioTimeout.
func keepSending(addr, path string, stop <-chan struct{}, served *atomic.Int64) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: gozer.test\r\n\r\n")
	for n := 1; ; n++ {
		select {
		case <-stop:
			return nil
		default:
		}
		_ = nc.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := nc.Write(req); err != nil {
			return fmt.Errorf("request %d: write: %w", n, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return fmt.Errorf("request %d: %w", n, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("request %d: status %d, X-Gozer-Status %q, body error %v",
				n, resp.StatusCode, resp.Header.Get("X-Gozer-Status"), err)
		}
		served.Add(1)
	}
}

// TestLuaFilterErrors: a filter that raises is counted and logged (filter name,
// file:line, message); the request goes on without it, unless the filter is fatal:
// then a 500 FAILURE_LOCAL_FILTER_ERROR. Another filter's error never stops the rest
// of the chain.
func TestLuaFilterErrors(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	type row struct {
		name    string
		phase   string
		extra   []string
		apply   string
		status  int
		cause   string
		reach   bool   // the origin gets the request
		logText string // in the error's log line, which also names FILE:LINE and the filter
	}
	tests := []row{
		{"in_soft", "inbound", nil, `error("soft inbound failure")`, 200, "", true, "soft inbound failure"},
		{"in_fatal", "inbound", []string{"fatal = true"}, `error("fatal inbound failure")`, 500, "FAILURE_LOCAL_FILTER_ERROR", false, "fatal inbound failure"},
		{"out_soft", "outbound", nil, `error("soft outbound failure")`, 200, "", true, "soft outbound failure"},
		{"out_fatal", "outbound", []string{"fatal = true"}, `error("fatal outbound failure")`, 500, "FAILURE_LOCAL_FILTER_ERROR", true, "fatal outbound failure"},
		{"in_nil_index", "inbound", nil, `local t = nil; t.x = 1`, 200, "", true, "attempt to index"},
		{"in_wrong_phase", "inbound", nil, `ctx.resp.set_header("X-Wrong", "1")`, 200, "", true, "only for endpoint and outbound filters"},
		{"out_wrong_phase", "outbound", nil, `ctx.route{ origin = "o" }`, 200, "", true, "only for inbound filters"},
	}
	for i, tc := range tests {
		// Each filter applies only to requests with ?err=NAME.
		d.write(t, tc.phase, tc.name+".lua", luaFilter(tc.name, tc.phase, 20+i,
			fmt.Sprintf("ctx.req.arg(%q) == %q", "err", tc.name), tc.apply, tc.extra...))
	}
	d.write(t, "inbound", "90_in_after.lua", luaFilter("in_after", "inbound", 90, "", `ctx.req.set_header("X-In-After", "ran")`))
	d.write(t, "outbound", "90_out_after.lua", luaFilter("out_after", "outbound", 90, "", `ctx.resp.set_header("X-Out-After", "ran")`))
	o := startOrigin(t, "o")
	g := luaGozer(t, d, filtersConfig{}, servers(o), route{PathPrefix: "/", Origin: "o"})
	c := newClient(t, 10*time.Second)

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uniqueID(tc.name)
			resp, body := fetch(t, c, "GET", g.URL("/headers?err="+tc.name), nil, map[string]string{"X-Test-Id": id})
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, tail(string(body), 300))
			}
			checkGozerStatus(t, resp, tc.cause)
			if s := seen(t, o, id); tc.reach != (s.Requests > 0) {
				t.Errorf("origin saw the request %d times, want reached=%v", s.Requests, tc.reach)
			}
			if tc.status == 200 {
				if v := decodeView(t, body); v.Headers.Get("X-In-After") != "ran" {
					t.Errorf("the inbound filter after the failing one did not run (origin got X-In-After %q)", v.Headers.Get("X-In-After"))
				}
				if got := resp.Header.Get("X-Out-After"); got != "ran" {
					t.Errorf("the outbound filter after the failing one did not run (X-Out-After %q)", got)
				}
			}
			f := g.waitFilterErrors(t, tc.name, 1)
			if f.Timeouts != 0 {
				t.Errorf("/admin/filters %s: timeouts = %d, want 0", tc.name, f.Timeouts)
			}
			path := d.path(tc.phase, tc.name+".lua")
			line := g.waitLog(t, tc.name, path+":", tc.logText)
			if !regexp.MustCompile(regexp.QuoteMeta(path) + `:\d+: `).MatchString(line.text) {
				t.Errorf("the error's log line does not name %s:LINE: %s", path, line.text)
			}
			if got, _ := line.fields["filter"].(string); got != tc.name {
				t.Errorf("the error's log line names filter %q, want %q: %s", got, tc.name, line.text)
			}
		})
	}
	t.Run("other filters counted no error", func(t *testing.T) {
		for _, name := range []string{"in_after", "out_after"} {
			if f, ok := g.adminFilter(t, name); !ok || f.Errors != 0 || f.Calls == 0 {
				t.Errorf("/admin/filters %s: listed %v, calls %d, errors %d; want calls > 0 and no error", name, ok, f.Calls, f.Errors)
			}
		}
	})
}

// TestLuaSandboxEscapes: each way out of the sandbox fails with a Lua error (or, for
// endless growth, the time budget): the request is still answered, the error is
// counted, nothing escaped (no file written, the statement after the escape never
// ran), and the gateway stays alive with bounded memory.
func TestLuaSandboxEscapes(t *testing.T) {
	t.Parallel()
	plainGozer(t)
	d := newScriptDir(t)
	marker := filepath.Join(t.TempDir(), "escaped")
	q := fmt.Sprintf("%q", marker)
	tests := []struct {
		name    string
		code    string
		timeout bool // only the budget can stop it (500), there is no Lua error to raise
	}{
		{"os_execute", `os.execute("touch " .. ` + q + `)`, false},
		{"os_exit", `os.exit(3)`, false},
		{"io_open", `local f = io.open(` + q + `, "w"); f:write("x"); f:close()`, false},
		{"io_popen", `io.popen("touch " .. ` + q + `)`, false},
		{"require", `local m = require("os"); m.execute("touch " .. ` + q + `)`, false},
		{"load", `load("return 1")()`, false},
		{"loadstring", `loadstring("return 1")()`, false},
		{"dofile", `dofile("/etc/passwd")`, false},
		{"loadfile", `loadfile("/etc/passwd")()`, false},
		{"debug_traceback", `debug.traceback()`, false},
		{"debug_getregistry", `debug.getregistry()`, false},
		{"package_loaded", `package.loaded.os.execute("touch " .. ` + q + `)`, false},
		{"getfenv", `getfenv(1).x = 1`, false},
		{"setfenv", `setfenv(1, {})`, false},
		{"collectgarbage", `collectgarbage("collect")`, false},
		{"coroutine", `coroutine.wrap(function() end)()`, false},
		{"string_dump", `string.dump(function() end)`, false},
		{"string_metatable", `getmetatable("").__index.upper = nil`, false},
		{"string_rep_bomb", `local s = string.rep("x", 1e9)`, false},
		{"string_rep_method_bomb", `local s = ("x"):rep(1e9)`, false},
		{"string_rep_long_unit_bomb", `local s = string.rep(("y"):rep(1000), 1e6)`, false},
		{"gsub_bomb", `local s = string.gsub(("x"):rep(1e6), "x", ("y"):rep(1000))`, false},
		{"table_concat_bomb", `local s, t = ("x"):rep(1e6), {}; for i = 1, 2000 do t[i] = s end; local r = table.concat(t)`, false},
		{"format_bomb", `local s = string.format("%0999999d", 1)`, false},
		{"unpack_bomb", `local a = { unpack({}, 1, 1e8) }`, false},
		{"deep_recursion", `function f() return f() + 1 end; f()`, false},
		{"concat_doubling", `local s = "x"; for i = 1, 40 do s = s .. s end`, false},
		{"table_growth", `local t = {}; while true do t[#t + 1] = #t end`, true},
	}
	for i, tc := range tests {
		// The statement after the escape shows whether it got through: the origin
		// would see X-Escaped.
		d.write(t, "inbound", tc.name+".lua", luaFilter(tc.name, "inbound", 10+i,
			fmt.Sprintf("ctx.req.arg(%q) == %q", "sbx", tc.name),
			tc.code+"\n    ctx.req.set_header(\"X-Escaped\", \""+tc.name+"\")"))
	}
	o := startOrigin(t, "o")
	// Gozer's default budget: the bombs must be cut short as shipped.
	g := luaGozer(t, d, filtersConfig{Budget: "5ms"}, servers(o), route{PathPrefix: "/", Origin: "o"})

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, 20*time.Second)
			resp, body := fetch(t, c, "GET", g.URL("/headers?sbx="+tc.name), nil, nil)
			// A Lua error skips the filter (200). The 5ms budget may also stop a row
			// that does real work (or runs on a loaded machine) before its error: a
			// 500 FAILURE_LOCAL_FILTER_TIMEOUT is a clean failure too.
			switch {
			case resp.StatusCode == 200 && !tc.timeout:
				if v := decodeView(t, body); v.Headers.Get("X-Escaped") != "" {
					t.Errorf("the escape did not raise: the origin got X-Escaped %q", v.Headers.Get("X-Escaped"))
				}
			case resp.StatusCode == 500:
				wantGozerStatus(t, resp, "FAILURE_LOCAL_FILTER_TIMEOUT")
				if !tc.timeout {
					t.Logf("stopped by the budget before its Lua error")
				}
			default:
				t.Errorf("status %d (X-Gozer-Status %q), want %s; body %q", resp.StatusCode, resp.Header.Get("X-Gozer-Status"),
					map[bool]string{false: "200 (the error skipped)", true: "500 FAILURE_LOCAL_FILTER_TIMEOUT"}[tc.timeout],
					tail(string(body), 200))
			}
			g.waitFilterErrors(t, tc.name, 1)
		})
	}
	t.Run("nothing escaped", func(t *testing.T) {
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("a script created %s", marker)
		}
		resp, body := fetch(t, newClient(t, 10*time.Second), "GET", g.URL("/headers"), nil, nil)
		if resp.StatusCode != 200 || g.exited() {
			t.Fatalf("gateway after the escapes: status %d, exited %v; body %q", resp.StatusCode, g.exited(), tail(string(body), 200))
		}
		// Loose bound: the bombs above would take gigabytes if nothing stopped them.
		rss, err := g.rss()
		if err != nil {
			t.Fatalf("read gozer RSS: %v", err)
		}
		t.Logf("gozer RSS after the escapes: %d MiB", rss>>20)
		if rss > 1<<30 {
			t.Errorf("gozer RSS %d MiB after the escapes, want under 1 GiB", rss>>20)
		}
	})
}

// TestLuaSandboxIsolation: a script's globals and its changes to the string library
// stay its own: another filter of the same request is not affected.
func TestLuaSandboxIsolation(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "inbound", "10_patch.lua", luaFilter("patch", "inbound", 10, "", `
    string.upper = function() return "pwned" end
    leaked = "yes"
    _G.leaked_g = "yes"`))
	d.write(t, "inbound", "20_probe.lua", luaFilter("probe", "inbound", 20, "", `
    ctx.req.set_header("X-Probe", table.concat({ ("abc"):upper(), string.upper("abc"), tostring(leaked), tostring(leaked_g) }, ","))`))
	o := startOrigin(t, "o")
	g := luaGozer(t, d, filtersConfig{}, servers(o), route{PathPrefix: "/", Origin: "o"})
	resp, body := fetch(t, newClient(t, 10*time.Second), "GET", g.URL("/headers"), nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, body %q", resp.StatusCode, tail(string(body), 200))
	}
	if got := decodeView(t, body).Headers.Get("X-Probe"); got != "ABC,ABC,nil,nil" {
		t.Errorf("another filter sees %q, want ABC,ABC,nil,nil (string library intact, no leaked globals)", got)
	}
}
