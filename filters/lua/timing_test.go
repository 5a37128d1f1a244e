package lua

import (
	"testing"

	"gozer/filters"
)

// TestSampledTiming: sync filter calls are timed about one phase run in
// timeEvery, chosen at random (an inbound and an outbound filter of the same
// requests both get time, and so do both kinds of alternating traffic), and
// charged timeEvery times what was measured; calls are counted on every run; a request with a passport is
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
	// About one run in timeEvery is timed, at random, and charged timeEvery
	// times: count the runs that moved each filter's total.
	const runs = 100 * timeEvery
	var timedIn, timedOut int
	for i := 0; i < runs; i++ {
		in0, out0 := nanos("in"), nanos("out")
		run(nil)
		if d := nanos("in") - in0; d != 0 {
			timedIn++
			if d%timeEvery != 0 {
				t.Fatalf("a timed run charged %d ns: not %d times what it measured", d, timeEvery)
			}
		}
		if nanos("out") != out0 {
			timedOut++
		}
	}
	// Binomial(800, 1/8): mean 100, standard deviation 9.4; the bounds are
	// over 5 deviations away, and a counter that timed every run or none fails.
	for name, n := range map[string]int{"in": timedIn, "out": timedOut} {
		if n < 50 || n > 160 {
			t.Errorf("%s: %d of %d runs timed, want about %d", name, n, runs, runs/timeEvery)
		}
	}
	if st, _ := status(e.rt, "out"); st.Calls != runs {
		t.Fatalf("calls %d, want %d: the count stays exact", st.Calls, runs)
	}

	// Traffic alternating two kinds of request must not be sampled on one kind
	// only (a counter modulo timeEvery did that).
	var timedEven, timedOdd int
	for i := 0; i < runs; i++ {
		in0 := nanos("in")
		run(nil)
		if nanos("in") != in0 {
			if i%2 == 0 {
				timedEven++
			} else {
				timedOdd++
			}
		}
	}
	if timedEven < 20 || timedOdd < 20 {
		t.Errorf("alternate runs timed %d and %d times of %d each: the sample follows the traffic's period", timedEven, timedOdd, runs/2)
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
