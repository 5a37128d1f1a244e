package tlscert

import (
	"crypto/rand"
	"slices"
	"time"
)

// Run watches the files and rotates the ticket keys until stop closes: every
// CheckEvery it reloads if any file's content changed, every TicketRotate (with
// SessionTickets) it puts a new ticket key first. Call it once, on a goroutine
// of its own; with neither to do it just waits for stop.
func (s *Store) Run(stop <-chan struct{}) {
	check, stopCheck := every(s.o.CheckEvery)
	defer stopCheck()
	var rotate <-chan time.Time
	if s.o.SessionTickets {
		var stopRotate func()
		rotate, stopRotate = every(s.o.TicketRotate)
		defer stopRotate()
	}
	for {
		select {
		case <-stop:
			return
		case <-check:
			_, _ = s.reloadIfChanged() // a failure is logged and counted by the reload
		case <-rotate:
			s.rotateTickets()
		}
	}
}

// every is a ticker's channel, or nil (never ready) for d <= 0.
func every(d time.Duration) (<-chan time.Time, func()) {
	if d <= 0 {
		return nil, func() {}
	}
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// reloadIfChanged reloads if the files' fingerprint differs from the last
// load's, good or bad: a broken file is reported once, not on every check,
// and a pair replaced file by file (a bad half-way state) loads once whole.
func (s *Store) reloadIfChanged() (changed bool, err error) {
	_, sum := readAll(s.o.Pairs) // outside mu: the disk does not hold up Stats
	s.mu.Lock()
	defer s.mu.Unlock()
	if sum == s.seen {
		return false, nil
	}
	s.o.Log.Info().Msg("tls certificate files changed: reloading")
	return true, s.reloadLocked()
}

// rotateTickets puts a new ticket key first; the two before it still decrypt
// tickets, older ones are dropped (their clients do a full handshake).
func (s *Store) rotateTickets() {
	k := newTicketKey()
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([][32]byte, 0, ticketKeysKept)
	keys = append(keys, k)
	keys = append(keys, s.keys...)
	if len(keys) > ticketKeysKept {
		keys = keys[:ticketKeysKept]
	}
	s.keys = keys
	s.cfg.SetSessionTicketKeys(keys)
	s.rotations.Add(1)
}

func newTicketKey() [32]byte {
	var k [32]byte
	rand.Read(k[:]) // never fails: since Go 1.24 a broken source crashes the process
	return k
}

// Stats is the store's state for the admin API (JSON, snake_case).
type Stats struct {
	ReloadsTotal         int64       `json:"reloads_total"`          // successful Reloads (not New's load)
	ReloadFailuresTotal  int64       `json:"reload_failures_total"`  // failed Reloads (the old set stayed)
	LastError            string      `json:"last_error"`             // the last failure; "" once a reload succeeds
	LastReload           string      `json:"last_reload"`            // RFC3339: when the set in service was loaded
	DevCertificate       bool        `json:"dev_certificate"`        // serving the generated development certificate
	Certificates         []CertStats `json:"certificates"`           // in Options order, the default first
	TicketRotationsTotal int64       `json:"ticket_rotations_total"` // ticket keys put first after New's
}

// CertStats is one pair in service.
type CertStats struct {
	CertFile   string   `json:"cert_file"`
	Names      []string `json:"names"`    // DNS SANs, then IP SANs
	KeyType    string   `json:"key_type"` // ecdsa-p256, rsa-2048, ed25519...
	NotAfter   string   `json:"not_after"`
	ExpiresInS int64    `json:"expires_in_s"`
}

// Stats returns the counters and the certificates in service.
func (s *Store) Stats() Stats {
	now := s.o.Now()
	s.mu.Lock()
	st := Stats{
		LastError:  s.lastErr,
		LastReload: s.lastReload.UTC().Format(time.RFC3339),
	}
	s.mu.Unlock()
	st.ReloadsTotal = s.reloads.Load()
	st.ReloadFailuresTotal = s.failures.Load()
	st.TicketRotationsTotal = s.rotations.Load()
	st.DevCertificate = s.dev
	for _, e := range s.set.Load().all {
		st.Certificates = append(st.Certificates, CertStats{
			CertFile:   e.pair.CertFile,
			Names:      slices.Clone(e.names), // the set is shared: the caller gets its own
			KeyType:    e.keyType,
			NotAfter:   e.leaf().NotAfter.UTC().Format(time.RFC3339),
			ExpiresInS: int64(e.leaf().NotAfter.Sub(now) / time.Second),
		})
	}
	return st
}
