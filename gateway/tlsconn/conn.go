package tlsconn

import (
	"crypto/tls"
	"errors"
	"net"

	"github.com/panjf2000/gnet/v2"

	"gozer/filters"
	"gozer/gateway/loop"
	"gozer/gateway/peers"
)

// Kind is what a connection kind's connection is to the dispatcher (gateway
// server's conn): the TLS Conn stands in front of it as gnet's context and
// passes events on once the bytes are plaintext.
type Kind interface {
	Loop() *loop.Loop
	OnData()
	OnClose(err error)
}

// Ready is called on the loop when a handshake succeeded: it makes c a
// connection of some kind (an HTTP/1.1 client), which sets itself as c's
// context with c.SetContext, as it would on a plain connection.
type Ready func(c *Conn)

// maxPlain bounds the plaintext decrypted ahead of the kind: past it the
// ciphertext waits in gnet's buffer (and the kind's own backpressure, which
// pauses the socket, applies as on a plain connection). It is above what any
// kind holds unread on purpose (a request head: server.max_header_bytes), so
// a kind waiting for more of a head always gets it.
const maxPlain = 2 * loop.ReadBufferCap

// Conn is a client connection on the HTTPS listener: see the package doc.
// Loop goroutine only (the handshake goroutine uses only wire and hs).
type Conn struct {
	gnet.Conn // the socket; the methods below replace its reading and writing ones

	l     *loop.Loop
	srv   *Server
	tc    *tls.Conn
	w     wire
	ready Ready
	ctx   any // the kind's context (before it: what accept gave gc, e.g. the client's *peers.Peer)
	// buf is the plaintext buffer (from the loop's pool, nil when empty);
	// plain is its part the kind has not discarded yet: Discard moves plain's
	// start, and the rest moves to buf's front only when a fill needs room.
	buf, plain []byte
	state      uint8
	err        error // why the connection is being closed (a record error)
	// more: crypto/tls may hold bytes not decrypted yet (it read past the
	// handshake, or the plaintext buffer was full), so a fill must ask it even
	// when gnet has nothing new.
	more bool
	// woken: a Wake is on its way to hand the kind what more holds.
	woken bool
	// early is what the client sent right after its handshake that crypto/tls
	// has not read yet (it came while the handshake goroutine was finishing):
	// decrypted before anything newer in gnet's buffer.
	early []byte
	info  *filters.TLSInfo
	// told: the kind heard of the client's close_notify (peerClosed).
	told bool
	// reads: paused while the handshake has all it may read (handshakeData).
	reads loop.Reads
	// notified: the peer's close_notify came behind plaintext the kind has
	// not read yet (or, from a client, while answers wait in gnet's buffer).
	// Nothing more is read. An origin's connection closes once the kind read
	// it (Discard: its EOF ends a body framed by the close); a client's stays
	// open for the kind to answer what came before it, which then closes it
	// once its answers left (PeerClosed): closing with answers still in
	// gnet's buffer would lose them (gnet writes what it holds once, then
	// closes), and a TLS 1.3 client may well read after its close_notify
	// (RFC 8446 6.1).
	notified bool
	// keyUpdates counts the peer's KeyUpdate requests answered
	// (keyupdate.go), barrenN its records without data (records.go).
	keyUpdates, barrenN perWindow
	// The loop's handshakes in progress, oldest first (evict.go): hsStart is
	// when this one began (the loop's monotonic clock, Loop.Mono), qPrev and
	// qNext its neighbours while queued; evicted: closed to make room for a
	// newer connection; peer: the client's address as accept counted it (the
	// HTTPS listener counts every one), whose share of the node eviction
	// weighs.
	hsStart         int64
	qPrev, qNext    *Conn
	queued, evicted bool
	peer            *peers.Peer
	// silent: accepted, and the client's hello not all in yet (hello.go;
	// counted in the server's awaiting; no slot); waitBytes: what it sent
	// meanwhile, counted in the server's waitBytes.
	silent    bool
	waitBytes int64
	// dialed: a client connection (to an origin) whose handshake ran in the
	// dialling goroutine (Dial); it has no Server.
	dialed bool
}

