package push

import (
	"errors"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Topics: named channels many devices subscribe to (DESIGN.md, "Topics"). A
// device subscribes at connect (its token's topics, or the accept filter's
// ctx.push_accept(id, {topics = ...})) or, when push.topics.client_subscribe is
// on, with a websocket control message. POST /push/topic/{name} delivers to
// every client id subscribed on each node, through the same per-client-id
// path as POST /push/{id} (API.deliverTopic: History.Publish).
//
// A subscription belongs to the client id on this node: the index counts, per
// topic and id, how many of the id's connections here subscribed, and a
// message to the topic goes to every connection of a subscribed id (the
// per-id delivery path, which is also what keeps the id's history).

// MaxTopicLen is the longest topic name.
const MaxTopicLen = 128

// Topic errors, returned as they are (compare with errors.Is).
var (
	ErrTopicName = errors.New("invalid topic name: want 1 to 128 of a-z A-Z 0-9 -._~:@+=")
	// ErrTooManyTopics: this node holds push.topics.max_per_node topics
	// already; a new one cannot be subscribed until others empty.
	ErrTooManyTopics = errors.New("too many topics on this node (push.topics.max_per_node)")
	// ErrClientTopics: the client id holds its share of topics on this node
	// already (SetMaxPerID), the ones it left lingering included.
	ErrClientTopics = errors.New("too many topics for this client id (push.max_per_client × push.topics.max_per_conn, lingering ones included)")
)

// ValidTopic reports whether name can be a topic: 1 to 128 bytes of the client
// id alphabet (ASCII letters, digits and "-._~:@+="). Topic names appear in
// URL paths (/push/topic/{name}), control messages and Redis keys, so nothing
// else is allowed.
func ValidTopic(name string) bool {
	return len(name) <= MaxTopicLen && ValidClientID(name)
}

// topicShards is the number of shards of Topics; a power of two.
const topicShards = 256

// Topics is this node's topic index: topic → the client ids subscribed here,
// each with the number of its connections that subscribed. A topic whose last
// subscriber left is deleted, so memory follows the live subscriptions.
//
// Concurrency: safe for any goroutine. The event loops subscribe and
// unsubscribe their connections; the push API (another goroutine) looks up a
// topic's ids. Sharded like Registry (256 maps, each under its own RWMutex):
// no global lock on the hot path. The onChange callback runs with a shard's
// lock held and must not block or call back into Topics (the Registrar's
// TopicChanged only posts on a channel).
type Topics struct {
	shards   [topicShards]topicShard
	seed     maphash.Seed
	max      int64
	onChange func(topic string)

	lingerFor time.Duration // SetLinger: how long a leaving connection's topics stay
	lingerMu  sync.Mutex
	lingering []lingering // in due order (topic_linger.go)

	count   atomic.Int64 // distinct topics
	subs    atomic.Int64 // (topic, client id) pairs
	refused atomic.Int64 // subscriptions refused by the node's limit

	// maxPerID bounds the distinct topics one client id holds here, live
	// and lingering (0: none); perID counts them, sharded by id. Without it
	// one device subscribing to fresh topics, leaving them to linger and
	// reconnecting filled max_per_node for everyone (a review's find).
	maxPerID   int32
	perID      [idShards]idShard
	refusedIDs atomic.Int64 // subscriptions refused by maxPerID
}

// idShards is the number of shards of Topics.perID; a power of two.
const idShards = 64

type idShard struct {
	mu sync.Mutex
	m  map[string]int32 // client id → distinct topics it holds here
	_  [64 - 16]byte
}

type topicShard struct {
	mu sync.RWMutex
	m  map[string]map[string]int32 // topic → client id → connections subscribed
	_  [64 - 32]byte
}

// NewTopics returns an empty index that holds at most maxTopics distinct
// topics (0: no limit). onChange, if not nil, is told of every topic that
// appears on this node (first subscriber) or disappears (last one left).
func NewTopics(maxTopics int, onChange func(topic string)) *Topics {
	t := &Topics{seed: maphash.MakeSeed(), max: int64(maxTopics), onChange: onChange}
	for i := range t.shards {
		t.shards[i].m = make(map[string]map[string]int32)
	}
	return t
}

func (t *Topics) shard(topic string) *topicShard {
	return &t.shards[maphash.String(t.seed, topic)&(topicShards-1)]
}

// Subscribe records one more connection of id subscribed to topic. The
// caller keeps each (connection, topic) once and checked the name. It fails
// with ErrTooManyTopics when topic is new and the node is at its limit.
func (t *Topics) Subscribe(topic, id string) error {
	s := t.shard(topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.m[topic]
	if ids[id] == 0 && !t.takeID(id) {
		t.refusedIDs.Add(1)
		return ErrClientTopics
	}
	if ids == nil {
		if n := t.count.Add(1); t.max > 0 && n > t.max {
			t.count.Add(-1)
			t.refused.Add(1)
			t.releaseID(id)
			return ErrTooManyTopics
		}
		ids = make(map[string]int32, 1)
		s.m[topic] = ids
		if t.onChange != nil {
			t.onChange(topic)
		}
	}
	if ids[id]++; ids[id] == 1 {
		t.subs.Add(1)
	}
	return nil
}

// Unsubscribe undoes one Subscribe(topic, id); one that was not subscribed
// is a no-op. The topic goes when its last subscriber does.
func (t *Topics) Unsubscribe(topic, id string) {
	s := t.shard(topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.m[topic]
	n, ok := ids[id]
	if !ok {
		return
	}
	if n > 1 {
		ids[id] = n - 1
		return
	}
	delete(ids, id)
	t.subs.Add(-1)
	t.releaseID(id)
	if len(ids) == 0 {
		delete(s.m, topic)
		t.count.Add(-1)
		if t.onChange != nil {
			t.onChange(topic)
		}
	}
}

// SetMaxPerID bounds the distinct topics one client id may hold on this
// node, lingering ones included (0: no bound). Call before the loops serve
// (Hub building).
func (t *Topics) SetMaxPerID(n int) { t.maxPerID = int32(min(n, 1<<30)) }

// takeID counts one more topic of id; false when id holds maxPerID already.
// Under the topic's shard lock (topic shard, then id shard: never the other
// way round).
func (t *Topics) takeID(id string) bool {
	if t.maxPerID <= 0 {
		return true
	}
	s := &t.perID[maphash.String(t.seed, id)&(idShards-1)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[id] >= t.maxPerID {
		return false
	}
	if s.m == nil {
		s.m = make(map[string]int32)
	}
	s.m[id]++
	return true
}

// releaseID undoes one takeID. Under the topic's shard lock.
func (t *Topics) releaseID(id string) {
	if t.maxPerID <= 0 {
		return
	}
	s := &t.perID[maphash.String(t.seed, id)&(idShards-1)]
	s.mu.Lock()
	if n := s.m[id] - 1; n > 0 {
		s.m[id] = n
	} else {
		delete(s.m, id)
	}
	s.mu.Unlock()
}

// IDs appends the client ids subscribed to topic here to dst and returns it.
func (t *Topics) IDs(topic string, dst []string) []string {
	s := t.shard(topic)
	s.mu.RLock()
	ids := s.m[topic]
	dst = slices.Grow(dst, len(ids))
	for id := range ids {
		dst = append(dst, id)
	}
	s.mu.RUnlock()
	return dst
}

// Has reports whether topic has a subscriber here.
func (t *Topics) Has(topic string) bool {
	s := t.shard(topic)
	s.mu.RLock()
	_, ok := s.m[topic]
	s.mu.RUnlock()
	return ok
}

// Names appends every topic with a subscriber here to dst and returns it
// (the Registrar's refresh walk). It locks one shard at a time.
func (t *Topics) Names(dst []string) []string {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for name := range s.m {
			dst = append(dst, name)
		}
		s.mu.RUnlock()
	}
	return dst
}

// TopicStats are the index's gauges and counters. Any goroutine.
type TopicStats struct {
	Topics        int64 // distinct topics with a subscriber here
	Subscriptions int64 // (topic, client id) pairs
	Refused       int64 // subscriptions refused by push.topics.max_per_node
	RefusedIDs    int64 // subscriptions refused by the client id's share (SetMaxPerID)
}

// Stats returns a snapshot (zero for a nil index).
func (t *Topics) Stats() TopicStats {
	if t == nil {
		return TopicStats{}
	}
	return TopicStats{Topics: t.count.Load(), Subscriptions: t.subs.Load(), Refused: t.refused.Load(),
		RefusedIDs: t.refusedIDs.Load()}
}
