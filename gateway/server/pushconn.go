package server

import (
	"errors"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"gozer/gateway/push"
)

// pushConn states.
const (
	pcOpen    uint8 = iota
	pcClosing       // a close or go-away was sent; waiting for the echo or the deadline
	pcClosed
)

// push connection kinds.
const (
	kindWS uint8 = iota
	kindSSE
)

// closeGrace is how long a client gets to echo a close frame before the socket is
// closed without it.
const closeGrace = 5e9

var (
	errPushClosed = errors.New("push connection closed")
	errPushSlow   = errors.New("push connection's outbound buffer is full (slow consumer)")
)

// pushConn is a device's websocket or SSE connection once it was upgraded. It
// replaces the HTTP client as the gnet context, so an idle push connection costs
// this struct, gnet's connection and its registry entry, no HTTP state.
//
// Concurrency: Push may be called from any goroutine and only touches the atomic
// fields before handing the message to the loop's inbox; every other method runs
// on the connection's event loop.
type pushConn struct {
	l   *loop
	c   gnet.Conn
	id  string
	dec push.Decoder

	kind   uint8
	state  uint8
	missed uint8 // pings sent since the last pong (or other frame)
	paused bool  // reading paused: too many upstream messages in flight
	why    uint8 // why the gateway ended it (whyDevice: it did not), for the log
	// closeCode is the websocket close code the connection ended with: the one
	// the gateway sent, or the device's; 0 when no close frame passed.
	closeCode uint16
	wslot     int32 // the loop's wheel slot (-1: not in the wheel)
	widx      int32

	opened   int64 // unix ns
	nextPing int64 // unix ns
	deadline int64 // unix ns: end of life (go-away), or of the close handshake when closing

	queued     atomic.Int64  // bytes handed to Push and not yet written
	flags      atomic.Uint32 // pcGone, pcLeaving, pcSlow
	upInflight atomic.Int32  // device messages handed upstream, not finished
	msgsIn     uint32
	msgsOut    uint32 // also the id of the last SSE event when no replay ring is kept
}

// Why the gateway ended a connection (pushConn.why), as the access log says.
const (
	whyDevice      uint8 = iota // the device closed, or the connection broke
	whyLifetime                 // push.max_lifetime reached
	whyDrain                    // the gateway shuts down
	whyPingTimeout              // two pings unanswered
	whySlow                     // outbound buffer full
	whyProtocol                 // a websocket protocol error (1002, 1007, 1009)
)

var whyNames = [...]string{"device", "lifetime", "drain", "ping_timeout", "slow_consumer", "protocol_error"}

// pushConn.flags bits, set from any goroutine.
const (
	pcGone    uint32 = 1 << iota // closed: Push refuses
	pcLeaving                    // a go-away or close frame is out: Push refuses
	pcSlow                       // Push found the outbound bound exceeded: the loop closes it
)

// setFlag sets bit f and reports whether this call set it.
func (pc *pushConn) setFlag(f uint32) bool { return pc.flags.Or(f)&f == 0 }

// due is the next time the timer wheel must look at pc.
func (pc *pushConn) due() int64 {
	if pc.state == pcOpen && pc.nextPing < pc.deadline {
		return pc.nextPing
	}
	return pc.deadline
}

// Push queues msg for the device. Any goroutine; see push.Conn.
func (pc *pushConn) Push(msg []byte, binary bool) error { return pc.PushSeq(msg, binary, 0) }

// PushSeq is Push with the number of the registry's push call (push.SeqConn), so
// that an SSE message to several devices of one id is one event.
func (pc *pushConn) PushSeq(msg []byte, binary bool, seq uint64) error {
	if pc.flags.Load()&(pcGone|pcLeaving) != 0 {
		return errPushClosed // closed, or told to go away: the message would be dropped
	}
	h := pc.l.srv.push
	if pc.kind == kindSSE && h.rings != nil {
		msg = h.rings.event(pc.id, msg, seq) // one event id for all the id's devices
	}
	n := int64(len(msg))
	if pc.queued.Add(n) > h.maxOutbound {
		pc.queued.Add(-n)
		if pc.setFlag(pcSlow) {
			_ = pc.l.push.enqueue(pushItem{pc: pc}) // nil msg: close it on the loop
		}
		return errPushSlow
	}
	if err := pc.l.push.enqueue(pushItem{pc: pc, msg: msg, binary: binary}); err != nil {
		pc.queued.Add(-n)
		return err
	}
	return nil
}

