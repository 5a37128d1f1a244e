package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gozer/gateway/internal/redistest"
)

// These tests run against a real redis-server (redistest starts one per
// test); they run in parallel since most of them wait for a TTL to lapse.

// newRedisNode returns a node's registry whose lookups see a settled
// registry: it is ready in the current generation, and a new generation has
// no grace period (the generation tests set one).
func newRedisNode(t *testing.T, addr, node string, ttl time.Duration) *RedisCluster {
	t.Helper()
	c, err := NewRedisCluster(addr, node, ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	c.grace = 0
	if !strings.Contains(addr, "://") && addr != "" {
		ready(t, c)
	}
	return c
}

// ready does what the registrar does once a node registered all its ids.
func ready(t *testing.T, c ClusterRegistry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	gen, _, err := c.Generation(ctx)
	if err == nil {
		err = c.MarkReady(ctx, gen)
	}
	if err != nil {
		t.Fatalf("node %s not marked ready: %v", c.Node(), err)
	}
}

// dataKeys counts the registry's keys that expire: all but the generation
// and the ready hash, which outlive every node on purpose.
func dataKeys(t *testing.T, raw *redis.Client) int64 {
	t.Helper()
	keys, err := raw.Keys(testCtx(t), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := int64(0)
	for _, k := range keys {
		if k != redisGenKey && k != redisReadyKey {
			n++
		}
	}
	return n
}

// rawRedis is a plain client to look at the keys the registry leaves.
func rawRedis(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func lookup(t *testing.T, c ClusterRegistry, id string) []string {
	t.Helper()
	got, err := c.Lookup(testCtx(t), id, nil)
	if err != nil {
		t.Fatalf("lookup %q: %v", id, err)
	}
	return got
}

func nodes(t *testing.T, c ClusterRegistry) []string {
	t.Helper()
	got, err := c.Nodes(testCtx(t), nil)
	if err != nil {
		t.Fatalf("nodes: %v", err)
	}
	return got
}

// eventually polls cond until it holds or the deadline passes: waiting for a
// TTL to lapse without a sleep that is either too short or too long.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRedisClusterRegistry(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a := newRedisNode(t, srv.Addr, "10.0.0.2:9000", time.Minute)
	b := newRedisNode(t, srv.Addr, "10.0.0.1:9000", time.Minute)
	raw := rawRedis(t, srv.Addr)
	ctx := testCtx(t)
	many := make([]string, 2500) // three pipelined batches
	for i := range many {
		many[i] = fmt.Sprintf("bulk-%d", i)
	}
	steps := []struct {
		name string
		do   func() error
		want map[string][]string // id → nodes, sorted
		keys int64               // keys in Redis afterwards
	}{
		{"register on a", func() error { return a.Register(ctx, "u1") },
			map[string][]string{"u1": {"10.0.0.2:9000"}, "u2": nil}, 1},
		{"register on b too", func() error { return b.Register(ctx, "u1") },
			map[string][]string{"u1": {"10.0.0.1:9000", "10.0.0.2:9000"}}, 1},
		{"register again is idempotent", func() error { return a.Register(ctx, "u1") },
			map[string][]string{"u1": {"10.0.0.1:9000", "10.0.0.2:9000"}}, 1},
		{"another id", func() error { return a.Register(ctx, "u2") },
			map[string][]string{"u2": {"10.0.0.2:9000"}}, 2},
		{"unregister removes only that node", func() error { return a.Unregister(ctx, "u1") },
			map[string][]string{"u1": {"10.0.0.1:9000"}, "u2": {"10.0.0.2:9000"}}, 2},
		{"unregister an unknown id", func() error { return a.Unregister(ctx, "nobody") },
			map[string][]string{"nobody": nil}, 2},
		{"last node gone: key gone", func() error { return b.Unregister(ctx, "u1") },
			map[string][]string{"u1": nil}, 1},
		{"refresh in batches", func() error { return b.Refresh(ctx, many) },
			map[string][]string{"bulk-0": {"10.0.0.1:9000"}, "bulk-2499": {"10.0.0.1:9000"}}, 2501},
		{"refresh nothing", func() error { return b.Refresh(ctx, nil) }, nil, 2501},
		{"unregister many", func() error { return b.UnregisterMany(ctx, many) },
			map[string][]string{"bulk-0": nil, "bulk-1000": nil, "u2": {"10.0.0.2:9000"}}, 1},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for id, want := range s.want {
			if got := lookup(t, a, id); !slices.Equal(got, want) {
				t.Errorf("%s: lookup %q = %q, want %q", s.name, id, got, want)
			}
		}
		if n := dataKeys(t, raw); n != s.keys {
			t.Errorf("%s: %d keys in redis, want %d", s.name, n, s.keys)
		}
	}
	// Lookup appends to dst.
	got, err := b.Lookup(ctx, "u2", []string{"x"})
	if err != nil || !slices.Equal(got, []string{"x", "10.0.0.2:9000"}) {
		t.Errorf("lookup into dst = %q, %v", got, err)
	}
	// Every key the registry writes expires, but the generation's two.
	keys, _ := raw.Keys(ctx, "*").Result()
	for _, k := range keys {
		if k == redisGenKey || k == redisReadyKey {
			if ttl := raw.PTTL(ctx, k).Val(); ttl != -1 {
				t.Errorf("key %q: ttl %v, want none (it must outlive the nodes)", k, ttl)
			}
			continue
		}
		if ttl := raw.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("key %q: ttl %v, want (0, 1m]", k, ttl)
		}
	}
}

func TestRedisClusterNodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a := newRedisNode(t, srv.Addr, "b:1", time.Minute)
	b := newRedisNode(t, srv.Addr, "a:1", time.Minute)
	ctx := testCtx(t)
	if got := nodes(t, a); len(got) != 0 {
		t.Fatalf("nodes before any alive = %q", got)
	}
	must(t, a.Alive(ctx))
	must(t, b.Alive(ctx))
	must(t, a.Alive(ctx))
	if got := nodes(t, a); !slices.Equal(got, []string{"a:1", "b:1"}) {
		t.Errorf("nodes = %q, want sorted [a:1 b:1]", got)
	}
	if got, _ := a.Nodes(ctx, []string{"x"}); !slices.Equal(got, []string{"x", "a:1", "b:1"}) {
		t.Errorf("nodes into dst = %q", got)
	}
	must(t, b.Leave(ctx))
	if got := nodes(t, a); !slices.Equal(got, []string{"b:1"}) {
		t.Errorf("after leave: nodes = %q", got)
	}
	must(t, b.Leave(ctx)) // twice: harmless
	if a.Node() != "b:1" {
		t.Errorf("Node() = %q", a.Node())
	}
}

