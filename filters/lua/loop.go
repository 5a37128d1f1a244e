package lua

import (
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
)

// Loop is the Lua side of one event loop: its own sandboxed LState, the
// instances of the scripts on that state, and the reusable ctx userdata.
//
// Concurrency: a Loop is owned by one event-loop goroutine: NewLoop is called
// there, and all its methods and those of its Chains run there. Only its
// statistics are read from elsewhere (by Runtime.Status, under mu).
type Loop struct {
	rt    *Runtime
	sb    *sandbox
	L     *glua.LState
	chain *Chain
	cache map[*script]*instance // instances of the current version, reused by the next

	// The filter call in progress, read by the ctx functions. ctx is nil
	// between calls, so a Loop keeps no request alive.
	ctx   *filters.Context
	in    *instance
	phase filters.Phase

	api api // the ctx, ctx.req and ctx.resp objects, created once

	// Async filters (async.go): the suspension whose coroutine runs now (nil
	// outside one), recycled suspensions, and the requests suspended now.
	co        *suspension
	susp      []*suspension
	suspended int

	// The shared dictionaries' objects on this LState, made on first use.
	dicts    map[string]*glua.LUserData
	dictMeta *glua.LTable

	varsFree []*varsTable // emptied ctx.vars tables (vars.go)
	rng      uint32       // xorshift32 state of the sampled timing (timing.go)

	goInst  []*instance     // the Go filters' instances on this loop (gofilter.go)
	ansMeta *glua.LTable    // the metatable of side calls' answers (answer.go)
	pcKinds map[uintptr]int // return addresses classified by nestedLuaCall (asyncapi.go)

	mu     sync.Mutex // guards stats against Status
	stats  map[string]*counters
	closed bool
}

// instance is one script instantiated on one loop's LState.
type instance struct {
	s      *script
	async  bool           // apply runs in a coroutine (async.go), or gf is an AsyncFilter
	gf     filters.Filter // a Go filter (gofilter.go); s is then a stand-in with its name and order
	should *glua.LFunction
	apply  *glua.LFunction
	stats  *counters
	// Error log rate limit (loop goroutine only): one line a second.
	lastLog time.Time
	quiet   int
}

// NewLoop returns the Loop of one event loop. Call it on that loop's
// goroutine; the Loop's first Chain instantiates the current scripts.
func (r *Runtime) NewLoop() *Loop {
	l := &Loop{
		rt:    r,
		sb:    newSandbox(r.maxStr),
		cache: make(map[*script]*instance),
		stats: make(map[string]*counters),
	}
	l.L = l.sb.L
	l.sb.say = l.print
	l.initAPI()
	r.mu.Lock()
	r.loops[l] = struct{}{}
	r.mu.Unlock()
	return l
}

// Close retires the Loop: its statistics stay in Status, its LState is
// released. Call it on the loop's goroutine once no request uses its Chains.
func (l *Loop) Close() {
	r := l.rt
	r.mu.Lock()
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		delete(r.loops, l)
		for name, c := range l.stats {
			sum := r.closed[name]
			if sum == nil {
				sum = new(counters)
				r.closed[name] = sum
			}
			sum.calls.Add(c.calls.Load())
			sum.errors.Add(c.errors.Load())
			sum.timeouts.Add(c.timeouts.Load())
			sum.nanos.Add(c.nanos.Load())
		}
	}
	l.mu.Unlock()
	r.mu.Unlock()
	l.chain, l.cache = nil, nil
	l.sb.wd.close()
	l.L.Close()
}

// Chain returns the filter set for a new request: one atomic load and a
// compare, except on the first call after a reload, which instantiates the
// new or changed scripts on this loop (unchanged ones keep their instance,
// and so their module-level state).
func (l *Loop) Chain() *Chain {
	v := l.rt.cur.Load()
	if l.chain != nil && l.chain.v == v {
		return l.chain
	}
	l.chain = l.build(v)
	return l.chain
}

func (l *Loop) build(v *version) *Chain {
	c := &Chain{l: l, v: v, endpoints: make(map[string]*instance)}
	next := make(map[*script]*instance, len(v.scripts))
	for _, s := range v.scripts {
		if s.disabled {
			continue
		}
		in := l.cache[s]
		if in == nil {
			if in = l.instantiate(s); in == nil {
				continue
			}
		}
		next[s] = in
		c.n++
		switch s.phase {
		case filters.Inbound:
			c.inbound = append(c.inbound, in)
			c.needReq = c.needReq || s.body
		case filters.Endpoint:
			c.endpoints[s.name] = in
			c.needReq = c.needReq || s.body
		case filters.Outbound:
			c.outbound = append(c.outbound, in)
			c.needResp = c.needResp || s.body
		}
	}
	l.addGoFilters(c)
	l.cache = next
	return c
}

