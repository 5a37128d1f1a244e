package push

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Redis layout of the history (cluster mode). The braces are a hash tag: both
// keys of an id live in the same slot of a Redis Cluster, so one script may
// touch both.
//
//	gozer:push:h:{<id>}  list of encoded entries (EncodeEntry), oldest first,
//	                     capped at max_messages, expiring max_age after the last push
//	gozer:push:s:{<id>}  "recently seen" marker, expiring max_age after a device of
//	                     the id connected or left
const (
	redisHistPrefix = "gozer:push:h:{"
	redisSeenPrefix = "gozer:push:s:{"
	// writeLinger is how long the writer gathers writes after the first one
	// before it sends them in one pipeline: a push in cluster mode waits up
	// to this much longer, and Redis round trips (the writer's CPU) shrink by
	// the number of pushes that arrive meanwhile.
	writeLinger = time.Millisecond
	// writeBatch is the most writes one pipeline carries.
	writeBatch = 512
	// writeQueue bounds the writes waiting for the writer.
	writeQueue = 1 << 16
	// writeTimeout bounds one pipeline, and a push waiting for its write.
	writeTimeout = time.Second
	// downFor is how long the store is not tried after a failure: Redis down
	// costs one timeout per downFor, not one per push.
	downFor = time.Second
)

func histKey(id string) string { return redisHistPrefix + id + "}" }
func seenKey(id string) string { return redisSeenPrefix + id + "}" }

// bothKeys is histKey(id) and seenKey(id) cut from one string: one
// allocation for the writer's two keys of an entry.
func bothKeys(id string) (hist, seen string) {
	k := redisHistPrefix + id + "}" + redisSeenPrefix + id + "}"
	n := len(redisHistPrefix) + len(id) + 1
	return k[:n], k[n:]
}

