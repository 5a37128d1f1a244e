package test

// Helpers of the per-origin isolation tests (isolation_*_test.go): an origin that
// misbehaves for every path on command, GET /admin/origins, and a client call that
// returns what a user sees (status, cause, attempts, who answered, how long it took).

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeMode is what a fakeOrigin does with every request except GET /healthz.
type fakeMode int32

const (
	fakeServe     fakeMode = iota // 200 "hello from NAME"
	fakeFail                      // 503 Service Unavailable
	fakeReset                     // reads the request, then closes with a TCP RST
	fakeBlackHole                 // reads the request and its body, never answers
)

func (m fakeMode) String() string {
	return [...]string{"serve", "fail 503", "reset", "black hole"}[m]
}

// fakeOrigin is a real HTTP/1.1 server on a loopback port of the test process whose
// behaviour for all paths can be switched while it runs ("this server now fails
// everything"), where demo-origin misbehaves per path. Every response carries
// X-Origin-Name. It counts the requests that reached it (its attempts) and the
// health checks it answered, and remembers each X-Test-Id it saw.
type fakeOrigin struct {
	Name, Addr string

	mode     atomic.Int32
	healthOK atomic.Bool

	attempts   atomic.Int64 // requests other than /healthz that reached the handler
	hanging    atomic.Int64 // requests the black hole holds right now
	healthPass atomic.Int64 // /healthz answered 200
	healthFail atomic.Int64 // /healthz answered 500

	mu   sync.Mutex
	byID map[string]fakeSeen

	stop chan struct{}
}

// fakeSeen is what a fakeOrigin received under one X-Test-Id.
type fakeSeen struct {
	Requests  int
	Method    string
	BodyBytes int64 // of the last such request, as read to its end
}

// startFakeOrigin listens on a free loopback port in mode; /healthz answers 200
// until setHealthy(false). It is closed at cleanup.
func startFakeOrigin(t testing.TB, name string, mode fakeMode) *fakeOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeOrigin{Name: name, Addr: ln.Addr().String(), byID: map[string]fakeSeen{}, stop: make(chan struct{})}
	f.mode.Store(int32(mode))
	f.healthOK.Store(true)
	srv := &http.Server{Handler: f, ReadHeaderTimeout: time.Minute, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		close(f.stop) // release the black hole's requests
		_ = srv.Close()
	})
	return f
}

func (f *fakeOrigin) setMode(m fakeMode) { f.mode.Store(int32(m)) }
func (f *fakeOrigin) setHealthy(ok bool) { f.healthOK.Store(ok) }
func (f *fakeOrigin) count() int64       { return f.attempts.Load() }
func (f *fakeOrigin) healthChecks() [2]int64 {
	return [2]int64{f.healthPass.Load(), f.healthFail.Load()}
}

// seenID is what arrived under X-Test-Id: id (zero when nothing did).
func (f *fakeOrigin) seenID(id string) fakeSeen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byID[id]
}

func (f *fakeOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		if f.healthOK.Load() {
			f.healthPass.Add(1)
			w.WriteHeader(http.StatusOK)
			return
		}
		f.healthFail.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	f.attempts.Add(1)
	n, _ := io.Copy(io.Discard, r.Body)
	if id := r.Header.Get("X-Test-Id"); id != "" {
		f.mu.Lock()
		s := f.byID[id]
		s.Requests++
		s.Method, s.BodyBytes = r.Method, n
		f.byID[id] = s
		f.mu.Unlock()
	}
	w.Header().Set("X-Origin-Name", f.Name)
	switch fakeMode(f.mode.Load()) {
	case fakeFail:
		http.Error(w, "503 from "+f.Name, http.StatusServiceUnavailable)
	case fakeReset:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST
		}
		conn.Close()
	case fakeBlackHole:
		f.hanging.Add(1)
		defer f.hanging.Add(-1)
		select {
		case <-r.Context().Done(): // the gateway gave up on this connection
		case <-f.stop:
		}
	default:
		fmt.Fprintf(w, "hello from %s\n", f.Name)
	}
}

