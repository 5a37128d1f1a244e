package server

import (
	"errors"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"gozer/filters"
	"gozer/gateway/httpcodec"
)

// clientState is where a client connection is in its request cycle.
type clientState uint8

const (
	stHead      clientState = iota // waiting for (the rest of) a request head; idle when headStart == 0
	stProxy                        // an exchange is in flight
	stFlushing                     // the last response is written; close once it left the buffer
	stLingering                    // an error answer is out and the write side shut; discard input until EOF
	stClosed
)

// lingerFor bounds how long a connection answered with an error keeps draining the
// client's unread input, so the client reads the answer instead of a reset.
const lingerFor = 2e9 // 2 s

// client is one accepted connection. It lives on one event loop; every method runs
// on that loop's goroutine. Between requests it holds no buffers (an idle keep-alive
// connection costs the struct and gnet's connection), the exchange is taken from the
// loop's free list when a head is complete.
type client struct {
	l      *loop
	c      gnet.Conn
	fd     int
	slot   int
	remote string // ip:port, for logs
	ip     []byte // for X-Forwarded-For

	state      clientState
	headStart  int64 // when the first byte of the current head arrived (0: idle)
	deadline   int64
	scan       httpcodec.HeadScanner
	ex         *exchange
	paused     bool
	drainClose bool // the gateway is draining: close after the current response
	onDrainFn  func()
}

// awaitRequest makes the connection wait for its next request head.
func (cl *client) awaitRequest(now int64, first bool) {
	cl.state = stHead
	cl.headStart = 0
	cl.scan.Reset()
	// A new connection must send its first head within the header timeout; a
	// keep-alive connection may stay quiet for the idle timeout.
	if first {
		cl.deadline = now + cl.l.limit.headerTimeout
	} else {
		cl.deadline = now + cl.l.limit.idleTimeout
	}
}

// onData runs when the client sent bytes.
func (cl *client) onData() {
	if cl.paused {
		// gnet turned reading back on after flushing; the reason to pause still holds.
		cl.pause()
		return
	}
	switch cl.state {
	case stHead:
		cl.readHead()
	case stProxy:
		ex := cl.ex
		if !ex.reqDone {
			// The body keeps coming: the client gets header_read_timeout between pieces.
			cl.deadline = cl.l.now + cl.l.limit.headerTimeout
		}
		if ex.collecting {
			ex.collectBody()
			return
		}
		if !ex.reqDone && ex.up != nil && ex.up.connected {
			ex.pumpRequestBody()
			return
		}
		// Body bytes before the origin connection is up, or the next pipelined
		// request: keep them in gnet's buffer, but only so many.
		if cl.c.InboundBuffered() > cl.l.limit.maxBuffered {
			cl.pause()
		}
	case stLingering, stFlushing:
		_, _ = cl.c.Discard(-1)
	}
}

// readHead scans the buffered bytes for a complete head and starts its exchange.
func (cl *client) readHead() {
	buf, _ := cl.c.Peek(-1)
	if len(buf) == 0 {
		return
	}
	l := cl.l
	if cl.headStart == 0 {
		cl.headStart = l.now
		cl.deadline = l.now + l.limit.headerTimeout
	}
	lim := httpcodec.Limits{MaxRequestLine: int(l.srv.cfg.Server.MaxRequestLine), MaxHeaderBytes: int(l.srv.cfg.Server.MaxHeaderBytes)}
	n, err := cl.scan.Scan(buf, lim)
	if err != nil {
		cl.failRequest(nil, err)
		return
	}
	if n == 0 {
		return
	}
	ex := l.getExchange()
	ex.begin(cl, l.now)
	if err := ex.req.Parse(buf[:n]); err != nil {
		cl.failRequest(ex, err)
		return
	}
	_, _ = cl.c.Discard(n)
	ex.bytesIn = int64(n)
	cl.ex = ex
	cl.state = stProxy
	cl.deadline = 0
	cl.headStart = 0
	ex.start()
	if cl.ex == ex && !ex.reqDone && cl.deadline == 0 {
		cl.deadline = l.now + l.limit.headerTimeout // the body must start coming too
	}
}

// failRequest answers a request that could not be decoded and closes the connection:
// after bad framing nothing that follows on the connection can be trusted.
func (cl *client) failRequest(ex *exchange, err error) {
	cause, reason := filters.ClientBadRequest, err.Error()
	var ce *httpcodec.Error
	if errors.As(err, &ce) {
		reason = ce.Reason
		if c, ok := filters.CauseByName(ce.Cause); ok {
			cause = c
		}
		if ce.Status != 0 && ce.Status != cause.Status {
			cause.Status = ce.Status
		}
	}
	if ex == nil {
		ex = cl.l.getExchange()
		ex.begin(cl, cl.l.now)
	}
	// The access log says what was received of the request line.
	buf, _ := cl.c.Peek(-1)
	m, target := httpcodec.RequestLineOf(buf, int(cl.l.srv.cfg.Server.MaxRequestLine))
	ex.headRefused = true
	ex.headMethod = append(ex.headMethod[:0], m...)
	ex.headTarget = append(ex.headTarget[:0], target...)
	// The request could not be read: outbound filters still see the answer, with an
	// empty request.
	ex.req.Reset()
	ex.id = cl.l.nextRequestID(ex.id[:0])
	ex.initContext()
	cl.ex = ex
	cl.state = stProxy
	ex.closeAfter = true
	ex.fail(cause, reason)
}

