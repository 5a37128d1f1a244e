package http1

// drainFlag is a connection's drain mark (its top bit) and its count of
// requests (the rest, saturating), in the two bytes the Conn had free: an
// idle connection stays in its size class (TestConnSize).
type drainFlag uint16

const (
	drainBit = drainFlag(1) << 15
	// MaxRequestsPerConnectionCounted is the most requests a connection
	// counts: protect.max_requests_per_connection stays at or under it.
	MaxRequestsPerConnectionCounted = int(drainBit - 1)
)

func (d drainFlag) on() bool { return d&drainBit != 0 }
func (d *drainFlag) set()    { *d |= drainBit }

// maxRequestsReached counts a request begun on the connection and reports
// whether it is the last protect.max_requests_per_connection allows: its
// answer carries Connection: close and the connection ends after it. A
// client that keeps one connection for ever then goes through accept again,
// where the deny list and the new-connection rate see it.
func (c *Conn) maxRequestsReached() bool {
	n := c.drainClose &^ drainBit
	if n < drainBit-1 {
		n++
		c.drainClose = c.drainClose&drainBit | n
	}
	max := c.lp.l.Snapshot().Config.Protect.MaxRequestsPerConnection
	return max > 0 && int(n) >= max
}