// A node that stops refreshing disappears after the TTL, from Lookup and Nodes
// alike, while a node that keeps refreshing stays; and the keys expire.
func TestRedisClusterExpiry(t *testing.T) {
	t.Parallel()
	const ttl = time.Second
	srv := redistest.Start(t)
	live := newRedisNode(t, srv.Addr, "live:1", ttl)
	dead := newRedisNode(t, srv.Addr, "dead:1", ttl)
	raw := rawRedis(t, srv.Addr)
	ctx := testCtx(t)
	must(t, live.Register(ctx, "u"))
	must(t, live.Alive(ctx))
	must(t, dead.Register(ctx, "u"))
	must(t, dead.Register(ctx, "gone"))
	must(t, dead.Alive(ctx))
	start := time.Now()
	if got := lookup(t, live, "u"); len(got) != 2 {
		t.Fatalf("lookup before the ttl = %q", got)
	}
	for _, k := range []string{redisIDPrefix + "u", redisIDPrefix + "gone", redisNodesKey} {
		if d := raw.PTTL(ctx, k).Val(); d <= 0 || d > ttl {
			t.Errorf("key %q: ttl %v, want (0, %v]", k, d, ttl)
		}
	}
	eventually(t, 3*ttl, "the dead node's entries lapse", func() bool {
		must(t, live.Refresh(ctx, []string{"u"}))
		must(t, live.Alive(ctx))
		return slices.Equal(lookup(t, live, "u"), []string{"live:1"}) &&
			slices.Equal(nodes(t, live), []string{"live:1"}) &&
			len(lookup(t, live, "gone")) == 0
	})
	if waited := time.Since(start); waited < ttl-100*time.Millisecond {
		t.Errorf("entries lapsed after %v, before the ttl %v", waited, ttl)
	}
	eventually(t, 3*ttl, "the key of an id nobody refreshes expires", func() bool {
		return raw.Exists(ctx, redisIDPrefix+"gone").Val() == 0
	})
	// Now the live node stops refreshing too: nothing is left but the
	// generation.
	eventually(t, 3*ttl, "every key expires", func() bool {
		return dataKeys(t, raw) == 0
	})
	if got := lookup(t, live, "u"); len(got) != 0 {
		t.Errorf("lookup after every ttl = %q", got)
	}
}

