package push_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"gozer/gateway/push"
)

// testCluster is three push APIs A, B and C sharing a MemoryCluster, plus a
// node "bad" in the registry that answers every request with 500.
type testCluster struct {
	mc    *push.MemoryCluster
	nodes []*apiNode // A, B, C
	bad   string
}

func newCluster(t *testing.T) *testCluster {
	c := &testCluster{mc: push.NewMemoryCluster(time.Minute, nil)}
	for range 3 {
		c.nodes = append(c.nodes, newNode(t, c.mc, nil))
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":"boom"}`)
	}))
	t.Cleanup(bad.Close)
	c.bad = bad.Listener.Addr().String()
	return c
}

// name returns node i's cluster name, with "bad" for the failing node.
func (c *testCluster) name(i int) string {
	if i < 0 {
		return c.bad
	}
	return c.nodes[i].addr
}

// nodeList is the JSON array of the names of nodes in the order given.
func (c *testCluster) nodeList(idx ...int) string {
	var b strings.Builder
	for i, x := range idx {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q", c.name(x))
	}
	return "[" + b.String() + "]"
}

// sortedNodes returns the indices ordered by their node names, as the
// cluster registry lists them.
func (c *testCluster) sortedNodes(idx ...int) []int {
	return slices.SortedFunc(slices.Values(idx), func(x, y int) int { return strings.Compare(c.name(x), c.name(y)) })
}

const (
	nodeA, nodeB, nodeC = 0, 1, 2
	badNode             = -1
)

