// Package http1 is the HTTP/1.1 client connection, the connection kind of
// every accepted client until it upgrades: it reads request heads
// incrementally (pipelined ones too), hands each request to an exchange
// through a stream (the exchange.Downstream of one request), decodes the
// request body's framing, frames the response (Content-Length, chunked, or
// close-delimited for HTTP/1.0), times the client (head, body, idle, send),
// and closes politely (flush, then linger) when a connection must end.
//
// Concurrency: everything runs on the connection's event loop.
package http1

import (
	"net"
	"net/netip"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"gozer/filters"
	"gozer/gateway/exchange"
	"gozer/gateway/httpcodec"
	"gozer/gateway/loop"
	"gozer/gateway/peers"
	"gozer/gateway/tlsconn"
)

// connState is where a client connection is in its request cycle.
type connState uint8

const (
	stProxyHeader connState = iota // waiting for the PROXY protocol header (listeners.proxy.proxy_protocol)
	stHead                         // waiting for (the rest of) a request head; idle when headStart == 0
	stProxy                        // an exchange is in flight
	stFlushing                     // the last response is written; close once it left the buffer
	stLingering                    // an error answer is out and the write side shut; discard input until EOF
	stClosed
)

// lingerFor bounds how long a connection answered with an error keeps draining
// the client's unread input, so the client reads the answer instead of a reset.
const lingerFor = 2e9 // 2 s

// Conn is one accepted client connection speaking HTTP/1.1. Between requests
// it holds no buffers (an idle keep-alive connection costs the struct and
// gnet's connection); a stream is taken from the loop's free list when a head
// is complete.
type Conn struct {
	lp     *Loop
	c      gnet.Conn
	fd     int32
	slot   int32
	timer  loop.Timer
	remote string         // ip:port, for logs
	addr   netip.AddrPort // the client: for limits, trust and X-Forwarded-For
	peer   *peers.Peer    // the client's count in Shared.Peers (nil: not counted)

	state connState
	reads loop.Reads
	// drainClose (drainBit): close after the current response (the gateway
	// drains, or protect.max_requests_per_connection was reached); the rest
	// counts the requests begun on the connection (protect.go).
	drainClose drainFlag
	held       loop.Held // what this connection counts in Shared.Buffered (account)
	headStart  int64     // when the first byte of the current head arrived (0: idle)
	deadline   int64     // when the connection's timer fires (0: not armed)
	scan       httpcodec.HeadScanner
	st         *stream // the request in flight
	writable   loop.Writable
}

// Timer implements loop.Timed; Slot loop.Slotted.
func (c *Conn) Timer() *loop.Timer { return &c.timer }

// Slot implements loop.Slotted.
func (c *Conn) Slot() *int32 { return &c.slot }

// Loop is the loop that owns the connection.
func (c *Conn) Loop() *loop.Loop { return c.lp.l }

// setDeadline sets when the connection's timer fires (0: not armed).
func (c *Conn) setDeadline(d int64) {
	c.deadline = d
	if d != 0 {
		c.lp.wheel.Update(c)
	}
}

// awaitRequest makes the connection wait for its next request head.
func (c *Conn) awaitRequest(first bool) {
	c.state = stHead
	c.headStart = 0
	c.scan.Reset()
	// A new connection must send its first head within the header timeout; a
	// keep-alive connection may stay quiet for the idle timeout.
	lim := &c.lp.l.Snapshot().Limits
	if first {
		c.setDeadline(c.lp.l.Now() + lim.HeaderTimeout)
	} else {
		c.setDeadline(c.lp.l.Now() + lim.IdleTimeout)
	}
}

// OnData runs when the client sent bytes.
func (c *Conn) OnData() {
	if c.reads.Paused() {
		// gnet turned reading back on after flushing; the reason to pause still holds.
		c.pause()
		return
	}
	switch c.state {
	case stProxyHeader:
		c.readProxyHeader()
	case stHead:
		if c.waiting() {
			c.pauseOverBacklog() // its turn reads what came: others go first
			return
		}
		c.readHead()
	case stProxy:
		c.st.onData()
	case stLingering, stFlushing:
		_, _ = c.c.Discard(-1)
	}
}

