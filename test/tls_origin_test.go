package test

// TLS to origins: a real TLS origin (Go's net/http with a certificate from the
// test CA), verified by name against the CA file, pooled per loop like plain
// connections, and refused when its certificate names another host, was
// signed by a CA the CA file does not hold, or has expired. Client
// certificates to origins: tls_origin_client_test.go.

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startTLSOrigin serves HTTPS on loopback with cert/key: / answers who it is
// and how it was reached, /echo echoes the body, /healthz counts health checks
// (in healthChecks, when not nil) that came over TLS.
func startTLSOrigin(t testing.TB, cert, key string, healthChecks ...*atomic.Int64) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Origin-Name", "tls-origin")
		fmt.Fprintf(w, "tls=%v sni=%s path=%s", r.TLS != nil, r.TLS.ServerName, r.URL.Path)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			for _, n := range healthChecks {
				n.Add(1)
			}
		}
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		// Full duplex: Go's server would otherwise stop reading the body once
		// the answer starts, and close mid-echo.
		_ = http.NewResponseController(w).EnableFullDuplex()
		_, _ = io.Copy(w, r.Body)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); _ = ln.Close() }) // ln too: Close misses it if Serve has not started
	return ln.Addr().String()
}

func TestTLSToOrigin(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "origin", false, "origin.test", "127.0.0.1")
	addr := startTLSOrigin(t, cert, key)
	_, port, _ := net.SplitHostPort(addr)
	expiredCert, expiredKey, _ := ca.issueUntil(t, "expired", false, time.Now().Add(-time.Hour), "origin.test", "127.0.0.1")
	expired := startTLSOrigin(t, expiredCert, expiredKey)
	other := newTestCA(t) // a CA file that did not sign the origin's certificate

	for _, tc := range []struct {
		name   string
		tls    string
		status int
		body   string // what the answer's body starts with
		server string // the origin's address, when not addr
	}{
		{"verified by IP against the CA file", fmt.Sprintf("{enabled: true, ca_file: %q}", ca.caFile()), 200, "tls=true sni= path=/x", ""},
		{"verified by server_name", fmt.Sprintf("{enabled: true, ca_file: %q, server_name: origin.test}", ca.caFile()), 200, "tls=true sni=origin.test path=/x", ""},
		{"a certificate for another name is refused", fmt.Sprintf("{enabled: true, ca_file: %q, server_name: other.test}", ca.caFile()), 502, "", ""},
		{"an unknown CA is refused", "{enabled: true}", 502, "", ""},
		{"a certificate the CA file did not sign is refused", fmt.Sprintf("{enabled: true, ca_file: %q}", other.caFile()), 502, "", ""},
		{"an expired certificate is refused", fmt.Sprintf("{enabled: true, ca_file: %q, server_name: origin.test}", ca.caFile()), 502, "", expired},
		{"insecure_skip_verify when spelled out", "{enabled: true, server_name: other.test, insecure_skip_verify: true}", 200, "tls=true sni=other.test", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			server := "127.0.0.1:" + port
			if tc.server != "" {
				server = tc.server
			}
			g := startGozer(t, oneOrigin(map[string]string{"tls": tc.tls, "retries": "0"}, server))
			c := newClient(t, 10*time.Second)
			resp, body := fetch(t, c, "GET", g.URL("/x"), nil, nil)
			if resp.StatusCode != tc.status || !strings.HasPrefix(string(body), tc.body) {
				t.Fatalf("status %d body %q, want %d and %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if tc.status != 200 {
				if got := resp.Header.Get("X-Gozer-Status"); got != "FAILURE_ORIGIN_CONNECTIVITY" {
					t.Errorf("X-Gozer-Status %q, want FAILURE_ORIGIN_CONNECTIVITY", got)
				}
				l := g.waitAccessLog(t, "the failed request", func(l accessLine) bool { return l.str("path") == "/x" })
				if r := l[0].str("reason"); !strings.Contains(r, "tls handshake") || !strings.Contains(r, "certificate") {
					t.Errorf("access-log reason %q: want the TLS handshake's certificate error", r)
				}
				return
			}
			// Keep-alive to the origin, and bodies larger than a record both ways.
			payload := bytes.Repeat([]byte("0123456789"), 50_000)
			for range 5 {
				resp, got := fetch(t, c, "POST", g.URL("/echo"), payload, nil)
				if resp.StatusCode != 200 || !bytes.Equal(got, payload) {
					t.Fatalf("POST /echo through a TLS origin: %d, %d bytes back of %d", resp.StatusCode, len(got), len(payload))
				}
			}
			if n := g.adminOrigin(t, "demo").Servers[0].Connections; n < 1 || n > 2 {
				t.Errorf("origin connections open %d after 6 sequential requests, want them pooled (1, at most one per loop)", n)
			}
		})
	}
}

// TestTLSOriginHealthChecks: an origin spoken to over TLS is health-checked
// over TLS with its settings, and stays up.
func TestTLSOriginHealthChecks(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "origin", false, "origin.test")
	var checks atomic.Int64
	addr := startTLSOrigin(t, cert, key, &checks)
	g := startGozer(t, oneOrigin(map[string]string{
		"tls":          fmt.Sprintf("{enabled: true, ca_file: %q, server_name: origin.test}", ca.caFile()),
		"health_check": "{path: /healthz, interval: 200ms, timeout: 1s}",
	}, addr))
	waitFor(t, 10*time.Second, "three health checks over TLS", func() bool { return checks.Load() >= 3 })
	if s, ok := g.adminOrigin(t, "demo").server(addr); !ok || !s.Up {
		t.Fatalf("the TLS origin's server after passing checks: %+v, want up", s)
	}
}
