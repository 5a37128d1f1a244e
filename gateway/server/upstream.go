package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/panjf2000/gnet/v2"

	"gozer/filters"
	"gozer/gateway/httpcodec"
	"gozer/gateway/origin"
)

// upstream is one connection to an origin server, opened onto the loop of the client
// that needed it and pooled on that loop. All methods run on that loop's goroutine,
// except the dial goroutine in dial, which reaches the loop only through Execute.
type upstream struct {
	l      *loop
	c      gnet.Conn
	fd     int
	slot   int
	origin *origin.Origin
	server *origin.Server
	pool   *origin.Pool[*upstream]
	ex     *exchange // nil while idle in the pool (or dialling for nobody)

	connected bool
	closed    bool
	idle      bool
	paused    bool
	gotBytes  bool // a response byte arrived for the current exchange
	reused    bool // taken from the pool (it served a request before)
	served    int  // requests it carried
	deadline  int64
	closeErr  error // set when the connection closed during a request-body pump
	onDrainFn func()
}

func newUpstream(l *loop, o *origin.Origin, srv *origin.Server, pool *origin.Pool[*upstream]) *upstream {
	return &upstream{l: l, origin: o, server: srv, pool: pool, slot: -1, fd: -1}
}

// bind attaches the connection to an exchange.
func (u *upstream) bind(ex *exchange) {
	u.ex = ex
	u.idle = false
	u.gotBytes = false
	ex.up = u
}

// dial opens the connection off the loop (net.Dial blocks) and enrolls it onto this
// loop; OnOpen then resumes the exchange here. A failure comes back through Execute.
func (u *upstream) dial() {
	el, addr, timeout := u.l.el, u.server.Addr, u.origin.ConnectTimeout
	fail := func(err error) {
		_ = el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			u.l.clock()
			u.onDialFailed(err)
			u.l.reap()
			return nil
		}))
	}
	go func() {
		conn, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			fail(err)
			return
		}
		ch, err := el.Enroll(gnet.NewContext(context.Background(), u), conn)
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

func (u *upstream) onDialFailed(err error) {
	u.closed = true
	u.pool.Release()
	u.server.ReleaseConn()
	ex := u.ex
	u.ex = nil
	if ex == nil || ex.up != u {
		return
	}
	ex.up = nil
	ex.upstreamFailed(filters.OriginConnectivity, fmt.Sprintf("connect to %s: %v", u.server.Addr, err), true)
}

// onOpen runs on the loop once the dialled connection is registered.
func (u *upstream) onOpen(c gnet.Conn) {
	u.c, u.fd, u.connected = c, c.Fd(), true
	u.l.addUpstream(u)
	if ex := u.ex; ex != nil {
		u.sendRequest()
		return
	}
	u.release() // its client left while it dialled: keep it for the next request
}

// sendRequest writes the exchange's request head, then any replayed body, then
// whatever body the client already sent.
func (u *upstream) sendRequest() {
	ex := u.ex
	u.served++
	u.deadline = u.readDeadline()
	if !u.write(ex.fwd) {
		return
	}
	if len(ex.replay) > 0 {
		if ex.req.Framing == httpcodec.FramingChunked {
			u.l.iov = append(u.l.iov[:0], httpcodec.AppendChunkHeader(u.l.chunkHdr[:0], len(ex.replay)), ex.replay, crlf)
			if !u.writev(u.l.iov) {
				return
			}
		} else if !u.write(ex.replay) {
			return
		}
	}
	if ex.reqDone {
		if ex.req.Framing == httpcodec.FramingChunked && !u.write(lastChunk) {
			return
		}
		return
	}
	if cl := ex.cl; cl != nil && cl.paused {
		cl.resume()
		cl.deadline = u.l.now + u.l.limit.headerTimeout
	}
	ex.pumpRequestBody()
}

// write sends b; false when the connection failed (gnet closed it).
func (u *upstream) write(b []byte) bool {
	if u.closed {
		return false
	}
	_, _ = u.c.Write(b)
	return !u.closed
}

func (u *upstream) writev(bs [][]byte) bool {
	if u.closed {
		return false
	}
	_, _ = u.c.Writev(bs)
	return !u.closed
}

// onData runs when the origin sent bytes.
func (u *upstream) onData() {
	ex := u.ex
	if ex == nil {
		// An idle connection has nothing to say; whatever it sent cannot be trusted.
		u.close()
		return
	}
	if u.paused {
		u.pause()
		return
	}
	u.gotBytes = true
	u.deadline = u.readDeadline()
	ex.pumpResponse()
}

