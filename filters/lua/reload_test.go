package lua

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const reloadWait = 5 * time.Second

// headerFilter sets X-V to v on every request.
func headerFilter(v string) string {
	return filterSrc("hdr", "inbound", 0, "", `ctx.req.set_header("X-V", "`+v+`")`)
}

// xv runs one request through the loop's current chain and returns its X-V.
func xv(t testing.TB, l *Loop) string {
	ctx := newCtx(t, "", nil)
	l.Chain().Inbound(ctx)
	return string(ctx.Req.Header.Peek("X-V"))
}

func TestHotReload(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.rt.Start()
	if n := e.loop.Chain().Len(); n != 0 {
		t.Fatalf("%d filters at start", n)
	}

	path := writeScript(t, e.dir, "inbound", "hdr.lua", headerFilter("1"))
	waitFor(t, "the new script", reloadWait, func() bool { return xv(t, e.loop) == "1" })

	// A change of the same size right after: found by content hash.
	writeScript(t, e.dir, "inbound", "hdr.lua", headerFilter("2"))
	waitFor(t, "the changed script", reloadWait, func() bool { return xv(t, e.loop) == "2" })

	// A broken change: refused with file:line, the previous version stays.
	writeScript(t, e.dir, "inbound", "hdr.lua", "return {\n  name = 'hdr',\n  apply = function(ctx) if end,\n}\n")
	waitFor(t, "the refusal", reloadWait, func() bool {
		st, _ := status(e.rt, "hdr.lua")
		return st.LastError != ""
	})
	st, _ := status(e.rt, "hdr.lua")
	if !strings.Contains(st.LastError, path+":3:") || st.Name != "hdr" || st.Hash == "" {
		t.Fatalf("status after a broken change: %+v", st)
	}
	if got := xv(t, e.loop); got != "2" {
		t.Fatalf("after a broken change X-V = %q, want the previous version's 2", got)
	}
	if e.log.find("reason", path+":3:") == nil {
		t.Fatalf("refusal not logged with file:line; log:\n%s", e.log)
	}

	// Fixed again: the error clears.
	writeScript(t, e.dir, "inbound", "hdr.lua", headerFilter("3"))
	waitFor(t, "the fixed script", reloadWait, func() bool { return xv(t, e.loop) == "3" })
	if st, _ := status(e.rt, "hdr.lua"); st.LastError != "" {
		t.Fatalf("last_error kept after a good version: %q", st.LastError)
	}

	// Deleted: the filter goes.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removal", reloadWait, func() bool { return e.loop.Chain().Len() == 0 })
	if _, ok := status(e.rt, "hdr.lua"); ok {
		t.Fatal("deleted file still in Status")
	}
}

func TestInFlightChainKeepsItsVersion(t *testing.T) {
	e := newEnv(t, map[string]string{"inbound/hdr.lua": headerFilter("old")}, Options{})
	e.rt.Start()
	inFlight := e.loop.Chain()
	writeScript(t, e.dir, "inbound", "hdr.lua", headerFilter("new"))
	waitFor(t, "the new version", reloadWait, func() bool { return e.loop.Chain() != inFlight })

	ctx := newCtx(t, "", nil)
	inFlight.Inbound(ctx)
	if got := string(ctx.Req.Header.Peek("X-V")); got != "old" {
		t.Fatalf("in-flight chain ran %q, want old", got)
	}
	if got := xv(t, e.loop); got != "new" {
		t.Fatalf("new request ran %q, want new", got)
	}
}

func TestEveryLoopSeesReload(t *testing.T) {
	e := newEnv(t, map[string]string{"inbound/hdr.lua": headerFilter("1")}, Options{})
	other := e.rt.NewLoop()
	e.rt.Start()
	if xv(t, e.loop) != "1" || xv(t, other) != "1" {
		t.Fatal("initial version not on both loops")
	}
	writeScript(t, e.dir, "inbound", "hdr.lua", headerFilter("2"))
	waitFor(t, "loop 1", reloadWait, func() bool { return xv(t, e.loop) == "2" })
	if got := xv(t, other); got != "2" {
		t.Fatalf("second loop runs %q after the reload", got)
	}
	st, _ := status(e.rt, "hdr")
	if st.Calls < 4 {
		t.Fatalf("calls %d not summed across loops", st.Calls)
	}
}

