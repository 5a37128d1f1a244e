package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// fakeConn records what it was pushed; closed ones refuse.
type fakeConn struct {
	name   string
	closed atomic.Bool
	mu     sync.Mutex
	got    []string
}

var errConnClosed = errors.New("connection closed")

func (c *fakeConn) Push(msg []byte, binary bool) error {
	if c.closed.Load() {
		return errConnClosed
	}
	c.mu.Lock()
	c.got = append(c.got, fmt.Sprintf("%v:%s", binary, msg))
	c.mu.Unlock()
	return nil
}

func (c *fakeConn) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

func TestRegistry(t *testing.T) {
	r := NewRegistry(3)
	a1, a2, b1 := &fakeConn{name: "a1"}, &fakeConn{name: "a2"}, &fakeConn{name: "b1"}
	steps := []struct {
		name  string
		do    func() (bool, error)
		want  bool
		err   error
		conns int
		ids   int
	}{
		{"first device of a", func() (bool, error) { return r.Add("user:a", a1) }, true, nil, 1, 1},
		{"second device of a", func() (bool, error) { return r.Add("user:a", a2) }, false, nil, 2, 1},
		{"same conn again", func() (bool, error) { return r.Add("user:a", a2) }, false, nil, 2, 1},
		{"b", func() (bool, error) { return r.Add("user:b", b1) }, true, nil, 3, 2},
		{"remove unknown", func() (bool, error) { return r.Remove("user:c", a1), nil }, false, nil, 3, 2},
		{"remove conn not of id", func() (bool, error) { return r.Remove("user:b", a1), nil }, false, nil, 3, 2},
		{"remove first device", func() (bool, error) { return r.Remove("user:a", a1), nil }, false, nil, 2, 1 + 1},
		{"remove last device", func() (bool, error) { return r.Remove("user:a", a2), nil }, true, nil, 1, 1},
		{"remove twice", func() (bool, error) { return r.Remove("user:a", a2), nil }, false, nil, 1, 1},
	}
	for _, s := range steps {
		got, err := s.do()
		if got != s.want || !errors.Is(err, s.err) || r.Conns() != s.conns || r.Clients() != s.ids {
			t.Fatalf("%s: got %v %v, conns %d ids %d; want %v %v %d %d", s.name, got, err, r.Conns(), r.Clients(), s.want, s.err, s.conns, s.ids)
		}
	}
}

func TestRegistryMaxPerClient(t *testing.T) {
	r := NewRegistry(2)
	r.Add("x", &fakeConn{})
	r.Add("x", &fakeConn{})
	if _, err := r.Add("x", &fakeConn{}); !errors.Is(err, ErrTooManyConns) {
		t.Fatalf("third device: %v", err)
	}
	if r.Count("x") != 2 || r.Conns() != 2 {
		t.Fatalf("count %d conns %d", r.Count("x"), r.Conns())
	}
}

func TestRegistryPushAndBroadcast(t *testing.T) {
	r := NewRegistry(0)
	phone, tv, other, gone := &fakeConn{}, &fakeConn{}, &fakeConn{}, &fakeConn{}
	r.Add("user:1", phone)
	r.Add("user:1", tv)
	r.Add("user:1", gone)
	r.Add("device:9", other)
	gone.closed.Store(true)

	tests := []struct {
		name  string
		do    func() int
		want  int
		conns map[*fakeConn][]string
	}{
		{"one id, three devices, one closed", func() int { return r.Push("user:1", []byte("hi"), false) }, 2,
			map[*fakeConn][]string{phone: {"false:hi"}, tv: {"false:hi"}, other: nil}},
		{"unknown id", func() int { return r.Push("user:2", []byte("x"), false) }, 0, nil},
		{"broadcast by prefix", func() int { return r.Broadcast("user:", []byte("b"), true) }, 2,
			map[*fakeConn][]string{phone: {"false:hi", "true:b"}, other: nil}},
		{"broadcast to all", func() int { return r.Broadcast("", []byte("all"), false) }, 3,
			map[*fakeConn][]string{tv: {"false:hi", "true:b", "false:all"}, other: {"false:all"}}},
	}
	for _, tc := range tests {
		if got := tc.do(); got != tc.want {
			t.Fatalf("%s: reached %d, want %d", tc.name, got, tc.want)
		}
		for c, want := range tc.conns {
			if got := c.messages(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: conn got %v, want %v", tc.name, got, want)
			}
		}
	}
	if got := r.Lookup("user:1", nil); len(got) != 3 {
		t.Fatalf("lookup: %d conns", len(got))
	}
}

