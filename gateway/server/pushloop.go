package server

import (
	"context"
	"errors"
	"math/bits"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gozer/gateway/push"
)

// wheelSlots is the number of one-second slots of a loop's push timer wheel. A
// connection due further ahead sits in the slot its due second maps to and is put
// back when that slot comes round early (at most once per wheelSlots seconds).
const wheelSlots = 64

// wheelLate is the most a wheel timer fires after its due time: the rest of its
// second, plus a tick.
const wheelLate = time.Second + tickEvery + 100*time.Millisecond

// spread maps a random rnd onto [0, span): a modulo would cap spans over 2³² ns
// (4.3 s) at that.
func spread(rnd uint32, span int64) int64 {
	if span <= 0 {
		return 0
	}
	hi, _ := bits.Mul64(uint64(span), uint64(rnd)<<32)
	return int64(hi)
}

var errLoopStopped = errors.New("event loop stopped")

// pushItem is one message queued for a push connection by another goroutine.
type pushItem struct {
	pc     *pushConn
	msg    []byte // a websocket payload, or a whole SSE event; nil: close as slow consumer
	binary bool
}

// pushLoop is a loop's push state: its push connections' timer wheel, the inbox
// other goroutines queue messages in, and scratch buffers.
//
// Concurrency: everything but inbox is the loop goroutine's own. inbox takes
// items from any goroutine (the push API, broadcasts) under inboxMu; the loop
// swaps it out in one go.
type pushLoop struct {
	l *loop

	inboxMu   sync.Mutex
	inbox     []pushItem
	scheduled bool // a drain task is queued on the loop
	stopped   bool // Execute failed: the loop is gone
	spare     []pushItem
	drainTask gnet.RunnableFunc

	wheel     [wheelSlots][]*pushConn
	wheelSec  int64 // the last second whose slot was processed
	pool      *push.BufferPool
	hdr       [14]byte
	iov       [][]byte
	scratch   []byte
	drainTill int64 // SIGTERM: go-aways are spread until this time (0: not draining)
}

func newPushLoop(l *loop) *pushLoop {
	p := &pushLoop{l: l, pool: push.NewBufferPool(16), iov: make([][]byte, 0, 2)}
	p.drainTask = func(context.Context) error {
		l.clock()
		p.drainInbox()
		l.reap()
		return nil
	}
	p.wheelSec = l.clock()/1e9 - 1
	return p
}

// enqueue queues a message for pc and wakes the loop if it was not about to run
// the inbox anyway: a broadcast to 100,000 connections of one loop costs one
// wake-up, not 100,000 tasks. Any goroutine.
func (p *pushLoop) enqueue(it pushItem) error {
	p.inboxMu.Lock()
	if p.stopped {
		p.inboxMu.Unlock()
		return errLoopStopped
	}
	p.inbox = append(p.inbox, it)
	wake := !p.scheduled
	p.scheduled = true
	p.inboxMu.Unlock()
	if wake {
		if err := p.l.el.Execute(context.Background(), p.drainTask); err != nil {
			// The loop is gone (shutdown): nothing will drain the inbox again, so
			// no push may count as queued from now on. Items already in it (this
			// one, and any another goroutine added meanwhile) are lost with it.
			p.inboxMu.Lock()
			p.stopped = true
			p.inboxMu.Unlock()
			return err
		}
	}
	return nil
}

// drainInbox writes every queued message. Loop goroutine.
func (p *pushLoop) drainInbox() {
	p.inboxMu.Lock()
	items := p.inbox
	p.inbox = p.spare[:0]
	p.scheduled = false
	p.inboxMu.Unlock()
	for i := range items {
		it := &items[i]
		it.pc.deliver(it.msg, it.binary)
		*it = pushItem{}
	}
	p.spare = items[:0]
	if cap(p.spare) > 1<<16 && len(items) < 1<<10 {
		p.spare = nil // a broadcast burst passed: do not pin its slice forever
	}
}

// schedule puts pc in the wheel slot of its next due time.
func (p *pushLoop) schedule(pc *pushConn) {
	p.unschedule(pc)
	due := pc.due() / 1e9
	if due <= p.wheelSec {
		due = p.wheelSec + 1
	}
	s := int32(due % wheelSlots)
	pc.wslot, pc.widx = s, int32(len(p.wheel[s]))
	p.wheel[s] = append(p.wheel[s], pc)
}

// unschedule takes pc out of the wheel.
func (p *pushLoop) unschedule(pc *pushConn) {
	if pc.wslot < 0 {
		return
	}
	slot := p.wheel[pc.wslot]
	last := len(slot) - 1
	if i := pc.widx; int(i) <= last && slot[i] == pc {
		slot[i] = slot[last]
		slot[i].widx = i
		slot[last] = nil
		p.wheel[pc.wslot] = slot[:last]
	}
	pc.wslot, pc.widx = -1, -1
}

// tick runs the timers of the seconds that passed since the last tick. Each
// connection of a slot that came due is taken out; it either acts (ping, close,
// go-away) and is put back for its next time, or was not due yet (it lives more
// than wheelSlots seconds ahead) and goes back as it was.
func (p *pushLoop) tick(now int64) {
	// A slot is processed once its whole second has passed, so every connection in
	// it is due (none is served early); a timer fires at most one second plus a
	// tick late.
	sec := now/1e9 - 1
	if sec-p.wheelSec > wheelSlots {
		p.wheelSec = sec - wheelSlots
	}
	for p.wheelSec < sec {
		p.wheelSec++
		s := p.wheelSec % wheelSlots
		due := p.wheel[s]
		p.wheel[s] = nil
		for i, pc := range due {
			due[i] = nil
			pc.wslot, pc.widx = -1, -1
			if pc.state == pcClosed {
				continue
			}
			if pc.due() <= now {
				pc.onTimer(now)
			}
			if pc.state != pcClosed && pc.wslot < 0 {
				p.schedule(pc)
			}
		}
		if p.wheel[s] == nil {
			p.wheel[s] = due[:0] // keep the slot's array: it fills again every round
		}
	}
}

// drain starts the graceful shutdown of this loop's push connections: each gets
// its go-away at a random time before till, so that a fleet restart does not bring
// every device back in the same second.
func (p *pushLoop) drain(now, till int64) {
	p.drainTill = till
	for s := range p.wheel {
		for _, pc := range p.wheel[s] {
			if pc.state != pcOpen {
				continue
			}
			at := now + spread(p.l.rnd.Uint32(), till-now)
			if at < pc.deadline {
				pc.deadline = at
			}
		}
	}
	// Rescheduling while walking the wheel would move entries under the walk.
	var all []*pushConn
	for s := range p.wheel {
		all = append(all, p.wheel[s]...)
	}
	for _, pc := range all {
		p.schedule(pc)
	}
}
