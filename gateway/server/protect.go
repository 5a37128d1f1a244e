package server

import (
	"context"
	"net"
	"time"

	"gozer/filters"
	"gozer/gateway/config"
	"gozer/gateway/loop"
	"gozer/gateway/peers"
	"gozer/gateway/push"
	"gozer/gateway/ratelimit"
)

// admitConn applies connection protection to a connection just accepted,
// before a loop spends anything on it: the deny list (protect.deny,
// /admin/deny, ctx.deny) and the client's rate of new connections
// (protect.new_connections_per_ip). A connection refused is closed here
// (a denied one without a word, one over the rate with a 429) and counted;
// the log line is sampled. Runs on the accepting goroutine.
func (s *Server) admitConn(c net.Conn) bool {
	a := loop.AddrOf(c.RemoteAddr())
	p := &s.shared.Snapshot().Config.Protect
	var buf [16]byte
	switch s.shared.Limits.AdmitConn(a, peers.AppendKey(buf[:0], a), time.Now().UnixNano(), p.NewConnectionsPerIP, p.NewConnectionsBurst) {
	case ratelimit.ConnDenied:
		_ = c.Close()
		if e := s.shared.Sampled.Warn(filters.ClientDenied.Name); e != nil { // nil: sampled out, nothing formatted
			e.Str("client", a.String()).Str("cause", filters.ClientDenied.Name).
				Msg("connection refused: client network denied (protect.deny, /admin/deny)")
		}
		return false
	case ratelimit.ConnTooFast:
		s.refuse(c, filters.ClientTooManyConnections, "too many new connections per second from one client",
			"new_connections_per_ip", int(p.NewConnectionsPerIP))
		return false
	}
	return true
}

// connRateKeys bounds the clients whose new-connection rate the node keeps
// (protect.new_connections_per_ip): the least recently seen go first.
const connRateKeys = 1 << 16

// limitsState is the node's limits and the cluster reconciler's lifetime.
type limitsState struct {
	node *ratelimit.Node
	stop context.CancelFunc
	done chan struct{}
}

// newLimits builds the node's limits (limits.max_keys is restart only).
func newLimits(cfg *config.Config) *limitsState {
	return &limitsState{node: ratelimit.NewNode(cfg.Limits.MaxKeys, connRateKeys)}
}

// startLimits hands the limits to the loops and, with limits.redis, starts
// the cluster reconciler (its own goroutine: no loop waits for Redis).
func (s *Server) startLimits() {
	n := s.limits.node
	s.shared.Limits = n
	n.Deny.SetConfigured(s.cfg.Protect.DenyPrefixes())
	l := &s.cfg.Limits
	if l.Redis == "" {
		return
	}
	if !s.cfg.Push.Cluster.Enabled {
		push.RedisLogTo(s.log) // go-redis's failed dials, sampled (the push hub does it otherwise)
	}
	n.Cluster = ratelimit.NewReconciler(n.Requests, l.Redis, l.SyncInterval, l.Window, s.log)
	ctx, cancel := context.WithCancel(context.Background())
	s.limits.stop, s.limits.done = cancel, make(chan struct{})
	go func() { defer close(s.limits.done); n.Cluster.Run(ctx) }()
	s.log.Info().Str("redis", l.Redis).Dur("sync_interval", l.SyncInterval).Dur("window", l.Window).
		Msg("cluster rate limits reconcile through redis")
}

// stopLimits stops the cluster reconciler and waits for it.
func (s *Server) stopLimits() {
	if s.limits.stop != nil {
		s.limits.stop()
		<-s.limits.done
	}
}
