package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// ClusterRegistry is the cluster-wide push registry: client id → the push-API
// addresses of the nodes where that id has connections. The production
// implementation keeps it in Redis (one hash per client id, a field per node,
// each with the TTL), so a node that dies leaves no entry longer than the TTL;
// MemoryCluster is the in-memory fake for unit tests.
//
// A ClusterRegistry value speaks for one node (Node). Its methods do network
// I/O and may block: the core calls them off the event loops (a refresher
// goroutine, the push API's handlers) and never on a loop. Every method must
// honour ctx and be safe for concurrent use by any goroutine.
type ClusterRegistry interface {
	// Node returns this node's push-API address as other nodes dial it.
	Node() string
	// Register records that clientID has a connection on this node, with the
	// registry's TTL. The core calls it when Registry.Add reports the id's
	// first local connection. Registering again refreshes the TTL.
	Register(ctx context.Context, clientID string) error
	// Refresh extends the TTL of this node's entries for clientIDs, in one
	// batch; the core walks its local ids every TTL/3 while they stay
	// connected.
	Refresh(ctx context.Context, clientIDs []string) error
	// Unregister removes this node from clientID's entry; the core calls it
	// when Registry.Remove reports the id's last local connection. Other
	// nodes' entries for the id stay.
	Unregister(ctx context.Context, clientID string) error
	// Lookup appends to dst the nodes where clientID is connected (this node
	// included, if it is) and returns it; none when it is connected nowhere.
	Lookup(ctx context.Context, clientID string, dst []string) ([]string, error)
	// Alive records this node in the cluster's node set with the TTL; the core
	// calls it at start and every TTL/3, so a dead node leaves the set within
	// the TTL. Cluster-wide broadcasts go to the node set.
	Alive(ctx context.Context) error
	// Leave removes this node from the node set (a clean shutdown).
	Leave(ctx context.Context) error
	// Nodes appends the live nodes (this one included, if alive), sorted.
	Nodes(ctx context.Context, dst []string) ([]string, error)

	// Generation returns the registry's generation (a token that changes when
	// the registry lost its data: a Redis restarted empty, a flush; the call
	// starts a new one when there is none) and whether this node registered
	// all of its ids in it (MarkReady). Not ready: the Registrar registers
	// every local id again, then calls MarkReady.
	Generation(ctx context.Context) (gen string, ready bool, err error)
	// MarkReady records that this node registered all of its ids in
	// generation gen; it does nothing when gen is no longer current.
	MarkReady(ctx context.Context, gen string) error
}

// ErrRecovering is what Lookup returns, with no nodes, for an id it found
// nowhere while the registry is being rebuilt after it lost its data (some
// live node has not registered its ids again yet): the id may well be
// connected, so "not connected" would be a lie. Callers answer "retry soon".
var ErrRecovering = errors.New("cluster registry recovering after a data loss: some nodes have not re-registered yet")

// RecoveryGrace is how long after a new generation began a miss counts as
// "recovering" whatever the node set says: the time for every live node to
// notice the loss (it probes every RegistrarProbe) and put itself back into
// the node set.
const RecoveryGrace = time.Second

// MemoryCluster is an in-memory stand-in for the Redis registry, shared by the
// fake nodes of a test: Node(addr) returns the ClusterRegistry of one node.
// Expiry follows the injected clock, so tests can let entries lapse.
//
// Concurrency: safe for any goroutine.
type MemoryCluster struct {
	mu      sync.Mutex
	ttl     time.Duration
	now     func() time.Time
	entries map[string]map[string]time.Time // client id → node → expiry
	nodes   map[string]time.Time            // node set: node → expiry
	gen     string                          // "" after a Flush, until Generation
	genAt   time.Time
	genSeq  int
	ready   map[string]string // node → the generation it registered in
	fail    error             // see SetFailure
}

// Flush drops everything, as a Redis that restarted empty would: entries, the
// node set, the generation.
func (m *MemoryCluster) Flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.entries)
	clear(m.nodes)
	clear(m.ready)
	m.gen = ""
}

// NewMemoryCluster returns an empty fake registry whose entries live for ttl
// after their last Register or Refresh, by the clock now (time.Now if nil).
func NewMemoryCluster(ttl time.Duration, now func() time.Time) *MemoryCluster {
	if now == nil {
		now = time.Now
	}
	// It starts as a registry that has been there for ever: generation "1",
	// begun long ago; nodes still have to MarkReady in it, as the Registrar does.
	return &MemoryCluster{ttl: ttl, now: now, entries: make(map[string]map[string]time.Time),
		nodes: make(map[string]time.Time), ready: make(map[string]string), gen: "1", genSeq: 1}
}

