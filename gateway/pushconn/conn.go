package pushconn

import (
	"errors"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"gozer/gateway/loop"
	"gozer/gateway/push"
)

// Conn states.
const (
	pcOpen    uint8 = iota
	pcClosing       // a close or go-away was sent; waiting for the echo or the deadline
	pcClosed
)

// Kind is a push connection's protocol.
type Kind uint8

// The kinds of push connection.
const (
	WebSocket Kind = iota
	SSE
)

// closeGrace is how long a client gets to echo a close frame before the socket is
// closed without it.
const closeGrace = 5e9

var (
	errPushClosed = errors.New("push connection closed")
	errPushSlow   = errors.New("push connection's outbound buffer is full (slow consumer)")
)

// Conn is a device's websocket or SSE connection once it was upgraded. It
// replaces the HTTP connection as the gnet context, so an idle push connection
// costs this struct (128 bytes), gnet's connection and its registry entry, no
// HTTP state.
//
// Concurrency: Push may be called from any goroutine and only touches the atomic
// fields before handing the message to the loop's inbox; MessageDone likewise;
// every other method runs on the connection's event loop.
type Conn struct {
	lp  *Loop
	c   gnet.Conn
	id  string
	dec push.Decoder

	kind   Kind
	state  uint8
	missed uint8      // pings sent since the last pong (or other frame)
	reads  loop.Reads // paused: too many device messages on their way upstream
	why    uint8      // why the gateway ended it (whyDevice: it did not), for the log
	// closeCode is the websocket close code the connection ended with: the one
	// the gateway sent, or the device's; 0 when no close frame passed.
	closeCode uint16
	timer     loop.Timer

	opened   int64 // unix ns
	nextPing int64 // unix ns
	deadline int64 // unix ns: end of life (go-away), or of the close handshake when closing

	queued     atomic.Int64  // bytes handed to Push and not yet written
	flags      atomic.Uint32 // pcGone, pcLeaving, pcSlow
	upInflight atomic.Int32  // device messages handed upstream, not finished
	msgsIn     uint32
	msgsOut    uint32 // also the id of the last SSE event when there is no history
}

// Why the gateway ended a connection (Conn.why), as the access log says.
const (
	whyDevice      uint8 = iota // the device closed, or the connection broke
	whyLifetime                 // push.max_lifetime reached
	whyDrain                    // the gateway shuts down
	whyPingTimeout              // two pings unanswered
	whySlow                     // outbound buffer full
	whyProtocol                 // a websocket protocol error (1002, 1007, 1009)
)

var whyNames = [...]string{"device", "lifetime", "drain", "ping_timeout", "slow_consumer", "protocol_error"}

// Conn.flags bits, set from any goroutine.
const (
	pcGone       uint32 = 1 << iota // closed: Push refuses
	pcLeaving                       // a go-away or close frame is out: Push refuses
	pcSlow                          // Push found the outbound bound exceeded: the loop closes it
	pcRecovering                    // waiting for its replay (Redis): live messages are in it, not sent
	pcIDs                           // websocket: messages carry their id ("<id>\n" before the payload)
)

// setFlag sets bit f and reports whether this call set it.
func (pc *Conn) setFlag(f uint32) bool { return pc.flags.Or(f)&f == 0 }

// due is the next time the timer wheel must look at pc (0: never).
func (pc *Conn) due() int64 {
	if pc.state == pcClosed {
		return 0
	}
	if pc.state == pcOpen && pc.nextPing < pc.deadline {
		return pc.nextPing
	}
	return pc.deadline
}

// Push queues msg for the device. Any goroutine; see push.Conn.
func (pc *Conn) Push(msg []byte, binary bool) error { return pc.PushID(msg, binary, 0) }

// PushID is Push with the message's id (push.IDConn): an SSE event's id, and a
// websocket message's prefix when the device asked for ids. While the
// connection waits for its replay it takes the message without sending it:
// the replay has it.
func (pc *Conn) PushID(msg []byte, binary bool, id uint64) error {
	f := pc.flags.Load()
	if f&(pcGone|pcLeaving) != 0 {
		return errPushClosed // closed, or told to go away: the message would be dropped
	}
	if f&pcRecovering != 0 {
		return nil
	}
	return pc.queue(pushItem{pc: pc, msg: msg, binary: binary, id: id})
}

// queue hands it to the loop within the outbound bound. Any goroutine.
func (pc *Conn) queue(it pushItem) error {
	h := pc.lp.hub
	n := int64(len(it.msg))
	if pc.queued.Add(n) > h.Limits().MaxOutbound {
		pc.queued.Add(-n)
		if pc.setFlag(pcSlow) {
			_ = pc.lp.enqueue(pushItem{pc: pc, ctl: ctlSlow}) // close it on the loop
		}
		return errPushSlow
	}
	if err := pc.lp.enqueue(it); err != nil {
		pc.queued.Add(-n)
		return err
	}
	return nil
}

