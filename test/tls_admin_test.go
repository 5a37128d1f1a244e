package test

// The admin listener over TLS (listeners.admin.tls): its endpoints over
// https with a Go client and with curl, mutual TLS as its authentication
// (only certificates from client_ca_file get in), the TLS 1.2 floor, plain
// HTTP refused, counters and docs in GET /admin/tls, certificates reloaded
// like the HTTPS listener's, and `gozer -check` on its settings.

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// adminTLSSetup is an admin listener's certificate (for 127.0.0.1, from
// servers) and the CA of its clients' certificates (clients).
type adminTLSSetup struct {
	servers, clients *testCA
	cert, key        string
}

func newAdminTLSSetup(t testing.TB) *adminTLSSetup {
	t.Helper()
	s := &adminTLSSetup{servers: newTestCA(t), clients: newTestCA(t)}
	s.cert, s.key, _ = s.servers.issue(t, "admin", false, "127.0.0.1", "localhost")
	return s
}

// keys is listeners.admin.tls for client_auth mode (and more keys in extra).
func (s *adminTLSSetup) keys(mode string, extra map[string]string) map[string]string {
	k := map[string]string{
		"enabled":        "true",
		"certificates":   certList([2]string{s.cert, s.key}),
		"client_auth":    fmt.Sprintf("%q", mode),
		"client_ca_file": fmt.Sprintf("%q", s.clients.caFile()),
	}
	if mode == "off" {
		delete(k, "client_ca_file")
	}
	for key, v := range extra {
		k[key] = v
	}
	return k
}

// client is an HTTPS client of the admin listener that trusts its CA and
// presents certs; conf adjusts its TLS config.
func (s *adminTLSSetup) client(t testing.TB, conf func(*tls.Config), certs ...tls.Certificate) *http.Client {
	t.Helper()
	tc := &tls.Config{RootCAs: s.servers.pool, Certificates: certs}
	if conf != nil {
		conf(tc)
	}
	tr := &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 2}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// waitAdminTLSFailure waits until /admin/tls counts an admin-listener
// handshake failure for reason.
func (g *gozer) waitAdminTLSFailure(t testing.TB, reason string, want int64) {
	t.Helper()
	var s tlsStats
	if !eventually(5*time.Second, func() bool { s = g.tlsStats(t); return s.AdminListener.Failures[reason] >= want }) {
		t.Fatalf("/admin/tls admin_listener.handshake_failures_by_reason %v: want %s >= %d", s.AdminListener.Failures, reason, want)
	}
}

