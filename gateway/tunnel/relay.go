package tunnel

import (
	"gozer/gateway/loop"
	"gozer/gateway/push"
)

// OnData runs when the client sent bytes.
func (t *Tunnel) OnData() {
	if t.reads.Paused() {
		t.reads.Pause(t.lp.l, t.c) // gnet read on after a flush; the origin is still behind
		return
	}
	t.relayUp()
}

// relayUp moves what the client sent to the origin, and pauses the client's
// reads while the origin holds more than MaxBuffered of it unwritten.
func (t *Tunnel) relayUp() {
	if t.state == stClosed {
		return
	}
	if t.oGone {
		// Nowhere to send it, while the client gets its last bytes (closeClient's
		// grace): dropped, or gnet's buffer would hold all it sends meanwhile
		// (a client sending as fast as it can grew Gozer by 1 GiB in the 5 s).
		_, _ = t.c.Discard(-1)
		return
	}
	buf, _ := t.c.Peek(-1)
	if len(buf) == 0 {
		return
	}
	ok := t.pass(&t.up, buf, t.writeUp, whyClient)
	if t.state == stClosed {
		return
	}
	_, _ = t.c.Discard(len(buf))
	if !ok || t.oGone {
		return
	}
	if t.oc.OutboundBuffered() > t.spec.MaxBuffered && t.reads.Pause(t.lp.l, t.c) {
		if err := t.oc.WatchWritable(); err != nil {
			t.reads.Resume(t.lp.l, t.c) // no wake-up to wait for: do not wait
		}
	}
}

// relayDown moves what the origin sent to the client, and pauses the
// origin's reads while the client holds more than its allowance of it
// (MaxBuffered, less while the node is over its budget).
func (t *Tunnel) relayDown() {
	if t.state == stClosed || t.oGone {
		return
	}
	buf := t.oc.Peek()
	if len(buf) == 0 {
		return
	}
	ok := t.pass(&t.down, buf, t.writeDn, whyOrigin)
	if t.oGone {
		return
	}
	t.oc.Discard(len(buf))
	if !ok || t.state == stClosed {
		return
	}
	if t.c.OutboundBuffered() > t.allowance() {
		t.oc.Pause()
		if err := t.writable.Watch(t.lp.l, t.c, t.onClientWritable); err != nil {
			t.oc.Resume()
		}
	}
}

// pass follows buf, what one side sent, through d and writes what goes on
// with write: frames up to a close frame, or up to the boundary where the
// gateway's own close goes. Every byte of buf is done with when it returns
// (relayed, or dropped after a close); false: the tunnel is ending.
func (t *Tunnel) pass(d *dir, buf []byte, write func([]byte) bool, side uint8) bool {
	for off := 0; off < len(buf); {
		stop := d.inj != 0 && !d.shut
		n, err := d.tr.Feed(buf[off:], stop)
		if err != nil {
			t.protocolError(side, err) // the bad frame goes no further
			return false
		}
		if n > 0 && !d.shut {
			if !write(buf[off : off+n]) {
				return false
			}
			d.bytes += int64(n)
			t.count(d, n)
			t.last = t.lp.l.Now()
		}
		off += n
		if d.tr.Closed() {
			return t.closeFrame(d, side)
		}
		if stop && d.tr.AtBoundary() {
			if !t.sendClose(d) {
				return false
			}
			continue
		}
		if n == 0 {
			break
		}
	}
	return true
}

// count adds n relayed bytes to the origin's counters.
func (t *Tunnel) count(d *dir, n int) {
	if d == &t.up {
		t.spec.Counts.BytesUp.Add(int64(n))
	} else {
		t.spec.Counts.BytesDown.Add(int64(n))
	}
}

// closeFrame handles a peer's close frame that went d's way (or, d shut,
// the peer's echo of the gateway's close): the first close of the tunnel
// names who closed; once both ways carried one, both connections close.
func (t *Tunnel) closeFrame(d *dir, side uint8) bool {
	d.shut = true
	if t.why == whyNone {
		t.why, t.code = side, d.tr.CloseCode()
	}
	if t.up.tr.Closed() && t.down.tr.Closed() {
		t.closeNow()
		return false
	}
	t.closing(t.lp.l.Now())
	return true
}