// onDeadline fires when the origin was silent for read_timeout.
func (u *upstream) onDeadline() {
	u.deadline = 0
	ex := u.ex
	if ex == nil {
		return
	}
	if t := u.origin.TotalTimeout; t > 0 && u.l.now-ex.started >= int64(t) {
		ex.fail(filters.OriginReadTimeout, fmt.Sprintf("origin %s: no complete answer within total_timeout %v", u.origin.Name, t))
		return
	}
	if !u.gotBytes && ex.reqDone && isIdempotent(ex.req.Header.Method()) && ex.canRetry() && ex.retryAllowed() {
		// A silent server: an idempotent request may try another one.
		ex.endAttempt(false)
		ex.up = nil
		u.abort()
		ex.attempt()
		return
	}
	if !ex.reqDone && !u.gotBytes && u.c.OutboundBuffered() > 0 {
		ex.fail(filters.OriginStalledRequest, fmt.Sprintf("origin %s stopped reading the request body for %v", u.server.Addr, u.origin.ReadTimeout))
		return
	}
	ex.fail(filters.OriginReadTimeout, fmt.Sprintf("no data from %s for %v (read_timeout)", u.server.Addr, u.origin.ReadTimeout))
}

// release parks the connection in its pool, or closes it when the pool is full.
func (u *upstream) release() {
	u.ex = nil
	u.deadline = 0
	if u.closed {
		return
	}
	if u.paused {
		u.resume()
	}
	retire := u.origin.MaxRequestsPerConn > 0 && u.served >= u.origin.MaxRequestsPerConn
	if retire || u.c.InboundBuffered() > 0 || u.c.OutboundBuffered() > 0 || u.l.srv.draining.Load() || !u.pool.Put(u, u.l.now) {
		u.close()
		return
	}
	u.idle = true
}

// abort drops the connection from a live exchange: its stream state is unknown.
func (u *upstream) abort() {
	u.ex = nil
	u.close()
}

func (u *upstream) close() {
	if u.closed || !u.connected {
		u.ex = nil // still dialling: OnOpen will find no exchange and pool it
		return
	}
	_ = u.l.el.Close(u.c)
}

// onClose runs when gnet closed the connection, whoever asked.
func (u *upstream) onClose(err error) {
	u.closed = true
	u.l.removeUpstream(u)
	if u.onDrainFn != nil { // it waited for a drain at least once
		u.l.srv.watcher.unwatch(u.fd)
	}
	if u.idle {
		u.pool.Remove(u)
		u.idle = false
	}
	u.pool.Release()
	u.server.ReleaseConn()
	ex := u.ex
	u.ex = nil
	if ex == nil || ex.up != u {
		return
	}
	if ex.pumping {
		u.closeErr = errClosedDuringPump(err)
		return // the pump that wrote will call upstreamClosed once it is consistent
	}
	ex.upstreamClosed(u, err)
}

func errClosedDuringPump(err error) error {
	if err == nil {
		return errors.New("origin closed the connection")
	}
	return err
}

// isReset tells a reset from an orderly close, for the status cause.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (u *upstream) pause() {
	if u.l.epfd < 0 || u.closed {
		return
	}
	if err := setInterest(u.l.epfd, u.c, false); err == nil {
		u.paused = true
		u.deadline = 0 // not reading is our choice, not the origin's silence
	}
}

func (u *upstream) resume() {
	if u.closed {
		return
	}
	u.paused = false
	if u.ex != nil {
		u.deadline = u.l.now + int64(u.origin.ReadTimeout)
	}
	_ = setInterest(u.l.epfd, u.c, true)
}

// watchDrain asks for a wake-up when the origin's socket takes more request body.
func (u *upstream) watchDrain() {
	if u.onDrainFn == nil {
		u.onDrainFn = u.onDrained
	}
	if err := u.l.srv.watcher.watch(u.fd, u.l.el, u.onDrainFn); err != nil && u.ex != nil {
		u.ex.fail(filters.LocalInternal, err.Error())
	}
}

func (u *upstream) onDrained() {
	if u.closed || u.ex == nil {
		return
	}
	u.l.clock()
	if u.c.OutboundBuffered() > u.l.limit.maxBuffered/2 {
		u.watchDrain()
		return
	}
	ex := u.ex
	u.deadline = u.l.now + int64(u.origin.ReadTimeout) // the origin is reading: progress
	if cl := ex.cl; cl != nil && cl.paused {
		cl.resume()
		cl.deadline = u.l.now + u.l.limit.headerTimeout
	}
	ex.pumpRequestBody()
	u.l.reap()
}

// readDeadline is when the origin's silence ends the attempt: read_timeout from now,
// but never past the request's total_timeout.
func (u *upstream) readDeadline() int64 {
	d := u.l.now + int64(u.origin.ReadTimeout)
	if t := u.origin.TotalTimeout; t > 0 && u.ex != nil {
		if end := u.ex.started + int64(t); end < d {
			d = end
		}
	}
	return d
}
