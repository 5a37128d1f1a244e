package http2

import (
	"golang.org/x/net/http2"

	"gozer/gateway/loop"
	"gozer/gateway/telemetry"
)

// Partial frames: the start of a frame that did not arrive whole waits in
// the connection's own buffer, not in gnet's, and is completed from the next
// bytes before the frames after it are read where they are.
//
// Why (as gateway/http1's partial heads): when bytes wait in gnet's buffer
// and more arrive, gnet's Peek copies all of them into a fresh allocation.
// A 16 KiB DATA frame sent 10 bytes at a time left 14.1 MB of garbage in
// Gozer (TestFrameTrickled, which bounds it at 4 MB). Kept here, each byte
// is copied once. Over TLS the plaintext buffer of
// gateway/tlsconn already holds them; it costs a copy there too, no more.

// partBufSize is the size of the loop's buffers for partial frames: a
// frame of the default size and its header (a larger one takes a larger
// buffer, left to the collector after).
const partBufSize = 16<<10 + 9

// finishPart completes c's partial frame from what the client sent since,
// taking no more than the frame's own bytes from gnet (the frames after it
// are read where they are), and answers it once whole.
func (c *Conn) finishPart() {
	in, _ := c.c.Peek(-1)
	took := 0
	if len(c.part) < 9 {
		took = min(9-len(c.part), len(in))
		c.part = append(c.part, in[:took]...)
		if len(c.part) < 9 {
			loop.Consume(c.c, took)
			return
		}
	}
	n := frameLen(c.part)
	if n > int(c.set.maxFrame) {
		loop.Consume(c.c, took)
		c.fail(http2.ErrCodeFrameSize, telemetry.H2FrameSize, "frame over http2.max_frame_size")
		return
	}
	k := min(9+n-len(c.part), len(in)-took)
	c.part = append(c.part, in[took:took+k]...)
	loop.Consume(c.c, took+k)
	if len(c.part) == 9+n {
		c.readFrame(c.part)
		c.dropPart()
	}
}

// keepPart keeps rest, the start of a frame that did not arrive whole, in
// c's own buffer (the caller discards it from gnet's).
func (c *Conn) keepPart(rest []byte) {
	c.part = append(c.lp.parts.Get(), rest...)
}

// dropPart forgets c's partial frame, its buffer back to the loop.
func (c *Conn) dropPart() {
	if c.part != nil {
		c.lp.parts.Put(c.part)
		c.part = nil
	}
}