func TestAPICluster(t *testing.T) {
	type conn struct {
		node     int
		name, id string
	}
	hello := []string{"t:hello"}
	tests := []struct {
		name   string
		conns  []conn
		stale  map[int]string // node → id registered in the cluster without a conn there
		fail   bool           // the cluster registry fails
		at     int            // the node called
		req    apiReq
		status int
		body   func(c *testCluster) string // exact answer; nil = not checked
		has    string                      // part of the answer
		header map[string]string
		got    map[string][]string
		stats  map[int]push.APIStats // per node; nodes not listed: not checked
		logHas string                // part of the called node's log
	}{
		{name: "push at A reaches a conn on C", conns: []conn{{nodeC, "c1", "user:1"}},
			at: nodeA, req: apiReq{method: "POST", path: "/push/user:1", body: "hello"},
			status: 200, body: func(c *testCluster) string { return `{"reached":1,"nodes":` + c.nodeList(nodeC) + `}` },
			got: map[string][]string{"c1": hello},
			stats: map[int]push.APIStats{
				nodeA: {Pushed: 1, Forwarded: 1}, nodeB: {}, nodeC: {Delivered: 1, ForwardsReceived: 1},
			}},
		{name: "push reaches A and C and sums", conns: []conn{{nodeA, "a1", "user:1"}, {nodeC, "c1", "user:1"}, {nodeC, "c2", "user:1"}},
			at: nodeA, req: apiReq{method: "POST", path: "/push/user:1", ct: "application/octet-stream", body: "bin"},
			status: 200, body: func(c *testCluster) string { return `{"reached":3,"nodes":` + c.nodeList(nodeA, nodeC) + `}` },
			got:   map[string][]string{"a1": {"b:bin"}, "c1": {"b:bin"}, "c2": {"b:bin"}},
			stats: map[int]push.APIStats{nodeA: {Pushed: 1, Delivered: 1, Forwarded: 1}, nodeC: {Delivered: 2, ForwardsReceived: 1}}},
		{name: "forwarded header prevents re-forwarding", conns: []conn{{nodeC, "c1", "user:1"}},
			at: nodeA, req: apiReq{method: "POST", path: "/push/user:1", body: "hello", forwarded: true},
			status: 404, body: func(*testCluster) string { return `{"reached":0,"error":"client not connected"}` },
			stats: map[int]push.APIStats{nodeA: {ForwardsReceived: 1}, nodeC: {}}},
		{name: "forwarded broadcast is not forwarded again", conns: []conn{{nodeA, "a1", "dev:1"}, {nodeB, "b1", "dev:2"}},
			at: nodeA, req: apiReq{method: "POST", path: "/push/broadcast?prefix=dev:", body: "hello", forwarded: true},
			status: 200, body: func(c *testCluster) string { return fmt.Sprintf(`{"reached":1,"nodes":{%q:1}}`, c.name(nodeA)) },
			got:   map[string][]string{"a1": hello},
			stats: map[int]push.APIStats{nodeA: {Delivered: 1, ForwardsReceived: 1}, nodeB: {}}},
		{name: "a stale registry entry is not connected", stale: map[int]string{nodeB: "user:1"},
			at: nodeA, req: apiReq{method: "POST", path: "/push/user:1", body: "hello"},
			status: 404, body: func(*testCluster) string { return `{"reached":0,"error":"client not connected"}` },
			stats: map[int]push.APIStats{nodeA: {Forwarded: 1, NotFound: 1}, nodeB: {ForwardsReceived: 1}}},
		{name: "a failing node alone is a 502", stale: map[int]string{badNode: "user:1"},
			at: nodeA, req: apiReq{method: "POST", path: "/push/user:1", body: "hello"},
			status: 502, has: `answered 500: boom`,
			stats: map[int]push.APIStats{nodeA: {Forwarded: 1, ForwardErrors: 1}}, logHas: `forwarding to another node failed`},
		{name: "a failing node beside a delivery is listed", conns: []conn{{nodeB, "b1", "user:1"}}, stale: map[int]string{badNode: "user:1"},
			at: nodeA, req: apiReq{method: "POST", path: "/push/user:1", body: "hello"},
			status: 200, has: `"failed":{`, got: map[string][]string{"b1": hello},
			stats: map[int]push.APIStats{nodeA: {Pushed: 1, Forwarded: 2, ForwardErrors: 1}, nodeB: {Delivered: 1, ForwardsReceived: 1}}},
		{name: "broadcast across nodes sums",
			conns: []conn{{nodeA, "a1", "dev:1"}, {nodeB, "b1", "dev:2"}, {nodeB, "b2", "dev:3"}, {nodeC, "c1", "dev:4"}, {nodeC, "c2", "user:1"}},
			at:    nodeA, req: apiReq{method: "POST", path: "/push/broadcast?prefix=dev:", body: "hello"},
			status: 200, body: func(c *testCluster) string {
				return fmt.Sprintf(`{"reached":4,"nodes":{%q:%d,%q:%d,%q:%d}}`, sortedCounts(c, map[int]int{nodeA: 1, nodeB: 2, nodeC: 1})...)
			},
			got: map[string][]string{"a1": hello, "b1": hello, "b2": hello, "c1": hello},
			stats: map[int]push.APIStats{
				nodeA: {Broadcasts: 1, Delivered: 1, Forwarded: 2},
				nodeB: {Delivered: 2, ForwardsReceived: 1}, nodeC: {Delivered: 1, ForwardsReceived: 1},
			}},
		{name: "cluster failure still delivers locally", fail: true,
			conns: []conn{{nodeA, "a1", "user:1"}, {nodeC, "c1", "user:1"}},
			at:    nodeA, req: apiReq{method: "POST", path: "/push/user:1", body: "hello"},
			status: 200, has: `"warning":"delivered on this node only: cluster registry unavailable`,
			got:    map[string][]string{"a1": hello},
			stats:  map[int]push.APIStats{nodeA: {Pushed: 1, Delivered: 1, ClusterErrors: 1}, nodeC: {}},
			logHas: `cluster registry unavailable`},
		{name: "cluster failure and nothing local is a 503", fail: true, conns: []conn{{nodeC, "c1", "user:1"}},
			at: nodeA, req: apiReq{method: "POST", path: "/push/user:1", body: "hello"},
			status: 503, has: `"error":"cluster registry unavailable: push cluster lookup: redis down"`,
			header: map[string]string{"Retry-After": "1"},
			stats:  map[int]push.APIStats{nodeA: {ClusterErrors: 1}, nodeC: {}}, logHas: `"level":"warn"`},
		{name: "cluster failure: broadcast delivers locally", fail: true, conns: []conn{{nodeA, "a1", "dev:1"}, {nodeB, "b1", "dev:2"}},
			at: nodeA, req: apiReq{method: "POST", path: "/push/broadcast", body: "hello"},
			status: 200, has: `"warning":"delivered on this node only`, got: map[string][]string{"a1": hello},
			stats: map[int]push.APIStats{nodeA: {Broadcasts: 1, Delivered: 1, ClusterErrors: 1}, nodeB: {}}},
		{name: "cluster failure: get with local conns", fail: true, conns: []conn{{nodeA, "a1", "user:1"}},
			at: nodeA, req: apiReq{method: "GET", path: "/push/user:1"},
			status: 200, has: `"connected":true,"local":1,"nodes":[`},
		{name: "cluster failure: get without local conns", fail: true, conns: []conn{{nodeB, "b1", "user:1"}},
			at: nodeA, req: apiReq{method: "GET", path: "/push/user:1"},
			status: 503, has: `cluster registry unavailable`},
		{name: "get lists the nodes", conns: []conn{{nodeB, "b1", "user:1"}, {nodeC, "c1", "user:1"}},
			at: nodeA, req: apiReq{method: "GET", path: "/push/user:1"},
			status: 200, body: func(c *testCluster) string {
				return `{"client_id":"user:1","connected":true,"local":0,"nodes":` + c.nodeList(c.sortedNodes(nodeB, nodeC)...) + `}`
			}},
		{name: "get not connected anywhere", at: nodeA, req: apiReq{method: "GET", path: "/push/user:1"},
			status: 200, body: func(*testCluster) string { return `{"client_id":"user:1","connected":false,"local":0,"nodes":[]}` }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			for _, x := range tc.conns {
				c.nodes[x.node].connect(t, c.mc, x.name, x.id, false)
			}
			for i, id := range tc.stale {
				if err := c.mc.Node(c.name(i)).Register(context.Background(), id); err != nil {
					t.Fatal(err)
				}
			}
			if tc.fail {
				c.mc.SetFailure(errors.New("redis down"))
			}
			n := c.nodes[tc.at]
			r := do(t, n.url, tc.req)
			if r.status != tc.status {
				t.Errorf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if tc.body != nil {
				if want := tc.body(c); r.body != want {
					t.Errorf("answer\n got %s\nwant %s", r.body, want)
				}
			}
			if !strings.Contains(r.body, tc.has) {
				t.Errorf("answer %s does not contain %s", r.body, tc.has)
			}
			for k, v := range tc.header {
				if got := r.header.Get(k); got != v {
					t.Errorf("header %s: %q, want %q", k, got, v)
				}
			}
			checkConns(t, c.nodes, tc.got)
			for i, want := range tc.stats {
				if got := c.nodes[i].api.Stats(); got != want {
					t.Errorf("node %c stats\n got %+v\nwant %+v", 'A'+i, got, want)
				}
			}
			if log := n.log.String(); !strings.Contains(log, tc.logHas) {
				t.Errorf("log does not contain %s:\n%s", tc.logHas, log)
			}
		})
	}
}