func TestRegistryEachStops(t *testing.T) {
	r := NewRegistry(0)
	for i := 0; i < 1000; i++ {
		r.Add(fmt.Sprint("id", i), &fakeConn{})
	}
	n := 0
	r.Each("", func(string, Conn) bool { n++; return n < 10 })
	if n != 10 {
		t.Fatalf("Each went on to %d", n)
	}
	// fn may call back into the registry: no lock is held.
	r.Each("id1", func(id string, c Conn) bool { r.Remove(id, c); return true })
	if r.Conns() != 1000-111 {
		t.Fatalf("%d conns left", r.Conns())
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry(0)
	var wg sync.WaitGroup
	const loops, perLoop = 4, 2000
	for l := 0; l < loops; l++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns := make([]*fakeConn, perLoop)
			for i := range conns {
				conns[i] = &fakeConn{}
				r.Add(fmt.Sprintf("c%d", i%500), conns[i])
			}
			for i := range conns {
				r.Remove(fmt.Sprintf("c%d", i%500), conns[i])
			}
		}()
	}
	stop := make(chan struct{})
	var pushers sync.WaitGroup
	pushers.Add(1)
	go func() {
		defer pushers.Done()
		for {
			select {
			case <-stop:
				return
			default:
				r.Push("c1", []byte("m"), false)
				r.Broadcast("c4", []byte("m"), false)
			}
		}
	}()
	wg.Wait()
	close(stop)
	pushers.Wait()
	if r.Conns() != 0 || r.Clients() != 0 {
		t.Fatalf("%d conns, %d ids left", r.Conns(), r.Clients())
	}
}

// TestRegistryCountWhileDevicesChange: the push API's status (Count) runs on
// the admin goroutine while a loop adds and removes devices of the same id;
// the race detector fails it if Count reads the devices after the lock.
func TestRegistryCountWhileDevicesChange(t *testing.T) {
	r := NewRegistry(0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		conns := []*fakeConn{{}, {}, {}, {}}
		for range 5000 {
			for _, c := range conns {
				_, _ = r.Add("dev", c)
			}
			for _, c := range conns {
				r.Remove("dev", c)
			}
		}
	}()
	for counting := true; counting; {
		select {
		case <-done:
			counting = false
		default:
			if n := r.Count("dev"); n < 0 || n > 4 {
				t.Fatalf("Count %d, want 0 to 4", n)
			}
		}
	}
	if n := r.Count("dev"); n != 0 {
		t.Fatalf("Count %d after every device left", n)
	}
}

func TestRegistryShardLayout(t *testing.T) {
	if s := unsafe.Sizeof(regShard{}); s != 64 {
		t.Fatalf("shard is %d bytes, want one 64-byte cache line", s)
	}
}

func TestLookupNoAllocs(t *testing.T) {
	r := NewRegistry(0)
	c := &fakeConn{}
	r.Add("user:1", c)
	dst := make([]Conn, 0, 4)
	if a := testing.AllocsPerRun(100, func() { dst = r.Lookup("user:1", dst[:0]) }); a != 0 {
		t.Fatalf("Lookup allocates %.1f times", a)
	}
}

func TestMemoryCluster(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	m := NewMemoryCluster(30*time.Second, clock)
	a, b, c := m.Node("10.0.0.1:8081"), m.Node("10.0.0.2:8081"), m.Node("10.0.0.3:8081")
	ctx := context.Background()
	lookup := func(id string) []string {
		t.Helper()
		nodes, err := a.Lookup(ctx, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		return nodes
	}
	steps := []struct {
		name string
		do   func() error
		id   string
		want []string
	}{
		{"register on c", func() error { return c.Register(ctx, "u1") }, "u1", []string{"10.0.0.3:8081"}},
		{"second device on b", func() error { return b.Register(ctx, "u1") }, "u1", []string{"10.0.0.2:8081", "10.0.0.3:8081"}},
		{"b unregisters", func() error { return b.Unregister(ctx, "u1") }, "u1", []string{"10.0.0.3:8081"}},
		{"unknown id", func() error { return nil }, "nobody", nil},
		{"20 s later, c refreshes", func() error { now = now.Add(20 * time.Second); return c.Refresh(ctx, []string{"u1"}) }, "u1", []string{"10.0.0.3:8081"}},
		{"25 s later still there", func() error { now = now.Add(25 * time.Second); return nil }, "u1", []string{"10.0.0.3:8081"}},
		{"c dies: gone after the ttl", func() error { now = now.Add(5 * time.Second); return nil }, "u1", nil},
		{"refresh re-creates a lapsed entry", func() error { return c.Refresh(ctx, []string{"u1"}) }, "u1", []string{"10.0.0.3:8081"}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := lookup(s.id); fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Fatalf("%s: lookup %v, want %v", s.name, got, s.want)
		}
	}
	if m.Len() != 1 || a.Node() != "10.0.0.1:8081" {
		t.Fatalf("len %d node %q", m.Len(), a.Node())
	}
	outage := errors.New("connection refused")
	m.SetFailure(outage)
	if err := a.Register(ctx, "u2"); !errors.Is(err, outage) {
		t.Fatalf("register during outage: %v", err)
	}
	m.SetFailure(nil)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Lookup(cctx, "u1", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("lookup with cancelled ctx: %v", err)
	}
}

// The fake satisfies the interface the Redis implementation will.
var _ ClusterRegistry = (*memoryNode)(nil)
