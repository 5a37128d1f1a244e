package push

import (
	"errors"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
)

// Conn is a push connection as the registry sees it; the core implements it.
//
// Push hands msg to the connection for delivery (a text or binary websocket
// message, or an SSE event). It must be safe to call from any goroutine and
// must not block: the core hops onto the connection's event loop (gnet
// EventLoop.Execute / Conn.AsyncWrite) and enqueues there. msg is shared with
// every other connection of a broadcast: Push must not modify it, and may keep
// it (read-only) until it was written; the caller never modifies it afterwards.
// A non-nil error means the message was not queued (connection closed,
// outbound buffer full); the registry then does not count it as reached.
//
// Implementations must be comparable (pointer types): the registry finds a
// connection to remove by ==.
type Conn interface {
	Push(msg []byte, binary bool) error
}

// ErrTooManyConns is returned by Registry.Add when a client id already has the
// maximum number of connections.
var ErrTooManyConns = errors.New("push registry: too many connections for one client id")

// registryShards is the number of shards; a power of two.
const registryShards = 256

// Registry maps local client ids to their connections (one id may have several
// devices; a message for it goes to all). Its zero value is not ready: use
// NewRegistry.
//
// Concurrency: safe for any goroutine. Every event loop adds and removes its
// connections, and the push API (another goroutine) looks them up and
// broadcasts. Why sharded maps and not per-loop maps: a lookup by client id
// arrives on the admin listener's goroutine and must find the id whatever
// loop holds it; per-loop maps would need either a global index (a lock again,
// on every add and remove) or a question to every loop per push (a hop and a
// wait on each of them). 256 shards, each a map under its own RWMutex on its
// own cache line, make contention negligible: an add, remove or lookup costs
// one uncontended lock, about 20-40 ns, and nothing on the frame path. The
// memory cost is the map entry: about 76 bytes per client id (measured with
// 200,000 ids: string header, one Conn, the map slot) plus the id's bytes when
// the key string is not shared with the connection, and 16 bytes per extra
// device.
type Registry struct {
	shards     [registryShards]regShard
	seed       maphash.Seed
	maxPerID   int
	conns      atomic.Int64
	clients    atomic.Int64
	snapshotsP sync.Pool // *[]idConn, for Each
}

type regShard struct {
	mu sync.RWMutex
	m  map[string]devices
	_  [64 - 32]byte // RWMutex 24 + map pointer 8: one cache line per shard
}

// devices is the connections of one client id: the first inline, so the
// common single-device id costs no slice, and the others behind a pointer, so
// the map slot of a single-device id is 24 bytes of value, not 40 (the slot is
// most of what an idle push connection costs the registry).
type devices struct {
	one  Conn
	rest *[]Conn // nil: one device
}

// more is the devices after the first.
func (d *devices) more() []Conn {
	if d.rest == nil {
		return nil
	}
	return *d.rest
}

// setMore replaces the devices after the first.
func (d *devices) setMore(m []Conn) {
	switch {
	case len(m) == 0:
		d.rest = nil
	case d.rest == nil:
		d.rest = &m
	default:
		*d.rest = m
	}
}

type idConn struct {
	id string
	c  Conn
}

// NewRegistry returns an empty registry that allows up to maxPerClient
// connections per client id (0: no limit), so one id cannot pin unbounded
// memory.
func NewRegistry(maxPerClient int) *Registry {
	r := &Registry{seed: maphash.MakeSeed(), maxPerID: maxPerClient}
	for i := range r.shards {
		r.shards[i].m = make(map[string]devices)
	}
	return r
}

func (r *Registry) shard(id string) *regShard {
	return &r.shards[maphash.String(r.seed, id)&(registryShards-1)]
}

// Add registers c under id. first is true when c is id's first connection on
// this node (the core then registers the id in the cluster registry). Adding
// a connection twice is a no-op.
func (r *Registry) Add(id string, c Conn) (first bool, err error) {
	s := r.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.m[id]
	if !ok {
		s.m[id] = devices{one: c}
		r.clients.Add(1)
		r.conns.Add(1)
		return true, nil
	}
	if d.one == c {
		return false, nil
	}
	more := d.more()
	for _, x := range more {
		if x == c {
			return false, nil
		}
	}
	if r.maxPerID > 0 && 1+len(more) >= r.maxPerID {
		return false, ErrTooManyConns
	}
	d.setMore(append(more, c))
	s.m[id] = d
	r.conns.Add(1)
	return false, nil
}