// sortedCounts returns name, count pairs for the nodes, sorted by name, as
// encoding/json orders a map's keys.
func sortedCounts(c *testCluster, counts map[int]int) []any {
	var out []any
	for _, i := range c.sortedNodes(slices.Collect(maps.Keys(counts))...) {
		out = append(out, c.name(i), counts[i])
	}
	return out
}

// The rate limit applies once, at the node the API client called: forwarded
// requests pass the receiving node's limiter untouched.
func TestAPIClusterRateLimitOnce(t *testing.T) {
	mc := push.NewMemoryCluster(time.Minute, nil)
	a := newNode(t, mc, push.NewRateLimiter(1, 3, fixedClock))
	b := newNode(t, mc, push.NewRateLimiter(1, 1, fixedClock))
	b.connect(t, mc, "b1", "user:1", false)
	req := apiReq{method: "POST", path: "/push/user:1", body: "hello"}
	for i := range 3 {
		if r := do(t, a.url, req); r.status != 200 {
			t.Fatalf("push %d: %d %s", i, r.status, r.body)
		}
	}
	if r := do(t, a.url, req); r.status != 429 {
		t.Fatalf("push 4: %d %s, want 429 from the node called", r.status, r.body)
	}
	checkConns(t, []*apiNode{b}, map[string][]string{"b1": {"t:hello", "t:hello", "t:hello"}})
	if s := b.api.Stats(); s.RateLimited != 0 || s.ForwardsReceived != 3 {
		t.Errorf("node B stats %+v", s)
	}
}