const (
	stHandshake uint8 = iota
	stOpen
	stClosed
)

// New wraps gc, a connection accepted on the HTTPS listener, and starts its
// handshake; gc's context becomes the Conn. ctx is what accept gave gc
// (the kind finds it with Context, as on a plain connection). Loop
// goroutine, in OnOpen.
func New(gc gnet.Conn, l *loop.Loop, srv *Server, ctx any, ready Ready) *Conn {
	peer, _ := ctx.(*peers.Peer)
	c := &Conn{Conn: gc, l: l, srv: srv, ready: ready, ctx: ctx, peer: peer}
	c.w.c = c
	gc.SetContext(c)
	// A handshake in progress is a request in flight of its client's address
	// (server.max_requests_per_ip), from accept: one address cannot hold
	// silent connections without bound.
	if !l.Shared.Peers.Begin(peer, l.Now()) {
		srv.stats.refusedPerIP.Add(1)
		c.state = stClosed // OnClose releases the counts taken at accept
		l.Shared.Sampled.Warn("tls_handshakes_per_ip").Str("client", gc.RemoteAddr().String()).
			Msg("connection closed: its address has server.max_requests_per_ip handshakes and requests in flight")
		_ = gc.Close()
		return c
	}
	// No max_handshakes slot yet: that is for the goroutine, which starts
	// once the client's ClientHello is all in (hello.go). Until then the
	// connection holds memory only, bounded by the per-address and connection
	// limits and by handshake_timeout, and cannot keep other clients'
	// handshakes out.
	c.silent = true
	srv.awaiting.Add(1)
	tc := tls.Server(&c.w, srv.config)
	var hs *handshake
	hs = newHandshake(func() { c.handshake(hs, tc, peer) })
	hs.rec.on = true // records.go
	// For the goroutine's log line: gnet's address is the loop's to read (and
	// gone once the socket closes).
	hs.client = gc.RemoteAddr().String()
	c.w.hs, c.tc = hs, tc
	hs.arm(srv.timeout)
	return c
}

// handshake runs crypto/tls's server handshake; then it gives back its
// slot (when it holds one: takeSlot) and the peer's count New took, and
// wakes the loop, which takes over (OnData). Its own goroutine (started at
// the client's hello, the close or the timeout: handshake.start), bounded by
// the handshake timeout.
func (c *Conn) handshake(hs *handshake, tc *tls.Conn, peer *peers.Peer) {
	err := tc.Handshake()
	// Counted (and a failure logged) here, not when the loop takes over: a
	// client may close before that, and still has shaken hands or been
	// refused. Only the handshake's own failures: a client that went away
	// while waiting is counted when the loop sees it (client_closed).
	if err == nil {
		cs := tc.ConnectionState()
		c.srv.succeeded(&cs)
	} else if !errors.Is(err, net.ErrClosed) {
		c.countFailure(hs, err)
	}
	hs.finish(err)
	if hs.slotted() {
		c.srv.release()
	}
	c.l.Shared.Peers.End(peer) // atomic: any goroutine
	_ = c.Conn.Wake(nil)       // a no-op when the socket is gone
}

// Loop is the connection's event loop.
func (c *Conn) Loop() *loop.Loop { return c.l }

// Unwrap is the socket's gnet connection (for what reaches into gnet itself).
func (c *Conn) Unwrap() gnet.Conn { return c.Conn }

// Info is what the handshake negotiated, for filters and the access log;
// valid once the kind has the connection.
func (c *Conn) Info() *filters.TLSInfo { return c.info }

// Context is the kind's context (what it set), as on a plain connection.
func (c *Conn) Context() any { return c.ctx }

// SetContext sets the kind's context; gnet's stays this Conn.
func (c *Conn) SetContext(ctx any) { c.ctx = ctx }

// OnData is gnet's OnTraffic: more ciphertext, or the handshake goroutine's
// wake-up.
func (c *Conn) OnData() {
	c.woken = false
	switch c.state {
	case stHandshake:
		c.handshakeData()
	case stOpen:
		c.fill()
		if c.state == stOpen && len(c.plain) > 0 {
			if k, ok := c.ctx.(Kind); ok {
				k.OnData()
			}
		}
	default:
		_, _ = c.Conn.Discard(-1)
	}
}

