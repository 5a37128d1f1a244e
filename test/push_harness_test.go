package test

// Helpers of the push tests (push_*_test.go): a gozer with the shipped push auth
// filter, tokens made by `gozer push-token`, websocket devices (gorilla), raw
// handshakes, the push API and GET /admin/push on the admin listener.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// pushSecret is the push.token_secret of the push tests.
const pushSecret = "test-secret-0123456789"

// clusterSecret is the push.cluster.secret of the push cluster tests.
const clusterSecret = "test-cluster-secret-0123456789"

// pushConfig is a config with the SHIPPED push auth filter
// (scripts/inbound/05_push_auth.lua, copied into a scripts directory of the test's
// own), push.token_secret set and the push.* keys of push added. Origins and
// routes: a catch-all route to an origin nobody listens on (push requests never
// reach it).
func pushConfig(t testing.TB, push map[string]string) config {
	t.Helper()
	d := newScriptDir(t)
	src, err := os.ReadFile(filepath.Join(moduleRoot, "scripts/inbound/05_push_auth.lua"))
	if err != nil {
		t.Fatal(err)
	}
	d.write(t, "inbound", "05_push_auth.lua", string(src))
	cfg := oneOrigin(nil, closedPort(t))
	cfg.Filters = &filtersConfig{Dir: string(d), Budget: "1s"}
	cfg.Push = map[string]string{"token_secret": fmt.Sprintf("%q", pushSecret)}
	for k, v := range push {
		cfg.Push[k] = v
	}
	return cfg
}

// pushGozer starts gozer with pushConfig(push).
func pushGozer(t testing.TB, push map[string]string) *gozer {
	t.Helper()
	return startGozer(t, pushConfig(t, push))
}

// pushToken runs `gozer push-token -config g.ConfigPath -client id -ttl ttl` and
// returns the token it printed.
func (g *gozer) pushToken(t testing.TB, id, ttl string) string {
	t.Helper()
	out, err := exec.Command(gozerBin, "push-token", "-config", g.ConfigPath, "-client", id, "-ttl", ttl).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("gozer push-token -client %s: %v\n%s", id, err, stderr)
	}
	tok := strings.TrimSpace(string(out))
	if tok == "" || strings.ContainsAny(tok, " \n") {
		t.Fatalf("gozer push-token printed %q, want one token", out)
	}
	return tok
}

// wsURL is ws://PROXY/push/ws, with ?token= when token is not empty.
func (g *gozer) wsURL(token string) string {
	u := "ws://" + g.ProxyAddr + "/push/ws"
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return u
}

// wsMsg is one message a device received.
type wsMsg struct {
	typ  int // websocket.TextMessage or websocket.BinaryMessage
	data []byte
}

// wsDevice is a websocket push client (gorilla) whose reader goroutine puts every
// message on msgs; when reading fails (close frame, EOF) err is set and msgs closed.
type wsDevice struct {
	name string
	conn *websocket.Conn
	msgs chan wsMsg
	err  error // valid once msgs is closed
}

// dialWS opens a websocket push connection with token (in the query) and fails
// the test unless it is upgraded.
func dialWS(t testing.TB, g *gozer, name, token string) *wsDevice {
	t.Helper()
	c := dialWSConn(t, g.wsURL(token), nil)
	return readWS(name, c)
}

