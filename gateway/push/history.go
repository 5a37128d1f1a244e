package push

import (
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// History keeps the last messages pushed to every client id, kept while no
// device of the id is connected, so that a device that reconnects with the id
// of the last message it got recovers exactly what it missed (DESIGN.md,
// "History"). It is also the one path that delivers a message to a client id
// on this node (Deliver): assign the message id, append to the history, hand
// the message to the id's connections, as one step against a device that
// attaches (Attach), so a message lands either in a device's replay or live,
// never in both and never in neither.
//
// Per client id: at most MaxMessages messages, MaxBytes bytes and MaxAge old;
// all ids together at most MaxTotal bytes. An id counts as recently seen for
// MaxAge after its last device left (Left) or connected: a push to it then is
// stored (Delivery.Stored) instead of refused. Pushes alone do not keep an id
// seen.
//
// With a RedisHistory (cluster mode) every message is also written to Redis,
// and a device that reconnects with a last id recovers from there, so it may
// reconnect to any node (Recover).
//
// Concurrency: every method is safe for any goroutine; none blocks on I/O but
// Recover's worker and the Redis writer, which run on goroutines of their own
// (Run). Message slices handed to Deliver are kept (read-only) as long as the
// history keeps them: callers must never modify them afterwards.
type History struct {
	cfg    HistoryConfig
	reg    *Registry
	store  *RedisHistory // nil: this node's memory only
	seed   maphash.Seed
	total  atomic.Int64 // bytes kept, all ids
	shards [256]histShard

	recoverCh chan recoverReq

	stored, replayed, resyncs, dropped atomic.Int64
}

// HistoryConfig bounds a History (push.history).
type HistoryConfig struct {
	MaxMessages int           // per client id; at least 1
	MaxBytes    int           // per client id: payloads + EntryOverhead per message
	MaxAge      time.Duration // of a message, and of "recently seen"
	MaxTotal    int64         // all client ids together
	// Register registers client ids on this node in the cluster registry
	// (ClusterRegistry.Refresh), before a recovery reads Redis; nil: none.
	Register func(ctx context.Context, ids []string) error
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// EntryOverhead is what one kept message costs besides its payload, counted
// against MaxBytes and MaxTotal: the Entry in the id's slice (40 B), the
// slice's spare capacity and the id's share of its map slot. Measured by
// BenchmarkHistoryBytesPerMessage: 105 B for 64-byte payloads.
const EntryOverhead = 100

// Entry is one message of a client id's history. Msg is shared, never modified.
type Entry struct {
	ID     uint64
	At     int64 // unix ms when it was pushed
	Msg    []byte
	Binary bool
}

type histShard struct {
	mu sync.Mutex
	m  map[string]*idHistory
}

// idHistory is one client id's history; its shard's mutex guards it. An id
// gets one on its first message, or when a device of it leaves: an idle
// connected id without messages costs nothing here.
type idHistory struct {
	entries []Entry // delivery order (ids increase but for forwarded ones)
	bytes   int
	last    uint64 // highest message id given out or seen
	prev    uint64 // id of the message before entries[0] (dropped), 0: unknown
	touched int64  // unix ms: last attach, leave, or message a device took
}

// Delivery is what Deliver did with a message.
type Delivery struct {
	ID      uint64 // the message id (given out even when nothing was reached)
	Reached int    // connections that took it (or will get it in their replay)
	Stored  bool   // kept in this node's history
	Full    bool   // not kept: over max_total_bytes (or one message over max_bytes)
}

// NewHistory returns the history of reg's client ids; store nil keeps it in
// this node's memory only. Run its goroutines with Run.
func NewHistory(cfg HistoryConfig, reg *Registry, store *RedisHistory) *History {
	if cfg.MaxMessages < 1 {
		cfg.MaxMessages = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &History{cfg: cfg, reg: reg, store: store, seed: maphash.MakeSeed(), recoverCh: make(chan recoverReq, recoverQueue)}
	for i := range h.shards {
		h.shards[i].m = make(map[string]*idHistory)
	}
	return h
}

// Clustered reports whether the history is also kept in Redis.
func (h *History) Clustered() bool { return h.store != nil }

// Store is the Redis side (nil: none).
func (h *History) Store() *RedisHistory { return h.store }

func (h *History) shard(id string) *histShard {
	return &h.shards[maphash.String(h.seed, id)%uint64(len(h.shards))]
}

func (h *History) nowMS() int64 { return h.cfg.Now().UnixMilli() }

// nextID is the id after last at now: the current time in ms times 1000 plus
// a count, so that ids grow across a restart (the clock moved on) and on
// another node that does not know last, and stay below 2^53 (JavaScript
// numbers) until the year 2255.
func nextID(last uint64, nowMS int64) uint64 {
	return max(last+1, uint64(nowMS)*1000)
}

// Deliver is "deliver msg to client id on this node": it gives the message
// its id, keeps it in id's history and hands it to id's connections here.
// A client id that has no connection here and was not seen within MaxAge
// gets an id but nothing else (Reached 0, Stored false): in cluster mode the
// caller asks Redis and the other nodes. id is not kept (a copy is): it may
// borrow a buffer the caller reuses. Any goroutine.
func (h *History) Deliver(id string, msg []byte, binary bool) Delivery {
	return h.deliver(id, 0, msg, binary)
}

// DeliverID is Deliver of a message another node gave its id already (a
// forwarded push): the same id on every node, so a device recovers it once.
func (h *History) DeliverID(id string, msgID uint64, msg []byte, binary bool) Delivery {
	return h.deliver(id, msgID, msg, binary)
}

func (h *History) deliver(id string, msgID uint64, msg []byte, binary bool) Delivery {
	now := h.nowMS()
	sh := h.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var buf [4]Conn
	conns := h.reg.Lookup(id, buf[:0])
	e := h.live(sh, id, now)
	if e == nil {
		if len(conns) == 0 {
			if msgID == 0 {
				msgID = nextID(0, now)
			}
			return Delivery{ID: msgID}
		}
		e = &idHistory{}
		sh.m[strings.Clone(id)] = e // id may borrow the API request's buffer
	}
	if len(conns) == 0 && now-e.touched > h.cfg.MaxAge.Milliseconds() {
		// Its messages are still kept for a device that comes back, but the id
		// was not seen within max_age: refused, so that pushes alone cannot
		// keep an id alive for ever.
		if msgID == 0 {
			msgID = nextID(e.last, now)
		}
		return Delivery{ID: msgID}
	}
	if msgID == 0 {
		msgID = nextID(e.last, now)
	} else if e.has(msgID) {
		// A forwarded message this node has already: a recovery read it from
		// Redis and replayed it before the forward came. Sending it again
		// would be a duplicate.
		return Delivery{ID: msgID, Reached: len(conns), Stored: true}
	}
	e.last = max(e.last, msgID)
	if len(conns) > 0 {
		e.touched = now // seen: a device is connected
	}
	kept := h.keep(e, Entry{ID: msgID, At: now, Msg: msg, Binary: binary}, now)
	d := Delivery{ID: msgID, Stored: kept, Full: !kept}
	for _, c := range conns {
		if sendID(c, msg, binary, msgID) == nil {
			d.Reached++
		}
	}
	if kept {
		h.stored.Add(1)
	} else {
		h.dropped.Add(1)
	}
	return d
}

// live returns id's history, or nil when it has none or it lapsed (nothing
// kept, and neither a message nor a device for MaxAge); sh.mu is held.
func (h *History) live(sh *histShard, id string, now int64) *idHistory {
	e := sh.m[id]
	if e == nil {
		return nil
	}
	h.trimAge(e, now)
	if len(e.entries) == 0 && now-e.touched > h.cfg.MaxAge.Milliseconds() && h.reg.Count(id) == 0 {
		delete(sh.m, id)
		return nil
	}
	return e
}

// has reports whether e keeps the message with id.
func (e *idHistory) has(id uint64) bool {
	for i := len(e.entries) - 1; i >= 0; i-- {
		if e.entries[i].ID == id {
			return true
		}
	}
	return false
}

// keep appends en to e within the bounds and reports whether it was kept. A
// message that cannot be kept leaves a gap, so everything before it is
// dropped too: a device that missed it must be told to resync, not be given
// what came around it.
func (h *History) keep(e *idHistory, en Entry, now int64) bool {
	h.trimAge(e, now)
	size := len(en.Msg) + EntryOverhead
	if size > h.cfg.MaxBytes {
		h.drop(e, len(e.entries))
		e.prev = 0 // what comes next does not follow anything kept
		return false
	}
	for len(e.entries) > 0 && (len(e.entries) >= h.cfg.MaxMessages || e.bytes+size > h.cfg.MaxBytes) {
		h.drop(e, 1)
	}
	if h.total.Add(int64(size)) > h.cfg.MaxTotal {
		h.total.Add(-int64(size))
		h.drop(e, len(e.entries))
		e.prev = 0
		return false
	}
	e.entries = append(e.entries, en)
	e.bytes += size
	return true
}

// drop forgets e's k oldest messages.
func (h *History) drop(e *idHistory, k int) {
	if k == 0 {
		return
	}
	e.prev = e.entries[k-1].ID
	freed := 0
	for i := range k {
		freed += len(e.entries[i].Msg) + EntryOverhead
	}
	clear(e.entries[:k]) // let their payloads go
	e.entries = e.entries[k:]
	if len(e.entries) == 0 {
		e.entries = nil
	}
	e.bytes -= freed
	h.total.Add(-int64(freed))
}

// trimAge forgets e's messages older than MaxAge.
func (h *History) trimAge(e *idHistory, now int64) {
	limit, k := now-h.cfg.MaxAge.Milliseconds(), 0
	for k < len(e.entries) && e.entries[k].At < limit {
		k++
	}
	if k > 0 {
		h.drop(e, k)
	}
}

// Left records that a device of id leaves: id stays "recently seen" for
// MaxAge. Call it before the connection leaves the registry, so that a push
// in between finds either the device or the history. Any goroutine.
func (h *History) Left(id string) {
	now := h.nowMS()
	sh := h.shard(id)
	sh.mu.Lock()
	e := h.live(sh, id, now)
	if e == nil {
		e = &idHistory{}
		sh.m[id] = e
	}
	e.touched = now
	sh.mu.Unlock()
	if h.store != nil {
		h.store.Seen(id)
	}
}

// Broadcast delivers msg to every client id connected here whose id starts
// with prefix, each through Deliver (its own message id and history), and
// returns how many connections took it. In cluster mode each id's message is
// queued for Redis too. Any goroutine.
func (h *History) Broadcast(prefix string, msg []byte, binary bool) (reached int) {
	prev := ""
	h.reg.Each(prefix, func(id string, _ Conn) bool {
		if id == prev {
			return true // Each lists an id's devices together: delivered already
		}
		prev = id
		reached += h.Publish(id, msg, binary).Reached
		return true
	})
	return reached
}

// Publish is Deliver plus, in cluster mode, the message's Redis write queued
// without waiting for it (what a broadcast or a topic message to an id on
// this node needs). The push API waits for its write instead (see
// API.pushCluster, for the order against a device recovering elsewhere).
func (h *History) Publish(id string, msg []byte, binary bool) Delivery {
	d := h.Deliver(id, msg, binary)
	if h.store != nil && (d.Reached > 0 || d.Stored) {
		_, _ = h.store.Append(id, Entry{ID: d.ID, At: h.nowMS(), Msg: msg, Binary: binary}, d.Reached > 0, false)
	}
	return d
}

// IDConn is a Conn that carries message ids to its device (an SSE event's
// id, a websocket message's prefix). Deliver and replays use it; id 0 means
// the message has no id (a Registry.Push without history).
type IDConn interface {
	PushID(msg []byte, binary bool, id uint64) error
}

// sendID hands msg to c with its id when c takes ids.
func sendID(c Conn, msg []byte, binary bool, id uint64) error {
	if ic, ok := c.(IDConn); ok {
		return ic.PushID(msg, binary, id)
	}
	return c.Push(msg, binary)
}

// HistoryStats are the history's counters and sizes. Any goroutine.
type HistoryStats struct {
	Stored, Replayed, Resyncs, Dropped int64
	Bytes                              int64
	IDs                                int
}

// Stats returns a snapshot of the counters; IDs walks the shards.
func (h *History) Stats() HistoryStats {
	s := HistoryStats{Stored: h.stored.Load(), Replayed: h.replayed.Load(), Resyncs: h.resyncs.Load(),
		Dropped: h.dropped.Load(), Bytes: h.total.Load()}
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		s.IDs += len(sh.m)
		sh.mu.Unlock()
	}
	return s
}

// Run runs the history's goroutines until ctx is done: the sweep of lapsed
// ids, the recovery workers and, in cluster mode, the Redis writer.
func (h *History) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if h.store != nil {
		wg.Go(func() { h.store.Run(ctx) })
		for range recoverWorkers {
			wg.Go(func() { h.recoverLoop(ctx) })
		}
	}
	h.sweepLoop(ctx)
	wg.Wait()
}

// sweepLoop forgets lapsed ids every MaxAge/4 (at least every 10 s).
func (h *History) sweepLoop(ctx context.Context) {
	t := time.NewTicker(min(max(h.cfg.MaxAge/4, 100*time.Millisecond), 10*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.sweep()
		}
	}
}

// sweep forgets the messages over max_age and the ids that lapsed.
func (h *History) sweep() {
	now := h.nowMS()
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for id := range sh.m {
			h.live(sh, id, now)
		}
		sh.mu.Unlock()
	}
}
