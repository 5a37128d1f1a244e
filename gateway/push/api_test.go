package push_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"gozer/gateway/internal/syncbuf"
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

// apiNode is one push API on its own fasthttp server on a loopback listener;
// its cluster node name is its listener address.
type apiNode struct {
	addr   string
	url    string
	reg    *push.Registry
	topics *push.Topics
	api    *push.API
	log    *syncbuf.Buffer
	conns  map[string]*testConn
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
		// Shutdown closes only the listeners Serve has taken: when the test
		// ended before Serve's goroutine ran (a node no request reached),
		// Serve would accept forever. Closing ours ends it either way.
		_ = ln.Close()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("serve did not return within 10s of the shutdown")
		}
	})
}

// testLogger logs the server's own lines to the test.
type testLogger struct{ t testing.TB }

func (l testLogger) Printf(format string, args ...any) { l.t.Logf("fasthttp: "+format, args...) }

// testClusterSecret is the cluster secret of the test nodes; testSigner signs
// the forwards the tests send as node "test".
var (
	testClusterSecret = []byte("test-cluster-secret-0123")
	testSigner        = push.NewForwardSigner(testClusterSecret, "test")
)

// newNode starts a push API; cluster may be nil (single node), limiter too.
func newNode(t *testing.T, mc *push.MemoryCluster, limiter *push.RateLimiter) *apiNode {
	t.Helper()
	ln := listen(t)
	n := &apiNode{
		addr: ln.Addr().String(), reg: push.NewRegistry(0), topics: push.NewTopics(0, nil), log: new(syncbuf.Buffer),
		conns: make(map[string]*testConn),
	}
	cfg := push.APIConfig{
		Registry: n.reg, Topics: n.topics, Limiter: limiter, MaxMessage: 1024,
		Log:           zerolog.New(n.log).Level(zerolog.DebugLevel),
		ClusterSecret: testClusterSecret,
	}
	if mc != nil {
		cfg.Cluster = mc.Node(n.addr)
		// As the registrar does: in the node set, and ready in the generation.
		ctx := context.Background()
		if err := cfg.Cluster.Alive(ctx); err != nil {
			t.Fatal(err)
		}
		gen, _, err := cfg.Cluster.Generation(ctx)
		if err == nil {
			err = cfg.Cluster.MarkReady(ctx, gen)
		}
		if err != nil {
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
	close  bool // the answer closed the connection (net/http takes Connection: close out of the header)
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
		// As a real peer signs it (the header alone is refused: forward_auth_test.go).
		for _, h := range testSigner.Sign(time.Now(), q.method, req.URL.RequestURI(), q.ct, []byte(q.body)) {
			req.Header.Set(h[0], h[1])
		}
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
	return apiResp{status: resp.StatusCode, header: resp.Header, close: resp.Close, body: strings.TrimSuffix(string(b), "\n")}
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
