package lua

import (
	"errors"
	"sync/atomic"
	"time"

	glua "github.com/yuin/gopher-lua"
)

// errBudget is what a stopped filter sees: gopher-lua raises ctx.Err().Error()
// at the instruction where the budget ran out, prefixed with file:line.
var errBudget = errors.New("filter ran past its time budget")

// ticksPerBudget: a call's budget is counted in ticks of budget/ticksPerBudget.
const ticksPerBudget = 4

// idleBeats: the ticker stops after this many ticks without a filter call, so
// an idle loop costs no wake-ups; the next call starts it again.
const idleBeats = 64

// closedCh is returned by Done once a call's budget is spent.
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// budgetCtx is the context.Context gopher-lua polls before every VM
// instruction (mainLoopWithContext selects on Done, then raises Err). It is
// not a context.WithTimeout: that would allocate and arm a fresh runtime timer
// per filter call. One budgetCtx serves call after call, and its ticker runs
// free while calls come: a call only stores a few atomics, it never resets
// or stops a runtime timer (which takes the timer heap's lock, and measured
// 140-250 ns a call with BenchmarkBudgetArmDisarm).
//
// The budget counts time the filter spends running, not wall-clock time: the
// ticker ticks every budget/4, and Done, which only runs while the filter
// executes instructions, counts the ticks it sees. Several ticks that passed
// while no instruction ran (the loop's thread was descheduled, or one library
// call took long) count as one. A call is stopped at the fifth tick it sees:
// the first may come at once (the ticker runs free), so a filter that keeps
// running gets between one and one and a quarter budgets; one whose
// instructions get ever slower (a string doubling in a loop) is stopped after
// five instructions that each outlasted a tick.
//
// Concurrency: Done, Err, arm and disarm run on the goroutine that owns the
// LState; the ticker's function runs on its own goroutine and touches only
// the atomics and the timer.
type budgetCtx struct {
	timer   *time.Timer
	tick    atomic.Int64  // period, ns; set by arm, read by the ticker
	ticks   atomic.Uint32 // bumped by the ticker
	inCall  atomic.Bool   // a call runs: the ticker must not stop
	active  atomic.Bool   // a call was armed since the ticker last looked
	running atomic.Bool   // the ticker is armed (it re-arms itself)
	idle    atomic.Int32  // ticks without a call, counted by the ticker
	dead    atomic.Bool   // the LState is closed: the ticker stops for good

	// Owner goroutine only.
	seen  uint32 // ticks value last observed by Done
	used  int    // ticks observed during this call
	spent bool
}

func newBudgetCtx() *budgetCtx {
	c := &budgetCtx{}
	c.timer = time.AfterFunc(time.Hour, c.beat)
	c.timer.Stop()
	return c
}

// beat is the ticker (its own goroutine): a tick, then the next one unless
// no call came for idleBeats ticks.
func (c *budgetCtx) beat() {
	if c.dead.Load() {
		c.running.Store(false)
		return
	}
	c.ticks.Add(1)
	if c.active.Swap(false) || c.inCall.Load() {
		c.idle.Store(0)
	} else if c.idle.Add(1) >= idleBeats {
		c.running.Store(false)
		// An arm that came after the Swap above may have found the ticker
		// still running: whichever of the two wins the swap re-arms it.
		if !c.active.Load() || !c.running.CompareAndSwap(false, true) {
			return
		}
		c.idle.Store(0)
	}
	c.timer.Reset(time.Duration(c.tick.Load()))
}

func (c *budgetCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *budgetCtx) Value(any) any               { return nil }

// Done is called by the VM before each instruction: one atomic load and a
// compare in the common case. A nil channel is never ready.
func (c *budgetCtx) Done() <-chan struct{} {
	if t := c.ticks.Load(); t != c.seen {
		c.seen = t
		c.used++
		if c.used > ticksPerBudget {
			c.spent = true
		}
	}
	if c.spent {
		return closedCh
	}
	return nil
}

func (c *budgetCtx) Err() error {
	if c.spent {
		return errBudget
	}
	return nil
}

// watchdog bounds the run time of each Lua call made on one LState.
//
// Concurrency: owned by the goroutine that owns the LState (an event loop, or
// the loader); arm and disarm must be called there, around each call.
type watchdog struct {
	L   *glua.LState
	cur *budgetCtx
}

func newWatchdog(L *glua.LState) *watchdog {
	w := &watchdog{L: L, cur: newBudgetCtx()}
	L.SetContext(w.cur)
	return w
}

// arm starts a call's budget of d.
func (w *watchdog) arm(d time.Duration) {
	c := w.cur
	tick := int64(max(d/ticksPerBudget, time.Microsecond))
	old := c.tick.Load()
	if tick != old {
		c.tick.Store(tick)
	}
	c.seen, c.used, c.spent = c.ticks.Load(), 0, false
	// Loads before stores: most calls find the ticker running and marked
	// active, and a store is a locked instruction. The order matters where
	// the ticker may stop (beat): inCall and active are set before running
	// is looked at.
	c.inCall.Store(true)
	if !c.active.Load() {
		c.active.Store(true)
	}
	switch {
	case !c.running.Load() && c.running.CompareAndSwap(false, true):
		c.timer.Reset(time.Duration(tick))
	case tick < old:
		// The ticker runs at a longer period (a script's load budget): bring
		// its next tick in.
		c.timer.Reset(time.Duration(tick))
	}
}

// disarm ends the call's budget and reports whether it was spent.
func (w *watchdog) disarm() (spent bool) {
	c := w.cur
	c.inCall.Store(false)
	return c.spent
}

// close stops the ticker for good (the LState is closed).
func (w *watchdog) close() {
	w.cur.dead.Store(true)
	w.cur.timer.Stop()
}
