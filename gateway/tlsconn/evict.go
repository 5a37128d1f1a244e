package tlsconn

import (
	"time"

	"gozer/gateway/loop"
)

// Handshake eviction (listeners.https.evict_handshakes_after).
//
// max_handshakes bounds the goroutines and memory that handshakes take; a
// connection takes its slot once its ClientHello is in (hello.go), so
// connections that send nothing, or part of a hello, take none.
// server.max_requests_per_ip stops one address from taking every slot; many
// addresses still can (a /64 each is cheap), with handshakes that stall (a
// whole ClientHello, then never the client's next flight), each holding its
// slot for a whole handshake_timeout while every other client is refused.
// So once the slots are full, a new handshake takes the place of one of its
// loop's, in this order:
//
//   - the oldest, if it has run at least evictAfter: a real client finishes
//     in a round trip or two, so under a flood the oldest handshakes are the
//     flood's;
//   - else, one that has run at least a quarter of evictAfter and whose
//     address holds more than twice what the newcomer's does in flight on
//     the node (requests and handshakes: peers.Peer.InFlight), the most of
//     those among the loop's fairScan oldest: a flood that opens handshakes
//     faster than evictAfter can age them, from addresses that each hold
//     many, does not refuse a client with little in flight. Equals never
//     evict each other this way, so the flood's own reconnects still meet the
//     refusal; and the quarter keeps a handshake that is merely running (a
//     real client a round trip away, behind a busy NAT address) from being
//     closed the moment it starts.
//
// A flood spread so thin that each address holds at most twice what a
// client holds (a few thousand addresses at the default bound) gains
// nothing from the share rule: only age then makes room. A burst of real
// clients from addresses that hold little, younger than evictAfter, still
// meets the plain refusal. Addresses are weighed whatever
// server.max_requests_per_ip is (accept counts every HTTPS client's); a
// crowd behind one NAT address is one busy address, whose handshakes a
// full table may evict for a client with little in flight.
//
// Each loop keeps its handshakes in the order they started, a list threaded
// through the Conns (no allocation, O(1) removal), which only that loop's
// goroutine touches. A loop evicts only its own: gnet spreads new
// connections over the loops, so each holds its share of a flood.

// fairScan bounds how many of a loop's handshakes a newcomer looks through
// for the address holding the most: at most that many list steps and atomic
// loads (unmeasured), for each newcomer with a whole hello that finds the
// table full and no handshake old enough, refused ones included.
const fairScan = 256

// hsQueue is one loop's handshakes in progress, oldest first. Loop goroutine
// only.
type hsQueue struct{ head, tail *Conn }

// push appends c, whose handshake just started.
func (q *hsQueue) push(c *Conn) {
	c.qPrev, c.qNext, c.queued = q.tail, nil, true
	if q.tail != nil {
		q.tail.qNext = c
	} else {
		q.head = c
	}
	q.tail = c
}

// remove takes c out if it is in; any number of calls.
func (q *hsQueue) remove(c *Conn) {
	if !c.queued {
		return
	}
	if c.qPrev != nil {
		c.qPrev.qNext = c.qNext
	} else {
		q.head = c.qNext
	}
	if c.qNext != nil {
		c.qNext.qPrev = c.qPrev
	} else {
		q.tail = c.qPrev
	}
	c.qPrev, c.qNext, c.queued = nil, nil, false
}

// victim is the oldest handshake still running that started at least after
// ago as of now (the loop's monotonic clock, ns); nil when there is none or
// after is 0 (never evict). A finished one stays on the list until the loop takes its
// connection over, and is passed by: its client is in.
func (q *hsQueue) victim(now int64, after time.Duration) *Conn {
	if after <= 0 {
		return nil
	}
	for c := q.head; c != nil && now-c.hsStart >= int64(after); c = c.qNext {
		if done, _, _ := c.w.hs.result(); !done {
			return c
		}
	}
	return nil
}

// hog is the running handshake, among the fairScan oldest, that started at
// or before born (the loop's monotonic clock) and whose client's address
// holds the most in flight on the node, if that is more than twice mine
// (the newcomer's address's, itself counted); nil otherwise.
func (q *hsQueue) hog(mine int32, born int64) *Conn {
	var best *Conn
	most, n := 2*mine, 0
	for c := q.head; c != nil && n < fairScan && c.hsStart <= born; c, n = c.qNext, n+1 {
		// The count first: an atomic load, where result takes a lock.
		if k := c.peer.InFlight(); k > most {
			if done, _, _ := c.w.hs.result(); !done {
				best, most = c, k
			}
		}
	}
	return best
}

// dequeue takes c off its loop's list, if it is on it. Loop goroutine.
func (c *Conn) dequeue() {
	if c.queued {
		c.srv.queue(c.l).remove(c)
	}
}

// queue is loop l's handshake list, made on first use. Loop goroutine.
func (s *Server) queue(l *loop.Loop) *hsQueue {
	if q, ok := s.queues.Load(l); ok {
		return q.(*hsQueue)
	}
	q, _ := s.queues.LoadOrStore(l, &hsQueue{})
	return q.(*hsQueue)
}

// evictFor makes room for nc, a new handshake on l, when every slot is
// taken: it closes one of l's handshakes (the oldest past evictAfter, else
// one past a quarter of it whose address holds more than twice what nc's
// does: see above), and reports whether it did. nc then takes a slot at
// once, over the bound until the evicted handshake's goroutine gives its
// own back (it ends as soon as it sees the close). Loop goroutine.
func (s *Server) evictFor(l *loop.Loop, nc *Conn) bool {
	if s.evictAfter <= 0 {
		return false // never evict
	}
	now, q := l.Mono(), s.queue(l)
	v, busy := q.victim(now, s.evictAfter), false
	if v == nil && nc.peer != nil {
		v, busy = q.hog(nc.peer.InFlight(), now-int64(s.evictAfter/4)), true
	}
	if v == nil {
		return false
	}
	s.stats.evicted.Add(1) // before the part, so that a read never sees more busy than all
	// One sampling key each: a flood of one kind must not hide the other's line.
	key, msg := "tls_handshake_evicted", "handshake closed to make room: max_handshakes in progress, and it was the loop's oldest"
	if busy {
		s.stats.evictedBusy.Add(1)
		key, msg = "tls_handshake_evicted_busy", "handshake closed to make room: max_handshakes in progress, and its address holds more than twice the newcomer's in flight"
	}
	l.Shared.Sampled.Warn(key).Str("client", v.w.hs.client).Str("for", nc.w.hs.client).
		Dur("age", time.Duration(now-v.hsStart)).Int32("address_in_flight", v.peer.InFlight()).
		Int32("newcomer_in_flight", nc.peer.InFlight()).Int64("max_handshakes", s.max).Msg(msg)
	v.evicted = true
	_ = l.EL.Close(v.Conn) // OnClose: off the list, and the goroutine's reads end
	s.inProgress.Add(1)
	return true
}
