// Package originconn is the origin connection, the connection kind that
// carries requests to an origin's server: opened onto the event loop of the
// request that needed it (dialled off the loop, then enrolled into it), kept in
// that loop's pool for the server when the request is done, and timed by the
// loop's wheel. What to send and what a byte from the origin means is the
// business of its owner (the exchange); a Conn only moves bytes, pauses, wakes
// its owner and keeps the pool's books.
//
// Concurrency: everything runs on the connection's event loop, except the dial
// goroutine, which reaches the loop only through Execute.
package originconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/panjf2000/gnet/v2"

	"gozer/gateway/loop"
	"gozer/gateway/origin"
	"gozer/gateway/tlsconn"
)

// Owner is what uses an origin connection while a request is on it (the
// exchange). Its methods run on the connection's loop; a connection tells only
// its current owner, and has none once Release or Abort let it go.
type Owner interface {
	// OriginOpen: the dialled connection is ready for the request.
	OriginOpen()
	// OriginDialFailed: the connection could not be opened.
	OriginDialFailed(err error)
	// OriginData: the origin sent bytes (Peek, Discard).
	OriginData()
	// OriginWritable: the origin took the bytes waiting for it (WatchWritable).
	OriginWritable()
	// OriginTimeout: the read timer (ArmRead) expired.
	OriginTimeout()
	// OriginClosed: the connection closed (err: why, nil for an orderly close).
	OriginClosed(err error)
}

// Conn is one connection to an origin server.
type Conn struct {
	lp     *Loop
	c      gnet.Conn
	fd     int
	timer  loop.Timer
	origin *origin.Origin
	server *origin.Server
	pool   *origin.Pool[*Conn]
	owner  Owner // nil while idle in the pool (or dialling for nobody)

	connected bool
	closed    bool
	idle      bool
	gotBytes  bool // a response byte arrived for the current owner
	reused    bool // taken from the pool (it served a request before)
	tunneled  bool // carries a websocket tunnel: no read timer, never pooled again
	reads     loop.Reads
	writable  loop.Writable
	served    int   // requests it carried
	deadline  int64 // when the read timer fires (0: not armed)
	started   int64 // when the current owner's request started (total_timeout)

	// certAsked tells whether the TLS server asked for a client certificate
	// that the origin has none of (origin.WatchCertRequest); nil for plain
	// connections.
	certAsked func() bool
}

// Timer implements loop.Timed.
func (c *Conn) Timer() *loop.Timer { return &c.timer }

// Loop implements the dispatcher's connection: the loop that owns c.
func (c *Conn) Loop() *loop.Loop { return c.lp.l }

// Origin is the origin c belongs to; Server the server it is connected to.
func (c *Conn) Origin() *origin.Origin { return c.origin }

// Server is the server c is connected to.
func (c *Conn) Server() *origin.Server { return c.server }

// GotBytes reports whether a response byte arrived for the current owner.
func (c *Conn) GotBytes() bool { return c.gotBytes }

// Reused reports whether c came from the pool (it served a request before).
func (c *Conn) Reused() bool { return c.reused }

// Closed reports whether c is closed (or failed to open).
func (c *Conn) Closed() bool { return c.closed }

// Peek is what the origin sent and nobody consumed yet; valid until Discard
// or the callback's end.
func (c *Conn) Peek() []byte {
	b, _ := c.c.Peek(-1)
	return b
}

// Discard consumes n bytes of what the origin sent; n <= 0 consumes none.
func (c *Conn) Discard(n int) { loop.Consume(c.c, n) }

// InboundBuffered is how much the origin sent that was not consumed.
func (c *Conn) InboundBuffered() int { return c.c.InboundBuffered() }

// OutboundBuffered is how much waits to be written to the origin.
func (c *Conn) OutboundBuffered() int { return c.c.OutboundBuffered() }

// Write sends b; false when the connection failed (gnet closed it, and the
// owner heard of it in OriginClosed before Write returned).
func (c *Conn) Write(b []byte) bool {
	if c.closed {
		return false
	}
	_, _ = c.c.Write(b)
	return !c.closed
}

// Writev sends bs in one go; false as Write.
func (c *Conn) Writev(bs [][]byte) bool {
	if c.closed {
		return false
	}
	_, _ = c.c.Writev(bs)
	return !c.closed
}

