package lua

import (
	"errors"
	"time"

	glua "github.com/yuin/gopher-lua"
)

// errBudget is what a stopped filter sees: gopher-lua raises ctx.Err().Error()
// at the instruction where it noticed the budget ran out, prefixed with file:line.
var errBudget = errors.New("filter ran past its time budget")

// budgetCtx is the context.Context that gopher-lua polls before every VM
// instruction (mainLoopWithContext selects on Done). It is not a
// context.WithTimeout: that would allocate and arm a fresh runtime timer per
// filter call. A budgetCtx and its timer are reused call after call until the
// timer fires once; then both are discarded (see watchdog.disarm), so a late
// firing can only close the channel of a context nobody polls any more.
//
// Concurrency: Done and Err are called on the goroutine that owns the LState;
// the timer's function closes done from the timer goroutine. The done channel
// is the only state they share.
type budgetCtx struct {
	done  chan struct{}
	timer *time.Timer
}

func newBudgetCtx() *budgetCtx {
	c := &budgetCtx{done: make(chan struct{})}
	done := c.done
	// Created stopped: watchdog.arm starts it with Reset.
	c.timer = time.AfterFunc(time.Hour, func() { close(done) })
	c.timer.Stop()
	return c
}

func (c *budgetCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *budgetCtx) Done() <-chan struct{}       { return c.done }
func (c *budgetCtx) Value(any) any               { return nil }

func (c *budgetCtx) Err() error {
	select {
	case <-c.done:
		return errBudget
	default:
		return nil
	}
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

// arm starts the budget of one call.
func (w *watchdog) arm(d time.Duration) { w.cur.timer.Reset(d) }

// disarm ends the budget of the call started by arm and reports whether the
// timer fired meanwhile. When it did, the context is spent (its channel is or
// is about to be closed): the LState gets a fresh one, so the next call starts
// with a full budget whatever the old timer goroutine still does.
func (w *watchdog) disarm() (fired bool) {
	if w.cur.timer.Stop() {
		return false
	}
	w.cur = newBudgetCtx()
	w.L.SetContext(w.cur)
	return true
}
