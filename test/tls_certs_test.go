package test

// Certificates as an operator handles them: replaced on disk under load, a
// broken replacement refused, a development certificate on first start, and
// `gozer -check` on the TLS settings.

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestTLSCertificateRotation: new certificate files are picked up while
// clients keep connecting (none fails); a key that does not match is refused
// with a log line and the certificate in service stays; POST
// /admin/tls/reload reloads on demand.
func TestTLSCertificateRotation(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, first := ca.issue(t, "site", false, "localhost")
	o := startOrigin(t, "o")
	g := tlsGozer(t, o.Addr, map[string]string{"cert_check_interval": "200ms"}, [2]string{cert, key})

	serial := make(chan int64, 1)
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	done := make(chan struct{})
	go func() { // a new connection per request: every request is a handshake
		defer close(done)
		tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "localhost"}}
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := c.Get(g.httpsURL("/"))
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
				if err == nil {
					resp.Body.Close()
				}
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok.Add(1)
			select {
			case serial <- resp.TLS.PeerCertificates[0].SerialNumber.Int64():
			default:
			}
		}
	}()
	seen := func(want int64) bool {
		return eventually(10*time.Second, func() bool {
			select {
			case s := <-serial:
				return s == want
			case <-time.After(100 * time.Millisecond):
				return false
			}
		})
	}
	if !seen(first) {
		t.Fatalf("never served the first certificate (serial %d)", first)
	}
	_, _, second := ca.issue(t, "site", false, "localhost") // same files, new pair
	if !seen(second) {
		t.Fatalf("the new certificate (serial %d) was not served within 10s", second)
	}
	g.waitLog(t, "tls certificate")

	// A broken replacement: the new certificate with another key.
	_, otherKey, _ := ca.issue(t, "other", false, "localhost")
	b, _ := os.ReadFile(otherKey)
	if err := os.WriteFile(key, b, 0o600); err != nil {
		t.Fatal(err)
	}
	resp, body := fetch(t, &http.Client{Timeout: 5 * time.Second}, "POST", "http://"+g.AdminAddr+"/admin/tls/reload", nil, nil)
	if resp.StatusCode != 422 || !strings.Contains(string(body), "does not match") {
		t.Fatalf("POST /admin/tls/reload with a mismatched key: %d %s, want 422 naming the mismatch", resp.StatusCode, body)
	}
	if s := g.tlsStats(t); s.Certificates.Failures < 1 || !strings.Contains(s.Certificates.LastErr, "does not match") {
		t.Errorf("/admin/tls certificates %+v: want the failed reload counted with its reason", s.Certificates)
	}
	if !seen(second) {
		t.Fatalf("after a failed reload the certificate in service (serial %d) must stay", second)
	}
	// Under a loaded machine the rotations can take fewer handshakes than
	// that: the client goes on until it has made ten, whatever the speed.
	waitFor(t, 30*time.Second, "ten requests through the rotations", func() bool { return ok.Load()+failed.Load() >= 10 })
	close(stop)
	<-done
	if failed.Load() > 0 || ok.Load() < 10 {
		t.Errorf("clients during the rotations: %d ok, %d failed; want none failed", ok.Load(), failed.Load())
	}
}

// TestTLSDevCertificate: without certificates, Gozer generates a development
// certificate on first start, says so, and curl trusts it with --cacert.
func TestTLSDevCertificate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "dev")
	o := startOrigin(t, "o")
	cfg := oneOrigin(nil, o.Addr)
	cfg.HTTPS = map[string]string{"dev_cert_dir": `"` + dir + `"`}
	g := startGozer(t, cfg)
	g.waitLog(t, "development certificate")
	port := g.HTTPSAddr[strings.LastIndex(g.HTTPSAddr, ":")+1:]
	out, err := exec.Command("curl", "-sS", "--max-time", "10", "--cacert", filepath.Join(dir, "dev-cert.pem"),
		"-o", "/dev/null", "-w", "%{http_code}", "https://localhost:"+port+"/").CombinedOutput()
	if err != nil || string(out) != "200" {
		t.Fatalf("curl --cacert %s/dev-cert.pem https://localhost:%s/: %v %s", dir, port, err, out)
	}
	if s := g.tlsStats(t); !s.Certificates.Dev {
		t.Errorf("/admin/tls certificates.dev_certificate false, want true")
	}
}

// TestCheckTLS: gozer -check refuses a key that does not match its
// certificate and missing files, naming them, and warns of a certificate
// about to expire.
func TestCheckTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "a", false, "localhost")
	_, otherKey, _ := ca.issue(t, "b", false, "localhost")
	for _, tc := range []struct {
		name      string
		pair      [2]string
		wantOK    bool
		wantInOut string
	}{
		{"good pair", [2]string{cert, key}, true, "is valid"},
		{"mismatched key", [2]string{cert, otherKey}, false, "does not match"},
		{"missing file", [2]string{cert, key + ".missing"}, false, key + ".missing"},
		{"a route host no certificate covers", [2]string{cert, key}, true, `host \"api.example.com\" is covered by no certificate`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneOrigin(nil, "127.0.0.1:9000")
			cfg.Routes = append([]route{{Host: "api.example.com", PathPrefix: "/", Origin: "demo"}}, cfg.Routes...)
			cfg.HTTPS = map[string]string{"certificates": certList(tc.pair)}
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
