package http1

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
// (loop.Later: no recursion), and after pipelineBurst of them in one
// callback, in a callback of its own queued behind the loop's other work
// (loop.Execute): other connections' events run between, and each batch's
// exchanges are recycled. A client whose backlog passes
// server.max_buffered_per_conn meanwhile is not read until its turn.

// pipelineBurst is how many pipelined requests one callback begins before
// it lets the loop serve others.
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
	// Waiting for its turn, a client that pipelines faster than it gets
	// turns stops being read: gnet's buffer would keep all it sends.
	if c.c.InboundBuffered() > lp.l.Snapshot().Limits.MaxBuffered {
		c.pause()
	}
	lp.l.Execute(c.continueHead)
}

// Run implements loop.Task: nextPipelined's deferred read.
func (c *Conn) Run() { c.continueHead() }

// continueHead reads the buffered next head if c still waits for one (it
// may have closed since nextPipelined), reading the client again first.
func (c *Conn) continueHead() {
	if c.state != stHead || c.st != nil {
		return
	}
	if c.reads.Paused() {
		c.resume()
	}
	if c.c.InboundBuffered() > 0 {
		c.readHead()
	}
}