// Remove unregisters c from id. last is true when it was id's last connection
// on this node (the core then removes the id from the cluster registry).
// Removing a connection that is not registered is a no-op.
func (r *Registry) Remove(id string, c Conn) (last bool) {
	s := r.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.m[id]
	if !ok {
		return false
	}
	more := d.more()
	switch {
	case d.one == c:
		if len(more) == 0 {
			delete(s.m, id)
			r.clients.Add(-1)
			r.conns.Add(-1)
			return true
		}
		n := len(more) - 1
		d.one = more[n]
		more[n] = nil
		more = more[:n]
	default:
		i := -1
		for j, x := range more {
			if x == c {
				i = j
				break
			}
		}
		if i < 0 {
			return false
		}
		n := len(more) - 1
		more[i] = more[n]
		more[n] = nil
		more = more[:n]
	}
	d.setMore(more)
	s.m[id] = d
	r.conns.Add(-1)
	return false
}

// Lookup appends id's connections to dst and returns it. The connections may
// close right after; Push then fails and is not counted.
func (r *Registry) Lookup(id string, dst []Conn) []Conn {
	s := r.shard(id)
	s.mu.RLock()
	d, ok := s.m[id]
	if ok {
		dst = append(dst, d.one)
		dst = append(dst, d.more()...)
	}
	s.mu.RUnlock()
	return dst
}

// Count returns how many connections id has on this node.
func (r *Registry) Count(id string) int {
	s := r.shard(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.m[id]
	if !ok {
		return 0
	}
	// Under the lock: d is a copy, but d.rest points at the slice Remove
	// and Add rewrite in place.
	return 1 + len(d.more())
}

// Push delivers msg to every connection of id and returns how many accepted it.
// Without a History only: History.Deliver is the path that gives messages ids
// and keeps them.
func (r *Registry) Push(id string, msg []byte, binary bool) (reached int) {
	var buf [4]Conn
	for _, c := range r.Lookup(id, buf[:0]) {
		if c.Push(msg, binary) == nil {
			reached++
		}
	}
	return reached
}

// Each calls fn for every connection whose client id starts with prefix (all
// of them for ""), until fn returns false. It walks one shard at a time and
// copies the shard's matching entries before calling fn without any lock held,
// so fn may call the registry and take its time; a connection added or removed
// meanwhile may or may not be seen. The walk costs O(connections on the node)
// whatever the prefix: hashing spreads ids over the shards.
func (r *Registry) Each(prefix string, fn func(id string, c Conn) bool) {
	bp, _ := r.snapshotsP.Get().(*[]idConn)
	if bp == nil {
		bp = new([]idConn)
	}
	snap := *bp
	defer func() {
		clear(snap[:cap(snap)]) // drop every reference, not only the last shard's
		*bp = snap[:0]
		if cap(snap) <= 1<<16 {
			r.snapshotsP.Put(bp)
		}
	}()
	for i := range r.shards {
		s := &r.shards[i]
		snap = snap[:0]
		s.mu.RLock()
		for id, d := range s.m {
			if !strings.HasPrefix(id, prefix) {
				continue
			}
			snap = append(snap, idConn{id, d.one})
			for _, c := range d.more() {
				snap = append(snap, idConn{id, c})
			}
		}
		s.mu.RUnlock()
		for j := range snap {
			if !fn(snap[j].id, snap[j].c) {
				return
			}
		}
	}
}

// Broadcast pushes msg to every connection whose client id starts with prefix
// and returns how many accepted it.
func (r *Registry) Broadcast(prefix string, msg []byte, binary bool) (reached int) {
	r.Each(prefix, func(_ string, c Conn) bool {
		if c.Push(msg, binary) == nil {
			reached++
		}
		return true
	})
	return reached
}

// Conns returns the number of registered connections.
func (r *Registry) Conns() int { return int(r.conns.Load()) }

// Clients returns the number of distinct client ids registered.
func (r *Registry) Clients() int { return int(r.clients.Load()) }
