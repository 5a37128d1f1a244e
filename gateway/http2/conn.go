package http2

import (
	"bytes"
	"errors"
	"net/netip"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"golang.org/x/sys/unix"

	"gozer/filters"
	"gozer/gateway/loop"
	"gozer/gateway/peers"
	"gozer/gateway/telemetry"
	"gozer/gateway/tlsconn"
)

// Preface is what an HTTP/2 client sends first (RFC 9113 3.4).
const Preface = http2.ClientPreface

var preface = []byte(Preface)

// lingerFor bounds how long a connection that sent GOAWAY reads and drops
// what the client still sends, so that its close does not turn into a reset
// that destroys the GOAWAY in the client's receive buffer.
const lingerFor = 2e9

type connState uint8

const (
	stPreface connState = iota // waiting for the client's preface
	stOpen
	stGoingAway // GOAWAY sent: no new stream; closes when the streams are done
	stLingering // GOAWAY sent and the write side shut: drop input until EOF
	stClosed
)

// settings are what the connection took from http2.* when it opened.
type settings struct {
	maxStreams    int
	window        uint32 // a stream's receive window (SETTINGS_INITIAL_WINDOW_SIZE)
	connWindow    uint32
	maxFrame      uint32
	maxHeaderList uint32
	maxFields     int // server.max_headers
	maxBlock      int // header block bytes (all fragments) before ENHANCE_YOUR_CALM
	maxResets     int
	maxControl    int
	abuseWindow   int64
}

// maxBlockFrames caps the CONTINUATION frames of one header block: a real
// client needs one or two (16 KiB each).
const maxBlockFrames = 32

// Conn is one HTTP/2 client connection. Loop goroutine only.
type Conn struct {
	lp       *Loop
	c        gnet.Conn
	fd       int32
	slot     int32
	timer    loop.Timer
	deadline int64
	remote   string
	addr     netip.AddrPort
	scheme   string
	tls      *filters.TLSInfo
	peer     *peers.Peer
	state    connState
	set      settings

	fr *http2.Framer
	rd frameReader
	// part is the start of a frame that did not arrive whole (partial.go).
	part []byte
	out  []byte // frames written in this callback, not yet given to gnet
	enc  headEncoder
	hb   []byte // the header block being written (writeHeaders)
	dec  *hpack.Decoder
	blk  block // the header block being received

	streams  map[uint32]*stream
	open     int    // streams counted against max_concurrent_streams
	requests int    // streams begun (protect.max_requests_per_connection)
	lastID   uint32 // the highest stream id the client used
	closed   [16]uint32
	closedAt int
	gotSet   bool // the client's first SETTINGS came

	peerWindow uint32 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame  uint32 // the client's SETTINGS_MAX_FRAME_SIZE
	sendWindow int64  // the connection's send window
	recvWindow int64  // what the client may still send on the connection
	recvCredit int64  // taken or dropped, not yet given back
	// min_body_rate (bodyrate.go): how long the connection's window was
	// closed, in all.
	bodyHold  holdClock
	blocked   []*stream
	waiters   []*stream // streams that called WaitWritable (st.waiting)
	spare     []*stream // wakeWaiters' other list
	pendTotal int       // response bytes the streams hold (flow control)
	sent      int64     // bytes given to gnet
	dataSent  int64     // DATA payload the connection's window let out (sendrate.go)
	rateAt    int64     // the end of the window of server.min_send_rate (0: none; sendrate.go)
	rateMark  int64     // taken when it began
	dataMark  int64     // dataSent when it began
	held      int32
	idleAt    int64 // when the last stream ended

	flushing         bool      // flushSoon queued a flush (in lp.batch)
	burst            int       // streams begun in this OnData (turns.go)
	turn             bool      // waiting for its turn: not read meanwhile (turns.go)
	fed              []*stream // streams whose body came in this OnData (feedBodies)
	reads            loop.Reads
	abuseAt          int64
	resets, controls int
	writable         loop.Writable
}

// Timer implements loop.Timed; Slot loop.Slotted.
func (c *Conn) Timer() *loop.Timer { return &c.timer }

