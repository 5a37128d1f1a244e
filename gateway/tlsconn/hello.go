package tlsconn

// A connection's wait for its ClientHello, before it holds a handshake slot.
//
// A handshake's goroutine, and with it one of max_handshakes slots, starts
// only once the client's ClientHello is all in (helloState). Until then the
// connection costs memory only: its Conn and tls.Conn, and the bytes it sent
// (in the handshake's input, taken out of gnet's buffer at once, so that a
// client sending a byte at a time does not make every read copy all it sent
// so far). A client that sends nothing, part of a hello, or a hello cut into
// tiny records, and stalls, cannot keep real clients' handshakes out. What
// waiting connections hold is bounded per address (server.max_requests_per_ip
// counts each), by handshake_timeout, and node-wide in bytes: at most
// helloBudget per slot (maxAwaitingBytes), past which the connection whose
// bytes would go over is closed.
//
// A real client sends its ClientHello in one go (one or two TCP segments).

const (
	// maxCiphertext is crypto/tls's bound on a record's length before a
	// version is agreed (2^14 + 2048); a header past it is refused at once.
	maxCiphertext = 1<<14 + 2048
	// maxHelloWait: a ClientHello announced longer than this is handed to
	// crypto/tls as it comes, with a slot (browsers' are 0.5-2 KiB).
	maxHelloWait = 16 << 10
	// helloBudget is what a waiting connection may hold at most before its
	// hello is handed over whole or not (a hello of maxHelloWait in records
	// of a few bytes takes more), and each slot's share of the node's
	// budget for waiting bytes.
	helloBudget = maxHelloWait + 4<<10
)

// What a connection's first bytes are (helloState).
const (
	helloWait  = iota // not enough yet
	helloWhole        // a whole ClientHello message
	helloOther        // enough to start anyway: crypto/tls refuses these at once, or they are all a waiting connection may hold
)

// helloState classifies b, the client's first bytes: a whole ClientHello
// message (over one record or several), or bytes crypto/tls refuses as soon
// as it reads them (a record type other than handshake or alert, a length
// past maxCiphertext, an empty handshake record, a first message that is not
// a ClientHello, a whole alert record), or a hello announced past
// maxHelloWait, or helloBudget bytes; else not enough yet. Once it is no
// longer helloWait, it never is again for any bytes appended (FuzzHelloReady).
func helloState(b []byte) int {
	var s helloScan
	return s.state(b)
}

// helloScan is helloState over bytes that grow, read once: each call goes
// on after the whole records the calls before read, so a hello cut into
// tiny records, a read each, costs its length once, not its length for
// every read. Whoever holds the bytes (the handshake, under its lock).
type helloScan struct {
	off  int     // b[:off] is whole records already read
	seen int     // bytes of the handshake message in them
	hdr  [4]byte // the message's header, from the records' bodies
}

// state is helloState(b); b is what an earlier call had, and perhaps more.
func (s *helloScan) state(b []byte) int {
	if len(b) >= helloBudget {
		return helloOther
	}
	for len(b)-s.off >= 5 {
		r := b[s.off:]
		typ, n := r[0], int(r[3])<<8|int(r[4])
		switch {
		case typ != 22 && typ != 21, n > maxCiphertext, typ == 22 && n == 0:
			return helloOther
		case typ == 21 && len(r) >= 5+n: // an alert: crypto/tls reads it whole, then ends
			return helloOther
		case typ == 21:
			return helloWait
		}
		body := r[5:min(len(r), 5+n)]
		hdr, seen := s.hdr, s.seen // kept only once the record is whole
		for i := 0; i < len(body) && seen+i < 4; i++ {
			hdr[seen+i] = body[i]
		}
		seen += len(body)
		if seen >= 4 {
			size := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
			switch {
			case hdr[0] != 1 || size > maxHelloWait:
				return helloOther
			case seen >= 4+size:
				return helloWhole
			}
		}
		if len(body) < n {
			return helloWait
		}
		s.off, s.seen, s.hdr = s.off+5+n, seen, hdr
	}
	return helloWait
}

// awaitHello: n more bytes of a connection that awaits its ClientHello went
// into its handshake's input. Once the hello is ready, the handshake takes a
// slot and its goroutine starts: true. False while it waits, or when the
// connection was closed (the node's waiting bytes over their budget, or no
// slot). Loop goroutine.
func (c *Conn) awaitHello(n int) bool {
	srv, hs := c.srv, c.w.hs
	c.waitBytes += int64(n)
	if srv.waitBytes.Add(int64(n)) > srv.max*helloBudget {
		c.refuse("tls_hello_budget", "connection closed: the node holds its budget of bytes from clients whose ClientHello is not all in")
		return false
	}
	state := hs.inputState()
	if state == helloWait {
		return false
	}
	// Only a whole hello may evict: bytes that crypto/tls will refuse at
	// once, or a hello it must read in pieces, must not close a real
	// client's handshake to make room.
	if !c.takeSlot(state == helloWhole) {
		return false
	}
	// The hello starts the goroutine (see handshake.start), with the slot
	// takeSlot took, unless the timeout started it already.
	if c.queued && !hs.startSlotted() {
		srv.release()
		c.dequeue()
	}
	return true
}

// takeSlot: the client's hello is in (helloState). Its handshake goroutine
// needs one of max_handshakes slots: taken, or made by evicting an old
// handshake (evict.go) when mayEvict; false when neither, and the
// connection is closed. A goroutine the timeout started already takes none.
func (c *Conn) takeSlot(mayEvict bool) bool {
	c.heard()
	srv, hs := c.srv, c.w.hs
	if hs.started() || hs.expired() {
		return true // timed out: the timer's goroutine ends it, without a slot
	}
	if !srv.admit() && (!mayEvict || !srv.evictFor(c.l, c)) {
		c.refuse("tls_max_handshakes", "connection closed: too many TLS handshakes in progress")
		return false
	}
	c.hsStart = c.l.Mono() // ages only: a step of the wall clock must not make all old, or none
	srv.queue(c.l).push(c)
	return true
}

// refuse closes a connection that awaits its hello or a slot, counted and
// logged with why (sampled per key: one reason's flood does not hide the
// other's line).
func (c *Conn) refuse(key, why string) {
	srv := c.srv
	srv.stats.refused.Add(1)
	c.l.Shared.Sampled.Warn(key).Str("client", c.w.hs.client).
		Int64("max_handshakes", srv.max).Msg(why)
	c.state = stClosed
	_ = c.l.EL.Close(c.Conn) // OnClose: heard, and the accept's counts
}

// heard: the connection no longer awaits its hello (it came, or the
// connection closed); what it held counts no more.
func (c *Conn) heard() {
	if c.silent {
		c.silent = false
		c.srv.awaiting.Add(-1)
		c.srv.waitBytes.Add(-c.waitBytes)
		c.waitBytes = 0
	}
}
