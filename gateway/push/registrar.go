package push

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Registrar sizes. The queue absorbs a reconnect storm of 64k ids between two
// round trips; beyond that events are dropped, and the periodic refresh (for
// an id that connected) or the TTL (for one that left) repairs the registry.
const (
	registrarQueue       = 1 << 16
	registrarBatch       = 1000
	registrarMaxCall     = 5 * time.Second  // per call (one batch), whatever the TTL
	registrarStopTimeout = 2 * time.Second  // Leave + Unregister at shutdown
	registrarLogEvery    = 30 * time.Second // at most one error line per period
	// RegistrarProbe is how often the registrar asks whether the registry
	// lost its data (ClusterRegistry.Generation): one small script call, so
	// that a Redis that restarted empty is repaired within about this long
	// rather than at the next refresh (ttl/3).
	RegistrarProbe = 250 * time.Millisecond
)

// Registrar is the one goroutine per node (Run) that makes all of the node's
// ClusterRegistry calls, so the event loops never wait on Redis and a Redis
// outage costs them nothing: they only post ids on a buffered channel.
//
// Concurrency: Registered, Unregistered and Dropped may be called from any
// goroutine, event loops included (they never block); Run is called once, on
// its own goroutine.
type Registrar struct {
	c       ClusterRegistry
	local   *Registry
	log     zerolog.Logger
	events  chan string
	dropped atomic.Int64

	// Topics (registrar_topics.go); nil until TrackTopics.
	topics      *Topics
	treg        TopicRegistry
	topicEvents chan string

	every       time.Duration // Alive and refresh period: ttl/3
	probeEvery  time.Duration // Generation period
	callTimeout time.Duration
	stopTimeout time.Duration
	logEvery    time.Duration
	rebuilds    atomic.Int64

	// Run's goroutine only.
	ids        []string // refresh walk, reused
	lastLog    time.Time
	suppressed int // failures not logged since the last error line
	failures   int // failed calls since the last success
	seenDrops  int64
	gen        string // the generation this node registered all its ids in ("" before the first)
}

// NewRegistrar returns the registrar of node c for the ids of local; ttl must
// be the TTL c's entries live for (the registrar refreshes every ttl/3, so an
// entry survives two failed refreshes in a row).
func NewRegistrar(c ClusterRegistry, local *Registry, ttl time.Duration, log zerolog.Logger) *Registrar {
	if ttl <= 0 {
		panic("push: NewRegistrar: ttl must be positive")
	}
	every := max(ttl/3, time.Millisecond)
	return &Registrar{
		c: c, local: local, log: log,
		events:      make(chan string, registrarQueue),
		every:       every,
		probeEvery:  min(RegistrarProbe, every),
		callTimeout: min(every, registrarMaxCall),
		stopTimeout: registrarStopTimeout,
		logEvery:    registrarLogEvery,
	}
}

// Registered tells the registrar that id got its first connection on this
// node (Registry.Add reported first). It never blocks.
func (r *Registrar) Registered(id string) { r.post(id) }

// Unregistered tells the registrar that id lost its last connection on this
// node (Registry.Remove reported last). It never blocks.
func (r *Registrar) Unregistered(id string) { r.post(id) }

// post queues id. Both events mean the same to Run, "id changed here": Run
// reads the registry when it gets to the id and writes what it finds. So an
// id that reconnected before its Unregistered was handled stays registered,
// order cannot go wrong, and only the last event of a burst matters.
func (r *Registrar) post(id string) {
	select {
	case r.events <- id:
	default:
		r.dropped.Add(1)
	}
}

// Dropped returns how many events were dropped because the queue was full.
func (r *Registrar) Dropped() int64 { return r.dropped.Load() }

// Rebuilds returns how many times this node found that the registry had lost
// its data and registered all of its ids again. Any goroutine.
func (r *Registrar) Rebuilds() int64 { return r.rebuilds.Load() }

// Run does the node's registry calls until ctx is done: Alive and a Refresh
// of every local id at start and every ttl/3, and the queued events as they
// come. Failed calls are logged (at most once per 30s, with how many were not)
// and left for the next period to repair: Run never stops because Redis is
// down, and entries come back within ttl/3 of Redis coming back.
//
// When ctx is done the node leaves the cluster: Run calls Leave and
// unregisters every id it still knows of, within a short timeout, and
// returns.
func (r *Registrar) Run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	probe := time.NewTicker(r.probeEvery)
	defer probe.Stop()
	r.periodic(ctx)
	r.probe(ctx)
	batch := make(map[string]struct{}, registrarBatch)
	for {
		select {
		case <-ctx.Done():
			r.leave(ctx)
			return
		case <-t.C:
			r.periodic(ctx)
		case <-probe.C:
			r.probe(ctx)
		case id := <-r.events:
			clear(batch)
			batch[id] = struct{}{}
			r.drain(batch, registrarBatch)
			r.apply(ctx, batch)
		case topic := <-r.topicEvents:
			r.applyTopics(ctx, topic)
		}
	}
}

// drain moves up to max queued ids into batch without waiting.
func (r *Registrar) drain(batch map[string]struct{}, max int) {
	for len(batch) < max {
		select {
		case id := <-r.events:
			batch[id] = struct{}{}
		default:
			return
		}
	}
}