// TestAdminTLSClientCertificates: with client_auth require, a client with a
// certificate from client_ca_file reaches every kind of endpoint over https
// (health check, admin API, push API), with Go's client and with curl; no
// certificate, one from another CA, an expired one, a client below TLS 1.2
// and plain HTTP get nothing, and each refusal is counted by reason and
// logged. GET /admin/tls matches docs/ADMIN.md's example, with both
// listeners' TLS on.
func TestAdminTLSClientCertificates(t *testing.T) {
	t.Parallel()
	s := newAdminTLSSetup(t)
	operator := s.clients.clientCert(t, "operator", time.Now().Add(time.Hour))
	cfg := oneOrigin(nil, startOrigin(t, "o").Addr)
	cfg.AdminTLS = s.keys("require", nil)
	cfg.AdminClient = s.client(t, nil, operator)
	// An HTTPS listener too: /admin/tls is compared with the docs whole.
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{s.cert, s.key})}
	g := startGozer(t, cfg)

	for _, tc := range []struct {
		method, path string
		status       int
		body         string // what the answer starts with
	}{
		{"GET", "/healthcheck", 200, "ok"},
		{"GET", "/admin/origins", 200, "["},
		{"GET", "/admin/edge", 200, "{"},
		{"POST", "/push/nobody-here", 404, `{"reached":0`},
	} {
		var msg []byte
		if tc.method == "POST" {
			msg = []byte("hello")
		}
		resp, body := fetch(t, g.adminClient, tc.method, g.adminURL(tc.path), msg, nil)
		if resp.StatusCode != tc.status || !strings.HasPrefix(string(body), tc.body) || resp.TLS == nil {
			t.Errorf("%s %s over https with a client certificate: %d %q (TLS %v), want %d %q over TLS",
				tc.method, tc.path, resp.StatusCode, tail(string(body), 100), resp.TLS != nil, tc.status, tc.body)
		}
	}

	certFile, keyFile := s.clients.clientCertFiles(t, "curl-operator", "curl-operator")
	curl := func(args ...string) (string, error) {
		args = append([]string{"-sS", "--max-time", "10", "--cacert", s.servers.caFile(), "-o", "/dev/null", "-w", "%{http_code}"}, args...)
		out, err := exec.Command("curl", append(args, g.adminURL("/admin/filters"))...).CombinedOutput()
		return string(out), err
	}
	if out, err := curl("--cert", certFile, "--key", keyFile); err != nil || out != "200" {
		t.Errorf("curl --cert with a client certificate: %v %s, want 200", err, out)
	}
	if out, err := curl(); err == nil {
		t.Errorf("curl without a client certificate got an answer: %s", out)
	}

	refused := []struct {
		name   string
		client *http.Client
		reason string // in handshake_failures_by_reason
	}{
		{"no client certificate", s.client(t, nil), "client_certificate"},
		{"a certificate from another CA", s.client(t, nil, s.servers.clientCert(t, "intruder", time.Now().Add(time.Hour))), "client_certificate"},
		{"an expired certificate", s.client(t, nil, s.clients.clientCert(t, "former", time.Now().Add(-time.Hour))), "client_certificate"},
		{"TLS 1.1", s.client(t, func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }, operator), "protocol_version"},
		{"plain HTTP", &http.Client{Timeout: 10 * time.Second}, "plain_http"},
	}
	want := map[string]int64{}
	for _, tc := range refused {
		url := g.adminURL("/admin/origins")
		if tc.reason == "plain_http" {
			url = "http://" + g.AdminAddr + "/admin/origins"
		}
		if resp, err := tc.client.Get(url); err == nil {
			resp.Body.Close()
			t.Errorf("%s: GET /admin/origins answered %d, want the connection refused", tc.name, resp.StatusCode)
		}
		want[tc.reason]++
		g.waitAdminTLSFailure(t, tc.reason, want[tc.reason])
	}
	g.waitLog(t, "admin listener: TLS handshake failed", "client_certificate")
	for _, l := range g.processLog() {
		// fasthttp's own line per failed connection, which quotes crypto/tls:
		// the sampled line above replaces it.
		if strings.Contains(l.text, "error when serving connection") {
			t.Errorf("process log: %s", l.text)
		}
	}

	st := g.tlsStats(t)
	if a := st.AdminListener; !a.Enabled || a.ClientAuth != "require" || a.Handshakes < 1 || a.Certificates == nil {
		t.Errorf("/admin/tls admin_listener %+v: want enabled, client_auth require, handshakes counted, certificates", a)
	}
	// The HTTPS listener's side of the answer: one handshake, and one
	// plain-HTTP client so that its failure map has a key to compare too.
	if resp, _ := fetch(t, httpsClient(t, s.servers, "localhost", nil), "GET", g.httpsURL("/"), nil, nil); resp.StatusCode != 200 {
		t.Fatalf("GET / over the HTTPS listener: %d", resp.StatusCode)
	}
	if resp, _ := dialRaw(t, g.HTTPSAddr).roundTrip("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 400 {
		t.Fatalf("plain HTTP to the HTTPS port: %d", resp.StatusCode)
	}
	g.waitTLSFailure(t, "plain_http", 1)
	matchesDoc(t, docExamples(t), g, "/admin/tls")
}

// TestAdminTLSWithoutClientAuth: client_auth off (the default) asks for no
// certificate: any client that trusts the listener's CA is served over
// https, and plain HTTP still gets nothing.
func TestAdminTLSWithoutClientAuth(t *testing.T) {
	t.Parallel()
	s := newAdminTLSSetup(t)
	cfg := oneOrigin(nil, closedPort(t))
	cfg.AdminTLS = s.keys("off", nil)
	cfg.AdminClient = s.client(t, nil)
	g := startGozer(t, cfg)
	resp, body := fetch(t, g.adminClient, "GET", g.adminURL("/admin/tls"), nil, nil)
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("GET /admin/tls over https: %d %q", resp.StatusCode, tail(string(body), 200))
	}
	if a := g.tlsStats(t).AdminListener; !a.Enabled || a.ClientAuth != "off" {
		t.Errorf("/admin/tls admin_listener %+v: want enabled, client_auth off", a)
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + g.AdminAddr + "/healthcheck"); err == nil {
		resp.Body.Close()
		t.Errorf("plain HTTP to the admin listener over TLS: answered %d", resp.StatusCode)
	}
}