// replayed queues a replay that a recovery worker built (push.History.Recover)
// and lets live messages through again. It runs under the client id's history
// lock, so a message delivered after it is queued after the replay.
func (pc *Conn) replayed(r push.Replay) {
	for _, e := range r.Entries {
		_ = pc.queue(pushItem{pc: pc, msg: e.Msg, binary: e.Binary, id: e.ID})
	}
	if r.Resync {
		_ = pc.queue(pushItem{pc: pc, ctl: ctlResync, id: r.Newest})
	}
	pc.flags.And(^pcRecovering)
}

// deliver writes one queued item (loop goroutine).
func (pc *Conn) deliver(it *pushItem) {
	if pc.state == pcClosed {
		return
	}
	h := pc.lp.hub
	if it.ctl == ctlSlow { // queued by Push when the bound was exceeded
		pc.slowClose()
		return
	}
	pc.queued.Add(-int64(len(it.msg)))
	if pc.state != pcOpen {
		return // a go-away or close is out: the device reconnects elsewhere
	}
	p := pc.lp
	switch {
	case it.ctl == ctlResync:
		b := pc.appendResync(p.scratch[:0], it.id)
		p.scratch = b[:0]
		_, _ = pc.c.Write(b)
		return
	case pc.kind == SSE:
		id := it.id
		if id == 0 { // no history: the event id is this connection's own count
			id = uint64(pc.msgsOut) + 1
		}
		b := push.AppendEvent(p.scratch[:0], id, "", it.msg)
		p.scratch = b[:0]
		_, _ = pc.c.Write(b)
	default:
		op := push.OpText
		if it.binary {
			op = push.OpBinary
		}
		var prefix []byte
		if it.id != 0 && pc.flags.Load()&pcIDs != 0 {
			prefix = appendIDPrefix(p.idBuf[:0], it.id)
		}
		p.iov = append(p.iov[:0], push.AppendFrameHeader(p.hdr[:0], op, true, len(prefix)+len(it.msg)), prefix, it.msg)
		_, _ = pc.c.Writev(p.iov)
		p.iov[2] = nil
	}
	pc.msgsOut++
	h.Stats.Sent.Add(1)
	if pc.state != pcClosed && int64(pc.c.OutboundBuffered()) > h.Limits().MaxOutbound {
		pc.slowClose()
	}
}

// slowClose closes a connection whose device does not read fast enough: its
// outbound buffer reached push.max_outbound_bytes. There is no point waiting for a
// close handshake with a peer that does not read.
func (pc *Conn) slowClose() {
	if pc.state == pcClosed {
		return
	}
	h := pc.lp.hub
	h.Stats.SlowClosed.Add(1)
	pc.why = whySlow
	pc.logClose(zerolog.InfoLevel, "slow consumer: outbound buffer over push.max_outbound_bytes")
	if pc.kind == WebSocket && pc.state == pcOpen { // one close frame per connection (RFC 6455 5.5.1)
		pc.closeCode = uint16(push.ClosePolicyViolation)
		_, _ = pc.c.Write(push.AppendClose(pc.lp.scratch[:0], push.ClosePolicyViolation, "slow consumer: outbound buffer full"))
	}
	pc.close()
}

// OnData runs the read path: websocket frames are decoded in gnet's buffer;
// an SSE client has nothing to say, its bytes are dropped.
func (pc *Conn) OnData() {
	c := pc.c
	if pc.kind == SSE || pc.state == pcClosed || pc.dec.Failed() {
		_, _ = c.Discard(-1) // SSE, or lingering after a protocol error: read to EOF
		return
	}
	if pc.reads.Paused() {
		pc.pause() // gnet re-armed reading after a flush; the reason still holds
		return
	}
	buf, _ := c.Peek(-1)
	in, consumed := buf, 0
	var ping []byte // the last ping's payload (in buf): answered once, below
	pinged := false
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
		if m.Op == push.OpPing {
			ping, pinged = m.Payload, true
			continue
		}
		if pinged && m.Op != push.OpPong {
			// A ping is answered before whatever came after it (a close
			// frame ends what may be sent: RFC 6455 5.5.2).
			pc.pong(ping)
			pinged = false
		}
		pc.onMessage(m)
		if pc.reads.Paused() {
			break // upstream backpressure: the rest waits in gnet's buffer until resume
		}
	}
	if pinged {
		pc.pong(ping)
	}
	if pc.state != pcClosed {
		loop.Consume(c, consumed) // none when only part of a frame is here
	}
}

