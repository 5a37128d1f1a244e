package lua

import (
	"time"

	"gozer/filters"
)

// Sampled timing of sync filter calls. A filter's time_us_total (Runtime.Status)
// needs a clock read at the start of a phase's run and one at the end of each
// call: five per request through the bench's three scripts, at 40 to 80 ns
// each on this VM's kvm-clock (time.Since: 72-80 ns a read while the machine
// was busy, a one-off benchmark of 2026-12-05), a sixth of what the three Lua
// steps cost (BenchmarkCoreBenchScripts). So a Loop times one phase run in
// timeEvery, the first one included, and charges what it measured timeEvery
// times: time_us_total is an estimate (exact in the mean over many calls), the
// calls, errors and timeouts counters stay exact, and nothing else reads the
// time (the budget has its own ticker, budget.go).
//
// Runs are always timed, and charged once, when the request's passport is on
// (its steps carry the times), and from an async filter on (its budget counts
// the time it runs; the filters after it in the phase are then timed too).
const timeEvery = 8

// span is how a phase run accounts for its sync filter calls: at is the time
// the next call starts, 0 when the run is not timed; a measured nanosecond
// counts scale times.
type span struct {
	at    time.Duration
	scale int64
}

// timedFrom is a timed span from t on (t from an async step's clock read).
func timedFrom(t time.Duration) span { return span{at: t, scale: 1} }

// startRun starts a run of phase ph on ctx: timed for one run in timeEvery,
// chosen at random (a counter would follow any traffic that repeats with a
// period dividing timeEvery: a client alternating a health check the filters
// skip and an API call would have only the health checks timed), or always
// when the passport is on. Loop goroutine only.
func (l *Loop) startRun(ctx *filters.Context, ph filters.Phase) span {
	if ctx.Passport != nil {
		return timedFrom(now())
	}
	// xorshift32: a few instructions, no lock (math/rand/v2's global source
	// is shared by the loops); its top bits are the sample.
	x := l.rng
	if x == 0 {
		x = 0x9e3779b9 + uint32(ph)
	}
	x ^= x << 13
	x ^= x >> 17
	x ^= x << 5
	l.rng = x
	if (x>>16)%timeEvery != 0 { // the high half: xorshift's low bits are weaker
		return span{}
	}
	return span{at: now(), scale: timeEvery}
}

// end closes a call of in that began at s.at: it charges in with the time
// measured, and returns the span of the next call (untimed stays untimed).
func (s span) end(in *instance) span {
	if s.at == 0 {
		return s
	}
	t := now()
	in.stats.nanos.Add(int64(t-s.at) * s.scale)
	return span{at: t, scale: s.scale}
}

// clock is the time the span stands at, read now when it is not timed (an
// async filter's run needs one).
func (s span) clock() time.Duration {
	if s.at == 0 {
		return now()
	}
	return s.at
}
