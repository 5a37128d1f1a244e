package lua

import (
	"errors"
	"fmt"
	"time"

	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
)

// Async filters. A script that declares async = true runs its apply in a
// coroutine of the loop's LState. ctx.http (and ctx.http_all) start side
// calls through the core (filters.Context.Calls) and yield; the loop serves
// others; when the last answer of the batch arrives (on the same loop, from
// a task the core runs at the end of a callback) the coroutine resumes with
// the answers as plain values, and once the filter returns, the chain goes
// on from the next filter. Sync filters run as before, on the LState itself,
// with no coroutine: async support costs them a flag test.
//
// The time budget counts Lua run time only: each run of the coroutine gets
// what the call has left, waiting for answers is free.

// DefaultMaxSuspended is the per-loop cap on requests waiting in async
// filters when Options leaves it 0 (Zuul's default).
const DefaultMaxSuspended = 4000

// suspension is one filter call of one request running in a coroutine: where
// the chain goes on from once the filter returns, and the side calls it waits
// for. Loop goroutine only; recycled by its Loop.
type suspension struct {
	l       *Loop
	chain   *Chain
	ctx     *filters.Context
	in      *instance
	phase   filters.Phase
	idx     int // in's index in chain.inbound (inbound phase)
	th      *glua.LState
	started bool
	used    time.Duration // Lua run time of this filter call so far
	counted bool          // counted in Loop.suspended (it yielded once)

	calls   []*callSlot // the batch of the current yield
	waiting int         // answers still to come
	all     bool        // ctx.http_all: the answers go back as two tables
	lost    bool        // a yield was swallowed (errSwallowed): the filter fails

	// An async Go filter's (gofilter.go): the request's own Caller while the
	// suspension stands in for it, the calls made, whether done is still
	// expected, whether ApplyAsync is running, and a generation that a late
	// done must match.
	orig      filters.Caller
	goCalls   []*goCall
	goWaiting bool
	inApply   bool
	gen       uint64
}

// callSlot is one side call of a batch. Its done is bound once.
type callSlot struct {
	s    *suspension
	sc   filters.SideCall
	p    filters.Pending // nil once answered
	res  glua.LValue     // the answer table, or nil
	err  glua.LValue     // the reason, or nil
	done func(*filters.SideResult)
}

// threadOptions: a coroutine starts small (a request's filter needs little
// stack) and grows to the same bounds as the loop's LState. Every request
// waiting in an async filter holds one: 128 slots are 2 KiB of interface
// words the GC scans, half of what 256 were (bench/README.md, "asyncwait":
// the heap per waiting request). It
// grows in steps of threadRegistryGrow slots: a script that needs a little
// more than the start must not jump to the loop's 4,096-slot step (64 KiB per
// waiting request), and 1,024-slot steps still reach registryMax in 64
// copies, not the quadratic thousands of gopher-lua's default.
var threadOptions = glua.Options{
	SkipOpenLibs: true, CallStackSize: callStackSize, MinimizeStackMemory: true,
	RegistrySize: 128, RegistryMaxSize: registryMax, RegistryGrowStep: threadRegistryGrow,
}

const threadRegistryGrow = 1024

// newSuspension takes a recycled suspension or makes one, with a coroutine.
func (l *Loop) newSuspension() *suspension {
	var s *suspension
	if n := len(l.susp); n > 0 {
		s = l.susp[n-1]
		l.susp = l.susp[:n-1]
	} else {
		s = &suspension{l: l}
	}
	if s.th == nil {
		opts := l.L.Options
		l.L.Options = threadOptions
		s.th, _ = l.L.NewThread()
		l.L.Options = opts
	}
	return s
}

