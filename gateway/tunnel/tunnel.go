// Package tunnel is the websocket tunnel, the connection kind of a client
// connection whose upgrade request an origin accepted (101): from then on
// its bytes are websocket frames relayed to and from the origin connection
// byte for byte, on the loop, with backpressure both ways, an idle timeout,
// a lifetime, the drain, and one access-log line when it ends.
//
// The exchange makes the tunnel (Loop.Open), after the origin's 101: the
// client connection's gnet context becomes the *Tunnel (Serve, after
// Downstream.Hijack, as a push connection takes over its connection), and
// the tunnel becomes the origin connection's owner for the rest of its life
// (originconn.Conn.Tunnel): the origin connection stays its own kind, the
// tunnel hears of its bytes through originconn.Owner.
//
// Frames are not decoded, only followed (Tracker): the gateway knows where
// each ends, so that it can send a close frame of its own between two
// frames, stop relaying after a close frame, and refuse a stream no peer may
// send.
//
// Concurrency: everything runs on the tunnel's event loop (both connections
// are on it: the origin connection was dialled onto the client's loop).
package tunnel

import (
	"gozer/gateway/config"
	"gozer/gateway/loop"
	"gozer/gateway/origin"
	"gozer/gateway/originconn"
	"gozer/gateway/peers"
	"gozer/gateway/telemetry"

	"github.com/panjf2000/gnet/v2"
)

// Tunnel states.
const (
	stOpen    uint8 = iota
	stClosing       // a close frame passed or went out: waiting for the echo, the close, or closeBy
	stClosed        // the client connection closed: the tunnel ended and logged
)

// closeGrace is how long the close handshake may take (the peers' echoes,
// the client taking what is left for it) before both sockets close without it.
const closeGrace = int64(5e9)

// Who ended a tunnel (Tunnel.why), as the access log's closed_by says.
const (
	whyNone uint8 = iota
	whyClient
	whyOrigin
	whyIdle
	whyLifetime
	whyDrain
	whyProtocol
)

var whyNames = [...]string{"", "client", "origin", "idle_timeout", "max_lifetime", "drain", "protocol_error"}

// Close codes the gateway sends.
const (
	codeGoingAway = 1001
	codeProtocol  = 1002
)

// Spec is what the exchange hands a new tunnel: the origin connection, the
// settings the tunnel keeps for life, and what its access-log line says.
// Every slice is the tunnel's own (copied).
type Spec struct {
	Origin   *origin.Origin
	Server   *origin.Server
	Conn     *originconn.Conn
	Settings config.WebSocket
	// MaxBuffered is server.max_buffered_per_conn: how much one side may
	// hold unwritten before the other side's reads pause (toward the client,
	// less while the node is over server.max_buffered_total: allowance).
	MaxBuffered int
	// Counts are the origin's tunnel counts; the exchange took the tunnel's
	// slot (TunnelCounts.Acquire), the tunnel gives it back when it ends.
	Counts *telemetry.TunnelCounts
	// Admitted: the request holds a slot of the origin's bulkhead (and
	// adaptive limit) since AdmitAt; the tunnel finishes it when it ends.
	// Latency is the origin's time to its 101, for the adaptive limit.
	Admitted         bool
	AdmitAt, Latency int64
	// Peer is the client's count of requests in flight
	// (server.max_requests_per_ip) the tunnel stays in while it is open: it
	// holds an origin's slot as long, and a client opening tunnels must meet
	// that cap as one sending requests does. Ended when the tunnel ends; nil:
	// not counted.
	Peer *peers.Peer
	Log  LogInfo
}

// dir is one direction of a tunnel.
type dir struct {
	tr Tracker
	// inj is the code of a close the gateway sends this way once the frame
	// in progress ended (0: none).
	inj uint16
	// shut: a close frame went this way (relayed, or the gateway's): nothing
	// more does; what still comes is followed (to see the peer's close) and
	// dropped.
	shut  bool
	bytes int64 // relayed this way
}

// Tunnel is one websocket tunnel: a client connection and an origin
// connection relaying frames. Loop goroutine only.
type Tunnel struct {
	lp    *Loop
	c     gnet.Conn // the client connection (its gnet context is the tunnel)
	oc    *originconn.Conn
	spec  Spec
	timer loop.Timer

	up   dir // client → origin
	down dir // origin → client

	reads    loop.Reads    // the client's: paused while the origin takes less
	writable loop.Writable // the client's socket: taking bytes again
	fd       int
	held     loop.Held // what the tunnel counts in Shared.Buffered (account)

	state    uint8
	why      uint8
	oGone    bool // the origin connection closed (or was closed)
	flushing bool // closing the client once it took what is left for it
	code     uint16
	reason   string // what the log says beside closed_by (a protocol error)
	opened   int64
	last     int64 // the last byte relayed either way
	end      int64 // max_lifetime
	closeBy  int64 // end of the close handshake (closing)
	headOut  int64 // the 101 head written to the client
	writeUp  func([]byte) bool
	writeDn  func([]byte) bool
}

