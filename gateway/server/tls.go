package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"gozer/gateway/admin"
	"gozer/gateway/config"
	"gozer/gateway/peers"
	"gozer/gateway/tlscert"
	"gozer/gateway/tlsconn"
)

// tlsStart is the enroll context of a connection accepted on the HTTPS
// listener: OnOpen wraps it in a tlsconn.Conn, whose kind later finds peer
// as a plain connection's would.
type tlsStart struct{ peer *peers.Peer }

// certOptions are the certificate store's options from the listener's config.
func certOptions(h *config.HTTPSListener, log zerolog.Logger) tlscert.Options {
	return tlscert.Options{
		Pairs: pairsOf(h.Certificates), DevDir: h.DevCertDir, MinVersion: minVersionOf(h.MinVersion),
		NextProtos: nextProtos(h), SessionTickets: h.SessionTickets,
		TicketRotate: h.TicketKeyRotation, CheckEvery: h.CertCheckInterval, Log: log,
	}
}

// adminCertOptions are the admin listener's certificate store's options
// (listeners.admin.tls): its own pairs, and neither a development
// certificate (the config requires pairs) nor session tickets (its few
// keep-alive clients gain little from resuming, and a store without them
// rotates nothing).
func adminCertOptions(a *config.AdminTLS, log zerolog.Logger) tlscert.Options {
	return tlscert.Options{
		Pairs: pairsOf(a.Certificates), MinVersion: minVersionOf(a.MinVersion),
		NextProtos: []string{"http/1.1"}, CheckEvery: a.CertCheckInterval, Log: log,
	}
}

// nextProtos is what the HTTPS listener offers by ALPN: h2 first when
// listeners.https.h2 is on.
func nextProtos(h *config.HTTPSListener) []string {
	if h.H2 {
		return []string{"h2", "http/1.1"}
	}
	return []string{"http/1.1"}
}

func pairsOf(ps []config.CertificatePair) []tlscert.Pair {
	pairs := make([]tlscert.Pair, len(ps))
	for i, p := range ps {
		pairs[i] = tlscert.Pair{CertFile: p.Cert, KeyFile: p.Key}
	}
	return pairs
}

