package origin

import (
	"fmt"
	"math"
	"sync"
	"testing"
)

// set builds a static set of servers with the given weights.
func set(weights ...int) *ServerSet {
	list := make([]*Server, len(weights))
	for i, w := range weights {
		list[i] = newServer(fmt.Sprintf("10.0.0.%d:80", i+1), i, w)
	}
	return NewServerSet(list, 1)
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    Policy
		wantErr bool
	}{
		{"", LeastOutstanding, false},
		{"p2c", LeastOutstanding, false},
		{"least_outstanding", LeastOutstanding, false},
		{"round_robin", RoundRobin, false},
		{"random", 0, true},
	}
	for _, tc := range tests {
		got, err := ParsePolicy(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// Traffic follows the weights for both policies when nothing is outstanding.
func TestBalancerFollowsWeights(t *testing.T) {
	tests := []struct {
		name    string
		policy  Policy
		weights []int
	}{
		{"round robin equal", RoundRobin, []int{1, 1, 1}},
		{"round robin weighted", RoundRobin, []int{1, 2, 5}},
		{"p2c equal", LeastOutstanding, []int{1, 1, 1, 1}},
		{"p2c weighted", LeastOutstanding, []int{1, 3}},
		{"p2c weighted three", LeastOutstanding, []int{2, 3, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := set(tc.weights...)
			b := NewBalancer(tc.policy, s)
			rnd := NewRand(7)
			total := 0
			for _, w := range tc.weights {
				total += w
			}
			const n = 40000
			got := map[*Server]int{}
			for range n {
				got[b.Pick(0, rnd.Uint32(), t0)]++
			}
			for _, srv := range s.List {
				want := float64(n) * float64(srv.Weight) / float64(total)
				if math.Abs(float64(got[srv])-want) > 0.05*want+50 {
					t.Errorf("%s (weight %d) got %d picks, want about %.0f", srv.Addr, srv.Weight, got[srv], want)
				}
			}
		})
	}
}

func TestRoundRobinIsSmooth(t *testing.T) {
	s := set(5, 1, 1)
	// nginx's smooth order for 5,1,1: a a b a c a a — never five a in a row.
	want := []int{0, 0, 1, 0, 2, 0, 0}
	for i, p := range s.wheel {
		if int(p) != want[i] {
			t.Fatalf("wheel = %v, want %v", s.wheel, want)
		}
	}
}

// P2C prefers the server with fewer outstanding attempts per unit of weight.
func TestP2CLeastOutstanding(t *testing.T) {
	tests := []struct {
		name        string
		weights     []int
		outstanding []int64
		want        int // index that must win every two-server draw
	}{
		{"fewer outstanding wins", []int{1, 1}, []int64{5, 1}, 1},
		{"weight scales the load", []int{4, 1}, []int64{6, 2}, 0}, // 6/4 < 2/1
		{"heavy but overloaded loses", []int{4, 1}, []int64{12, 2}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := set(tc.weights...)
			for i, o := range tc.outstanding {
				s.List[i].outstanding.Store(o)
			}
			b := NewBalancer(LeastOutstanding, s)
			rnd := NewRand(3)
			for range 1000 {
				if got := b.Pick(0, rnd.Uint32(), t0); got != s.List[tc.want] {
					t.Fatalf("picked %s, want %s", got.Addr, s.List[tc.want].Addr)
				}
			}
		})
	}
}

// Start and Done move the counters P2C reads: a server busy with attempts stops
// getting new ones.
func TestP2CStartDoneSteers(t *testing.T) {
	s := set(1, 1, 1)
	b := NewBalancer(LeastOutstanding, s)
	rnd := NewRand(11)
	for range 30 {
		b.Start(b.Pick(0, rnd.Uint32(), t0))
	}
	for _, srv := range s.List {
		if o := srv.Outstanding(); o < 8 || o > 12 {
			t.Fatalf("outstanding spread %d/%d/%d: P2C did not level the load", s.List[0].Outstanding(), s.List[1].Outstanding(), s.List[2].Outstanding())
		}
	}
	for _, srv := range s.List {
		for srv.Outstanding() > 0 {
			b.Done(srv)
		}
	}
}

// Pick's order: untried and available, then untried, then available, then any.
func TestBalancerSkipsTriedAndUnavailable(t *testing.T) {
	tests := []struct {
		name    string
		tried   []int
		ejected []int
		down    []int
		allowed []int // the only acceptable picks
	}{
		{"nothing excluded", nil, nil, nil, []int{0, 1, 2, 3}},
		{"skip tried", []int{0, 1}, nil, nil, []int{2, 3}},
		{"skip ejected", nil, []int{1, 2}, nil, []int{0, 3}},
		{"skip down", nil, nil, []int{0, 3}, []int{1, 2}},
		{"skip tried and ejected", []int{0}, []int{1}, []int{2}, []int{3}},
		{"untried beats available", []int{0, 1}, []int{2, 3}, nil, []int{2, 3}},
		{"all tried: an available one", []int{0, 1, 2, 3}, []int{0, 1, 3}, nil, []int{2}},
		{"all tried and out: any", []int{0, 1, 2, 3}, []int{0, 1}, []int{2, 3}, []int{0, 1, 2, 3}},
	}
	for _, policy := range []Policy{LeastOutstanding, RoundRobin} {
		for _, tc := range tests {
			t.Run(policy.String()+"/"+tc.name, func(t *testing.T) {
				s := set(1, 1, 1, 1)
				var tried uint64
				for _, i := range tc.tried {
					tried |= s.List[i].Bit()
				}
				for _, i := range tc.ejected {
					s.List[i].ejectedTill.Store(t0 + sec)
				}
				for _, i := range tc.down {
					s.List[i].down.Store(true)
				}
				b := NewBalancer(policy, s)
				rnd := NewRand(5)
				ok := map[*Server]bool{}
				for _, i := range tc.allowed {
					ok[s.List[i]] = true
				}
				seen := map[*Server]bool{}
				for range 400 {
					p := b.Pick(tried, rnd.Uint32(), t0)
					if !ok[p] {
						t.Fatalf("picked %s, allowed %v", p.Addr, tc.allowed)
					}
					seen[p] = true
				}
				if len(seen) != len(ok) {
					t.Fatalf("picked %d distinct servers of the %d allowed", len(seen), len(ok))
				}
				// An ejection ends by itself.
				if len(tc.ejected) > 0 && len(tc.tried) == 0 && len(tc.down) == 0 {
					for _, i := range tc.ejected {
						if !s.List[i].Available(t0+sec) || s.List[i].Available(t0+sec-1) {
							t.Fatal("ejection did not end exactly at its time")
						}
					}
				}
			})
		}
	}
}

func TestBalancerEdgeCases(t *testing.T) {
	if NewBalancer(LeastOutstanding, NewServerSet(nil, 0)).Pick(0, 1, t0) != nil {
		t.Fatal("empty set gave a server")
	}
	one := set(1)
	one.List[0].down.Store(true)
	b := NewBalancer(RoundRobin, one)
	if b.Pick(1, 1, t0) != one.List[0] {
		t.Fatal("the only server, tried and down, was not returned")
	}
	if b.Healthy(t0) {
		t.Fatal("Healthy with the only server down")
	}
	// A slot past 63 has no bit: it is never treated as tried.
	big := newServer("10.0.0.9:80", 70, 1)
	if big.Bit() != 0 {
		t.Fatal("slot 70 has a bit")
	}
	// Weights far over the wheel's size are scaled, not allowed to blow it up.
	s := set(100000, 1)
	if len(s.wheel) > maxWheel+2 || len(s.wheel) < 2 {
		t.Fatalf("wheel of %d entries", len(s.wheel))
	}
}

func TestBalancerConcurrentPicks(t *testing.T) {
	s := set(1, 2, 3)
	for _, policy := range []Policy{LeastOutstanding, RoundRobin} {
		b := NewBalancer(policy, s)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := NewRand(uint32(g + 1))
				for range 10000 {
					srv := b.Pick(0, rnd.Uint32(), t0)
					b.Start(srv)
					b.Done(srv)
				}
			}()
		}
		wg.Wait()
		for _, srv := range s.List {
			if srv.Outstanding() != 0 {
				t.Fatalf("%s: outstanding %d after balanced Start/Done", policy, srv.Outstanding())
			}
		}
	}
}

func TestRand(t *testing.T) {
	r := NewRand(0)
	seen := map[uint32]bool{}
	for range 1000 {
		v := r.Uint32()
		if v == 0 || seen[v] {
			t.Fatal("xorshift repeated or hit zero")
		}
		seen[v] = true
	}
	for _, n := range []int{1, 2, 7, 1000} {
		for _, x := range []uint32{0, 1, math.MaxUint32} {
			if b := below(x, n); b < 0 || b >= n {
				t.Fatalf("below(%d, %d) = %d", x, n, b)
			}
		}
	}
}
