package loop

import "time"

// Timers. Every connection kind times its connections with a Wheel: a ring of
// slots, each holding the connections whose next due time falls in it. The
// loop's tick advances every wheel; a slot is processed once its whole span
// has passed, so nothing fires early and a timer fires at most one slot (plus
// a tick) late. A connection due further ahead than the ring reaches sits in
// the slot its time maps to and is put back when that slot comes round early.
//
// Moving a due time later costs nothing (the connection stays where it is and
// is put back when its old slot comes due: lazy); moving it earlier moves the
// connection. A connection whose due time is 0 is dropped from the wheel when
// its slot comes round. So a keep-alive connection whose idle deadline moves
// on with every request touches the wheel about once per deadline, not once
// per request.
//
// A Wheel holds pointers and keeps its bookkeeping (8 bytes) in a Timer inside
// each connection: no allocation per timer, and no interface values in the
// slots (8 bytes a connection, not 16). Loop goroutine only.

// Timer is a Wheel's bookkeeping inside the connection it times.
type Timer struct {
	slot int32 // the slot it is in; -1 (after Init): none
	idx  int32 // its index in that slot
}

// Init marks the timer as not scheduled; call it when the connection is made.
func (t *Timer) Init() { t.slot, t.idx = -1, -1 }

// Scheduled reports whether the connection is in a wheel.
func (t *Timer) Scheduled() bool { return t.slot >= 0 }

// Timed is what a Wheel times: a pointer to a connection with a Timer in it.
type Timed interface {
	comparable
	Timer() *Timer
}

// Wheel times connections of one kind. due returns when a connection wants its
// next call (unix ns; 0: never), fire makes the call.
type Wheel[T Timed] struct {
	slots [][]T
	res   int64 // slot span, ns
	cur   int64 // the last slot processed, counted from the epoch
	due   func(T) int64
	fire  func(t T, now int64)
}

// NewWheel returns a wheel of n slots of res ns each, started at now.
func NewWheel[T Timed](n int, res, now int64, due func(T) int64, fire func(T, int64)) *Wheel[T] {
	return &Wheel[T]{slots: make([][]T, n), res: res, cur: now/res - 1, due: due, fire: fire}
}

// Schedule puts t in the slot of its due time (taking it out of the one it is
// in); a due time of 0 takes it out.
func (w *Wheel[T]) Schedule(t T) {
	w.Cancel(t)
	d := w.due(t)
	if d == 0 {
		return
	}
	abs := d / w.res
	if abs <= w.cur {
		abs = w.cur + 1
	}
	s := int32(abs % int64(len(w.slots)))
	tm := t.Timer()
	tm.slot, tm.idx = s, int32(len(w.slots[s]))
	w.slots[s] = append(w.slots[s], t)
}

// Update tells the wheel t's due time changed: t moves only when it is due
// before the slot it sits in comes round (or is in none).
func (w *Wheel[T]) Update(t T) {
	tm := t.Timer()
	if tm.slot < 0 {
		w.Schedule(t)
		return
	}
	d := w.due(t)
	if d == 0 {
		return // dropped when its slot comes round
	}
	n := int64(len(w.slots))
	next := w.cur + 1 + (int64(tm.slot)-(w.cur+1)%n+n)%n // the absolute slot it fires in next
	if d/w.res < next {
		w.Schedule(t)
	}
}

// Cancel takes t out of the wheel.
func (w *Wheel[T]) Cancel(t T) {
	tm := t.Timer()
	if tm.slot < 0 {
		return
	}
	slot := w.slots[tm.slot]
	last := len(slot) - 1
	if i := tm.idx; int(i) <= last && slot[i] == t {
		slot[i] = slot[last]
		slot[i].Timer().idx = i
		var zero T
		slot[last] = zero
		w.slots[tm.slot] = slot[:last]
	}
	tm.slot, tm.idx = -1, -1
}

// Advance processes the slots whose whole span has passed by now: each
// connection in them that is due is fired and then put back for its next due
// time; one that is not due yet goes back as it was.
func (w *Wheel[T]) Advance(now int64) {
	last := now/w.res - 1
	n := int64(len(w.slots))
	if last-w.cur > n {
		w.cur = last - n // a long pause: one round covers every slot
	}
	var zero T
	for w.cur < last {
		w.cur++
		s := w.cur % n
		due := w.slots[s]
		w.slots[s] = nil
		for i, t := range due {
			due[i] = zero
			tm := t.Timer()
			tm.slot, tm.idx = -1, -1
			d := w.due(t)
			if d == 0 {
				continue
			}
			if d <= now {
				w.fire(t, now)
			}
			if tm.slot < 0 && w.due(t) != 0 {
				w.Schedule(t)
			}
		}
		if w.slots[s] == nil {
			w.slots[s] = due[:0] // keep the slot's array: it fills again every round
		}
	}
}

// Each calls fn for every connection in the wheel; fn must not schedule.
func (w *Wheel[T]) Each(fn func(T)) {
	for _, slot := range w.slots {
		for _, t := range slot {
			fn(t)
		}
	}
}

// Len is the number of connections in the wheel.
func (w *Wheel[T]) Len() int {
	n := 0
	for _, slot := range w.slots {
		n += len(slot)
	}
	return n
}

// ConnSlots and ConnRes size the wheels of request-scale timeouts (client and
// origin connections): 100 ms slots, so a timeout fires at most 200 ms late, and
// a horizon of 102 s (longer timeouts go round more than once).
const (
	ConnSlots = 1024
	ConnRes   = int64(100 * time.Millisecond)
)

// NewConnWheel returns a wheel of request-scale timeouts advanced by l's tick.
func NewConnWheel[T Timed](l *Loop, due func(T) int64, fire func(T, int64)) *Wheel[T] {
	w := NewWheel(ConnSlots, ConnRes, l.Now(), due, fire)
	l.OnTick(w.Advance)
	return w
}
