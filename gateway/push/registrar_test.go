package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"gozer/gateway/internal/redistest"
	"gozer/gateway/internal/syncbuf"
)

// syncBuffer is a log sink the registrar's goroutine writes while the test
// reads it.
type syncBuffer struct{ syncbuf.Buffer }

func (b *syncBuffer) lines(level string) int {
	return strings.Count(b.String(), `"level":"`+level+`"`)
}

// runRegistrar starts r.Run and returns a stop that cancels it and waits for
// Run to return (within a deadline: Run must not hang on its way out).
func runRegistrar(t *testing.T, r *Registrar) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Error("Run did not return within 5s of its ctx being cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// End to end against a real Redis: connections on the local registry show in
// the cluster registry and stay there past several TTLs, disconnections
// remove them, a stale Unregistered does not remove an id that reconnected,
// and a stopped registrar takes its node out.
func TestRegistrarEndToEnd(t *testing.T) {
	t.Parallel()
	// Two seconds: a refresh (every ttl/3) must be over a second late for an
	// entry to lapse, which a loaded CI machine does not do.
	const ttl = 2 * time.Second
	srv := redistest.Start(t)
	node := newRedisNode(t, srv.Addr, "self:1", ttl)
	other := newRedisNode(t, srv.Addr, "other:1", time.Minute)
	local := NewRegistry(0)
	var logs syncBuffer
	r := NewRegistrar(node, local, ttl, zerolog.New(&logs))
	stop := runRegistrar(t, r)

	connect := func(id string, c *fakeConn) {
		if first, err := local.Add(id, c); err != nil {
			t.Fatal(err)
		} else if first {
			r.Registered(id)
		}
	}
	disconnect := func(id string, c *fakeConn) {
		if local.Remove(id, c) {
			r.Unregistered(id)
		}
	}
	visible := func(id string) bool { return slices.Contains(lookup(t, other, id), "self:1") }

	eventually(t, 10*time.Second, "the node is alive", func() bool {
		return slices.Contains(nodes(t, other), "self:1")
	})
	u1, u2a, u2b, u3 := &fakeConn{name: "u1"}, &fakeConn{name: "u2a"}, &fakeConn{name: "u2b"}, &fakeConn{name: "u3"}
	connect("u1", u1)
	connect("u2", u2a)
	must(t, other.Register(testCtx(t), "u1"))
	eventually(t, 10*time.Second, "registered ids are visible", func() bool {
		return visible("u1") && visible("u2")
	})

	// The refresh keeps them (and the node) alive for several TTLs.
	for end := time.Now().Add(5 * ttl / 2); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if !visible("u1") || !visible("u2") || !slices.Contains(nodes(t, other), "self:1") {
			t.Fatal("an entry lapsed although the registrar refreshes it")
		}
	}

	// u1 leaves this node; the other node's entry for it stays.
	disconnect("u1", u1)
	eventually(t, 10*time.Second, "an unregistered id disappears", func() bool {
		return slices.Equal(lookup(t, other, "u1"), []string{"other:1"})
	})

	// A stale Unregistered (u2 reconnected meanwhile on another device) must
	// not remove u2. u3's registration, queued after it, marks that the
	// registrar got past it.
	connect("u2", u2b)
	r.Unregistered("u2")
	connect("u3", u3)
	eventually(t, 10*time.Second, "u3 is visible", func() bool { return visible("u3") })
	if !visible("u2") {
		t.Fatal("an Unregistered for an id still connected here removed it")
	}
	// One of u2's devices leaves: no event (u2 is not gone); a marker id queued
	// after it shows the registrar got past this point.
	disconnect("u2", u2a)
	u4 := &fakeConn{name: "u4"}
	connect("u4", u4)
	eventually(t, 10*time.Second, "u4 is visible", func() bool { return visible("u4") })
	if !visible("u2") {
		t.Fatal("u2 lost its entry while one device remains")
	}

	// Ids whose events were lost (never posted here): the periodic refresh
	// registers them anyway, 1,000 per batch.
	for i := range 2500 {
		_, _ = local.Add(fmt.Sprintf("quiet-%d", i), &fakeConn{})
	}
	eventually(t, 3*ttl, "the refresh registers ids whose events were lost", func() bool {
		return visible("quiet-0") && visible("quiet-1234") && visible("quiet-2499")
	})

	// Stopping the registrar: the node leaves and takes its ids with it, long
	// before their TTL.
	stop()
	if got := nodes(t, other); slices.Contains(got, "self:1") {
		t.Errorf("after Run returned: nodes = %q", got)
	}
	for _, id := range []string{"u2", "u3"} {
		if visible(id) {
			t.Errorf("after Run returned: %s is still registered to the stopped node", id)
		}
	}
	if !slices.Equal(lookup(t, other, "u1"), []string{"other:1"}) {
		t.Error("the stopped node removed another node's entry")
	}
	if n := dataKeys(t, rawRedis(t, srv.Addr)); n != 1 {
		t.Errorf("%d keys left after the node left, want only u1's", n)
	}
	if n := logs.lines("error"); n != 0 {
		t.Errorf("%d error lines with redis up: %s", n, logs.String())
	}
	if r.Dropped() != 0 {
		t.Errorf("dropped %d events", r.Dropped())
	}
}

