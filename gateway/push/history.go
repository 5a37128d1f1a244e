package push

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// historyIdle is how long a client id's history outlives the id's last use,
// so a device that reconnects after a network blip still gets what it missed.
const historyIdle = 5 * time.Minute

// History keeps the recent SSE events of every client id (an EventRing per
// id): what a device that reconnects with Last-Event-ID missed. Rings are made
// on first use and dropped historyIdle after their last use (ExpireLoop).
//
// Concurrency: safe for any goroutine (sharded maps under mutexes).
type History struct {
	maxEvents, maxBytes int
	seed                maphash.Seed
	shards              [64]ringShard
}

type ringShard struct {
	mu    sync.Mutex
	rings map[string]*ringEntry
}

type ringEntry struct {
	ring *EventRing
	used time.Time
	// The event ids recent push calls (SeqConn seqs) got: a push to an id with
	// several devices reaches each device with the same seq, and must become one
	// event with one id, not one event per device. A few are kept because pushes to
	// the same id may interleave.
	recent [4]struct{ seq, id uint64 }
	next   int
}

// NewHistory keeps up to maxEvents events and maxBytes per client id.
func NewHistory(maxEvents, maxBytes int) *History {
	s := &History{maxEvents: maxEvents, maxBytes: maxBytes, seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].rings = make(map[string]*ringEntry)
	}
	return s
}

func (s *History) shard(id string) *ringShard {
	return &s.shards[maphash.String(s.seed, id)%uint64(len(s.shards))]
}

// entry returns id's ring, making it if needed; the caller holds sh.mu.
func (s *History) entry(sh *ringShard, id string) *ringEntry {
	e := sh.rings[id]
	if e == nil {
		// Ids start at the current time in ms, so that an id a client kept from
		// before a restart is not taken for a newer one.
		e = &ringEntry{ring: NewEventRing(s.maxEvents, s.maxBytes, uint64(time.Now().UnixMilli()))}
		sh.rings[id] = e
	}
	e.used = time.Now()
	return e
}

// Event returns msg encoded as the event of push call seq for id: the first
// device of that call records it in the ring and gets a new id, the others get
// the same id.
func (s *History) Event(id string, msg []byte, seq uint64) []byte {
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := s.entry(sh, id)
	for _, r := range e.recent {
		// seq 0 is a Push from outside the registry: always its own event.
		if seq != 0 && r.seq == seq && r.id != 0 {
			return AppendEvent(make([]byte, 0, len(msg)+40), r.id, "", msg)
		}
	}
	enc, evID := e.ring.Append(make([]byte, 0, len(msg)+40), "", msg)
	e.recent[e.next] = struct{ seq, id uint64 }{seq, evID}
	e.next = (e.next + 1) % len(e.recent)
	return enc
}

// Attach runs register (which adds a new SSE connection of id to the registry)
// and appends to dst the events after lastID, as one step against event: a push
// for id lands either in the replay or, later, live, never in both. (A push
// that looked id's devices up just before register and records its event just
// after this step reaches the other devices only: it was pushed as the device
// connected.)
func (s *History) Attach(dst []byte, id string, lastID uint64, replay bool, register func() error) ([]byte, bool, error) {
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

// ExpireLoop drops rings unused for historyIdle, until ctx is done. Run it on a
// goroutine of its own.
func (s *History) ExpireLoop(ctx context.Context) {
	t := time.NewTicker(historyIdle / 5)
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
					if now.Sub(e.used) > historyIdle {
						delete(sh.rings, id)
					}
				}
				sh.mu.Unlock()
			}
		}
	}
}