// onDeadline fires when the connection's current deadline passed.
func (cl *client) onDeadline() {
	switch cl.state {
	case stHead:
		if cl.headStart == 0 {
			cl.close() // idle keep-alive connection: close quietly
			return
		}
		cl.failRequest(nil, &httpcodec.Error{Status: 408, Cause: filters.ClientTimeout.Name, Reason: "request head not complete within server.header_read_timeout"})
	case stProxy:
		ex := cl.ex
		if ex != nil && !ex.reqDone && !cl.paused {
			ex.failBody(&httpcodec.Error{Status: 408, Cause: filters.ClientTimeout.Name, Reason: "request body stalled longer than server.header_read_timeout"})
			return
		}
		// The client stopped reading the response for idle_timeout.
		if ex != nil {
			ex.cause, ex.reason = filters.ClientTimeout, "client stopped reading the response for server.idle_timeout"
			ex.status = ex.resp.Status
			ex.logAccess()
		}
		cl.close()
	default:
		cl.close()
	}
}

// write sends b; it reports false when the connection is gone (a failed write closes it).
func (cl *client) write(b []byte) bool {
	if cl.state == stClosed {
		return false
	}
	_, _ = cl.c.Write(b)
	return cl.state != stClosed
}

// finishExchange detaches the finished exchange and either waits for the next request
// or closes the connection once the response has left.
func (cl *client) finishExchange(closeAfter bool) {
	if ex := cl.ex; ex != nil {
		cl.ex = nil
		cl.l.retire(ex)
	}
	if cl.state == stClosed {
		return
	}
	if closeAfter || cl.drainClose {
		cl.closeWhenFlushed()
		return
	}
	cl.awaitRequest(cl.l.now, false)
	if cl.c.OutboundBuffered() > cl.l.limit.maxBuffered {
		// A pipelining client that does not read its answers: take no next request
		// until they drained, or its answers would pile up without bound.
		cl.pause()
		cl.watchDrain()
		return
	}
	if cl.paused {
		cl.resume()
	}
	if cl.c.InboundBuffered() > 0 {
		cl.readHead() // a pipelined request is already here
	}
}

// closeWhenFlushed closes the connection once gnet has written everything out.
func (cl *client) closeWhenFlushed() {
	if cl.c.OutboundBuffered() == 0 {
		cl.lingerClose()
		return
	}
	cl.state = stFlushing
	cl.deadline = cl.l.now + cl.l.limit.idleTimeout
	cl.watchDrain()
}

// lingerClose shuts the write side and reads until the client closes (or lingerFor
// passes), so unread request bytes do not turn the close into a reset that would
// destroy the answer in the client's receive buffer.
func (cl *client) lingerClose() {
	if cl.c.InboundBuffered() == 0 {
		cl.close()
		return
	}
	_ = unix.Shutdown(cl.fd, unix.SHUT_WR)
	_, _ = cl.c.Discard(-1)
	cl.state = stLingering
	cl.deadline = cl.l.now + lingerFor
	if cl.paused {
		cl.resume()
	}
}

// close closes the connection now.
func (cl *client) close() {
	if cl.state == stClosed {
		return
	}
	_ = cl.l.el.Close(cl.c)
}

// onClose runs when gnet closed the connection, whoever asked.
func (cl *client) onClose(err error) {
	cl.state = stClosed
	cl.l.removeClient(cl)
	if cl.onDrainFn != nil { // it waited for a drain at least once
		cl.l.srv.watcher.unwatch(cl.fd)
	}
	if ex := cl.ex; ex != nil {
		cl.ex = nil
		ex.clientGone(err)
		cl.l.retire(ex)
	}
}

func (cl *client) pause() {
	if cl.l.epfd < 0 || cl.state == stClosed {
		return
	}
	if err := setInterest(cl.l.epfd, cl.c, false); err == nil {
		cl.paused = true
	}
}

func (cl *client) resume() {
	if cl.state == stClosed {
		return
	}
	cl.paused = false
	_ = setInterest(cl.l.epfd, cl.c, true)
}

// watchDrain asks for a wake-up when the client's socket takes more bytes.
func (cl *client) watchDrain() {
	if cl.onDrainFn == nil {
		cl.onDrainFn = cl.onDrained
	}
	if err := cl.l.srv.watcher.watch(cl.fd, cl.l.el, cl.onDrainFn); err != nil {
		cl.close()
	}
}

// onDrained runs on the loop when the client's socket became writable again.
func (cl *client) onDrained() {
	if cl.state == stClosed {
		return
	}
	cl.l.clock()
	pending := cl.c.OutboundBuffered()
	switch {
	case cl.state == stFlushing:
		if pending == 0 {
			cl.lingerClose()
		} else {
			cl.watchDrain()
		}
	case pending > cl.l.limit.maxBuffered/2:
		cl.deadline = cl.l.now + cl.l.limit.idleTimeout // it is reading: progress
		cl.watchDrain()
	case cl.state == stHead && cl.paused:
		// Its answers drained: the pipelined requests may go on.
		cl.resume()
		if cl.c.InboundBuffered() > 0 {
			cl.readHead()
		}
	case cl.ex != nil && cl.ex.up != nil && cl.ex.up.paused:
		if cl.ex.reqDone {
			cl.deadline = 0
		}
		cl.ex.up.resume()
		cl.ex.pumpResponse()
	}
	cl.l.reap()
}
