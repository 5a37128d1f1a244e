package ratelimit

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestDenyListBound: added networks stay within protect.max_denied; an add
// past it drops an expired entry first, else an arbitrary one, counted; the
// new entry always holds.
func TestDenyListBound(t *testing.T) {
	var d DenyList
	d.SetConfigured([]netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, 3)
	addr := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32)
	}
	past := time.Now().Add(-time.Second).UnixNano()
	for i := range 3 {
		d.Add(addr(i), past)
	}
	for i := 3; i < 6; i++ { // the expired three make room: nothing evicted
		d.Add(addr(i), 0)
	}
	if n, e := len(d.Entries()), d.Evicted(); n != 4 || e != 0 {
		t.Fatalf("%d entries (config's and 3 added), %d evicted; want 4 and 0 (expired entries go first)", n, e)
	}
	for i := 6; i < 10; i++ {
		d.Add(addr(i), 0)
		if !d.Denied(addr(i).Addr()) {
			t.Fatalf("%v, just added, is not denied", addr(i))
		}
	}
	if n, e := len(d.Entries()), d.Evicted(); n != 4 || e != 4 {
		t.Fatalf("%d entries, %d evicted; want 4 (the bound, 3, and the config's) and 4", n, e)
	}
	d.Add(addr(9), 0) // already there: renewed, nothing evicted
	if e := d.Evicted(); e != 4 {
		t.Fatalf("renewing an entry evicted another (%d evicted)", e)
	}
	d.SetConfigured(nil, 1) // a lowered bound evicts down to it
	if n := len(d.Entries()); n != 1 {
		t.Fatalf("%d entries after the bound fell to 1", n)
	}
}

// TestDenyListFamilies: an added entry's length is looked up in its own
// family only.
func TestDenyListFamilies(t *testing.T) {
	var d DenyList
	for _, s := range []string{"2001:db8:1:2::/64", "0.0.0.0/8", "10.1.0.0/16", "2001:db8::5"} {
		p, _ := ParsePrefix(s)
		d.Add(p, 0)
	}
	for a, want := range map[string]bool{
		"2001:db8:1:2::99": true, "2001:db8:1:3::1": false, "2001:db8::5": true, "2001:db8::6": false,
		"0.1.2.3": true, "10.1.200.1": true, "10.2.0.1": false, "::a01:1": false, "::ffff:10.1.0.1": true,
	} {
		if got := d.Denied(netip.MustParseAddr(a)); got != want {
			t.Errorf("Denied(%s) = %v, want %v", a, got, want)
		}
	}
}

// TestDenyListConcurrent: loops asking while the admin API and filters add,
// renew and remove (run with -race).
func TestDenyListConcurrent(t *testing.T) {
	var d DenyList
	d.SetConfigured(nil, 500)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(w), byte(i >> 8), byte(i)}), 32)
				d.Add(p, time.Now().Add(time.Duration(i%3)*time.Millisecond).UnixNano())
				if i%7 == 0 {
					d.Remove(p)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 20000 {
				d.Denied(netip.AddrFrom4([4]byte{10, byte(w), byte(i >> 8), byte(i)}))
			}
		}()
	}
	wg.Wait()
	if n := len(d.Entries()); n > 500 {
		t.Fatalf("%d entries over the bound of 500", n)
	}
}

// BenchmarkDenyListAdd: one ban into a list of 100,000 (O(1): the list
// was rebuilt whole per ban before, 32 ms each at 40,000).
func BenchmarkDenyListAdd(b *testing.B) {
	var d DenyList
	d.SetConfigured(nil, 100000)
	for i := range 100000 {
		d.Add(netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x:%x::/64", i>>16, i&0xffff)), 0)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32), 0)
	}
}

// BenchmarkDenyListDenied: the request path's question with and without
// added entries.
func BenchmarkDenyListDenied(b *testing.B) {
	a := netip.MustParseAddr("192.0.2.1")
	b.Run("configured only", func(b *testing.B) {
		var d DenyList
		d.SetConfigured([]netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, 0)
		for b.Loop() {
			d.Denied(a)
		}
	})
	b.Run("with 1000 added /32 and /24", func(b *testing.B) {
		var d DenyList
		for i := range 1000 {
			d.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32), 0)
			d.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 0}), 24), 0)
		}
		for b.Loop() {
			d.Denied(a)
		}
	})
}