// OnClose is gnet's OnClose.
func (c *Conn) OnClose(err error) {
	prev := c.state
	c.state = stClosed
	c.releasePlain()
	if hs := c.w.hs; hs != nil {
		if done, _, _ := hs.result(); !done && prev == stHandshake {
			reason := "client_closed" // mid-handshake: the goroutine's read ends now
			if c.evicted {
				reason = "evicted"
			}
			c.srv.failed(reason)
		}
		c.dequeue()
		c.heard()
		hs.close()
	}
	k, ok := c.ctx.(Kind)
	if !ok {
		// No kind took the connection (its handshake did not finish): the
		// counts taken at accept end here.
		c.l.Shared.ClientClosed()
		p, _ := c.ctx.(*peers.Peer)
		c.l.Shared.Peers.Close(p)
		c.ctx = nil
		return
	}
	if prev == stHandshake {
		return
	}
	if err == nil {
		err = c.err
	}
	k.OnClose(err)
}

// handshakeData feeds the goroutine, or takes the connection over once it is
// done.
func (c *Conn) handshakeData() {
	hs := c.w.hs
	if buf, _ := c.Conn.Peek(-1); len(buf) > 0 {
		n, fed := len(buf), 0
		if done, _, _ := hs.result(); !done {
			fed = hs.feed(buf)
			if c.silent {
				// Taken out of gnet's buffer at once: a Peek of a buffer that
				// kept bytes copies them all, each time (hello.go).
				loop.Consume(c.Conn, fed)
				took := fed
				n, fed = n-took, 0
				if !c.awaitHello(took) {
					return // not all in yet (all taken: helloBudget < maxFedIn), or closed
				}
			}
		}
		loop.Consume(c.Conn, fed)
		if fed < n {
			// The rest waits in gnet's buffer, and the client is not read
			// until the loop takes over (it decrypts them then): the
			// handshake has more than it may read already (maxHandshakeIn),
			// or is done.
			c.reads.Pause(c.l, c.Conn)
		}
	}
	done, rest, err := hs.result()
	if !done {
		return
	}
	c.dequeue() // done: no longer a handshake to evict
	if err != nil {
		c.handshakeFailed(err)
		return
	}
	if hs.out.pending() {
		// A flight still waits in gnet's task queue: the goroutine's Wake,
		// queued after it, brings the loop back here once it is written.
		return
	}
	c.w.rec = hs.records()
	c.w.hs = nil
	c.state = stOpen
	if c.reads.Paused() {
		c.reads.Resume(c.l, c.Conn) // from now on the kind pauses and resumes it
	}
	cs := c.tc.ConnectionState()
	c.info = infoOf(&cs)
	// What the client sent after its Finished (TLS 1.3 clients send their
	// request at once) is decrypted first: the rest of the handshake's
	// buffer, then gnet's (what came once the handshake was done, or past
	// maxFedIn). Set before the kind is made, which may read at once.
	c.more, c.early = true, rest
	ready := c.ready
	c.ready = nil // the closure is not the connection's to keep
	ready(c)
	if c.state != stOpen {
		return
	}
	c.fill()
	if c.state == stOpen && len(c.plain) > 0 {
		if k, ok := c.ctx.(Kind); ok {
			k.OnData()
		}
	}
}

// handshakeFailed counts and logs why, answers a plain HTTP client in its own
// words, and closes. The goroutine may still be running (a ClientHello too
// large): closing the socket ends its reads.
func (c *Conn) handshakeFailed(err error) {
	if FailureReason(err) == "plain_http" {
		_, _ = c.Conn.Write(plainHTTPAnswer)
	}
	c.state = stClosed
	_ = c.l.EL.Close(c.Conn) // OnClose ends the goroutine's reads
}

var plainHTTPAnswer = []byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 48\r\n\r\nThis port speaks HTTPS: use https:// to reach it")