// Redis down: the loops' calls never block, Run keeps going and logs once, not
// once per failure; Redis back (empty): the refresh restores the entries.
func TestRegistrarRedisDown(t *testing.T) {
	t.Parallel()
	const ttl = 600 * time.Millisecond
	srv := redistest.Start(t)
	node := newRedisNode(t, srv.Addr, "self:1", ttl)
	local := NewRegistry(0)
	var logs syncBuffer
	alive := &aliveCounter{ClusterRegistry: node}
	r := NewRegistrar(alive, local, ttl, zerolog.New(&logs))
	srv.Kill()
	stop := runRegistrar(t, r)

	// Events keep flowing from "event loops" while Redis is down.
	start := time.Now()
	for i := range 200 {
		c := &fakeConn{}
		id := string(rune('a'+i%26)) + "-id"
		if first, _ := local.Add(id, c); first {
			r.Registered(id)
		}
		if i%2 == 0 && local.Remove(id, c) {
			r.Unregistered(id)
		}
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("posting events with redis down took %v", took)
	}
	// Several periods of failures (alive, refresh and the events).
	eventually(t, 10*ttl, "three periods with redis down", func() bool { return alive.failed.Load() >= 3 })
	if n := logs.lines("error"); n != 1 {
		t.Errorf("%d error lines during the outage, want 1 (rate-limited): %s", n, logs.String())
	}

	srv.Restart()
	// go-redis probes a server that refused PoolSize dials once a second, so
	// the first refresh after the restart may still fail.
	eventually(t, 5*time.Second, "the refresh restores the registry", func() bool {
		ctx := testCtx(t)
		if got, err := node.Nodes(ctx, nil); err != nil || !slices.Equal(got, []string{"self:1"}) {
			return false
		}
		ok := true
		local.Each("", func(id string, _ Conn) bool {
			got, _ := node.Lookup(ctx, id, nil)
			ok = slices.Equal(got, []string{"self:1"})
			return ok
		})
		return ok && local.Clients() > 0
	})
	if n := logs.lines("info"); n != 1 {
		t.Errorf("%d info lines, want one saying the registry is reachable again: %s", n, logs.String())
	}

	// Run ends promptly even with Redis gone again.
	srv.Kill()
	start = time.Now()
	stop()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Run took %v to return with redis down", took)
	}
}

// Registered and Unregistered never block: with nobody draining the queue,
// the overflow is dropped and counted.
func TestRegistrarDrops(t *testing.T) {
	t.Parallel()
	r := NewRegistrar(NewMemoryCluster(time.Minute, nil).Node("n"), NewRegistry(0), time.Minute, zerolog.Nop())
	start := time.Now()
	for range registrarQueue + 10 {
		r.Registered("u")
	}
	r.Unregistered("u")
	if got := r.Dropped(); got != 11 {
		t.Errorf("Dropped() = %d, want 11", got)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("posting took %v", took)
	}
}

