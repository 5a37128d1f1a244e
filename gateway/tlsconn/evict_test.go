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

// TestHandshakeQueueHog: when nothing is old enough, the handshake to evict
// is the running one whose address holds the most in flight, if that is
// more than twice the newcomer's; never a finished one, never one of an
// address that holds as much as the newcomer's or just a little more, never
// one whose address is not counted (no peer: a nil Peer holds nothing).
func TestHandshakeQueueHog(t *testing.T) {
	tbl := peers.New(0, 0)
	peer := func(ip string, inFlight int) *peers.Peer {
		p, _ := tbl.Open(netip.MustParseAddr(ip))
		for range inFlight {
			tbl.Begin(p, 0)
		}
		return p
	}
	busy, busier, small := peer("192.0.2.1", 7), peer("192.0.2.2", 9), peer("192.0.2.3", 1)
	cases := []struct {
		name  string
		peers []*peers.Peer // the loop's handshakes, oldest first
		done  []int         // those finished
		mine  int32         // the newcomer's address's in flight
		want  int           // index into peers; -1: none
	}{
		{"the busiest address's", []*peers.Peer{busy, busier, small}, nil, 1, 1},
		{"oldest of the busiest's", []*peers.Peer{busier, busy, busier}, nil, 1, 0},
		{"a finished one passed by", []*peers.Peer{busier, busy}, []int{0}, 1, 1},
		{"over twice the newcomer's", []*peers.Peer{busy}, nil, 3, 0},
		{"not over twice", []*peers.Peer{busy, busier}, nil, 5, -1},
		{"equals", []*peers.Peer{busier}, nil, 9, -1},
		{"small addresses only", []*peers.Peer{small, small}, nil, 1, -1},
		{"addresses not counted", []*peers.Peer{nil, nil}, nil, 0, -1},
		{"none running", []*peers.Peer{busier}, []int{0}, 1, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &hsQueue{}
			conns := make([]*Conn, len(tc.peers))
			for i, p := range tc.peers {
				conns[i] = &Conn{peer: p}
				conns[i].w.hs = newHandshake(nil)
				q.push(conns[i])
			}
			for _, i := range tc.done {
				conns[i].w.hs.done = true
			}
			var want *Conn
			if tc.want >= 0 {
				want = conns[tc.want]
			}
			if got := q.hog(tc.mine); got != want {
				t.Errorf("hog %p, want %p (handshake %d)", got, want, tc.want)
			}
		})
	}
}
