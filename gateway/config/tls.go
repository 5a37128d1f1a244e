package config

import (
	"net"
	"time"
)

// HTTPSListener is the public TLS listener, beside the plain one. An empty
// Addr means none.
type HTTPSListener struct {
	Addr string `yaml:"addr"`
	// Certificates are chosen by SNI (the leaf's names, wildcards included);
	// the first is the default for clients that send no name or an unknown
	// one. None: a development certificate is generated in DevCertDir.
	Certificates []CertificatePair `yaml:"certificates"`
	DevCertDir   string            `yaml:"dev_cert_dir"`
	// MinVersion is "1.2" (the default) or "1.3".
	MinVersion       string        `yaml:"min_version"`
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// MaxHandshakes bounds the handshakes in progress node-wide: each holds a
	// short-lived goroutine (see gateway/tlsconn), from when the client's
	// ClientHello is all in. Past it, a new handshake evicts another
	// (EvictHandshakesAfter) or its connection is closed at once; both are
	// counted.
	MaxHandshakes int `yaml:"max_handshakes"`
	// EvictHandshakesAfter: with max_handshakes in progress, a new handshake
	// takes the place of its event loop's oldest once that one has run this
	// long (closed and counted as evicted), else of one that has run a
	// quarter of it and whose address holds more than twice the newcomer's in
	// flight, instead of being refused itself: handshakes stalled from many
	// addresses cannot keep every slot for a whole handshake_timeout. 0:
	// never evict (by age or by share).
	EvictHandshakesAfter time.Duration `yaml:"evict_handshakes_after"`
	SessionTickets       bool          `yaml:"session_tickets"`
	// TicketKeyRotation: a new session-ticket key this often; the two before
	// it still resume, so a ticket resumes for two to three rotations. At
	// least a second (a test's); Gozer warns below a minute.
	TicketKeyRotation time.Duration `yaml:"ticket_key_rotation"`
	// CertCheckInterval: how often the certificate and key files are read
	// again to see whether they changed (0: never; POST /admin/tls/reload still works).
	CertCheckInterval time.Duration `yaml:"cert_check_interval"`
	// ClientAuth is mutual TLS: "off" (the default), "optional" (a client
	// certificate, when sent, must verify against ClientCAFile) or "require".
	ClientAuth   string `yaml:"client_auth"`
	ClientCAFile string `yaml:"client_ca_file"`
	// H2 offers HTTP/2 by ALPN ("h2" before "http/1.1"); on by default.
	H2 bool `yaml:"h2"`
}

// CertificatePair is one certificate chain (leaf first) and its key, PEM files.
type CertificatePair struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Enabled reports whether the HTTPS listener is configured.
func (h HTTPSListener) Enabled() bool { return h.Addr != "" }

func httpsDefaults() HTTPSListener {
	return HTTPSListener{
		DevCertDir:           ".gozer",
		MinVersion:           "1.2",
		HandshakeTimeout:     10 * time.Second,
		MaxHandshakes:        4096,
		EvictHandshakesAfter: time.Second,
		SessionTickets:       true,
		TicketKeyRotation:    time.Hour,
		CertCheckInterval:    10 * time.Second,
		ClientAuth:           "off",
		H2:                   true,
	}
}

func (c *Config) validateHTTPS(bad reporter) {
	h := c.Listeners.HTTPS
	if c.Listeners.Proxy.RedirectHTTPS && !h.Enabled() {
		bad("listeners.proxy.redirect_https", "needs listeners.https.addr: there is no HTTPS listener to send clients to")
	}
	if !h.Enabled() {
		return
	}
	if h.MinVersion != "1.2" && h.MinVersion != "1.3" {
		bad("listeners.https.min_version", `must be "1.2" or "1.3", got %q`, h.MinVersion)
	}
	if h.HandshakeTimeout <= 0 {
		bad("listeners.https.handshake_timeout", "must be positive, got %s", h.HandshakeTimeout)
	}
	if h.MaxHandshakes <= 0 {
		bad("listeners.https.max_handshakes", "must be positive, got %d", h.MaxHandshakes)
	}
	if h.EvictHandshakesAfter < 0 {
		bad("listeners.https.evict_handshakes_after", "must be 0 (never evict) or positive, got %s", h.EvictHandshakesAfter)
	}
	if h.SessionTickets && h.TicketKeyRotation < time.Second {
		bad("listeners.https.ticket_key_rotation", "must be at least 1s, got %s", h.TicketKeyRotation)
	}
	if h.CertCheckInterval < 0 {
		bad("listeners.https.cert_check_interval", "must be 0 (never) or positive, got %s", h.CertCheckInterval)
	}
	validateClientAuth("listeners.https", h.ClientAuth, h.ClientCAFile, bad)
	validatePairs("listeners.https.certificates", h.Certificates, bad)
	if len(h.Certificates) == 0 && h.DevCertDir == "" {
		bad("listeners.https.dev_cert_dir", "must name a directory when no certificates are configured")
	}
	for _, other := range []struct{ key, addr string }{
		{"listeners.proxy.addr", c.Listeners.Proxy.Addr}, {"listeners.admin.addr", c.Listeners.Admin.Addr},
	} {
		if conflict(h.Addr, other.addr) {
			bad("listeners.https.addr", "%q would take the port of %s %q: give each listener a port of its own", h.Addr, other.key, other.addr)
		}
	}
}

