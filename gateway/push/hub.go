package push

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"gozer/gateway/config"
	"gozer/gateway/origin"
)

// Hub is the node's push state that every event loop shares: the local
// registry, the push API, the cluster registry and its registrar, the
// history, the device-message sender, the settings the connections read and
// the counters. Its fields are set by NewHub and then only read; what they
// point to is safe for any goroutine.
type Hub struct {
	Cfg       *config.Push
	Log       zerolog.Logger
	Registry  *Registry
	Topics    *Topics // topic → subscribed client ids on this node
	API       *API
	Cluster   ClusterRegistry // nil: single node
	Registrar *Registrar      // nil: single node
	History   *History        // nil: push.history.max_messages 0
	Sender    *Sender
	Stats     Stats

	// limits change with a configuration reload (SetLimits); loops read
	// them per message and per ping.
	limits atomic.Pointer[ConnLimits]

	cancel context.CancelFunc
	wg     sync.WaitGroup

	start     time.Time
	refuseLog logSampler
}

// LogRefused logs, at most once per 5 s with the count held back, that a
// device's request was refused (a topic control message over a limit, a bad
// topic name): a device that floods them costs counters, not a log line each.
// Any goroutine.
func (h *Hub) LogRefused(clientID, reason string) {
	if ok, suppressed := h.refuseLog.allow(int64(time.Since(h.start))); ok {
		h.Log.Info().Str("client_id", clientID).Int64("suppressed", suppressed).Msg(reason)
	}
}

// Stats are the push counters (GET /admin/push). Any goroutine.
type Stats struct {
	Open, Accepted, Refused        atomic.Int64
	Sent, SlowClosed, PingTimeouts atomic.Int64
	GoAways, ProtocolClosed        atomic.Int64
	UpstreamSent, UpstreamFailed   atomic.Int64
	UpstreamDropped                atomic.Int64
	ControlApplied, ControlRefused atomic.Int64 // topic control messages (push.topics.client_subscribe)
}

// HubConfig is what a Hub is built from.
type HubConfig struct {
	Push *config.Push
	// Node is this node's push-API address in the cluster ("" without one).
	Node string
	// Origins names the origins (push.upstream_origin is one of them).
	Origins *origin.Table
	// Count counts a device message by its status cause for its origin.
	Count func(originName, cause string)
	Log   zerolog.Logger
}

// NewHub builds the push state of cfg; it starts nothing (Start).
func NewHub(cfg HubConfig) (*Hub, error) {
	pc := cfg.Push
	h := &Hub{
		Cfg: pc, Log: cfg.Log.With().Str("part", "push").Logger(),
		Registry: NewRegistry(pc.MaxPerClient), start: time.Now(),
	}
	h.SetLimits(pc)
	var store *RedisHistory
	hc := HistoryConfig{MaxMessages: pc.History.MaxMessages, MaxBytes: int(pc.History.MaxBytes),
		MaxAge: pc.History.MaxAge, MaxTotal: int64(pc.History.MaxTotalBytes)}
	if pc.Cluster.Enabled {
		RedisLogTo(h.Log)
		opt, err := RedisOptions(&pc.Cluster.Redis)
		if err != nil {
			return nil, err
		}
		rc, err := NewRedisClusterWith(opt, cfg.Node, pc.Cluster.TTL)
		if err != nil {
			return nil, err
		}
		h.Cluster = rc
		h.Registrar = NewRegistrar(rc, h.Registry, pc.Cluster.TTL, h.Log)
		if hc.MaxMessages > 0 {
			store = NewRedisHistory(NewRedisClientWith(opt), hc.MaxMessages, hc.MaxAge, h.Log)
			hc.Register = rc.Refresh
		}
	}
	if hc.MaxMessages > 0 {
		h.History = NewHistory(hc, h.Registry, store)
	}
	var topicChanged func(string)
	if h.Registrar != nil {
		topicChanged = h.Registrar.TopicChanged
	}
	h.Topics = NewTopics(pc.Topics.MaxPerNode, topicChanged)
	// A client id's share: each of its connections with all its topics.
	h.Topics.SetMaxPerID(pc.MaxPerClient * pc.Topics.MaxPerConn)
	if h.History != nil {
		// A device that left keeps its topics while its id is "recently
		// seen": topic messages meanwhile are kept for its recovery.
		h.Topics.SetLinger(pc.History.MaxAge)
	}
	if h.Registrar != nil {
		h.Registrar.TrackTopics(h.Topics)
	}
	h.API = NewAPI(APIConfig{
		Topics:   h.Topics,
		Registry: h.Registry, History: h.History, Limiter: NewRateLimiter(pc.Rate, pc.Burst, MonotonicClock()),
		Cluster: h.Cluster, MaxMessage: int(pc.MaxMessage), Log: h.Log,
		ClusterSecret: pc.Cluster.ClusterSecret(), Auth: AuthOf(pc),
	})
	var up *origin.Origin
	if name := pc.UpstreamOrigin; name != "" {
		o, ok := cfg.Origins.Get(name)
		if !ok {
			return nil, errUnknownOrigin(name)
		}
		up = o
	}
	h.Sender = NewSender(up, pc.UpstreamPath, cfg.Count, &h.Stats, h.Log)
	return h, nil
}

