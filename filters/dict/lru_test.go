package dict

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// checkInvariants walks every shard: the list and the map hold the same
// entries, linked both ways, and the bytes are their costs' sum, within the
// shard's budget.
func checkInvariants(t testing.TB, d *Dict) {
	t.Helper()
	var budgets int64
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		n, sum := 0, int64(0)
		for e := s.head.next; e != &s.head; e = e.next {
			if e.next.prev != e || e.prev.next != e {
				t.Fatalf("shard %d: broken links at %q", i, e.key)
			}
			if s.m[e.key] != e {
				t.Fatalf("shard %d: %q listed but not mapped", i, e.key)
			}
			if e.size != entrySize(e.key, e.val) {
				t.Fatalf("shard %d: %q costs %d, want %d", i, e.key, e.size, entrySize(e.key, e.val))
			}
			if d.shardOf(e.key) != s {
				t.Fatalf("shard %d: %q belongs to another shard", i, e.key)
			}
			n++
			sum += e.size
		}
		if n != len(s.m) || sum != s.bytes || s.bytes > s.budget || s.nfree > maxFree {
			t.Fatalf("shard %d: %d listed, %d mapped, %d bytes counted, %d summed, budget %d, %d free",
				i, n, len(s.m), s.bytes, sum, s.budget, s.nfree)
		}
		budgets += s.budget
		s.mu.Unlock()
	}
	if budgets > d.maxBytes {
		t.Fatalf("shard budgets sum to %d > %d", budgets, d.maxBytes)
	}
}

// keysOfShard returns n keys of 6 bytes that fall in the same shard of d.
func keysOfShard(d *Dict, n int) []string {
	var keys []string
	target := d.shardOf("k10000")
	for i := 10000; len(keys) < n; i++ {
		if k := "k" + strconv.Itoa(i); d.shardOf(k) == target {
			keys = append(keys, k)
		}
	}
	return keys
}

// order returns the keys of key's shard, most recent first.
func order(d *Dict, key string) string {
	s := d.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for e := s.head.next; e != &s.head; e = e.next {
		keys = append(keys, e.key)
	}
	return strings.Join(keys, " ")
}

func TestLRU(t *testing.T) {
	cost := entrySize("k10000", NumberValue(0))
	// Room for three numbers a shard.
	newDict := func() (*Dict, []string) {
		d := New("lru", 3*cost*Shards)
		return d, keysOfShard(d, 5)
	}
	type op func(d *Dict, k []string)
	set := func(i int) op {
		return func(d *Dict, k []string) { mustSet(t, d, k[i], NumberValue(float64(i)), 0, 0) }
	}
	tests := []struct {
		name      string
		ops       []op
		want      []int // the shard's keys, most recent first
		evictions int64
		expired   int64
	}{
		{"insertion order", []op{set(0), set(1), set(2)}, []int{2, 1, 0}, 0, 0},
		{"oldest evicted", []op{set(0), set(1), set(2), set(3)}, []int{3, 2, 1}, 1, 0},
		{"get refreshes", []op{set(0), set(1), set(2),
			func(d *Dict, k []string) { d.Get(k[0], 0) }, set(3)}, []int{3, 0, 2}, 1, 0},
		{"incr refreshes", []op{set(0), set(1), set(2),
			func(d *Dict, k []string) { d.Incr(k[0], 1, nil, 0, 0) }, set(3)}, []int{3, 0, 2}, 1, 0},
		{"set refreshes", []op{set(0), set(1), set(2), set(0), set(3)}, []int{3, 0, 2}, 1, 0},
		{"ttl and add do not", []op{set(0), set(1), set(2),
			func(d *Dict, k []string) { d.TTL(k[0], 0); d.Add(k[0], NumberValue(9), 0, 0) }, set(3)}, []int{3, 2, 1}, 1, 0},
		{"expired tail counts as expired", []op{
			func(d *Dict, k []string) { mustSet(t, d, k[0], NumberValue(0), time.Second, 0) },
			set(1), set(2),
			func(d *Dict, k []string) { mustSet(t, d, k[3], NumberValue(3), 0, 2*sec) }}, []int{3, 2, 1}, 0, 1},
		{"a growing entry evicts others, not itself", []op{set(0), set(1), set(2),
			func(d *Dict, k []string) { mustSet(t, d, k[1], StringValue(strings.Repeat("x", int(cost))), 0, 0) }},
			[]int{1, 2}, 1, 0},
		{"an entry of the whole budget", []op{set(0), set(1), set(2),
			func(d *Dict, k []string) {
				mustSet(t, d, k[4], StringValue(strings.Repeat("x", int(d.MaxEntryBytes()-entrySize(k[4], NumberValue(0))))), 0, 0)
			}}, []int{4}, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, k := newDict()
			for _, op := range tt.ops {
				op(d, k)
			}
			var want []string
			for _, i := range tt.want {
				want = append(want, k[i])
			}
			if got := order(d, k[0]); got != strings.Join(want, " ") {
				t.Errorf("order = %q, want %q", got, strings.Join(want, " "))
			}
			st := d.Stats()
			if st.Evictions != tt.evictions || st.Expired != tt.expired {
				t.Errorf("evictions %d, expired %d; want %d, %d", st.Evictions, st.Expired, tt.evictions, tt.expired)
			}
			checkInvariants(t, d)
		})
	}
}

