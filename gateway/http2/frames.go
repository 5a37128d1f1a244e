package http2

import (
	"errors"

	"golang.org/x/net/http2"

	"gozer/gateway/telemetry"
)

// handle answers one frame the client sent.
func (c *Conn) handle(f http2.Frame) {
	if !c.gotSet {
		sf, ok := f.(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			c.fail(http2.ErrCodeProtocol, telemetry.H2ProtocolError, "the preface is not followed by SETTINGS")
			return
		}
		c.gotSet = true
	} else if _, cont := f.(*http2.ContinuationFrame); !cont && c.blk.active {
		// The Framer checks the frame order; this is a safety net.
		c.fail(http2.ErrCodeProtocol, telemetry.H2ProtocolError, "frame inside a header block")
		return
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		c.onSettings(f)
	case *http2.HeadersFrame:
		c.onHeaders(f)
	case *http2.ContinuationFrame:
		c.onContinuation(f)
	case *http2.DataFrame:
		c.onData(f)
	case *http2.WindowUpdateFrame:
		c.onWindowUpdate(f)
	case *http2.PingFrame:
		if !f.IsAck() && !c.abuse(false) {
			_ = c.fr.WritePing(true, f.Data)
		}
	case *http2.RSTStreamFrame:
		c.onReset(f)
	case *http2.PriorityFrame:
		// Ignored (RFC 9113 5.3.2 deprecates priorities), but for a stream
		// that depends on itself (a stream error, RFC 7540 5.3.1).
		if f.StreamDep == f.StreamID {
			c.resetStream(f.StreamID, http2.ErrCodeProtocol, telemetry.H2ProtocolError, "stream depends on itself")
			return
		}
		c.abuse(false)
	case *http2.GoAwayFrame:
		// The client leaves: its streams in flight finish, it opens no more.
		c.goAway()
	case *http2.PushPromiseFrame:
		c.fail(http2.ErrCodeProtocol, telemetry.H2ProtocolError, "PUSH_PROMISE from a client")
	}
}

// onSettings applies the client's settings and acknowledges them.
func (c *Conn) onSettings(f *http2.SettingsFrame) {
	if f.IsAck() {
		return
	}
	if c.abuse(false) {
		return
	}
	var bad bool
	if err := f.ForeachSetting(func(s http2.Setting) error { return s.Valid() }); err != nil {
		c.readError(err)
		return
	}
	_ = f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingHeaderTableSize:
			c.enc.resize = true
		case http2.SettingInitialWindowSize:
			d := int64(s.Val) - int64(c.peerWindow)
			c.peerWindow = s.Val
			for _, st := range c.streams {
				if st.sendWindow += d; st.sendWindow > 1<<31-1 {
					bad = true
				}
			}
		case http2.SettingMaxFrameSize:
			c.peerFrame = s.Val
		}
		return nil
	})
	if bad {
		c.fail(http2.ErrCodeFlowControl, telemetry.H2FlowControl, "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream's window")
		return
	}
	_ = c.fr.WriteSettingsAck()
	for _, st := range c.streams {
		st.sendPending()
	}
}

