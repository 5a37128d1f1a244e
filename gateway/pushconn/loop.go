package pushconn

import (
	"context"
	"errors"
	"math/bits"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gozer/gateway/loop"
	"gozer/gateway/push"
)

// wheelSlots is the number of one-second slots of a loop's push timer wheel. A
// connection due further ahead sits in the slot its due second maps to and is put
// back when that slot comes round early (at most once per wheelSlots seconds).
const wheelSlots = 64

// wheelRes is the push wheel's slot: one second (pings and lifetimes are
// seconds apart; a million connections must not cost a slot each tick).
const wheelRes = int64(time.Second)

// TickEvery is the period of the loops' tick (the server's ticker).
const TickEvery = 100 * time.Millisecond

// wheelLate is the most a wheel timer fires after its due time: the rest of its
// second, plus a tick.
const wheelLate = time.Second + TickEvery + 100*time.Millisecond

// spread maps a random rnd onto [0, span): a modulo would cap spans over 2³² ns
// (4.3 s) at that.
func spread(rnd uint32, span int64) int64 {
	if span <= 0 {
		return 0
	}
	hi, _ := bits.Mul64(uint64(span), uint64(rnd)<<32)
	return int64(hi)
}

// DrainSpread is how long after SIGTERM the last push go-away may be due: 80 %
// of the drain time, less the timer wheel's lateness, so that every device gets
// its go-away (and can echo the close) before the drain deadline cuts it off.
func DrainSpread(d time.Duration) int64 {
	return max(0, int64(d)*8/10-int64(wheelLate))
}

var errLoopStopped = errors.New("event loop stopped")

// pushItem is one message queued for a push connection by another goroutine.
type pushItem struct {
	pc     *Conn
	msg    []byte // the message, shared: never modified
	id     uint64 // its id (0: none); for ctlResync the id to go on from
	binary bool
	ctl    uint8 // ctlMessage, or what else to do
}

// pushItem.ctl values.
const (
	ctlMessage uint8 = iota
	ctlSlow          // close as slow consumer
	ctlResync        // tell the device its last id is gone from the history
)

// Loop is one event loop's push connections: their timer wheel, the inbox
// other goroutines queue messages in, and scratch buffers.
//
// Concurrency: everything but the inbox is the loop goroutine's own. The inbox
// takes items from any goroutine (the push API, broadcasts) under inboxMu; the
// loop swaps it out in one go.
type Loop struct {
	l   *loop.Loop
	hub *push.Hub

	inboxMu   sync.Mutex
	inbox     []pushItem
	scheduled bool // an inbox task is queued on the loop
	stopped   bool // Execute failed: the loop is gone
	spare     []pushItem
	inboxTask gnet.RunnableFunc

	wheel     *loop.Wheel[*Conn]
	pool      *push.BufferPool
	hdr       [14]byte
	idBuf     [24]byte
	iov       [][]byte
	scratch   []byte
	drainTill int64 // SIGTERM: go-aways are spread until this time (0: not draining)
	// topics holds each connection's topics (topics.go); a connection
	// without any has no entry. Made on first use.
	topics map[*Conn][]string
}

// NewLoop returns l's push connections, serving hub's, with their timers on
// l's tick and their go-aways on l's drain.
func NewLoop(l *loop.Loop, hub *push.Hub) *Loop {
	p := &Loop{l: l, hub: hub, pool: push.NewBufferPool(16), iov: make([][]byte, 0, 3)}
	p.inboxTask = func(context.Context) error {
		l.Enter()
		p.deliverInbox()
		l.Leave()
		return nil
	}
	p.wheel = loop.NewWheel(wheelSlots, wheelRes, l.Now(), (*Conn).due, (*Conn).onTimer)
	l.OnTick(p.wheel.Advance)
	l.OnDrain(p.drain)
	return p
}

// Hub is the node's push state.
func (p *Loop) Hub() *push.Hub { return p.hub }

// enqueue queues a message for pc and wakes the loop if it was not about to run
// the inbox anyway: a broadcast to 100,000 connections of one loop costs one
// wake-up, not 100,000 tasks. Any goroutine.
func (p *Loop) enqueue(it pushItem) error {
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
		if err := p.l.EL.Execute(context.Background(), p.inboxTask); err != nil {
			// The loop is gone (shutdown): nothing will empty the inbox again, so
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

// deliverInbox writes every queued message. Loop goroutine.
func (p *Loop) deliverInbox() {
	p.inboxMu.Lock()
	items := p.inbox
	p.inbox = p.spare[:0]
	p.scheduled = false
	p.inboxMu.Unlock()
	for i := range items {
		it := &items[i]
		it.pc.deliver(it)
		*it = pushItem{}
	}
	p.spare = items[:0]
	if cap(p.spare) > 1<<16 && len(items) < 1<<10 {
		p.spare = nil // a broadcast burst passed: do not pin its slice forever
	}
}

// drain starts the graceful shutdown of this loop's push connections: each gets
// its go-away at a random time before till, so that a fleet restart does not bring
// every device back in the same second.
func (p *Loop) drain(now, till int64) {
	p.drainTill = till
	var all []*Conn
	p.wheel.Each(func(pc *Conn) {
		all = append(all, pc)
		if pc.state != pcOpen {
			return
		}
		if at := now + spread(p.l.Rand.Uint32(), till-now); at < pc.deadline {
			pc.deadline = at
		}
	})
	// Rescheduling while walking the wheel would move entries under the walk.
	for _, pc := range all {
		p.wheel.Schedule(pc)
	}
}