// With a ClusterRegistry that has no UnregisterMany, the registrar unregisters
// one id at a time; and a dropped Unregistered is repaired by the next event
// for the id or, at worst, by the TTL.
func TestRegistrarMemoryCluster(t *testing.T) {
	t.Parallel()
	mc := NewMemoryCluster(time.Minute, nil)
	node, other := mc.Node("self:1"), mc.Node("other:1")
	local := NewRegistry(0)
	r := NewRegistrar(node, local, time.Minute, zerolog.Nop())
	stop := runRegistrar(t, r)
	a, b := &fakeConn{}, &fakeConn{}
	for _, id := range []string{"a", "b"} {
		_, _ = local.Add(id, a)
		r.Registered(id)
	}
	eventually(t, 2*time.Second, "both visible", func() bool { return mc.Len() == 2 })
	local.Remove("a", a)
	r.Unregistered("a")
	eventually(t, 2*time.Second, "a gone", func() bool { return len(lookup(t, other, "a")) == 0 })
	_, _ = local.Add("c", b)
	stop()
	if got := nodes(t, other); len(got) != 0 {
		t.Errorf("nodes after stop = %q", got)
	}
	if mc.Len() != 0 {
		t.Errorf("%d ids left after stop (c was never posted but is local)", mc.Len())
	}
}

// aliveCounter counts the Alive calls that failed: one per registrar period.
type aliveCounter struct {
	ClusterRegistry
	failed atomic.Int64
}

func (a *aliveCounter) Alive(ctx context.Context) error {
	err := a.ClusterRegistry.Alive(ctx)
	if err != nil {
		a.failed.Add(1)
	}
	return err
}

// The registry loses everything (a Redis that restarted empty): the registrar
// notices within a probe or two and registers every local id again, and until
// then a lookup of a connected id says "recovering", never "not connected".
func TestRegistrarRebuildsAfterDataLoss(t *testing.T) {
	t.Parallel()
	mc := NewMemoryCluster(time.Minute, nil)
	node, other := mc.Node("self:1"), mc.Node("other:1")
	local := NewRegistry(0)
	var logs syncBuffer
	r := NewRegistrar(node, local, time.Minute, zerolog.New(&logs))
	// The ids are there before Run, which registers them itself: no event
	// is queued, so none can write them again after the flush below and
	// pass for the rebuild (Registered events applied late did, once, in CI).
	for _, id := range []string{"a", "b", "c"} {
		_, _ = local.Add(id, &fakeConn{})
	}
	runRegistrar(t, r)
	eventually(t, 10*time.Second, "all three visible", func() bool { return mc.Len() == 3 })
	// And the first probe marked the node ready: a flush before it would be
	// no loss to the registrar, only its start.
	eventually(t, 10*time.Second, "the node is marked ready", func() bool {
		_, ready, err := node.Generation(context.Background())
		return err == nil && ready
	})

	mc.Flush()
	lost := time.Now()
	var misses int
	eventually(t, 10*time.Second, "every id visible again", func() bool {
		for _, id := range []string{"a", "b", "c"} {
			got, err := other.Lookup(context.Background(), id, nil)
			switch {
			case errors.Is(err, ErrRecovering):
				return false
			case err != nil:
				t.Fatalf("lookup %s: %v", id, err)
			case len(got) == 0:
				misses++ // a false "not connected"
				return false
			}
		}
		return true
	})
	if misses > 0 {
		t.Errorf("%d lookups after the loss found a connected id nowhere without saying the registry was recovering", misses)
	}
	// How fast is for a benchmark (a loaded machine is slower); the test
	// logs it and only fails when the rebuild clearly did not come from the
	// probe at all.
	took := time.Since(lost)
	t.Logf("the registry was whole again %v after the loss (probe every %v)", took, RegistrarProbe)
	if took > 10*time.Second {
		t.Errorf("the registry was whole again only %v after the loss", took)
	}
	if n := r.Rebuilds(); n != 1 {
		t.Errorf("Rebuilds() = %d, want 1", n)
	}
	if !strings.Contains(logs.String(), "registered them all again") {
		t.Errorf("no log line about the rebuild: %s", logs.String())
	}
	// A settled registry answers a miss as a miss.
	eventually(t, 2*RecoveryGrace, "an unknown id is a plain miss once settled", func() bool {
		got, err := other.Lookup(context.Background(), "nobody", nil)
		return err == nil && len(got) == 0
	})
}