// Timer implements loop.Timed.
func (t *Tunnel) Timer() *loop.Timer { return &t.timer }

// Loop is the loop that owns the tunnel (the dispatcher's connection).
func (t *Tunnel) Loop() *loop.Loop { return t.lp.l }

// Open makes the tunnel of spec and takes its origin connection over (the
// origin connection's events come to it from now on). Serve must follow in
// the same callback with the client connection.
func (lp *Loop) Open(spec Spec) *Tunnel {
	now := lp.l.Now()
	if spec.Settings.IdleTimeout <= 0 { // an origin built without its config (tests)
		spec.Settings.IdleTimeout = config.DefaultWebSocketIdle
	}
	if spec.Settings.MaxLifetime <= 0 {
		spec.Settings.MaxLifetime = config.DefaultWebSocketLifetime
	}
	t := &Tunnel{lp: lp, spec: spec, oc: spec.Conn, opened: now, last: now,
		up: dir{tr: NewTracker(true)}, down: dir{tr: NewTracker(false)}}
	t.end = now + int64(spec.Settings.MaxLifetime)
	t.timer.Init()
	t.writeUp, t.writeDn = t.toOrigin, t.toClient
	spec.Conn.Tunnel(t)
	spec.Counts.Total.Add(1)
	return t
}

// Serve takes over c, the client connection whose request the origin
// accepted: head (the origin's 101, as the outbound filters left it; valid
// for the callback only, it is written before Serve returns) goes to the client,
// then whatever either side sent behind its handshake.
func (t *Tunnel) Serve(c gnet.Conn, head []byte) {
	t.c, t.fd = c, c.Fd()
	c.SetContext(t)
	t.lp.wheel.Schedule(t)
	t.headOut = int64(len(head))
	if !t.toClient(head) {
		return
	}
	if t.lp.draining {
		t.goAway(t.lp.l.Now(), whyDrain, "server restarting")
	}
	t.relayDown()
	t.relayUp()
}

// toOrigin writes b to the origin; false when the tunnel ended meanwhile.
func (t *Tunnel) toOrigin(b []byte) bool {
	if t.oGone || !t.oc.Write(b) {
		return false
	}
	return t.state != stClosed
}

// toClient writes b to the client; false when the tunnel ended meanwhile.
func (t *Tunnel) toClient(b []byte) bool {
	if t.state == stClosed {
		return false
	}
	_, _ = t.c.Write(b)
	t.account()
	t.followHeld()
	return t.state != stClosed
}

// followHeld keeps a wake-up armed while the client holds bytes, so that the
// account follows them out: without it a tunnel that goes quiet with a tail
// in gnet's buffer (under its allowance, so nothing else watches) would keep
// that tail counted in server.max_buffered_total until its next message.
func (t *Tunnel) followHeld() {
	if t.held > 0 && t.state != stClosed {
		if err := t.writable.Watch(t.lp.l, t.c, t.onClientWritable); err != nil {
			_ = t.lp.l.CloseConn(t.c)
		}
	}
}

// account tells the node how much the tunnel holds toward its client
// (Shared.Buffered, against server.max_buffered_total), as an HTTP/1.1
// connection does for its responses: after each write to the client, each
// wake-up of a client with bytes pending (followHeld keeps one armed), and
// when the tunnel ends.
func (t *Tunnel) account() { t.held.Account(t.lp.l.Shared, t.c, t.state == stClosed) }

// allowance is how much the client may hold before the origin's reads
// pause: server.max_buffered_per_conn, lowered while the node holds more than
// server.max_buffered_total (loop.Shared.SendAllowance).
func (t *Tunnel) allowance() int { return t.lp.l.Shared.SendAllowance(t.spec.MaxBuffered) }

// due is when the wheel must look at t next.
func (t *Tunnel) due() int64 {
	switch t.state {
	case stClosed:
		return 0
	case stClosing:
		return t.closeBy
	}
	return min(t.last+int64(t.spec.Settings.IdleTimeout), t.end)
}

// onTimer: the close handshake took too long, or the tunnel was idle for
// idle_timeout, or reached max_lifetime.
func (t *Tunnel) onTimer(now int64) {
	switch t.state {
	case stClosing:
		if now >= t.closeBy {
			t.closeNow()
		}
	case stOpen:
		if now >= t.end {
			t.goAway(now, whyLifetime, "max lifetime reached")
		} else if now >= t.last+int64(t.spec.Settings.IdleTimeout) {
			t.goAway(now, whyIdle, "idle timeout")
		}
	}
}
