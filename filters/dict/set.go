package dict

import "sort"

// Set is the node's dictionaries, by name.
//
// Concurrency: a Set never changes once built, so every method may be called
// from any goroutine, at once; the dictionaries it holds are themselves safe
// for concurrent use. A configuration reload builds a new Set (NewSetFrom) and
// swaps it in whole, with the rest of the snapshot.
type Set struct {
	dicts map[string]*Dict
	names []string // sorted
}

// NewSet returns a Set of new, empty dictionaries: one per name in specs, of
// the size given (max bytes; each must be positive, see New).
func NewSet(specs map[string]int64) *Set {
	return NewSetFrom(nil, specs)
}

// NewSetFrom is NewSet for a reload: a dictionary of old (which may be nil)
// whose name and size are still in specs is kept, contents and counters, so
// that a reload does not empty the caches. One whose size changed starts
// empty. old stays usable: requests that began before the reload share the
// kept dictionaries with those that begin after.
func NewSetFrom(old *Set, specs map[string]int64) *Set {
	s := &Set{dicts: make(map[string]*Dict, len(specs))}
	for name, size := range specs {
		if d, ok := old.Get(name); ok && d.maxBytes == size {
			s.dicts[name] = d
		} else {
			s.dicts[name] = New(name, size)
		}
		s.names = append(s.names, name)
	}
	sort.Strings(s.names)
	return s
}

// Get returns the dictionary called name. A nil Set has none.
func (s *Set) Get(name string) (*Dict, bool) {
	if s == nil {
		return nil, false
	}
	d, ok := s.dicts[name]
	return d, ok
}

// Names returns the dictionaries' names, sorted (a copy the caller may keep).
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s.names...)
}

// Stats returns every dictionary's Stats, by name (for the admin listener).
func (s *Set) Stats() map[string]Stats {
	if s == nil {
		return map[string]Stats{}
	}
	st := make(map[string]Stats, len(s.dicts))
	for name, d := range s.dicts {
		st[name] = d.Stats()
	}
	return st
}
