package http1

import "gozer/gateway/loop"

// Pipelined requests: the next request already buffered when one ends.
//
// Why not read it at once: a request answered without an origin (a filter's
// answer, a 404, a 429) ends inside its own Start, so reading the next head
// from done recursed (readHead → Start → done → readHead ...) once per
// pipelined request: thousands deep for one client's single write, about
// 1.2 KB of stack each, every exchange kept until the callback returned
// (they are recycled at its end), and no other connection of the loop served
// meanwhile (a review measured a 5,000-request pipeline: another client's
// latency 17 → 247 ms, RSS 21 → 50 MiB; 172,000 deep with a larger
// max_buffered_per_conn, 1 s and 190 MiB).
//
// Now the next head is read after the current callback's stack unwound
// (loop.Later: no recursion), pipelineBurst of them at most in one callback
// (whatever connections they come from, in turn); then the connection waits
// for the loop's next round of I/O (loop.Turn), so every other connection
// ready meanwhile is served first, and the batch's exchanges are recycled.
// A connection that waits for its turn is not read (its reads are paused
// until then): neither what it sends meanwhile nor an EOF, which gnet would
// act on by closing it with its pipeline half answered (a client that
// half-closes after its requests, as `nc -N` does, got 17 answers).

// pipelineBurst is how many pipelined requests one callback begins before
// the rest wait for the loop's next round of I/O.
const pipelineBurst = 16

// nextPipelined reads c's next, already buffered, request soon. Loop
// goroutine.
func (c *Conn) nextPipelined() {
	lp := c.lp
	if lp.pipelined < pipelineBurst {
		lp.pipelined++
		lp.l.Later(c)
		return
	}
	c.uncork() // its answers so far go out before it waits
	if c.state == stClosed {
		return // the write failed
	}
	c.pause()
	if !c.waiting() {
		if lp.waiting == nil {
			lp.waiting = make(map[*Conn]struct{})
		}
		lp.waiting[c] = struct{}{}
		lp.l.Turn(c)
	}
}

// waiting tells whether c waits for its turn: its buffered requests are not
// read before.
func (c *Conn) waiting() bool {
	if len(c.lp.waiting) == 0 {
		return false
	}
	_, ok := c.lp.waiting[c]
	return ok
}

// pauseOverBacklog stops reading a client whose bytes waiting to be read
// passed server.max_buffered_per_conn: gnet's buffer would keep all it sends.
func (c *Conn) pauseOverBacklog() {
	if loop.Inbound(c.c) > c.lp.l.Snapshot().Limits.MaxBuffered {
		c.pause()
	}
}

// Run implements loop.Task: nextPipelined's deferred read, or c's turn.
func (c *Conn) Run() {
	delete(c.lp.waiting, c)
	c.continueHead()
}

// continueHead reads the buffered next head if c still waits for one (it
// may have closed since nextPipelined), reading the client again first.
func (c *Conn) continueHead() {
	if c.state != stHead || c.st != nil {
		return
	}
	if c.reads.Paused() {
		if c.c.OutboundBuffered() > c.lp.l.Snapshot().Limits.MaxBuffered {
			return // its answers hold it (done paused it): onWritable goes on
		}
		c.resume()
	}
	if c.c.InboundBuffered() > 0 {
		c.readHead()
	}
}