// apply writes the local state of the batch's ids: registered where they have
// a connection, unregistered where they have none.
func (r *Registrar) apply(ctx context.Context, batch map[string]struct{}) {
	var add, del []string
	for id := range batch {
		if r.local.Count(id) > 0 {
			add = append(add, id)
		} else {
			del = append(del, id)
		}
	}
	if len(add) > 0 {
		// Refresh is Register for many ids in one round trip.
		r.call(ctx, "register", func(ctx context.Context) error { return r.c.Refresh(ctx, add) })
	}
	if len(del) > 0 {
		r.call(ctx, "unregister", func(ctx context.Context) error { return r.unregister(ctx, del) })
	}
}

// unregisterMany is the batched Unregister a ClusterRegistry may offer
// (RedisCluster does): a disconnect storm or a shutdown then costs a round
// trip per 1,000 ids instead of one per id.
type unregisterMany interface {
	UnregisterMany(ctx context.Context, clientIDs []string) error
}

func (r *Registrar) unregister(ctx context.Context, ids []string) error {
	if m, ok := r.c.(unregisterMany); ok {
		return m.UnregisterMany(ctx, ids)
	}
	for _, id := range ids {
		if err := r.c.Unregister(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// periodic says the node is alive and refreshes every local id.
func (r *Registrar) periodic(ctx context.Context) {
	if d := r.dropped.Load(); d != r.seenDrops {
		r.log.Warn().Int64("dropped_total", d).Int64("dropped", d-r.seenDrops).
			Msg("push registrar queue was full; the refresh repairs the registry")
		r.seenDrops = d
	}
	r.registerAll(ctx)
}

// registerAll says the node is alive and registers (refreshes) every local
// id; it returns how many, and false when a call failed.
func (r *Registrar) registerAll(ctx context.Context) (int, bool) {
	if !r.call(ctx, "alive", r.c.Alive) {
		// Redis is most likely down: skip the refresh instead of timing
		// out batch after batch; the next period tries again.
		return 0, false
	}
	all := r.localIDs()
	defer func() { clear(all); r.ids = all[:0] }() // do not pin ids that leave
	for ids := all; len(ids) > 0 && ctx.Err() == nil; {
		b := ids[:min(len(ids), registrarBatch)]
		if !r.call(ctx, "refresh", func(ctx context.Context) error { return r.c.Refresh(ctx, b) }) {
			return len(all), false
		}
		ids = ids[len(b):]
	}
	if !r.refreshTopics(ctx) {
		return len(all), false
	}
	return len(all), ctx.Err() == nil
}

// probe asks whether this node's ids are all in the registry's current
// generation; when not (the registry lost its data, or this node just
// started), it registers them all again and marks itself ready. Events queued
// meanwhile are applied after it, which is harmless: each writes what the
// local registry holds at that moment.
func (r *Registrar) probe(ctx context.Context) {
	var gen string
	var ready bool
	if !r.call(ctx, "generation", func(ctx context.Context) (err error) {
		gen, ready, err = r.c.Generation(ctx)
		return err
	}) || ready {
		return
	}
	lost := r.gen != ""
	n, ok := r.registerAll(ctx)
	if !ok {
		return // the next probe tries again
	}
	if !r.call(ctx, "mark ready", func(ctx context.Context) error { return r.c.MarkReady(ctx, gen) }) {
		return
	}
	r.gen = gen
	if lost {
		r.rebuilds.Add(1)
		r.log.Warn().Int("ids", n).Str("generation", gen).
			Msg("push cluster registry had lost this node's entries (Redis restarted empty or was flushed): registered them all again")
	}
}

// localIDs returns this node's distinct client ids. Each yields an id's
// devices one after the other; should it not, an id refreshed twice in a
// batch is harmless.
func (r *Registrar) localIDs() []string {
	ids := r.ids[:0]
	r.local.Each("", func(id string, _ Conn) bool {
		if len(ids) == 0 || ids[len(ids)-1] != id {
			ids = append(ids, id)
		}
		return true
	})
	return ids
}

// leave is Run's exit: the node leaves the node set and takes its ids out of
// the registry, so other nodes stop forwarding to it before the TTL says so.
func (r *Registrar) leave(parent context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), r.stopTimeout)
	defer cancel()
	r.call(ctx, "leave", r.c.Leave)
	batch := make(map[string]struct{})
	for _, id := range r.localIDs() {
		batch[id] = struct{}{}
	}
	r.drain(batch, len(batch)+registrarQueue)
	ids := make([]string, 0, len(batch))
	for id := range batch {
		ids = append(ids, id)
	}
	if len(ids) > 0 {
		r.call(ctx, "unregister", func(ctx context.Context) error { return r.unregister(ctx, ids) })
	}
	r.leaveTopics(ctx)
}

// call runs one registry call with its own timeout, so a Redis that stopped
// answering holds Run for callTimeout at most, and logs its failure.
func (r *Registrar) call(ctx context.Context, op string, f func(context.Context) error) bool {
	cctx, cancel := context.WithTimeout(ctx, r.callTimeout)
	err := f(cctx)
	cancel()
	if err == nil {
		if r.failures > 0 {
			r.log.Info().Str("op", op).Int("failed_calls", r.failures).
				Msg("push cluster registry reachable again")
			r.failures = 0
		}
		return true
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return false // Run is stopping: not a registry failure
	}
	r.failures++
	now := time.Now()
	if !r.lastLog.IsZero() && now.Sub(r.lastLog) < r.logEvery {
		r.suppressed++
		return false
	}
	r.log.Error().Err(err).Str("op", op).Int("suppressed", r.suppressed).
		Msg("push cluster registry call failed; retrying every ttl/3")
	r.lastLog, r.suppressed = now, 0
	return false
}
