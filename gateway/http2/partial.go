package http2

import "gozer/gateway/loop"

// Partial frames: the start of a frame that did not arrive whole waits in
// the connection's own buffer, not in gnet's.
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

// pending is what c has to read: its partial frame grown by what gnet holds
// now, or gnet's bytes alone; took is how many came from gnet (consume
// discards them).
func (c *Conn) pending() (buf []byte, took int) {
	buf, _ = c.c.Peek(-1)
	took = len(buf)
	if len(c.part) > 0 && took > 0 {
		c.part = append(c.part, buf...)
	}
	if len(c.part) > 0 {
		return c.part, took
	}
	return buf, took
}

// consume ends a read of buf (what pending gave): the bytes past off, a
// frame not complete yet, become c's partial frame, and gnet's bytes are
// all taken.
func (c *Conn) consume(buf []byte, off, took int) {
	rest := buf[off:]
	switch {
	case len(rest) == 0:
		c.dropPart()
	case len(c.part) > 0: // buf is c.part: the rest moves to its front
		c.part = c.part[:copy(c.part, rest)]
	default:
		c.part = append(c.lp.parts.Get(), rest...)
	}
	loop.Consume(c.c, took)
}

// dropPart forgets c's partial frame, its buffer back to the loop.
func (c *Conn) dropPart() {
	if c.part != nil {
		c.lp.parts.Put(c.part)
		c.part = nil
	}
}
