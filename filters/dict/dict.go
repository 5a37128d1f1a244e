// Package dict is the node's shared dictionaries: named key/value stores that
// the filters of every event loop share (ctx.shared(name) in Lua, like
// OpenResty's ngx.shared.DICT). A filter caches an auth decision there for a
// few seconds, or counts requests.
//
// A dictionary is bounded in memory: when an entry does not fit, the least
// recently used entries make room for it. An entry may carry a TTL; an expired
// entry reads as absent and is removed when next touched (or when eviction
// reaches it).
//
// # Memory accounting
//
// An entry costs len(key) + len(value's string) + EntryOverhead bytes; a number
// or a boolean costs nothing beyond the overhead. The overhead stands for what
// Go spends per entry besides the key's and the string's bytes: the entry
// itself (80 bytes on 64-bit), its slot in the shard's map (about 30) and the
// rounding of allocations to size classes. So maxBytes bounds the heap a
// dictionary holds, roughly (TestMemoryAccounting measures it).
//
// # Sharding
//
// A dictionary is split into Shards shards by a hash of the key (hash/maphash,
// seeded per dictionary, so that clients cannot aim their keys at one shard).
// Each shard has its own lock, map, LRU list and a budget of maxBytes/Shards
// bytes, so loops that touch different keys rarely wait for each other and no
// operation takes a lock of the whole dictionary. Two consequences: LRU order
// is kept per shard (eviction makes room in the shard of the new entry), and
// the largest entry a dictionary takes is maxBytes/Shards (ErrTooLarge above).
//
// # Time
//
// Callers pass the time as int64 nanoseconds (the loop's clock, or
// time.Now().UnixNano()); every caller of one dictionary must use the same
// clock. Passing it in keeps time.Now off the hot path and lets tests control
// expiry.
//
// # Strings
//
// Keys and string values are kept as given, not copied: callers must pass
// ordinary immutable Go strings (a gopher-lua LString is one), never strings
// made over reused bytes without copying.
package dict

import (
	"errors"
	"hash/maphash"
	"math"
	"strconv"
	"time"
)

const (
	// Shards is how many shards a dictionary has: enough that a dozen loops
	// seldom meet on one lock, few enough that a shard's budget (maxBytes/Shards)
	// still takes a sizeable entry.
	Shards = 32

	// EntryOverhead is the bytes an entry costs besides its key and string value
	// (see the package comment).
	EntryOverhead = 128

	// MaxKeyLen is the longest key, in bytes: room for a bearer token or a JWT
	// used as the key, yet never a large share of a shard.
	MaxKeyLen = 4096
)

// Errors. They are sentinel values: compare with errors.Is (or ==).
var (
	ErrEmptyKey    = errors.New("dict: empty key")
	ErrKeyTooLong  = errors.New("dict: key longer than " + strconv.Itoa(MaxKeyLen) + " bytes")
	ErrTooLarge    = errors.New("dict: value too large for a shard of the dictionary")
	ErrNotFound    = errors.New("dict: key not found")
	ErrNotNumber   = errors.New("dict: value not a number")
	ErrBadKind     = errors.New("dict: value of unknown kind")
	ErrNegativeTTL = errors.New("dict: negative ttl")
)

// Kind is the type of a Value.
type Kind uint8

// The kinds of value. The zero Kind is none: a Set of a zero Value is refused
// (ErrBadKind) rather than stored as an empty string by accident.
const (
	String Kind = iota + 1
	Number
	Bool // stored as cheaply as a number; Incr refuses it (ErrNotNumber)
)

