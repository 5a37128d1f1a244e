package tlsconn

import (
	"io"
	"net"
)

// The reading side of gnet.Conn, over the plaintext. A slice returned by
// Peek or Next stays valid until the next Discard, Next or Read, or the end
// of the callback, as gnet's own.

// Peek returns the first n plaintext bytes (n < 0: all there are now).
func (c *Conn) Peek(n int) ([]byte, error) {
	c.fill()
	if n < 0 || n > len(c.plain) {
		if n > len(c.plain) {
			return c.plain, io.ErrShortBuffer
		}
		return c.plain, nil
	}
	return c.plain[:n], nil
}

// Discard drops the first n plaintext bytes (n < 0: all).
func (c *Conn) Discard(n int) (int, error) {
	if n < 0 || n >= len(c.plain) {
		n = len(c.plain)
		c.releasePlain()
		switch {
		case c.notified && c.dialed:
			c.l.LaterLast((*closeNotified)(c))
		case c.notified:
			c.l.LaterLast((*peerClosed)(c))
		}
	} else {
		c.plain = c.plain[n:] // no copy: fill compacts when it needs the room
	}
	c.renotify()
	return n, nil
}

// Next returns the first n plaintext bytes and discards them; the slice is
// valid until the next read call.
func (c *Conn) Next(n int) ([]byte, error) {
	b, err := c.Peek(n)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), b...) // no kind uses Next: a copy keeps it simple
	_, _ = c.Discard(len(b))
	return out, nil
}

// Read copies plaintext into p.
func (c *Conn) Read(p []byte) (int, error) {
	c.fill()
	if len(c.plain) == 0 {
		return 0, io.ErrShortBuffer
	}
	n := copy(p, c.plain)
	_, _ = c.Discard(n)
	return n, nil
}

// WriteTo writes all plaintext to w.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	c.fill()
	n, err := w.Write(c.plain)
	_, _ = c.Discard(n)
	return int64(n), err
}

// InboundBuffered is the plaintext ready to read.
func (c *Conn) InboundBuffered() int {
	c.fill()
	return len(c.plain)
}

// Write encrypts b into records and writes them.
func (c *Conn) Write(b []byte) (int, error) {
	if c.state != stOpen {
		return 0, net.ErrClosed
	}
	return c.tc.Write(b)
}

// coalesce is the most plaintext Writev gathers into one record: a TLS
// record's payload.
const coalesce = 16 << 10

// Writev encrypts bs as few records as it can: small pieces (a response head
// and a short body) are gathered into one record, large ones go as they are.
func (c *Conn) Writev(bs [][]byte) (int, error) {
	if c.state != stOpen {
		return 0, net.ErrClosed
	}
	total := 0
	scratch := c.l.TLSScratch[:0]
	flush := func() error {
		if len(scratch) == 0 {
			return nil
		}
		_, err := c.tc.Write(scratch)
		scratch = scratch[:0]
		return err
	}
	for _, b := range bs {
		if len(scratch)+len(b) <= coalesce {
			scratch = append(scratch, b...)
			total += len(b)
			continue
		}
		if err := flush(); err != nil {
			return total, err
		}
		if len(b) <= coalesce {
			scratch = append(scratch, b...)
		} else if _, err := c.tc.Write(b); err != nil {
			return total, err
		}
		total += len(b)
	}
	err := flush()
	c.l.TLSScratch = scratch[:0]
	return total, err
}

// ReadFrom encrypts what r has.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if c.state != stOpen {
		return 0, net.ErrClosed
	}
	return io.Copy(c.tc, r)
}

// CloseNotify sends close_notify, once, on an open connection: the kind's
// loop.CloseConn calls it before closing the socket.
func (c *Conn) CloseNotify() {
	if c.state == stOpen {
		c.state = stClosed
		_ = c.tc.CloseWrite()
	}
}

// Close sends close_notify and closes the socket (on a later turn of the loop,
// as gnet's Close).
func (c *Conn) Close() error {
	c.CloseNotify()
	return c.Conn.Close()
}
