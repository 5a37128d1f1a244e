package push

import (
	"context"
	"slices"
	"time"
)

// Recovery: a device that reconnects with the id of the last message it got.
// Single node (or a device without a last id) it is one step on its loop
// (Attach). In cluster mode the messages may be in Redis only (pushed through
// another node while the device was away), so the device is registered at
// once, holds back its live messages, and a worker reads Redis off the loop
// and hands it the merged replay (Recover).

const (
	// recoverQueue bounds the devices waiting for a Redis read; when it is
	// full a device recovers from this node's history alone.
	recoverQueue = 1 << 16
	// recoverWorkers read Redis for recoveries, each a batch at a time.
	recoverWorkers = 4
	// recoverBatch is the most devices one worker round serves: one pipelined
	// registration and one pipelined read for all of them.
	recoverBatch = 256
	// recoverTimeout bounds a worker round's Redis calls.
	recoverTimeout = 2 * time.Second
)

// Replay is what a reconnecting device gets before its live messages.
type Replay struct {
	Entries []Entry // the messages after its last id, in order
	// Resync: its last id is not in the history (older than what is kept, or
	// unknown): messages it missed are gone, it must resync from the backend.
	Resync bool
	// Newest is the newest message id of the client id (0: none): the id to
	// go on from after a resync.
	Newest uint64
}

type recoverReq struct {
	id     string
	lastID uint64
	done   func(Replay)
}

// Attach registers c under id (Registry.Add: first and err are its) and,
// when resume, returns what a device whose last message was lastID missed,
// as one step against Deliver: a message is in the replay, or was handed to c
// after it, never both. Any goroutine (the core calls it on c's loop).
func (h *History) Attach(id string, c Conn, lastID uint64, resume bool) (first bool, r Replay, err error) {
	now := h.nowMS()
	sh := h.shard(id)
	sh.mu.Lock()
	first, err = h.reg.Add(id, c)
	if err == nil {
		e := h.live(sh, id, now)
		if e != nil {
			e.touched = now
		}
		if resume {
			r = h.since(e, lastID)
		}
	}
	sh.mu.Unlock()
	if err == nil && h.store != nil && first {
		h.store.Seen(id)
	}
	return first, r, err
}

// since is the replay after lastID from e (nil: nothing known); sh.mu is held.
func (h *History) since(e *idHistory, lastID uint64) Replay {
	if e == nil {
		h.resyncs.Add(1)
		return Replay{Resync: true}
	}
	r := Replay{Newest: e.last}
	if lastID != 0 && lastID == e.last {
		return r // it has everything
	}
	if lastID != 0 && lastID == e.prev && len(e.entries) > 0 {
		r.Entries = slices.Clone(e.entries) // it missed everything kept, and nothing before
		h.replayed.Add(int64(len(r.Entries)))
		return r
	}
	for i := range e.entries {
		if e.entries[i].ID == lastID {
			r.Entries = slices.Clone(e.entries[i+1:])
			h.replayed.Add(int64(len(r.Entries)))
			return r
		}
	}
	h.resyncs.Add(1)
	r.Resync = true
	return r
}

// Recover is Attach for a device that reconnects with lastID in cluster mode.
// c is registered at once; messages delivered to it until done runs must be
// held back by c (they are in the replay). done is called once, from a worker
// goroutine (or this one when the queue is full), with the replay from this
// node's history merged with Redis's, under the id's lock: it must only
// queue the replay and make c take live messages again, without blocking.
func (h *History) Recover(id string, c Conn, lastID uint64, done func(Replay)) (first bool, err error) {
	first, _, err = h.Attach(id, c, lastID, false)
	if err != nil {
		return first, err
	}
	select {
	case h.recoverCh <- recoverReq{id: id, lastID: lastID, done: done}:
	default:
		h.store.fail(errRecoverQueueFull)
		h.finish(id, lastID, nil, done)
	}
	return first, nil
}

// recoverLoop serves queued recoveries a batch at a time until ctx is done.
func (h *History) recoverLoop(ctx context.Context) {
	batch := make([]recoverReq, 0, recoverBatch)
	ids := make([]string, 0, recoverBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case r := <-h.recoverCh:
			batch = append(batch, r)
		}
	fill:
		for len(batch) < recoverBatch {
			select {
			case r := <-h.recoverCh:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		ids = ids[:0]
		for _, r := range batch {
			ids = append(ids, r.id)
		}
		rctx, cancel := context.WithTimeout(ctx, recoverTimeout)
		// Registered in the cluster before the read: a push at another node
		// that misses this registration wrote to Redis before it looked, so the
		// read below sees it; one that finds it is forwarded here and held.
		if h.cfg.Register != nil {
			if err := h.cfg.Register(rctx, ids); err != nil {
				h.store.fail(err)
			}
		}
		remote, err := h.store.ReadMany(rctx, ids)
		cancel()
		if err != nil {
			h.store.fail(err)
			remote = nil // this node's history only
		}
		for i, r := range batch {
			var rem []Entry
			if remote != nil {
				rem = remote[i]
			}
			h.finish(r.id, r.lastID, rem, r.done)
			batch[i] = recoverReq{}
		}
	}
}

// finish merges remote into id's history and hands done the replay after
// lastID, under the id's lock.
func (h *History) finish(id string, lastID uint64, remote []Entry, done func(Replay)) {
	now := h.nowMS()
	sh := h.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := h.live(sh, id, now)
	if len(remote) > 0 {
		if e == nil {
			e = &idHistory{touched: now}
			sh.m[id] = e
		}
		h.merge(e, remote, now)
	}
	done(h.since(e, lastID))
}

// merge makes e's messages the union of its own and remote's, by id, oldest
// first, within the bounds; sh.mu is held.
func (h *History) merge(e *idHistory, remote []Entry, now int64) {
	all := make([]Entry, 0, len(e.entries)+len(remote))
	all = append(append(all, e.entries...), remote...)
	slices.SortStableFunc(all, func(a, b Entry) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	all = slices.CompactFunc(all, func(a, b Entry) bool { return a.ID == b.ID })
	h.drop(e, len(e.entries))
	e.prev = 0 // what Redis trimmed before all[0] is unknown
	for _, en := range all {
		e.last = max(e.last, en.ID)
		h.keep(e, en, now)
	}
}