// String names the kind as Lua's type() would.
func (k Kind) String() string {
	switch k {
	case String:
		return "string"
	case Number:
		return "number"
	case Bool:
		return "boolean"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is what a dictionary stores under a key: Str when Kind is String, Num
// when Number, Bool when Bool. The other fields are ignored.
type Value struct {
	Str  string
	Num  float64
	Kind Kind
	Bool bool
}

// StringValue returns a string Value.
func StringValue(s string) Value { return Value{Str: s, Kind: String} }

// NumberValue returns a number Value.
func NumberValue(n float64) Value { return Value{Num: n, Kind: Number} }

// BoolValue returns a boolean Value.
func BoolValue(b bool) Value { return Value{Bool: b, Kind: Bool} }

// normal keeps only the field of v's kind, so that a stored value holds no
// string it does not use.
func (v Value) normal() Value {
	switch v.Kind {
	case String:
		return Value{Str: v.Str, Kind: String}
	case Number:
		return Value{Num: v.Num, Kind: Number}
	}
	return Value{Bool: v.Bool, Kind: Bool}
}

// Stats are a dictionary's gauges and counters. Counters count from New (Flush
// does not reset them).
type Stats struct {
	Items     int64 `json:"items"`           // entries held, expired ones not yet removed included
	Bytes     int64 `json:"bytes"`           // their cost (see the package comment)
	MaxBytes  int64 `json:"max_bytes"`       // the bound given to New
	Evictions int64 `json:"evictions_total"` // live entries removed to make room (LRU)
	Expired   int64 `json:"expired_total"`   // expired entries removed
	Hits      int64 `json:"hits_total"`      // Gets that found a live entry
	Misses    int64 `json:"misses_total"`    // Gets that did not
}

// Dict is one shared dictionary.
//
// Concurrency: every method may be called from any goroutine, at once (the
// event loops call it concurrently). An operation locks the one shard of its
// key, briefly; Flush and Stats lock the shards one after the other, never
// two at a time, so Stats is a sum of per-shard snapshots, not one instant.
type Dict struct {
	name     string
	maxBytes int64
	seed     maphash.Seed
	shards   [Shards]shard
}

// noExpiry is the expiry of an entry without a TTL: no clock reaches it.
const noExpiry = math.MaxInt64

// New returns an empty dictionary bounded to maxBytes. maxBytes must be
// positive (the configuration checks it; New panics otherwise, a programming
// error). A dictionary smaller than Shards*EntryOverhead takes no entry.
func New(name string, maxBytes int64) *Dict {
	if maxBytes <= 0 {
		panic("dict: New(" + strconv.Quote(name) + "): maxBytes must be positive")
	}
	d := &Dict{name: name, maxBytes: maxBytes, seed: maphash.MakeSeed()}
	for i := range d.shards {
		d.shards[i].init(maxBytes / Shards)
	}
	return d
}

// Name returns the dictionary's name.
func (d *Dict) Name() string { return d.name }

// MaxEntryBytes returns the largest entry cost the dictionary takes: a
// shard's budget. A larger Set fails with ErrTooLarge.
func (d *Dict) MaxEntryBytes() int64 { return d.shards[0].budget }

func (d *Dict) shardOf(key string) *shard {
	return &d.shards[maphash.String(d.seed, key)&(Shards-1)]
}

// Get returns the value under key. An expired entry is absent (and removed);
// a found one becomes the most recently used of its shard.
func (d *Dict) Get(key string, now int64) (Value, bool) {
	s := d.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.lookup(key, now)
	if e == nil {
		s.misses++
		return Value{}, false
	}
	s.hits++
	s.touch(e)
	return e.val, true
}

// Set stores v under key with a ttl (0: no expiry), replacing any value and
// expiry the key had. It evicts the least recently used entries of the key's
// shard to make room. On error the dictionary is unchanged: ErrEmptyKey,
// ErrKeyTooLong, ErrBadKind, ErrNegativeTTL, or ErrTooLarge when the entry
// costs more than a shard's whole budget.
func (d *Dict) Set(key string, v Value, ttl time.Duration, now int64) error {
	size, err := check(key, v, ttl)
	if err != nil {
		return err
	}
	s := d.shardOf(key)
	if size > s.budget {
		return ErrTooLarge
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(key, v.normal(), expiry(ttl, now), size, now)
	return nil
}

// Add is Set only when key is absent (or expired): it reports whether it
// stored v. A key present is not an error: (false, nil).
func (d *Dict) Add(key string, v Value, ttl time.Duration, now int64) (bool, error) {
	size, err := check(key, v, ttl)
	if err != nil {
		return false, err
	}
	s := d.shardOf(key)
	if size > s.budget {
		return false, ErrTooLarge
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lookup(key, now) != nil {
		return false, nil
	}
	s.put(key, v.normal(), expiry(ttl, now), size, now)
	return true, nil
}

// Incr adds delta to the number under key and returns the sum. An existing key
// keeps its expiry (ttl is ignored) and becomes the most recently used. An
// absent (or expired) key is created as *init + delta with ttl when init is
// not nil; otherwise Incr fails with ErrNotFound. A string or boolean value
// fails with ErrNotNumber; the key errors, ErrNegativeTTL and ErrTooLarge are
// those of Set.
func (d *Dict) Incr(key string, delta float64, init *float64, ttl time.Duration, now int64) (float64, error) {
	size, err := check(key, NumberValue(0), ttl)
	if err != nil {
		return 0, err
	}
	s := d.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.lookup(key, now); e != nil {
		if e.val.Kind != Number {
			return 0, ErrNotNumber
		}
		e.val.Num += delta
		s.touch(e)
		return e.val.Num, nil
	}
	if init == nil {
		return 0, ErrNotFound
	}
	if size > s.budget {
		return 0, ErrTooLarge
	}
	n := *init + delta
	s.put(key, NumberValue(n), expiry(ttl, now), size, now)
	return n, nil
}

// Delete removes key, if present.
func (d *Dict) Delete(key string) {
	s := d.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[key]; e != nil {
		s.remove(e)
	}
}

// TTL returns the time key has left (0: no expiry) and whether it is present.
// It leaves the key's recency alone: looking is not using.
func (d *Dict) TTL(key string, now int64) (time.Duration, bool) {
	s := d.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.lookup(key, now)
	if e == nil {
		return 0, false
	}
	if e.expires == noExpiry {
		return 0, true
	}
	return time.Duration(e.expires - now), true
}

// Flush removes every entry. Operations on other goroutines may store new
// entries in shards already flushed while Flush goes on.
func (d *Dict) Flush() {
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		s.flush()
		s.mu.Unlock()
	}
}

// Stats returns the dictionary's gauges and counters.
func (d *Dict) Stats() Stats {
	st := Stats{MaxBytes: d.maxBytes}
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		st.Items += int64(len(s.m))
		st.Bytes += s.bytes
		st.Evictions += s.evictions
		st.Expired += s.expired
		st.Hits += s.hits
		st.Misses += s.misses
		s.mu.Unlock()
	}
	return st
}

// check validates an operation's arguments and returns the entry's cost.
func check(key string, v Value, ttl time.Duration) (int64, error) {
	switch {
	case key == "":
		return 0, ErrEmptyKey
	case len(key) > MaxKeyLen:
		return 0, ErrKeyTooLong
	case v.Kind < String || v.Kind > Bool:
		return 0, ErrBadKind
	case ttl < 0:
		return 0, ErrNegativeTTL
	}
	return entrySize(key, v), nil
}

// entrySize is the cost of an entry (see the package comment).
func entrySize(key string, v Value) int64 {
	n := int64(len(key)) + EntryOverhead
	if v.Kind == String {
		n += int64(len(v.Str))
	}
	return n
}

// expiry returns when an entry stored at now with ttl expires. A ttl so long
// that the sum overflows saturates just short of noExpiry.
func expiry(ttl time.Duration, now int64) int64 {
	if ttl == 0 {
		return noExpiry
	}
	if now > 0 && int64(ttl) > noExpiry-1-now {
		return noExpiry - 1
	}
	return now + int64(ttl)
}