// Slot implements loop.Slotted.
func (c *Conn) Slot() *int32 { return &c.slot }

// Loop is the loop that owns the connection.
func (c *Conn) Loop() *loop.Loop { return c.lp.l }

// frameReader is the Framer's reader: one whole frame of gnet's buffer.
type frameReader struct{ b []byte }

func (r *frameReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, errors.New("http2: frame read past its end")
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// outWriter is the Framer's writer: the connection's out buffer.
type outWriter struct{ c *Conn }

func (w outWriter) Write(p []byte) (int, error) {
	w.c.out = append(w.c.out, p...)
	return len(p), nil
}

// start sends the server's SETTINGS and waits for the preface.
func (c *Conn) start() {
	snap := c.lp.l.Snapshot()
	h := &snap.Config.HTTP2
	c.set = settings{maxStreams: h.MaxConcurrentStreams, window: uint32(h.InitialWindowSize),
		connWindow: uint32(h.ConnectionWindowSize), maxFrame: uint32(h.MaxFrameSize),
		maxHeaderList: uint32(snap.Limits.MaxHeaderBytes), maxFields: snap.Limits.MaxHeaders, maxResets: h.MaxResets,
		maxControl: h.MaxControlFrames, abuseWindow: int64(h.AbuseWindow)}
	c.set.maxBlock = 2*int(c.set.maxHeaderList) + 16<<10
	c.streams = make(map[uint32]*stream)
	c.fr = http2.NewFramer(outWriter{c}, &c.rd)
	c.fr.SetMaxReadFrameSize(c.set.maxFrame)
	c.dec = hpack.NewDecoder(4096, c.blk.emit)
	c.dec.SetMaxStringLength(int(c.set.maxHeaderList))
	c.peerWindow, c.peerFrame = 65535, 16384
	c.sendWindow, c.recvWindow = 65535, 65535
	c.state = stPreface
	_ = c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: uint32(c.set.maxStreams)},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: c.set.window},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: c.set.maxFrame},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.set.maxHeaderList},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
	)
	if d := int64(c.set.connWindow) - 65535; d > 0 {
		_ = c.fr.WriteWindowUpdate(0, uint32(d))
		c.recvWindow += d
	}
	c.setDeadline(c.lp.l.Now() + snap.Limits.HeaderTimeout)
	c.flush()
}

// OnData reads the whole frames the client sent and answers them, up to
// streamBurst streams begun (turns.go).
func (c *Conn) OnData() {
	if c.state == stLingering || c.state == stClosed {
		_, _ = c.c.Discard(-1)
		c.dropPart()
		return
	}
	if c.turn {
		// A read gnet let slip past the pause: it waits with the rest.
		c.reads.Pause(c.lp.l, c.c)
		return
	}
	c.burst = 0
	if len(c.part) > 0 {
		c.finishPart()
	}
	buf, _ := c.c.Peek(-1)
	off := 0
	if c.state == stPreface {
		if len(buf) < len(preface) {
			if !bytes.HasPrefix(preface, buf) {
				c.fail(http2.ErrCodeProtocol, telemetry.H2ProtocolError, "no HTTP/2 connection preface")
			} else if tc, ok := c.c.(*tlsconn.Conn); ok && tc.PeerClosed() {
				c.close() // a TLS client's close_notify: the preface never ends now
			}
			return
		}
		if !bytes.HasPrefix(buf, preface) {
			c.fail(http2.ErrCodeProtocol, telemetry.H2ProtocolError, "no HTTP/2 connection preface")
			return
		}
		off = len(preface)
		c.state = stOpen
		c.idle()
	}
	later := false
	for c.state == stOpen || c.state == stGoingAway {
		rest := buf[off:]
		if len(rest) < 9 {
			break
		}
		if c.burst >= streamBurst {
			later = true
			break
		}
		n := frameLen(rest)
		if n > int(c.set.maxFrame) {
			c.fail(http2.ErrCodeFrameSize, telemetry.H2FrameSize, "frame over http2.max_frame_size")
			break
		}
		if len(rest) < 9+n {
			break
		}
		off += 9 + n
		c.readFrame(rest[:9+n])
	}
	switch c.state {
	case stOpen, stGoingAway:
		if !later && off < len(buf) {
			c.keepPart(buf[off:])
			off = len(buf)
		}
		loop.Consume(c.c, off)
	case stLingering:
		_, _ = c.c.Discard(-1)
		c.dropPart()
	}
	if len(c.fed) > 0 {
		c.feedBodies()
	}
	c.flush()
	c.wakeWaiters()
	if later && (c.state == stOpen || c.state == stGoingAway) {
		// After the flush: a write the socket does not take whole makes
		// gnet read the connection again, which would undo the pause.
		c.waitTurn()
	} else if c.state == stOpen && tlsconn.PeerDone(c.c) { // the client sends no more
		c.goAway() // the streams it began finish; then it closes, flushed
	}
}