// onHeaders starts a request, or takes a request's trailers.
func (c *Conn) onHeaders(f *http2.HeadersFrame) {
	id := f.StreamID
	if id%2 == 0 {
		c.fail(http2.ErrCodeProtocol, telemetry.H2ProtocolError, "HEADERS on an even stream id")
		return
	}
	c.blk.begin(c, id, f.StreamEnded())
	if c.streams[id] != nil {
		c.blk.trailers = true
	} else if id <= c.lastID && f.StreamEnded() && c.clientEnds(id) {
		// A trailer section the client sent before our RST_STREAM reached
		// it (after min_body_rate's 408, a stream error): decoded, for
		// HPACK's state, and dropped, as its DATA is (RFC 9113 5.1), not a
		// connection error that would end every other stream. Once: it
		// ended the stream on the client's side, so another HEADERS there
		// is the client's error (STREAM_CLOSED, below), not a way to make
		// Gozer decode header blocks that count against nothing.
		c.blk.trailers = true
	} else if id <= c.lastID {
		code := http2.ErrCodeProtocol
		if c.recentlyClosed(id) {
			code = http2.ErrCodeStreamClosed
		}
		c.fail(code, telemetry.H2ProtocolError, "HEADERS reuse a stream id or go back")
		return
	} else {
		c.lastID = id
		if f.HasPriority() && f.Priority.StreamDep == id {
			c.blk.reset = http2.ErrCodeProtocol
		}
	}
	c.fragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

// onContinuation takes more of the header block.
func (c *Conn) onContinuation(f *http2.ContinuationFrame) {
	if !c.blk.active || f.StreamID != c.blk.id {
		c.fail(http2.ErrCodeProtocol, telemetry.H2ProtocolError, "CONTINUATION without its HEADERS")
		return
	}
	if c.blk.frames++; c.blk.frames > maxBlockFrames {
		c.fail(http2.ErrCodeEnhanceYourCalm, telemetry.H2ContinuationFlood, "header block in more than 32 frames")
		return
	}
	c.fragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

// fragment decodes a piece of the header block as it comes (the HPACK
// state must follow every block, even one that is refused).
func (c *Conn) fragment(p []byte, end bool) {
	if c.blk.bytes += len(p); c.blk.bytes > c.set.maxBlock {
		c.fail(http2.ErrCodeEnhanceYourCalm, telemetry.H2ContinuationFlood, "header block over twice server.max_header_bytes")
		return
	}
	if _, err := c.dec.Write(p); err != nil {
		c.fail(http2.ErrCodeCompression, telemetry.H2Compression, "header block: "+err.Error())
		return
	}
	if !end {
		return
	}
	if err := c.dec.Close(); err != nil {
		c.fail(http2.ErrCodeCompression, telemetry.H2Compression, "header block: "+err.Error())
		return
	}
	c.blk.active = false
	if c.blk.trailers {
		// The stream may have ended since its HEADERS (body timer, an early
		// answer, a reset; each in another callback), and its object been
		// recycled. c.streams holds only this connection's live streams and
		// a stream id is never used twice, so what is found is the stream
		// the block began on. Gone: the block was decoded (HPACK state kept)
		// and is dropped; the client's frames on a stream we closed with
		// RST_STREAM are to be ignored (RFC 9113 5.1).
		if st := c.streams[c.blk.id]; st != nil {
			c.trailers(st)
		}
		return
	}
	c.request()
}

// trailers takes a request's trailer section (trailers.go): checked, kept
// for the exchange, which passes it on to the origin, and the end of the
// stream's body.
func (c *Conn) trailers(st *stream) {
	switch {
	case st.remoteDone:
		c.resetStream(st.id, http2.ErrCodeStreamClosed, telemetry.H2ProtocolError, "HEADERS after the end of the stream")
	case !c.blk.endStream || c.blk.pseudo:
		c.resetStream(st.id, http2.ErrCodeProtocol, telemetry.H2ProtocolError, "malformed trailers")
	case st.declared >= 0 && st.received != st.declared:
		c.resetStream(st.id, http2.ErrCodeProtocol, telemetry.H2ProtocolError, "DATA does not match content-length")
	default:
		if !st.takeTrailers(&c.blk) {
			return // reset
		}
		st.endOfBody()
	}
}

// request opens the stream of a complete request header block.
func (c *Conn) request() {
	b := &c.blk
	id := b.id
	if c.state != stOpen {
		return // after GOAWAY: ignored (RFC 9113 6.8)
	}
	c.burst++
	if b.reset != 0 {
		c.resetStream(id, b.reset, telemetry.H2ProtocolError, "stream depends on itself")
		return
	}
	if c.open >= c.set.maxStreams {
		c.lp.l.Shared.H2.Count(telemetry.H2RefusedStream)
		_ = c.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		c.abuse(true)
		return
	}
	st := c.lp.newStream(c, id)
	c.streams[id] = st
	c.open++
	c.lp.l.Shared.H2.Streams.Add(1)
	c.requests++
	st.start(b)
	if max := c.lp.l.Snapshot().Config.Protect.MaxRequestsPerConnection; max > 0 && c.requests >= max {
		// protect.max_requests_per_connection: this stream is the last; the
		// client opens a new connection (through accept's limits) for more.
		c.goAway()
	}
}

// onData takes request body.
func (c *Conn) onData(f *http2.DataFrame) {
	n := int64(f.Length)
	if n > c.recvWindow {
		c.fail(http2.ErrCodeFlowControl, telemetry.H2FlowControl, "DATA over the connection's window")
		return
	}
	c.recvWindow -= n
	if c.recvWindow <= 0 {
		c.noteHold() // min_body_rate: every stream's body waits for Gozer now
	}
	st := c.streams[f.StreamID]
	if st == nil || st.remoteDone || st.reset {
		c.credit(nil, n)
		if st == nil && f.StreamID > c.lastID {
			c.fail(http2.ErrCodeProtocol, telemetry.H2ProtocolError, "DATA on an idle stream")
			return
		}
		if st == nil && c.recentlyReset(f.StreamID) || st != nil && st.resetByUs() {
			// RFC 9113 5.1: what the client sent before our RST_STREAM
			// reached it (a body after min_body_rate's 408) is ignored,
			// its window given back above; no reset, count or log. Empty
			// frames spend the abuse budget, as on an open stream.
			if n == 0 {
				c.abuse(false)
			}
			return
		}
		c.resetStream(f.StreamID, http2.ErrCodeStreamClosed, telemetry.H2ProtocolError, "DATA on a closed stream")
		return
	}
	if n > st.recvWindow {
		c.credit(nil, n)
		c.resetStream(st.id, http2.ErrCodeFlowControl, telemetry.H2FlowControl, "DATA over the stream's window")
		return
	}
	if n == 0 && !f.StreamEnded() && c.abuse(false) {
		return
	}
	st.recvWindow -= n
	if st.recvWindow <= 0 {
		st.noteHold() // min_body_rate: the body waits for Gozer's window now
	}
	data := f.Data()
	if pad := n - int64(len(data)); pad > 0 {
		c.credit(st, pad)
	}
	st.onData(data, f.StreamEnded())
}

// credit gives n bytes of window back to the client (the connection's, and
// st's when not nil); the WINDOW_UPDATEs leave with the next flush.
func (c *Conn) credit(st *stream, n int64) {
	if n <= 0 || c.state != stOpen && c.state != stGoingAway {
		return
	}
	c.recvCredit += n
	// The body may be taken in an origin's callback: the updates must leave
	// at its end, not wait for the client, which waits for them.
	c.flushSoon()
	// Batched: a WINDOW_UPDATE per quarter of the window, not per frame.
	if c.recvCredit >= int64(c.set.connWindow)/4 || c.recvWindow < int64(c.set.connWindow)/2 {
		_ = c.fr.WriteWindowUpdate(0, uint32(c.recvCredit))
		c.recvWindow += c.recvCredit
		c.recvCredit = 0
		if c.bodyHold.holding() {
			c.noteHold() // the hold ends (bodyrate.go)
		}
	}
	if st != nil && !st.remoteDone && c.streams[st.id] == st {
		st.recvCredit += n
		if st.recvCredit >= int64(c.set.window)/4 || st.recvWindow < int64(c.set.window)/2 {
			_ = c.fr.WriteWindowUpdate(st.id, uint32(st.recvCredit))
			st.recvWindow += st.recvCredit
			st.recvCredit = 0
			if st.bodyHold.holding() {
				st.noteHold()
			}
		}
	}
}

// onWindowUpdate opens a send window.
func (c *Conn) onWindowUpdate(f *http2.WindowUpdateFrame) {
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		if c.sendWindow += inc; c.sendWindow > 1<<31-1 {
			c.fail(http2.ErrCodeFlowControl, telemetry.H2FlowControl, "connection window over 2^31-1")
			return
		}
		blocked := c.blocked
		c.blocked = nil
		for _, st := range blocked {
			st.queued = false
			st.sendPending()
		}
		blocked = blocked[:0]
		c.blocked = append(blocked, c.blocked...)
		return
	}
	st := c.streams[f.StreamID]
	if st == nil {
		if f.StreamID > c.lastID {
			c.fail(http2.ErrCodeProtocol, telemetry.H2ProtocolError, "WINDOW_UPDATE on an idle stream")
			return
		}
		c.abuse(false) // a closed stream's: allowed, but no use
		return
	}
	if st.sendWindow += inc; st.sendWindow > 1<<31-1 {
		c.resetStream(st.id, http2.ErrCodeFlowControl, telemetry.H2FlowControl, "stream window over 2^31-1")
		return
	}
	st.sendPending()
}

// onReset ends a stream the client gave up on.
func (c *Conn) onReset(f *http2.RSTStreamFrame) {
	if f.StreamID > c.lastID {
		c.fail(http2.ErrCodeProtocol, telemetry.H2ProtocolError, "RST_STREAM on an idle stream")
		return
	}
	st := c.streams[f.StreamID]
	if c.abuse(true) || st == nil {
		return
	}
	st.reset, st.peerReset = true, true
	c.dropStream(st, errClientReset)
}

// resetStream sends RST_STREAM for id (a stream error) and forgets the
// stream, counted under why.
func (c *Conn) resetStream(id uint32, code http2.ErrCode, why telemetry.H2Reason, reason string) {
	if c.state == stClosed || c.state == stLingering {
		return
	}
	sh := c.lp.l.Shared
	sh.H2.Count(why)
	if e := sh.Sampled.Info(streamLogKeys[why]); e != nil { // nil: sampled out, nothing formatted
		e.Str("client", c.remote).Str("code", code.String()).Str("reason", reason).Msg("http2 stream reset")
	}
	_ = c.fr.WriteRSTStream(id, code)
	if st := c.streams[id]; st != nil {
		st.reset = true
		c.dropStream(st, errors.New("stream reset: "+reason))
	}
	// A reset the client provoked with a frame the RFC forbids counts as a
	// reset it sent (MadeYouReset, CVE-2025-8671: a WINDOW_UPDATE of 0 or
	// DATA after END_STREAM cancels a stream, its origin request started,
	// as RST_STREAM does, and would otherwise get max_control_frames' budget,
	// ten times max_resets'). Resets Gozer decides (a slow reader, a stall,
	// a refused push) are control frames.
	c.abuse(why == telemetry.H2ProtocolError || why == telemetry.H2FlowControl)
}

// forget removes st from the connection, once.
func (c *Conn) forget(st *stream) {
	if c.streams[st.id] != st {
		return
	}
	delete(c.streams, st.id)
	c.open--
	c.pendTotal -= len(st.pend) - st.poff
	id := st.id
	if !st.remoteDone && !st.peerReset {
		id |= closedByUs // the client may still be sending on it
	}
	c.closed[c.closedAt] = id
	c.closedAt = (c.closedAt + 1) % len(c.closed)
	if st.queued {
		c.blocked = remove(c.blocked, st)
	}
	if st.waiting {
		st.waiting = false
		c.waiters = remove(c.waiters, st)
	}
	c.lp.freeStream(st)
	if len(c.streams) == 0 {
		c.idle()
		if c.state == stGoingAway {
			c.linger()
		}
	}
}

// closedByUs marks, in Conn.closed, a stream Gozer ended while the client
// could still send on it (RST_STREAM: after a response that did not wait
// for the body, a stream error, an abort). Stream ids are 31 bits.
const closedByUs = 1 << 31

// recentlyClosed reports whether id is one of the last streams closed.
func (c *Conn) recentlyClosed(id uint32) bool {
	for _, x := range c.closed {
		if x&^closedByUs == id {
			return true
		}
	}
	return false
}

// resetByUs reports whether Gozer reset st (still known) while the client
// could still send on it.
func (st *stream) resetByUs() bool { return st.reset && !st.peerReset && !st.remoteDone }

// recentlyReset reports whether id is one of the last streams closed, and
// was closed by Gozer while the client could still send on it: frames the
// client sent before it learnt are to be ignored (RFC 9113 5.1).
func (c *Conn) recentlyReset(id uint32) bool { return c.resetAt(id) >= 0 }

// resetAt is where id stands in Conn.closed as closed by Gozer while the
// client could still send on it (-1: not there).
func (c *Conn) resetAt(id uint32) int {
	for i, x := range c.closed {
		if x == id|closedByUs {
			return i
		}
	}
	return -1
}

// clientEnds reports whether id is a stream Gozer reset while the client
// could still send on it (recentlyReset), and notes that the client ended
// it: frames after that are no longer in flight but the client's error.
func (c *Conn) clientEnds(id uint32) bool {
	i := c.resetAt(id)
	if i < 0 {
		return false
	}
	c.closed[i] = id
	return true
}

// remove takes st out of list (the order of the others kept).
func remove(list []*stream, st *stream) []*stream {
	for i, x := range list {
		if x == st {
			n := copy(list[i:], list[i+1:])
			list[i+n] = nil
			return list[:i+n]
		}
	}
	return list
}