// fill decrypts what gnet has read into the plaintext buffer, up to maxPlain.
func (c *Conn) fill() {
	if c.notified {
		_, _ = c.Conn.Discard(-1) // nothing counts after close_notify
		return
	}
	if c.state != stOpen || (c.buf != nil && len(c.plain) == cap(c.buf) && cap(c.buf) >= maxPlain) ||
		(!c.more && c.Conn.InboundBuffered() == 0) {
		return
	}
	if len(c.early) > 0 {
		c.early = c.early[c.decrypt(c.early):]
		if len(c.early) > 0 {
			c.more = true // crypto/tls stopped on a full plaintext buffer
			return
		}
		c.early = nil
	}
	buf, _ := c.Conn.Peek(-1)
	loop.Consume(c.Conn, c.decrypt(buf))
}

// decrypt offers src to crypto/tls and reads plaintext until it needs more
// bytes than src has (or the buffer is full); it returns how much of src
// crypto/tls took. A record error closes the connection.
func (c *Conn) decrypt(src []byte) int {
	switch {
	case c.buf == nil:
		c.buf = c.l.TLSPlain.Get()
		c.plain = c.buf[:0]
	case len(c.plain) < cap(c.plain):
		// Room after the unread bytes.
	case cap(c.plain) < cap(c.buf):
		// The kind took bytes from the front: the rest moves there, once per
		// fill that needs the room rather than once per Discard.
		c.plain = c.buf[:copy(c.buf[:cap(c.buf)], c.plain)]
	case cap(c.buf) < maxPlain:
		// The kind left the whole buffer full and asks again: it holds a part
		// it cannot use yet (a long head). Grow; a buffer that streams a body
		// is emptied between fills and never does.
		c.plain = append(make([]byte, 0, 2*cap(c.buf)), c.plain...)
		c.buf = c.plain[:0]
	}
	var used int
	var err error
	c.w.hold = true
	c.plain, used, c.more, err = drain(c.tc, &c.w, src, c.plain)
	c.w.hold = false
	c.writeHeld()
	switch {
	case err == nil:
	case isCloseNotify(err) && (len(c.plain) > 0 || !c.dialed):
		// What came before it is the kind's: pipelined requests over a
		// connection the client half-closed, an origin's last response. A
		// client's kind decides when its connection closes (peerClosed).
		c.notified, c.err, c.more = true, err, false
		if len(c.plain) == 0 {
			c.l.LaterLast((*peerClosed)(c))
		}
	default:
		c.recordError(err)
	}
	if len(c.plain) == 0 {
		c.releasePlain()
	}
	return used
}

// drain reads plaintext from tc into plain[len(plain):cap(plain)], offering it
// src through w. It stops when crypto/tls needs more bytes than src has, when
// plain is full (full: crypto/tls may hold more), or on an error other than
// "would block" (err: a bad record, an alert, the client's close_notify). It
// returns plain with what it read and how much of src crypto/tls took. Split
// points anywhere in src (inside a record header, inside a record, several
// records) are crypto/tls's to reassemble: FuzzDrain checks they lose nothing.
func drain(tc *tls.Conn, w *wire, src, plain []byte) (out []byte, used int, full bool, err error) {
	w.src, w.used = src, 0
	defer func() { w.src = nil }()
	for {
		if len(plain) == cap(plain) {
			return plain, w.used, true, nil
		}
		w.ended = 0
		n, rerr := tc.Read(plain[len(plain):cap(plain)])
		plain = plain[:len(plain)+n]
		// The records this Read took, but the one that gave data: barren
		// (records.go).
		if b := w.ended - min(n, 1); b > 0 && w.c != nil && w.c.barren(b) {
			return plain, w.used, false, errBarrenRecords
		}
		if rerr != nil {
			var ne interface{ Temporary() bool }
			if errors.As(rerr, &ne) && ne.Temporary() {
				return plain, w.used, false, nil
			}
			return plain, w.used, false, rerr
		}
	}
}

