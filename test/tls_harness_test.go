package test

// Helpers of the TLS tests (tls_*_test.go): a test CA and the certificates it
// signs, written as PEM files; a Gozer with an HTTPS listener on them; clients
// that trust the CA.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA signs the test certificates; pool trusts it.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pool *x509.CertPool
	dir  string
	n    int64
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gozer test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pool: x509.NewCertPool(), dir: t.TempDir(), n: 1}
	ca.pool.AddCert(cert)
	writePEM(t, filepath.Join(ca.dir, "ca.pem"), "CERTIFICATE", der)
	return ca
}

// caFile is the CA certificate's PEM file (for curl --cacert, openssl -CAfile).
func (ca *testCA) caFile() string { return filepath.Join(ca.dir, "ca.pem") }

// issue writes a certificate for names (DNS names or IPs) signed by the CA and
// its key, ECDSA P-256 or RSA 2048, as name.pem and name-key.pem; it returns
// the two paths and the serial number. It is valid from an hour ago for a day.
func (ca *testCA) issue(t testing.TB, file string, rsaKey bool, names ...string) (certFile, keyFile string, serial int64) {
	t.Helper()
	return ca.issueUntil(t, file, rsaKey, time.Now().Add(24*time.Hour), names...)
}

// issueUntil is issue with the certificate valid until notAfter (in the past:
// expired), from two days before it.
func (ca *testCA) issueUntil(t testing.TB, file string, rsaKey bool, notAfter time.Time, names ...string) (certFile, keyFile string, serial int64) {
	t.Helper()
	var key crypto.Signer
	var err error
	if rsaKey {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	ca.n++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if rsaKey {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, file+".pem"), filepath.Join(ca.dir, file+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile, ca.n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	// Write then rename, as an operator's deploy would: a reader never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// certList is the YAML of listeners.https.certificates for pairs of files.
func certList(pairs ...[2]string) string {
	s := "["
	for i, p := range pairs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("{cert: %q, key: %q}", p[0], p[1])
	}
	return s + "]"
}

// tlsGozer starts Gozer with an HTTPS listener on the given pairs (more
// listeners.https keys in extra) in front of origin.
func tlsGozer(t testing.TB, origin string, extra map[string]string, pairs ...[2]string) *gozer {
	t.Helper()
	cfg := oneOrigin(nil, origin)
	cfg.HTTPS = map[string]string{"certificates": certList(pairs...)}
	for k, v := range extra {
		cfg.HTTPS[k] = v
	}
	return startGozer(t, cfg)
}

// withHTTPS adds listeners.https to cfg, with a certificate for 127.0.0.1
// and localhost from a new CA, which it returns for the clients to trust.
func withHTTPS(t testing.TB, cfg *config) *testCA {
	t.Helper()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "https", false, "127.0.0.1", "localhost")
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	return ca
}

// httpsClient trusts ca and speaks to Gozer's HTTPS port as host (the SNI).
func httpsClient(t testing.TB, ca *testCA, host string, conf func(*tls.Config)) *http.Client {
	t.Helper()
	tc := &tls.Config{RootCAs: ca.pool, ServerName: host}
	if conf != nil {
		conf(tc)
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: false, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// httpsURL is https://HTTPS/path.
func (g *gozer) httpsURL(path string) string { return "https://" + g.HTTPSAddr + path }

// tlsStats is GET /admin/tls's handshake counters.
type tlsStats struct {
	Enabled    bool `json:"enabled"`
	Handshakes struct {
		Total      int64 `json:"handshakes_total"`
		Resumed    int64 `json:"resumed_total"`
		InProgress int64 `json:"handshakes_in_progress"`
		Refused    int64 `json:"refused_too_many_handshakes_total"`
		// RefusedPerIP: over server.max_requests_per_ip.
		RefusedPerIP int64 `json:"refused_handshakes_per_ip_total"`
		// Evicted: closed to make room for a newer connection.
		Evicted int64 `json:"evicted_handshakes_total"`
		// EvictedBusy: those of them evicted for their address's share.
		EvictedBusy int64 `json:"evicted_from_busy_addresses_total"`
		// AwaitingHello: connections that sent nothing yet (no slot).
		AwaitingHello int64 `json:"connections_awaiting_hello"`
		// ClosedOnRecordError: a bad record, an alert, a key update flood.
		ClosedOnRecordError int64            `json:"closed_on_record_error_total"`
		Failures            map[string]int64 `json:"handshake_failures_by_reason"`
		Versions            map[string]int64 `json:"handshakes_by_version"`
	} `json:"handshakes"`
	Certificates struct {
		Reloads   int64  `json:"reloads_total"`
		Failures  int64  `json:"reload_failures_total"`
		LastErr   string `json:"last_error"`
		Dev       bool   `json:"dev_certificate"`
		Rotations int64  `json:"ticket_rotations_total"`
	} `json:"certificates"`
	AdminListener struct {
		Enabled      bool             `json:"enabled"`
		ClientAuth   string           `json:"client_auth"`
		Handshakes   int64            `json:"handshakes_total"`
		Failures     map[string]int64 `json:"handshake_failures_by_reason"`
		Certificates *struct {
			Reloads  int64  `json:"reloads_total"`
			Failures int64  `json:"reload_failures_total"`
			LastErr  string `json:"last_error"`
		} `json:"certificates"`
	} `json:"admin_listener"`
}

func (g *gozer) tlsStats(t testing.TB) tlsStats {
	t.Helper()
	resp, b := fetch(t, g.adminClient, "GET", g.adminURL("/admin/tls"), nil, nil)
	var s tlsStats
	if resp.StatusCode != 200 || json.Unmarshal(b, &s) != nil {
		t.Fatalf("GET /admin/tls: status %d, body %q", resp.StatusCode, b)
	}
	return s
}

// waitTLSFailure waits until /admin/tls counts a handshake failure for reason.
func (g *gozer) waitTLSFailure(t testing.TB, reason string, want int64) {
	t.Helper()
	var s tlsStats
	if !eventually(5*time.Second, func() bool { s = g.tlsStats(t); return s.Handshakes.Failures[reason] >= want }) {
		t.Fatalf("/admin/tls handshake_failures_by_reason %v: want %s >= %d", s.Handshakes.Failures, reason, want)
	}
}

// clientCert is a client certificate for cn signed by the CA, valid until
// notAfter (in the past: expired), as a tls.Certificate.
func (ca *testCA) clientCert(t testing.TB, cn string, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.n++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: cn, Organization: []string{"gozer tests"}},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// clientCertFiles writes a client certificate for cn signed by the CA, valid
// for a day, and its key as file.pem and file-key.pem (for settings that name
// files: origins.NAME.tls.cert and key).
func (ca *testCA) clientCertFiles(t testing.TB, file, cn string) (certFile, keyFile string) {
	t.Helper()
	c := ca.clientCert(t, cn, time.Now().Add(24*time.Hour))
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, file+".pem"), filepath.Join(ca.dir, file+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", c.Certificate[0])
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}
