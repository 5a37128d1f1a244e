package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const terminate = syscall.SIGTERM

// config describes a Gozer configuration file; zero fields keep Gozer's defaults,
// except those set by render for fast tests.
type config struct {
	TrustForwarded bool
	// ProxyProtocol is listeners.proxy.proxy_protocol.
	ProxyProtocol bool
	// RedirectHTTPS is listeners.proxy.redirect_https.
	RedirectHTTPS bool
	// AdminPprof is listeners.admin.pprof.
	AdminPprof bool
	// NoMetrics writes listeners.admin.metrics: false (on by default).
	NoMetrics bool
	// Server holds server.* keys, written verbatim: {"idle_timeout": "1s"}.
	Server  map[string]string
	Origins map[string]originConfig
	Routes  []route
	// Filters, when set, is written as the filters: section (else Gozer's defaults).
	Filters *filtersConfig
	// Push holds push.* keys, written verbatim: {"ping_interval": "1s",
	// "cluster": "{enabled: true, redis: \"127.0.0.1:6379\"}"}.
	Push map[string]string
	// Tracing holds tracing.* keys, written verbatim: {"passport_threshold": "300ms"}.
	Tracing map[string]string
	// HTTPS, when not nil, adds listeners.https on a free port (startGozer
	// sets httpsAddr) with these keys written verbatim:
	// {"certificates": "[{cert: a.pem, key: a-key.pem}]"}.
	HTTPS     map[string]string
	httpsAddr string
	// HTTPSAnyIP has the HTTPS listener bind every address (":port", as the
	// shipped ":8443"); HTTPSAddr still names 127.0.0.1:port.
	HTTPSAnyIP bool
	// HTTPSOnProxyPort puts the HTTPS listener on 127.0.0.2 at the proxy
	// listener's port (127.0.0.1): two listeners, one port.
	HTTPSOnProxyPort bool
	// AdminTLS, when not nil, is listeners.admin.tls with these keys written
	// verbatim ({"enabled": "true", "certificates": "[...]"}); AdminClient is
	// then how the harness reaches the admin listener (its health check, the
	// admin helpers): an HTTPS client trusting its CA, with a client
	// certificate when the listener requires one.
	AdminTLS    map[string]string
	AdminClient *http.Client
	// CORS holds the cors: policies, each written verbatim:
	// {"web": "{allow_origins: [\"http://localhost:3000\"]}"}.
	CORS map[string]string
	// Extra is top-level YAML appended verbatim (fault_injection:, limits:, protect: …).
	Extra string
	// AccessLog is log.access_log; empty means stdout, what accessLog reads.
	// A test that floods Gozer with tens of thousands of requests and reads
	// no access-log line sets "off": the harness keeps all Gozer prints in
	// memory, and tens of megabytes of lines make the test's own process
	// stall in its collector, which the flood's client then measures.
	AccessLog string
	// Output, when not nil, is where Gozer's stdout and stderr go instead of
	// the harness's buffers (a pipe a test does not read: a stalled log
	// collector); accessLog and the failure dump then see nothing.
	Output *os.File
	// Prefix runs Gozer under another command that execs it (e.g. prlimit
	// --nofile=N:N): the process the test signals is still Gozer.
	Prefix []string
	// H2C is listeners.proxy.h2c; HTTP2 holds http2.* keys, written verbatim.
	H2C   bool
	HTTP2 map[string]string
}

// filtersConfig is the filters: section; empty fields keep Gozer's defaults.
type filtersConfig struct {
	Dir          string
	Budget       string // "20ms"
	Disabled     []string
	MaxBodyBytes string // "256KiB"
	MaxSuspended int    // filters.max_suspended (0: the default)
	CallTimeout  string // filters.call_timeout ("": the default)
	// SharedDicts is filters.shared_dicts, verbatim: {"auth": "1MiB"}.
	SharedDicts map[string]string
}

type originConfig struct {
	Servers []string
	// Opts holds origins.NAME.* keys other than servers, written verbatim.
	Opts map[string]string
}