// ArmRead starts the read timer: read_timeout from now, but never past the
// request's total_timeout.
func (c *Conn) ArmRead() {
	if c.tunneled {
		return // the tunnel times itself (idle_timeout, max_lifetime)
	}
	l := c.lp.l
	d := l.Now() + int64(c.origin.ReadTimeout)
	if t := c.origin.TotalTimeout; t > 0 && c.owner != nil {
		if end := c.started + int64(t); end < d {
			d = end
		}
	}
	c.deadline = d
	c.lp.wheel.Update(c)
}

// Disarm stops the read timer.
func (c *Conn) Disarm() { c.deadline = 0 }

// Pause stops reading the origin (its response waits for a slow client); the
// read timer stops too: not reading is the gateway's choice, not the origin's
// silence.
func (c *Conn) Pause() {
	if c.closed {
		return
	}
	if c.reads.Pause(c.lp.l, c.c) {
		c.deadline = 0
	}
}

// Paused reports whether reading is paused.
func (c *Conn) Paused() bool { return c.reads.Paused() }

// Resume reads the origin again and, with an owner, rearms the read timer.
func (c *Conn) Resume() {
	if c.closed {
		return
	}
	c.reads.Resume(c.lp.l, c.c)
	if c.owner != nil {
		c.ArmRead()
	}
}

// WatchWritable asks for OriginWritable once the origin takes more of the
// bytes waiting for it.
func (c *Conn) WatchWritable() error {
	return c.writable.Watch(c.lp.l, c.c, c.onWritable)
}

// Release parks c in its pool for the next request, or closes it when the
// pool is full, retired, or c has unread or unwritten bytes.
func (c *Conn) Release() {
	c.owner = nil
	c.deadline = 0
	if c.closed {
		return
	}
	if c.reads.Paused() {
		c.reads.Resume(c.lp.l, c.c)
	}
	o, l := c.origin, c.lp.l
	retire := c.tunneled || o.MaxRequestsPerConn > 0 && c.served >= o.MaxRequestsPerConn
	if retire || c.c.InboundBuffered() > 0 || c.c.OutboundBuffered() > 0 || l.Shared.Draining.Load() || !c.pool.Put(c, l.Now()) {
		c.close()
		return
	}
	c.idle = true
}

// Tunnel hands c to owner for the rest of its life: after the origin's 101
// it carries a websocket tunnel, whose bytes are no HTTP. Its read timer
// stops (the tunnel has its own), and it never goes back to a pool: Release
// closes it.
func (c *Conn) Tunnel(owner Owner) {
	c.owner = owner
	c.tunneled = true
	c.deadline = 0
}

// Abort drops c from its owner and closes it: its stream state is unknown.
func (c *Conn) Abort() {
	c.owner = nil
	c.close()
}

func (c *Conn) close() {
	if c.closed || !c.connected {
		c.owner = nil // still dialling: OnOpen will find no owner and pool it
		return
	}
	_ = c.lp.l.CloseConn(c.c)
}

// bind attaches c to owner for a request that started at started.
func (c *Conn) bind(owner Owner, started int64) {
	c.owner = owner
	c.idle = false
	c.gotBytes = false
	c.started = started
	c.served++
}

// dial opens the connection off the loop (net.Dial blocks; so does the TLS
// handshake of an origin spoken to over TLS) and enrolls it onto this loop;
// OnOpen then hands it to its owner. A failure comes back through
// Execute.
func (c *Conn) dial() {
	l, addr, timeout := c.lp.l, c.server.Addr, c.origin.ConnectTimeout
	fail := func(err error) {
		l.Execute(func() { c.onDialFailed(err) })
	}
	hctx := context.Background()
	if c.origin.TLS != nil {
		hctx, c.certAsked = origin.WatchCertRequest(hctx)
	}
	go func() {
		d := net.Dialer{Timeout: timeout, Control: loop.DialCeiling(l.Shared.FDCeiling, &l.Shared.OriginOpenFiles)}
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			fail(err)
			return
		}
		var ctx any = c
		if t := c.origin.TLS; t != nil {
			// The handshake in this goroutine too (within connect_timeout);
			// the loop adopts the TLS connection in OnOpen.
			tc, err := tlsconn.Dial(hctx, conn, t.For(addr), timeout, c)
			if err != nil {
				_ = conn.Close()
				fail(c.noCertNote(err))
				return
			}
			ctx = tc
		}
		ch, err := l.EL.Enroll(gnet.NewContext(context.Background(), ctx), conn)
		if err != nil {
			_ = conn.Close()
			fail(err)
			return
		}
		if r := <-ch; r.Err != nil {
			fail(r.Err)
		}
	}()
}