// TestByteBound runs random operations of random sizes on a small dictionary:
// its bytes never exceed its bound, and ErrTooLarge comes only for an entry
// larger than a shard.
func TestByteBound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	d := New("bound", 64<<10+7) // not a multiple of Shards: the remainder stays unused
	now := int64(0)
	for i := range 50000 {
		key := "key-" + strconv.Itoa(r.IntN(3000))
		v := StringValue(strings.Repeat("v", r.IntN(2500)))
		ttl := time.Duration(r.IntN(3)) * time.Second
		var err error
		switch r.IntN(6) {
		case 0, 1:
			err = d.Set(key, v, ttl, now)
		case 2:
			_, err = d.Add(key, v, ttl, now)
		case 3:
			_, err = d.Incr(key, 1, f64(0), ttl, now)
		case 4:
			d.Get(key, now)
		case 5:
			d.Delete(key)
		}
		if errors.Is(err, ErrTooLarge) && entrySize(key, v) <= d.MaxEntryBytes() {
			t.Fatalf("op %d: ErrTooLarge for an entry of %d bytes", i, entrySize(key, v))
		} else if err != nil && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrNotNumber) {
			t.Fatalf("op %d: %v", i, err)
		}
		if st := d.Stats(); st.Bytes > st.MaxBytes {
			t.Fatalf("op %d: %d bytes > %d", i, st.Bytes, st.MaxBytes)
		}
		if i%5000 == 0 {
			checkInvariants(t, d)
		}
		now += int64(r.IntN(int(100 * time.Millisecond)))
	}
	checkInvariants(t, d)
	if st := d.Stats(); st.Evictions == 0 || st.Expired == 0 {
		t.Fatalf("the test did not exercise eviction and expiry: %+v", st)
	}
}

// TestMemoryAccounting checks that the accounted bytes are near what the
// heap really holds for a dictionary's entries.
func TestMemoryAccounting(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a dictionary with 200k entries")
	}
	const n = 200000
	if size := unsafe.Sizeof(entry{}); size != 80 {
		t.Logf("an entry is %d bytes (the package comment says 80)", size)
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	d := New("mem", 1<<30)
	for i := range n {
		key := "user:" + strconv.Itoa(1e9+i) + ":auth" // 20 bytes, allocated here, held by d alone
		mustSet(t, d, key, StringValue(strings.Repeat("x", 16)+strconv.Itoa(i%10)), 0, 0)
	}
	used := heap() - before
	accounted := d.Stats().Bytes
	ratio := float64(used) / float64(accounted)
	t.Logf("%d entries: heap %d bytes (%.0f an entry), accounted %d (%.0f an entry), ratio %.2f",
		n, used, float64(used)/n, accounted, float64(accounted)/n, ratio)
	if ratio < 0.6 || ratio > 1.4 {
		t.Errorf("heap/accounted = %.2f: EntryOverhead is off", ratio)
	}
	runtime.KeepAlive(d)
}

// TestFreeList: removed entries are reused, at most maxFree a shard kept.
func TestFreeList(t *testing.T) {
	d := New("free", 1<<20)
	keys := keysOfShard(d, 2*maxFree)
	for _, k := range keys {
		mustSet(t, d, k, StringValue(k), 0, 0)
	}
	for _, k := range keys {
		d.Delete(k)
	}
	s := d.shardOf(keys[0])
	if s.nfree != maxFree {
		t.Fatalf("%d free entries, want %d", s.nfree, maxFree)
	}
	for _, k := range keys[:maxFree] {
		mustSet(t, d, k, NumberValue(1), 0, 0)
	}
	if s.nfree != 0 || s.free != nil {
		t.Fatalf("%d free entries left after reuse", s.nfree)
	}
	checkInvariants(t, d)
}
