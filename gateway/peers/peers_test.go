package peers

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"},
		{"2001:db8:1:2::1", "2001:db8:1:2::"},
		{"fe80::1%eth0", "fe80::"},
	} {
		if got := Key(netip.MustParseAddr(tc.in)); got.String() != tc.want {
			t.Errorf("Key(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestConnectionCap(t *testing.T) {
	tab := New(2, 0)
	a := netip.MustParseAddr("192.0.2.1")
	p1, ok1 := tab.Open(a)
	_, ok2 := tab.Open(a)
	_, ok3 := tab.Open(a)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("opens = %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := tab.Open(netip.MustParseAddr("192.0.2.2")); !ok {
		t.Fatal("another address was refused")
	}
	// Two addresses of one IPv6 /64 are one client.
	v6 := New(1, 0)
	if _, ok := v6.Open(netip.MustParseAddr("2001:db8::1")); !ok {
		t.Fatal("first IPv6 connection refused")
	}
	if _, ok := v6.Open(netip.MustParseAddr("2001:db8::2")); ok {
		t.Fatal("a second address of the same /64 got its own allowance")
	}
	tab.Close(p1)
	if _, ok := tab.Open(a); !ok {
		t.Fatal("a closed connection's place was not given back")
	}
	if st := tab.Stats(); st.RefusedConns != 1 || st.Clients != 2 {
		t.Fatalf("stats = %+v, want 1 refused, 2 clients", st)
	}
}

func TestCloseForgetsIdleClients(t *testing.T) {
	tab := New(0, 0)
	a := netip.MustParseAddr("192.0.2.1")
	p, _ := tab.Open(a)
	q, _ := tab.Open(a)
	tab.Close(p)
	tab.CloseAddr(a)
	_ = q
	if st := tab.Stats(); st.Clients != 0 {
		t.Fatalf("clients = %d after every connection closed, want 0", st.Clients)
	}
}

func TestRequestCap(t *testing.T) {
	tab := New(0, 3)
	p, _ := tab.Open(netip.MustParseAddr("192.0.2.1"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	began := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tab.Begin(p, 0) {
				mu.Lock()
				began++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if began != 3 {
		t.Fatalf("%d requests in flight, want the cap of 3", began)
	}
	tab.End(p)
	if !tab.Begin(p, 0) {
		t.Fatal("an ended request's place was not given back")
	}
	if !tab.Begin(nil, 0) {
		t.Fatal("a connection without a peer (no limit) was refused")
	}
	if st := tab.Stats(); st.RefusedRequests != 47 {
		t.Fatalf("refused requests = %d, want 47", st.RefusedRequests)
	}
}

func TestPenalty(t *testing.T) {
	tab := New(0, 32)
	p, _ := tab.Open(netip.MustParseAddr("192.0.2.1"))
	tab.Penalize(p, 100)
	began := 0
	for range 10 {
		if tab.Begin(p, 50) {
			began++
		}
	}
	if began != 2 {
		t.Fatalf("%d requests in flight while penalized, want 32/16 = 2", began)
	}
	if !tab.Begin(p, 100) {
		t.Fatal("the penalty outlived its end")
	}
	none := New(0, 0)
	q, _ := none.Open(netip.MustParseAddr("192.0.2.1"))
	none.Penalize(q, 100)
	for range 100 {
		if !none.Begin(q, 50) {
			t.Fatal("a penalty applied without max_requests_per_ip")
		}
	}
}

// TestPenaltyOutlastsTheConnection: a penalized client that closes its
// connections and comes back is still penalized; Sweep forgets it once the
// penalty ended.
func TestPenaltyOutlastsTheConnection(t *testing.T) {
	tab := New(0, 16)
	a := netip.MustParseAddr("192.0.2.9")
	p, _ := tab.Open(a)
	until := time.Now().Add(time.Hour).UnixNano()
	tab.Penalize(p, until)
	tab.Close(p)
	q, _ := tab.Open(a)
	if !tab.Penalized(q, time.Now().UnixNano()) {
		t.Fatal("reconnecting shed the penalty")
	}
	tab.Close(q)
	tab.Sweep(time.Now().UnixNano())
	if entries(tab) != 1 || tab.Stats().Clients != 0 {
		t.Fatalf("%d entries, %d clients: want the penalized client kept, not counted as connected", entries(tab), tab.Stats().Clients)
	}
	tab.Sweep(until)
	if n := entries(tab); n != 0 {
		t.Fatalf("%d entries after the penalty ended and Sweep ran, want 0", n)
	}
}

// entries counts the table's peers, connected or kept.
func entries(tab *Table) int {
	n := 0
	for i := range tab.shards {
		n += len(tab.shards[i].m)
	}
	return n
}
