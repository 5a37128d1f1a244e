package tlscert

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Pair is one certificate and its key, both PEM files. The certificate file
// may hold a chain, leaf first; the key may be PKCS#8, PKCS#1 (RSA) or SEC 1
// (EC).
type Pair struct{ CertFile, KeyFile string }

// Options configure a Store. The zero value of each field has a default.
type Options struct {
	Pairs          []Pair        // empty: a development certificate (see DevDir)
	DevDir         string        // where the development cert/key are written and reused (DevCertName, DevKeyName)
	MinVersion     uint16        // tls.VersionTLS12 (default when 0) or tls.VersionTLS13
	NextProtos     []string      // ALPN, default ["http/1.1"]
	SessionTickets bool          // resumption with tickets
	TicketRotate   time.Duration // a new ticket key this often (default 1h); the previous 2 keys still decrypt
	CheckEvery     time.Duration // how often Run re-reads the files to see a change (0: never; Reload still works)
	Log            zerolog.Logger
	Now            func() time.Time // for tests; nil = time.Now
}

const (
	defaultTicketRotate = time.Hour
	// ticketKeysKept: the key that encrypts and the two before it, so a
	// ticket stays good for two to three rotation periods.
	ticketKeysKept = 3
	// expiryWarning: how soon an expiry is worth a warning (Check, and the
	// log of every load).
	expiryWarning = 30 * 24 * time.Hour
)

// tls12Suites are the TLS 1.2 suites offered: forward secrecy (ECDHE) and
// AEAD only. TLS 1.3 suites are not configurable in crypto/tls, and all of
// them qualify. The order does not matter: Go picks by the hardware (AES-GCM
// with AES-NI, ChaCha20 otherwise).
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// curves are set rather than left nil. Nil would also enable P-384 and P-521
// (slower, and no client needs them when it can do X25519 or P-256) and the
// P-curve ML-KEM hybrids. Since Go 1.24 the list only filters Go's defaults
// (Go keeps its own order), so naming X25519MLKEM768 keeps the post-quantum
// hybrid that browsers offer (protection against recording traffic now and
// decrypting it later), and GODEBUG tlsmlkem=0 still turns it off.
var curves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}

// Store holds the certificates and the ticket keys. See the package comment
// for its concurrency contract.
type Store struct {
	o   Options // with defaults; in development mode Pairs is the development pair
	dev bool
	cfg *tls.Config

	set atomic.Pointer[certSet] // what handshakes choose from; immutable, swapped whole

	// mu serializes loads and rotations, and guards the fields below.
	mu         sync.Mutex
	keys       [][32]byte // ticket keys, newest first
	seen       [32]byte   // fingerprint of the files at the last load, good or bad
	lastErr    string
	lastReload time.Time

	reloads   atomic.Int64
	failures  atomic.Int64
	rotations atomic.Int64
}

// withDefaults fills the defaults and copies the caller's slices, so that the
// caller changing them later changes nothing here.
func withDefaults(o Options) (Options, error) {
	o.Pairs = slices.Clone(o.Pairs)
	o.NextProtos = slices.Clone(o.NextProtos)
	if len(o.NextProtos) == 0 {
		o.NextProtos = []string{"http/1.1"}
	}
	if o.MinVersion == 0 {
		o.MinVersion = tls.VersionTLS12
	}
	if o.MinVersion != tls.VersionTLS12 && o.MinVersion != tls.VersionTLS13 {
		return o, fmt.Errorf("tlscert: minimum version %#04x not supported: use TLS 1.2 or 1.3", o.MinVersion)
	}
	if o.TicketRotate <= 0 {
		o.TicketRotate = defaultTicketRotate
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.Pairs) == 0 && o.DevDir == "" {
		return o, errors.New("tlscert: no certificate pairs and no development directory")
	}
	return o, nil
}

// New loads and validates every pair (or the development certificate) and
// builds the Config. A failure of any pair fails New, with every failing pair
// named in the error (errors.Join).
func New(o Options) (*Store, error) {
	o, err := withDefaults(o)
	if err != nil {
		return nil, err
	}
	s := &Store{o: o, dev: len(o.Pairs) == 0}
	if s.dev {
		p, err := ensureDev(o.DevDir, o.Now(), o.Log)
		if err != nil {
			return nil, err
		}
		s.o.Pairs = []Pair{p}
		o.Log.Warn().Str("cert_file", p.CertFile).
			Msg("serving a self-signed development certificate: configure certificate pairs for production")
	}
	files, sum := readAll(s.o.Pairs)
	set, err := load(files, o.Now())
	if err != nil {
		return nil, err
	}
	s.seen = sum
	s.install(set)
	s.cfg = s.newConfig()
	if o.SessionTickets {
		s.keys = [][32]byte{newTicketKey()}
		s.cfg.SetSessionTicketKeys(s.keys)
	}
	return s, nil
}

func (s *Store) newConfig() *tls.Config {
	cfg := &tls.Config{
		MinVersion:             s.o.MinVersion,
		NextProtos:             s.o.NextProtos,
		CipherSuites:           tls12Suites,
		CurvePreferences:       curves,
		GetCertificate:         s.getCertificate,
		SessionTicketsDisabled: !s.o.SessionTickets,
	}
	// The tests' clock also dates the tickets, so that a test's fake time
	// never makes them look expired or from the future.
	cfg.Time = s.o.Now
	return cfg
}

// Config returns the one shared *tls.Config. Do not Clone it, and set a field
// only before the first handshake (see the package comment).
func (s *Store) Config() *tls.Config { return s.cfg }

// getCertificate is the Config's GetCertificate. It never fails: a client
// that can use none of the certificates gets the most fitting one and fails
// the handshake with a clear alert.
func (s *Store) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.set.Load().choose(hello), nil
}

// Reload re-reads every file. If any pair fails, the current set stays in
// service, the failure is logged and counted, and the error returned. New
// handshakes use a new set at once; established connections are unaffected.
// In development mode the development certificate is regenerated first if it
// is missing, broken or about to expire.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *Store) reloadLocked() error {
	now := s.o.Now()
	if s.dev {
		if _, err := ensureDev(s.o.DevDir, now, s.o.Log); err != nil {
			return s.failed(err)
		}
	}
	files, sum := readAll(s.o.Pairs)
	s.seen = sum // a bad set is not retried until the files change again
	set, err := load(files, now)
	if err != nil {
		return s.failed(err)
	}
	s.install(set)
	s.reloads.Add(1)
	s.lastErr = ""
	return nil
}

func (s *Store) failed(err error) error {
	s.failures.Add(1)
	s.lastErr = err.Error()
	s.o.Log.Warn().Err(err).Msg("tls certificates not reloaded: keeping the current ones")
	return err
}

// install puts set in service and logs what it holds. Called with mu held
// (or before the Store is shared).
func (s *Store) install(set *certSet) {
	now := s.o.Now()
	s.set.Store(set)
	s.lastReload = now
	for _, e := range set.all {
		s.o.Log.Info().Str("cert_file", e.pair.CertFile).Strs("names", e.names).Str("key_type", e.keyType).
			Time("not_after", e.leaf().NotAfter).Msg("tls certificate loaded")
	}
	for _, w := range set.warnings(now) {
		s.o.Log.Warn().Msg(w)
	}
}
