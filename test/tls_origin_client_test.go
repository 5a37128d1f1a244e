package test

// Client certificates to origins: Gozer presents origins.NAME.tls.cert/key to
// an origin that requires and verifies client certificates (a Go TLS server
// with tls.RequireAndVerifyClientCert), over TLS 1.2 and 1.3. Without one, or
// with one the origin does not trust, the request fails as an origin
// connectivity failure that names the TLS refusal, and the health check over
// https takes the server down.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clientAuthOrigin is an HTTPS origin on loopback that requires a client
// certificate signed by one of its client CAs, with at most maxVersion.
type clientAuthOrigin struct {
	addr   string
	checks atomic.Int64 // health checks that came with a verified certificate

	mu       sync.Mutex
	subjects []string // the verified client subject of every request
}

func startClientAuthOrigin(t testing.TB, cert, key string, clientCAs *x509.CertPool, maxVersion uint16) *clientAuthOrigin {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair}, MaxVersion: maxVersion,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs,
	})
	if err != nil {
		t.Fatal(err)
	}
	o := &clientAuthOrigin{addr: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// RequireAndVerifyClientCert: no request gets here without a verified chain.
		subject := r.TLS.VerifiedChains[0][0].Subject.String()
		o.mu.Lock()
		o.subjects = append(o.subjects, subject)
		o.mu.Unlock()
		fmt.Fprintf(w, "client=%s", subject)
	})
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) { o.checks.Add(1) })
	// The refused handshakes are the tests' subject: not worth a line each.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); _ = ln.Close() })
	return o
}

func (o *clientAuthOrigin) seen() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.subjects...)
}

// TestTLSOriginClientCertificate: with origins.NAME.tls.cert and key the
// origin sees Gozer's client certificate and answers; without them, or with
// a certificate from a CA the origin does not trust, the origin refuses the
// handshake: the client gets 502 FAILURE_ORIGIN_CONNECTIVITY, the access log
// names the TLS refusal, /admin/origins counts the cause, and the origin
// never saw a request. Over TLS 1.3 the origin's refusal arrives after the
// client's side of the handshake is done (at the first read), so this also
// asserts that it is still a connect failure and not a reset.
func TestTLSOriginClientCertificate(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)    // signs the origin's certificate and Gozer's client certificate
	other := newTestCA(t) // a CA the origin does not trust
	cert, key, _ := ca.issue(t, "origin", false, "origin.test")
	edgeCert, edgeKey := ca.clientCertFiles(t, "edge", "gozer-edge")
	strayCert, strayKey := other.clientCertFiles(t, "stray", "stray-edge")
	const wantSubject = "CN=gozer-edge,O=gozer tests"

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				name   string
				client string // the cert and key keys of origins.demo.tls
				ok     bool
				reason string // in the access log's reason of a refusal
			}{
				{"a client certificate from the origin's CA", fmt.Sprintf(", cert: %q, key: %q", edgeCert, edgeKey), true, ""},
				// The alert says "handshake failure" (TLS 1.2) or "certificate
				// required" (1.3); the reason says what to do either way.
				{"no client certificate", "", false, "the origin asked for a client certificate and origins.demo.tls has none"},
				{"a client certificate from another CA", fmt.Sprintf(", cert: %q, key: %q", strayCert, strayKey), false,
					"remote error: tls: unknown certificate authority"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					o := startClientAuthOrigin(t, cert, key, ca.pool, version)
					g := startGozer(t, oneOrigin(map[string]string{
						"tls":     fmt.Sprintf("{enabled: true, ca_file: %q, server_name: origin.test%s}", ca.caFile(), tc.client),
						"retries": "0",
					}, o.addr))
					c := newClient(t, 10*time.Second)
					resp, body := fetch(t, c, "GET", g.URL("/who"), nil, nil)
					if tc.ok {
						if resp.StatusCode != 200 || string(body) != "client="+wantSubject {
							t.Fatalf("status %d body %q, want 200 and client=%s", resp.StatusCode, body, wantSubject)
						}
						// A second request on the pooled connection: the same certificate.
						if resp, body := fetch(t, c, "GET", g.URL("/who"), nil, nil); resp.StatusCode != 200 {
							t.Fatalf("second request: status %d body %q", resp.StatusCode, body)
						}
						if got := o.seen(); len(got) != 2 || got[0] != wantSubject || got[1] != wantSubject {
							t.Errorf("the origin saw client subjects %q, want %s twice", got, wantSubject)
						}
						return
					}
					if resp.StatusCode != 502 || resp.Header.Get("X-Gozer-Status") != "FAILURE_ORIGIN_CONNECTIVITY" {
						t.Fatalf("status %d X-Gozer-Status %q body %q, want 502 FAILURE_ORIGIN_CONNECTIVITY",
							resp.StatusCode, resp.Header.Get("X-Gozer-Status"), body)
					}
					l := g.waitAccessLog(t, "the refused request", func(l accessLine) bool { return l.str("path") == "/who" })
					reason := l[0].str("reason")
					if !strings.HasPrefix(reason, "connect to "+o.addr+": tls handshake") || !strings.Contains(reason, tc.reason) {
						t.Errorf("access-log reason %q: want the failed connect to %s, its TLS handshake, and %q", reason, o.addr, tc.reason)
					}
					if l[0].str("cause") != "FAILURE_ORIGIN_CONNECTIVITY" {
						t.Errorf("access-log cause %q, want FAILURE_ORIGIN_CONNECTIVITY", l[0].str("cause"))
					}
					if n := g.adminOrigin(t, "demo").Requests["FAILURE_ORIGIN_CONNECTIVITY"]; n != 1 {
						t.Errorf("/admin/origins requests_by_cause %v, want FAILURE_ORIGIN_CONNECTIVITY 1", g.adminOrigin(t, "demo").Requests)
					}
					if got := o.seen(); len(got) != 0 {
						t.Errorf("the origin served requests from %q, want none", got)
					}
				})
			}
		})
	}
}