// Nodes configured with different TTLs (a rolling config change) do not cut
// each other's entries short: the key lives as long as its longest entry.
func TestRedisClusterMixedTTL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	long := newRedisNode(t, srv.Addr, "long:1", time.Minute)
	short := newRedisNode(t, srv.Addr, "short:1", time.Second)
	raw := rawRedis(t, srv.Addr)
	ctx := testCtx(t)
	must(t, long.Register(ctx, "u"))
	must(t, short.Register(ctx, "u"))
	if d := raw.PTTL(ctx, redisIDPrefix+"u").Val(); d < 50*time.Second {
		t.Fatalf("the short node cut the key's ttl to %v", d)
	}
	eventually(t, 3*time.Second, "the short node's entry lapses", func() bool {
		return slices.Equal(lookup(t, long, "u"), []string{"long:1"})
	})
	must(t, long.Unregister(ctx, "u"))
	if n := raw.Exists(ctx, redisIDPrefix+"u").Val(); n != 0 {
		t.Errorf("key left after the last unregister")
	}
}

// Every method honours its ctx: a cancelled one fails at once, and a deadline
// bounds a call to a server that accepts but never answers.
func TestRedisClusterContext(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newRedisNode(t, srv.Addr, "n:1", time.Minute)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // a Redis that hangs: accepts, reads, never replies
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, cn); cn.Close() }()
		}
	}()
	hung, err := NewRedisCluster(ln.Addr().String(), "n:1", time.Minute) // not ready(): it would hang
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hung.Close() })

	calls := map[string]func(ClusterRegistry, context.Context) error{
		"register":   func(c ClusterRegistry, ctx context.Context) error { return c.Register(ctx, "u") },
		"refresh":    func(c ClusterRegistry, ctx context.Context) error { return c.Refresh(ctx, []string{"u", "v"}) },
		"unregister": func(c ClusterRegistry, ctx context.Context) error { return c.Unregister(ctx, "u") },
		"lookup":     func(c ClusterRegistry, ctx context.Context) error { _, err := c.Lookup(ctx, "u", nil); return err },
		"alive":      func(c ClusterRegistry, ctx context.Context) error { return c.Alive(ctx) },
		"leave":      func(c ClusterRegistry, ctx context.Context) error { return c.Leave(ctx) },
		"nodes":      func(c ClusterRegistry, ctx context.Context) error { _, err := c.Nodes(ctx, nil); return err },
	}
	var wg sync.WaitGroup
	for op, call := range calls {
		err := call(c, cancelled)
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "push cluster "+op+": ") {
			t.Errorf("%s with a cancelled ctx: %v", op, err)
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := call(hung, ctx)
			if took := time.Since(start); err == nil || took > time.Second {
				t.Errorf("%s on a hung server: %v after %v, want an error within the 200ms deadline", op, err, took)
			}
		})
	}
	wg.Wait()
}

// Redis down: calls fail fast with an error, never hang; Redis back (empty,
// its script cache lost): calls work again, pipelined ones included.
func TestRedisClusterDownAndBack(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newRedisNode(t, srv.Addr, "n:1", time.Minute)
	ctx := testCtx(t)
	must(t, c.Refresh(ctx, []string{"u", "v"}))

	srv.Kill()
	for op, call := range map[string]func(ctx context.Context) error{
		"register": func(ctx context.Context) error { return c.Register(ctx, "u") },
		"refresh":  func(ctx context.Context) error { return c.Refresh(ctx, []string{"u", "v"}) },
		"lookup":   func(ctx context.Context) error { _, err := c.Lookup(ctx, "u", nil); return err },
		"nodes":    func(ctx context.Context) error { _, err := c.Nodes(ctx, nil); return err },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		err := call(ctx)
		cancel()
		if err == nil || !strings.HasPrefix(err.Error(), "push cluster "+op+": ") {
			t.Errorf("%s with redis down: %v", op, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s with redis down took %v", op, took)
		}
	}

	srv.Restart()
	eventually(t, 3*time.Second, "refresh works once redis is back", func() bool {
		return c.Refresh(ctx, []string{"u", "v"}) == nil
	})
	if got := lookup(t, c, "v"); !slices.Equal(got, []string{"n:1"}) {
		t.Errorf("after the restart: lookup = %q", got)
	}
	// The script cache flushed under a live connection: EVALSHA fails with
	// NOSCRIPT and the pipeline reloads the script.
	must(t, rawRedis(t, srv.Addr).ScriptFlush(ctx).Err())
	must(t, c.Refresh(ctx, []string{"w"}))
	must(t, rawRedis(t, srv.Addr).ScriptFlush(ctx).Err())
	must(t, c.Register(ctx, "x"))
	if got := lookup(t, c, "w"); !slices.Equal(got, []string{"n:1"}) {
		t.Errorf("after a script flush: lookup = %q", got)
	}
}

func TestNewRedisCluster(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, node string
		ttl        time.Duration
		err        string
	}{
		{"127.0.0.1:6379", "", time.Second, "empty node"},
		{"127.0.0.1:6379", "n", 0, "below 1ms"},
		{"", "n", time.Second, "empty redis address"},
		{"http://x", "n", time.Second, "redis url"},
		{"redis://127.0.0.1:6379/2", "n", time.Second, ""},
		{"127.0.0.1:6379", "n", time.Second, ""},
	} {
		c, err := NewRedisCluster(tc.addr, tc.node, tc.ttl)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%q %q %v: %v", tc.addr, tc.node, tc.ttl, err)
			} else {
				_ = c.Close()
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "push cluster: ") {
			t.Errorf("%q %q %v: err %v, want one with %q", tc.addr, tc.node, tc.ttl, err, tc.err)
		}
	}
}

