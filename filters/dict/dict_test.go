package dict

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

const sec = int64(time.Second)

func f64(n float64) *float64 { return &n }

func TestSetGet(t *testing.T) {
	tests := []struct {
		name string
		key  string
		v    Value
		want Value
	}{
		{"string", "a", StringValue("yes"), StringValue("yes")},
		{"empty string", "a", StringValue(""), StringValue("")},
		{"number", "n", NumberValue(-1.5), NumberValue(-1.5)},
		{"nan", "n", NumberValue(math.NaN()), NumberValue(math.NaN())},
		{"true", "b", BoolValue(true), BoolValue(true)},
		{"false", "b", BoolValue(false), BoolValue(false)},
		{"fields of other kinds dropped", "x", Value{Str: "s", Num: 2, Kind: Number, Bool: true}, NumberValue(2)},
		{"longest key", strings.Repeat("k", MaxKeyLen), StringValue("v"), StringValue("v")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New("t", 1<<20)
			if err := d.Set(tt.key, tt.v, 0, 0); err != nil {
				t.Fatalf("Set: %v", err)
			}
			got, ok := d.Get(tt.key, 0)
			if !ok || !same(got, tt.want) {
				t.Fatalf("Get = %+v, %v; want %+v, true", got, ok, tt.want)
			}
			checkInvariants(t, d)
		})
	}
}

// same compares values, NaN equal to NaN.
func same(a, b Value) bool {
	if a.Kind == Number && b.Kind == Number && math.IsNaN(a.Num) && math.IsNaN(b.Num) {
		return true
	}
	return a == b
}

func TestErrors(t *testing.T) {
	long := strings.Repeat("k", MaxKeyLen+1)
	huge := StringValue(strings.Repeat("v", 1<<20))
	tests := []struct {
		name string
		op   func(d *Dict) error
		want error
	}{
		{"set empty key", func(d *Dict) error { return d.Set("", NumberValue(1), 0, 0) }, ErrEmptyKey},
		{"set long key", func(d *Dict) error { return d.Set(long, NumberValue(1), 0, 0) }, ErrKeyTooLong},
		{"set zero value", func(d *Dict) error { return d.Set("k", Value{Str: "x"}, 0, 0) }, ErrBadKind},
		{"set unknown kind", func(d *Dict) error { return d.Set("k", Value{Kind: 9}, 0, 0) }, ErrBadKind},
		{"set negative ttl", func(d *Dict) error { return d.Set("k", NumberValue(1), -1, 0) }, ErrNegativeTTL},
		{"set too large", func(d *Dict) error { return d.Set("k", huge, 0, 0) }, ErrTooLarge},
		{"replace too large", func(d *Dict) error { return d.Set("present", huge, 0, 0) }, ErrTooLarge},
		{"add empty key", func(d *Dict) error { _, err := d.Add("", NumberValue(1), 0, 0); return err }, ErrEmptyKey},
		{"add long key", func(d *Dict) error { _, err := d.Add(long, NumberValue(1), 0, 0); return err }, ErrKeyTooLong},
		{"add zero value", func(d *Dict) error { _, err := d.Add("k", Value{}, 0, 0); return err }, ErrBadKind},
		{"add negative ttl", func(d *Dict) error { _, err := d.Add("k", NumberValue(1), -time.Second, 0); return err }, ErrNegativeTTL},
		{"add too large", func(d *Dict) error { _, err := d.Add("k", huge, 0, 0); return err }, ErrTooLarge},
		{"incr empty key", func(d *Dict) error { _, err := d.Incr("", 1, f64(0), 0, 0); return err }, ErrEmptyKey},
		{"incr long key", func(d *Dict) error { _, err := d.Incr(long, 1, f64(0), 0, 0); return err }, ErrKeyTooLong},
		{"incr negative ttl", func(d *Dict) error { _, err := d.Incr("k", 1, f64(0), -1, 0); return err }, ErrNegativeTTL},
		{"incr absent", func(d *Dict) error { _, err := d.Incr("k", 1, nil, 0, 0); return err }, ErrNotFound},
		{"incr string", func(d *Dict) error { _, err := d.Incr("present", 1, f64(0), 0, 0); return err }, ErrNotNumber},
		{"incr bool", func(d *Dict) error { _, err := d.Incr("flag", 1, nil, 0, 0); return err }, ErrNotNumber},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New("t", 64<<10)
			mustSet(t, d, "present", StringValue("old"), 0, 0)
			mustSet(t, d, "flag", BoolValue(true), 0, 0)
			before := d.Stats()
			if err := tt.op(d); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if after := d.Stats(); after.Items != before.Items || after.Bytes != before.Bytes {
				t.Errorf("dictionary changed by a failed operation: %+v -> %+v", before, after)
			}
			if v, ok := d.Get("present", 0); !ok || v != StringValue("old") {
				t.Errorf("present = %+v, %v after a failed operation", v, ok)
			}
		})
	}
}

