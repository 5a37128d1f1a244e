package push_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"gozer/gateway/push"
)

// testConn is a push.Conn that records what it was pushed, as "t:msg" or
// "b:msg"; a closed one refuses.
type testConn struct {
	mu     sync.Mutex
	closed bool
	got    []string
}

func (c *testConn) Push(msg []byte, binary bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("connection closed")
	}
	kind := "t:"
	if binary {
		kind = "b:"
	}
	c.got = append(c.got, kind+string(msg))
	return nil
}

func (c *testConn) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// syncBuffer is a log sink for the handler goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// apiNode is one push API on its own fasthttp server on a loopback listener;
// its cluster node name is its listener address.
type apiNode struct {
	addr  string
	url   string
	reg   *push.Registry
	api   *push.API
	log   *syncBuffer
	conns map[string]*testConn
}

// listen returns a loopback listener.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// serveAPI serves api on ln until the test ends, with the server settings the
// API asks for (as the gateway's admin listener has them).
func serveAPI(t testing.TB, ln net.Listener, api *push.API) {
	t.Helper()
	srv := &fasthttp.Server{
		Handler:                      api.ServeFastHTTP,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		ReadTimeout:                  5 * time.Second,
		Logger:                       testLogger{t},
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.ShutdownWithContext(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

// testLogger logs the server's own lines to the test.
type testLogger struct{ t testing.TB }

func (l testLogger) Printf(format string, args ...any) { l.t.Logf("fasthttp: "+format, args...) }

// newNode starts a push API; cluster may be nil (single node), limiter too.
func newNode(t *testing.T, mc *push.MemoryCluster, limiter *push.RateLimiter) *apiNode {
	t.Helper()
	ln := listen(t)
	n := &apiNode{
		addr: ln.Addr().String(), reg: push.NewRegistry(0), log: new(syncBuffer),
		conns: make(map[string]*testConn),
	}
	cfg := push.APIConfig{
		Registry: n.reg, Limiter: limiter, MaxMessage: 1024,
		Log: zerolog.New(n.log).Level(zerolog.DebugLevel),
	}
	if mc != nil {
		cfg.Cluster = mc.Node(n.addr)
		if err := cfg.Cluster.Alive(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	n.api = push.NewAPI(cfg)
	serveAPI(t, ln, n.api)
	n.url = "http://" + n.addr
	return n
}

// connect adds a connection named name for id (registered in the cluster, as
// the registrar would); closed makes it refuse messages.
func (n *apiNode) connect(t *testing.T, mc *push.MemoryCluster, name, id string, closed bool) {
	t.Helper()
	c := &testConn{closed: closed}
	n.conns[name] = c
	first, err := n.reg.Add(id, c)
	if err != nil {
		t.Fatal(err)
	}
	if first && mc != nil {
		if err := mc.Node(n.addr).Register(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
}

type apiReq struct {
	method, path string
	ct           string
	forwarded    bool // with push.ForwardedHeader
	body         string
	chunked      bool // no Content-Length
}

type apiResp struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, base string, q apiReq) apiResp {
	t.Helper()
	var body io.Reader = strings.NewReader(q.body)
	if q.chunked {
		body = io.NopCloser(body)
	}
	req, err := http.NewRequest(q.method, base+q.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if q.chunked {
		req.ContentLength = -1
	}
	if q.ct != "" {
		req.Header.Set("Content-Type", q.ct)
	}
	if q.forwarded {
		req.Header.Set(push.ForwardedHeader, "test")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", q.method, q.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return apiResp{status: resp.StatusCode, header: resp.Header, body: strings.TrimSuffix(string(b), "\n")}
}

// fixedClock is a rate limiter clock that does not move.
func fixedClock() int64 { return int64(time.Hour) }

// checkConns compares what every connection of the nodes got with want
// (connection name → messages); a connection not in want must have got
// nothing.
func checkConns(t *testing.T, nodes []*apiNode, want map[string][]string) {
	t.Helper()
	for _, n := range nodes {
		for name, c := range n.conns {
			if got := c.messages(); !slices.Equal(got, want[name]) {
				t.Errorf("conn %s got %q, want %q", name, got, want[name])
			}
		}
	}
}

func TestAPI(t *testing.T) {
	hello := []string{"t:hello"}
	tests := []struct {
		name     string
		limit    float64 // per-client rate (fixed clock, burst 1); 0: no limiter
		prior    int     // the same request sent before, each must answer 200
		req      apiReq
		status   int
		body     string // exact answer; "" = not checked
		contains string // part of the answer
		header   map[string]string
		got      map[string][]string
		stats    push.APIStats
		log      string // part of the log
	}{
		{name: "push reaches both conns of an id", req: apiReq{method: "POST", path: "/push/user:a", body: "hello"},
			status: 200, body: `{"reached":2,"nodes":["local"]}`, got: map[string][]string{"a1": hello, "a2": hello},
			stats: push.APIStats{Pushed: 1, Delivered: 2}},
		{name: "a closed conn is not counted", req: apiReq{method: "POST", path: "/push/user:c", body: "hello"},
			status: 200, body: `{"reached":1,"nodes":["local"]}`, got: map[string][]string{"c1": hello},
			stats: push.APIStats{Pushed: 1, Delivered: 1}},
		{name: "not connected", req: apiReq{method: "POST", path: "/push/user:nobody", body: "hello"},
			status: 404, body: `{"reached":0,"error":"client not connected"}`,
			stats: push.APIStats{NotFound: 1}, log: `"level":"debug","status":404`},
		{name: "only closed conns is not connected", req: apiReq{method: "POST", path: "/push/user:x", body: "hello"},
			status: 404, body: `{"reached":0,"error":"client not connected"}`, stats: push.APIStats{NotFound: 1}},
		{name: "bad id", req: apiReq{method: "POST", path: "/push/user%20a", body: "hello"},
			status: 400, contains: `"error":"invalid client id`, log: `"status":400`},
		{name: "empty id", req: apiReq{method: "POST", path: "/push/", body: "hello"},
			status: 400, contains: `invalid client id`},
		{name: "id with a slash", req: apiReq{method: "GET", path: "/push/user/a"},
			status: 400, contains: `invalid client id`},
		{name: "id too long", req: apiReq{method: "POST", path: "/push/" + strings.Repeat("a", push.MaxClientIDLen+1), body: "hello"},
			status: 400, contains: `invalid client id`},
		{name: "exactly the limit", req: apiReq{method: "POST", path: "/push/user:b", body: strings.Repeat("x", 1024)},
			status: 200, body: `{"reached":1,"nodes":["local"]}`, got: map[string][]string{"b1": {"t:" + strings.Repeat("x", 1024)}},
			stats: push.APIStats{Pushed: 1, Delivered: 1}},
		{name: "too large by content-length", req: apiReq{method: "POST", path: "/push/user:b", body: strings.Repeat("x", 1025)},
			status: 413, body: `{"error":"message too large: 1025 bytes, the limit is 1024"}`,
			stats: push.APIStats{TooLarge: 1}, log: `"status":413`},
		{name: "too large chunked", req: apiReq{method: "POST", path: "/push/user:b", body: strings.Repeat("x", 3000), chunked: true},
			status: 413, body: `{"error":"message too large: over the limit of 1024 bytes"}`, stats: push.APIStats{TooLarge: 1}},
		{name: "chunked under the limit", req: apiReq{method: "POST", path: "/push/user:b", body: "hello", chunked: true},
			status: 200, got: map[string][]string{"b1": hello}, stats: push.APIStats{Pushed: 1, Delivered: 1}},
		{name: "empty message", req: apiReq{method: "POST", path: "/push/user:b"},
			status: 200, got: map[string][]string{"b1": {"t:"}}, stats: push.APIStats{Pushed: 1, Delivered: 1}},
		{name: "rate limited", limit: 1, prior: 1, req: apiReq{method: "POST", path: "/push/user:b", body: "hello"},
			status: 429, contains: `"error":"rate limited`, header: map[string]string{"Retry-After": "1"},
			got: map[string][]string{"b1": hello}, stats: push.APIStats{Pushed: 1, Delivered: 1, RateLimited: 1},
			log: `"level":"debug","status":429`},
		{name: "retry-after rounds up", limit: 0.4, prior: 1, req: apiReq{method: "POST", path: "/push/user:b", body: "hello"},
			status: 429, header: map[string]string{"Retry-After": "3"},
			got: map[string][]string{"b1": hello}, stats: push.APIStats{Pushed: 1, Delivered: 1, RateLimited: 1}},
		{name: "single node ignores the forwarded header for the limit", limit: 1, prior: 1,
			req:    apiReq{method: "POST", path: "/push/user:b", body: "hello", forwarded: true},
			status: 429, got: map[string][]string{"b1": hello}, stats: push.APIStats{Pushed: 1, Delivered: 1, RateLimited: 1}},
		{name: "get is not rate limited", limit: 1, prior: 2, req: apiReq{method: "GET", path: "/push/user:a"},
			status: 200, contains: `"connected":true`},
		{name: "octet-stream is binary", req: apiReq{method: "POST", path: "/push/user:b", ct: "application/octet-stream", body: "\xff\x00"},
			status: 200, got: map[string][]string{"b1": {"b:\xff\x00"}}, stats: push.APIStats{Pushed: 1, Delivered: 1}},
		{name: "octet-stream with params and case", req: apiReq{method: "POST", path: "/push/user:b", ct: "Application/Octet-Stream; charset=x", body: "bin"},
			status: 200, got: map[string][]string{"b1": {"b:bin"}}, stats: push.APIStats{Pushed: 1, Delivered: 1}},
		{name: "json is text", req: apiReq{method: "POST", path: "/push/user:b", ct: "application/json", body: `{"a":1}`},
			status: 200, got: map[string][]string{"b1": {`t:{"a":1}`}}, stats: push.APIStats{Pushed: 1, Delivered: 1}},
		{name: "unparsable content type is text", req: apiReq{method: "POST", path: "/push/user:b", ct: "application/octet-stream/x", body: "hello"},
			status: 200, got: map[string][]string{"b1": hello}, stats: push.APIStats{Pushed: 1, Delivered: 1}},
		{name: "text must be utf-8", req: apiReq{method: "POST", path: "/push/user:b", ct: "text/plain", body: "\xff"},
			status: 400, contains: `not valid utf-8`},
		{name: "get connected", req: apiReq{method: "GET", path: "/push/user:a"},
			status: 200, body: `{"client_id":"user:a","connected":true,"local":2,"nodes":["local"]}`},
		{name: "get not connected", req: apiReq{method: "GET", path: "/push/user:nobody"},
			status: 200, body: `{"client_id":"user:nobody","connected":false,"local":0,"nodes":[]}`},
		{name: "broadcast with prefix", req: apiReq{method: "POST", path: "/push/broadcast?prefix=dev:", body: "hello"},
			status: 200, body: `{"reached":2,"nodes":{"local":2}}`, got: map[string][]string{"d1": hello, "d2": hello},
			stats: push.APIStats{Broadcasts: 1, Delivered: 2}},
		{name: "broadcast to all", req: apiReq{method: "POST", path: "/push/broadcast", ct: "application/octet-stream", body: "all"},
			status: 200, body: `{"reached":7,"nodes":{"local":7}}`,
			got: map[string][]string{
				"a1": {"b:all"}, "a2": {"b:all"}, "b1": {"b:all"}, "c1": {"b:all"},
				"d1": {"b:all"}, "d2": {"b:all"}, "bc": {"b:all"},
			},
			stats: push.APIStats{Broadcasts: 1, Delivered: 7}},
		{name: "broadcast reaching nobody", req: apiReq{method: "POST", path: "/push/broadcast?prefix=zzz", body: "x"},
			status: 200, body: `{"reached":0,"nodes":{"local":0}}`, stats: push.APIStats{Broadcasts: 1}},
		{name: "the broadcast route wins over the id", req: apiReq{method: "POST", path: "/push/broadcast?prefix=user:b", body: "hello"},
			status: 200, body: `{"reached":1,"nodes":{"local":1}}`, got: map[string][]string{"b1": hello},
			stats: push.APIStats{Broadcasts: 1, Delivered: 1}},
		{name: "broadcast bad prefix", req: apiReq{method: "POST", path: "/push/broadcast?prefix=a%20b", body: "x"},
			status: 400, contains: `invalid prefix`},
		{name: "broadcast too large", req: apiReq{method: "POST", path: "/push/broadcast", body: strings.Repeat("x", 2000)},
			status: 413, stats: push.APIStats{TooLarge: 1}},
		{name: "broadcast is not rate limited", limit: 1, prior: 2, req: apiReq{method: "POST", path: "/push/broadcast?prefix=user:b", body: "hello"},
			status: 200, got: map[string][]string{"b1": {"t:hello", "t:hello", "t:hello"}},
			stats: push.APIStats{Broadcasts: 3, Delivered: 3}},
		{name: "put", req: apiReq{method: "PUT", path: "/push/user:a", body: "hello"},
			status: 405, contains: `not allowed`, header: map[string]string{"Allow": "GET, POST"}, log: `"status":405`},
		{name: "delete", req: apiReq{method: "DELETE", path: "/push/user:a"},
			status: 405, header: map[string]string{"Allow": "GET, POST"}},
		{name: "get broadcast", req: apiReq{method: "GET", path: "/push/broadcast"},
			status: 405, header: map[string]string{"Allow": "POST"}},
		{name: "outside /push/", req: apiReq{method: "GET", path: "/other"},
			status: 404, contains: `"error":"not found`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var limiter *push.RateLimiter
			if tc.limit > 0 {
				limiter = push.NewRateLimiter(tc.limit, 1, fixedClock)
			}
			n := newNode(t, nil, limiter)
			for _, c := range []struct {
				name, id string
				closed   bool
			}{
				{"a1", "user:a", false}, {"a2", "user:a", false}, {"b1", "user:b", false},
				{"c0", "user:c", true}, {"c1", "user:c", false}, {"x0", "user:x", true},
				{"d1", "dev:1", false}, {"d2", "dev:2", false}, {"bc", "broadcast", false},
			} {
				n.connect(t, nil, c.name, c.id, c.closed)
			}
			for i := range tc.prior {
				if r := do(t, n.url, tc.req); r.status != 200 {
					t.Fatalf("prior request %d: %d %s", i, r.status, r.body)
				}
			}
			r := do(t, n.url, tc.req)
			if r.status != tc.status {
				t.Errorf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if tc.body != "" && r.body != tc.body {
				t.Errorf("answer\n got %s\nwant %s", r.body, tc.body)
			}
			if !strings.Contains(r.body, tc.contains) {
				t.Errorf("answer %s does not contain %s", r.body, tc.contains)
			}
			for k, v := range tc.header {
				if got := r.header.Get(k); got != v {
					t.Errorf("header %s: %q, want %q", k, got, v)
				}
			}
			checkConns(t, []*apiNode{n}, tc.got)
			if got := n.api.Stats(); got != tc.stats {
				t.Errorf("stats\n got %+v\nwant %+v", got, tc.stats)
			}
			if log := n.log.String(); !strings.Contains(log, tc.log) {
				t.Errorf("log does not contain %s:\n%s", tc.log, log)
			}
		})
	}
}

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

// keepConn is a push.Conn that keeps the messages it is given without
// copying them, as the gateway's connections may until they are written.
type keepConn struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (c *keepConn) Push(msg []byte, _ bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, msg)
	return nil
}

// rawExchange writes req on a new connection to addr and returns everything
// the server sends until it closes the connection or goes quiet for 300 ms.
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String()
		}
	}
}

// The message a connection keeps is its own copy: the next requests on the
// same keep-alive connection, which fasthttp reads into the same buffers, do
// not change it.
func TestAPIMessageIsACopy(t *testing.T) {
	n := newNode(t, nil, nil)
	kc := new(keepConn)
	if _, err := n.reg.Add("user:k", kc); err != nil {
		t.Fatal(err)
	}
	want := []string{"first message", "2nd", "third message, longer than the others"}
	var req strings.Builder
	for _, m := range want {
		fmt.Fprintf(&req, "POST /push/user:k HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(m), m)
	}
	if got := strings.Count(rawExchange(t, n.addr, req.String()), "HTTP/1.1 200 OK"); got != len(want) {
		t.Fatalf("%d answers 200, want %d", got, len(want))
	}
	kc.mu.Lock()
	defer kc.mu.Unlock()
	for i, m := range kc.msgs {
		if string(m) != want[i] {
			t.Errorf("message %d is now %q, want %q", i, m, want[i])
		}
	}
}

// A body the API answered without reading (405, 400, GET with a body) is read
// and dropped: the next request on the connection is parsed from its start.
func TestAPIUnreadBodyKeepsConnection(t *testing.T) {
	n := newNode(t, nil, nil)
	n.connect(t, nil, "a1", "user:a", false)
	req := "PUT /push/user:a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nPOST /x y\r\n" +
		"POST /push/bad%20id HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
		"GET /push/user:a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /push/user:a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
	out := rawExchange(t, n.addr, req)
	for _, want := range []string{"HTTP/1.1 405", "HTTP/1.1 400", `"connected":true`, `{"reached":1,"nodes":["local"]}`} {
		if !strings.Contains(out, want) {
			t.Errorf("answers lack %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Connection: close") {
		t.Errorf("a connection closed:\n%s", out)
	}
	checkConns(t, []*apiNode{n}, map[string][]string{"a1": {"t:hello"}})
}

// A body far over the limit still gets its 413 (not a reset connection),
// whatever its framing, and the connection closes after it.
func TestAPITooLargeBody(t *testing.T) {
	n := newNode(t, nil, nil)
	n.connect(t, nil, "a1", "user:a", false)
	big := strings.Repeat("x", 4<<20)
	for _, q := range []apiReq{
		{method: "POST", path: "/push/user:a", body: big},
		{method: "POST", path: "/push/user:a", body: big, chunked: true},
	} {
		r := do(t, n.url, q)
		if r.status != 413 || !strings.Contains(r.body, "message too large") {
			t.Errorf("chunked %v: %d %s, want 413", q.chunked, r.status, r.body)
		}
		if c := r.header.Get("Connection"); c != "close" {
			t.Errorf("chunked %v: Connection %q, want close", q.chunked, c)
		}
	}
	if s := n.api.Stats(); s.TooLarge != 2 || s.Delivered != 0 {
		t.Errorf("stats %+v", s)
	}
}

// On a server that reads bodies before calling the handler, the API works
// the same up to the server's own limit.
func TestAPIBufferingServer(t *testing.T) {
	reg := push.NewRegistry(0)
	c := new(testConn)
	if _, err := reg.Add("user:a", c); err != nil {
		t.Fatal(err)
	}
	api := push.NewAPI(push.APIConfig{Registry: reg, MaxMessage: 1024, Log: zerolog.Nop()})
	ln := listen(t)
	srv := &fasthttp.Server{Handler: api.ServeFastHTTP, Logger: testLogger{t}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	url := "http://" + ln.Addr().String()
	for _, tc := range []struct {
		req    apiReq
		status int
	}{
		{apiReq{method: "POST", path: "/push/user:a", body: "hello"}, 200},
		{apiReq{method: "POST", path: "/push/user:a", body: "chunked", chunked: true}, 200},
		{apiReq{method: "POST", path: "/push/user:a", body: strings.Repeat("x", 1025)}, 413},
		{apiReq{method: "POST", path: "/push/user:a", body: strings.Repeat("x", 1025), chunked: true}, 413},
	} {
		if r := do(t, url, tc.req); r.status != tc.status {
			t.Errorf("%+v: %d %s, want %d", tc.req.chunked, r.status, r.body, tc.status)
		}
	}
	if got, want := c.messages(), []string{"t:hello", "t:chunked"}; !slices.Equal(got, want) {
		t.Errorf("conn got %q, want %q", got, want)
	}
}

// discardConn is a push.Conn that takes every message and drops it.
type discardConn struct{ n atomic.Int64 }

func (c *discardConn) Push([]byte, bool) error { c.n.Add(1); return nil }

// BenchmarkAPIPush is POST /push/{id} of 64 bytes to one connection, over a
// loopback TCP connection to a fasthttp server, from fasthttp's client (which
// allocates nothing per request). allocs/op is the server's: the message's
// copy, plus with a rate limiter the id's string it keeps.
func BenchmarkAPIPush(b *testing.B) {
	for _, bc := range []struct {
		name    string
		limiter bool
	}{{"nolimit", false}, {"ratelimit", true}} {
		b.Run(bc.name, func(b *testing.B) {
			reg := push.NewRegistry(0)
			conn := new(discardConn)
			if _, err := reg.Add("user:1", conn); err != nil {
				b.Fatal(err)
			}
			cfg := push.APIConfig{Registry: reg, Log: zerolog.Nop()}
			if bc.limiter {
				cfg.Limiter = push.NewRateLimiter(1e9, 1e9, nil)
			}
			ln := listen(b)
			serveAPI(b, ln, push.NewAPI(cfg))
			c := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 1}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + ln.Addr().String() + "/push/user:1")
			req.Header.SetMethod("POST")
			req.Header.SetContentType("text/plain")
			req.SetBodyString(strings.Repeat("m", 64))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					b.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Body())
				}
			}
			if got := conn.n.Load(); got < int64(b.N) {
				b.Fatalf("%d messages delivered of %d", got, b.N)
			}
		})
	}
}