// instantiate runs s's top level on this loop's LState. It ran fine in the
// loader; if it does not here (a script that behaves differently on each
// run), the filter is left out of this loop's chain and the error counted.
func (l *Loop) instantiate(s *script) *instance {
	in := &instance{s: s, async: s.async, stats: l.counter(s.name)}
	l.in = in
	defer func() { l.in = nil }()
	v, err := runChunk(l.sb, s.proto, time.Duration(l.rt.loadBudget.Load()))
	if err == nil {
		var sp spec
		if sp, err = readSpec(v); err == nil && (sp.name != s.name || sp.phase != s.phase) {
			err = fmt.Errorf("returned %s filter %q on this loop, not %s filter %q", sp.phase, sp.name, s.phase, s.name)
		}
		in.should, in.apply = sp.should, sp.apply
	}
	if err != nil {
		in.stats.errors.Add(1)
		l.rt.log.Error().Str("filter", s.name).Str("file", s.file).Str("error", err.Error()).
			Msg("lua filter failed to start on an event loop; left out there")
		return nil
	}
	return in
}

func (l *Loop) counter(name string) *counters {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.stats[name]
	if c == nil {
		c = new(counters)
		l.stats[name] = c
	}
	return c
}

// logger is the request's logger when the core gave one, else the runtime's.
func (l *Loop) logger() *zerolog.Logger {
	if l.ctx != nil && l.ctx.Log != nil {
		return l.ctx.Log
	}
	return &l.rt.log
}

// event starts a log line about the current filter and request.
func (l *Loop) event(lvl zerolog.Level) *zerolog.Event {
	lg := l.logger()
	ev := lg.WithLevel(lvl)
	if ev == nil {
		return nil
	}
	if l.in != nil {
		ev = ev.Str("filter", l.in.s.name)
	}
	if l.ctx != nil && len(l.ctx.ID) > 0 {
		ev = ev.Bytes("request_id", l.ctx.ID)
	}
	return ev
}

// print is where a script's print() goes: the log, at debug level.
func (l *Loop) print(msg string) {
	if ev := l.event(zerolog.DebugLevel); ev != nil {
		ev.Msg(msg)
	}
}

// now reads the monotonic clock (filters.Mono: the passport's clock too);
// cheaper than time.Now.
func now() time.Duration { return time.Duration(filters.Mono()) }

// passMark records a step of filter in's call in the request's passport, at t
// (a time the chain read anyway); nothing when the passport is off.
func passMark(ctx *filters.Context, s filters.PassportState, in *instance, t time.Duration) {
	if p := ctx.Passport; p != nil {
		p.MarkAt(s, in.s.name, int64(t))
	}
}

// call runs one filter (should_filter, then apply) on ctx under the budget.
// s is the phase run's timing as the call starts (timing.go); it returns the
// timing as it ended, so that a chain of timed calls reads the clock once per
// call, not twice.
func (l *Loop) call(in *instance, ctx *filters.Context, ph filters.Phase, s span) span {
	passMark(ctx, filters.PassFilterStart, in, s.at)
	if in.gf != nil {
		s = l.callGo(in, ctx, ph, s)
	} else {
		s = l.callLua(in, ctx, ph, s)
	}
	passMark(ctx, filters.PassFilterEnd, in, s.at)
	return s
}

// callLua is call for a Lua filter.
func (l *Loop) callLua(in *instance, ctx *filters.Context, ph filters.Phase, s span) span {
	l.enter(ctx, in, ph)
	L := l.L
	l.sb.wd.arm(l.rt.callBudget())
	var err error
	run := true
	if in.should != nil {
		L.Push(in.should)
		L.Push(l.api.ctx)
		if err = L.PCall(1, 1, nil); err == nil {
			run = glua.LVAsBool(L.Get(-1))
			L.Pop(1)
		}
	}
	if err == nil && run {
		L.Push(in.apply)
		L.Push(l.api.ctx)
		err = L.PCall(1, 0, nil)
	}
	spent := l.sb.wd.disarm()
	s = s.end(in)
	in.stats.calls.Add(1)
	if err != nil || spent {
		// spent without an error: the script swallowed the stop (a tail call
		// to pcall); it still ran past its budget.
		L.SetTop(0)
		l.failed(in, ctx, err, spent)
	}
	return s
}

// failed accounts for a filter that raised or ran past its budget.
func (l *Loop) failed(in *instance, ctx *filters.Context, err error, fired bool) {
	msg := errBudget.Error()
	if err != nil {
		msg = errText(err)
	}
	in.stats.errors.Add(1)
	lvl := zerolog.WarnLevel
	switch {
	case fired:
		in.stats.timeouts.Add(1)
		lvl = zerolog.ErrorLevel
		ctx.Fail(filters.LocalFilterTimeout, fmt.Sprintf("lua filter %q ran past its budget of %v", in.s.name, l.rt.callBudget()))
	case in.s.fatal && !(ctx.Failed && ctx.FailCause == filters.LocalTooManySuspended): // the cap's refusal stands
		lvl = zerolog.ErrorLevel
		ctx.Fail(filters.LocalFilterError, fmt.Sprintf("lua filter %q failed: %s", in.s.name, msg))
	}
	now := time.Now()
	if now.Sub(in.lastLog) < time.Second {
		in.quiet++
		return
	}
	ev := l.event(lvl)
	if ev == nil {
		return
	}
	ev = ev.Str("file", in.s.file).Str("phase", l.phase.String()).Str("error", msg).Bool("fatal", in.s.fatal).Bool("timeout", fired)
	if in.quiet > 0 {
		ev = ev.Int("suppressed", in.quiet)
	}
	in.lastLog, in.quiet = now, 0
	ev.Msg("lua filter error")
}

