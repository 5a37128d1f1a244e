package ratelimit

import (
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestTakeTable(t *testing.T) {
	const sec = int64(time.Second)
	tests := []struct {
		name     string
		rate     Rate
		at       []int64 // request times (ns from 0)
		want     []bool
		lastWait int64 // the last request's wait when refused
	}{
		{"burst then refuse", NewRate(10, time.Second, 3, false), []int64{0, 0, 0, 0}, []bool{true, true, true, false}, sec / 10},
		{"refills at rate", NewRate(10, time.Second, 1, false), []int64{0, 0, sec / 10, sec / 10}, []bool{true, false, true, false}, sec / 10},
		{"burst 0 is 1", NewRate(1, time.Second, 0, false), []int64{0, 0, sec}, []bool{true, false, true}, 0},
		{"no rate admits all", Rate{}, []int64{0, 0, 0}, []bool{true, true, true}, 0},
		{"slow rate, burst 2", NewRate(1, time.Minute, 2, false), []int64{0, 0, 0}, []bool{true, true, false}, 0},
		{"idle refills to burst only", NewRate(1, time.Second, 2, false), []int64{0, 100 * sec, 100 * sec, 100 * sec}, []bool{true, true, true, false}, sec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStore(1000)
			var wait int64
			for i, at := range tc.at {
				ok, w := s.Take([]byte("k"), 1e18+at, tc.rate)
				if ok != tc.want[i] {
					t.Fatalf("request %d at %d: admitted %v; want %v", i, at, ok, tc.want[i])
				}
				wait = w
			}
			if tc.lastWait != 0 && wait != tc.lastWait {
				t.Errorf("last wait %d; want %d", wait, tc.lastWait)
			}
		})
	}
}

// TestRateChange: a bucket emptied under a slow rate is served at once under
// a faster one (a reload), as an empty bucket of that rate.
func TestRateChange(t *testing.T) {
	s := NewStore(100)
	slow, fast := NewRate(1, time.Minute, 2, false), NewRate(10, time.Second, 5, false)
	for range 3 {
		s.Take([]byte("k"), 0, slow)
	}
	if ok, _ := s.Take([]byte("k"), 1, fast); ok {
		t.Error("an empty bucket admitted at once under the new rate")
	}
	if ok, _ := s.Take([]byte("k"), 1+int64(time.Second)/10, fast); !ok {
		t.Error("not admitted one interval of the new rate later")
	}
}

// TestRateOverTime: a client asking far over its rate for 10 s gets rate·10 +
// burst requests, exactly.
func TestRateOverTime(t *testing.T) {
	s := NewStore(100)
	r := NewRate(100, time.Second, 20, false)
	admitted := 0
	for now := int64(0); now < 10e9; now += 1e6 { // 1000 requests per second
		if ok, _ := s.Take([]byte("k"), now, r); ok {
			admitted++
		}
	}
	if want := 100*10 + 20; admitted < want-1 || admitted > want+1 {
		t.Errorf("admitted %d in 10 s at 100/s burst 20; want %d ±1", admitted, want)
	}
}

// TestStoreBounded: 100,000 distinct keys into a store of 10,000 keep it at
// its bound; the most recent keys keep their state.
func TestStoreBounded(t *testing.T) {
	s := NewStore(10000)
	r := NewRate(1, time.Minute, 1, false)
	for i := range 100000 {
		s.Take([]byte("key"+strconv.Itoa(i)), 1, r)
	}
	if n := s.Len(); n > int64(s.Cap()) || n < int64(s.Cap())*9/10 {
		t.Errorf("store holds %d keys; want at most its cap %d (and near it)", n, s.Cap())
	}
	if e := s.Evicted(); e != 100000-s.Len() {
		t.Errorf("evicted %d; want %d", e, 100000-s.Len())
	}
	if ok, _ := s.Take([]byte("key99999"), 2, r); ok {
		t.Error("the most recent key lost its state")
	}
	// The map and list agree.
	total := 0
	for i := range s.shards {
		sh := &s.shards[i]
		n := 0
		for b := sh.head; b != nil; b = b.next {
			n++
		}
		if n != len(sh.m) {
			t.Fatalf("shard %d: list %d, map %d", i, n, len(sh.m))
		}
		total += n
	}
	if int64(total) != s.Len() {
		t.Errorf("shards hold %d; Len %d", total, s.Len())
	}
}