func TestLoadRefusals(t *testing.T) {
	cases := []struct {
		name   string
		phase  string
		src    string
		reason string
	}{
		{"syntax error", "inbound", "return {\n  name = 'x' 'y'\n}", ".lua:2:"},
		{"raises while loading", "inbound", "local a = 1\nerror('no config')\n", ".lua:2: no config"},
		{"returns no table", "inbound", "return 42", "must return a filter table"},
		{"no apply", "inbound", `return { name = "x", type = "inbound" }`, "apply must be a function"},
		{"bad name", "inbound", `return { name = "a b", type = "inbound", apply = function() end }`, "name must be"},
		{"bad type", "inbound", `return { name = "x", type = "sideways", apply = function() end }`, `type must be "inbound"`},
		{"type does not match directory", "outbound", `return { name = "x", type = "inbound", apply = function() end }`, `does not match its directory "outbound"`},
		{"fractional order", "inbound", `return { name = "x", type = "inbound", order = 1.5, apply = function() end }`, "order must be an integer"},
		{"bad fatal", "inbound", `return { name = "x", type = "inbound", fatal = "yes", apply = function() end }`, "fatal must be true or false"},
		{"runaway top level", "inbound", "while true do end", "loading is limited to"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, map[string]string{c.phase + "/x.lua": c.src}, Options{Budget: time.Millisecond})
			if n := e.loop.Chain().Len(); n != 0 {
				t.Fatalf("refused script in the chain (%d filters)", n)
			}
			st, ok := status(e.rt, "x.lua")
			if !ok || !strings.Contains(st.LastError, c.reason) || !strings.Contains(st.LastError, filepath.Join(e.dir, c.phase, "x.lua")) {
				t.Fatalf("last_error %q, want it to name the file and contain %q", st.LastError, c.reason)
			}
			if e.log.find("reason", c.reason) == nil {
				t.Fatalf("refusal not logged; log:\n%s", e.log)
			}
		})
	}
}

func TestDuplicateNames(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/a.lua": filterSrc("same", "inbound", 0, "", `ctx.vars.v = "a"`),
		"inbound/b.lua": filterSrc("same", "inbound", 0, "", `ctx.vars.v = "b"`),
	}, Options{})
	ctx := newCtx(t, "", nil)
	e.loop.Chain().Inbound(ctx)
	if vars(ctx, "v") != "a" || e.loop.Chain().Len() != 1 {
		t.Fatalf("v = %q, len %d", vars(ctx, "v"), e.loop.Chain().Len())
	}
	st, _ := status(e.rt, "b.lua")
	if !strings.Contains(st.LastError, "duplicate filter name") || !strings.Contains(st.LastError, "a.lua") || !strings.Contains(st.LastError, "b.lua") {
		t.Fatalf("last_error %q should name both files", st.LastError)
	}

	// When the first file goes, the waiting one takes over.
	e.rt.Start()
	if err := os.Remove(filepath.Join(e.dir, "inbound", "a.lua")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to take over", reloadWait, func() bool {
		ctx := newCtx(t, "", nil)
		e.loop.Chain().Inbound(ctx)
		return vars(ctx, "v") == "b"
	})
}

func TestScriptStatePerLoopSurvivesOtherReloads(t *testing.T) {
	counter := filterSrc("count", "inbound", 0, "", `n = (n or 0) + 1; ctx.vars.n = n`)
	e := newEnv(t, map[string]string{"inbound/count.lua": counter, "inbound/hdr.lua": headerFilter("1")}, Options{})
	e.rt.Start()
	run := func() int {
		ctx := newCtx(t, "", nil)
		e.loop.Chain().Inbound(ctx)
		n, _ := strconv.Atoi(vars(ctx, "n"))
		return n
	}
	before := run()
	writeScript(t, e.dir, "inbound", "hdr.lua", headerFilter("2"))
	waitFor(t, "reload", reloadWait, func() bool { return xv(t, e.loop) == "2" })
	// The unchanged script kept its instance, and so its global n.
	if after := run(); after <= before+1 {
		t.Fatalf("counter went from %d to %d across another file's reload", before, after)
	}
}

func TestDirErrors(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New with no Dir succeeded")
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Dir: file}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("New on a file: %v", err)
	}
	// Missing: no filters, logged, picked up when it appears.
	buf := &logBuf{}
	dir := filepath.Join(t.TempDir(), "later")
	rt, err := New(Options{Dir: dir, Log: zerolog.New(buf)})
	if err != nil {
		t.Fatalf("New on a missing dir: %v", err)
	}
	defer rt.Stop()
	l := rt.NewLoop()
	if l.Chain().Len() != 0 || buf.find("message", "missing") == nil {
		t.Fatalf("missing dir: len %d; log:\n%s", l.Chain().Len(), buf)
	}
	rt.Start()
	writeScript(t, dir, "inbound", "hdr.lua", headerFilter("1"))
	waitFor(t, "the directory to appear", reloadWait, func() bool { return xv(t, l) == "1" })
}

func TestIgnoredFiles(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/notes.txt":    "not lua",
		"inbound/.#hdr.lua":    "lock file",
		"hdr.lua":              headerFilter("root"), // not in a phase directory
		"inbound/ok.lua":       headerFilter("1"),
		"inbound/sub/deep.lua": headerFilter("deep"),
	}, Options{})
	if n := e.loop.Chain().Len(); n != 1 || len(e.rt.Status()) != 1 {
		t.Fatalf("%d filters, %d files, want 1; status %+v", n, len(e.rt.Status()), e.rt.Status())
	}
}