// deliver writes one queued message (loop goroutine).
func (pc *pushConn) deliver(msg []byte, binary bool) {
	if pc.state == pcClosed {
		return
	}
	h := pc.l.srv.push
	if msg == nil { // queued by Push when the bound was exceeded
		pc.slowClose()
		return
	}
	pc.queued.Add(-int64(len(msg)))
	if pc.state != pcOpen {
		return // a go-away or close is out: the device reconnects elsewhere
	}
	p := pc.l.push
	if pc.kind == kindSSE {
		if h.rings == nil { // not formatted by Push: the event id is this connection's own count
			b := push.AppendEvent(p.scratch[:0], uint64(pc.msgsOut)+1, "", msg)
			p.scratch = b[:0]
			msg = b
		}
		_, _ = pc.c.Write(msg)
	} else {
		op := push.OpText
		if binary {
			op = push.OpBinary
		}
		p.iov = append(p.iov[:0], push.AppendFrameHeader(p.hdr[:0], op, true, len(msg)), msg)
		_, _ = pc.c.Writev(p.iov)
		p.iov[1] = nil
	}
	pc.msgsOut++
	h.stats.sent.Add(1)
	if pc.state != pcClosed && int64(pc.c.OutboundBuffered()) > h.maxOutbound {
		pc.slowClose()
	}
}

// slowClose closes a connection whose device does not read fast enough: its
// outbound buffer reached push.max_outbound_bytes. There is no point waiting for a
// close handshake with a peer that does not read.
func (pc *pushConn) slowClose() {
	if pc.state == pcClosed {
		return
	}
	h := pc.l.srv.push
	h.stats.slowClosed.Add(1)
	pc.why = whySlow
	pc.logClose(zerolog.InfoLevel, "slow consumer: outbound buffer over push.max_outbound_bytes")
	if pc.kind == kindWS && pc.state == pcOpen { // one close frame per connection (RFC 6455 5.5.1)
		pc.closeCode = uint16(push.ClosePolicyViolation)
		_, _ = pc.c.Write(push.AppendClose(pc.l.push.scratch[:0], push.ClosePolicyViolation, "slow consumer: outbound buffer full"))
	}
	pc.close()
}

// onData runs the read path: websocket frames are decoded in gnet's buffer;
// an SSE client has nothing to say, its bytes are dropped.
func (pc *pushConn) onData() {
	c := pc.c
	if pc.kind == kindSSE || pc.state == pcClosed || pc.dec.Failed() {
		_, _ = c.Discard(-1) // SSE, or lingering after a protocol error: read to EOF
		return
	}
	if pc.paused {
		pc.pause() // gnet re-armed reading after a flush; the reason still holds
		return
	}
	buf, _ := c.Peek(-1)
	in, consumed := buf, 0
	for pc.state != pcClosed {
		n, m, err := pc.dec.Decode(in)
		in, consumed = in[n:], consumed+n
		if err != nil {
			var ce *push.CloseError
			errors.As(err, &ce)
			pc.protocolClose(ce)
			return
		}
		if !m.Ok() {
			break
		}
		pc.missed = 0 // any frame shows the device is there
		pc.onMessage(m)
		if pc.paused {
			break // upstream backpressure: the rest waits in gnet's buffer until resume
		}
	}
	if pc.state != pcClosed {
		_, _ = c.Discard(consumed)
	}
}

// protocolClose answers a protocol error (1002, 1007, 1009) with its close frame,
// then lingers: it reads and drops what the device still sends until the device
// closes or closeGrace passes, so that closing with unread input does not turn
// into a reset that may destroy the close frame before the device reads it.
func (pc *pushConn) protocolClose(ce *push.CloseError) {
	h := pc.l.srv.push
	h.stats.protocolClosed.Add(1)
	pc.why = whyProtocol
	pc.closeCode = uint16(ce.Code)
	pc.logClose(zerolog.InfoLevel, "websocket protocol error: "+ce.Reason)
	if pc.state != pcOpen {
		pc.close()
		return
	}
	_, _ = pc.c.Discard(-1)
	_, _ = pc.c.Write(push.AppendClose(pc.l.push.scratch[:0], ce.Code, ce.Reason))
	if pc.c.OutboundBuffered() == 0 {
		_ = unix.Shutdown(pc.c.Fd(), unix.SHUT_WR) // the close frame is out: FIN after it
	}
	pc.leave(pc.l.now + closeGrace)
}

// leave marks a connection whose close frame (or go-away) is out: Push refuses,
// and the wheel closes it at deadline unless the device closes first. Reading
// goes back on if upstream backpressure had paused it: the device's close echo
// must be read (else the close ends in a reset), and what it sent meanwhile is
// dropped and counted, not sent upstream.
func (pc *pushConn) leave(deadline int64) {
	pc.markLeaving()
	pc.state = pcClosing
	pc.deadline = deadline
	pc.l.push.schedule(pc)
	pc.resume()
}

// markLeaving is the moment a connection stops taking messages (a close frame or
// go-away is out): Push refuses from now on, and the registry forgets it, so the
// push API no longer counts it as connected. Loop goroutine.
func (pc *pushConn) markLeaving() {
	if pc.setFlag(pcLeaving) {
		pc.unregister()
	}
}

func (pc *pushConn) unregister() {
	h := pc.l.srv.push
	if last := h.reg.Remove(pc.id, pc); last && h.registrar != nil {
		h.registrar.Unregistered(pc.id)
	}
}