// TestTakeConcurrent: many goroutines on one key admit exactly what the
// bucket holds (run with -race).
func TestTakeConcurrent(t *testing.T) {
	s := NewStore(100)
	r := NewRate(1, time.Hour, 500, false)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for range 200 {
				if ok, _ := s.Take([]byte("k"), 1e9, r); ok {
					n++
				}
			}
			mu.Lock()
			admitted += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if admitted != 500 {
		t.Errorf("admitted %d; want the burst, 500", admitted)
	}
}

// TestClusterShare: a bucket given half the rate admits half.
func TestClusterShare(t *testing.T) {
	s := NewStore(100)
	r := NewRate(100, time.Second, 10, true)
	s.Take([]byte("k"), 0, r)
	ds := s.Drain(nil)
	if len(ds) != 1 || ds[0].Demand != 1 {
		t.Fatalf("drain %+v; want one key with demand 1", ds)
	}
	s.setShare(&ds[0], 0.5)
	admitted := 0
	for now := int64(1e9); now < 11e9; now += 1e6 {
		if ok, _ := s.Take([]byte("k"), now, r); ok {
			admitted++
		}
	}
	if admitted < 495 || admitted > 510 {
		t.Errorf("admitted %d in 10 s at half of 100/s; want about 500", admitted)
	}
	if ds := s.Drain(nil); len(ds) != 1 || ds[0].Demand != 10000 {
		t.Errorf("second drain %+v; want demand 10000", ds)
	}
	s.ResetShares()
	if ds := s.Drain(nil); len(ds) != 0 {
		t.Errorf("third drain %d keys; want none", len(ds))
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		in, want, err string
		kind          KeyKind
	}{
		{in: "ip", want: "ip", kind: KeyIP},
		{in: "ip/24", want: "ip/24", kind: KeyIP},
		{in: "ip/24/48", want: "ip/24/48", kind: KeyIP},
		{in: "ip/32/64", want: "ip", kind: KeyIP},
		{in: "header:X-Api-Key", want: "header:X-Api-Key", kind: KeyHeader},
		{in: "origin", want: "origin", kind: KeyOrigin},
		{in: "global", want: "global", kind: KeyGlobal},
		{in: "ip/33", err: "ipv4 prefix"},
		{in: "ip/24/129", err: "ipv6 prefix"},
		{in: "ip/", err: "prefix"},
		{in: "ip/024", err: "prefix"},
		{in: "header:", err: "header name"},
		{in: "header:a b", err: "header name"},
		{in: "cookie:x", err: "want ip"},
	}
	for _, tc := range tests {
		k, err := ParseKey(tc.in)
		if tc.err != "" {
			if err == nil || !contains(err.Error(), tc.err) {
				t.Errorf("ParseKey(%q) error %v; want one with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || k.String() != tc.want || k.Kind != tc.kind {
			t.Errorf("ParseKey(%q) = %v (%q), %v; want %q", tc.in, k, k.String(), err, tc.want)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

func TestAppendKeyPart(t *testing.T) {
	short := []byte("api-key-1")
	if got := AppendKeyPart([]byte("p"), short); string(got) != "papi-key-1" {
		t.Errorf("short value: %q", got)
	}
	long := make([]byte, 32<<10)
	a := AppendKeyPart(nil, long)
	long[100] = 1
	b := AppendKeyPart(nil, long)
	if len(a) != 17 || len(b) != 17 || string(a) == string(b) {
		t.Errorf("long values: %d and %d bytes, equal %v; want 17 each, distinct", len(a), len(b), string(a) == string(b))
	}
}

func TestAppendIP(t *testing.T) {
	k, _ := ParseKey("ip/24")
	key := func(a string) string { return string(k.AppendIP(nil, netip.MustParseAddr(a))) }
	if key("192.0.2.1") != key("192.0.2.200") || key("192.0.2.1") == key("192.0.3.1") {
		t.Error("ip/24 does not group a /24")
	}
	if key("::ffff:192.0.2.1") != key("192.0.2.9") {
		t.Error("an IPv4-mapped address is not its IPv4 address")
	}
	if key("2001:db8::1") != key("2001:db8::ffff:1") || key("2001:db8::1") == key("2001:db8:0:1::1") {
		t.Error("IPv6 is not grouped by /64")
	}
}

func TestDenyList(t *testing.T) {
	var d DenyList
	if d.Denied(netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("empty list denies")
	}
	d.SetConfigured([]netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, 0)
	p, _ := ParsePrefix("192.0.2.7")
	d.Add(p, 0)
	p6, _ := ParsePrefix("2001:db8::/32")
	d.Add(p6, 0)
	for _, tc := range []struct {
		a    string
		want bool
	}{
		{"198.51.100.99", true}, {"198.51.101.1", false}, {"192.0.2.7", true}, {"192.0.2.8", false},
		{"::ffff:192.0.2.7", true}, {"2001:db8:1::1", true}, {"2001:db9::1", false},
	} {
		if got := d.Denied(netip.MustParseAddr(tc.a)); got != tc.want {
			t.Errorf("Denied(%s) = %v; want %v", tc.a, got, tc.want)
		}
	}
	if !d.Remove(p) || d.Remove(p) || d.Denied(netip.MustParseAddr("192.0.2.7")) {
		t.Error("Remove did not lift 192.0.2.7 once")
	}
	if d.Remove(netip.MustParsePrefix("198.51.100.0/24")) {
		t.Error("Remove lifted a configured network")
	}
	// An entry with a deadline ends by itself.
	q, _ := ParsePrefix("203.0.113.0/24")
	d.Add(q, time.Now().Add(-time.Millisecond).UnixNano())
	if d.Denied(netip.MustParseAddr("203.0.113.5")) {
		t.Error("an expired entry still denies")
	}
	if n := len(d.Entries()); n != 2 {
		t.Errorf("%d entries; want 2 (config's and the IPv6 one): %+v", n, d.Entries())
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7": "192.0.2.7/32", "192.0.2.7/24": "192.0.2.0/24", "2001:db8::1": "2001:db8::1/128",
		"::ffff:192.0.2.0/120": "192.0.2.0/24", " 10.0.0.0/8 ": "10.0.0.0/8",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "192.0.2.1/33", "x", "::ffff:1.2.3.4/64", "1.2.3.4/-1"} {
		if _, err := ParsePrefix(in); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", in)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"ip", "ip/24", "ip/24/48", "header:X-Api-Key", "origin", "global", "ip/0/0", "ip//", "header:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		// What parses prints back to a spec that parses to the same.
		k2, err := ParseKey(k.String())
		if err != nil || k2 != k {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, k, k.String(), k2, err)
		}
		if k.Kind == KeyIP {
			if b := k.AppendIP(nil, netip.MustParseAddr("2001:db8::1")); len(b) != 17 {
				t.Fatalf("ip key of %d bytes", len(b))
			}
		}
	})
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"192.0.2.7", "192.0.2.0/24", "2001:db8::/32", "::ffff:192.0.2.0/120", "fe80::1%eth0", "0.0.0.0/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		if err != nil {
			return
		}
		if p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("%q → %v: not masked, mapped or zoned", s, p)
		}
		var d DenyList
		d.Add(p, 0)
		if !d.Denied(p.Addr()) {
			t.Fatalf("%v does not deny its own address", p)
		}
		if q, err := ParsePrefix(p.String()); err != nil || q != p {
			t.Fatalf("%v does not parse back: %v, %v", p, q, err)
		}
	})
}

// BenchmarkTake is the request path's cost of one limit: one key of 17
// bytes (an ip/24), a bucket that admits.
func BenchmarkTake(b *testing.B) {
	s := NewStore(100000)
	r := NewRate(1e9, time.Second, 1000, false)
	k, _ := ParseKey("ip/24")
	prefix := append([]byte("per-ip"), 0)
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
	}
	b.ReportAllocs()
	b.ResetTimer()
	var buf [64]byte
	for i := 0; b.Loop(); i++ {
		key := k.AppendIP(append(buf[:0], prefix...), addrs[i&1023])
		if ok, _ := s.Take(key, int64(i)*1000, r); !ok {
			b.Fatal("refused")
		}
	}
}

// BenchmarkTakeParallel: every core on distinct keys (the shards' locks).
func BenchmarkTakeParallel(b *testing.B) {
	s := NewStore(100000)
	r := NewRate(1e9, time.Second, 1000, false)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var buf [32]byte
		i := 0
		for pb.Next() {
			key := fmt.Appendf(buf[:0], "k%d", i&4095)
			s.Take(key, time.Now().UnixNano(), r)
			i++
		}
	})
}
