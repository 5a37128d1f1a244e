package loop

// Recycler keeps objects of one kind (an exchange, a stream) for reuse on one
// loop, so that their buffers stay warm. An object retired during a callback
// is recycled only when the callback ends (Reap, from OnCallbackEnd): callers
// further up the stack may still look at it, and must find it finished, never
// reused by another request. It keeps as many as were ever in use at once, up
// to a bound, so that a burst does not pin its memory forever. Loop goroutine
// only.
type Recycler[T any] struct {
	free  []*T
	dead  []*T
	reset func(*T)
}

// recycleKeep bounds the objects a Recycler keeps.
const recycleKeep = 1024

// NewRecycler returns a recycler that clears each object with reset before
// reuse, and hooks its Reap into l's callback ends.
func NewRecycler[T any](l *Loop, reset func(*T)) *Recycler[T] {
	r := &Recycler[T]{reset: reset}
	l.OnCallbackEnd(r.Reap)
	return r
}

// Get returns a recycled object, or nil when there is none.
func (r *Recycler[T]) Get() *T {
	n := len(r.free)
	if n == 0 {
		return nil
	}
	t := r.free[n-1]
	r.free[n-1] = nil
	r.free = r.free[:n-1]
	return t
}

// Retire hands t back; it is reset and reused after the current callback.
func (r *Recycler[T]) Retire(t *T) { r.dead = append(r.dead, t) }

// Reap recycles what was retired.
func (r *Recycler[T]) Reap() {
	for i, t := range r.dead {
		r.reset(t)
		if len(r.free) < recycleKeep {
			r.free = append(r.free, t)
		}
		r.dead[i] = nil
	}
	r.dead = r.dead[:0]
}