// release ends s: uncounted, its request no longer suspended, and recycled;
// its coroutine is kept only when it can run again (reuse: it returned; not
// when it raised or was abandoned mid-yield).
func (l *Loop) release(s *suspension, reuse bool) {
	if s.counted {
		l.countSuspended(-1)
	}
	if ctx := s.ctx; ctx != nil && ctx.Pending == s {
		ctx.Suspended, ctx.Pending = false, nil
	}
	for _, c := range s.calls {
		c.res, c.err, c.p = nil, nil, nil
	}
	s.chain, s.ctx, s.in = nil, nil, nil
	s.started, s.used, s.counted, s.calls, s.waiting, s.all, s.lost = false, 0, false, s.calls[:0], 0, false, false
	if reuse && s.th != nil {
		// gopher-lua marks a coroutine whose function returned dead, though
		// nothing of it remains (its call stack is empty): it starts afresh
		// at the next Resume. Reviving it saves a new LState per async call.
		s.th.Dead = false
	} else {
		s.th = nil
	}
	if len(l.susp) < keepSuspensions {
		l.susp = append(l.susp, s)
	}
}

// keepSuspensions bounds the idle coroutines a loop keeps.
const keepSuspensions = 64

// callAsync runs an async filter: should_filter as a sync call, then apply in
// a coroutine. suspended: it waits on side calls (ctx.Suspended is set);
// the chain goes on in resume.
func (l *Loop) callAsync(c *Chain, in *instance, ctx *filters.Context, ph filters.Phase, idx int, t0 time.Duration) (t1 time.Duration, suspended bool) {
	passMark(ctx, filters.PassFilterStart, in, t0)
	t1, suspended = l.callAsyncRun(c, in, ctx, ph, idx, t0)
	markStep(ctx, in, t1, suspended)
	return t1, suspended
}

// markStep records how a run of an async filter ended: suspended, or done.
func markStep(ctx *filters.Context, in *instance, t time.Duration, suspended bool) {
	if suspended {
		passMark(ctx, filters.PassFilterSuspend, in, t)
	} else {
		passMark(ctx, filters.PassFilterEnd, in, t)
	}
}

// callAsyncRun is callAsync without the passport.
func (l *Loop) callAsyncRun(c *Chain, in *instance, ctx *filters.Context, ph filters.Phase, idx int, t0 time.Duration) (t1 time.Duration, suspended bool) {
	if in.gf != nil {
		return l.callGoAsync(c, in, ctx, ph, idx, t0)
	}
	if in.should != nil {
		l.enter(ctx, in, ph)
		L := l.L
		l.sb.wd.arm(l.rt.callBudget())
		L.Push(in.should)
		L.Push(l.api.ctx)
		err := L.PCall(1, 1, nil)
		run := err == nil && glua.LVAsBool(L.Get(-1))
		L.SetTop(0)
		spent := l.sb.wd.disarm()
		t1 = now()
		if err != nil || spent {
			in.stats.calls.Add(1)
			in.stats.nanos.Add(int64(t1 - t0))
			l.failed(in, ctx, err, spent)
			return t1, false
		}
		if !run {
			in.stats.calls.Add(1)
			in.stats.nanos.Add(int64(t1 - t0))
			return t1, false
		}
		t0 = t1
	}
	s := l.newSuspension()
	s.chain, s.ctx, s.in, s.phase, s.idx = c, ctx, in, ph, idx
	return l.step(s, t0)
}

// step runs s's coroutine until it yields (waiting on calls: suspended) or
// returns (the filter is done: s is released).
func (l *Loop) step(s *suspension, t0 time.Duration, args ...glua.LValue) (time.Duration, bool) {
	l.enter(s.ctx, s.in, s.phase)
	l.co = s
	budget := l.rt.callBudget()
	left := budget - s.used
	if left < budget/ticksPerBudget {
		left = budget / ticksPerBudget // a call is stopped within a tick of its budget
	}
	wd := l.sb.wd
	wd.arm(left)
	s.th.SetContext(wd.cur)
	var st glua.ResumeState
	var err error
	if !s.started {
		s.started = true
		st, err, _ = l.L.Resume(s.th, s.in.apply, l.api.ctx)
	} else {
		st, err, _ = l.L.Resume(s.th, nil, args...)
	}
	spent := wd.disarm()
	t1 := now()
	s.used += t1 - t0
	l.co = nil
	in, ctx := s.in, s.ctx
	in.stats.nanos.Add(int64(t1 - t0))
	if err == nil && !spent && st == glua.ResumeYield {
		if s.waiting > 0 && !s.lost {
			return t1, true
		}
		err = fmt.Errorf("an async filter may only yield in ctx.http or ctx.http_all")
	}
	in.stats.calls.Add(1)
	if err == nil && (s.waiting > 0 || s.lost) {
		// A protected call (pcall, a metamethod, an iterator) swallowed the
		// yield of ctx.http: the filter went on with no answer. Its logic ran
		// on nothing, so the request fails, whatever fatal says.
		err = errSwallowed
		ctx.Fail(filters.LocalFilterError, fmt.Sprintf("lua filter %q: %v", in.s.name, err))
	}
	if err != nil || spent {
		l.failed(in, ctx, err, spent)
		l.cancelCalls(s)
		l.release(s, false)
		return t1, false
	}
	l.release(s, true)
	return t1, false
}