type errUnknownOrigin string

func (e errUnknownOrigin) Error() string {
	return "push.upstream_origin names unknown origin \"" + string(e) + "\""
}

// Start runs the hub's goroutines: the registrar, the rate limiter's sweep,
// the sender's workers and the history's (sweep, recovery, Redis writer).
func (h *Hub) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	run := func(f func(context.Context)) {
		h.wg.Add(1)
		go func() { defer h.wg.Done(); f(ctx) }()
	}
	if h.Registrar != nil {
		run(h.Registrar.Run)
	}
	run(h.API.SweepLoop)
	run(h.Topics.SweepLoop)
	if h.History != nil {
		run(h.History.Run)
	}
	h.Sender.Start(run)
}

// Stop ends the goroutines; the registrar leaves the cluster on its way out.
func (h *Hub) Stop() {
	if h.cancel != nil {
		h.cancel()
	}
	// A sender may sit in a request to a slow push origin for up to its
	// read_timeout, which fasthttp cannot cancel; shutdown does not wait for it
	// longer than the registrar needs to leave the cluster.
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		h.Log.Warn().Msg("push: stopped without waiting for upstream messages still in flight")
	}
	if c, ok := h.Cluster.(interface{ Close() error }); ok {
		_ = c.Close()
	}
	if h.History != nil && h.History.Store() != nil {
		_ = h.History.Store().Close()
	}
}

// Deliver delivers msg to client id on this node: through the history
// (History.Publish: a message id, kept, in Redis in cluster mode), or without
// one to the registry's connections. It does not ask other nodes. Any
// goroutine; msg must not be modified afterwards.
func (h *Hub) Deliver(id string, msg []byte, binary bool) Delivery {
	if h.History == nil {
		return Delivery{Reached: h.Registry.Push(id, msg, binary)}
	}
	return h.History.Publish(id, msg, binary)
}

// ConnLimits are the push settings a reload may change while connections
// are open: the next message, ping or connection uses them.
type ConnLimits struct {
	MaxOutbound  int64 // push.max_outbound_bytes
	PingInterval int64 // ns
	Lifetime     int64 // ns, before the dither
	Dither       float64
}

// SetLimits takes the live part of pc (ConnLimits). Any goroutine.
func (h *Hub) SetLimits(pc *config.Push) {
	h.limits.Store(&ConnLimits{MaxOutbound: int64(pc.MaxOutboundBytes), PingInterval: int64(pc.PingInterval),
		Lifetime: int64(pc.MaxLifetime), Dither: pc.LifetimeDither})
}

// AuthOf is push.api as the API's APIAuth (tokens from the config and the
// environment, the allow-list parsed).
func AuthOf(pc *config.Push) APIAuth {
	return APIAuth{Tokens: pc.APITokens(), Allow: pc.APIAllow()}
}

// Limits are the ConnLimits in service. Any goroutine.
func (h *Hub) Limits() *ConnLimits { return h.limits.Load() }

// LifetimeOf is a new connection's life: max_lifetime shortened by a random
// part of up to lifetime_dither, so that connections made together do not
// expire together.
func (h *Hub) LifetimeOf(rnd uint32) int64 {
	l := h.Limits()
	cut := int64(float64(l.Lifetime) * l.Dither * (float64(rnd) / float64(^uint32(0))))
	return l.Lifetime - cut
}
