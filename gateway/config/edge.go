package config

import (
	"fmt"
	"net/netip"
	"strings"

	"gozer/gateway/compress"
)

// DefaultRequestBuffer is an origin's request_buffer when its config leaves
// it out: a small upload is received whole before it costs the origin a
// connection.
const DefaultRequestBuffer Size = 64 << 10

// RequestBufferSize is request_buffer, its default when left out.
func (o *Origin) RequestBufferSize() Size {
	if o.RequestBuffer == nil {
		return DefaultRequestBuffer
	}
	return *o.RequestBuffer
}

// StatusHeaders says who sees X-Gozer-Status and X-Gozer-Attempts, which name
// the gateway's internal failure causes.
type StatusHeaders struct {
	// Expose is all (every response), none, or debug: only responses to
	// requests that carry DebugHeader from an address in TrustedNetworks.
	Expose          string   `yaml:"expose"`
	DebugHeader     string   `yaml:"debug_header"`
	TrustedNetworks []string `yaml:"trusted_networks"`
}

// The values of status_headers.expose.
const (
	ExposeAll   = "all"
	ExposeDebug = "debug"
	ExposeNone  = "none"
)

func statusHeaderDefaults() StatusHeaders {
	return StatusHeaders{Expose: ExposeDebug, DebugHeader: "X-Gozer-Debug", TrustedNetworks: []string{"127.0.0.0/8", "::1/128"}}
}

// Prefixes are the trusted networks, parsed (the config is validated: they parse).
func (s StatusHeaders) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range s.TrustedNetworks {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// Compression is an origin's response compression.
type Compression struct {
	// Enabled compresses responses of Types at least MinSize long, for clients
	// that accept an encoding of Encodings, when the origin did not.
	Enabled bool `yaml:"enabled"`
	// Encodings in the order preferred when the client accepts several: br,
	// gzip, zstd.
	Encodings []string `yaml:"encodings"`
	// Level is the compression level, 1 (fastest) to 9 (smallest); for brotli
	// and zstd it is mapped onto their own scales.
	Level   int      `yaml:"level"`
	MinSize Size     `yaml:"min_size"`
	Types   []string `yaml:"types"`
}

func (c *Compression) fillDefaults() {
	if c.Encodings == nil {
		// brotli and zstd are opt-in: in pure Go, brotli costs about five times
		// gzip's CPU for a similar ratio (gateway/compress BenchmarkEncode).
		c.Encodings = []string{"gzip"}
	}
	if c.Level == 0 {
		c.Level = 5
	}
	if c.MinSize == 0 {
		c.MinSize = 1 << 10
	}
	if c.Types == nil {
		c.Types = compress.DefaultTypes()
	}
}

// validateEdge checks the settings of slow clients, fairness and status headers.
func (c *Config) validateEdge(bad reporter) {
	s := c.Server
	for _, n := range []struct {
		key string
		v   int
	}{{"server.max_connections_per_ip", s.MaxConnectionsPerIP}, {"server.max_requests_per_ip", s.MaxRequestsPerIP}} {
		if n.v < 0 {
			bad(n.key, "must be 0 (no limit) or more, got %d", n.v)
		}
	}
	if (s.MinBodyRate > 0 || s.MinSendRate > 0) && s.RateWindow < 1e9 {
		bad("server.rate_window", "must be at least 1s when a minimum rate is set, got %v", s.RateWindow)
	}
	if s.MaxBufferedTotal != 0 && s.MaxBufferedTotal < s.MaxBufferedPerConn {
		bad("server.max_buffered_total", "must be 0 (automatic) or at least server.max_buffered_per_conn (%d), got %d",
			s.MaxBufferedPerConn, s.MaxBufferedTotal)
	}
	if s.SocketSendBuffer < 0 || s.SocketSendBuffer > 64<<20 {
		bad("server.socket_send_buffer", "must be between 0 (the kernel's autotuning) and 64MiB, got %d", s.SocketSendBuffer)
	}
	sh := s.StatusHeaders
	switch sh.Expose {
	case ExposeAll, ExposeDebug, ExposeNone:
	default:
		bad("server.status_headers.expose", "must be all, debug or none, got %q", sh.Expose)
	}
	if sh.Expose == ExposeDebug && strings.TrimSpace(sh.DebugHeader) == "" {
		bad("server.status_headers.debug_header", "must name a header when expose is debug, got %q", sh.DebugHeader)
	}
	for i, n := range sh.TrustedNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			bad(fmt.Sprintf("server.status_headers.trusted_networks[%d]", i), "%q is not a network (e.g. 10.0.0.0/8)", n)
		}
	}
}

// validateCompression checks an origin's compression settings.
func (o *Origin) validateCompression(key string, bad reporter) {
	cm := o.Compression
	if cm.Level < 1 || cm.Level > 9 {
		bad(key+".compression.level", "must be between 1 and 9, got %d", cm.Level)
	}
	if len(cm.Encodings) == 0 && cm.Enabled {
		bad(key+".compression.encodings", "must name at least one of br, gzip, zstd, got none")
	}
	for i, e := range cm.Encodings {
		if _, ok := compress.ParseEncoding(e); !ok {
			bad(fmt.Sprintf("%s.compression.encodings[%d]", key, i), "must be br, gzip or zstd, got %q", e)
		}
	}
	for i, t := range cm.Types {
		if err := compress.CheckType(t); err != nil {
			bad(fmt.Sprintf("%s.compression.types[%d]", key, i), "%v", err)
		}
	}
}
