package lua

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"gozer/filters"
)

// Go filters (filters.Filter) in the chains: each loop makes an instance of
// every Go filter once (for its counters) and sorts them into each chain it
// builds with the scripts, by (order, name). A Go filter that panics is
// handled like a Lua filter that raised: logged, counted, the request goes on
// (a panic in a filter must not take the loop down).

// goInstances are this loop's instances of the Go filters, made once.
func (l *Loop) goInstances() []*instance {
	if l.goInst == nil && len(l.rt.opts.GoFilters) > 0 {
		for _, f := range l.rt.opts.GoFilters {
			_, async := f.(filters.AsyncFilter)
			s := &script{file: "(go)", phase: f.Phase(), name: f.Name(), order: f.Order(), disabled: l.rt.disabled[f.Name()]}
			l.goInst = append(l.goInst, &instance{s: s, gf: f, async: async, stats: l.counter(f.Name())})
		}
	}
	return l.goInst
}

// addGoFilters sorts the Go filters into c.
func (l *Loop) addGoFilters(c *Chain) {
	for _, in := range l.goInstances() {
		if in.s.disabled {
			continue
		}
		c.n++
		switch in.s.phase {
		case filters.Inbound:
			c.inbound = append(c.inbound, in)
		case filters.Endpoint:
			if _, taken := c.endpoints[in.s.name]; !taken {
				c.endpoints[in.s.name] = in
			}
		case filters.Outbound:
			c.outbound = append(c.outbound, in)
			if lz, ok := in.gf.(filters.LazyHeadFilter); !ok || !lz.LazyResponseHead() {
				c.goOut = true
			}
		}
	}
	byOrder := func(a, b *instance) int {
		return cmp.Or(cmp.Compare(a.s.order, b.s.order), cmp.Compare(a.s.name, b.s.name))
	}
	slices.SortStableFunc(c.inbound, byOrder)
	slices.SortStableFunc(c.outbound, byOrder)
}

// callGo runs a sync Go filter.
func (l *Loop) callGo(in *instance, ctx *filters.Context, ph filters.Phase, s span) span {
	l.ctx, l.in, l.phase = ctx, in, ph
	err := l.guard(func() {
		if in.gf.ShouldFilter(ctx) {
			in.gf.(filters.SyncFilter).Apply(ctx)
		}
	})
	s = s.end(in)
	in.stats.calls.Add(1)
	if err != nil {
		l.failed(in, ctx, err, false)
	}
	return s
}

// guard runs fn and turns a panic into an error.
func (l *Loop) guard(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("go filter panicked: %v", r)
		}
	}()
	fn()
	return nil
}

// callGoAsync runs an async Go filter: suspended when it has not called done
// by the time ApplyAsync returned.
func (l *Loop) callGoAsync(c *Chain, in *instance, ctx *filters.Context, ph filters.Phase, idx int, t0 time.Duration) (time.Duration, bool) {
	l.ctx, l.in, l.phase = ctx, in, ph
	var run bool
	if err := l.guard(func() { run = in.gf.ShouldFilter(ctx) }); err != nil || !run {
		t1 := now()
		in.stats.calls.Add(1)
		in.stats.nanos.Add(int64(t1 - t0))
		if err != nil {
			l.failed(in, ctx, err, false)
		}
		return t1, false
	}
	if int64(l.suspended) >= l.rt.maxSuspended.Load() {
		in.stats.calls.Add(1)
		ctx.Fail(filters.LocalTooManySuspended,
			fmt.Sprintf("%d requests wait on async filters on this loop (filters.max_suspended)", l.suspended))
		return now(), false
	}
	s := l.newGoSuspension()
	s.chain, s.ctx, s.in, s.phase, s.idx = c, ctx, in, ph, idx
	s.counted = true
	l.countSuspended(1)
	s.orig, ctx.Calls = ctx.Calls, s // the calls it makes are the chain's to cancel
	ctx.Suspended, ctx.Pending = true, s
	s.goWaiting, s.inApply = true, true
	gen := s.gen
	err := l.guard(func() { in.gf.(filters.AsyncFilter).ApplyAsync(ctx, func() { l.goDone(s, gen) }) })
	s.inApply = false
	t1 := now()
	in.stats.nanos.Add(int64(t1 - t0))
	if err != nil || !s.goWaiting {
		in.stats.calls.Add(1)
		if err != nil {
			l.failed(in, ctx, err, false)
		}
		l.releaseGo(s)
		return t1, false
	}
	return t1, true
}

// goDone is an async Go filter's done: the chain goes on after it.
func (l *Loop) goDone(s *suspension, gen uint64) {
	if s.gen != gen || !s.goWaiting {
		return // late: the request ended (Abandon), or done was called twice
	}
	s.goWaiting = false
	if s.inApply {
		return // called from ApplyAsync itself: callGoAsync goes on
	}
	s.in.stats.calls.Add(1)
	chain, ctx, ph, idx, in := s.chain, s.ctx, s.phase, s.idx, s.in
	l.releaseGo(s)
	t := now()
	passMark(ctx, filters.PassFilterEnd, in, t)
	l.goOn(chain, ctx, ph, idx, t)
}

// releaseGo ends an async Go filter's suspension: its calls still in flight
// are cancelled (after an Abandon), the request's Caller is given back.
func (l *Loop) releaseGo(s *suspension) {
	for _, p := range s.goCalls {
		if p.p != nil {
			p.p.Cancel()
		}
	}
	clear(s.goCalls)
	s.goCalls = s.goCalls[:0]
	if s.ctx != nil && s.orig != nil {
		s.ctx.Calls = s.orig
	}
	s.orig, s.goWaiting = nil, false
	s.gen++
	l.release(s, true)
}

// newGoSuspension is a suspension for a Go filter (no coroutine needed).
func (l *Loop) newGoSuspension() *suspension {
	if n := len(l.susp); n > 0 {
		s := l.susp[n-1]
		l.susp = l.susp[:n-1]
		return s
	}
	return &suspension{l: l}
}

// goCall is a side call an async Go filter made, tracked so that an
// abandoned request's calls are cancelled.
type goCall struct {
	p filters.Pending
}

// Call implements filters.Caller for an async Go filter: the call goes to the
// request's own Caller; the chain keeps its handle until the answer.
func (s *suspension) Call(c *filters.SideCall, done func(*filters.SideResult)) filters.Pending {
	gc := &goCall{}
	s.goCalls = append(s.goCalls, gc)
	gc.p = s.orig.Call(c, func(r *filters.SideResult) {
		gc.p = nil
		done(r)
	})
	return gc
}

// Cancel implements filters.Pending.
func (g *goCall) Cancel() {
	if p := g.p; p != nil {
		g.p = nil
		p.Cancel()
	}
}