// OnPeerClosed implements tlsconn.PeerCloser: the client sent its
// close_notify and every byte before it is read. GOAWAY: the streams in
// flight finish, then the connection closes, flushed (a partial preface or
// frame can no longer end).
func (c *Conn) OnPeerClosed() { c.goAway() }

// frameLen is the payload length in a frame's header (b holds 9 bytes).
func frameLen(b []byte) int { return int(b[0])<<16 | int(b[1])<<8 | int(b[2]) }

// readFrame answers frame, one whole frame (header and payload); what the
// Framer refuses is answered as its error says.
func (c *Conn) readFrame(frame []byte) {
	c.rd.b = frame
	f, err := c.fr.ReadFrame()
	if err != nil {
		c.readError(err)
		return
	}
	c.handle(f)
}

// readError answers what the Framer refused: a stream error resets the
// stream, anything else ends the connection.
func (c *Conn) readError(err error) {
	var se http2.StreamError
	if errors.As(err, &se) {
		c.resetStream(se.StreamID, se.Code, telemetry.H2ProtocolError, se.Error())
		return
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		code, why := http2.ErrCode(ce), telemetry.H2ProtocolError
		switch code {
		case http2.ErrCodeFrameSize:
			why = telemetry.H2FrameSize
		case http2.ErrCodeFlowControl:
			why = telemetry.H2FlowControl
		}
		reason := err.Error()
		if d := c.fr.ErrorDetail(); d != nil {
			reason = d.Error()
		}
		c.fail(code, why, reason)
		return
	}
	c.fail(http2.ErrCodeProtocol, telemetry.H2ProtocolError, err.Error())
}

// flush gives what the callback wrote to gnet.
func (c *Conn) flush() {
	if len(c.out) == 0 || c.state == stClosed {
		c.out = c.out[:0]
		return
	}
	out := c.out
	c.sent += int64(len(out))
	_, _ = c.c.Write(out)
	c.out = out[:0]
	if cap(c.out) > 256<<10 {
		c.out = nil
	}
	c.account()
}

// flushSoon flushes once the loop finished its batch of events (Loop.queueFlush):
// for frames written outside the connection's own callbacks (a response
// from an origin's, a WINDOW_UPDATE for body an origin took). Responses of
// several streams that came in one batch leave in one write, one TLS record.
func (c *Conn) flushSoon() {
	if !c.flushing {
		c.flushing = true
		c.lp.queueFlush(c)
	}
}

// connLogKeys and streamLogKeys are the sampled log's keys per reason, made
// once: a flood of resets must not build a string per reset.
var connLogKeys, streamLogKeys = func() (conn, stream [len(telemetry.H2Reasons)]string) {
	for i, n := range telemetry.H2Reasons {
		conn[i], stream[i] = "http2_"+n, "http2_stream_"+n
	}
	return conn, stream
}()

// fail ends the connection for a protocol error or an attack: GOAWAY with
// code, counted under why and logged once per reason and 10 s.
func (c *Conn) fail(code http2.ErrCode, why telemetry.H2Reason, reason string) {
	if c.state == stLingering || c.state == stClosed {
		return
	}
	sh := c.lp.l.Shared
	sh.H2.Count(why)
	if e := sh.Sampled.Info(connLogKeys[why]); e != nil { // nil: sampled out, nothing formatted
		e.Str("client", c.remote).Str("code", code.String()).Str("reason", reason).Msg("http2 connection ended")
	}
	_ = c.fr.WriteGoAway(c.lastID, code, nil)
	c.linger()
}

