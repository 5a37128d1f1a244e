package http2

import (
	"bytes"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/net/http2"

	"gozer/gateway/telemetry"
)

// pushStream is an HTTP/2 stream that carries an SSE push connection: the
// gnet.Conn a pushconn.Conn writes to once the push handshake took the
// stream (stream.Hijack). Its writes become the stream's DATA (within the
// client's windows, the rest waiting in the stream, which is what
// OutboundBuffered reports to push.max_outbound_bytes), its close ends the
// stream, not the connection (loop.CloseConn asks CloseStream first). What
// it does not override is the HTTP/2 connection's transport (RemoteAddr,
// Fd, ...). The first write is the handshake's HTTP/1.1 answer: its head
// becomes HEADERS, as a response's does. Loop goroutine only.
type pushStream struct {
	gnet.Conn
	st       *stream
	ctx      any // the pushconn.Conn
	answered bool
}

// kind is what the push connection is to the stream: gnet's events.
type kind interface{ OnClose(err error) }

// Context implements gnet.Conn: the push connection, not the HTTP/2 one.
func (p *pushStream) Context() any { return p.ctx }

// SetContext implements gnet.Conn.
func (p *pushStream) SetContext(ctx any) { p.ctx = ctx }

// Write implements gnet.Conn: DATA on the stream.
func (p *pushStream) Write(b []byte) (int, error) {
	st := p.st
	if st == nil || st.localDone || st.reset || st.c.state == stClosed {
		return 0, errStreamGone
	}
	n := len(b)
	if !p.answered {
		p.answered = true
		end := bytes.Index(b, []byte("\r\n\r\n"))
		if end < 0 {
			return 0, errStreamGone
		}
		c := st.c
		st.out += int64(c.writeHeaders(st.id, c.enc.appendTextHead(c.hb[:0], b[:end+4]), false))
		st.started = true
		b = b[end+4:]
	}
	st.WriteBody(b)
	st.c.flush()
	return n, nil
}

// Writev implements gnet.Conn.
func (p *pushStream) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		m, err := p.Write(b)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// OutboundBuffered implements gnet.Conn: what waits for the client.
func (p *pushStream) OutboundBuffered() int {
	if p.st == nil {
		return 0
	}
	return p.st.Buffered()
}

// InboundBuffered, Discard and Peek: an SSE client sends nothing on its
// stream (its DATA is dropped and credited back).
func (p *pushStream) InboundBuffered() int                        { return 0 }
func (p *pushStream) Discard(int) (int, error)                    { return 0, nil }
func (p *pushStream) Peek(int) ([]byte, error)                    { return nil, nil }
func (p *pushStream) Next(int) ([]byte, error)                    { return nil, nil }
func (p *pushStream) Read([]byte) (int, error)                    { return 0, nil }
func (p *pushStream) AsyncWrite([]byte, gnet.AsyncCallback) error { return errStreamGone }

// CloseStream ends the push stream (END_STREAM once its DATA left), not
// the HTTP/2 connection; the push connection's OnClose follows at once, as
// gnet's would.
func (p *pushStream) CloseStream() {
	st := p.st
	if st == nil {
		return
	}
	p.gone(nil)
	if !st.reset && st.c.state != stClosed {
		st.EndBody(nil)
		if !st.localDone {
			// Its last DATA waits for a window: the send timer bounds that.
			st.sendAt = st.c.lp.l.Now() + st.c.lp.l.Snapshot().Limits.IdleTimeout
			st.c.arm(st)
		}
		st.c.flush()
	}
}

// gone tells the push connection its stream ended (once).
func (p *pushStream) gone(err error) {
	st := p.st
	if st == nil {
		return
	}
	p.st = nil
	st.push = nil
	if k, ok := p.ctx.(kind); ok {
		k.OnClose(err)
	}
}

// Unwrap is not offered: what reaches into gnet's internals (loop.Raw) must
// not find the HTTP/2 connection's socket and close it for one stream.

// hijackPush makes st the carrier of a push connection; false when the
// client's address holds server.max_connections_per_ip connections already
// (the push connection counts as one, as over HTTP/1.1).
func (st *stream) hijackPush() (gnet.Conn, bool) {
	c := st.c
	sh := c.lp.l.Shared
	if _, ok := sh.Peers.Open(c.addr.Addr()); !ok {
		c.resetStream(st.id, http2.ErrCodeRefusedStream, telemetry.H2RefusedStream, "push stream over server.max_connections_per_ip")
		return nil, false
	}
	sh.Clients.Add(1) // pushconn.Conn.OnClose counts it out with its address
	p := &pushStream{Conn: c.c, st: st}
	st.push = p
	return p, true
}
