package exchange

import (
	"fmt"
	"time"

	"gozer/filters"
	"gozer/gateway/httpcodec"
	"gozer/gateway/origin"
)

// Failure injection (gateway/faults): a request routed to an origin may be
// delayed, aborted, reset or have its response body slowed, on purpose, when
// a fault_injection rule (or the admin API's, or a filter's ctx.inject) says
// so. The delay and the slowed body wait on a timer that hands the loop a
// task (Loop.Execute): the loop never blocks. Loop goroutine only.

// faultState is the request's injected failure.
type faultState struct {
	inj       filters.Injection
	kinds     string         // inj.Kinds(): "" when nothing was injected
	waiting   *origin.Origin // the origin the delayed request goes to
	throttled bool           // the origin's reads pause for the slowed body
	// gen tells a timer armed for an earlier request of this (recycled)
	// exchange from the current one's: reset moves it on.
	gen uint64
}

func (f *faultState) reset() {
	*f = faultState{gen: f.gen + 1}
}

// slowTick is how often a slowed body moves: rate/10 bytes each time.
const slowTick = 100 * time.Millisecond

// injectFaults decides the injected failure of a request routed to o and
// applies what is due now; true when it took the request over (answered it,
// or delays it: afterDelay goes on).
func (ex *Exchange) injectFaults(o *origin.Origin) bool {
	fc := &ex.flt.fc
	inj := fc.Inject
	if inj.Any() {
		inj.Rule = "lua"
	} else {
		set := ex.lp.l.Shared.Faults.Active(ex.snap.Faults)
		if set == nil {
			return false // the hot path when nothing is configured: one load
		}
		var ok bool
		if inj, ok = set.Match(o.Name, fc.Host(), fc.Path(), &ex.req.Header, ex.lp.l.Rand); !ok {
			return false
		}
	}
	ex.fault.inj, ex.fault.kinds = inj, inj.Kinds()
	ex.lp.l.Shared.Faults.Count(&inj)
	if inj.Delay > 0 {
		ex.fault.waiting = o
		if !ex.body.done {
			ex.ds.PauseBody() // the body waits in the kernel meanwhile
		}
		ex.faultTimer(inj.Delay)
		return true
	}
	return ex.applyFault(o)
}

// applyFault applies the injection's abort or reset (true: the request is
// answered), or arms its slowed body (false: it goes on to o).
func (ex *Exchange) applyFault(o *origin.Origin) bool {
	inj := &ex.fault.inj
	switch {
	case inj.Abort != 0:
		ex.try.origin = o // counted with the origin's requests
		cause := filters.LocalInjected
		cause.Status = inj.Abort
		ex.fail(cause, fmt.Sprintf("injected abort %d (fault rule %s)", inj.Abort, inj.Rule))
		return true
	case inj.Reset:
		ex.try.origin = o
		ex.log.cause, ex.log.status = filters.LocalInjectedReset, filters.LocalInjectedReset.Status
		ex.log.reason = "injected connection reset (fault rule " + inj.Rule + ")"
		ex.logAccess()
		ex.abort(true)
		return true
	}
	return false
}

// afterFunc arms the fault timers (time.AfterFunc; tests replace it, to
// fire them by hand on the test's goroutine).
var afterFunc = time.AfterFunc

// faultTimer arms the request's fault timer for d: faultFired runs on the
// loop then, unless the request ended meanwhile.
func (ex *Exchange) faultTimer(d time.Duration) {
	gen, l := ex.fault.gen, ex.lp.l
	afterFunc(d, func() {
		l.Execute(func() {
			if ex.fault.gen == gen && ex.ds != nil {
				ex.faultFired()
			}
		})
	})
}

// faultFired ends a delay (the request goes on to its origin) or a slowed
// body's pause (the next piece goes out).
func (ex *Exchange) faultFired() {
	if o := ex.fault.waiting; o != nil {
		ex.fault.waiting = nil
		if !ex.body.done {
			ex.ds.ResumeBody()
		}
		if ex.applyFault(o) {
			return
		}
		ex.toOrigin(o)
		return
	}
	if ex.fault.throttled {
		ex.fault.throttled = false
		if c := ex.try.conn; c != nil {
			c.Resume()
			ex.pumpResponse()
		}
	}
}

// slowQuantum is how much of the response body may go out now, for a
// slowed body (0: not slowed). A body framed by the origin's close is not
// slowed: its end is only known when all that was read went out.
func (ex *Exchange) slowQuantum() int {
	rate := ex.fault.inj.SlowBody
	if rate <= 0 || ex.fault.kinds == "" || ex.resp.Framing == httpcodec.FramingUntilClose {
		return 0
	}
	return int(max(rate*int64(slowTick)/int64(time.Second), 64))
}

// throttle pauses the origin's reads for a slowed body until the next
// quantum is due.
func (ex *Exchange) throttle(c OriginConn) {
	c.Pause()
	ex.fault.throttled = true
	ex.faultTimer(slowTick)
}