// protocolClose answers a protocol error (1002, 1007, 1009) with its close frame,
// then lingers: it reads and drops what the device still sends until the device
// closes or closeGrace passes, so that closing with unread input does not turn
// into a reset that may destroy the close frame before the device reads it.
func (pc *Conn) protocolClose(ce *push.CloseError) {
	h := pc.lp.hub
	h.Stats.ProtocolClosed.Add(1)
	pc.why = whyProtocol
	pc.closeCode = uint16(ce.Code)
	pc.logClose(zerolog.InfoLevel, "websocket protocol error: "+ce.Reason)
	if pc.state != pcOpen {
		pc.close()
		return
	}
	_, _ = pc.c.Discard(-1)
	_, _ = pc.c.Write(push.AppendClose(pc.lp.scratch[:0], ce.Code, ce.Reason))
	if pc.c.OutboundBuffered() == 0 {
		_ = unix.Shutdown(pc.c.Fd(), unix.SHUT_WR) // the close frame is out: FIN after it
	}
	pc.leave(pc.lp.l.Now() + closeGrace)
}

// leave marks a connection whose close frame (or go-away) is out: Push refuses,
// and the wheel closes it at deadline unless the device closes first. Reading
// goes back on if upstream backpressure had paused it: the device's close echo
// must be read (else the close ends in a reset), and what it sent meanwhile is
// dropped and counted, not sent upstream.
func (pc *Conn) leave(deadline int64) {
	pc.markLeaving()
	pc.state = pcClosing
	pc.deadline = deadline
	pc.lp.wheel.Schedule(pc)
	pc.resume()
}

// markLeaving is the moment a connection stops taking messages (a close frame or
// go-away is out): Push refuses from now on, and the registry forgets it, so the
// push API no longer counts it as connected. Loop goroutine.
func (pc *Conn) markLeaving() {
	if pc.setFlag(pcLeaving) {
		pc.unregister(true)
	}
}

// unregister takes pc out of the registry and its topics (left is true for a
// device that was served and goes: its topics linger, see unsubscribeAll).
func (pc *Conn) unregister(left bool) {
	pc.unsubscribeAll(left)
	h := pc.lp.hub
	if h.History != nil {
		h.History.Left(pc.id) // first: a push in between finds the device or its history
	}
	if last := h.Registry.Remove(pc.id, pc); last && h.Registrar != nil {
		h.Registrar.Unregistered(pc.id)
	}
}

// pong answers the last of the pings one read brought (payload: its
// payload). RFC 6455 5.5.3 lets an endpoint answer only the most recent of
// the pings it has not answered yet: a device that sends pings as fast as it
// can costs one write per read, not one per ping (3.3 million pings, one
// write each, held the loop's other clients for up to 350 ms at a time;
// TestPushPingFlood).
func (pc *Conn) pong(payload []byte) {
	if pc.state != pcOpen {
		return // after our close frame nothing more may be sent
	}
	_, _ = pc.c.Write(push.AppendPong(pc.lp.scratch[:0], payload))
	if int64(pc.c.OutboundBuffered()) > pc.lp.hub.Limits().MaxOutbound {
		pc.slowClose() // pings from a peer that does not read the pongs
	}
}

// onMessage handles one decoded message but pings (pong); its payload is
// valid until Discard.
func (pc *Conn) onMessage(m push.Message) {
	h := pc.lp.hub
	switch m.Op {
	case push.OpPong:
	case push.OpClose:
		if pc.state == pcOpen {
			// The device closes: echo its code (RFC 6455 5.5.1), then close.
			code := m.Code
			pc.closeCode = uint16(code) // the device's own (1005: it gave none)
			if code == push.CloseNoStatus {
				code = push.CloseNormal
			}
			_, _ = pc.c.Write(push.AppendClose(pc.lp.scratch[:0], code, ""))
		}
		pc.close()
	case push.OpText:
		pc.msgsIn++
		if pc.state != pcOpen {
			h.Stats.UpstreamDropped.Add(1) // sent after our close frame: the device is leaving
			return
		}
		if h.Cfg.Topics.ClientSubscribe && pc.control(m.Payload) {
			return // a topic control message, answered: not for the push origin
		}
		pc.sendUpstream(m.Payload)
	case push.OpBinary:
		pc.msgsIn++
		h.Stats.UpstreamDropped.Add(1) // binary messages have no upstream contract
	}
}