// ErrOpenFiles fails a dial whose socket came too close to the open-file
// limit (loop.DialCeiling): dials in flight hold descriptors too, and enough
// of them would leave the loops' accept4 an EMFILE, so an origin socket gives
// way instead; its request fails, the gateway goes on.
var ErrOpenFiles = loop.ErrOpenFiles

func (c *Conn) onDialFailed(err error) {
	c.closed = true
	c.pool.Release()
	c.server.ReleaseConn()
	if o := c.owner; o != nil {
		c.owner = nil
		o.OriginDialFailed(err)
	}
}

// OnOpen runs on the loop once the dialled connection is registered.
func (c *Conn) OnOpen(gc gnet.Conn) {
	c.c, c.fd, c.connected = gc, gc.Fd(), true
	if c.owner != nil {
		c.owner.OriginOpen()
		return
	}
	c.Release() // its request left while it dialled: keep it for the next one
}

// OnData runs when the origin sent bytes.
func (c *Conn) OnData() {
	o := c.owner
	if o == nil {
		// An idle connection has nothing to say; whatever it sent cannot be trusted.
		c.close()
		return
	}
	if c.reads.Paused() {
		c.reads.Pause(c.lp.l, c.c) // gnet read on after a flush; the reason still holds
		return
	}
	c.gotBytes = true
	c.ArmRead()
	o.OriginData()
}

// onWritable runs on the loop when the origin's socket takes more bytes.
func (c *Conn) onWritable() {
	if c.closed || c.owner == nil {
		return
	}
	if c.c.OutboundBuffered() > c.lp.l.Snapshot().Limits.MaxBuffered/2 {
		_ = c.WatchWritable()
		return
	}
	c.ArmRead() // the origin is reading: progress
	c.owner.OriginWritable()
}

// onTimer runs when the read timer expired.
func (c *Conn) onTimer(int64) {
	c.deadline = 0
	if o := c.owner; o != nil {
		o.OriginTimeout()
	}
}

// OnClose runs when gnet closed the connection, whoever asked.
func (c *Conn) OnClose(err error) {
	c.closed = true
	c.deadline = 0
	c.lp.wheel.Cancel(c)
	c.writable.Release(c.lp.l, c.fd)
	if c.idle {
		c.pool.Remove(c)
		c.idle = false
	}
	c.pool.Release()
	c.server.ReleaseConn()
	if o := c.owner; o != nil {
		c.owner = nil
		if !c.reused && !c.gotBytes && tlsconn.IsRemoteAlert(err) {
			err = c.noCertNote(fmt.Errorf("%w: %w", ErrHandshakeRefused, err))
		}
		o.OriginClosed(err)
	}
}

// IsReset tells a reset from an orderly close, for the status cause.
func IsReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// ErrHandshakeRefused wraps the error of a new TLS connection that the
// origin closed with an alert before it answered anything (OriginClosed's
// err; errors.Is). Under TLS 1.3 the server checks the client's certificate
// after the client's side of the handshake is done, so a refused certificate
// arrives as an alert at the first read, not as a failed dial: the request
// never reached the server either way, and the exchange treats it as a
// failed connect, not a reset.
var ErrHandshakeRefused = errors.New("tls handshake refused by the origin")

// noCertNote adds to a failed or refused handshake's error that the server
// asked for a client certificate and the origin has none configured. Any
// goroutine (certAsked is set before the dial starts and never changes).
func (c *Conn) noCertNote(err error) error {
	if c.certAsked != nil && c.certAsked() {
		return fmt.Errorf("%w (the origin asked for a client certificate and origins.%s.tls has none)", err, c.origin.Name)
	}
	return err
}
