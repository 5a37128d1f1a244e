package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/rs/zerolog"
)

// Redis layout. The three keys of the cluster's own state share the hash tag
// {meta}, so that with a Redis Cluster they sit in one slot and a script may
// read them together; a client id's key is in a slot of its own (ids have no
// braces: ValidClientID), and no script touches both kinds. Why sorted sets and not the hash with a HEXPIRE per field that
// DESIGN.md first sketched: HEXPIRE needs Redis 7.4, and Debian 12 ships 7.0.
// A sorted set whose member is the node and whose score is the entry's expiry
// (unix ms) works on every Redis from 5 on, so there is one code path to test
// instead of two. Expired members are filtered out on read (score > now) and
// trimmed on write, and the key itself expires with its longest-lived member,
// so a node that dies leaves neither a visible entry nor a key after the TTL.
//
// The scripts read the server's clock (TIME), not the nodes': every node then
// judges expiry by the same clock, so clock skew between gateways cannot make
// an entry outlive the TTL or vanish early. Scripts also make the trim, the
// add and the key's expiry one atomic step against a concurrent Unregister.
const (
	redisIDPrefix = "gozer:push:id:"          // + client id: zset node → expiry ms
	redisNodesKey = "gozer:push:{meta}:nodes" // zset node → expiry ms
	redisGenKey   = "gozer:push:{meta}:gen"   // string: the generation (server ms when it began)
	redisReadyKey = "gozer:push:{meta}:ready" // hash node → the generation it registered all its ids in
	redisBatch    = 1000                      // ids per round trip in Refresh
)

// Generations. A Redis that restarts empty (or is flushed) loses every entry
// at once, and each node would only notice at its next refresh (ttl/3): until
// then pushes to connected devices would be answered "not connected". So the
// registry has a generation key with no expiry: when a node's probe (every
// RegistrarProbe) finds it missing, it starts a new generation; a node that
// is not marked ready in the current generation registers all of its ids
// again and then marks itself ready. A lookup that finds an id nowhere asks
// whether the registry is complete: the generation exists, is older than
// RecoveryGrace (every live node had time to notice) and every live node is
// ready in it; if not, the miss is ErrRecovering, not "not connected".

// The key expires at its highest score (PEXPIREAT), not "now + this node's
// TTL": nodes configured with different TTLs (a rolling config change) must
// not cut each other's entries short. PEXPIRE ... GT cannot do it: a key
// without expiry counts as infinite, so GT would never set the first one.
const redisNowLua = `local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
`

var (
	// KEYS[1] set, ARGV[1] node, ARGV[2] ttl ms.
	scriptTouch = redis.NewScript(redisNowLua + `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], top[2])
return 1`)

	// KEYS[1] set, ARGV[1] node. An emptied zset is deleted by Redis itself.
	scriptRemove = redis.NewScript(`redis.call('ZREM', KEYS[1], ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then redis.call('PEXPIREAT', KEYS[1], top[2]) end
return 1`)

	// KEYS[1] set. Read-only, so it could run on a replica.
	scriptLive = redis.NewScript(redisNowLua + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')`)

	// KEYS[1] generation, KEYS[2] ready hash, ARGV[1] node. Starts a
	// generation when there is none; returns {generation, 1 if node is ready in it}.
	scriptGeneration = redis.NewScript(redisNowLua + `
local g = redis.call('GET', KEYS[1])
if not g then
  g = tostring(now)
  redis.call('SET', KEYS[1], g)
end
if redis.call('HGET', KEYS[2], ARGV[1]) == g then return {g, 1} end
return {g, 0}`)

	// KEYS[1] generation, KEYS[2] ready hash, ARGV[1] node, ARGV[2] generation.
	scriptMarkReady = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  return 1
end
return 0`)

	// KEYS[1] generation, KEYS[2] ready hash, KEYS[3] node set, ARGV[1]
	// grace ms. 1 while the registry is being rebuilt (see Generations).
	// Read-only.
	scriptRecovering = redis.NewScript(redisNowLua + `
local g = redis.call('GET', KEYS[1])
if not g or now - tonumber(g) < tonumber(ARGV[1]) then return 1 end
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. now, '+inf')) do
  if redis.call('HGET', KEYS[2], n) ~= g then return 1 end
