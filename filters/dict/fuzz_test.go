package dict

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The fuzz test's dictionary: a shard takes all of fuzzKeys at their largest
// (8 × (128 + 1 + 255) bytes < 4 KiB), so nothing is ever evicted and a
// plain map is an exact model of it.
var fuzzKeys = []string{"a", "b", "c", "d", "e", "f", "g", "h", "", strings.Repeat("k", MaxKeyLen+1)}

const fuzzBytes = Shards * 4096

var fuzzTTLs = []time.Duration{0, time.Second, 5 * time.Second, time.Minute}

// model is the reference: a map, expiry by a plain comparison, entries
// removed when an operation touches them expired, as the dictionary does.
type model struct {
	m                     map[string]modelEntry
	hits, misses, expired int64
}

type modelEntry struct {
	v       Value
	expires int64 // 0: none
}

func (m *model) live(key string, now int64) (modelEntry, bool) {
	e, ok := m.m[key]
	if ok && e.expires != 0 && e.expires <= now {
		delete(m.m, key)
		m.expired++
		return modelEntry{}, false
	}
	return e, ok
}

func (m *model) stats() Stats {
	st := Stats{MaxBytes: fuzzBytes, Hits: m.hits, Misses: m.misses, Expired: m.expired}
	for k, e := range m.m {
		st.Items++
		st.Bytes += int64(len(k)+len(e.v.Str)) + EntryOverhead
	}
	return st
}

func keyErr(key string) error {
	switch {
	case key == "":
		return ErrEmptyKey
	case len(key) > MaxKeyLen:
		return ErrKeyTooLong
	}
	return nil
}

func deadline(ttl time.Duration, now int64) int64 {
	if ttl == 0 {
		return 0
	}
	return now + int64(ttl)
}

// fuzzOp reads one operation from b, runs it on d and on m, and fails t if
// they disagree. It returns the bytes it did not use.
func fuzzOp(t *testing.T, d *Dict, m *model, now *int64, b []byte) []byte {
	for len(b) < 4 {
		b = append(b, 0)
	}
	op, key, x, y := b[0]%12, fuzzKeys[int(b[1])%len(fuzzKeys)], b[2], b[3]
	ttl := fuzzTTLs[y%4]
	switch op {
	case 0:
		checkGet(t, d, m, key, *now)
	case 1:
		checkSet(t, d, m, key, StringValue(strings.Repeat(string(rune('a'+x%26)), int(x))), ttl, *now)
	case 2:
		checkSet(t, d, m, key, NumberValue(float64(int8(x))), ttl, *now)
	case 3:
		checkSet(t, d, m, key, BoolValue(x%2 == 1), ttl, *now)
	case 4:
		checkAdd(t, d, m, key, x, ttl, *now)
	case 5:
		checkIncr(t, d, m, key, x, y, ttl, *now)
	case 6:
		d.Delete(key)
		delete(m.m, key)
	case 7:
		checkTTL(t, d, m, key, *now)
	case 8:
		*now += int64(x) * int64(100*time.Millisecond)
	case 9:
		if x%4 == 0 {
			d.Flush()
			clear(m.m)
		}
	case 10: // larger than a shard: refused, nothing changes
		err := d.Set(key, StringValue(strings.Repeat("z", 5000)), ttl, *now)
		if want := keyErr(key); want == nil && !errors.Is(err, ErrTooLarge) || want != nil && err != want {
			t.Fatalf("Set(%.8q, huge) = %v", key, err)
		}
	case 11:
		if err := d.Set(key, Value{Kind: Kind(x % 3 * 4)}, -1, *now); err == nil {
			t.Fatalf("Set(%.8q) of kind %d with ttl -1 succeeded", key, x%3*4)
		}
	}
	return b[4:]
}

func checkGet(t *testing.T, d *Dict, m *model, key string, now int64) {
	got, ok := d.Get(key, now)
	e, want := m.live(key, now)
	if want {
		m.hits++
	} else {
		m.misses++
	}
	if ok != want || got != e.v {
		t.Fatalf("Get(%.8q) = %+v, %v; want %+v, %v", key, got, ok, e.v, want)
	}
}

func checkSet(t *testing.T, d *Dict, m *model, key string, v Value, ttl time.Duration, now int64) {
	err := d.Set(key, v, ttl, now)
	if want := keyErr(key); err != want {
		t.Fatalf("Set(%.8q) = %v, want %v", key, err, want)
	}
	if err == nil {
		m.m[key] = modelEntry{v, deadline(ttl, now)}
	}
}

func checkAdd(t *testing.T, d *Dict, m *model, key string, x byte, ttl time.Duration, now int64) {
	v := NumberValue(float64(x))
	added, err := d.Add(key, v, ttl, now)
	if want := keyErr(key); err != want {
		t.Fatalf("Add(%.8q) = %v, want %v", key, err, want)
	}
	if err != nil {
		return
	}
	_, present := m.live(key, now)
	if added == present {
		t.Fatalf("Add(%.8q) = %v with the key present: %v", key, added, present)
	}
	if added {
		m.m[key] = modelEntry{v, deadline(ttl, now)}
	}
}

func checkIncr(t *testing.T, d *Dict, m *model, key string, x, y byte, ttl time.Duration, now int64) {
	var init *float64
	if y&4 != 0 {
		init = f64(float64(y >> 3))
	}
	delta := float64(int8(x))
	got, err := d.Incr(key, delta, init, ttl, now)
	want, wantErr := keyErr(key), error(nil)
	if want == nil {
		e, ok := m.live(key, now)
		switch {
		case ok && e.v.Kind != Number:
			wantErr = ErrNotNumber
		case ok:
			e.v.Num += delta
			m.m[key] = e
		case init == nil:
			wantErr = ErrNotFound
		default:
			e = modelEntry{NumberValue(*init + delta), deadline(ttl, now)}
			m.m[key] = e
		}
		if wantErr == nil && got != e.v.Num {
			t.Fatalf("Incr(%.8q, %v) = %v, want %v", key, delta, got, e.v.Num)
		}
		want = wantErr
	}
	if err != want {
		t.Fatalf("Incr(%.8q) = %v, want %v", key, err, want)
	}
}

func checkTTL(t *testing.T, d *Dict, m *model, key string, now int64) {
	got, ok := d.TTL(key, now)
	e, want := m.live(key, now)
	var wantTTL time.Duration
	if want && e.expires != 0 {
		wantTTL = time.Duration(e.expires - now)
	}
	if ok != want || got != wantTTL {
		t.Fatalf("TTL(%.8q) = %v, %v; want %v, %v", key, got, ok, wantTTL, want)
	}
}

// FuzzOps decodes the input into operations (4 bytes each: operation, key,
// two arguments) and checks every result, and the stats after each, against
// the model.
func FuzzOps(f *testing.F) {
	f.Add([]byte("\x01\x00\x05\x01\x00\x00\x00\x00\x08\x00\x0b\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4096 {
			b = b[:4096]
		}
		d := New("fuzz", fuzzBytes)
		m := &model{m: make(map[string]modelEntry)}
		now := int64(0)
		for len(b) > 0 {
			b = fuzzOp(t, d, m, &now, b)
			if got, want := d.Stats(), m.stats(); got != want {
				t.Fatalf("Stats = %+v, want %+v", got, want)
			}
		}
		checkInvariants(t, d)
	})
}
