package server

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"gozer/gateway/push"
)

// ringIdle is how long a client id's SSE replay ring outlives the id's last use,
// so a device that reconnects after a network blip still gets what it missed.
const ringIdle = 5 * time.Minute

// ringStore keeps an SSE replay ring (push.EventRing) per client id: the events
// recently pushed to it, for Last-Event-ID. Rings are made on first use and
// dropped ringIdle after their last use.
//
// Concurrency: safe for any goroutine (sharded maps under mutexes).
type ringStore struct {
	maxEvents, maxBytes int
	seed                maphash.Seed
	shards              [64]ringShard
}

type ringShard struct {
	mu    sync.Mutex
	rings map[string]*ringEntry
}

type ringEntry struct {
	ring *push.EventRing
	used time.Time
	// The event ids recent push calls (push.SeqConn seqs) got: a push to an id with
	// several devices reaches each device with the same seq, and must become one
	// event with one id, not one event per device. A few are kept because pushes to
	// the same id may interleave.
	recent [4]struct{ seq, id uint64 }
	next   int
}

func newRingStore(maxEvents, maxBytes int) *ringStore {
	s := &ringStore{maxEvents: maxEvents, maxBytes: maxBytes, seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].rings = make(map[string]*ringEntry)
	}
	return s
}

func (s *ringStore) shard(id string) *ringShard {
	return &s.shards[maphash.String(s.seed, id)%uint64(len(s.shards))]
}

// entry returns id's ring, making it if needed; the caller holds sh.mu.
func (s *ringStore) entry(sh *ringShard, id string) *ringEntry {
	e := sh.rings[id]
	if e == nil {
		// Ids start at the current time in ms, so that an id a client kept from
		// before a restart is not taken for a newer one.
		e = &ringEntry{ring: push.NewEventRing(s.maxEvents, s.maxBytes, uint64(time.Now().UnixMilli()))}
		sh.rings[id] = e
	}
	e.used = time.Now()
	return e
}

// event returns msg encoded as the event of push call seq for id: the first
// device of that call records it in the ring and gets a new id, the others get
// the same id.
func (s *ringStore) event(id string, msg []byte, seq uint64) []byte {
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := s.entry(sh, id)
	for _, r := range e.recent {
		// seq 0 is a Push from outside the registry: always its own event.
		if seq != 0 && r.seq == seq && r.id != 0 {
			return push.AppendEvent(make([]byte, 0, len(msg)+40), r.id, "", msg)
		}
	}
	enc, evID := e.ring.Append(make([]byte, 0, len(msg)+40), "", msg)
	e.recent[e.next] = struct{ seq, id uint64 }{seq, evID}
	e.next = (e.next + 1) % len(e.recent)
	return enc
}

// attach runs register (which adds a new SSE connection of id to the registry)
// and appends to dst the events after lastID, as one step against event: a push
// for id lands either in the replay or, later, live, never in both. (A push
// that looked id's devices up just before register and records its event just
// after this step reaches the other devices only: it was pushed as the device
// connected.)
func (s *ringStore) attach(dst []byte, id string, lastID uint64, replay bool, register func() error) ([]byte, bool, error) {
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if err := register(); err != nil {
		return dst, true, err
	}
	if !replay {
		return dst, true, nil
	}
	out, complete := s.entry(sh, id).ring.Since(dst, lastID)
	return out, complete, nil
}

// expireLoop drops rings unused for ringIdle.
func (s *ringStore) expireLoop(ctx context.Context) {
	t := time.NewTicker(ringIdle / 5)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for i := range s.shards {
				sh := &s.shards[i]
				sh.mu.Lock()
				for id, e := range sh.rings {
					if now.Sub(e.used) > ringIdle {
						delete(sh.rings, id)
					}
				}
				sh.mu.Unlock()
			}
		}
	}
}
