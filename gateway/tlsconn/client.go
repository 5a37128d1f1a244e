package tlsconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gozer/gateway/loop"
)

// Dial runs a client handshake over conn, a connection the caller dialled
// off the loop (to an origin), within timeout, and returns a Conn to enroll
// into gnet in conn's place, with kind (the origin connection) as what it
// carries. The handshake blocks the dialling goroutine, which exists anyway;
// once the loop adopts the Conn (Adopt, in OnOpen) it is driven like a
// client's. Any goroutine; the Conn must not be used until adopted.
//
// ctx carries values to the config's callbacks (tls.CertificateRequestInfo's
// Context) and nothing else: it must not end, because crypto/tls would end
// the handshake by closing the wire, which is not the socket. timeout is the
// deadline, on the socket.
func Dial(ctx context.Context, conn net.Conn, config *tls.Config, timeout time.Duration, kind any) (*Conn, error) {
	c := &Conn{ctx: kind, dialed: true}
	c.w.c, c.w.net = c, conn
	c.tc = tls.Client(&c.w, config)
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if err := c.tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	cs := c.tc.ConnectionState()
	c.info = infoOf(&cs)
	// From now on the bytes come and go through gnet (which takes over conn's
	// socket): the enrollment that follows orders this before the loop's use.
	c.w.net = nil
	return c, nil
}

// Dialed reports whether c came from Dial and waits for Adopt.
func (c *Conn) Dialed() bool { return c.dialed && c.Conn == nil }

// Kind is what c carries (the origin connection Dial was given).
func (c *Conn) Kind() any { return c.ctx }

// Adopt makes gc, the socket gnet enrolled for a Dial'ed connection, c's
// transport on loop l; gc's context becomes c. Whatever crypto/tls read past
// the handshake is decrypted at the first fill. Loop goroutine, in OnOpen.
func (c *Conn) Adopt(gc gnet.Conn, l *loop.Loop) {
	c.Conn, c.l = gc, l
	c.state, c.more = stOpen, true
	gc.SetContext(c)
}
