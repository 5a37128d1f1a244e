package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"gozer/gateway/config"
	"gozer/gateway/push"
)

// pushHub is the node's push state shared by every loop: the local registry, the
// push API, the cluster registrar, the upstream sender, SSE replay rings and the
// counters. Its fields are set in newPushHub and then only read; the objects they
// point to are safe for any goroutine.
type pushHub struct {
	cfg          *config.Push
	log          zerolog.Logger
	reg          *push.Registry
	limiter      *push.RateLimiter
	api          *push.API
	cluster      push.ClusterRegistry // nil: single node
	registrar    *push.Registrar      // nil: single node
	rings        *ringStore           // nil: no SSE replay
	upstream     *pushUpstream
	maxOutbound  int64
	pingInterval int64
	lifetime     int64
	dither       float64
	stats        pushStats

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// pushStats are the push counters /admin/push shows.
type pushStats struct {
	open, accepted, refused        atomic.Int64
	sent, slowClosed, pingTimeouts atomic.Int64
	goAways, protocolClosed        atomic.Int64
	upstreamSent, upstreamFailed   atomic.Int64
	upstreamDropped                atomic.Int64
}

func newPushHub(s *Server) (*pushHub, error) {
	pc := &s.cfg.Push
	h := &pushHub{
		cfg: pc, log: s.log.With().Str("part", "push").Logger(),
		reg:          push.NewRegistry(pc.MaxPerClient),
		limiter:      push.NewRateLimiter(pc.Rate, pc.Burst, push.MonotonicClock()),
		maxOutbound:  int64(pc.MaxOutboundBytes),
		pingInterval: int64(pc.PingInterval),
		lifetime:     int64(pc.MaxLifetime),
		dither:       pc.LifetimeDither,
	}
	if pc.SSEReplayEvents > 0 {
		h.rings = newRingStore(pc.SSEReplayEvents, int(pc.SSEReplayBytes))
	}
	if pc.Cluster.Enabled {
		push.RedisLogTo(h.log)
		rc, err := push.NewRedisCluster(pc.Cluster.Redis, s.cfg.ClusterNode(), pc.Cluster.TTL)
		if err != nil {
			return nil, err
		}
		h.cluster = rc
		h.registrar = push.NewRegistrar(rc, h.reg, pc.Cluster.TTL, h.log)
	}
	h.api = push.NewAPI(push.APIConfig{
		Registry: h.reg, Limiter: h.limiter, Cluster: h.cluster,
		MaxMessage: int(pc.MaxMessage), Log: h.log,
	})
	up, err := newPushUpstream(s, h)
	if err != nil {
		return nil, err
	}
	h.upstream = up
	return h, nil
}

// start runs the hub's goroutines: the registrar, the rate limiter's sweep, the
// upstream senders and the replay rings' expiry.
func (h *pushHub) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	run := func(f func(context.Context)) {
		h.wg.Add(1)
		go func() { defer h.wg.Done(); f(ctx) }()
	}
	if h.registrar != nil {
		run(h.registrar.Run)
	}
	run(h.api.SweepLoop)
	if h.rings != nil {
		run(h.rings.expireLoop)
	}
	h.upstream.start(run)
}

// stop ends the goroutines; the registrar leaves the cluster on its way out.
func (h *pushHub) stop() {
	if h.cancel != nil {
		h.cancel()
	}
	// An upstream sender may sit in a request to a slow push origin for up to its
	// read_timeout, which fasthttp cannot cancel; shutdown does not wait for it
	// longer than the registrar needs to leave the cluster.
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		h.log.Warn().Msg("push: stopped without waiting for upstream messages still in flight")
	}
	if c, ok := h.cluster.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}

// lifetimeOf is a new connection's life: max_lifetime shortened by a random part of
// up to lifetime_dither, so that connections made together do not expire together.
func (h *pushHub) lifetimeOf(rnd uint32) int64 {
	cut := int64(float64(h.lifetime) * h.dither * (float64(rnd) / float64(^uint32(0))))
	return h.lifetime - cut
}

// logClose writes the process-log line of a connection the gateway closed.
func (pc *pushConn) logClose(lvl zerolog.Level, reason string) {
	pc.l.srv.push.log.WithLevel(lvl).Str("client_id", pc.id).Str("remote", pc.c.RemoteAddr().String()).
		Msg("push connection closed: " + reason)
}

// logLifetime writes the access-log line that ends a push connection's life:
// who ended it (closed_by), why (reason: the gateway's own reason when it ended
// it, else what the socket said) and the websocket close code, if one passed.
func (pc *pushConn) logLifetime(err error) {
	l := pc.l
	if e := l.log.Logger.Log(); e != nil {
		kind := "websocket"
		if pc.kind == kindSSE {
			kind = "sse"
		}
		e.Str("push", "closed").Str("kind", kind).Str("client_id", pc.id).Str("client", pc.c.RemoteAddr().String()).
			Str("closed_by", whyNames[pc.why]).
			Int64("duration_ms", (l.now-pc.opened)/1e6).Uint32("messages_in", pc.msgsIn).Uint32("messages_out", pc.msgsOut)
		if pc.closeCode != 0 {
			e.Uint16("close_code", pc.closeCode)
		}
		if reason := pc.endReason(); reason != "" {
			e.Str("reason", reason)
		} else if err != nil {
			e.Str("reason", err.Error())
		}
		e.Send()
	}
}

// endReason is why the gateway ended the connection, "" when it did not.
func (pc *pushConn) endReason() string {
	switch pc.why {
	case whyProtocol:
		if ce := pc.dec.Err(); ce != nil {
			return ce.Reason
		}
		return "websocket protocol error"
	case whySlow:
		return "slow consumer: outbound buffer over push.max_outbound_bytes"
	case whyPingTimeout:
		return "two pings without an answer"
	case whyLifetime:
		return "max connection lifetime, reconnect"
	case whyDrain:
		return "server restarting, reconnect"
	}
	return ""
}

// drainSpread is how long after SIGTERM the last push go-away may be due: 80 % of
// the drain time, less the timer wheel's lateness, so that every device gets its
// go-away (and can echo the close) before the drain deadline cuts it off.
func drainSpread(d time.Duration) int64 {
	return max(0, int64(d)*8/10-int64(wheelLate))
}
