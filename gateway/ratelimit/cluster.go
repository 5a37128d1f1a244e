package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/rs/zerolog"
)

// Reconciler shares the cluster limits' rates between the nodes through
// Redis, off the request path: requests take tokens from local buckets only,
// and every Every the reconciler
//
//  1. drains the requests each cluster bucket saw (its demand) since the last
//     round;
//  2. adds them, in one pipeline, into the key's counter of the current
//     Window in Redis (INCRBY, with an expiry), reading back that counter and
//     the previous window's;
//  3. estimates the cluster's demand over the last Window (the sliding-window
//     estimate prev·(1−elapsed) + current) and the node's own the same way, and
//     gives the node's bucket that share of the configured rate (and burst).
//
// The shares of the nodes sum to one, so while the demand is steady the
// cluster admits the configured rate; the error comes from demand that moves
// faster than the reconciliation sees it (one Every of staleness, and the
// sliding estimate's) and from a new key, which every node admits at its full
// rate and burst until the first round that sees it (at most Every). See
// docs/ARCHITECTURE.md for the bound measured.
//
// Redis down (a failed or slow round): every cluster bucket falls back to the
// whole rate locally, logged once; when Redis answers again, logged once, the
// shares come back at the next round. Nothing on a loop ever waits for Redis.
//
// Concurrency: Run owns the reconciler's state (its goroutine); Stats may be
// called from any goroutine.
type Reconciler struct {
	store  *Store
	rdb    *redis.Client
	every  time.Duration
	window time.Duration
	log    zerolog.Logger
	prefix string

	down     atomic.Bool
	rounds   atomic.Int64
	failures atomic.Int64
	synced   atomic.Int64 // keys reported in the last round
	mu       sync.Mutex
	lastErr  string

	buf []Demand
}

// ReconcilerStats is the reconciler's state in GET /admin/limits.
type ReconcilerStats struct {
	Redis     string `json:"redis"`
	SyncMS    int64  `json:"sync_interval_ms"`
	WindowMS  int64  `json:"window_ms"`
	Fallback  bool   `json:"local_fallback"`
	Rounds    int64  `json:"rounds_total"`
	Failures  int64  `json:"failures_total"`
	LastKeys  int64  `json:"last_round_keys"`
	LastError string `json:"last_error,omitempty"`
}

// NewReconciler returns the reconciler of store's cluster buckets through
// the Redis server at addr (host:port).
func NewReconciler(store *Store, addr string, every, window time.Duration, log zerolog.Logger) *Reconciler {
	// As the push cluster's client (gateway/push/redis.go): RESP2, one dial
	// attempt per call and a small pool, so that go-redis's own log of failed
	// dials stays a few lines per outage; every timeout is one round's.
	rdb := redis.NewClient(&redis.Options{
		Addr: addr, DialTimeout: every, ReadTimeout: every, WriteTimeout: every,
		MaxRetries: -1, PoolSize: 2, DialerRetries: 1, PipelinePoolSize: -1,
		Protocol: 2, DisableIdentity: true, ContextTimeoutEnabled: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	return &Reconciler{store: store, rdb: rdb, every: every, window: window, log: log, prefix: "gozer:rl:"}
}

// Run reconciles every Every until ctx ends, then closes the Redis client.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	defer r.rdb.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.Round(ctx, now)
		}
	}
}

// Round is one reconciliation at now.
func (r *Reconciler) Round(ctx context.Context, now time.Time) {
	r.rounds.Add(1)
	r.buf = r.store.Drain(r.buf[:0])
	ds := r.buf
	win := now.UnixNano() / int64(r.window)
	frac := float64(now.UnixNano()%int64(r.window)) / float64(r.window)
	for i := range ds {
		b := ds[i].b
		switch b.win {
		case win:
		case win - 1:
			b.prev1, b.cur, b.win = b.cur, 0, win
		default:
			b.prev1, b.cur, b.win = 0, 0, win
		}
		b.cur += ds[i].Demand
	}
	r.synced.Store(int64(len(ds)))
	if len(ds) == 0 {
		if r.down.Load() {
			r.ping(ctx) // learn that Redis is back even while idle
		}
		return
	}
	cctx, cancel := context.WithTimeout(ctx, r.every)
	defer cancel()
	pipe := r.rdb.Pipeline()
	incr := make([]*redis.IntCmd, len(ds))
	prev := make([]*redis.StringCmd, len(ds))
	cur, last := "_"+strconv.FormatInt(win, 10), "_"+strconv.FormatInt(win-1, 10)
	for i := range ds {
		k := r.prefix + ds[i].Key
		incr[i] = pipe.IncrBy(cctx, k+cur, ds[i].Demand)
		pipe.PExpire(cctx, k+cur, 3*r.window)
		prev[i] = pipe.Get(cctx, k+last)
	}
	if _, err := pipe.Exec(cctx); err != nil && err != redis.Nil {
		r.fail(err)
		return
	}
	r.up()
	for i := range ds {
		clusterCur := float64(incr[i].Val())
		clusterPrev, _ := prev[i].Float64()
		b := ds[i].b
		own := float64(b.prev1)*(1-frac) + float64(b.cur)
		total := clusterPrev*(1-frac) + clusterCur
		share := 1.0
		if total > 0 && own > 0 {
			share = own / total
		}
		r.store.setShare(&ds[i], share)
	}
}

func (r *Reconciler) ping(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, r.every)
	defer cancel()
	if err := r.rdb.Ping(cctx).Err(); err == nil {
		r.up()
	}
}

// fail falls back to local limits (logged once per outage).
func (r *Reconciler) fail(err error) {
	r.failures.Add(1)
	r.mu.Lock()
	r.lastErr = err.Error()
	r.mu.Unlock()
	if r.down.CompareAndSwap(false, true) {
		r.store.ResetShares()
		r.log.Warn().Err(fmt.Errorf("cluster limits: %w", err)).
			Msg("redis unreachable: cluster limits fall back to local (each node admits the whole rate) until it answers")
	}
}

func (r *Reconciler) up() {
	if r.down.CompareAndSwap(true, false) {
		r.log.Info().Msg("redis answers again: cluster limits are shared again")
	}
}

// Stats is the reconciler's state.
func (r *Reconciler) Stats() ReconcilerStats {
	r.mu.Lock()
	e := r.lastErr
	r.mu.Unlock()
	return ReconcilerStats{Redis: r.rdb.Options().Addr, SyncMS: r.every.Milliseconds(), WindowMS: r.window.Milliseconds(),
		Fallback: r.down.Load(), Rounds: r.rounds.Load(), Failures: r.failures.Load(), LastKeys: r.synced.Load(), LastError: e}
}
