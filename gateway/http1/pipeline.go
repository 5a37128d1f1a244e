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
// callback, in a callback of its own (loop.Execute), so that each batch's
// exchanges are recycled. Not fair yet: gnet v2.10 runs a task queued from
// the loop in the same drain of its task queue (poller.Trigger puts it in
// the urgent queue, which Polling empties, new tasks included), so a
// client's whole backlog is still served before the loop polls again (a
// review: another client's worst latency 836 ms behind 300,000 pipelined
// 404s, 786 ms before). A client whose backlog passes
// server.max_buffered_per_conn while it waits is not read meanwhile (over
// TLS that compares the decrypted bytes only).

// pipelineBurst is how many pipelined requests one callback begins before
// it queues the rest as a callback of its own.
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
		if c.c.OutboundBuffered() > c.lp.l.Snapshot().Limits.MaxBuffered {
			return // its answers hold it (done paused it): onWritable goes on
		}
		c.resume()
	}
	if c.c.InboundBuffered() > 0 {
		c.readHead()
	}
}