// onMessage handles one decoded message; its payload is valid until Discard.
func (pc *pushConn) onMessage(m push.Message) {
	h := pc.l.srv.push
	switch m.Op {
	case push.OpPing:
		if pc.state != pcOpen {
			return // after our close frame nothing more may be sent
		}
		_, _ = pc.c.Write(push.AppendPong(pc.l.push.scratch[:0], m.Payload))
		if int64(pc.c.OutboundBuffered()) > h.maxOutbound {
			pc.slowClose() // a ping flood from a peer that does not read the pongs
		}
	case push.OpPong:
	case push.OpClose:
		if pc.state == pcOpen {
			// The device closes: echo its code (RFC 6455 5.5.1), then close.
			code := m.Code
			pc.closeCode = uint16(code) // the device's own (1005: it gave none)
			if code == push.CloseNoStatus {
				code = push.CloseNormal
			}
			_, _ = pc.c.Write(push.AppendClose(pc.l.push.scratch[:0], code, ""))
		}
		pc.close()
	case push.OpText:
		pc.msgsIn++
		if pc.state != pcOpen {
			h.stats.upstreamDropped.Add(1) // sent after our close frame: the device is leaving
			return
		}
		h.upstream.send(pc, m.Payload)
	case push.OpBinary:
		pc.msgsIn++
		h.stats.upstreamDropped.Add(1) // binary messages have no upstream contract
	}
}

// onTimer runs when the wheel found pc due: ping, ping timeout, lifetime go-away,
// or the end of a close handshake.
func (pc *pushConn) onTimer(now int64) {
	h := pc.l.srv.push
	if pc.state == pcClosing {
		if now >= pc.deadline {
			pc.close() // the device did not echo the close in time
		}
		return
	}
	if now >= pc.deadline {
		pc.goAway(now, "max connection lifetime, reconnect")
		return
	}
	if now >= pc.nextPing {
		if pc.paused {
			pc.missed = 0 // its pongs wait unread behind our own backpressure
		}
		if pc.kind == kindWS && pc.missed >= 2 {
			h.stats.pingTimeouts.Add(1)
			pc.why = whyPingTimeout
			pc.logClose(zerolog.InfoLevel, "ping timeout: two pings without an answer")
			pc.close()
			return
		}
		if pc.kind == kindWS {
			_, _ = pc.c.Write(push.AppendPing(pc.l.push.scratch[:0], nil))
			pc.missed++
		} else {
			_, _ = pc.c.Write(push.AppendKeepalive(pc.l.push.scratch[:0]))
		}
		// From the due time, not from now: the wheel fires up to a second late, and
		// that must not add up ping after ping.
		pc.nextPing += h.pingInterval
		if pc.nextPing <= now {
			pc.nextPing = now + h.pingInterval
		}
	}
}

// goAway asks the device to reconnect (lifetime reached, or the gateway drains):
// websocket gets close 1001 with a reason and closes after the echo; SSE gets a
// retry hint and an "event: goaway", then closes once that is written.
func (pc *pushConn) goAway(now int64, reason string) {
	if pc.state != pcOpen {
		return
	}
	h := pc.l.srv.push
	h.stats.goAways.Add(1)
	pc.why = whyLifetime
	if pc.l.push.drainTill > 0 {
		reason = "server restarting, reconnect"
		pc.why = whyDrain
	}
	pc.markLeaving()
	if pc.kind == kindSSE {
		b := push.AppendRetry(pc.l.push.scratch[:0], int64(pc.l.rnd.Uint32()%5000))
		b = push.AppendGoAway(b, reason)
		_, _ = pc.c.Write(b)
		pc.close()
		return
	}
	pc.closeCode = uint16(push.CloseGoingAway)
	_, _ = pc.c.Write(push.AppendClose(pc.l.push.scratch[:0], push.CloseGoingAway, reason))
	pc.leave(now + closeGrace)
}

// close closes the socket now (gnet writes what it can of the outbound buffer
// first); onClose follows.
func (pc *pushConn) close() {
	if pc.state == pcClosed {
		return
	}
	_ = pc.l.el.Close(pc.c)
}

// onClose runs when gnet closed the connection, whoever asked.
func (pc *pushConn) onClose(err error) {
	if pc.state == pcClosed {
		return
	}
	pc.state = pcClosed
	pc.setFlag(pcGone)
	h, p := pc.l.srv.push, pc.l.push
	p.unschedule(pc)
	pc.dec.Release()
	if pc.flags.Load()&pcLeaving == 0 {
		pc.unregister()
	}
	h.stats.open.Add(-1)
	pc.logLifetime(err)
}

func (pc *pushConn) pause() {
	if pc.l.epfd < 0 || pc.state == pcClosed {
		return
	}
	if err := setInterest(pc.l.epfd, pc.c, false); err == nil {
		pc.paused = true
	}
}

func (pc *pushConn) resume() {
	if pc.state == pcClosed || !pc.paused {
		return
	}
	pc.paused = false
	pc.missed = 0 // pongs that came while paused were not read: do not hold them against it
	_ = setInterest(pc.l.epfd, pc.c, true)
	if pc.c.InboundBuffered() > 0 {
		pc.onData()
	}
}