// A redis:// URL reaches the database it names.
func TestRedisClusterURL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newRedisNode(t, "redis://"+srv.Addr+"/3", "n:1", time.Minute)
	ctx := testCtx(t)
	must(t, c.Register(ctx, "u"))
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2, DB: 3})
	defer raw.Close()
	if n := raw.Exists(ctx, redisIDPrefix+"u").Val(); n != 1 {
		t.Errorf("no key in db 3")
	}
}

// Generations on a real Redis: a flush starts a new one, in which no node is
// ready; a miss is ErrRecovering until every live node is ready and the grace
// has passed; marking ready in a stale generation does nothing.
func TestRedisClusterGeneration(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a := newRedisNode(t, srv.Addr, "a:1", time.Minute)
	b := newRedisNode(t, srv.Addr, "b:1", time.Minute)
	raw := rawRedis(t, srv.Addr)
	ctx := testCtx(t)
	must(t, a.Alive(ctx))
	must(t, b.Alive(ctx))
	old, ready, err := a.Generation(ctx)
	if err != nil || !ready || old == "" {
		t.Fatalf("Generation of a settled node = %q, %v, %v; want the generation, ready", old, ready, err)
	}
	if _, err := a.Lookup(ctx, "nobody", nil); err != nil {
		t.Fatalf("a miss in a settled registry: %v, want none", err)
	}

	must(t, raw.FlushAll(ctx).Err())
	gen, ready, err := a.Generation(ctx)
	if err != nil || ready || gen == "" || gen == old {
		t.Fatalf("Generation after a flush = %q, %v, %v; want a new generation, not ready", gen, ready, err)
	}
	must(t, b.MarkReady(ctx, old)) // stale: does nothing
	if _, ok, _ := b.Generation(ctx); ok {
		t.Error("MarkReady in a stale generation made b ready in the new one")
	}
	must(t, a.Alive(ctx))
	must(t, a.MarkReady(ctx, gen))
	must(t, b.Alive(ctx))
	if _, err := a.Lookup(ctx, "nobody", nil); !errors.Is(err, ErrRecovering) {
		t.Errorf("a miss while b is not ready: %v, want ErrRecovering", err)
	}
	must(t, b.MarkReady(ctx, gen))
	// Every live node is ready; within the grace after the generation began
	// (nodes that have not noticed yet are not in the node set) it is still a
	// rebuild, past it a miss.
	a.grace = time.Minute
	if _, err := a.Lookup(ctx, "nobody", nil); !errors.Is(err, ErrRecovering) {
		t.Errorf("a miss within the grace: %v, want ErrRecovering", err)
	}
	a.grace = 0
	if got, err := a.Lookup(ctx, "nobody", nil); err != nil || len(got) != 0 {
		t.Errorf("a miss once every node is ready, past the grace: %q, %v; want a plain miss", got, err)
	}
	// A node that leaves takes its ready mark with it; a dead node's mark does
	// not matter once its node entry is gone.
	must(t, b.Leave(ctx))
	if v := raw.HGet(ctx, redisReadyKey, "b:1").Val(); v != "" {
		t.Errorf("b's ready mark after Leave: %q, want none", v)
	}
}