// Chain is the immutable set of filter instances of one version on one loop.
// A request keeps the Chain it started with, so in-flight requests finish on
// their version even after a reload.
//
// Concurrency: like its Loop, a Chain is used on the loop's goroutine only.
type Chain struct {
	l         *Loop
	v         *version
	inbound   []*instance // by (order, name)
	outbound  []*instance // by (order, name)
	endpoints map[string]*instance
	needReq   bool
	needResp  bool
	goOut     bool // an outbound Go filter may use ctx.Resp.Header (not a filters.LazyHeadFilter)
	n         int
}

// Inbound runs the inbound filters by (order, name) and stops after one
// responded (ctx.Responded) or failed (ctx.Failed).
// An async filter may suspend the request (ctx.Suspended): the chain goes on
// from the next filter once it returns, and calls ctx.Resume at the end.
func (c *Chain) Inbound(ctx *filters.Context) {
	ctx.Phase = filters.Inbound
	if len(c.inbound) == 0 {
		return
	}
	c.runInbound(ctx, 0, c.l.startRun(ctx, filters.Inbound))
}

// runInbound runs the inbound filters from the one at index from; true when
// one suspended the request.
func (c *Chain) runInbound(ctx *filters.Context, from int, s span) bool {
	for i := from; i < len(c.inbound); i++ {
		if ctx.Responded || ctx.Failed {
			break
		}
		in := c.inbound[i]
		if in.async {
			t, suspended := c.l.callAsync(c, in, ctx, filters.Inbound, i, s.clock())
			if suspended {
				c.l.ctx, c.l.in = nil, nil
				return true
			}
			s = timedFrom(t)
			continue
		}
		s = c.l.call(in, ctx, filters.Inbound, s)
	}
	c.l.ctx, c.l.in = nil, nil
	return false
}

// Endpoint runs the Lua endpoint filter called name, which should answer
// with ctx.respond. It returns false when this Chain has no such endpoint.
// An async endpoint may suspend the request, as an inbound filter may.
func (c *Chain) Endpoint(name string, ctx *filters.Context) bool {
	in := c.endpoints[name]
	if in == nil {
		return false
	}
	ctx.Phase = filters.Endpoint
	if in.async {
		c.l.callAsync(c, in, ctx, filters.Endpoint, -1, now())
	} else {
		c.l.call(in, ctx, filters.Endpoint, c.l.startRun(ctx, filters.Endpoint))
	}
	c.l.ctx, c.l.in = nil, nil
	return true
}

// Outbound runs every outbound filter by (order, name), on every response,
// the gateway's own errors included; ctx.Resp must be set. A failed filter
// does not stop the others.
func (c *Chain) Outbound(ctx *filters.Context) {
	ctx.Phase = filters.Outbound
	if len(c.outbound) == 0 {
		return
	}
	s := c.l.startRun(ctx, filters.Outbound)
	for _, in := range c.outbound {
		s = c.l.call(in, ctx, filters.Outbound, s)
	}
	c.l.ctx, c.l.in = nil, nil
}

// NeedsRequestBody reports whether an inbound (or endpoint) filter declared
// body = true: the core should buffer the request body into ctx.Body.
func (c *Chain) NeedsRequestBody() bool { return c.needReq }

// NeedsResponseBody reports whether an outbound filter declared body = true:
// the core should buffer the response body into ctx.RespBody.
func (c *Chain) NeedsResponseBody() bool { return c.needResp }

// LazyResponseHead reports whether the outbound filters work on a response
// head the core has not parsed into ctx.Resp.Header (httpcodec.Response.ParseLazy):
// true when they are all Lua filters, whose ctx.resp reads and edits the head's
// lines (header, set_header, del_header, status) or parses it when it must
// (headers, add_header), and Go filters that are filters.LazyHeadFilter (the
// built-in ones). Another Go filter may use ctx.Resp.Header: with one, the
// core parses the head first. Skipping that parse saved about a microsecond per
// request in bench/run.sh's gozer-lua3 (Response.Materialize was 2.8 % of its
// CPU profile, bench/results/profile-gozer-lua3.pprof).
func (c *Chain) LazyResponseHead() bool { return !c.goOut }

// Len is the number of filters that run in this Chain (disabled ones and
// ones that failed to start on this loop left out).
func (c *Chain) Len() int { return c.n }