func dialWSConn(t testing.TB, u string, hdr http.Header) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(u, hdr)
	if err != nil {
		var status int
		var body []byte
		if resp != nil {
			status = resp.StatusCode
			body, _ = io.ReadAll(resp.Body)
		}
		t.Fatalf("websocket dial %s: %v (status %d, body %q)", u, err, status, body)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("websocket dial %s: status %d, want 101", u, resp.StatusCode)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readWS starts the reader goroutine of c.
func readWS(name string, c *websocket.Conn) *wsDevice {
	d := &wsDevice{name: name, conn: c, msgs: make(chan wsMsg, 4096)}
	go func() {
		defer close(d.msgs)
		for {
			typ, data, err := c.ReadMessage()
			if err != nil {
				d.err = err
				return
			}
			d.msgs <- wsMsg{typ, data}
		}
	}()
	return d
}

// next returns the next message, failing the test when none comes within timeout
// or the connection ends.
func (d *wsDevice) next(t testing.TB, timeout time.Duration) wsMsg {
	t.Helper()
	select {
	case m, ok := <-d.msgs:
		if !ok {
			t.Fatalf("device %s: connection ended before a message came: %v", d.name, d.err)
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("device %s: no message within %v", d.name, timeout)
	}
	return wsMsg{}
}

// expectText waits for the next message and checks it is the text message want.
func (d *wsDevice) expectText(t testing.TB, want string) {
	t.Helper()
	m := d.next(t, 5*time.Second)
	if m.typ != websocket.TextMessage || string(m.data) != want {
		t.Fatalf("device %s got message type %d %q, want text %q", d.name, m.typ, tail(string(m.data), 100), want)
	}
}

// expectClose waits until the connection ends and returns the close frame it
// ended with; it fails the test when the connection ended without one, or a
// message came first.
func (d *wsDevice) expectClose(t testing.TB, timeout time.Duration) *websocket.CloseError {
	t.Helper()
	select {
	case m, ok := <-d.msgs:
		if ok {
			t.Fatalf("device %s: got message %q, want the connection closed", d.name, tail(string(m.data), 100))
		}
		ce, isClose := d.err.(*websocket.CloseError)
		if !isClose {
			t.Fatalf("device %s: connection ended with %v, want a close frame", d.name, d.err)
		}
		return ce
	case <-time.After(timeout):
		t.Fatalf("device %s: still open after %v, want it closed", d.name, timeout)
	}
	return nil
}

// silent asserts that no message arrives within d.
func (d *wsDevice) silent(t testing.TB, wait time.Duration) {
	t.Helper()
	select {
	case m, ok := <-d.msgs:
		if ok {
			t.Fatalf("device %s got message %q, want none", d.name, tail(string(m.data), 100))
		}
		t.Fatalf("device %s: connection ended (%v), want it open", d.name, d.err)
	case <-time.After(wait):
	}
}

// pushAnswer is the JSON answer of the push API.
type pushAnswer struct {
	Reached   int             `json:"reached"`
	Stored    bool            `json:"stored"`
	ID        uint64          `json:"id"`    // the message id (with a history)
	Nodes     json.RawMessage `json:"nodes"` // a list (push) or an object (broadcast)
	Failed    map[string]string
	Warning   string `json:"warning"`
	Error     string `json:"error"`
	ClientID  string `json:"client_id"`
	Connected bool   `json:"connected"`
	Local     int    `json:"local"`
}

// nodeList is Nodes of a push or GET answer.
func (a pushAnswer) nodeList(t testing.TB) []string {
	t.Helper()
	var l []string
	if len(a.Nodes) > 0 {
		if err := json.Unmarshal(a.Nodes, &l); err != nil {
			t.Fatalf("nodes %s is not a list: %v", a.Nodes, err)
		}
	}
	return l
}

// nodeMap is Nodes of a broadcast answer.
func (a pushAnswer) nodeMap(t testing.TB) map[string]int {
	t.Helper()
	var m map[string]int
	if err := json.Unmarshal(a.Nodes, &m); err != nil {
		t.Fatalf("nodes %s is not an object: %v", a.Nodes, err)
	}
	return m
}

// pushAPI sends method path (a push-API path like /push/ID) to the admin
// listener at admin and decodes the JSON answer.
func pushAPI(t testing.TB, admin, method, path string, body []byte, hdr map[string]string) (*http.Response, pushAnswer) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, b := fetch(t, c, method, "http://"+admin+path, body, hdr)
	var a pushAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s %s: status %d, answer is not JSON (%v): %q", method, path, resp.StatusCode, err, tail(string(b), 300))
	}
	return resp, a
}

// push POSTs msg as a text message to id and checks the answer's status.
func (g *gozer) push(t testing.TB, id, msg string, status int) pushAnswer {
	t.Helper()
	resp, a := pushAPI(t, g.AdminAddr, "POST", "/push/"+id, []byte(msg), nil)
	if resp.StatusCode != status {
		t.Fatalf("POST /push/%s: status %d %+v, want %d", id, resp.StatusCode, a, status)
	}
	return a
}

// pushStatus is GET /push/ID.
func (g *gozer) pushStatus(t testing.TB, id string) pushAnswer {
	t.Helper()
	resp, a := pushAPI(t, g.AdminAddr, "GET", "/push/"+id, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /push/%s: status %d %+v", id, resp.StatusCode, a)
	}
	return a
}

// clusterStatus is GET /push/ID on a cluster node for a wait's condition: the
// answer and true, or false while the node answers 503 "recovering" (a node
// that has just started, or a registry being rebuilt, says so rather than
// guess). Any other answer fails the test.
func (g *gozer) clusterStatus(t testing.TB, id string) (pushAnswer, bool) {
	t.Helper()
	resp, a := pushAPI(t, g.AdminAddr, "GET", "/push/"+id, nil, nil)
	switch {
	case resp.StatusCode == 200:
		return a, true
	case resp.StatusCode == 503 && strings.Contains(a.Error, "recovering"):
		return a, false
	}
	t.Fatalf("GET /push/%s: status %d %+v", id, resp.StatusCode, a)
	return a, false
}

// waitConnected waits until GET /push/ID answers connected == want.
func (g *gozer) waitConnected(t testing.TB, id string, want bool, timeout time.Duration) {
	t.Helper()
	var a pushAnswer
	if !eventually(timeout, func() bool { a = g.pushStatus(t, id); return a.Connected == want }) {
		t.Fatalf("GET /push/%s: %+v after %v, want connected=%v", id, a, timeout, want)
	}
}