end
return 0`)
)

// RedisCluster is the production ClusterRegistry, kept in Redis (≥ 5, or
// Valkey) that every gateway node of the cluster shares: one server, a
// master watched by Sentinels, or a Redis Cluster (go-redis's universal
// client picks the kind from the options: NewRedisClusterWith).
//
// Cluster safety: every script touches keys of one hash slot only. The
// per-id scripts touch one key; the node set, the generation and the ready
// hash share the hash tag {meta}, so the scripts that read them together
// (Generation, the recovery check) run on one shard. Pipelines (Refresh,
// UnregisterMany) are one single-key script per id, which the Cluster
// client splits by slot and sends to each shard in parallel.
//
// Concurrency: safe for any goroutine (the go-redis client pools its
// connections). Its methods do network I/O and may block: never call them on
// an event loop; the Registrar and the push API's handlers do.
//
// Every method checks ctx first. A ctx deadline bounds the dial and each
// read and write; a cancellation without a deadline is noticed between round
// trips, and a round trip in flight then ends within the I/O timeout (3s).
type RedisCluster struct {
	rdb   redis.UniversalClient
	node  string
	ttlMS int64
	grace time.Duration // RecoveryGrace (tests set less)
}

// Timeouts for when the caller's ctx has no deadline: a Redis that stopped
// answering must not hold a caller for long.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = 3 * time.Second
)

// NewRedisCluster returns the registry of node (its push-API address as other
// nodes dial it) in the one Redis at addr: "host:port", or a redis:// or
// rediss:// URL (for a password, a database number or TLS). Entries live for
// ttl after their last Register or Refresh (millisecond precision).
//
// It does not connect: a gateway must start while Redis is down, and the
// first call dials. It fails only on bad arguments.
func NewRedisCluster(addr, node string, ttl time.Duration) (*RedisCluster, error) {
	var opt redis.UniversalOptions
	if strings.Contains(addr, "://") {
		o, err := redis.ParseURL(addr)
		if err != nil {
			return nil, fmt.Errorf("push cluster: redis url: %w", err)
		}
		opt = redis.UniversalOptions{Addrs: []string{o.Addr}, Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: o.TLSConfig}
	} else {
		if addr == "" {
			return nil, errors.New("push cluster: empty redis address")
		}
		opt.Addrs = []string{addr}
	}
	return NewRedisClusterWith(&opt, node, ttl)
}

// NewRedisClusterWith is NewRedisCluster for any kind of Redis deployment:
// opt.MasterName set, the addresses are Sentinels; two or more addresses, or
// IsClusterMode, a Redis Cluster; else one server (redis.NewUniversalClient).
// It sets the options Gozer needs (timeouts, pool, protocol) in opt.
func NewRedisClusterWith(opt *redis.UniversalOptions, node string, ttl time.Duration) (*RedisCluster, error) {
	if node == "" {
		return nil, errors.New("push cluster: empty node address")
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("push cluster: ttl %v is below 1ms", ttl)
	}
	if len(opt.Addrs) == 0 {
		return nil, errors.New("push cluster: empty redis address")
	}
	tuneRedis(opt)
	return &RedisCluster{rdb: redis.NewUniversalClient(opt), node: node, ttlMS: ttl.Milliseconds(), grace: RecoveryGrace}, nil
}

// tuneRedis sets what every kind of client needs here.
func tuneRedis(opt *redis.UniversalOptions) {
	// RESP2 and no maintenance notifications: nothing here needs RESP3's push
	// messages, and RESP2 replies are the same on every server version.
	opt.Protocol = 2
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	opt.ContextTimeoutEnabled = true
	// One dial attempt per call: a refused dial fails at once, and the
	// registrar retries on its own schedule. go-redis logs every failed dial
	// to its global logger (redis.SetLogger) until PoolSize dials failed in a
	// row; then it fails calls at once and probes once a second. So a small
	// pool (per shard, with a Redis Cluster), one for pipelines too, bounds
	// that log to a few lines per outage (the default is 10 per CPU, in each
	// of two pools). Eight connections still serve some 50k lookups a second
	// at a LAN round trip.
	opt.DialerRetries = 1
	if opt.PoolSize == 0 {
		opt.PoolSize = 8
	}
	opt.PipelinePoolSize = -1
	if opt.DialTimeout == 0 {
		opt.DialTimeout = redisDialTimeout
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = redisIOTimeout
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = redisIOTimeout
	}
}

// failed wraps a Redis call's error. With a Redis Cluster it also asks the
// client to reload the slot map: go-redis reloads it on a MOVED answer or
// once a minute, but a master that died answers nothing, so without this
// every call for its slots would keep dialing it for up to a minute after
// its replica took over. Reloads are coalesced by go-redis (at most one per
// 200 ms), so a failing burst costs a few CLUSTER SLOTS, not one per call.
func (c *RedisCluster) failed(op string, err error) error {
	if cc, ok := c.rdb.(*redis.ClusterClient); ok && !errors.Is(err, context.Canceled) {
		cc.ReloadState(context.Background())
	}
	return fmt.Errorf("push cluster %s: %w", op, err)
}

// Client is the go-redis client the registry uses (a *redis.Client,
// *redis.ClusterClient or failover client), for other parts of push that
// keep data in the same Redis. Close closes it.
func (c *RedisCluster) Client() redis.UniversalClient { return c.rdb }

// Close closes the connections to Redis. It does not Leave or Unregister:
// the Registrar does that before the gateway closes the registry.
func (c *RedisCluster) Close() error {
	if err := c.rdb.Close(); err != nil {
		return fmt.Errorf("push cluster close: %w", err)
	}
	return nil
}

// Node returns this node's push-API address.
func (c *RedisCluster) Node() string { return c.node }

// Register records clientID on this node for the TTL (again: extends it).
func (c *RedisCluster) Register(ctx context.Context, clientID string) error {
	return c.run(ctx, "register", scriptTouch, redisIDPrefix+clientID, c.node, c.ttlMS)
}

// Unregister removes this node from clientID's entry; other nodes' stay.
func (c *RedisCluster) Unregister(ctx context.Context, clientID string) error {
	return c.run(ctx, "unregister", scriptRemove, redisIDPrefix+clientID, c.node)
}

// Alive records this node in the node set for the TTL.
func (c *RedisCluster) Alive(ctx context.Context) error {
	return c.run(ctx, "alive", scriptTouch, redisNodesKey, c.node, c.ttlMS)
}

// Leave removes this node from the node set.
func (c *RedisCluster) Leave(ctx context.Context) error {
	if err := c.run(ctx, "leave", scriptRemove, redisNodesKey, c.node); err != nil {
		return err
	}
	if err := c.rdb.HDel(ctx, redisReadyKey, c.node).Err(); err != nil {
		return c.failed("leave", err)
	}
	return nil
}

// Generation implements ClusterRegistry (see Generations).
func (c *RedisCluster) Generation(ctx context.Context) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, fmt.Errorf("push cluster generation: %w", err)
	}
	v, err := scriptGeneration.Run(ctx, c.rdb, []string{redisGenKey, redisReadyKey}, c.node).Slice()
	if err != nil {
		return "", false, c.failed("generation", err)
	}
	if len(v) != 2 {
		return "", false, fmt.Errorf("push cluster generation: unexpected answer %v", v)
	}
	gen, _ := v[0].(string)
	ready, _ := v[1].(int64)
	return gen, ready == 1, nil
}

// MarkReady implements ClusterRegistry.
func (c *RedisCluster) MarkReady(ctx context.Context, gen string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("push cluster mark ready: %w", err)
	}
	keys := []string{redisGenKey, redisReadyKey}
	if err := scriptMarkReady.Run(ctx, c.rdb, keys, c.node, gen).Err(); err != nil {
		return c.failed("mark ready", err)
	}
	return nil
}

// Refresh registers (or re-registers: an entry that lapsed is re-created)
// every id of clientIDs on this node for the TTL, pipelined 1,000 ids per
// round trip. On error some ids may have been refreshed and others not; the
// next Refresh repairs that.
func (c *RedisCluster) Refresh(ctx context.Context, clientIDs []string) error {
	for len(clientIDs) > 0 {
		n := min(len(clientIDs), redisBatch)
		if err := c.refreshBatch(ctx, clientIDs[:n]); err != nil {
			return err
		}
		clientIDs = clientIDs[n:]
	}
	return nil
}

// UnregisterMany is Unregister for many ids, pipelined 1,000 per round trip:
// the Registrar's clean shutdown, which must fit in a short timeout.
func (c *RedisCluster) UnregisterMany(ctx context.Context, clientIDs []string) error {
	for len(clientIDs) > 0 {
		n := min(len(clientIDs), redisBatch)
		err := c.pipeline(ctx, "unregister", scriptRemove, redisIDPrefix, clientIDs[:n], c.node)
		if err != nil {
			return err
		}
		clientIDs = clientIDs[n:]
	}
	return nil
}

func (c *RedisCluster) refreshBatch(ctx context.Context, ids []string) error {
	return c.pipeline(ctx, "refresh", scriptTouch, redisIDPrefix, ids, c.node, c.ttlMS)
}

// Lookup appends the nodes where clientID is connected, sorted. Finding none
// while the registry is being rebuilt is ErrRecovering.
func (c *RedisCluster) Lookup(ctx context.Context, clientID string, dst []string) ([]string, error) {
	start := len(dst)
	dst, err := c.live(ctx, "lookup", redisIDPrefix+clientID, dst)
	if err != nil || len(dst) > start {
		return dst, err
	}
	// A miss (the rare path: a push to an id that is not connected) costs a
	// second round trip, which keeps each script on keys of its own kind.
	keys := []string{redisGenKey, redisReadyKey, redisNodesKey}
	rec, err := scriptRecovering.Run(ctx, c.rdb, keys, c.grace.Milliseconds()).Int()
	switch {
	case err != nil:
		return dst, c.failed("lookup", err)
	case rec == 1:
		return dst, fmt.Errorf("push cluster lookup: %w", ErrRecovering)
	}
	return dst, nil
}

// Nodes appends the live nodes, sorted.
func (c *RedisCluster) Nodes(ctx context.Context, dst []string) ([]string, error) {
	return c.live(ctx, "nodes", redisNodesKey, dst)
}

func (c *RedisCluster) live(ctx context.Context, op, key string, dst []string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return dst, fmt.Errorf("push cluster %s: %w", op, err)
	}
	nodes, err := scriptLive.Run(ctx, c.rdb, []string{key}).StringSlice()
	if err != nil {
		return dst, c.failed(op, err)
	}
	start := len(dst)
	dst = append(dst, nodes...)
	slices.Sort(dst[start:])
	return dst, nil
}

// run runs one script on one key; Script.Run falls back to EVAL when Redis
// lost its script cache (a restart).
func (c *RedisCluster) run(ctx context.Context, op string, s *redis.Script, key string, args ...any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("push cluster %s: %w", op, err)
	}
	if err := s.Run(ctx, c.rdb, []string{key}, args...).Err(); err != nil {
		return c.failed(op, err)
	}
	return nil
}

// pipeline runs s on the key of every id (prefix+id) in one round trip. EVALSHA keeps the
// request small (40 bytes of digest instead of the script per id); when Redis
// lost its script cache (a restart) it loads the script and sends the batch
// once more, which is harmless since every script here is idempotent.
func (c *RedisCluster) pipeline(ctx context.Context, op string, s *redis.Script, prefix string, ids []string, args ...any) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("push cluster %s: %w", op, err)
		}
		p := c.rdb.Pipeline()
		keys := make([]string, 1)
		for _, id := range ids {
			keys[0] = prefix + id
			s.EvalSha(ctx, p, keys, args...)
		}
		cmds, err := p.Exec(ctx)
		if err == nil {
			return nil
		}
		failed, noScript := 0, false
		for _, cmd := range cmds {
			if e := cmd.Err(); e != nil {
				failed++
				noScript = noScript || isNoScript(e)
			}
		}
		if noScript && attempt == 0 {
			if lerr := s.Load(ctx, c.rdb).Err(); lerr != nil {
				return c.failed(op+": load script", lerr)
			}
			continue
		}
		if failed == 0 {
			failed = len(ids)
		}
		return c.failed(fmt.Sprintf("%s: %d of %d ids", op, failed, len(ids)), err)
	}
}

func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}

var _ ClusterRegistry = (*RedisCluster)(nil)

// RedisLogTo sends go-redis's own log lines (failed dials, pool trouble) to log at
// warn level instead of its default of stderr, sampled as Gozer samples its own
// (at most one line per 5 s, with the count of the lines held back): during a
// Redis outage go-redis logs a line per failed dial, several per call. go-redis
// has one process-wide logger, so this is for main (or the server) to call once.
func RedisLogTo(log zerolog.Logger) {
	redis.SetLogger(&redisLogger{l: log, start: time.Now()})
}

type redisLogger struct {
	l      zerolog.Logger
	start  time.Time
	sample logSampler
}

func (r *redisLogger) Printf(_ context.Context, format string, v ...any) {
	if ok, suppressed := r.sample.allow(int64(time.Since(r.start))); ok {
		r.l.Warn().Str("from", "go-redis").Int64("suppressed", suppressed).Msgf(format, v...)
	}
}
