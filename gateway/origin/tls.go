package origin

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"gozer/gateway/config"
	"gozer/gateway/tlscert"
)

// TLSClient is how Gozer speaks TLS to an origin's servers: one config,
// specialised per server name. Safe for concurrent use (dialers call For).
type TLSClient struct {
	base   *tls.Config
	byHost sync.Map // host → *tls.Config with ServerName = host
}

// newTLSClient builds an origin's TLS client from its config; nil when the
// origin speaks plain HTTP. Errors name the key and the file.
func newTLSClient(name string, t config.OriginTLS) (*TLSClient, error) {
	if !t.Enabled {
		return nil, nil
	}
	key := "origins." + name + ".tls"
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12, ServerName: t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // spelled out by the operator, for a test bed
		NextProtos:         []string{"http/1.1"},
		// Resumption: a pool reconnects to the same servers all day.
		ClientSessionCache: tls.NewLRUClientSessionCache(256),
	}
	if t.CAFile != "" {
		pool, err := tlscert.CAPool(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", key, err)
		}
		cfg.RootCAs = pool
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("%s.cert: %w", key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	} else {
		cfg.GetClientCertificate = sendNoCertificate
	}
	return &TLSClient{base: cfg}, nil
}

// certAskedKey is the context key under which a handshake (WatchCertRequest)
// notes that the server asked for a client certificate.
type certAskedKey struct{}

// WatchCertRequest returns the context for one handshake of an origin's
// connection (tlsconn.Dial) and a func that tells, once the handshake
// returned, whether the server asked for a client certificate that the origin
// has none of. A server that then refuses often says no more than "handshake
// failure" (TLS 1.2 does, by the RFC): the note makes that a reason an
// operator can act on. Any goroutine; the func may be called from another
// goroutine than the handshake's.
func WatchCertRequest(ctx context.Context) (context.Context, func() bool) {
	asked := new(atomic.Bool)
	return context.WithValue(ctx, certAskedKey{}, asked), asked.Load
}

// sendNoCertificate is the GetClientCertificate of an origin without a client
// certificate: it sends none, as crypto/tls does without one, and notes the
// request for WatchCertRequest.
func sendNoCertificate(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if asked, ok := cri.Context().Value(certAskedKey{}).(*atomic.Bool); ok {
		asked.Store(true)
	}
	return &tls.Certificate{}, nil
}

// For is the config for a connection to addr (host:port): the origin's
// server_name, or else addr's host, is sent and verified.
func (c *TLSClient) For(addr string) *tls.Config {
	if c.base.ServerName != "" {
		return c.base
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if v, ok := c.byHost.Load(host); ok {
		return v.(*tls.Config)
	}
	cfg := c.base.Clone() // shares the session cache
	cfg.ServerName = host
	v, _ := c.byHost.LoadOrStore(host, cfg)
	return v.(*tls.Config)
}
