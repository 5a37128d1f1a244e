package tlsconn

import (
	"net/netip"
	"testing"
	"time"

	"gozer/gateway/peers"
)

// TestHandshakeQueueVictim: the queue keeps handshakes oldest first through
// removals from anywhere, and the victim is the oldest running one old
// enough, never a finished one, never one when eviction is off.
func TestHandshakeQueueVictim(t *testing.T) {
	const ms = int64(time.Millisecond)
	a, b, c, d := &Conn{hsStart: 0}, &Conn{hsStart: 100 * ms}, &Conn{hsStart: 200 * ms}, &Conn{hsStart: 1500 * ms}
	name := map[*Conn]string{a: "a", b: "b", c: "c", d: "d", nil: "none"}
	cases := []struct {
		name    string
		removed []*Conn
		done    []*Conn
		now     int64
		after   time.Duration
		want    *Conn
	}{
		{"the oldest, old enough", nil, nil, 1200 * ms, time.Second, a},
		{"none old enough yet", nil, nil, 900 * ms, time.Second, nil},
		{"eviction off", nil, nil, 10_000 * ms, 0, nil},
		{"the head removed: the next", []*Conn{a}, nil, 1200 * ms, time.Second, b},
		{"a middle one removed", []*Conn{b}, nil, 1250 * ms, time.Second, a},
		{"finished ones passed by", nil, []*Conn{a, b}, 1250 * ms, time.Second, c},
		{"finished ones, the rest too young", nil, []*Conn{a, b}, 1150 * ms, time.Second, nil},
		{"all removed", []*Conn{d, b, a, c}, nil, 10_000 * ms, time.Second, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &hsQueue{}
			for _, x := range []*Conn{a, b, c, d} {
				x.w.hs = newHandshake(nil) // running
				q.push(x)
			}
			for _, x := range tc.removed {
				q.remove(x)
				q.remove(x) // twice: a no-op
			}
			for _, x := range tc.done {
				x.w.hs.done = true // as finish leaves it
			}
			got := q.victim(tc.now, tc.after)
			if got != tc.want {
				t.Errorf("victim %s, want %s", name[got], name[tc.want])
			}
			// The list still runs oldest first, both ways, without the removed.
			var fwd, back []string
			for x := q.head; x != nil; x = x.qNext {
				fwd = append(fwd, name[x])
			}
			for x := q.tail; x != nil; x = x.qPrev {
				back = append([]string{name[x]}, back...)
			}
			if len(fwd) != 4-len(tc.removed) || len(fwd) != len(back) {
				t.Fatalf("list %v (backwards %v) after removing %d", fwd, back, len(tc.removed))
			}
			for i := range fwd {
				if fwd[i] != back[i] || (i > 0 && fwd[i] < fwd[i-1]) {
					t.Fatalf("list %v, backwards %v: not oldest first", fwd, back)
				}
			}
			for _, x := range []*Conn{a, b, c, d} {
				q.remove(x)
			}
			if q.head != nil || q.tail != nil {
				t.Fatal("the list is not empty once every handshake left it")
			}
		})
	}
}

// TestHandshakeQueueHog: when nothing is old enough for age, the handshake
// to evict is the running one, old enough for its share, whose address
// holds the most in flight, if that is more than twice the newcomer's;
// never a finished one, a young one, one past the first fairScan, one of an
// address that holds as much as the newcomer's or just up to twice, nor one
// whose address is not counted (a nil Peer holds nothing).
func TestHandshakeQueueHog(t *testing.T) {
	tbl := peers.New(0, 0)
	peer := func(ip string, inFlight int) *peers.Peer {
		p, _ := tbl.Open(netip.MustParseAddr(ip))
		for range inFlight {
			tbl.Begin(p, 0)
		}
		return p
	}
	busy, busier, small := peer("192.0.2.1", 6), peer("192.0.2.2", 9), peer("192.0.2.3", 1)
	type hs struct {
		peer  *peers.Peer
		start int64 // the loop's clock
		done  bool
	}
	const born = 100 // handshakes started after it are too young
	many := make([]hs, fairScan+1)
	for i := range many {
		many[i] = hs{small, 0, false}
	}
	many[fairScan] = hs{busier, 0, false} // past the scan
	cases := []struct {
		name string
		hss  []hs // the loop's handshakes, oldest first
		mine int32
		want int // index into hss; -1: none
	}{
		{"the busiest address's", []hs{{busy, 0, false}, {busier, 0, false}, {small, 0, false}}, 1, 1},
		{"the oldest of the busiest's", []hs{{busier, 0, false}, {busy, 0, false}, {busier, 50, false}}, 1, 0},
		{"a finished one passed by", []hs{{busier, 0, true}, {busy, 0, false}}, 1, 1},
		{"over twice the newcomer's", []hs{{busy, 0, false}}, 2, 0},
		{"exactly twice", []hs{{busy, 0, false}}, 3, -1},
		{"equals", []hs{{busier, 0, false}}, 9, -1},
		{"small addresses only", []hs{{small, 0, false}, {small, 0, false}}, 1, -1},
		{"too young", []hs{{busier, born + 1, false}}, 1, -1},
		{"born exactly then", []hs{{busier, born, false}}, 1, 0},
		{"the young behind an old one", []hs{{busy, 0, false}, {busier, born + 1, false}}, 1, 0},
		{"past the first fairScan", many, 1, -1},
		{"addresses not counted", []hs{{nil, 0, false}}, 0, -1},
		{"none running", []hs{{busier, 0, true}}, 1, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &hsQueue{}
			index := map[*Conn]int{nil: -1}
			for i, h := range tc.hss {
				c := &Conn{peer: h.peer, hsStart: h.start}
				c.w.hs = newHandshake(nil)
				c.w.hs.done = h.done // as finish leaves it
				q.push(c)
				index[c] = i
			}
			if got := index[q.hog(tc.mine, born)]; got != tc.want {
				t.Errorf("hog is handshake %d, want %d", got, tc.want)
			}
		})
	}
}