func TestIncrTooLarge(t *testing.T) {
	// A shard's budget is exactly one overhead: no key fits beside it.
	d := New("tiny", Shards*EntryOverhead)
	if _, err := d.Incr("k", 1, f64(0), 0, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Incr = %v, want ErrTooLarge", err)
	}
	if d.MaxEntryBytes() != EntryOverhead {
		t.Fatalf("MaxEntryBytes = %d", d.MaxEntryBytes())
	}
}

func TestErrorMessages(t *testing.T) {
	for _, err := range []error{ErrEmptyKey, ErrKeyTooLong, ErrTooLarge, ErrNotFound, ErrNotNumber, ErrBadKind, ErrNegativeTTL} {
		if msg := err.Error(); !strings.HasPrefix(msg, "dict: ") || strings.ToLower(msg) != msg {
			t.Errorf("message %q: want lowercase, starting with \"dict: \"", msg)
		}
	}
}

func TestNewPanics(t *testing.T) {
	for _, size := range []int64{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d) did not panic", size)
				}
			}()
			New("bad", size)
		}()
	}
}

func TestAdd(t *testing.T) {
	d := New("t", 1<<20)
	tests := []struct {
		name string
		key  string
		v    Value
		ttl  time.Duration
		now  int64
		want bool
		get  Value // what the key holds after
	}{
		{"absent", "k", StringValue("first"), 10 * time.Second, 0, true, StringValue("first")},
		{"present", "k", StringValue("second"), 0, 5 * sec, false, StringValue("first")},
		{"expired", "k", StringValue("third"), 0, 10 * sec, true, StringValue("third")},
		{"present, no expiry", "k", StringValue("fourth"), 0, 1000 * sec, false, StringValue("third")},
	}
	for _, tt := range tests {
		got, err := d.Add(tt.key, tt.v, tt.ttl, tt.now)
		if err != nil || got != tt.want {
			t.Fatalf("%s: Add = %v, %v; want %v", tt.name, got, err, tt.want)
		}
		if v, ok := d.Get(tt.key, tt.now); !ok || v != tt.get {
			t.Fatalf("%s: Get = %+v, %v; want %+v", tt.name, v, ok, tt.get)
		}
	}
}

func TestIncr(t *testing.T) {
	d := New("t", 1<<20)
	tests := []struct {
		name    string
		delta   float64
		init    *float64
		ttl     time.Duration
		now     int64
		want    float64
		wantTTL time.Duration
	}{
		{"absent with init", 1, f64(10), 10 * time.Second, 0, 11, 10 * time.Second},
		{"existing keeps expiry", 2, f64(100), time.Hour, 4 * sec, 13, 6 * time.Second},
		{"negative fraction", -0.5, nil, 0, 5 * sec, 12.5, 5 * time.Second},
		{"expired is absent", 1, f64(0), 0, 10 * sec, 1, 0},
		{"no expiry kept", 1, nil, time.Second, 20 * sec, 2, 0},
	}
	for _, tt := range tests {
		got, err := d.Incr("c", tt.delta, tt.init, tt.ttl, tt.now)
		if err != nil || got != tt.want {
			t.Fatalf("%s: Incr = %v, %v; want %v", tt.name, got, err, tt.want)
		}
		if ttl, ok := d.TTL("c", tt.now); !ok || ttl != tt.wantTTL {
			t.Fatalf("%s: TTL = %v, %v; want %v", tt.name, ttl, ok, tt.wantTTL)
		}
		if v, _ := d.Get("c", tt.now); v != NumberValue(tt.want) {
			t.Fatalf("%s: Get = %+v", tt.name, v)
		}
	}
}

