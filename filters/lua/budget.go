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

// closedCh is returned by Done once a call's budget is spent.
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// budgetCtx is the context.Context gopher-lua polls before every VM
// instruction (mainLoopWithContext selects on Done, then raises Err). It is
// not a context.WithTimeout: that would allocate and arm a fresh runtime timer
// per filter call. One budgetCtx and its timer serve call after call.
//
// The budget counts time the filter spends running, not wall-clock time: a
// timer ticks every budget/4 while a call runs, and Done, which only runs
// while the filter executes instructions, counts the ticks it sees. Several
// ticks that passed while no instruction ran (the loop's thread was
// descheduled, or one library call took long) count as one. So a busy
// machine does not stop a trivial filter that happened to be preempted, while
// a filter that keeps running is stopped after about four ticks, and one
// whose instructions get ever slower (a string doubling in a loop) after four
// instructions that each outlasted a tick.
//
// Concurrency: Done, Err, arm and disarm run on the goroutine that owns the
// LState; the timer's function runs on its own goroutine and only touches
// ticks (atomic), dead (atomic) and the timer.
type budgetCtx struct {
	timer *time.Timer
	tick  atomic.Int64  // period, ns; set by arm, read by the timer
	ticks atomic.Uint32 // bumped by the timer
	dead  atomic.Bool   // set when discarded: the timer stops re-arming

	// Owner goroutine only.
	seen  uint32 // ticks value last observed by Done
	used  int    // ticks observed during this call
	spent bool
}

func newBudgetCtx() *budgetCtx {
	c := &budgetCtx{}
	c.timer = time.AfterFunc(time.Hour, func() {
		if c.dead.Load() {
			return
		}
		c.ticks.Add(1)
		c.timer.Reset(time.Duration(c.tick.Load())) // last statement: see disarm
	})
	c.timer.Stop()
	return c
}

func (c *budgetCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *budgetCtx) Value(any) any               { return nil }

// Done is called by the VM before each instruction: one atomic load and a
// compare in the common case. A nil channel is never ready.
func (c *budgetCtx) Done() <-chan struct{} {
	if t := c.ticks.Load(); t != c.seen {
		c.seen = t
		c.used++
		if c.used >= ticksPerBudget {
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
	tick := max(d/ticksPerBudget, time.Microsecond)
	c.tick.Store(int64(tick))
	c.seen, c.used, c.spent = c.ticks.Load(), 0, false
	c.timer.Reset(tick)
}

// disarm ends the call's budget and reports whether it was spent. When the
// timer's function may be running right now (Stop returns false), the
// context is discarded, so that a late tick can never be counted against the
// next call: the LState gets a fresh one. That happens only to calls that
// lasted about a tick or more.
func (w *watchdog) disarm() (spent bool) {
	c := w.cur
	spent = c.spent
	if !c.timer.Stop() {
		c.dead.Store(true)
		w.cur = newBudgetCtx()
		w.L.SetContext(w.cur)
	}
	return spent
}
