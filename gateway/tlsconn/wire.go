package tlsconn

import (
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// errWouldBlock is what the wire answers a read when it has no bytes: a
// temporary net.Error, which crypto/tls passes up without making it final.
var errWouldBlock net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "tls wire: no more bytes now" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// errHandshakeTimeout ends a handshake that did not finish in time.
var errHandshakeTimeout = errors.New("handshake timeout")

// errHelloTooLarge ends a handshake that read more than maxHandshakeIn bytes
// before it finished: no legitimate ClientHello (and client certificate
// chain) is that large.
var errHelloTooLarge = errors.New("handshake messages over 64 KiB")

// maxHandshakeIn bounds what the handshake may read. maxFedIn bounds what the
// loop holds for it meanwhile: more, since a TLS 1.3 client sends its request
// right behind its Finished, before the loop has taken the connection over;
// past it the client is not read until then (an upload that starts at once
// went past it in a few reads, and was closed as a ClientHello too large).
const (
	maxHandshakeIn = 64 << 10
	maxFedIn       = 4 * maxHandshakeIn
)

// wire is the net.Conn under a tls.Conn. While the handshake goroutine runs,
// its reads block on hs (the loop feeds it); once the loop owns the
// connection, reads take from src (gnet's inbound bytes, set around each
// tls.Conn.Read) and writes go to the socket at once.
type wire struct {
	c    *Conn
	hs   *handshake // nil once the loop owns the connection
	net  net.Conn   // Dial: the dialled socket, until the loop adopts the connection
	src  []byte     // loop mode: the ciphertext the loop offers; src[used:] not read yet
	used int
	// While the loop decrypts (hold), what crypto/tls writes (its answers to
	// the peer's KeyUpdate requests, an alert) is held and written once
	// after (keyupdate.go); flood: the peer asked for too many.
	hold, flood bool
	held        []byte
	// rec cuts reads at the end of each record (records.go); ended counts
	// the records the reads of the current tls.Conn.Read ended.
	rec   recordCutter
	ended int
}

// Read: see wire.
func (w *wire) Read(p []byte) (int, error) {
	if w.net != nil {
		return w.net.Read(p)
	}
	if hs := w.hs; hs != nil {
		return hs.read(p)
	}
	if w.flood {
		return 0, errKeyUpdateFlood // crypto/tls reads no further: the connection ends
	}
	if w.used == len(w.src) {
		return 0, errWouldBlock
	}
	n := copy(p[:w.rec.span(len(p))], w.src[w.used:])
	w.ended += w.rec.take(w.src[w.used : w.used+n])
	w.used += n
	return n, nil
}

// Write: the handshake goroutine writes its flights itself (handshake.write);
// the loop writes to the socket directly.
func (w *wire) Write(p []byte) (int, error) {
	if w.net != nil {
		return w.net.Write(p)
	}
	if hs := w.hs; hs != nil {
		return hs.write(w.c.Conn, p)
	}
	if w.hold {
		if w.flood || w.c.keyUpdated() {
			w.flood = true // the connection ends: no more answers
			return len(p), nil
		}
		w.held = append(w.held, p...)
		return len(p), nil
	}
	return w.c.Conn.Write(p)
}

// Close is crypto/tls closing its transport: the loop closes the socket when
// it sees the error, not here (the handshake goroutine must not touch it).
func (w *wire) Close() error { return nil }

// LocalAddr is where the client connected. gnet answers with the address
// its listener bound, which with accept_on_loops is the configured one
// (":8443": unspecified), not the address the client dialled; certificate
// selection without SNI matches IP SANs against it (tlscert.connIP), so an
// unspecified address is resolved with getsockname. Only that path pays (a
// system call and an allocation, per handshake without SNI).
func (w *wire) LocalAddr() net.Addr {
	if w.net != nil {
		return w.net.LocalAddr()
	}
	a := w.c.Conn.LocalAddr()
	if ta, ok := a.(*net.TCPAddr); ok && (len(ta.IP) == 0 || ta.IP.IsUnspecified()) { // ":8443" resolves to no IP
		if real := w.sockName(); real != nil {
			return real
		}
	}
	return a
}

// sockName is the socket's own local address (nil if it cannot be had). On
// the handshake goroutine it holds the flights' lock, under which the
// descriptor stays this connection's (outFlight: the loop's OnClose takes it
// before gnet closes the socket).
func (w *wire) sockName() net.Addr {
	if hs := w.hs; hs != nil {
		hs.out.mu.Lock()
		defer hs.out.mu.Unlock()
		if hs.out.closed {
			return nil
		}
	}
	sa, err := unix.Getsockname(w.c.Conn.Fd())
	if err != nil {
		return nil
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: sa.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: sa.Port}
	}
	return nil
}

func (w *wire) RemoteAddr() net.Addr {
	if w.net != nil {
		return w.net.RemoteAddr()
	}
	return w.c.Conn.RemoteAddr()
}

// SetDeadline applies to a dialled socket; a loop's reads never block.
func (w *wire) SetDeadline(t time.Time) error {
	if w.net != nil {
		return w.net.SetDeadline(t)
	}
	return nil
}
func (w *wire) SetReadDeadline(t time.Time) error  { return nil }
func (w *wire) SetWriteDeadline(t time.Time) error { return nil }