// goAway starts a graceful end (drain, idle): GOAWAY NO_ERROR, the streams
// in flight finish, new ones are ignored.
func (c *Conn) goAway() {
	if c.state != stOpen && c.state != stPreface {
		return
	}
	_ = c.fr.WriteGoAway(c.lastID, http2.ErrCodeNo, nil)
	c.state = stGoingAway
	if len(c.streams) == 0 {
		c.linger()
		return
	}
	c.flush()
}

// linger flushes, shuts the write side and drops input until the client
// closes or lingerFor passed.
func (c *Conn) linger() {
	c.flush()
	if c.state == stClosed {
		return
	}
	c.state = stLingering
	for _, st := range c.streams {
		c.dropStream(st, nil)
	}
	if c.c.OutboundBuffered() > 0 {
		c.watchWritable() // shut once flushed (onWritable)
	} else {
		_ = unix.Shutdown(int(c.fd), unix.SHUT_WR)
	}
	_, _ = c.c.Discard(-1)
	c.setDeadline(c.lp.l.Now() + lingerFor)
}

// close closes the connection now.
func (c *Conn) close() {
	if c.state != stClosed {
		_ = c.lp.l.CloseConn(c.c)
	}
}

// OnClose runs when gnet closed the connection, whoever asked.
func (c *Conn) OnClose(err error) {
	c.state = stClosed
	c.dropPart()
	for _, st := range c.streams {
		c.dropStream(st, err)
	}
	c.blocked = c.blocked[:0]
	c.account()
	c.lp.conns.Remove(c)
	c.lp.wheel.Cancel(c)
	c.writable.Release(c.lp.l, int(c.fd))
	sh := c.lp.l.Shared
	sh.ClientClosed()
	sh.Peers.Close(c.peer)
	c.peer = nil
}

// dropStream forgets st, telling its exchange that the client is gone.
func (c *Conn) dropStream(st *stream, err error) {
	if ex := st.ex; ex != nil {
		st.ex = nil
		ex.OnGone(err)
	}
	if p := st.push; p != nil {
		p.gone(err)
	}
	c.forget(st)
}

// setDeadline sets when the connection's timer fires (0: not armed).
func (c *Conn) setDeadline(d int64) {
	c.deadline = d
	if d != 0 {
		c.lp.wheel.Update(c)
	}
}

// idle arms the idle timer when no stream is open.
func (c *Conn) idle() {
	if len(c.streams) == 0 {
		c.idleAt = c.lp.l.Now()
	}
	c.rearm()
}

// rearm sets the connection's timer to its earliest: a stream's, or the
// idle timeout while no stream is open. It scans the streams: for the timer
// itself (onTimer) and idle; a stream's own events call arm.
func (c *Conn) rearm() {
	if c.state == stLingering || c.state == stClosed || c.state == stPreface {
		return
	}
	d := c.rateAt
	if len(c.streams) == 0 {
		if t := c.idleAt + c.lp.l.Snapshot().Limits.IdleTimeout; d == 0 || t < d {
			d = t
		}
	}
	for _, st := range c.streams {
		if t := st.due(); t > 0 && (d == 0 || t < d) {
			d = t
		}
	}
	c.setDeadline(d)
}

// arm takes st's timers into the connection's after one of them changed,
// without a scan of the streams: a deadline that comes sooner moves the
// connection's; one that went later or away leaves it, and the timer that
// then fires early finds nothing due and rearms (onTimer). So a stream's
// events cost the same with 1 or 100 streams open (rearm's scan ran several
// times per request).
func (c *Conn) arm(st *stream) {
	if c.state == stLingering || c.state == stClosed || c.state == stPreface {
		return
	}
	if t := st.due(); t > 0 && (c.deadline == 0 || t < c.deadline) {
		c.setDeadline(t)
	}
}