// readHead scans the buffered bytes for a complete head and starts its exchange.
func (c *Conn) readHead() {
	l := c.lp.l
	lim := &l.Snapshot().Limits
	buf, base := c.pendingHead(lim.MaxHeaderBytes, true)
	if len(buf) == 0 || base == 0 && c.sniffH2C(buf) {
		return
	}
	if c.headStart == 0 {
		c.headStart = l.Now()
		c.setDeadline(l.Now() + lim.HeaderTimeout)
	}
	limits := httpcodec.Limits{MaxRequestLine: lim.MaxRequestLine, MaxHeaderBytes: lim.MaxHeaderBytes, MaxHeaders: lim.MaxHeaders}
	n, err := c.scan.Scan(buf, limits)
	if err == nil && n == 0 && base == 0 && len(buf) == headWindow && c.c.InboundBuffered() > headWindow {
		// A head longer than the first look: all of what may be it.
		buf, base = c.pendingHead(lim.MaxHeaderBytes, false)
		n, err = c.scan.Scan(buf, limits)
	}
	if err != nil {
		c.refuse(err)
		return
	}
	if n == 0 {
		c.consumeHead(buf, base, 0) // the rest of the head comes later: kept out of gnet (partial.go)
		return
	}
	st := c.lp.newStream(c)
	if err := st.ex.Request().Parse(buf[:n]); err != nil {
		c.refuseWith(st, err)
		return
	}
	c.consumeHead(buf, base, n) // Parse copied what it keeps
	st.in = int64(n)
	st.begin()
	c.st = st
	c.state = stProxy
	c.deadline = 0
	c.headStart = 0
	if c.maxRequestsReached() {
		c.drainClose.set() // protect.max_requests_per_connection: this answer is the last
	}
	st.ex.Start()
}

// refuse answers a request head that could not be read and closes the
// connection: after bad framing nothing that follows on it can be trusted.
func (c *Conn) refuse(err error) { c.refuseWith(c.lp.newStream(c), err) }

func (c *Conn) refuseWith(st *stream, err error) {
	buf := c.partialHead()
	if buf == nil {
		buf, _ = c.c.Peek(-1)
	}
	method, target := httpcodec.RequestLineOf(buf, c.lp.l.Snapshot().Limits.MaxRequestLine)
	c.st = st
	c.state = stProxy
	c.deadline = 0
	st.ex.Refuse(err, method, target) // copies method and target
	c.dropHead()
}

// onTimer runs when the connection's deadline passed.
func (c *Conn) onTimer(now int64) {
	c.deadline = 0
	switch c.state {
	case stProxyHeader:
		c.refuseProxy("no complete PROXY protocol header within server.header_read_timeout")
	case stHead:
		if c.headStart == 0 {
			c.close() // idle keep-alive connection: close quietly
			return
		}
		c.refuse(&exchange.Failure{Cause: filters.ClientTimeout, Reason: "request head not complete within server.header_read_timeout"})
	case stProxy:
		c.st.onTimer(now)
	default:
		c.close()
	}
}

// done ends the stream: the connection waits for its next request, or closes
// once the response has left.
func (c *Conn) done(closeAfter bool) {
	c.lp.freeStream(c.st)
	c.st = nil
	if c.state == stClosed {
		return
	}
	if closeAfter || c.drainClose.on() || tlsconn.PeerDone(c.c) {
		c.uncork()
		c.closeWhenFlushed()
		return
	}
	c.awaitRequest(false)
	if c.c.OutboundBuffered()+c.corked() > c.lp.l.Snapshot().Limits.MaxBuffered {
		// A pipelining client that does not read its answers: take no next request
		// until they drained, or its answers would pile up without bound.
		c.pause()
		c.watchWritable()
		return
	}
	if c.reads.Paused() {
		c.resume()
	}
	if c.held > 0 {
		c.watchWritable() // the response's tail: the account follows it out
	}
	if c.c.InboundBuffered() > 0 {
		c.nextPipelined() // a pipelined request is already here
	}
}

// OnPeerClosed implements tlsconn.PeerCloser: the client sent its
// close_notify and every byte before it is read. An idle connection (or one
// with a head that can no longer end) closes once its answers left; one with
// a request in flight closes after its answer (done).
func (c *Conn) OnPeerClosed() {
	if c.state == stHead && c.st == nil {
		c.uncork()
		c.closeWhenFlushed()
	}
}

