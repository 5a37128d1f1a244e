package tlsconn

import (
	"testing"
	"time"
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