// onTimer runs when the connection's deadline passed.
func (c *Conn) onTimer(now int64) {
	c.deadline = 0
	switch c.state {
	case stPreface, stLingering:
		c.close()
		return
	}
	if c.rateAt > 0 && now >= c.rateAt && !c.rateDue() {
		return
	}
	if len(c.streams) == 0 {
		if now < c.idleAt+c.lp.l.Snapshot().Limits.IdleTimeout {
			c.rearm() // the rate window's turn (it goes on): not idle yet
			return
		}
		if c.state == stGoingAway {
			c.linger()
		} else {
			c.goAway()
		}
		return
	}
	for _, st := range c.streams {
		if t := st.due(); t > 0 && now >= t {
			st.onTimer(now)
		}
	}
	c.flush()
	c.rearm()
}

// watchWritable asks for a wake-up when the client's socket takes more bytes.
func (c *Conn) watchWritable() {
	if err := c.writable.Watch(c.lp.l, c.c, c.onWritable); err != nil {
		c.close()
	}
}

// onWritable runs when the client's socket became writable again.
func (c *Conn) onWritable() {
	if c.state == stClosed {
		return
	}
	c.account()
	if c.state == stLingering {
		if c.c.OutboundBuffered() > 0 {
			c.watchWritable()
		} else {
			_ = unix.Shutdown(int(c.fd), unix.SHUT_WR)
		}
		return
	}
	c.wakeWaiters()
}

// wakeWaiters lets the streams whose response waited (WaitWritable) go on
// once their client took enough (window opened, socket drained). It walks
// c.waiters only, not every stream: it runs after every read.
func (c *Conn) wakeWaiters() {
	if c.state == stClosed || c.state == stLingering {
		return
	}
	if len(c.waiters) == 0 {
		c.flush()
		return
	}
	resume := loop.ResumeAt(c.lp.l.Shared.SendAllowance(c.lp.l.Snapshot().Limits.MaxBuffered))
	socketFull := false
	// OnWritable may wait again or end streams: they go to a fresh list.
	ws := c.waiters
	c.waiters = c.spare[:0]
	for i, st := range ws {
		if !st.waiting { // forgotten meanwhile
			continue
		}
		if st.Buffered() > resume {
			socketFull = socketFull || c.c.OutboundBuffered() > resume
			c.waiters = append(c.waiters, st)
			continue
		}
		st.writable()
		if c.state == stClosed {
			clear(ws[i+1:])
			break
		}
	}
	clear(ws)
	c.spare = ws[:0]
	if c.state == stClosed {
		return
	}
	if socketFull {
		c.watchWritable()
	}
	c.flush()
}

// account tells the node how much the connection holds toward its client
// (Shared.Buffered): its send buffer and its streams' waiting DATA.
func (c *Conn) account() {
	n := int32(0)
	if c.state != stClosed {
		n = int32(min(c.c.OutboundBuffered()+c.pendTotal, 1<<30))
	}
	if d := n - c.held; d != 0 {
		c.lp.l.Shared.Buffered.Add(int64(d))
		c.held = n
	}
	if n > 0 && c.rateAt == 0 {
		c.rateWatch()
	}
}

// abuse counts a reset (reset) or a control frame and reports whether the
// client went past its cap for the window: the connection then ended.
func (c *Conn) abuse(reset bool) bool {
	now := c.lp.l.Now()
	if now-c.abuseAt > c.set.abuseWindow {
		c.abuseAt, c.resets, c.controls = now, 0, 0
	}
	if reset {
		if c.resets++; c.resets > c.set.maxResets {
			c.fail(http2.ErrCodeEnhanceYourCalm, telemetry.H2RapidReset, "streams reset past http2.max_resets")
			return true
		}
		return false
	}
	if c.controls++; c.controls > c.set.maxControl {
		c.fail(http2.ErrCodeEnhanceYourCalm, telemetry.H2ControlFlood, "control frames past http2.max_control_frames")
		return true
	}
	// Answers (PING and SETTINGS acks) queued toward a client that does not
	// read: stop before they pile up.
	if c.c.OutboundBuffered() > c.lp.l.Snapshot().Limits.MaxBuffered {
		c.fail(http2.ErrCodeEnhanceYourCalm, telemetry.H2ControlFlood, "control frames to answer while the client reads none")
		return true
	}
	return false
}
