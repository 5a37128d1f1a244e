package http1

import (
	"bytes"

	"github.com/panjf2000/gnet/v2"

	"gozer/gateway/peers"
)

// h2Preface is what an HTTP/2 client with prior knowledge sends first
// (RFC 9113 3.4); gateway/http2 reads it again.
var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// SetH2C names what takes a connection that starts with the HTTP/2 preface
// while listeners.proxy.h2c is on (gateway/http2's Loop.Accept). Call it
// before the loop serves.
func (lp *Loop) SetH2C(fn func(gnet.Conn, *peers.Peer)) { lp.h2c = fn }

// sniffH2C looks at the first bytes of a plain connection: the HTTP/2
// preface hands the connection over (true), a prefix of it waits for more
// (true); anything else is HTTP/1.1 (false).
func (c *Conn) sniffH2C(buf []byte) bool {
	lp := c.lp
	if lp.h2c == nil || c.drainClose&^drainBit != 0 || c.headStart != 0 || len(buf) == 0 || buf[0] != 'P' ||
		!lp.l.Snapshot().Config.Listeners.Proxy.H2C {
		return false
	}
	if len(buf) < len(h2Preface) {
		return bytes.HasPrefix(h2Preface, buf)
	}
	if !bytes.HasPrefix(buf, h2Preface) {
		return false
	}
	if !c.leave() { // as a push connection does (Hijack)
		return true
	}
	peer := c.peer
	c.peer = nil
	lp.h2c(c.c, peer)
	return true
}
