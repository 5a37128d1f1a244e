package tlscert

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestSNI(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, Options{Pairs: []Pair{
		writePair(t, dir, "default", spec{cn: "default", dns: []string{"default.example.net"}}),
		writePair(t, dir, "exact", spec{cn: "exact", dns: []string{"api.example.com"}}),
		writePair(t, dir, "wild", spec{cn: "wild", dns: []string{"*.example.com"}}),
	}})
	addr := serve(t, s.Config())
	for _, tc := range []struct{ sni, want string }{
		{"api.example.com", "exact"}, // the exact name beats the wildcard that covers it too
		{"API.Example.COM", "exact"},
		{"www.example.com", "wild"},
		{"a.b.example.com", "default"}, // a wildcard covers one label
		{"example.com", "default"},
		{"default.example.net", "default"},
		{"unknown.test", "default"},
		{"", "default"}, // dialled by IP: no SNI, and no IP SAN
	} {
		t.Run(tc.sni, func(t *testing.T) {
			if got := servedCN(t, addr, insecure(tc.sni)); got != tc.want {
				t.Errorf("SNI %q got %q, want %q", tc.sni, got, tc.want)
			}
		})
	}
}

func TestIPConnection(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, Options{Pairs: []Pair{
		writePair(t, dir, "default", spec{cn: "default", dns: []string{"default.example.net"}}),
		writePair(t, dir, "ip", spec{cn: "ip", ips: []string{"127.0.0.1"}}),
	}})
	addr := serve(t, s.Config())
	if got := servedCN(t, addr, insecure("")); got != "ip" {
		t.Errorf("no SNI to 127.0.0.1 got %q, want the pair with that IP SAN", got)
	}
	// Verified for real: the client checks the IP SAN against the address.
	if got := servedCN(t, addr, &tls.Config{RootCAs: poolOf(t, s.o.Pairs[1].CertFile)}); got != "ip" {
		t.Errorf("got %q", got)
	}
	if got := servedCN(t, addr, insecure("unknown.test")); got != "default" {
		t.Errorf("unknown SNI got %q, want the default", got)
	}
}

// rsaSuites and ecdsaSuites restrict a TLS 1.2 client to one key type.
var (
	rsaSuites   = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
	ecdsaSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
)

func client12(sni string, suites []uint16) *tls.Config {
	c := insecure(sni)
	c.MaxVersion = tls.VersionTLS12
	c.CipherSuites = suites
	return c
}

func TestKeyTypeByClient(t *testing.T) {
	names := []string{"x.example.com"}
	for _, tc := range []struct {
		name   string
		first  string // key of the first pair; the second has the other
		client *tls.Config
		want   string
	}{
		{"tls13 gets the first", "ecdsa", insecure("x.example.com"), "ecdsa"},
		{"tls13 gets the first rsa", "rsa", insecure("x.example.com"), "rsa"},
		{"tls12 rsa suites", "ecdsa", client12("x.example.com", rsaSuites), "rsa"},
		{"tls12 ecdsa suites", "rsa", client12("x.example.com", ecdsaSuites), "ecdsa"},
		{"tls12 any suite", "ecdsa", client12("x.example.com", nil), "ecdsa"},
		{"unknown name rsa suites", "ecdsa", client12("other.test", rsaSuites), "rsa"},
		{"no sni rsa suites", "ecdsa", client12("", rsaSuites), "rsa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			second := map[string]string{"ecdsa": "rsa", "rsa": "ecdsa"}[tc.first]
			dir := t.TempDir()
			s := newStore(t, Options{Pairs: []Pair{
				writePair(t, dir, "a", spec{cn: tc.first, key: tc.first, dns: names}),
				writePair(t, dir, "b", spec{cn: second, key: second, dns: names}),
			}})
			if got := servedCN(t, serve(t, s.Config()), tc.client); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestProtocol(t *testing.T) {
	dir := t.TempDir()
	pairs := []Pair{writePair(t, dir, "a", spec{cn: "a", dns: []string{"a.example.com"}})}
	tls11 := insecure("a.example.com")
	tls11.MinVersion, tls11.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	tls12 := insecure("a.example.com")
	tls12.MaxVersion = tls.VersionTLS12
	cbc := client12("a.example.com", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA})
	for _, tc := range []struct {
		name    string
		min     uint16
		client  *tls.Config
		wantErr string // "" for a handshake that succeeds
		version uint16
	}{
		{"1.2 refuses 1.1", 0, tls11, "protocol version", 0},
		{"1.2 takes 1.2", tls.VersionTLS12, tls12, "", tls.VersionTLS12},
		{"1.2 prefers 1.3", 0, insecure("a.example.com"), "", tls.VersionTLS13},
		{"1.3 refuses 1.2", tls.VersionTLS13, tls12, "protocol version", 0},
		{"no cbc suites", 0, cbc, "handshake failure", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Options{Pairs: pairs, MinVersion: tc.min})
			st, err := dial(t, serve(t, s.Config()), tc.client)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("handshake error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != tc.version {
				t.Errorf("version %#04x, want %#04x", st.Version, tc.version)
			}
		})
	}
}

func TestALPN(t *testing.T) {
	dir := t.TempDir()
	pairs := []Pair{writePair(t, dir, "a", spec{cn: "a", dns: []string{"a.example.com"}})}
	c := insecure("a.example.com")
	c.NextProtos = []string{"h2", "http/1.1"}
	s := newStore(t, Options{Pairs: pairs})
	st, err := dial(t, serve(t, s.Config()), c)
	if err != nil {
		t.Fatal(err)
	}
	if st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN %q, want the default http/1.1", st.NegotiatedProtocol)
	}
}

// TestSupportsEveryKeyType: Ed25519 leaves load, are named in Stats, and serve.
func TestSupportsEveryKeyType(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, Options{Pairs: []Pair{
		writePair(t, dir, "ec", spec{cn: "ec", dns: []string{"ec.test"}}),
		writePair(t, dir, "rsa", spec{cn: "rsa", key: "rsa", dns: []string{"rsa.test"}}),
		writePair(t, dir, "ed", spec{cn: "ed", key: "ed25519", dns: []string{"ed.test"}}),
	}})
	var got []string
	for _, c := range s.Stats().Certificates {
		got = append(got, c.KeyType)
	}
	if strings.Join(got, " ") != "ecdsa-p256 rsa-2048 ed25519" {
		t.Errorf("key types %v", got)
	}
	if cn := servedCN(t, serve(t, s.Config()), insecure("ed.test")); cn != "ed" {
		t.Errorf("got %q", cn)
	}
}
