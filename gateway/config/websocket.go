package config

import "time"

// WebSocket is an origin's websocket proxying (origins.NAME.websocket): a
// request that asks to upgrade to websocket and is routed to an origin with
// it enabled is sent to the origin as an upgrade, and once the origin
// answers 101 the client and origin connections become a tunnel
// (gateway/tunnel). Every key is reloadable: a tunnel keeps the settings it
// opened with, new tunnels take the new ones.
type WebSocket struct {
	// Enabled proxies upgrade requests routed to the origin (false: the
	// Upgrade header is dropped as hop-by-hop, as for any origin).
	Enabled bool `yaml:"enabled"`
	// MaxTunnels caps the origin's open tunnels on this node (0: no cap of
	// its own; the bulkhead, max_concurrent_requests, still counts them).
	MaxTunnels int `yaml:"max_tunnels"`
	// IdleTimeout closes a tunnel (close 1001 to both sides) after this long
	// without a byte either way (left out or 0: 5m).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxLifetime closes a tunnel (close 1001 to both sides) this long after
	// it opened, whatever it carries (left out or 0: 24h).
	MaxLifetime time.Duration `yaml:"max_lifetime"`
}

// The defaults of origins.NAME.websocket.
const (
	DefaultWebSocketIdle     = 5 * time.Minute
	DefaultWebSocketLifetime = 24 * time.Hour
)

func (w *WebSocket) fillDefaults() {
	if w.IdleTimeout == 0 {
		w.IdleTimeout = DefaultWebSocketIdle
	}
	if w.MaxLifetime == 0 {
		w.MaxLifetime = DefaultWebSocketLifetime
	}
}

// validate checks origins.NAME.websocket (key is "origins.NAME").
func (w *WebSocket) validate(key string, bad reporter) {
	if w.MaxTunnels < 0 {
		bad(key+".websocket.max_tunnels", "must be 0 (no cap) or more, got %d", w.MaxTunnels)
	}
	if w.IdleTimeout < 0 {
		bad(key+".websocket.idle_timeout", "must not be negative, got %v", w.IdleTimeout)
	}
	if w.MaxLifetime < 0 {
		bad(key+".websocket.max_lifetime", "must not be negative, got %v", w.MaxLifetime)
	}
}