// adminServer and adminOrigin are one origin of GET /admin/origins.
type adminServer struct {
	Addr        string `json:"addr"`
	Weight      int    `json:"weight"`
	Outstanding int64  `json:"outstanding"`
	Available   bool   `json:"available"`
	Up          bool   `json:"up"`
	Ejected     bool   `json:"ejected"`
	Connections int64  `json:"connections"`
	Opened      int64  `json:"connections_opened_total"`
}

type adminOrigin struct {
	Name     string           `json:"name"`
	Fallback string           `json:"fallback"`
	Breaker  adminBreaker     `json:"breaker"`
	InFlight int64            `json:"in_flight"`
	Refused  int64            `json:"refused_concurrency_total"`
	Servers  []adminServer    `json:"servers"`
	Requests map[string]int64 `json:"requests_by_cause"`
}

type adminBreaker struct {
	State    string `json:"state"` // closed, open, half_open
	Refusing bool   `json:"refusing"`
	Opens    int64  `json:"opens_total"`
}

// server is the entry of addr (zero and false when it is not listed).
func (o adminOrigin) server(addr string) (adminServer, bool) {
	for _, s := range o.Servers {
		if s.Addr == addr {
			return s, true
		}
	}
	return adminServer{}, false
}

// adminOrigin is origin name as GET http://ADMIN/admin/origins shows it now.
func (g *gozer) adminOrigin(t testing.TB, name string) adminOrigin {
	t.Helper()
	resp, err := g.adminClient.Get(g.adminURL("/admin/origins"))
	if err != nil {
		t.Fatalf("GET /admin/origins: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/origins: status %d: %s", resp.StatusCode, tail(string(body), 500))
	}
	var all []adminOrigin
	if err := json.Unmarshal(body, &all); err != nil {
		t.Fatalf("GET /admin/origins is not a JSON list of origins (%v): %s", err, tail(string(body), 500))
	}
	for _, o := range all {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("GET /admin/origins does not list origin %q: %s", name, tail(string(body), 1000))
	return adminOrigin{}
}

// clientReply is what a client saw of one request through Gozer.
type clientReply struct {
	Status   int
	Cause    string // X-Gozer-Status
	Attempts int    // X-Gozer-Attempts (0 when absent)
	From     string // X-Origin-Name: which origin server answered
	ID       string // X-Request-Id
	Body     string
	Took     time.Duration
	Err      error // transport error: no response at all
}

func (r clientReply) String() string {
	if r.Err != nil {
		return fmt.Sprintf("error after %v: %v", r.Took.Round(time.Millisecond), r.Err)
	}
	return fmt.Sprintf("%d %s attempts=%d from=%q in %v body=%q", r.Status, r.Cause, r.Attempts,
		r.From, r.Took.Round(time.Millisecond), tail(r.Body, 120))
}

// doRequest sends method url with body (nil: none) and header lines "Name: value".
func doRequest(c *http.Client, method, url string, body []byte, headers ...string) clientReply {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return clientReply{Err: err}
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return clientReply{Err: err, Took: time.Since(start)}
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := clientReply{
		Status: resp.StatusCode, Cause: resp.Header.Get("X-Gozer-Status"),
		From: resp.Header.Get("X-Origin-Name"), ID: resp.Header.Get("X-Request-Id"),
		Body: string(b), Took: time.Since(start), Err: err,
	}
	r.Attempts, _ = strconv.Atoi(resp.Header.Get("X-Gozer-Attempts"))
	return r
}

// doGet is doRequest with GET and no body.
func doGet(c *http.Client, url string, headers ...string) clientReply {
	return doRequest(c, "GET", url, nil, headers...)
}

// yamlMap renders a flow mapping for a nested origin key: {a: 1, b: 2s}, keys sorted.
func yamlMap(kv map[string]string) string {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + kv[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// weightsOf renders origins.NAME.weights for fake origins: {"127.0.0.1:P": w, ...}.
func weightsOf(ws map[*fakeOrigin]int) string {
	kv := make(map[string]string, len(ws))
	for f, w := range ws {
		kv[strconv.Quote(f.Addr)] = strconv.Itoa(w)
	}
	return yamlMap(kv)
}

// fakeAddrs lists the fake origins' addresses, for origins.NAME.servers.
func fakeAddrs(fs ...*fakeOrigin) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Addr
	}
	return out
}

// isolationClient is a client of its own with room for many parallel connections.
func isolationClient(t testing.TB, timeout time.Duration) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}
