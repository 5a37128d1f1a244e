package http1

import "gozer/gateway/loop"

// Partial heads: a request head that did not arrive in one read waits here,
// not in gnet's buffer.
//
// Why: when bytes wait in gnet's buffer and more arrive, gnet's Peek copies
// all of them into a fresh buffer (a new allocation each time: it goes back
// to gnet's pool only at a Discard). A head trickled in small pieces
// (slowloris) then cost a copy of everything before each piece and an
// allocation of up to 32 KiB per piece: a 30 KB head sent 10 bytes at a time
// left 61 MB of garbage (0.8 MB kept here), and at 100 bytes a time cost 17
// ms of CPU (9 ms kept here; the rest is the reads and wake-ups themselves).
// Measured with a client on loopback against /metrics'
// go_memstats_alloc_bytes_total and /proc's CPU time; TestHeadTrickled keeps
// the bound. Kept here, each byte is copied once, into a buffer the loop
// reuses.
//
// The buffers live in a per-loop map, not in Conn: an idle keep-alive
// connection stays in its size class (TestConnSize), and only connections
// in the middle of a head have one.

// headBufSize is the size of the loop's buffers for partial heads (a head
// that grows past it takes a larger one, left to the collector after).
const headBufSize = 4 << 10

// partialHead is the head bytes c kept from earlier reads (nil: none). Only
// a connection in the middle of a head (headStart != 0) can have one.
func (c *Conn) partialHead() []byte {
	if c.headStart == 0 || len(c.lp.partial) == 0 {
		return nil
	}
	return c.lp.partial[c]
}

// keepHead records b (c's partial head, a buffer of the loop's or grown
// from one) as c's.
func (c *Conn) keepHead(b []byte) {
	if c.lp.partial == nil {
		c.lp.partial = make(map[*Conn][]byte)
	}
	c.lp.partial[c] = b
}

// dropHead forgets c's partial head, its buffer back to the loop.
func (c *Conn) dropHead() {
	lp := c.lp
	b, ok := lp.partial[c]
	if !ok {
		return
	}
	delete(lp.partial, c)
	lp.heads.Put(b)
}

// pendingHead is what c has of its next head: its partial head grown by
// what gnet holds now (gnet's bytes stay there until consumeHead), or gnet's
// bytes alone. base is how many of them were kept from earlier reads.
//
// first looks at headWindow bytes at most when nothing was kept: readHead
// looks further only for a head that does not end in them.
func (c *Conn) pendingHead(maxHeaderBytes int, first bool) (head []byte, base int) {
	// No more than a head can hold (a byte over is the 431): when bytes
	// wait in gnet's buffer (pipelined requests whose turn comes in a later
	// callback: pipeline.go), Peek copies what it returns where gnet's ring
	// wraps, and all of a backlog per request would be O(backlog²). Nor, at
	// first, more than a usual head: a copy of max_header_bytes (and a
	// buffer gnet allocates for it) per pipelined request was a third of
	// the CPU of answering them.
	kept := c.partialHead()
	n := c.c.InboundBuffered()
	lim := maxHeaderBytes + 5 // + 4: leading empty lines
	if first && kept == nil {
		lim = min(lim, headWindow)
	}
	n = min(n, lim)
	buf, _ := c.c.Peek(n)
	if kept == nil {
		return buf, 0
	}
	base = len(kept)
	if len(buf) > 0 {
		kept = append(c.grow(kept, len(buf)), buf...)
		c.keepHead(kept)
	}
	return kept, base
}

// headWindow is how much of what is buffered a head is first looked for in.
const headWindow = 4 << 10

// grow makes room in kept for n more bytes. It doubles, as append would, but
// not past server.max_header_bytes (a head over it is refused): a head near
// the limit holds a buffer of the limit, not of twice it.
func (c *Conn) grow(kept []byte, n int) []byte {
	need := len(kept) + n
	if need <= cap(kept) {
		return kept
	}
	size := max(2*cap(kept), need)
	if lim := c.lp.l.Snapshot().Limits.MaxHeaderBytes + 4; size > lim { // + 4: leading empty lines
		size = max(lim, need)
	}
	b := append(make([]byte, 0, size), kept...)
	c.lp.heads.Put(kept) // a pool-sized one serves another head
	return b
}

// consumeHead takes from gnet what pendingHead's head used: n > 0, the
// complete head's length (what follows it, a body or the next request,
// stays in gnet for the stream), its partial head given back; n == 0, all
// of it, kept as c's partial head.
func (c *Conn) consumeHead(head []byte, base, n int) {
	if n > 0 {
		loop.Consume(c.c, n-base) // > 0: the head ends past what was kept
		if base > 0 {
			c.dropHead()
		}
		return
	}
	if len(head) == base {
		return // nothing new
	}
	if base == 0 {
		b := c.lp.heads.Get()
		c.keepHead(append(c.grow(b, len(head)), head...))
	}
	loop.Consume(c.c, len(head)-base)
}