// handshake is what the loop and the handshake goroutine share while it runs.
type handshake struct {
	mu     sync.Mutex
	in     []byte       // bytes from the client the goroutine has not read (at most maxFedIn)
	taken  int          // bytes the goroutine read (at most maxHandshakeIn)
	rec    recordCutter // the goroutine's reads end at each record's end (records.go)
	closed bool         // the socket closed: reads end
	done   bool         // the goroutine finished; err is its result
	err    error
	run    func()        // the goroutine's body until start takes it (then nil)
	slot   bool          // started by startSlotted: it holds a max_handshakes slot
	scan   helloScan     // how far inputState read in (hello.go)
	notify chan struct{} // one token: in grew or closed changed
	timer  *time.Timer
	expire chan struct{} // closed when the handshake timeout fires
	client string        // the client's address, for log lines
	out    outFlight     // the goroutine's writes (hswrite.go)
}

// newHandshake prepares the handshake of a new connection; run is the
// goroutine's body, started by start.
func newHandshake(run func()) *handshake {
	return &handshake{notify: make(chan struct{}, 1), expire: make(chan struct{}), run: run}
}

// arm starts the handshake's clock. Call it once the connection is wired to
// hs: the timer may start the goroutine at once (a timeout of a nanosecond
// is a valid setting).
func (hs *handshake) arm(timeout time.Duration) {
	hs.timer = time.AfterFunc(timeout, func() {
		close(hs.expire)
		hs.start() // a client that never sent a byte: the goroutine ends it as timed out
	})
}

// start runs the handshake goroutine, once: when the client's ClientHello
// is in (the loop feeds it first, so it finds it at once), when the
// socket closes, or when the time is up, whichever comes first. Starting it
// at the hello rather than at accept spares every handshake one park
// and wake-up of the goroutine (and a connection that sends nothing holds
// no goroutine). Any goroutine.
func (hs *handshake) start() { hs.launch(false) }

// startSlotted is start for the loop at the client's hello, once it took a
// max_handshakes slot for the goroutine: false when the goroutine had
// started already (the timeout or the close came first), and then it does
// not hold the slot, which the caller gives back.
func (hs *handshake) startSlotted() bool { return hs.launch(true) }

// launch starts the goroutine unless it was started; slot: it holds a
// max_handshakes slot. Reports whether this call started it.
func (hs *handshake) launch(slot bool) bool {
	hs.mu.Lock()
	run := hs.run
	hs.run = nil
	if run != nil {
		hs.slot = slot
	}
	hs.mu.Unlock()
	if run != nil {
		go run()
	}
	return run != nil
}

// inputState is what the client sent so far (helloState), read on from
// where the last call stopped. Loop goroutine, before the start (until
// then in only grows).
func (hs *handshake) inputState() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.scan.state(hs.in)
}

// expired reports whether the handshake timeout fired. Any goroutine.
func (hs *handshake) expired() bool {
	select {
	case <-hs.expire:
		return true
	default:
		return false
	}
}

// started reports whether the goroutine was started. Any goroutine.
func (hs *handshake) started() bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.run == nil
}

// slotted reports whether the goroutine holds a max_handshakes slot.
// Handshake goroutine.
func (hs *handshake) slotted() bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.slot
}

// read blocks until the loop fed bytes, the socket closed or time ran out.
// Handshake goroutine.
func (hs *handshake) read(p []byte) (int, error) {
	for {
		hs.mu.Lock()
		if len(hs.in) > 0 {
			if hs.taken >= maxHandshakeIn {
				hs.mu.Unlock()
				return 0, errHelloTooLarge
			}
			n := copy(p[:hs.rec.span(min(len(p), maxHandshakeIn-hs.taken))], hs.in)
			hs.rec.take(hs.in[:n])
			hs.in = hs.in[n:]
			hs.taken += n
			hs.mu.Unlock()
			return n, nil
		}
		closed := hs.closed
		hs.mu.Unlock()
		if closed {
			return 0, net.ErrClosed
		}
		select {
		case <-hs.notify:
		case <-hs.expire:
			return 0, errHandshakeTimeout
		}
	}
}

// feed gives the goroutine the client's next bytes, as many as fit under
// maxFedIn with those it has not read yet, and returns how many. Loop
// goroutine.
func (hs *handshake) feed(b []byte) int {
	hs.mu.Lock()
	n := max(0, min(len(b), maxFedIn-len(hs.in)))
	hs.in = append(hs.in, b[:n]...)
	hs.mu.Unlock()
	hs.wake()
	return n
}

// close ends the goroutine's reads and writes (the socket is gone; gnet
// closes its fd after OnClose, which calls this). Loop goroutine.
func (hs *handshake) close() {
	hs.out.close()
	hs.mu.Lock()
	hs.closed = true
	hs.mu.Unlock()
	hs.wake()
	hs.start() // not started yet: it starts to end at once (net.ErrClosed)
}

func (hs *handshake) wake() {
	select {
	case hs.notify <- struct{}{}:
	default:
	}
}

// finish records the goroutine's result. Handshake goroutine.
func (hs *handshake) finish(err error) {
	hs.timer.Stop()
	hs.mu.Lock()
	hs.done, hs.err = true, err
	hs.mu.Unlock()
}

// result is the goroutine's result once it finished, and what the client
// sent after its last handshake message (application data already, in TLS
// 1.3), which the loop must decrypt first. Loop goroutine.
func (hs *handshake) result() (done bool, rest []byte, err error) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.done, hs.in, hs.err
}

// records is where the handshake's reads left the record stream: the loop's
// reads go on from there. Loop goroutine, once result says done.
func (hs *handshake) records() recordCutter {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.rec
}
