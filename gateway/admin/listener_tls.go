package admin

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"gozer/gateway/telemetry"
	"gozer/gateway/tlscert"
	"gozer/gateway/tlsconn"
)

// ListenerTLS is HTTPS on the admin listener (listeners.admin.tls).
type ListenerTLS struct {
	// Config is Certs' one shared config (gateway/tlscert: never cloned),
	// with client authentication set.
	Config *tls.Config
	Certs  *tlscert.Store
	// ClientAuth is listeners.admin.tls.client_auth, for GET /admin/tls.
	ClientAuth string
}

// tlsListener turns the admin listener's connections into TLS connections
// for fasthttp, and counts their handshakes. Accept does no I/O: each
// handshake runs on the goroutine fasthttp serves the connection on.
type tlsListener struct {
	net.Listener
	cfg *tls.Config
	log *telemetry.Sampled // nil: failures are counted, not logged

	handshakes atomic.Int64
	mu         sync.Mutex
	failures   map[string]int64 // by tlsconn.FailureReason
}

func newTLSListener(ln net.Listener, cfg *tls.Config, log *telemetry.Sampled) *tlsListener {
	return &tlsListener{Listener: ln, cfg: cfg, log: log, failures: map[string]int64{}}
}

// Accept returns the next connection, its handshake not yet done.
func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsConn{Conn: tls.Server(c, l.cfg), l: l}, nil
}

// handshakeDone counts a handshake's outcome and logs a failure (sampled:
// refused clients must not flood the log).
func (l *tlsListener) handshakeDone(c *tlsConn, err error) {
	if err == nil {
		l.handshakes.Add(1)
		return
	}
	reason := tlsconn.FailureReason(err)
	l.mu.Lock()
	l.failures[reason]++
	l.mu.Unlock()
	if l.log != nil {
		l.log.Warn("admin_tls_"+reason).Str("client", c.RemoteAddr().String()).Str("reason", reason).
			Str("error", err.Error()).Msg("admin listener: TLS handshake failed")
	}
}

// stats is the counters for GET /admin/tls.
func (l *tlsListener) stats() (handshakes int64, failures map[string]int64) {
	failures = map[string]int64{}
	l.mu.Lock()
	for k, v := range l.failures {
		failures[k] = v
	}
	l.mu.Unlock()
	return l.handshakes.Load(), failures
}

// tlsConn is one admin connection over TLS. fasthttp calls Handshake first
// (it does for any connection with Handshake and ConnectionState, within the
// read and write timeouts it sets before), on the connection's goroutine, and
// reads the client's TLS facts through ConnectionState. A failed handshake
// is counted once and then reads as io.EOF: fasthttp closes the connection
// quietly instead of logging crypto/tls's message (which quotes what the
// client sent) once per refused client. Used by one goroutine at a time, as
// fasthttp uses a connection.
type tlsConn struct {
	*tls.Conn
	l    *tlsListener
	once sync.Once
	err  error
}

// Handshake runs the TLS handshake once and returns its outcome.
func (c *tlsConn) Handshake() error {
	c.once.Do(func() {
		c.err = c.Conn.Handshake()
		c.l.handshakeDone(c, c.err)
	})
	return c.err
}

// Read reads plaintext once the handshake succeeded; io.EOF if it failed.
func (c *tlsConn) Read(p []byte) (int, error) {
	if c.Handshake() != nil {
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}
