package server

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
	"unsafe"

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
	// The last message appended and its encoding: a push to an id with several
	// devices calls Push once per device with the same msg, which must become one
	// event with one id, not one event per device.
	lastMsg *byte
	lastLen int
	lastEnc []byte
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

// event records msg as the next event of id and returns its SSE encoding.
func (s *ringStore) event(id string, msg []byte) []byte {
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := s.entry(sh, id)
	if p := unsafe.SliceData(msg); p != nil && p == e.lastMsg && len(msg) == e.lastLen {
		return e.lastEnc
	}
	enc, _ := e.ring.Append(make([]byte, 0, len(msg)+40), "", msg)
	e.lastMsg, e.lastLen, e.lastEnc = unsafe.SliceData(msg), len(msg), enc
	return enc
}

// since appends the events of id after lastID to dst.
func (s *ringStore) since(dst []byte, id string, lastID uint64) ([]byte, bool) {
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return s.entry(sh, id).ring.Since(dst, lastID)
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