// minVersionOf is a listener's min_version ("1.2" or "1.3", validated).
func minVersionOf(v string) uint16 {
	if v == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// buildTLS loads the certificates (New: a failure stops start-up, as -check
// does) and the handshake side the loops share; nothing without an HTTPS
// listener.
func (s *Server) buildTLS() error {
	h := &s.cfg.Listeners.HTTPS
	if !h.Enabled() {
		return nil
	}
	store, err := tlscert.New(certOptions(h, s.log))
	if err != nil {
		return fmt.Errorf("listeners.https: %w", err)
	}
	cfg := store.Config()
	if err := clientAuth(cfg, "listeners.https", h.ClientAuth, h.ClientCAFile); err != nil {
		return err
	}
	// Full 16 KiB records from the first byte: Go's default starts small to
	// cut the first paint's latency over slow links, at the cost of more
	// records (and CPU) per response; an edge serving APIs prefers the CPU.
	cfg.DynamicRecordSizingDisabled = true
	s.certs = store
	s.tls = tlsconn.NewServer(cfg, h.HandshakeTimeout, h.MaxHandshakes, h.EvictHandshakesAfter)
	for _, w := range ticketWarnings(h) {
		s.log.Warn().Str("listener", "https").Msg(w)
	}
	return nil
}

// ticketWarnings: a rotation under a minute is allowed (the tests rotate every
// second to watch keys leave the window) but leaves clients little to resume
// with: a ticket resumes for two to three rotations.
func ticketWarnings(h *config.HTTPSListener) []string {
	if !h.SessionTickets || h.TicketKeyRotation >= time.Minute {
		return nil
	}
	return []string{fmt.Sprintf("listeners.https.ticket_key_rotation %s: a session ticket resumes for at most %s "+
		"(three keys are kept); clients will mostly do full handshakes", h.TicketKeyRotation, 3*h.TicketKeyRotation)}
}

// buildAdminTLS loads the admin listener's certificates into a store of its
// own (a failure stops start-up, as -check does); nothing without
// listeners.admin.tls.
func (s *Server) buildAdminTLS() error {
	a := &s.cfg.Listeners.Admin.TLS
	if !a.Enabled {
		return nil
	}
	store, err := tlscert.New(adminCertOptions(a, s.log.With().Str("listener", "admin").Logger()))
	if err != nil {
		return fmt.Errorf("listeners.admin.tls: %w", err)
	}
	if err := clientAuth(store.Config(), "listeners.admin.tls", a.ClientAuth, a.ClientCAFile); err != nil {
		return err
	}
	s.adminCerts = store
	return nil
}

// checkTLS is -check's look at the TLS settings of the HTTPS listener and of
// the admin listener: certificate files present, keys matching, expiry, the
// client CA file readable; warnings are logged.
func checkTLS(cfg *config.Config, log zerolog.Logger) error {
	if h := &cfg.Listeners.HTTPS; h.Enabled() {
		warnings, err := tlscert.Check(certOptions(h, log))
		if err != nil {
			return fmt.Errorf("listeners.https: %w", err)
		}
		if err := clientAuth(&tls.Config{}, "listeners.https", h.ClientAuth, h.ClientCAFile); err != nil {
			return err
		}
		warnings = append(warnings, ticketWarnings(h)...)
		warnings = append(warnings, uncoveredHosts(cfg)...)
		for _, w := range warnings {
			log.Warn().Str("listener", "https").Msg(w)
		}
	}
	if a := &cfg.Listeners.Admin.TLS; a.Enabled {
		warnings, err := tlscert.Check(adminCertOptions(a, log))
		if err != nil {
			return fmt.Errorf("listeners.admin.tls: %w", err)
		}
		if err := clientAuth(&tls.Config{}, "listeners.admin.tls", a.ClientAuth, a.ClientCAFile); err != nil {
			return err
		}
		for _, w := range warnings {
			log.Warn().Str("listener", "admin").Msg(w)
		}
	}
	return nil
}

// uncoveredHosts names the route hosts no configured certificate covers: an
// HTTPS client asking for one gets the default certificate, which its
// browser refuses.
func uncoveredHosts(cfg *config.Config) []string {
	var leaves []*x509.Certificate
	for _, p := range cfg.Listeners.HTTPS.Certificates {
		pair, err := tls.LoadX509KeyPair(p.Cert, p.Key)
		if err != nil || len(pair.Certificate) == 0 {
			continue // Check reported it
		}
		if leaf, err := x509.ParseCertificate(pair.Certificate[0]); err == nil {
			leaves = append(leaves, leaf)
		}
	}
	if len(leaves) == 0 {
		return nil // the development certificate: localhost only, by design
	}
	var out []string
	for _, r := range cfg.Routes {
		host := r.Host
		if host == "" || slices.ContainsFunc(leaves, func(l *x509.Certificate) bool { return l.VerifyHostname(host) == nil }) {
			continue
		}
		out = append(out, fmt.Sprintf("routes: host %q is covered by no certificate of listeners.https.certificates: HTTPS clients asking for it get the default one", host))
	}
	return out
}

// listenHTTPS binds the HTTPS listener, when there is one.
func (s *Server) listenHTTPS() error {
	h := &s.cfg.Listeners.HTTPS
	if !h.Enabled() {
		return nil
	}
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", h.Addr)
	if err != nil {
		return fmt.Errorf("listen https %s: %w", h.Addr, err)
	}
	s.httpsLn, s.httpsAddr = ln, ln.Addr().String()
	return nil
}

// startTLS starts what runs beside an HTTPS listener: its acceptor and the
// certificate store's file checks and ticket-key rotation; and the admin
// listener's certificate checks when it speaks TLS.
func (s *Server) startTLS() {
	if s.adminCerts != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.adminCerts.Run(s.stopTick) }()
	}
	if s.certs == nil {
		return
	}
	if s.httpsLn != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.acceptLoop(s.httpsLn, true) }()
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.certs.Run(s.stopTick) }()
	s.log.Info().Str("https", s.httpsAddr).Interface("certificates", s.certs.Stats().Certificates).
		Msg("HTTPS listener serving")
}

// HTTPSAddr is the bound address of the HTTPS listener ("" without one).
func (s *Server) HTTPSAddr() string { return s.httpsAddr }

// tlsSource is the admin API's view of the HTTPS listener; nil without one.
func (s *Server) tlsSource() *admin.TLSSource {
	if s.tls == nil {
		return nil
	}
	return &admin.TLSSource{Handshakes: s.tls.Stats, Certs: s.certs}
}

// adminTLS is the admin listener's TLS for gateway/admin; nil when it
// speaks plain HTTP.
func (s *Server) adminTLS() *admin.ListenerTLS {
	if s.adminCerts == nil {
		return nil
	}
	return &admin.ListenerTLS{Config: s.adminCerts.Config(), Certs: s.adminCerts, ClientAuth: s.cfg.Listeners.Admin.TLS.ClientAuth}
}

// clientAuth sets mutual TLS (prefix.client_auth: off, optional, require,
// against prefix.client_ca_file) on a listener's config, before its first
// handshake; -check runs it on a throwaway config.
func clientAuth(cfg *tls.Config, prefix, mode, caFile string) error {
	switch mode {
	case "optional":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "require":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil
	}
	pool, err := tlscert.CAPool(caFile)
	if err != nil {
		return fmt.Errorf("%s.client_ca_file: %w", prefix, err)
	}
	cfg.ClientCAs = pool
	return nil
}