// closeWhenFlushed closes the connection once gnet has written everything out.
func (c *Conn) closeWhenFlushed() {
	if c.c.OutboundBuffered() == 0 {
		c.lingerClose()
		return
	}
	c.state = stFlushing
	c.setDeadline(c.lp.l.Now() + c.lp.l.Snapshot().Limits.IdleTimeout)
	c.watchWritable()
}

// lingerClose shuts the write side and reads until the client closes (or
// lingerFor passes), so unread request bytes do not turn the close into a reset
// that would destroy the answer in the client's receive buffer.
func (c *Conn) lingerClose() {
	if c.c.InboundBuffered() == 0 {
		c.close()
		return
	}
	_ = unix.Shutdown(int(c.fd), unix.SHUT_WR)
	_, _ = c.c.Discard(-1)
	c.state = stLingering
	c.setDeadline(c.lp.l.Now() + lingerFor)
	if c.reads.Paused() {
		c.resume()
	}
}

// close closes the connection now.
func (c *Conn) close() {
	if c.state == stClosed {
		return
	}
	_ = c.lp.l.CloseConn(c.c)
}

// OnClose runs when gnet closed the connection, whoever asked.
func (c *Conn) OnClose(err error) {
	if c.headStart != 0 {
		c.dropHead()
	}
	c.uncork() // whole answers: gnet sends them before it closes the socket
	c.state = stClosed
	c.account()
	c.lp.conns.Remove(c)
	c.lp.wheel.Cancel(c)
	c.writable.Release(c.lp.l, int(c.fd))
	c.lp.l.Shared.ClientClosed()
	c.lp.l.Shared.Peers.Close(c.peer)
	c.peer = nil
	if st := c.st; st != nil {
		c.st = nil
		ex := st.ex
		st.ex = nil
		ex.OnGone(err)
		c.lp.freeStream(st)
	}
}

func (c *Conn) pause() {
	if c.state != stClosed {
		c.reads.Pause(c.lp.l, c.c)
	}
}

func (c *Conn) resume() {
	if c.state != stClosed {
		c.reads.Resume(c.lp.l, c.c)
	}
}

// watchWritable asks for a wake-up when the client's socket takes more bytes.
func (c *Conn) watchWritable() {
	if err := c.writable.Watch(c.lp.l, c.c, c.onWritable); err != nil {
		c.close()
	}
}

// onWritable runs on the loop when the client's socket became writable again.
func (c *Conn) onWritable() {
	if c.state == stClosed {
		return
	}
	c.account()
	lim := &c.lp.l.Snapshot().Limits
	pending := c.c.OutboundBuffered()
	switch {
	case c.state == stFlushing:
		if pending == 0 {
			c.lingerClose()
		} else {
			c.watchWritable()
		}
	case pending > loop.ResumeAt(c.lp.l.Shared.SendAllowance(lim.MaxBuffered)):
		if c.st != nil {
			c.st.sendProgress() // it is reading: progress
		} else if c.reads.Paused() {
			c.setDeadline(c.lp.l.Now() + lim.IdleTimeout)
		}
		c.watchWritable()
	case c.state == stHead && c.reads.Paused():
		// Its answers drained: the pipelined requests may go on (in its
		// turn, if it waits for one).
		if !c.waiting() { // one that waits is resumed in its turn
			c.resume()
			if c.c.InboundBuffered() > 0 {
				c.readHead()
			}
		}
	case c.st != nil:
		c.st.writable()
	case pending > 0:
		c.watchWritable() // an ended response's tail: the account follows it out
	}
}

// account tells the node how much the connection holds toward its client
// (Shared.Buffered, against server.max_buffered_total).
func (c *Conn) account() { c.held.Account(c.lp.l.Shared, c.c, c.state == stClosed) }

// setRemote records the client's address (the socket's peer, or what a PROXY
// protocol header named).
func (c *Conn) setRemote(a net.Addr) {
	if ta, ok := a.(*net.TCPAddr); ok {
		c.addr = netip.AddrPortFrom(loop.AddrOf(ta), uint16(ta.Port))
		c.remote = c.addr.String()
		return
	}
	c.remote = a.String()
	if ap, err := netip.ParseAddrPort(c.remote); err == nil {
		c.addr = ap
	}
}
