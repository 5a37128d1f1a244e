package origin

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flipServer answers its health path with whatever status it is told to.
type flipServer struct {
	*httptest.Server
	status atomic.Int32
	hits   atomic.Int64
	host   atomic.Value
	delay  atomic.Int64
}

func newFlipServer(t *testing.T) *flipServer {
	f := &flipServer{}
	f.status.Store(200)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		f.host.Store(r.Host)
		if d := time.Duration(f.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		if r.URL.Path != "/healthz" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(int(f.status.Load()))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *flipServer) addr() string { return strings.TrimPrefix(f.URL, "http://") }

func TestHealthThresholds(t *testing.T) {
	f := newFlipServer(t)
	srv := newServer(f.addr(), 0, 1)
	h, err := NewHealthChecker("api", HealthConfig{Path: "/healthz", Healthy: 2, Unhealthy: 3, Timeout: time.Second}, NewServerSet([]*Server{srv}, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	steps := []struct {
		status int
		wantUp bool
	}{
		{200, true},
		{500, true}, // 1 failure
		{500, true}, // 2
		{200, true}, // the run of failures is broken
		{500, true},
		{503, true},
		{500, false}, // 3 in a row: down
		{404, false}, // still failing
		{200, false}, // 1 pass
		{500, false}, // the run of passes is broken
		{200, false},
		{204, true}, // 2 passes in a row: up
		{302, true}, // 3xx passes
	}
	for i, st := range steps {
		f.status.Store(int32(st.status))
		h.CheckOnce()
		if srv.Up() != st.wantUp {
			t.Fatalf("step %d (status %d): up = %v, want %v", i, st.status, srv.Up(), st.wantUp)
		}
		if srv.Available(t0) != st.wantUp {
			t.Fatalf("step %d: Available disagrees with Up", i)
		}
	}
	if f.hits.Load() != int64(len(steps)) {
		t.Fatalf("%d checks reached the server, want %d", f.hits.Load(), len(steps))
	}
}

func TestHealthFailures(t *testing.T) {
	// A port nobody listens on: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()
	slow := newFlipServer(t)
	slow.delay.Store(int64(150 * time.Millisecond))
	tests := []struct {
		name string
		addr string
	}{
		{"connection refused", refused},
		{"slower than the timeout", slow.addr()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(tc.addr, 0, 1)
			h, err := NewHealthChecker("api", HealthConfig{Path: "/healthz", Unhealthy: 1, Timeout: 50 * time.Millisecond}, NewServerSet([]*Server{srv}, 1))
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			h.CheckOnce()
			if srv.Up() {
				t.Fatal("server still up")
			}
		})
	}
}

func TestHealthHostHeaderAndPathCheck(t *testing.T) {
	f := newFlipServer(t)
	srv := newServer(f.addr(), 0, 1)
	h, err := NewHealthChecker("api", HealthConfig{Path: "/healthz", Host: "api.example"}, NewServerSet([]*Server{srv}, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.CheckOnce()
	if got, _ := f.host.Load().(string); got != "api.example" {
		t.Fatalf("Host sent %q, want api.example", got)
	}
	if _, err := NewHealthChecker("api", HealthConfig{Path: "healthz"}, NewServerSet(nil, 0)); err == nil {
		t.Fatal("a path without / accepted")
	}
}

// The checker's own goroutine takes a failing server down, brings it back when it
// recovers, and the balancer routes around it meanwhile.
func TestHealthBackgroundAndBalancer(t *testing.T) {
	bad, good := newFlipServer(t), newFlipServer(t)
	s := NewServerSet([]*Server{newServer(bad.addr(), 0, 1), newServer(good.addr(), 1, 1)}, 1)
	h, err := NewHealthChecker("api", HealthConfig{Path: "/healthz", Interval: 5 * time.Millisecond, Healthy: 1, Unhealthy: 2}, s)
	if err != nil {
		t.Fatal(err)
	}
	h.Start()
	defer h.Close()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	bad.status.Store(500)
	waitFor("server marked down", func() bool { return !s.List[0].Up() })
	b := NewBalancer(LeastOutstanding, s)
	rnd := NewRand(9)
	for range 100 {
		if b.Pick(0, rnd.Uint32(), t0) != s.List[1] {
			t.Fatal("balancer picked the server the health check took down")
		}
	}
	bad.status.Store(200)
	waitFor("server back up", func() bool { return s.List[0].Up() })
	if !s.List[1].Up() {
		t.Fatal("the healthy server went down")
	}
}