func TestExpiry(t *testing.T) {
	d := New("t", 1<<20)
	mustSet(t, d, "k", StringValue("v"), 10*time.Second, 100*sec)
	steps := []struct {
		now     int64
		present bool
		ttl     time.Duration
	}{
		{100 * sec, true, 10 * time.Second},
		{105 * sec, true, 5 * time.Second},
		{110*sec - 1, true, 1},
		{110 * sec, false, 0},
		{120 * sec, false, 0},
	}
	for _, s := range steps {
		ttl, ok := d.TTL("k", s.now)
		if ok != s.present || ttl != s.ttl {
			t.Fatalf("at %d: TTL = %v, %v; want %v, %v", s.now, ttl, ok, s.ttl, s.present)
		}
		if _, ok := d.Get("k", s.now); ok != s.present {
			t.Fatalf("at %d: Get present = %v", s.now, ok)
		}
	}
	if st := d.Stats(); st.Items != 0 || st.Bytes != 0 || st.Expired != 1 || st.Evictions != 0 {
		t.Fatalf("stats after expiry: %+v", st)
	}
	// Set replaces the expiry: 0 is none.
	mustSet(t, d, "k", StringValue("v"), time.Second, 0)
	mustSet(t, d, "k", StringValue("w"), 0, 0)
	if ttl, ok := d.TTL("k", 1<<62); !ok || ttl != 0 {
		t.Fatalf("TTL without expiry = %v, %v", ttl, ok)
	}
}

func TestExpiryOverflow(t *testing.T) {
	d := New("t", 1<<20)
	now := int64(math.MaxInt64 - sec)
	mustSet(t, d, "k", NumberValue(1), time.Duration(math.MaxInt64), now)
	ttl, ok := d.TTL("k", now)
	if !ok || ttl <= 0 || ttl >= time.Second {
		t.Fatalf("TTL = %v, %v; want a saturated positive ttl", ttl, ok)
	}
}

func TestDeleteFlushStats(t *testing.T) {
	d := New("t", 1<<20)
	mustSet(t, d, "a", StringValue("12345"), 0, 0)
	mustSet(t, d, "b", NumberValue(1), 0, 0)
	want := Stats{Items: 2, Bytes: 1 + 5 + EntryOverhead + 1 + EntryOverhead, MaxBytes: 1 << 20}
	if st := d.Stats(); st != want {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}
	d.Get("a", 0)
	d.Get("zz", 0)
	d.Get("", 0)
	d.Delete("a")
	d.Delete("a")
	d.Delete("never")
	if _, ok := d.Get("a", 0); ok {
		t.Fatal("a present after Delete")
	}
	want = Stats{Items: 1, Bytes: 1 + EntryOverhead, MaxBytes: 1 << 20, Hits: 1, Misses: 3}
	if st := d.Stats(); st != want {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}
	d.Flush()
	want.Items, want.Bytes = 0, 0
	if st := d.Stats(); st != want {
		t.Fatalf("Stats after Flush = %+v, want %+v", st, want)
	}
	if _, ok := d.Get("b", 0); ok {
		t.Fatal("b present after Flush")
	}
	mustSet(t, d, "b", NumberValue(2), 0, 0)
	checkInvariants(t, d)
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{String: "string", Number: "number", Bool: "boolean", 0: "kind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func TestSet(t *testing.T) {
	s := NewSet(map[string]int64{"cache": 1 << 20, "counters": 64 << 10})
	if got := strings.Join(s.Names(), ","); got != "cache,counters" {
		t.Fatalf("Names = %s", got)
	}
	cache, ok := s.Get("cache")
	if !ok || cache.Name() != "cache" || cache.Stats().MaxBytes != 1<<20 {
		t.Fatalf("Get(cache) = %v, %v", cache, ok)
	}
	if _, ok := s.Get("nope"); ok {
		t.Fatal("Get(nope) found a dictionary")
	}
	mustSet(t, cache, "k", NumberValue(1), 0, 0)
	counters, _ := s.Get("counters")
	mustSet(t, counters, "k", NumberValue(1), 0, 0)

	// A reload keeps the dictionaries whose size stayed.
	next := NewSetFrom(s, map[string]int64{"cache": 1 << 20, "counters": 128 << 10, "new": 1 << 16})
	if d, _ := next.Get("cache"); d != cache {
		t.Error("reload did not keep cache")
	}
	if d, _ := next.Get("counters"); d == counters || d.Stats().Items != 0 {
		t.Error("reload kept counters although its size changed")
	}
	st := next.Stats()
	if len(st) != 3 || st["cache"].Items != 1 || st["new"].MaxBytes != 1<<16 {
		t.Errorf("Stats = %+v", st)
	}

	var none *Set
	if _, ok := none.Get("cache"); ok || none.Names() != nil || len(none.Stats()) != 0 {
		t.Error("a nil Set is not empty")
	}
}

func mustSet(t testing.TB, d *Dict, key string, v Value, ttl time.Duration, now int64) {
	t.Helper()
	if err := d.Set(key, v, ttl, now); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}
