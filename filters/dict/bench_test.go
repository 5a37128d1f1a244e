package dict

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// benchKeys returns n keys the shape of a filter's: "auth:" and a token id.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "auth:" + strconv.Itoa(1e9+i*7919)
	}
	return keys
}

// offset gives each parallel goroutine its own walk through the keys.
var offset atomic.Uint64

// BenchmarkGetParallel reads a dictionary that holds every key (hits).
func BenchmarkGetParallel(b *testing.B) {
	keys := benchKeys(1 << 14)
	d := New("bench", 64<<20)
	v := StringValue(strings.Repeat("x", 32))
	for _, k := range keys {
		mustSet(b, d, k, v, 0, 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := offset.Add(7777)
		for pb.Next() {
			if _, ok := d.Get(keys[i&(1<<14-1)], 1); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

// BenchmarkSetParallel stores into a dictionary that holds every key
// (replace), and into one that holds a quarter of them (evict: each Set of a
// new key evicts, and reuses, an entry).
func BenchmarkSetParallel(b *testing.B) {
	keys := benchKeys(1 << 16)
	v := StringValue(strings.Repeat("x", 32))
	for _, c := range []struct {
		name     string
		maxBytes int64
	}{
		{"replace", 64 << 20},
		{"evict", int64(len(keys)) * entrySize(keys[0], v) / 4},
	} {
		b.Run(c.name, func(b *testing.B) {
			d := New("bench", c.maxBytes)
			for _, k := range keys {
				mustSet(b, d, k, v, 0, 0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := offset.Add(7777)
				for pb.Next() {
					if err := d.Set(keys[i&(1<<16-1)], v, 0, 1); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			if c.name == "evict" && d.Stats().Evictions == 0 {
				b.Error("no evictions")
			}
		})
	}
}

// BenchmarkIncr counts on one goroutine (spread over 1024 keys), and on all
// of them at once (spread, and one hot key: the worst case, one shard's lock).
func BenchmarkIncr(b *testing.B) {
	keys := benchKeys(1 << 10)
	zero := 0.0
	b.Run("serial", func(b *testing.B) {
		d := New("bench", 16<<20)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := d.Incr(keys[i&(1<<10-1)], 1, &zero, 0, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name string
		mask uint64
	}{{"parallel", 1<<10 - 1}, {"parallel-hot", 0}} {
		b.Run(c.name, func(b *testing.B) {
			d := New("bench", 16<<20)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := offset.Add(7777)
				for pb.Next() {
					if _, err := d.Incr(keys[i&c.mask], 1, &zero, 0, 1); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}
