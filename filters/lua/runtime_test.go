package lua

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yuin/gopher-lua/parse"

	"gozer/filters"
)

// TestLoopsServeWhileReloading: loops on their own goroutines serve requests
// while scripts change and Status is read; run with -race.
func TestLoopsServeWhileReloading(t *testing.T) {
	e := newEnv(t, map[string]string{"inbound/hdr.lua": headerFilter("v0")}, Options{})
	e.rt.Start()
	var stop atomic.Bool
	var served atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := e.rt.NewLoop() // on the loop's own goroutine
			defer l.Close()
			for !stop.Load() {
				ctx := newCtx(t, "", nil)
				l.Chain().Inbound(ctx)
				if v := string(ctx.Req.Header.Peek("X-V")); ctx.Failed || !strings.HasPrefix(v, "v") {
					errs <- fmt.Errorf("request failed=%v X-V=%q", ctx.Failed, v)
					return
				}
				served.Add(1)
			}
		}()
	}
	for i := 1; i <= 5; i++ {
		writeScript(t, e.dir, "inbound", "hdr.lua", headerFilter(fmt.Sprintf("v%d", i)))
		want := fmt.Sprintf("v%d", i)
		waitFor(t, want, reloadWait, func() bool {
			_ = e.rt.Status()
			return xv(t, e.loop) == want
		})
	}
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	st, _ := status(e.rt, "hdr")
	if served.Load() == 0 || st.Calls < served.Load() {
		t.Fatalf("served %d, calls in status %d (closed loops' stats must stay)", served.Load(), st.Calls)
	}
}

func TestStatusJSON(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/ok.lua":  headerFilter("1"),
		"inbound/bad.lua": "return {",
	}, Options{})
	xv(t, e.loop)
	b, err := json.Marshal(e.rt.Status())
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("status: %s", b)
	}
	byFile := map[string]map[string]any{}
	for _, m := range got {
		byFile[m["file"].(string)[len(e.dir)+1:]] = m
	}
	ok, bad := byFile["inbound/ok.lua"], byFile["inbound/bad.lua"]
	for _, k := range []string{"name", "type", "order", "file", "hash", "loaded_at", "calls_total", "errors_total", "timeouts_total", "time_us_total", "disabled"} {
		if _, present := ok[k]; !present {
			t.Fatalf("key %s missing: %s", k, b)
		}
	}
	if ok["name"] != "hdr" || ok["type"] != "inbound" || ok["calls_total"] != 1.0 || len(ok["hash"].(string)) != 16 {
		t.Fatalf("ok entry: %v", ok)
	}
	if _, has := bad["loaded_at"]; has || !strings.Contains(bad["last_error"].(string), "bad.lua") {
		t.Fatalf("bad entry: %v", bad)
	}
}

func TestOutboundTimeoutOthersStillRun(t *testing.T) {
	e := newEnv(t, map[string]string{
		"outbound/spin.lua": filterSrc("spin", "outbound", 1, "", `while true do end`),
		"outbound/hdr.lua":  filterSrc("hdr", "outbound", 2, "", `ctx.resp.set_header("X-After", "1")`),
	}, Options{Budget: 20 * time.Millisecond})
	ctx := newCtx(t, "", nil)
	ctx.Resp = newResp(t)
	e.loop.Chain().Outbound(ctx)
	if ctx.FailCause != filters.LocalFilterTimeout || string(ctx.Resp.Header.Peek("X-After")) != "1" {
		t.Fatalf("cause %v X-After %q", ctx.FailCause, ctx.Resp.Header.Peek("X-After"))
	}
}

func TestEndpointTimeout(t *testing.T) {
	e := newEnv(t, map[string]string{
		"endpoint/slow.lua": filterSrc("slow", "endpoint", 0, "", `ctx.respond(200, "x") while true do end`),
	}, Options{Budget: 20 * time.Millisecond})
	ctx := newCtx(t, "", nil)
	if !e.loop.Chain().Endpoint("slow", ctx) || !ctx.Failed || ctx.FailCause != filters.LocalFilterTimeout {
		t.Fatalf("failed %v cause %v", ctx.Failed, ctx.FailCause)
	}
}

func TestStartStop(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.rt.Stop() // never started: returns
	e.rt.Stop()
	e.rt.Start() // after Stop: does nothing, returns
	other := newEnv(t, nil, Options{})
	other.rt.Start()
	other.rt.Start()
	done := make(chan struct{})
	go func() { other.rt.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return")
	}
}

// TestInstanceFailureOnOneLoop: a script that starts in the loader but not on
// a loop (it behaves differently on each run) is left out of that loop's
// chain, counted and logged; the other filters run.
func TestInstanceFailureOnOneLoop(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/a.lua": filterSrc("a", "inbound", 1, "", `ctx.vars.a = 1`),
		"inbound/b.lua": filterSrc("b", "inbound", 2, "", `ctx.vars.b = 1`),
	}, Options{})
	e.rt.mu.Lock()
	f := e.rt.files[e.dir+"/inbound/b.lua"]
	s := *f.live
	s.name = "renamed" // the loop's run returns "b": a mismatch
	f.live = &s
	e.rt.publish()
	e.rt.mu.Unlock()

	ch := e.loop.Chain()
	ctx := newCtx(t, "", nil)
	ch.Inbound(ctx)
	if ch.Len() != 1 || vars(ctx, "a") != "1" || vars(ctx, "b") != "" {
		t.Fatalf("len %d a=%q b=%q", ch.Len(), vars(ctx, "a"), vars(ctx, "b"))
	}
	if st, _ := status(e.rt, "renamed"); st.Errors != 1 || e.log.find("message", "failed to start") == nil {
		t.Fatalf("status %+v; log:\n%s", st, e.log)
	}
}

// TestAPIExamplesCompile: every Lua example in API.md is valid Lua.
func TestAPIExamplesCompile(t *testing.T) {
	doc, err := os.ReadFile("API.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```lua\n")[1:]
	if len(blocks) < 30 {
		t.Fatalf("only %d examples", len(blocks))
	}
	for i, b := range blocks {
		src, _, _ := strings.Cut(b, "```")
		if _, err := parse.Parse(strings.NewReader(src), fmt.Sprintf("example %d", i+1)); err != nil {
			t.Errorf("example %d does not compile: %v\n%s", i+1, err, src)
		}
	}
}