// validateClientAuth checks a listener's mutual TLS settings (prefix.client_auth
// and prefix.client_ca_file).
func validateClientAuth(prefix, mode, caFile string, bad reporter) {
	switch mode {
	case "", "off":
	case "optional", "require":
		if caFile == "" {
			bad(prefix+".client_ca_file", "client_auth %q needs the CAs that sign client certificates", mode)
		}
	default:
		bad(prefix+".client_auth", `must be "off", "optional" or "require", got %q`, mode)
	}
}

func validatePairs(key string, pairs []CertificatePair, bad reporter) {
	for i, p := range pairs {
		if p.Cert == "" || p.Key == "" {
			bad(key, "entry %d needs both cert and key", i)
		}
	}
}

// AdminTLS is HTTPS on the admin listener (listeners.admin.tls). Its
// certificates are its own, not the HTTPS listener's: the admin listener is
// reached by an internal name or address, which the public certificates do
// not cover, and its clients trust an internal CA. They are chosen, checked
// and reloaded exactly as the HTTPS listener's (gateway/tlscert).
type AdminTLS struct {
	Enabled bool `yaml:"enabled"`
	// Certificates: at least one pair (no development certificate here); the
	// first is the default.
	Certificates []CertificatePair `yaml:"certificates"`
	// MinVersion is "1.2" (the default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// CertCheckInterval: how often the files are read again to see whether
	// they changed (0: never; POST /admin/tls/reload?listener=admin still works).
	CertCheckInterval time.Duration `yaml:"cert_check_interval"`
	// ClientAuth "require" lets only clients with a certificate signed by a CA
	// of ClientCAFile in: the admin API's authentication. "optional" checks a
	// certificate when one is sent and lets clients without one in; "off" (the
	// default) asks for none.
	ClientAuth   string `yaml:"client_auth"`
	ClientCAFile string `yaml:"client_ca_file"`
}

func adminTLSDefaults() AdminTLS {
	return AdminTLS{MinVersion: "1.2", CertCheckInterval: 10 * time.Second, ClientAuth: "off"}
}

func (c *Config) validateAdminTLS(bad reporter) {
	a := c.Listeners.Admin.TLS
	if !a.Enabled {
		if len(a.Certificates) > 0 || (a.ClientAuth != "" && a.ClientAuth != "off") || a.ClientCAFile != "" {
			bad("listeners.admin.tls.enabled", "must be true for the other tls settings to apply")
		}
		return
	}
	if len(a.Certificates) == 0 {
		bad("listeners.admin.tls.certificates", "must name at least one certificate and key (the admin listener has no development certificate)")
	}
	validatePairs("listeners.admin.tls.certificates", a.Certificates, bad)
	if a.MinVersion != "1.2" && a.MinVersion != "1.3" {
		bad("listeners.admin.tls.min_version", `must be "1.2" or "1.3", got %q`, a.MinVersion)
	}
	if a.CertCheckInterval < 0 {
		bad("listeners.admin.tls.cert_check_interval", "must be 0 (never) or positive, got %s", a.CertCheckInterval)
	}
	validateClientAuth("listeners.admin.tls", a.ClientAuth, a.ClientCAFile, bad)
	if c.Push.Cluster.Enabled {
		// The nodes forward pushes to each other's admin listener in plain
		// HTTP (gateway/push: API.forward); over TLS they would be refused.
		bad("listeners.admin.tls", "cannot be used with push.cluster: the nodes forward pushes to each other's admin listener in plain HTTP")
	}
}

// HTTPSPortSuffix is ":PORT" of the HTTPS listener, or "" when it is 443 (or
// there is none): what a redirect to HTTPS puts after the host.
func (c *Config) HTTPSPortSuffix() string {
	_, port, err := net.SplitHostPort(c.Listeners.HTTPS.Addr)
	if err != nil || port == "443" {
		return ""
	}
	return ":" + port
}

// OriginTLS is how Gozer speaks TLS to an origin's servers.
type OriginTLS struct {
	Enabled bool `yaml:"enabled"`
	// ServerName is the name sent (SNI) and verified; "" is the server's host.
	ServerName string `yaml:"server_name"`
	// CAFile holds the CA certificates that may sign the servers' (PEM); ""
	// is the system's roots.
	CAFile string `yaml:"ca_file"`
	// Cert and Key are a client certificate, for origins that ask for one.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// InsecureSkipVerify accepts any certificate: for a test bed only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

func validateOriginTLS(key string, t OriginTLS, bad reporter) {
	if !t.Enabled {
		if t != (OriginTLS{}) {
			bad(key+".tls.enabled", "must be true for the other tls settings to apply")
		}
		return
	}
	if (t.Cert == "") != (t.Key == "") {
		bad(key+".tls", "cert and key go together")
	}
}
