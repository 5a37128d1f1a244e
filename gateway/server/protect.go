package server

import (
	"context"
	"net"
	"net/netip"
	"time"

	"gozer/filters"
	"gozer/gateway/config"
	"gozer/gateway/httpcodec"
	"gozer/gateway/peers"
	"gozer/gateway/push"
	"gozer/gateway/ratelimit"
)

// refusal is why a new client connection is turned away before a loop serves
// it, and what its log line says.
type refusal struct {
	cause  filters.Cause
	msg    string // the log line's reason
	limit  string // the limit's config key, logged with value ("": none)
	value  int
	silent bool // closed without an answer (a denied network)
}

// admit applies what a new client connection meets before a loop serves it
// and counts it in Shared.Clients. byPeer says the socket's peer is the
// client (not a PROXY protocol balancer): then connection protection (the
// deny list: protect.deny, /admin/deny, ctx.deny; the client's rate of new
// connections: protect.new_connections_per_ip) and the per-IP cap apply here,
// and the returned peer is counted. max_connections applies to every
// connection. A refusal is counted; the caller closes the connection, with
// the refusal's answer unless silent, and logs it (logRefusal). Any goroutine:
// the acceptors, or the loop that accepted (accept_on_loops).
func (s *Server) admit(a netip.Addr, byPeer bool) (*peers.Peer, *refusal) {
	snap := s.shared.Snapshot()
	if byPeer {
		p := &snap.Config.Protect
		var buf [16]byte
		switch s.shared.Limits.AdmitConn(a, peers.AppendKey(buf[:0], a), time.Now().UnixNano(), p.NewConnectionsPerIP, p.NewConnectionsBurst) {
		case ratelimit.ConnDenied:
			return nil, &refusal{cause: filters.ClientDenied, msg: "client network denied (protect.deny, /admin/deny)", silent: true}
		case ratelimit.ConnTooFast:
			return nil, &refusal{cause: filters.ClientTooManyConnections, msg: "too many new connections per second from one client",
				limit: "new_connections_per_ip", value: int(p.NewConnectionsPerIP)}
		}
	}
	cfg := &snap.Config.Server
	// Count first, then check: the loops admit concurrently (accept_on_loops),
	// and a check before the count would let each of them take the last slot.
	if s.shared.Clients.Add(1) > int64(cfg.MaxConnections) {
		s.shared.Clients.Add(-1)
		s.shared.RefusedMax.Add(1)
		return nil, &refusal{cause: filters.LocalMaxConnections, msg: "too many client connections", limit: "max_connections", value: cfg.MaxConnections}
	}
	var peer *peers.Peer
	if byPeer {
		var ok bool
		if peer, ok = s.shared.Peers.Open(a); !ok {
			s.shared.Clients.Add(-1)
			return nil, &refusal{cause: filters.ClientTooManyConnections, msg: "too many connections from one client",
				limit: "max_connections_per_ip", value: cfg.MaxConnectionsPerIP}
		}
	}
	return peer, nil
}

// refusalAnswer is the HTTP answer a refused connection gets.
func (s *Server) refusalAnswer(r *refusal) []byte {
	name := ""
	if s.shared.Snapshot().Config.Server.StatusHeaders.Expose == config.ExposeAll {
		name = r.cause.Name
	}
	return httpcodec.AppendError(nil, r.cause.Status, name, "", nil, true)
}

// logRefusal logs a refused connection, sampled (a flood must not flood the
// log): one line per cause and period.
func (s *Server) logRefusal(client string, r *refusal) {
	e := s.shared.Sampled.Warn(r.cause.Name)
	if e == nil {
		return // sampled out: nothing formatted
	}
	e = e.Str("client", client).Str("cause", r.cause.Name)
	if r.limit != "" {
		e = e.Int(r.limit, r.value)
	}
	e.Msg("connection refused: " + r.msg)
}

// refusalClient is how a refusal's log line names the client: a denied one by
// its address (its network is what is denied), others by address and port.
func refusalClient(r *refusal, a netip.Addr, remote net.Addr) string {
	if r.silent {
		return a.String()
	}
	return remote.String()
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
	n.Deny.SetConfigured(s.cfg.Protect.DenyPrefixes(), s.cfg.Protect.MaxDenied)
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