// TestTLSOriginClientCertificateHealthChecks: the health check over https
// presents the same client certificate as requests (the server stays up, the
// origin counts verified checks); without one the origin refuses every check
// and /admin/origins shows the server down.
func TestTLSOriginClientCertificateHealthChecks(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "origin", false, "origin.test")
	edgeCert, edgeKey := ca.clientCertFiles(t, "edge", "gozer-edge")
	for _, tc := range []struct {
		name   string
		client string
		up     bool
	}{
		{"with the client certificate", fmt.Sprintf(", cert: %q, key: %q", edgeCert, edgeKey), true},
		{"without a client certificate", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := startClientAuthOrigin(t, cert, key, ca.pool, tls.VersionTLS13)
			g := startGozer(t, oneOrigin(map[string]string{
				"tls":          fmt.Sprintf("{enabled: true, ca_file: %q, server_name: origin.test%s}", ca.caFile(), tc.client),
				"health_check": "{path: /healthz, interval: 200ms, timeout: 1s, unhealthy: 2}",
			}, o.addr))
			if tc.up {
				waitFor(t, 10*time.Second, "three health checks with a verified client certificate", func() bool { return o.checks.Load() >= 3 })
				if s, ok := g.adminOrigin(t, "demo").server(o.addr); !ok || !s.Up {
					t.Fatalf("/admin/origins server %+v after passing checks, want up", s)
				}
				return
			}
			var s adminServer
			waitFor(t, 10*time.Second, "the server down in /admin/origins", func() bool {
				s, _ = g.adminOrigin(t, "demo").server(o.addr)
				return !s.Up
			})
			if s.Available {
				t.Errorf("/admin/origins server %+v: down but still available to the balancer", s)
			}
			if n := o.checks.Load(); n != 0 {
				t.Errorf("the origin answered %d health checks without a client certificate, want 0", n)
			}
		})
	}
}
