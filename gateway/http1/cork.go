package http1

// Corking: the answers to a client's pipelined requests leave in one write.
//
// A connection whose next requests are already buffered gets their answers
// in the same callback (pipeline.go: up to pipelineBurst of them). Written
// one by one, each is a send syscall (about a quarter of the CPU of a
// pipeline of small answers); gathered, they leave in one write when the
// callback's tasks are done (loop.LaterLast), before the loop polls again:
// no answer waits longer than it would have, only the syscalls are fewer.
// Only whole answers cork (a response that streams is written as it comes,
// so that what the client has not read is what gnet holds: backpressure and
// the send-rate checks see it), and only while requests wait behind the one
// being answered. Bytes the connection writes in any other way (a streamed
// response, a big body piece, the connection handed to a push connection or
// a tunnel, a close) first send what is corked, so the order on the wire is
// always the order written. A connection that closes sends what it corked
// on its way out (gnet flushes a closing connection's buffer), except over
// TLS, whose transport is closed first (a bad record from the client).

// corkFreeMax is the largest cork buffer kept for reuse, corkFreeCount how
// many are kept.
const (
	corkFreeMax   = 64 << 10
	corkFreeCount = 16
)

// write sends b to the client, behind what c corked, or corks it when more
// requests wait to be answered. b is copied or written before it returns.
func (c *Conn) write(b []byte) {
	lp := c.lp
	if len(lp.corks) > 0 {
		if buf, ok := lp.corks[c]; ok {
			lp.corks[c] = append(buf, b...)
			return
		}
	}
	if c.c.InboundBuffered() > 0 {
		c.cork(b)
		return
	}
	_, _ = c.c.Write(b)
}

// cork starts gathering c's answers with b.
func (c *Conn) cork(b []byte) {
	lp := c.lp
	var buf []byte
	if n := len(lp.corkFree); n > 0 {
		buf, lp.corkFree = lp.corkFree[n-1], lp.corkFree[:n-1]
	}
	if lp.corks == nil {
		lp.corks = make(map[*Conn][]byte)
	}
	if len(lp.corks) == 0 {
		lp.l.LaterLast(lp.uncorkAll)
	}
	lp.corks[c] = append(buf, b...)
}

// corked is how many bytes c gathered and has not written yet.
func (c *Conn) corked() int {
	if len(c.lp.corks) == 0 {
		return 0
	}
	return len(c.lp.corks[c])
}

// uncork writes what c gathered, if anything. The write may close c (OnClose,
// nested): callers that go on with c check its state.
func (c *Conn) uncork() {
	lp := c.lp
	if len(lp.corks) == 0 {
		return
	}
	buf, ok := lp.corks[c]
	if !ok {
		return
	}
	delete(lp.corks, c)
	if c.state != stClosed {
		_, _ = c.c.Write(buf) // a failure closes c (OnClose, nested)
		c.account()
	}
	if cap(buf) <= corkFreeMax && len(lp.corkFree) < corkFreeCount {
		lp.corkFree = append(lp.corkFree, buf[:0])
	}
}

// uncorker writes every connection's gathered answers at the end of the
// callback (loop.LaterLast).
type uncorker struct{ lp *Loop }

// Run implements loop.Task. A write that fails closes its connection from
// inside it (OnClose, nested), which may cork more: the map is emptied to the
// end.
func (u uncorker) Run() {
	for len(u.lp.corks) > 0 {
		for c := range u.lp.corks {
			c.uncork()
		}
	}
}