// onTimer runs when the wheel found pc due: ping, ping timeout, lifetime go-away,
// or the end of a close handshake.
func (pc *Conn) onTimer(now int64) {
	h := pc.lp.hub
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
		if pc.reads.Paused() {
			pc.missed = 0 // its pongs wait unread behind our own backpressure
		}
		if pc.kind == WebSocket && pc.missed >= 2 {
			h.Stats.PingTimeouts.Add(1)
			pc.why = whyPingTimeout
			pc.logClose(zerolog.InfoLevel, "ping timeout: two pings without an answer")
			pc.close()
			return
		}
		if pc.kind == WebSocket {
			_, _ = pc.c.Write(push.AppendPing(pc.lp.scratch[:0], nil))
			pc.missed++
		} else {
			_, _ = pc.c.Write(push.AppendKeepalive(pc.lp.scratch[:0]))
		}
		// From the due time, not from now: the wheel fires up to a second late, and
		// that must not add up ping after ping. A next ping already due (this one
		// came a whole interval late: a 1 s interval on the 1 s wheel whose
		// ticks fall just after the second) still goes at the next slot, not
		// an interval from now, which would make every gap two seconds. Only a
		// connection left behind by more than the wheel's lateness (a stalled
		// loop) skips the pings it missed.
		pc.nextPing += h.Limits().PingInterval
		if pc.nextPing <= now-int64(wheelLate) {
			pc.nextPing = now + h.Limits().PingInterval
		}
	}
}

// goAway asks the device to reconnect (lifetime reached, or the gateway drains):
// websocket gets close 1001 with a reason and closes after the echo; SSE gets a
// retry hint and an "event: goaway", then closes once that is written.
func (pc *Conn) goAway(now int64, reason string) {
	if pc.state != pcOpen {
		return
	}
	h := pc.lp.hub
	h.Stats.GoAways.Add(1)
	pc.why = whyLifetime
	if pc.lp.drainTill > 0 {
		reason = "server restarting, reconnect"
		pc.why = whyDrain
	}
	pc.markLeaving()
	if pc.kind == SSE {
		b := push.AppendRetry(pc.lp.scratch[:0], int64(pc.lp.l.Rand.Uint32()%5000))
		b = push.AppendGoAway(b, reason)
		_, _ = pc.c.Write(b)
		pc.close()
		return
	}
	pc.closeCode = uint16(push.CloseGoingAway)
	_, _ = pc.c.Write(push.AppendClose(pc.lp.scratch[:0], push.CloseGoingAway, reason))
	pc.leave(now + closeGrace)
}

// close closes the socket now (gnet writes what it can of the outbound buffer
// first); onClose follows.
func (pc *Conn) close() {
	if pc.state == pcClosed {
		return
	}
	_ = pc.lp.l.CloseConn(pc.c)
}

// OnClose runs when gnet closed the connection, whoever asked.
func (pc *Conn) OnClose(err error) {
	if pc.state == pcClosed {
		return
	}
	pc.state = pcClosed
	pc.setFlag(pcGone)
	h, p := pc.lp.hub, pc.lp
	p.wheel.Cancel(pc)
	pc.dec.Release()
	if pc.flags.Load()&pcLeaving == 0 {
		pc.unregister(true)
	}
	h.Stats.Open.Add(-1)
	p.l.Shared.ClientClosed()
	// The HTTP connection it was counted as (the client's address is gnet's
	// remote address, the PROXY protocol's included).
	p.l.Shared.Peers.CloseAddr(loop.AddrOf(pc.c.RemoteAddr()))
	pc.logLifetime(err)
}

func (pc *Conn) pause() {
	if pc.state == pcClosed {
		return
	}
	pc.reads.Pause(pc.lp.l, pc.c)
}

func (pc *Conn) resume() {
	if pc.state == pcClosed || !pc.reads.Paused() {
		return
	}
	pc.missed = 0 // pongs that came while paused were not read: do not hold them against it
	pc.reads.Resume(pc.lp.l, pc.c)
	if pc.c.InboundBuffered() > 0 {
		pc.OnData()
	}
}

// sendUpstream hands a device's text message to the push origin; reading
// pauses while SenderInflight of them are on their way.
func (pc *Conn) sendUpstream(payload []byte) {
	if pc.lp.hub.Sender.Send(pc, payload) && pc.upInflight.Add(1) >= push.SenderInflight {
		pc.pause() // backpressure to the device until its messages went out
	}
}

// ClientID implements push.Device.
func (pc *Conn) ClientID() string { return pc.id }

// MessageDone implements push.Device: one of the device's messages went out;
// reading goes on once fewer than SenderInflight are on their way. Any goroutine.
func (pc *Conn) MessageDone() {
	if pc.upInflight.Add(-1) == push.SenderInflight-1 {
		pc.lp.l.Execute(pc.resume)
	}
}

// Timer implements loop.Timed.
func (pc *Conn) Timer() *loop.Timer { return &pc.timer }

// Loop is the loop that owns the connection.
func (pc *Conn) Loop() *loop.Loop { return pc.lp.l }