// SetFailure makes every call fail with err, wrapped (nil: work again): for
// testing how the core rides out a registry outage.
func (m *MemoryCluster) SetFailure(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

// Node returns the ClusterRegistry of the node with push-API address addr.
func (m *MemoryCluster) Node(addr string) ClusterRegistry {
	return &memoryNode{m: m, addr: addr}
}

// Len returns how many client ids have an entry that has not expired.
func (m *MemoryCluster) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	n := 0
	for id := range m.entries {
		if len(m.liveLocked(id, now)) > 0 {
			n++
		}
	}
	return n
}

// liveLocked drops id's expired node entries and returns the live ones.
func (m *MemoryCluster) liveLocked(id string, now time.Time) map[string]time.Time {
	nodes := m.entries[id]
	for node, exp := range nodes {
		if !now.Before(exp) {
			delete(nodes, node)
		}
	}
	if nodes != nil && len(nodes) == 0 {
		delete(m.entries, id)
		return nil
	}
	return nodes
}

func (m *MemoryCluster) check(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("push cluster %s: %w", op, err)
	}
	if m.fail != nil {
		return fmt.Errorf("push cluster %s: %w", op, m.fail)
	}
	return nil
}

type memoryNode struct {
	m    *MemoryCluster
	addr string
}

func (n *memoryNode) Node() string { return n.addr }

func (n *memoryNode) Register(ctx context.Context, clientID string) error {
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "register"); err != nil {
		return err
	}
	nodes := m.entries[clientID]
	if nodes == nil {
		nodes = make(map[string]time.Time, 1)
		m.entries[clientID] = nodes
	}
	nodes[n.addr] = m.now().Add(m.ttl)
	return nil
}

func (n *memoryNode) Refresh(ctx context.Context, clientIDs []string) error {
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "refresh"); err != nil {
		return err
	}
	now := m.now()
	for _, id := range clientIDs {
		nodes := m.liveLocked(id, now)
		if nodes == nil {
			nodes = make(map[string]time.Time, 1)
			m.entries[id] = nodes
		}
		// Like a Redis HSET + HEXPIRE: refreshing an entry that lapsed
		// re-creates it; the node knows the id is still connected.
		nodes[n.addr] = now.Add(m.ttl)
	}
	return nil
}

func (n *memoryNode) Unregister(ctx context.Context, clientID string) error {
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "unregister"); err != nil {
		return err
	}
	if nodes := m.entries[clientID]; nodes != nil {
		delete(nodes, n.addr)
		if len(nodes) == 0 {
			delete(m.entries, clientID)
		}
	}
	return nil
}

func (n *memoryNode) Lookup(ctx context.Context, clientID string, dst []string) ([]string, error) {
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "lookup"); err != nil {
		return dst, err
	}
	start, now := len(dst), m.now()
	for node := range m.liveLocked(clientID, now) {
		dst = append(dst, node)
	}
	if len(dst) == start && m.recoveringLocked(now) {
		return dst, fmt.Errorf("push cluster lookup: %w", ErrRecovering)
	}
	slices.Sort(dst[start:])
	return dst, nil
}

// recoveringLocked: no generation, a young one, or a live node not ready in it.
func (m *MemoryCluster) recoveringLocked(now time.Time) bool {
	if m.gen == "" || now.Sub(m.genAt) < RecoveryGrace {
		return true
	}
	for node, exp := range m.nodes {
		if now.Before(exp) && m.ready[node] != m.gen {
			return true
		}
	}
	return false
}

func (n *memoryNode) Generation(ctx context.Context) (string, bool, error) {
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "generation"); err != nil {
		return "", false, err
	}
	if m.gen == "" {
		m.genSeq++
		m.gen, m.genAt = strconv.Itoa(m.genSeq), m.now()
	}
	return m.gen, m.ready[n.addr] == m.gen, nil
}

func (n *memoryNode) MarkReady(ctx context.Context, gen string) error {
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "mark ready"); err != nil {
		return err
	}
	if gen == m.gen {
		m.ready[n.addr] = gen
	}
	return nil
}

func (n *memoryNode) Alive(ctx context.Context) error {
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "alive"); err != nil {
		return err
	}
	m.nodes[n.addr] = m.now().Add(m.ttl)
	return nil
}

func (n *memoryNode) Leave(ctx context.Context) error {
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "leave"); err != nil {
		return err
	}
	delete(m.nodes, n.addr)
	delete(m.ready, n.addr)
	return nil
}

func (n *memoryNode) Nodes(ctx context.Context, dst []string) ([]string, error) {
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "nodes"); err != nil {
		return dst, err
	}
	start, now := len(dst), m.now()
	for node, exp := range m.nodes {
		if now.Before(exp) {
			dst = append(dst, node)
		} else {
			delete(m.nodes, node)
		}
	}
	slices.Sort(dst[start:])
	return dst, nil
}