// errSwallowed: ctx.http called where Lua cannot yield.
var errSwallowed = errors.New("ctx.http and ctx.http_all cannot be called inside pcall, xpcall, a metamethod or an iterator: the filter went on without the answer")

// resume continues s with its batch's answers, then the chain after it.
func (l *Loop) resume(s *suspension) {
	var args []glua.LValue
	if s.all {
		res, errs := l.L.CreateTable(len(s.calls), 0), l.L.CreateTable(len(s.calls), 0)
		for i, c := range s.calls {
			res.RawSetInt(i+1, c.res)
			errs.RawSetInt(i+1, c.err)
		}
		args = []glua.LValue{res, errs}
	} else {
		args = []glua.LValue{s.calls[0].res, s.calls[0].err}
	}
	chain, ctx, ph, idx := s.chain, s.ctx, s.phase, s.idx
	s.waiting = 0
	for _, c := range s.calls {
		c.res, c.err = nil, nil
	}
	s.calls = s.calls[:0]
	in := s.in
	t0 := now()
	passMark(ctx, filters.PassFilterResume, in, t0)
	t, suspended := l.step(s, t0, args...)
	markStep(ctx, in, t, suspended)
	if suspended {
		return
	}
	l.goOn(chain, ctx, ph, idx, t)
}

// goOn continues a request whose async filter (at idx of phase ph) has
// finished: the phase's next filters, then the core (ctx.Resume) unless one
// of them suspends the request again.
func (l *Loop) goOn(chain *Chain, ctx *filters.Context, ph filters.Phase, idx int, t time.Duration) {
	if ph == filters.Inbound && chain.runInbound(ctx, idx+1, timedFrom(t)) {
		return // a later async filter waits now
	}
	l.ctx, l.in = nil, nil
	ctx.Resume()
}

// cancelCalls abandons the calls of s still in flight.
func (l *Loop) cancelCalls(s *suspension) {
	for _, c := range s.calls {
		if c.p != nil {
			p := c.p
			c.p = nil
			p.Cancel()
		}
	}
	s.waiting = 0
}

// Abandon implements filters.Chain: the request ended while an async filter
// of it waited; its calls are cancelled and its coroutine dropped.
func (c *Chain) Abandon(ctx *filters.Context) {
	s, ok := ctx.Pending.(*suspension)
	if !ok {
		ctx.Suspended, ctx.Pending = false, nil
		return
	}
	l := s.l
	s.in.stats.calls.Add(1)
	if s.in.gf != nil {
		l.releaseGo(s)
		return
	}
	l.cancelCalls(s)
	l.release(s, false)
}

// complete is a side call's done: its answer becomes Lua values; the last
// answer of the batch resumes the coroutine.
func (c *callSlot) complete(r *filters.SideResult) {
	s := c.s
	l := s.l
	c.p = nil
	if r.Err != "" {
		c.res, c.err = glua.LNil, glua.LString(r.Err)
	} else {
		c.res, c.err = l.answerObject(r), glua.LNil
	}
	if s.waiting--; s.waiting == 0 {
		l.resume(s)
	}
}

// countSuspended moves the count of requests waiting in async filters: this
// loop's (the cap, filters.max_suspended) and the node's (GET /admin/async).
func (l *Loop) countSuspended(d int) {
	l.suspended += d
	l.rt.suspendedNow.Add(int64(d))
}