// A node that does not answer in time counts as failed; the push answers
// within the forwarding bound.
func TestAPIForwardTimeout(t *testing.T) {
	mc := push.NewMemoryCluster(time.Minute, nil)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // runs before slow.Close
	ln := listen(t)
	reg := push.NewRegistry(0)
	api := push.NewAPI(push.APIConfig{
		Registry: reg, Cluster: mc.Node(ln.Addr().String()), Log: zerolog.Nop(),
		Client: &http.Client{Timeout: 50 * time.Millisecond},
	})
	serveAPI(t, ln, api)
	if err := mc.Node(slow.Listener.Addr().String()).Register(context.Background(), "user:1"); err != nil {
		t.Fatal(err)
	}
	r := do(t, "http://"+ln.Addr().String(), apiReq{method: "POST", path: "/push/user:1", body: "hello"})
	if r.status != 502 || !strings.Contains(r.body, slow.Listener.Addr().String()) {
		t.Fatalf("%d %s, want 502 naming the slow node", r.status, r.body)
	}
	if s := api.Stats(); s.ForwardErrors != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestAPISweepLoopStops(t *testing.T) {
	for _, limiter := range []*push.RateLimiter{nil, push.NewRateLimiter(1, 1, nil)} {
		api := push.NewAPI(push.APIConfig{Registry: push.NewRegistry(0), Limiter: limiter})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { api.SweepLoop(ctx); close(done) }()
		cancel()
		<-done
	}
}

// While the cluster registry is rebuilt after it lost its data, a push to an
// id found nowhere is a 503 "recovering" with Retry-After, not a 404; once
// every live node registered again, a 404 means "not connected" again.
func TestAPIClusterRecovering(t *testing.T) {
	mc := push.NewMemoryCluster(time.Minute, nil)
	a := newNode(t, mc, nil)
	b := newNode(t, mc, nil)
	b.connect(t, mc, "b1", "user:1", false)
	mc.Flush()
	ctx := context.Background()
	_ = mc.Node(a.addr).Alive(ctx) // A noticed first; B has not yet
	gen, _, _ := mc.Node(a.addr).Generation(ctx)
	_ = mc.Node(a.addr).MarkReady(ctx, gen)

	for _, path := range []string{"/push/user:1", "/push/nobody"} {
		r := do(t, a.url, apiReq{method: "POST", path: path, body: "hello"})
		if r.status != 503 || !strings.Contains(r.body, "recovering") || r.header.Get("Retry-After") != "1" {
			t.Errorf("POST %s during the rebuild: %d %s (Retry-After %q), want 503 recovering with Retry-After 1",
				path, r.status, r.body, r.header.Get("Retry-After"))
		}
	}
	r := do(t, a.url, apiReq{method: "GET", path: "/push/user:1"})
	if r.status != 503 || !strings.Contains(r.body, "recovering") {
		t.Errorf("GET /push/user:1 during the rebuild: %d %s, want 503 recovering", r.status, r.body)
	}
	if s := a.api.Stats(); s.Recovering != 3 || s.NotFound != 0 || s.ClusterErrors != 0 {
		t.Errorf("node A stats %+v, want 3 recovering answers, no 404 and no cluster error", s)
	}

	// B registers again and marks itself ready; past the grace period the
	// registry is whole: the device is reached, an unknown id is a 404.
	_ = mc.Node(b.addr).Alive(ctx)
	_ = mc.Node(b.addr).Register(ctx, "user:1")
	_ = mc.Node(b.addr).MarkReady(ctx, gen)
	if r := do(t, a.url, apiReq{method: "POST", path: "/push/user:1", body: "back"}); r.status != 200 {
		t.Errorf("POST /push/user:1 after B re-registered: %d %s, want 200", r.status, r.body)
	}
	checkConns(t, []*apiNode{b}, map[string][]string{"b1": {"t:back"}})
	deadline := time.Now().Add(2 * push.RecoveryGrace)
	for {
		r := do(t, a.url, apiReq{method: "POST", path: "/push/nobody", body: "x"})
		if r.status == 404 {
			break
		}
		if r.status != 503 || time.Now().After(deadline) {
			t.Fatalf("POST /push/nobody after the rebuild: %d %s, want 404 within %v", r.status, r.body, 2*push.RecoveryGrace)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