// TestAdminTLSCertificateReload: new certificate files for the admin listener
// are picked up by its file checks (new connections get them); POST
// /admin/tls/reload?listener=admin reloads on demand and refuses a key that
// does not match (422, the certificate in service stays); an unknown
// listener is a 400.
func TestAdminTLSCertificateReload(t *testing.T) {
	t.Parallel()
	s := newAdminTLSSetup(t)
	cfg := oneOrigin(nil, closedPort(t))
	cfg.AdminTLS = s.keys("off", map[string]string{"cert_check_interval": "200ms"})
	cfg.AdminClient = s.client(t, nil)
	g := startGozer(t, cfg)

	// serial is the certificate a new connection to the admin listener gets.
	serial := func() int64 {
		c, err := tls.Dial("tcp", g.AdminAddr, &tls.Config{RootCAs: s.servers.pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("dial the admin listener: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	first := serial()
	_, _, second := s.servers.issue(t, "admin", false, "127.0.0.1", "localhost") // the same files, a new pair
	if second == first {
		t.Fatal("the new certificate has the old serial")
	}
	waitFor(t, 10*time.Second, "the new admin certificate served", func() bool { return serial() == second })

	_, otherKey, _ := s.servers.issue(t, "other", false, "127.0.0.1")
	b, err := os.ReadFile(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.key, b, 0o600); err != nil {
		t.Fatal(err)
	}
	resp, body := fetch(t, g.adminClient, "POST", g.adminURL("/admin/tls/reload?listener=admin"), nil, nil)
	if resp.StatusCode != 422 || !strings.Contains(string(body), "does not match") {
		t.Fatalf("POST /admin/tls/reload?listener=admin with a mismatched key: %d %s, want 422 naming the mismatch", resp.StatusCode, body)
	}
	if c := g.tlsStats(t).AdminListener.Certificates; c == nil || c.Failures < 1 || !strings.Contains(c.LastErr, "does not match") {
		t.Errorf("/admin/tls admin_listener.certificates %+v: want the failed reload counted with its reason", c)
	}
	if got := serial(); got != second {
		t.Errorf("after a failed reload new connections get serial %d, want %d (the certificate in service)", got, second)
	}
	for _, tc := range []struct {
		query  string
		status int
	}{{"?listener=bogus", 400}, {"", 404}, {"?listener=https", 404}} { // this Gozer has no HTTPS listener
		if resp, body := fetch(t, g.adminClient, "POST", g.adminURL("/admin/tls/reload"+tc.query), nil, nil); resp.StatusCode != tc.status {
			t.Errorf("POST /admin/tls/reload%s: %d %s, want %d", tc.query, resp.StatusCode, body, tc.status)
		}
	}
}

// TestCheckAdminTLS: gozer -check validates listeners.admin.tls as start-up
// would: the pairs (files, matching keys), the client CA file (of either
// listener), and the settings that cannot work together.
func TestCheckAdminTLS(t *testing.T) {
	t.Parallel()
	s := newAdminTLSSetup(t)
	_, otherKey, _ := s.servers.issue(t, "other", false, "127.0.0.1")
	missing := filepath.Join(t.TempDir(), "missing-ca.pem")
	for _, tc := range []struct {
		name      string
		adminTLS  map[string]string
		https     map[string]string
		push      map[string]string
		wantOK    bool
		wantInOut string
	}{
		{"good", s.keys("require", nil), nil, nil, true, "is valid"},
		{"a key that does not match", s.keys("off", map[string]string{"certificates": certList([2]string{s.cert, otherKey})}), nil, nil,
			false, "does not match"},
		{"a missing certificate file", s.keys("off", map[string]string{"certificates": certList([2]string{s.cert + ".missing", s.key})}), nil, nil,
			false, s.cert + ".missing"},
		{"an unreadable client CA file", s.keys("require", map[string]string{"client_ca_file": fmt.Sprintf("%q", missing)}), nil, nil,
			false, "listeners.admin.tls.client_ca_file"},
		{"the HTTPS listener's unreadable client CA file", nil,
			map[string]string{"certificates": certList([2]string{s.cert, s.key}), "client_auth": "require", "client_ca_file": fmt.Sprintf("%q", missing)}, nil,
			false, "listeners.https.client_ca_file"},
		{"no certificates", map[string]string{"enabled": "true"}, nil, nil, false, "listeners.admin.tls.certificates"},
		{"client_auth without a CA file", s.keys("require", map[string]string{"client_ca_file": `""`}), nil, nil, false, "listeners.admin.tls.client_ca_file"},
		{"settings without enabled", map[string]string{"certificates": certList([2]string{s.cert, s.key})}, nil, nil, false, "listeners.admin.tls.enabled"},
		{"with a push cluster", s.keys("off", nil), nil, map[string]string{"cluster": `{enabled: true, redis: "127.0.0.1:6379", node_addr: "127.0.0.1:9999"}`},
			false, "push.cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneOrigin(nil, "127.0.0.1:9000")
			cfg.AdminTLS, cfg.HTTPS, cfg.Push = tc.adminTLS, tc.https, tc.push
			cfg.httpsAddr = freePort(t)
			path := filepath.Join(t.TempDir(), "gozer.yaml")
			if err := os.WriteFile(path, []byte(cfg.render(freePort(t), freePort(t))), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(gozerBin, "-check", "-config", path).CombinedOutput()
			if (err == nil) != tc.wantOK || !strings.Contains(string(out), tc.wantInOut) {
				t.Fatalf("gozer -check: %v\n%s\nwant ok=%v and %q in the output", err, out, tc.wantOK, tc.wantInOut)
			}
		})
	}
}
