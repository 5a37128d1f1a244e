package origin

import (
	"testing"
	"time"

	"gozer/gateway/config"
)

func TestPoolReuseNewestAndEvictOldest(t *testing.T) {
	p := NewPool[int](3, 2)
	for i := 1; i <= 3; i++ {
		if !p.Reserve() {
			t.Fatalf("reserve %d refused under the cap", i)
		}
	}
	if p.Reserve() {
		t.Fatal("reserve over maxOpen accepted")
	}
	if !p.Put(1, 100) || !p.Put(2, 200) {
		t.Fatal("put under maxIdle refused")
	}
	if p.Put(3, 300) {
		t.Fatal("put over maxIdle accepted")
	}
	if c, ok := p.Get(); !ok || c != 2 {
		t.Fatalf("Get = %d, %v; want the newest (2)", c, ok)
	}
	p.Put(2, 200)
	var closed []int
	p.EvictIdle(150, func(c int) { closed = append(closed, c) })
	if len(closed) != 1 || closed[0] != 1 || p.Idle() != 1 {
		t.Fatalf("evicted %v, idle %d; want [1] and 1 left", closed, p.Idle())
	}
	if !p.Remove(2) || p.Remove(2) || p.Idle() != 0 {
		t.Fatal("Remove of an idle conn misbehaved")
	}
	p.Release()
	if !p.Reserve() {
		t.Fatal("reserve after release refused")
	}
}

func TestRoundRobinSkipsTriedServers(t *testing.T) {
	tab, err := NewTable(map[string]*config.Origin{
		"api": {Servers: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}, MaxConnectionsPerServer: 4, MaxIdlePerServer: 2, IdleTimeout: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	o, _ := tab.Get("api")
	ls := NewLoopState[int](tab)
	seen := map[string]int{}
	for i := 0; i < 6; i++ {
		seen[ls.Next(o, 0).Addr]++
	}
	for _, s := range o.Servers {
		if seen[s.Addr] != 2 {
			t.Fatalf("round robin uneven: %v", seen)
		}
	}
	for i := 0; i < 6; i++ {
		if s := ls.Next(o, 1<<1); s.Index == 1 {
			t.Fatal("Next returned a server already tried")
		}
	}
	if s := ls.Next(o, 0b111); s == nil {
		t.Fatal("Next with every server tried returned nil")
	}
	if _, err := NewTable(map[string]*config.Origin{"x": {Servers: []string{"no-port"}}}); err == nil {
		t.Fatal("server without a port accepted")
	}
	// A name is kept as it is: Discovery resolves it later, with the origin's resolver.
	tab2, err := NewTable(map[string]*config.Origin{"x": {Servers: []string{"svc.internal:80"}}})
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := tab2.Get("x"); o.Servers[0].Addr != "svc.internal:80" || string(o.DefaultHost) != "svc.internal:80" {
		t.Fatalf("name server kept as %q, default host %q", o.Servers[0].Addr, o.DefaultHost)
	}
}

// PoolOf gives discovered servers pools of their own and hands back the pool of a
// departed server whose slot a newcomer took.
func TestPoolOfFollowsDiscovery(t *testing.T) {
	tab, err := NewTable(map[string]*config.Origin{
		"api": {Servers: []string{"127.0.0.1:1", "127.0.0.1:2"}, MaxConnectionsPerServer: 4, MaxIdlePerServer: 2, IdleTimeout: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	o, _ := tab.Get("api")
	ls := NewLoopState[int](tab)
	tests := []struct {
		name      string
		srv       *Server
		wantSame  *Pool[int] // nil: a new pool
		wantStale *Pool[int]
	}{
		{"static server: its pool", o.Servers[0], ls.Pool(o, o.Servers[0]), nil},
		{"discovered past the static slots", newServer("127.0.0.1:9", 5, 1), nil, nil},
		{"newcomer in a departed server's slot", newServer("127.0.0.1:7", 1, 1), nil, ls.Pool(o, o.Servers[1])},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, stale := ls.PoolOf(o, tc.srv)
			if p == nil || stale != tc.wantStale || (tc.wantSame != nil && p != tc.wantSame) || (tc.wantSame == nil && p == tc.wantStale && p != nil) {
				t.Fatalf("PoolOf = %p, stale %p; want same %p, stale %p", p, stale, tc.wantSame, tc.wantStale)
			}
			if again, st := ls.PoolOf(o, tc.srv); again != p || st != nil {
				t.Fatal("second PoolOf for the same server made another pool")
			}
		})
	}
	// Slots PoolOf skipped (2..4) are nil: eviction must step over them.
	ls.EvictIdle(tab, time.Now().UnixNano(), func(int) {})
}