// route is one routes[] entry; CORS is its routes[].cors ("" none),
// WebSocket its routes[].websocket ("true", "false"; "" left out).
type route struct{ Host, PathPrefix, Origin, CORS, WebSocket string }

// oneOrigin is the config of a single origin "demo" with a catch-all route.
func oneOrigin(opts map[string]string, servers ...string) config {
	return config{
		Origins: map[string]originConfig{"demo": {Servers: servers, Opts: opts}},
		Routes:  []route{{PathPrefix: "/", Origin: "demo"}},
	}
}

// render writes the YAML file Gozer reads.
func (c config) render(proxy, admin string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listeners:\n  proxy:\n    addr: %q\n    trust_forwarded: %v\n    proxy_protocol: %v\n    redirect_https: %v\n    h2c: %v\n  admin:\n    addr: %q\n    pprof: %v\n",
		proxy, c.TrustForwarded, c.ProxyProtocol, c.RedirectHTTPS, c.H2C, admin, c.AdminPprof)
	if c.NoMetrics {
		b.WriteString("    metrics: false\n")
	}
	if c.AdminTLS != nil {
		b.WriteString("    tls:\n")
		for _, k := range sortedKeys(c.AdminTLS) {
			fmt.Fprintf(&b, "      %s: %s\n", k, c.AdminTLS[k])
		}
	}
	if c.HTTPS != nil {
		fmt.Fprintf(&b, "  https:\n    addr: %q\n", c.httpsAddr)
		for _, k := range sortedKeys(c.HTTPS) {
			fmt.Fprintf(&b, "    %s: %s\n", k, c.HTTPS[k])
		}
	}
	server := map[string]string{
		"event_loops":   "2",
		"drain_timeout": "2s", // a test's hung request must not hold up its cleanup
		// Most tests assert on the cause a response names; Gozer's default shows
		// it only to trusted requests that ask (status_test.go tests that).
		"status_headers": "{expose: all}",
		// Every test client is 127.0.0.1: the per-IP caps would be the test's
		// subject (clientip_test.go), not the tests' accident.
		"max_connections_per_ip": "0",
		"max_requests_per_ip":    "0",
	}
	// GOZER_TEST_ACCEPT_ON_LOOPS=false (or true) runs every test with
	// server.accept_on_loops so (a test's own Server keys win; Gozer's
	// default is true): both ways of accepting pass the same tests.
	if v := os.Getenv("GOZER_TEST_ACCEPT_ON_LOOPS"); v != "" {
		server["accept_on_loops"] = v
	}
	for k, v := range c.Server {
		server[k] = v
	}
	b.WriteString("server:\n")
	for _, k := range sortedKeys(server) {
		fmt.Fprintf(&b, "  %s: %s\n", k, server[k])
	}
	accessLog := c.AccessLog
	if accessLog == "" {
		accessLog = "stdout"
	}
	fmt.Fprintf(&b, "log:\n  level: info\n  access_log: %q\n", accessLog)
	if f := c.Filters; f != nil {
		fmt.Fprintf(&b, "filters:\n  dir: %q\n", f.Dir)
		if f.Budget != "" {
			fmt.Fprintf(&b, "  budget: %s\n", f.Budget)
		}
		if f.MaxBodyBytes != "" {
			fmt.Fprintf(&b, "  max_body_bytes: %s\n", f.MaxBodyBytes)
		}
		if f.MaxSuspended > 0 {
			fmt.Fprintf(&b, "  max_suspended: %d\n", f.MaxSuspended)
		}
		if f.CallTimeout != "" {
			fmt.Fprintf(&b, "  call_timeout: %s\n", f.CallTimeout)
		}
		if len(f.SharedDicts) > 0 {
			b.WriteString("  shared_dicts:\n")
			for _, k := range sortedKeys(f.SharedDicts) {
				fmt.Fprintf(&b, "    %s: %s\n", k, f.SharedDicts[k])
			}
		}
		quoted := make([]string, len(f.Disabled))
		for i, n := range f.Disabled {
			quoted[i] = fmt.Sprintf("%q", n)
		}
		fmt.Fprintf(&b, "  disabled: [%s]\n", strings.Join(quoted, ", "))
	}
	b.WriteString("origins:\n")
	for _, n := range sortedKeys(c.Origins) {
		o := c.Origins[n]
		quoted := make([]string, len(o.Servers))
		for i, s := range o.Servers {
			quoted[i] = fmt.Sprintf("%q", s)
		}
		fmt.Fprintf(&b, "  %s:\n    servers: [%s]\n", n, strings.Join(quoted, ", "))
		opts := map[string]string{"connect_timeout": "1s", "read_timeout": "15s"}
		for k, v := range o.Opts {
			opts[k] = v
		}
		for _, k := range sortedKeys(opts) {
			fmt.Fprintf(&b, "    %s: %s\n", k, opts[k])
		}
	}
	if len(c.Push) > 0 {
		b.WriteString("push:\n")
		for _, k := range sortedKeys(c.Push) {
			fmt.Fprintf(&b, "  %s: %s\n", k, c.Push[k])
		}
	}
	if len(c.Tracing) > 0 {
		b.WriteString("tracing:\n")
		for _, k := range sortedKeys(c.Tracing) {
			fmt.Fprintf(&b, "  %s: %s\n", k, c.Tracing[k])
		}
	}
	if len(c.HTTP2) > 0 {
		b.WriteString("http2:\n")
		for _, k := range sortedKeys(c.HTTP2) {
			fmt.Fprintf(&b, "  %s: %s\n", k, c.HTTP2[k])
		}
	}
	b.WriteString(c.Extra)
	b.WriteString("routes:\n")
	for _, r := range c.Routes {
		b.WriteString("  - {")
		if r.Host != "" {
			fmt.Fprintf(&b, " host: %q,", r.Host)
		}
		if r.CORS != "" {
			fmt.Fprintf(&b, " cors: %s,", r.CORS)
		}
		if r.WebSocket != "" {
			fmt.Fprintf(&b, " websocket: %s,", r.WebSocket)
		}
		fmt.Fprintf(&b, " path_prefix: %q, origin: %s }\n", r.PathPrefix, r.Origin)
	}
	if len(c.CORS) > 0 {
		b.WriteString("cors:\n")
		for _, k := range sortedKeys(c.CORS) {
			fmt.Fprintf(&b, "  %s: %s\n", k, c.CORS[k])
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// gozer is a running gateway process.
type gozer struct {
	*process
	ProxyAddr  string
	AdminAddr  string
	HTTPSAddr  string // "" without an HTTPS listener
	ConfigPath string
	// adminScheme and adminClient reach the admin listener: "http" and a
	// plain client, or "https" and config.AdminClient.
	adminScheme string
	adminClient *http.Client
}

// adminURL is SCHEME://ADMIN/path.
func (g *gozer) adminURL(path string) string { return g.adminScheme + "://" + g.AdminAddr + path }

// startGozer writes cfg into a temporary directory, starts gozer on it and waits
// until the admin health check answers 200 and the proxy port accepts. It stops the
// process at cleanup and, when the test failed, logs what it printed.
func startGozer(t testing.TB, cfg config) *gozer {
	t.Helper()
	if gozerBuildErr != nil {
		t.Fatalf("gozer does not build: %v", gozerBuildErr)
	}
	var lastErr string
	for try := 0; try < 3; try++ { // a free port may be taken by someone else meanwhile
		ports := freePorts(t, 3) // proxy, admin, HTTPS: never the same port twice
		g := &gozer{ProxyAddr: ports[0], AdminAddr: ports[1], adminScheme: "http", adminClient: &http.Client{Timeout: 10 * time.Second}}
		if cfg.AdminTLS != nil {
			if cfg.AdminClient == nil {
				t.Fatal("config.AdminTLS needs config.AdminClient")
			}
			g.adminScheme, g.adminClient = "https", cfg.AdminClient
		}
		if cfg.HTTPS != nil {
			g.HTTPSAddr = ports[2]
			cfg.httpsAddr = g.HTTPSAddr
			if cfg.HTTPSOnProxyPort {
				_, port, _ := net.SplitHostPort(g.ProxyAddr)
				g.HTTPSAddr = net.JoinHostPort("127.0.0.2", port)
				cfg.httpsAddr = g.HTTPSAddr
			}
			if cfg.HTTPSAnyIP {
				_, port, _ := net.SplitHostPort(g.HTTPSAddr)
				cfg.httpsAddr = ":" + port
			}
		}
		g.ConfigPath = filepath.Join(t.TempDir(), "gozer.yaml")
		if err := os.WriteFile(g.ConfigPath, []byte(cfg.render(g.ProxyAddr, g.AdminAddr)), 0o644); err != nil {
			t.Fatal(err)
		}
		gbin, race := gozerBinFor(t)
		bin, args := gbin, []string{"-config", g.ConfigPath}
		if len(cfg.Prefix) > 0 {
			bin, args = cfg.Prefix[0], append(append(cfg.Prefix[1:len(cfg.Prefix):len(cfg.Prefix)], gbin), args...)
		}
		p, err := startProcessTo("gozer", cfg.Output, bin, args...)
		if err != nil {
			t.Fatal(err)
		}
		p.race, p.unmeasured = race, race && unmeasured(t)
		g.process = p
		t.Cleanup(func() {
			p.stop(10 * time.Second)
			checkRaces(t, p)
			if t.Failed() {
				t.Logf("gozer output:\n%s", tail(p.output(), 6000))
			}
		})
		if g.ready(10 * time.Second) {
			return g
		}
		lastErr = tail(p.output(), 3000)
		p.stop(5 * time.Second)
		// (With cfg.Output the harness sees nothing it printed: try again.)
		if cfg.Output == nil && !strings.Contains(lastErr, "address already in use") {
			break
		}
	}
	if cfg.Output != nil {
		lastErr = "(its output went to config.Output)"
	}
	t.Fatalf("gozer did not become ready (health check 200 and proxy port open) within 10s:\n%s", lastErr)
	return nil
}

func (g *gozer) ready(timeout time.Duration) bool {
	client := &http.Client{Timeout: time.Second, Transport: g.adminClient.Transport}
	return eventually(timeout, func() bool {
		if g.exited() {
			return false
		}
		resp, err := client.Get(g.adminURL("/healthcheck"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		c, err := net.DialTimeout("tcp", g.ProxyAddr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// URL is http://PROXY/path.
func (g *gozer) URL(path string) string { return "http://" + g.ProxyAddr + path }

// accessLine is one JSON line of the access log.
type accessLine map[string]any

func (l accessLine) str(k string) string {
	s, _ := l[k].(string)
	return s
}

func (l accessLine) num(k string) (float64, bool) {
	f, ok := l[k].(float64)
	return f, ok
}

// accessLog returns the JSON lines Gozer printed on stdout so far.
func (g *gozer) accessLog() []accessLine {
	var lines []accessLine
	sc := bufio.NewScanner(strings.NewReader(g.stdout.String()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l accessLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l["request_id"] != nil {
			lines = append(lines, l)
		}
	}
	return lines
}

// waitAccessLog waits up to 10 s for the access-log lines matching match and
// returns them.
func (g *gozer) waitAccessLog(t testing.TB, what string, match func(accessLine) bool) []accessLine {
	t.Helper()
	var found []accessLine
	if !eventually(10*time.Second, func() bool {
		found = found[:0]
		for _, l := range g.accessLog() {
			if match(l) {
				found = append(found, l)
			}
		}
		return len(found) > 0
	}) {
		t.Fatalf("no access-log line for %s within 10s; stdout:\n%s", what, tail(g.stdout.String(), 3000))
	}
	return found
}

// byRequestID matches the access-log lines of one request.
func byRequestID(id string) func(accessLine) bool {
	return func(l accessLine) bool { return l.str("request_id") == id }
}

// newClient is an HTTP client of its own (no connection shared with other tests).
func newClient(t testing.TB, timeout time.Duration) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}
