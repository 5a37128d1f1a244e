package http2

// Turns: one connection's requests do not hold its loop.
//
// Why: OnData answered every whole frame gnet had read. A client that sends
// its requests in as few writes as it can, each HEADERS frame 13 bytes once
// HPACK indexed it, had about 5,000 requests begun per read (64 KiB), and a
// request answered without an origin (a 404, a 429, a filter's answer) ends
// inside its own Start: 50,000 of them held another client of the loop for
// up to 300 ms (TestHTTP2Fairness; 23 answers to the other client in all).
// HTTP/1.1 pipelining had the same fault (gateway/http1/pipeline.go).
//
// Now one OnData begins streamBurst streams at most; the frames after them
// wait where they are (gnet's buffer, TLS's plaintext, or the connection's
// partial-frame buffer) for the loop's next round of I/O (loop.Turn), so
// every other connection ready meanwhile is served before them. While it
// waits the connection is not read: what it holds is bounded by what was
// read before, and an EOF is not acted on until its frames are answered.

// streamBurst is how many streams one callback of a connection begins. A
// browser opens a page's streams in one write, up to max_concurrent_streams
// (100): they begin over a few rounds of the loop, each a few µs apart when
// the loop has little else to do.
const streamBurst = 32

// waitTurn stops reading c until its turn: what it sent after its last
// stream begun waits. Loop goroutine, at the end of OnData.
func (c *Conn) waitTurn() {
	if !c.turn {
		c.turn = true
		c.lp.l.Turn(c)
	}
	c.reads.Pause(c.lp.l, c.c)
}

// Run implements loop.Task: c's turn. It reads c again and answers the
// frames that waited.
func (c *Conn) Run() {
	c.turn = false
	if c.state == stClosed {
		return
	}
	if c.reads.Paused() {
		c.reads.Resume(c.lp.l, c.c)
	}
	c.OnData()
}
