package origin

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"

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
	}
	return &TLSClient{base: cfg}, nil
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