// recordError closes the connection after a bad record, an alert or the
// client's close_notify.
func (c *Conn) recordError(err error) {
	if !isCloseNotify(err) {
		peer := "client"
		if c.srv != nil {
			c.srv.stats.closedAlert.Add(1)
		} else if c.dialed {
			peer = "origin" // the exchange reports it too, with its cause
		}
		// Sampled per kind: a flood of one does not hide the others.
		key := "tls_record"
		switch err {
		case errKeyUpdateFlood:
			key = "tls_key_update_flood"
		case errBarrenRecords:
			key = "tls_barren_records"
		}
		if e := c.l.Shared.Sampled.Info(key); e != nil {
			e.Str(peer, c.Conn.RemoteAddr().String()).Str("error", err.Error()).Msg("TLS connection closed on a record error")
		}
	}
	c.err = err
	c.state = stClosed
	_ = c.l.EL.Close(c.Conn)
}

// PeerClosed reports whether the client sent its close_notify (and nothing
// after it counts): a kind closes the connection once it has answered what
// it read, as a plain one's EOF would have. Loop goroutine.
func (c *Conn) PeerClosed() bool { return c.notified }

// PeerDone reports whether gc is a TLS client connection whose client sent
// its close_notify and whose every byte before it the kind has read: the
// client sends no more, and a kind closes once its answers left, as after a
// plain connection's EOF. Loop goroutine.
func PeerDone(gc gnet.Conn) bool {
	c, ok := gc.(*Conn)
	return ok && c.notified && c.InboundBuffered() == 0
}

// PeerCloser is a kind that closes its client's connection itself once the
// client sent its close_notify and the kind read what came before it:
// OnPeerClosed is called then, once, at the end of that callback. It closes
// at once when idle, or once the answers in flight left. A kind that is not
// one is closed then.
type PeerCloser interface{ OnPeerClosed() }

// peerClosed tells a client's kind that the client sent its close_notify
// and the kind read everything before it (Conn.notified).
type peerClosed Conn

// Run implements loop.Task.
func (pc *peerClosed) Run() {
	c := (*Conn)(pc)
	if c.state != stOpen || len(c.plain) > 0 || c.told {
		return
	}
	c.told = true
	if k, ok := c.ctx.(PeerCloser); ok {
		k.OnPeerClosed()
		return
	}
	c.state = stClosed
	_ = c.l.EL.Close(c.Conn)
}

// closeNotified is the close of an origin's connection that waited for the
// kind to read what came before the origin's close_notify (Conn.notified):
// at the very end of the callback in which the kind read the last of it
// (loop.LaterLast).
type closeNotified Conn

// Run implements loop.Task.
func (cn *closeNotified) Run() {
	c := (*Conn)(cn)
	if c.state == stOpen && len(c.plain) == 0 {
		c.state = stClosed
		_ = c.l.EL.Close(c.Conn)
	}
}

func isCloseNotify(err error) bool {
	return err.Error() == "EOF" // crypto/tls answers io.EOF after close_notify
}

func (c *Conn) releasePlain() {
	if c.buf != nil {
		c.l.TLSPlain.Put(c.buf)
		c.buf, c.plain = nil, nil
	}
}

// renotify makes sure the kind hears of bytes already received that did not
// fit its plaintext buffer: a kind reads what Peek shows and then waits for
// gnet's next OnTraffic, which would never come for bytes gnet already read.
func (c *Conn) renotify() {
	if c.more && !c.woken && c.state == stOpen {
		c.woken = true
		_ = c.Conn.Wake(nil)
	}
}

// countFailure counts a failed handshake by reason and logs it (sampled).
// Any goroutine.
func (c *Conn) countFailure(hs *handshake, err error) {
	reason := FailureReason(err)
	c.srv.failed(reason)
	c.l.Shared.Sampled.Info("tls_"+reason).Str("client", hs.client).
		Str("reason", reason).Str("error", err.Error()).Msg("TLS handshake failed")
}

func infoOf(cs *tls.ConnectionState) *filters.TLSInfo {
	t := &filters.TLSInfo{Version: VersionName(cs.Version), Cipher: tls.CipherSuiteName(cs.CipherSuite),
		SNI: cs.ServerName, ALPN: cs.NegotiatedProtocol, Resumed: cs.DidResume}
	if len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0 {
		t.ClientSubject = cs.VerifiedChains[0][0].Subject.String()
	}
	return t
}