// KEYS[1] history, KEYS[2] seen marker; ARGV[1] entry, ARGV[2] max messages,
// ARGV[3] max age ms, ARGV[4] "1": append even when the id was not seen (a
// device took the message). Returns 1 when appended, 0 when the id was not
// seen within max age (a push to an unknown id: 404). Only the marker says
// "seen": pushes alone must not keep an id alive.
var scriptAppend = redis.NewScript(`
if ARGV[4] ~= '1' and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)

// RedisHistory is the cluster-wide side of History: every message is
// appended to its id's list in Redis by one writer goroutine per node, which
// pipelines what pushes queued within writeLinger of the first (a group
// commit: nothing runs while idle), and recoveries read it back in pipelined
// batches.
//
// Concurrency: Append, Seen, ReadMany and Stats may be called from any
// goroutine (Append with wait, and ReadMany, block: never on a loop); Run is
// the writer, one goroutine.
type RedisHistory struct {
	rdb    redis.UniversalClient
	maxLen int
	ageMS  int64
	log    zerolog.Logger
	ch     chan histWrite
	start  time.Time
	// The script's hash and bounds as EVALSHA arguments, made once (the
	// writer passes pointers: boxing them would allocate per entry).
	sha, maxLenArg, ageArg string

	downUntil            atomic.Int64 // since start, ns: writes fail at once before it
	writes, fails, drops atomic.Int64
	errLog               logSampler
}

// writeResult is what a waiting Append learns of its write.
type writeResult struct {
	stored bool
	err    error
}

type histWrite struct {
	id    string
	entry string // EncodeEntry's bytes; "": a seen marker
	force bool
	done  chan writeResult // nil: nobody waits
}

// waiter is what a push waiting for its write blocks on, pooled: a push in
// cluster mode allocates neither a channel nor a timer for its wait. Only a
// waiter whose answer was received goes back to the pool (after a timeout
// the writer may still answer on done).
type waiter struct {
	done  chan writeResult
	timer *time.Timer
}

var waiters = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &waiter{done: make(chan writeResult, 1), timer: t}
}}

var (
	errStoreDown        = errors.New("push history: redis unavailable, retrying in a second")
	errWriteQueueFull   = errors.New("push history: redis write queue full")
	errRecoverQueueFull = errors.New("push history: recovery queue full, recovering from this node's history only")
)

// NewRedisHistory keeps history in rdb: at most maxLen messages per id, for
// maxAge. It does not connect; Run starts the writer.
func NewRedisHistory(rdb redis.UniversalClient, maxLen int, maxAge time.Duration, log zerolog.Logger) *RedisHistory {
	return &RedisHistory{rdb: rdb, maxLen: maxLen, ageMS: maxAge.Milliseconds(), log: log,
		ch: make(chan histWrite, writeQueue), start: time.Now(), sha: scriptAppend.Hash(),
		maxLenArg: strconv.Itoa(maxLen), ageArg: strconv.FormatInt(maxAge.Milliseconds(), 10)}
}

// NewRedisClient is the client RedisHistory uses for the Redis at addr
// (host:port), set up as the registry's: RESP2, one dial attempt per call,
// a small pool, bounded timeouts.
func NewRedisClient(addr string) redis.UniversalClient {
	return NewRedisClientWith(&redis.UniversalOptions{Addrs: []string{addr}})
}

// NewRedisClientWith is NewRedisClient for any deployment push.cluster.redis
// names (one server, a Redis Cluster, Sentinels: RedisOptions). A client of
// its own, beside the registry's: the history's writes and recovery reads
// never queue behind the registrar's refreshes.
func NewRedisClientWith(opt *redis.UniversalOptions) redis.UniversalClient {
	o := *opt
	tuneRedis(&o)
	return redis.NewUniversalClient(&o)
}

// Close closes the client.
func (s *RedisHistory) Close() error { return s.rdb.Close() }

// Append writes e to id's history in Redis. force: whatever Redis knows of
// id (a device here took it); else only when id was seen or has a history
// there, which stored reports. With wait it blocks until the write is done
// (up to writeTimeout), else it queues it and returns stored false.
func (s *RedisHistory) Append(id string, e Entry, force, wait bool) (stored bool, err error) {
	w := histWrite{id: id, entry: entryString(e), force: force}
	var wt *waiter
	if wait {
		if s.down() {
			return false, errStoreDown
		}
		wt = waiters.Get().(*waiter)
		w.done = wt.done
	}
	select {
	case s.ch <- w:
	default:
		s.drops.Add(1)
		if wt != nil {
			waiters.Put(wt)
		}
		return false, errWriteQueueFull
	}
	if !wait {
		return false, nil
	}
	wt.timer.Reset(writeTimeout + redisIOTimeout)
	select {
	case r := <-wt.done:
		wt.timer.Stop() // synchronous timer channels (Go 1.23): nothing stale left in C
		waiters.Put(wt)
		return r.stored, r.err
	case <-wt.timer.C:
		return false, errStoreDown
	}
}

// entryString is EncodeEntry(nil, e) as a string, in one allocation (the
// writer passes it to Redis by pointer, without boxing it).
func entryString(e Entry) string {
	var hdr [entryHeader]byte
	var b strings.Builder
	b.Grow(entryHeader + len(e.Msg))
	b.Write(EncodeEntry(hdr[:0], Entry{ID: e.ID, At: e.At, Binary: e.Binary}))
	b.Write(e.Msg)
	return b.String()
}

// Seen marks id as recently seen for max_age, cluster-wide (queued).
func (s *RedisHistory) Seen(id string) {
	select {
	case s.ch <- histWrite{id: id}:
	default:
		s.drops.Add(1)
	}
}

func (s *RedisHistory) now() int64 { return int64(time.Since(s.start)) }

func (s *RedisHistory) down() bool { return s.now() < s.downUntil.Load() }

// fail counts and logs (sampled) a Redis failure, and keeps writes off for
// downFor.
func (s *RedisHistory) fail(err error) {
	s.fails.Add(1)
	if errors.Is(err, errRecoverQueueFull) {
		s.logErr(err)
		return
	}
	s.downUntil.Store(s.now() + int64(downFor))
	s.logErr(err)
}

func (s *RedisHistory) logErr(err error) {
	if ok, suppressed := s.errLog.allow(s.now()); ok {
		s.log.Warn().Err(err).Int64("suppressed", suppressed).Msg("push history: redis failed, keeping this node's history only")
	}
}

// Run writes queued appends until ctx is done: a pipeline of what came
// within writeLinger of the first write (at most writeBatch).
//
// It sleeps through the linger and then takes what queued, instead of
// receiving each write as it comes: a push then costs its sender a send on
// a buffered channel and nothing more, where a writer blocked in a receive
// is woken (a futex call, a reschedule) for every write. Measured with
// BenchmarkRedisHistoryAppend (cpu-ns/op; gateway/push/DESIGN.md).
func (s *RedisHistory) Run(ctx context.Context) {
	batch := make([]histWrite, 0, writeBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			s.abandon()
			return
		case w := <-s.ch:
			batch = append(batch, w)
		}
		if batch = s.drain(batch); len(batch) < writeBatch {
			linger.Reset(writeLinger)
			select {
			case <-linger.C:
			case <-ctx.Done():
				linger.Stop()
			}
			batch = s.drain(batch)
		}
		s.flush(ctx, batch)
		clear(batch)
	}
}

// drain appends the queued writes to batch, without waiting, up to
// writeBatch.
func (s *RedisHistory) drain(batch []histWrite) []histWrite {
	for len(batch) < writeBatch {
		select {
		case w := <-s.ch:
			batch = append(batch, w)
		default:
			return batch
		}
	}
	return batch
}

// abandon answers the pushes still waiting for a write at shutdown: not
// written, at once, instead of after their timeout.
func (s *RedisHistory) abandon() {
	for {
		select {
		case w := <-s.ch:
			if w.done != nil {
				w.done <- writeResult{err: errStoreDown}
			}
		default:
			return
		}
	}
}

// flush writes batch in one pipeline and tells the waiters.
func (s *RedisHistory) flush(ctx context.Context, batch []histWrite) {
	results := make([]bool, len(batch))
	err := errStoreDown
	if !s.down() {
		if err = s.pipeline(ctx, batch, results); err != nil {
			s.fail(err)
		} else {
			s.writes.Add(int64(len(batch)))
		}
	}
	for i, w := range batch {
		if w.done != nil {
			w.done <- writeResult{stored: results[i], err: err}
		}
	}
}

// appendArgs is how many arguments an entry's EVALSHA takes.
const appendArgs = 9

// pipeline sends batch as one pipeline: an EVALSHA of scriptAppend per entry
// (a SET per seen marker), results[i] true where batch[i] was appended.
//
// The keys and arguments of all entries are made in two allocations per
// batch, passed to go-redis as pointers (*string: no boxing), where
// Script.EvalSha allocates a key slice, two argument slices and a boxed
// value per argument for every entry (allocs/op of
// BenchmarkRedisHistoryAppend). batch must not change until it returns.
func (s *RedisHistory) pipeline(ctx context.Context, batch []histWrite, results []bool) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	keys := make([]string, 2*len(batch))
	args := make([]any, appendArgs*len(batch))
	for i := range batch {
		w := &batch[i]
		keys[2*i], keys[2*i+1] = bothKeys(w.id)
		force := "0"
		if w.force {
			force = "1"
		}
		copy(args[appendArgs*i:], []any{"evalsha", &s.sha, "2", &keys[2*i], &keys[2*i+1],
			&w.entry, &s.maxLenArg, &s.ageArg, force})
	}
	for attempt := 0; ; attempt++ {
		p := s.rdb.Pipeline()
		for i := range batch {
			if batch[i].entry == "" {
				p.Set(ctx, keys[2*i+1], "1", time.Duration(s.ageMS)*time.Millisecond)
				continue
			}
			// Keys from the 4th argument: a Redis Cluster client routes by them.
			p.Do(ctx, args[appendArgs*i:appendArgs*(i+1)]...).SetFirstKeyPos(3)
		}
		cmds, err := p.Exec(ctx)
		if err != nil && attempt == 0 && hasNoScript(cmds) {
			if lerr := scriptAppend.Load(ctx, s.rdb).Err(); lerr != nil {
				return fmt.Errorf("push history: load script: %w", lerr)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("push history write: %w", err)
		}
		for i, c := range cmds {
			if ic, ok := c.(*redis.Cmd); ok {
				n, _ := ic.Int()
				results[i] = n == 1
			}
		}
		return nil
	}
}

func hasNoScript(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if c != nil && c.Err() != nil && isNoScript(c.Err()) {
			return true
		}
	}
	return false
}

// ReadMany reads the histories of ids in one pipeline: out[i] is ids[i]'s,
// oldest first, without entries older than max_age or that do not decode
// (counted as failures: something else wrote the key).
func (s *RedisHistory) ReadMany(ctx context.Context, ids []string) ([][]Entry, error) {
	p := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.LRange(ctx, histKey(id), 0, -1)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("push history read: %w", err)
	}
	limit := time.Now().UnixMilli() - s.ageMS
	out := make([][]Entry, len(ids))
	for i, c := range cmds {
		for _, raw := range c.Val() {
			e, err := DecodeEntry([]byte(raw))
			if err != nil {
				s.fails.Add(1)
				continue
			}
			if e.At >= limit {
				out[i] = append(out[i], e)
			}
		}
	}
	return out, nil
}

// RedisHistoryStats are the writer's counters.
type RedisHistoryStats struct {
	Writes, Failures, Dropped int64
}

// Stats returns the counters. Any goroutine.
func (s *RedisHistory) Stats() RedisHistoryStats {
	return RedisHistoryStats{Writes: s.writes.Load(), Failures: s.fails.Load(), Dropped: s.drops.Load()}
}

// The encoding of an entry in Redis: a version byte (1), the id and the
// push time (unix ms) as 8-byte big-endian numbers, a flags byte (bit 0:
// binary), then the message.
const (
	entryVersion = 1
	entryHeader  = 1 + 8 + 8 + 1
)

var errBadEntry = errors.New("push history: malformed entry")

// EncodeEntry appends e's encoding to dst.
func EncodeEntry(dst []byte, e Entry) []byte {
	var flags byte
	if e.Binary {
		flags = 1
	}
	dst = append(dst, entryVersion)
	dst = binary.BigEndian.AppendUint64(dst, e.ID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.At))
	dst = append(dst, flags)
	return append(dst, e.Msg...)
}

// DecodeEntry parses an entry; its Msg aliases b.
func DecodeEntry(b []byte) (Entry, error) {
	if len(b) < entryHeader || b[0] != entryVersion || b[17]&^1 != 0 {
		return Entry{}, errBadEntry
	}
	e := Entry{ID: binary.BigEndian.Uint64(b[1:9]), At: int64(binary.BigEndian.Uint64(b[9:17])), Binary: b[17] == 1, Msg: b[entryHeader:]}
	if e.ID == 0 || e.At < 0 || (!e.Binary && !utf8.Valid(e.Msg)) {
		return Entry{}, errBadEntry
	}
	return e, nil
}
