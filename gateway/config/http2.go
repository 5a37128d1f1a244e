package config

import "time"

// HTTP2 is HTTP/2 downstream (gateway/http2): over TLS when the client's ALPN
// chose h2 (listeners.https.h2), in clear text with prior knowledge on the
// plain listener (listeners.proxy.h2c). A connection takes the values in
// service when it opens (its SETTINGS); a reload applies to new connections.
type HTTP2 struct {
	// MaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS: more open
	// streams are refused (RST_STREAM REFUSED_STREAM).
	MaxConcurrentStreams int `yaml:"max_concurrent_streams"`
	// InitialWindowSize is SETTINGS_INITIAL_WINDOW_SIZE: the request body a
	// stream may send before the exchange took it (what one stream buffers).
	InitialWindowSize Size `yaml:"initial_window_size"`
	// ConnectionWindowSize is the connection's receive window: the request
	// body all of a connection's streams may hold at once.
	ConnectionWindowSize Size `yaml:"connection_window_size"`
	// MaxFrameSize is SETTINGS_MAX_FRAME_SIZE, the largest frame accepted.
	MaxFrameSize Size `yaml:"max_frame_size"`
	// MaxResets: a connection whose client resets more streams than this
	// within AbuseWindow (rapid reset, CVE-2023-44487) gets GOAWAY
	// ENHANCE_YOUR_CALM.
	MaxResets int `yaml:"max_resets"`
	// MaxControlFrames: a connection whose client sends more control frames
	// (PING, SETTINGS, WINDOW_UPDATE, PRIORITY, empty DATA) than this within
	// AbuseWindow gets GOAWAY ENHANCE_YOUR_CALM.
	MaxControlFrames int           `yaml:"max_control_frames"`
	AbuseWindow      time.Duration `yaml:"abuse_window"`
}

func http2Defaults() HTTP2 {
	return HTTP2{MaxConcurrentStreams: 100, InitialWindowSize: 65535, ConnectionWindowSize: 1 << 20,
		MaxFrameSize: 16384, MaxResets: 200, MaxControlFrames: 2000, AbuseWindow: 10 * time.Second}
}

func (c *Config) validateHTTP2(bad reporter) {
	h := &c.HTTP2
	if h.MaxConcurrentStreams < 1 || h.MaxConcurrentStreams > 10000 {
		bad("http2.max_concurrent_streams", "must be between 1 and 10000, got %d", h.MaxConcurrentStreams)
	}
	if h.InitialWindowSize < 1024 || h.InitialWindowSize > 1<<31-1 {
		bad("http2.initial_window_size", "must be between 1KiB and 2^31-1 bytes, got %d", h.InitialWindowSize)
	}
	if h.ConnectionWindowSize < 65535 || h.ConnectionWindowSize > 1<<31-1 {
		bad("http2.connection_window_size", "must be between 65535 and 2^31-1 bytes, got %d", h.ConnectionWindowSize)
	}
	if h.MaxFrameSize < 16384 || h.MaxFrameSize > 1<<24-1 {
		bad("http2.max_frame_size", "must be between 16384 and 16777215 (RFC 9113), got %d", h.MaxFrameSize)
	}
	if h.MaxResets < 1 {
		bad("http2.max_resets", "must be positive, got %d", h.MaxResets)
	}
	if h.MaxControlFrames < 1 {
		bad("http2.max_control_frames", "must be positive, got %d", h.MaxControlFrames)
	}
	if h.AbuseWindow < time.Second {
		bad("http2.abuse_window", "must be at least 1s, got %s", h.AbuseWindow)
	}
}
