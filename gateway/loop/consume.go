package loop

import "github.com/panjf2000/gnet/v2"

// Consume drops the first n bytes c received; n <= 0 drops none. Call it,
// not c.Discard, with a count that may be 0: gnet's Discard(0) drops
// everything buffered (a partial head or frame waiting for its rest: an
// origin's head split over reads became a 502, a device's split frame a
// 1002). Discard(-1) stays the way to drop it all. Loop goroutine of c.
func Consume(c gnet.Conn, n int) {
	if n > 0 {
		_, _ = c.Discard(n)
	}
}

// Inbound is how many bytes c received that its kind has not read: over TLS
// the decrypted ones and the records not decrypted yet (the transport
// decrypts only as much as its buffer takes, the rest waits in gnet's).
// Loop goroutine of c.
func Inbound(c gnet.Conn) int {
	n := c.InboundBuffered()
	if r := Raw(c); r != c {
		n += r.InboundBuffered()
	}
	return n
}
