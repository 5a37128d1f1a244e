package tlsconn

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is the HTTPS listener's shared side: the tls.Config every handshake
// uses, the bound on handshakes in progress, and the counters. Safe for
// concurrent use.
type Server struct {
	config     *tls.Config
	timeout    time.Duration
	max        int64
	evictAfter time.Duration // evict.go; 0: never

	inProgress atomic.Int64 // handshakes holding a slot (their goroutine started)
	awaiting   atomic.Int64 // connections whose hello is not all in yet (no slot; hello.go)
	waitBytes  atomic.Int64 // bytes those hold, at most max × helloBudget
	stats      counters
	queues     sync.Map // *loop.Loop → *hsQueue, each used only by its loop (evict.go)
}

type counters struct {
	handshakes, resumed, refused, closedAlert atomic.Int64
	evicted, evictedBusy                      atomic.Int64 // evict.go: all, and those for their address's share
	refusedPerIP                              atomic.Int64 // over server.max_requests_per_ip
	mu                                        sync.Mutex
	failures                                  map[string]int64 // by reason
	versions                                  map[string]int64 // "1.2", "1.3"
}

// NewServer returns the shared side of a TLS listener. config is used as is
// (shared by every loop, so session tickets resume on any of them).
// evictAfter: see evict.go (0: a connection past maxHandshakes is always
// closed).
func NewServer(config *tls.Config, handshakeTimeout time.Duration, maxHandshakes int, evictAfter time.Duration) *Server {
	return &Server{config: config, timeout: handshakeTimeout, max: int64(maxHandshakes), evictAfter: evictAfter,
		stats: counters{failures: map[string]int64{}, versions: map[string]int64{}}}
}

// Stats is the TLS listener's counters, for the admin API.
type Stats struct {
	HandshakesTotal           int64            `json:"handshakes_total"`
	ResumedTotal              int64            `json:"resumed_total"`
	HandshakesInProgress      int64            `json:"handshakes_in_progress"`
	MaxHandshakes             int64            `json:"max_handshakes"`
	RefusedTooManyHandshakes  int64            `json:"refused_too_many_handshakes_total"`
	RefusedPerIP              int64            `json:"refused_handshakes_per_ip_total"`
	EvictedHandshakes         int64            `json:"evicted_handshakes_total"`
	EvictedBusyAddress        int64            `json:"evicted_from_busy_addresses_total"`
	AwaitingHello             int64            `json:"connections_awaiting_hello"`
	HandshakeFailuresByReason map[string]int64 `json:"handshake_failures_by_reason"`
	HandshakesByVersion       map[string]int64 `json:"handshakes_by_version"`
	ClosedOnRecordErrorTotal  int64            `json:"closed_on_record_error_total"`
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		HandshakesTotal: s.stats.handshakes.Load(), ResumedTotal: s.stats.resumed.Load(),
		HandshakesInProgress: s.inProgress.Load(), MaxHandshakes: s.max,
		RefusedTooManyHandshakes: s.stats.refused.Load(), ClosedOnRecordErrorTotal: s.stats.closedAlert.Load(),
		RefusedPerIP: s.stats.refusedPerIP.Load(),
		// The part loaded before the whole (evictFor adds to the whole first):
		// a read never shows more evicted for their share than evicted.
		EvictedBusyAddress: s.stats.evictedBusy.Load(), EvictedHandshakes: s.stats.evicted.Load(),
		AwaitingHello:             s.awaiting.Load(),
		HandshakeFailuresByReason: map[string]int64{}, HandshakesByVersion: map[string]int64{},
	}
	s.stats.mu.Lock()
	for k, v := range s.stats.failures {
		st.HandshakeFailuresByReason[k] = v
	}
	for k, v := range s.stats.versions {
		st.HandshakesByVersion[k] = v
	}
	s.stats.mu.Unlock()
	return st
}

// admit takes a handshake slot; false when max_handshakes are in progress
// (the caller evicts or refuses, and counts which).
func (s *Server) admit() bool {
	if s.inProgress.Add(1) > s.max {
		s.inProgress.Add(-1)
		return false
	}
	return true
}

func (s *Server) release() { s.inProgress.Add(-1) }

func (s *Server) succeeded(cs *tls.ConnectionState) {
	s.stats.handshakes.Add(1)
	if cs.DidResume {
		s.stats.resumed.Add(1)
	}
	v := VersionName(cs.Version)
	s.stats.mu.Lock()
	s.stats.versions[v]++
	s.stats.mu.Unlock()
}

func (s *Server) failed(reason string) {
	s.stats.mu.Lock()
	s.stats.failures[reason]++
	s.stats.mu.Unlock()
}

// FailureReason names a handshake error for counters and logs: a few stable
// words, not crypto/tls's message (which carries client-chosen values).
func FailureReason(err error) string {
	var rh tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.Is(err, errHandshakeTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout" // ours, or a socket deadline's (the admin listener's handshakes)
	case errors.Is(err, errHelloTooLarge):
		return "hello_too_large"
	case errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "client_closed"
	case errors.As(err, &rh):
		if looksLikeHTTP(rh.RecordHeader[:]) {
			return "plain_http"
		}
		return "not_tls"
	case IsRemoteAlert(err):
		return "client_alert"
	case strings.Contains(msg, "protocol version"), strings.Contains(msg, "unsupported versions"):
		return "protocol_version"
	case strings.Contains(msg, "no cipher suite"), strings.Contains(msg, "no mutually supported"), strings.Contains(msg, "curve"):
		return "no_shared_cipher"
	case strings.Contains(msg, "no certificate"), strings.Contains(msg, "unrecognized name"):
		return "no_certificate"
	case strings.Contains(msg, "client certificate"), strings.Contains(msg, "provide a certificate"),
		strings.Contains(msg, "failed to verify certificate"):
		return "client_certificate" // mutual TLS: none sent, or it did not verify
	}
	return "bad_handshake"
}

// IsRemoteAlert reports whether err is a TLS alert the peer sent (crypto/tls's
// "remote error: tls: ..."): the peer refused the handshake or ended the
// connection on an error of its own. Its close_notify is not one (crypto/tls
// reads it as io.EOF). crypto/tls returns a received alert as a *net.OpError
// with Op "remote error" around an unexported type; tls.AlertError is what
// QUIC connections return, not this.
func IsRemoteAlert(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}

// looksLikeHTTP: the first bytes of a plain HTTP request sent to the TLS port.
func looksLikeHTTP(b []byte) bool {
	for _, m := range []string{"GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC", "CONN", "TRAC", "PRI "} {
		if len(b) >= 4 && string(b[:4]) == m {
			return true
		}
	}
	return false
}

// VersionName is "1.2" or "1.3" (or the hex code of anything else).
func VersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "1.3"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS10:
		return "1.0"
	}
	return tls.VersionName(v)
}