// adminPush is GET /admin/push.
func (g *gozer) adminPush(t testing.TB) map[string]any {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, b := fetch(t, c, "GET", "http://"+g.AdminAddr+"/admin/push", nil, nil)
	var m map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(b, &m) != nil {
		t.Fatalf("GET /admin/push: status %d, body %q", resp.StatusCode, tail(string(b), 500))
	}
	return m
}

// pushCounter is the counter name of GET /admin/push; a dotted name
// ("api.rate_limited_total") is a counter inside an object.
func (g *gozer) pushCounter(t testing.TB, name string) int64 {
	t.Helper()
	m := g.adminPush(t)
	v, ok := jsonPath(m, name).(float64)
	if !ok {
		t.Fatalf("GET /admin/push has no number %q: %v", name, m)
	}
	return int64(v)
}

// jsonPath is the value at a dotted path of decoded JSON objects (nil if none).
func jsonPath(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

// waitPushCounter waits until the /admin/push counter name is at least n.
func (g *gozer) waitPushCounter(t testing.TB, name string, n int64, timeout time.Duration) {
	t.Helper()
	var got int64
	if !eventually(timeout, func() bool { got = g.pushCounter(t, name); return got >= n }) {
		t.Fatalf("/admin/push %s = %d after %v, want >= %d", name, got, timeout, n)
	}
}

// rawExchange sends req (a whole HTTP/1.1 request) on a new connection to addr and
// reads the answer and its body.
func rawExchange(t testing.TB, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", firstLine(req), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

// wsHandshakeRaw upgrades c, a raw connection to g's proxy port, to a push
// websocket with token tok (c closes with the test, its deadline 10 s away),
// and returns the reader (of size bytes) of what follows the 101.
func wsHandshakeRaw(t testing.TB, g *gozer, c net.Conn, tok string, size int) *bufio.Reader {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(wsRequest("GET", "/push/ws?token="+url.QueryEscape(tok), g.ProxyAddr, ""))); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(c, size)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v, %v", resp, err)
	}
	return br
}

// wsRequest is a websocket upgrade request for path on host, with the header
// lines extra (each ending in CRLF) and the standard ones except those named in
// omit ("key", "version").
func wsRequest(method, path, host, extra string, omit ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", method, path, host)
	skip := map[string]bool{}
	for _, o := range omit {
		skip[o] = true
	}
	if !skip["key"] {
		b.WriteString("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
	}
	if !skip["version"] {
		b.WriteString("Sec-WebSocket-Version: 13\r\n")
	}
	b.WriteString(extra)
	b.WriteString("\r\n")
	return b.String()
}

// redisServer is a redis-server of the test's own on a free loopback port.
type redisServer struct {
	*process
	Addr string
}

// startRedis starts redis-server without persistence and waits until it answers
// PING. It fails the test when redis-server is not installed.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: the push cluster tests need it (`make test` installs it; or apt-get install redis-server)")
	}
	var lastOut string
	for try := 0; try < 3; try++ {
		addr := freePort(t)
		_, port, _ := net.SplitHostPort(addr)
		p, err := startProcess("redis-server", bin, "--save", "", "--appendonly", "no",
			"--bind", "127.0.0.1", "--port", port)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.stop(5 * time.Second) })
		r := &redisServer{process: p, Addr: addr}
		if eventually(10*time.Second, func() bool { return !p.exited() && redisPing(addr) }) {
			return r
		}
		lastOut = p.output()
		p.stop(time.Second)
	}
	t.Fatalf("redis-server did not answer PING:\n%s", tail(lastOut, 2000))
	return nil
}

func redisPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// collector is an HTTP server of the test's own that records the requests it got.
type collector struct {
	mu   sync.Mutex
	reqs []collected
}

type collected struct {
	method, path, clientID, contentType string
	body                                []byte
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.reqs = append(c.reqs, collected{r.Method, r.URL.RequestURI(), r.Header.Get("X-Push-Client-Id"), r.Header.Get("Content-Type"), b})
	c.mu.Unlock()
	w.WriteHeader(204)
}

// find returns the first request whose body is body.
func (c *collector) find(body []byte) (collected, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.reqs {
		if bytes.Equal(r.body, body) {
			return r, true
		}
	}
	return collected{}, false
}

// waitPushClosed waits for the access-log line that ends client id's push
// connection ("push":"closed") and returns its closed_by field.
func (g *gozer) waitPushClosed(t testing.TB, id string) string {
	t.Helper()
	by, _ := g.pushClosedLine(t, id)["closed_by"].(string)
	return by
}

// pushClosedLine waits for the access-log line that ends id's push connection
// and returns it.
func (g *gozer) pushClosedLine(t testing.TB, id string) map[string]any {
	t.Helper()
	var line map[string]any
	waitFor(t, 10*time.Second, "the access-log line closing "+id, func() bool {
		sc := bufio.NewScanner(strings.NewReader(g.stdout.String()))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil && l["push"] == "closed" && l["client_id"] == id {
				line = l
				return true
			}
		}
		return false
	})
	return line
}
