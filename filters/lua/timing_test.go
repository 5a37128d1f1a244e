package lua

import (
	"testing"

	"gozer/filters"
)

// TestSampledTiming: sync filter calls are timed one phase run in timeEvery,
// per phase (an inbound and an outbound filter of the same requests both get
// time), the first run included, and charged timeEvery times what was
// measured; calls are counted on every run; a request with a passport is
// timed on every run, charged once, and its steps carry real times.
func TestSampledTiming(t *testing.T) {
	busy := `local n = 0 for i = 1, 2000 do n = n + i end`
	e := newEnv(t, map[string]string{
		"inbound/in.lua":   filterSrc("in", "inbound", 1, "", busy),
		"outbound/out.lua": filterSrc("out", "outbound", 1, "", busy),
	}, Options{})
	ch := e.loop.Chain()
	run := func(pass *filters.Passport) {
		ctx := newCtx(t, "", nil)
		ctx.Passport = pass
		ch.Inbound(ctx)
		ctx.Resp, ctx.Cause = newResp(t), filters.Success
		ch.Outbound(ctx)
	}
	nanos := func(name string) int64 {
		c := e.loop.stats[name]
		return c.nanos.Load()
	}
	run(nil) // the first run of each phase is timed
	in1, out1 := nanos("in"), nanos("out")
	if in1 == 0 || out1 == 0 || in1%timeEvery != 0 || out1%timeEvery != 0 {
		t.Fatalf("after the first request: in %d ns, out %d ns (want > 0, charged %d times)", in1, out1, timeEvery)
	}
	for i := 2; i <= timeEvery; i++ {
		run(nil)
	}
	if nanos("in") != in1 || nanos("out") != out1 {
		t.Fatalf("runs 2..%d were timed: in %d → %d ns, out %d → %d ns", timeEvery, in1, nanos("in"), out1, nanos("out"))
	}
	run(nil) // run timeEvery+1: timed again
	if nanos("in") == in1 || nanos("out") == out1 {
		t.Fatalf("run %d was not timed", timeEvery+1)
	}
	if st, _ := status(e.rt, "out"); st.Calls != timeEvery+1 {
		t.Fatalf("calls %d, want %d", st.Calls, timeEvery+1)
	}

	// With a passport: timed on every run (charged once), steps with times.
	p := &filters.Passport{}
	before := nanos("in")
	run(p)
	d := nanos("in") - before
	if d <= 0 {
		t.Fatalf("a passport run was not timed (+%d ns)", d)
	}
	var starts, ends int
	for _, en := range p.Entries() {
		if en.At == 0 {
			t.Fatalf("a passport step without a time: %+v", p.Entries())
		}
		switch en.State {
		case filters.PassFilterStart:
			starts++
		case filters.PassFilterEnd:
			ends++
		}
	}
	if starts != 2 || ends != 2 {
		t.Fatalf("passport: %d starts, %d ends, want 2 each: %+v", starts, ends, p.Entries())
	}
}
