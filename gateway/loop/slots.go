package loop

// SlotList is a set of connections that keep their own index in it (an int32
// slot), so that adding and removing are O(1) swaps. Loop goroutine only.
type SlotList[T Slotted] struct {
	items []T
}

// Slotted is what a SlotList holds: a pointer with a slot in it.
type Slotted interface {
	comparable
	Slot() *int32
}

// Add puts t in the list.
func (s *SlotList[T]) Add(t T) {
	*t.Slot() = int32(len(s.items))
	s.items = append(s.items, t)
}

// Remove takes t out of the list; removing one that is not in it does nothing.
func (s *SlotList[T]) Remove(t T) {
	p := t.Slot()
	i := int(*p)
	if i < 0 || i >= len(s.items) || s.items[i] != t {
		return
	}
	last := len(s.items) - 1
	s.items[i] = s.items[last]
	*s.items[i].Slot() = int32(i)
	var zero T
	s.items[last] = zero
	s.items = s.items[:last]
	*p = -1
}

// Len is the number of items.
func (s *SlotList[T]) Len() int { return len(s.items) }

// EachBackwards calls fn for every item, last first, so that fn may remove the
// item it is given (and so swap another into its place) without the walk
// skipping one.
func (s *SlotList[T]) EachBackwards(fn func(T)) {
	for i := len(s.items) - 1; i >= 0; i-- {
		if i < len(s.items) {
			fn(s.items[i])
		}
	}
}
