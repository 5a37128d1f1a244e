package dict

import "sync"

// maxFree is how many removed entries a shard keeps for reuse: enough that a
// full dictionary under steady eviction allocates none, few enough that a
// flushed one gives its memory back.
const maxFree = 32

// entry is one key's value, linked into its shard's LRU list.
type entry struct {
	key        string
	val        Value
	expires    int64 // noExpiry when none
	size       int64 // cost, as entrySize computed it when stored
	prev, next *entry
}

// shard is one lock's share of a dictionary. Every method but init requires
// mu held.
type shard struct {
	mu     sync.Mutex
	m      map[string]*entry
	head   entry // sentinel of the circular LRU list: head.next is the most recent
	bytes  int64
	budget int64
	free   *entry // removed entries for reuse, linked by next
	nfree  int

	hits, misses, evictions, expired int64

	_ [64]byte // keeps the next shard's lock off this shard's cache lines
}

func (s *shard) init(budget int64) {
	s.m = make(map[string]*entry)
	s.head.prev, s.head.next = &s.head, &s.head
	s.budget = budget
}

// lookup returns the live entry under key, or nil. An expired entry is
// removed (and counted) on the way.
func (s *shard) lookup(key string, now int64) *entry {
	e := s.m[key]
	if e == nil {
		return nil
	}
	if e.expires <= now {
		s.expired++
		s.remove(e)
		return nil
	}
	return e
}

// put stores val under key, reusing key's entry if there is one, after making
// room for size bytes. size must not exceed the budget.
func (s *shard) put(key string, val Value, expires, size, now int64) {
	e := s.m[key]
	if e != nil {
		// Out of the list while room is made, so that it cannot evict itself.
		s.unlink(e)
		s.bytes -= e.size
	} else {
		e = s.alloc()
		e.key = key
		s.m[key] = e
	}
	s.makeRoom(size, now)
	e.val, e.expires, e.size = val, expires, size
	s.pushFront(e)
	s.bytes += size
}

// makeRoom removes entries from the cold end of the list until size more bytes
// fit in the budget. Expired entries found there count as expired, live ones
// as evictions.
func (s *shard) makeRoom(size, now int64) {
	for s.bytes+size > s.budget {
		victim := s.head.prev
		if victim == &s.head {
			return // cannot happen while size <= budget: bytes is 0
		}
		if victim.expires <= now {
			s.expired++
		} else {
			s.evictions++
		}
		s.remove(victim)
	}
}

// touch makes e the most recently used.
func (s *shard) touch(e *entry) {
	if s.head.next == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

// remove takes e out of the shard and keeps it for reuse.
func (s *shard) remove(e *entry) {
	s.unlink(e)
	delete(s.m, e.key)
	s.bytes -= e.size
	s.release(e)
}

func (s *shard) unlink(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (s *shard) pushFront(e *entry) {
	e.prev = &s.head
	e.next = s.head.next
	s.head.next.prev = e
	s.head.next = e
}

// alloc returns a blank entry, a reused one when the shard has one.
func (s *shard) alloc() *entry {
	e := s.free
	if e == nil {
		return new(entry)
	}
	s.free = e.next
	s.nfree--
	e.next = nil
	return e
}

// release keeps a removed entry for reuse, without the strings it held (they
// would otherwise stay alive).
func (s *shard) release(e *entry) {
	if s.nfree >= maxFree {
		return
	}
	*e = entry{next: s.free}
	s.free = e
	s.nfree++
}

// flush drops every entry. A new map rather than clear(s.m): a cleared map
// keeps its buckets, and a flushed dictionary should give its memory back.
// The free list stays, as it is bounded.
func (s *shard) flush() {
	s.m = make(map[string]*entry)
	s.head.prev, s.head.next = &s.head, &s.head
	s.bytes = 0
}