// sendClose writes the gateway's close frame d's way (masked toward the
// origin, as a client's must be); d is shut from then on.
func (t *Tunnel) sendClose(d *dir) bool {
	code := d.inj
	d.inj, d.shut = 0, true
	lp := t.lp
	reason := whyNames[t.why]
	if d == &t.up {
		var key [4]byte
		r := lp.l.Rand.Uint32()
		key[0], key[1], key[2], key[3] = byte(r), byte(r>>8), byte(r>>16), byte(r>>24)
		payload := append(lp.scratch[:0], byte(code>>8), byte(code))
		payload = append(payload, reason...)
		frame := push.AppendMaskedFrame(payload[len(payload):], push.OpClose, true, key, payload)
		return t.toOrigin(frame)
	}
	return t.toClient(push.AppendClose(lp.scratch[:0], push.CloseCode(code), reason))
}

// goAway closes the tunnel from the gateway's side (drain, idle timeout,
// lifetime): close 1001 to both sides, each between two frames, then the
// close handshake's grace.
func (t *Tunnel) goAway(now int64, why uint8, reason string) {
	if t.state != stOpen {
		if t.state == stClosing && why == whyDrain {
			t.closeBy = min(t.closeBy, now+closeGrace)
		}
		return
	}
	t.why, t.code, t.reason = why, codeGoingAway, reason
	t.up.inj, t.down.inj = codeGoingAway, codeGoingAway
	t.closing(now)
	if t.down.tr.AtBoundary() && !t.down.shut && !t.sendClose(&t.down) {
		return
	}
	if t.up.tr.AtBoundary() && !t.up.shut && !t.sendClose(&t.up) {
		return
	}
	// A frame in progress gets its end before the close: the next relay.
	t.relayDown()
	t.relayUp()
}

// closing starts the close handshake's grace (once).
func (t *Tunnel) closing(now int64) {
	if t.state != stOpen {
		return
	}
	t.state = stClosing
	t.closeBy = now + closeGrace
	t.lp.wheel.Update(t)
}

// protocolError ends a tunnel whose peer broke RFC 6455: close 1002 to the
// side that did where a frame boundary allows it, then both connections
// close. Counted, and logged once per 10 s (a hostile client sends them by
// the thousand).
func (t *Tunnel) protocolError(side uint8, err error) {
	t.spec.Counts.Protocol.Add(1)
	if t.why == whyNone {
		t.why, t.code = whyProtocol, codeProtocol
	}
	t.reason = whyNames[side] + ": " + err.Error()
	t.lp.l.Shared.Sampled.Info("websocket_protocol_error").Str("origin", t.spec.Origin.Name).
		Str("client", t.spec.Log.Client).Str("reason", t.reason).Msg("websocket tunnel closed on a protocol error")
	d := &t.down // the client broke it: tell the client
	if side == whyOrigin {
		d = &t.up
	}
	d.inj = codeProtocol
	if d.tr.AtBoundary() && !d.shut && !t.sendClose(d) {
		return
	}
	t.closeNow()
}

// closeNow closes both connections: the origin at once, the client once it
// took what is left for it (within the close grace).
func (t *Tunnel) closeNow() {
	if t.state == stClosed {
		return
	}
	if !t.oGone {
		t.oGone = true
		t.oc.Abort()
	}
	t.closeClient()
}

// closeClient closes the client connection, after it took what it still has
// to read (a close frame above all) when it does within the close grace.
func (t *Tunnel) closeClient() {
	if t.state == stClosed {
		return
	}
	if t.c.OutboundBuffered() == 0 || t.flushing && t.lp.l.Now() >= t.closeBy {
		_ = t.lp.l.CloseConn(t.c)
		return
	}
	if !t.flushing {
		t.flushing = true
		if t.state == stOpen {
			t.closing(t.lp.l.Now())
		}
		if err := t.writable.Watch(t.lp.l, t.c, t.onClientWritable); err != nil {
			_ = t.lp.l.CloseConn(t.c)
		}
	}
}

// onClientWritable: the client took part of what waited for it. Its origin
// is read again once the client holds less than half the bound.
func (t *Tunnel) onClientWritable() {
	if t.state == stClosed {
		return
	}
	t.account()
	if t.flushing {
		if t.c.OutboundBuffered() == 0 {
			_ = t.lp.l.CloseConn(t.c)
		} else if err := t.writable.Watch(t.lp.l, t.c, t.onClientWritable); err != nil {
			_ = t.lp.l.CloseConn(t.c)
		}
		return
	}
	if t.c.OutboundBuffered() > loop.ResumeAt(t.allowance()) {
		if err := t.writable.Watch(t.lp.l, t.c, t.onClientWritable); err == nil {
			return
		}
	}
	if !t.oGone && t.oc.Paused() {
		t.oc.Resume()
		t.relayDown()
	}
	t.followHeld()
}
