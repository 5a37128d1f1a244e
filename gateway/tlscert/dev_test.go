package tlscert

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestGenerateDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	certFile, keyFile, err := GenerateDev(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if certFile != filepath.Join(dir, DevCertName) || keyFile != filepath.Join(dir, DevKeyName) {
		t.Errorf("files %s %s", certFile, keyFile)
	}
	for _, tc := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o700 | os.ModeDir}, {keyFile, 0o600}, {certFile, 0o644}} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != tc.mode {
			t.Errorf("%s: mode %v, want %v", tc.path, fi.Mode(), tc.mode)
		}
	}
	leaf := parseLeaf(t, certFile)
	if !leaf.IsCA || leaf.KeyUsage&x509.KeyUsageCertSign == 0 || keyType(leaf.PublicKey) != "ecdsa-p256" {
		t.Errorf("IsCA %v, key usage %v, key %s", leaf.IsCA, leaf.KeyUsage, keyType(leaf.PublicKey))
	}
	if d := time.Until(leaf.NotAfter); d < 89*24*time.Hour || d > 90*24*time.Hour {
		t.Errorf("valid for %v more, want 90 days", d)
	}
	roots := poolOf(t, certFile)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}

	// Served: a client that trusts the file verifies the name and the IP.
	s := newStore(t, Options{DevDir: dir})
	addr := serve(t, s.Config())
	for _, sni := range []string{"localhost", ""} {
		if _, err := dial(t, addr, &tls.Config{ServerName: sni, RootCAs: roots}); err != nil {
			t.Errorf("handshake with SNI %q: %v", sni, err)
		}
	}
	if !s.Stats().DevCertificate {
		t.Error("dev_certificate false")
	}
}

func parseLeaf(t *testing.T, certFile string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM")
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func TestDevReuse(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name      string
		prepare   func(t *testing.T, dir string) // before the second New
		wantReuse bool
	}{
		{"valid", func(*testing.T, string) {}, true},
		{"expires in 5 days", func(t *testing.T, dir string) {
			if _, _, err := GenerateDev(dir, now.Add(-85*24*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"garbage", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, DevCertName), []byte("x")) }, false},
		{"key gone", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, DevKeyName)) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			newStore(t, Options{DevDir: dir})
			tc.prepare(t, dir)
			before, _ := os.ReadFile(filepath.Join(dir, DevCertName))
			var log bytes.Buffer
			s := newStore(t, Options{DevDir: dir, Log: zerolog.New(&log)})
			after, _ := os.ReadFile(filepath.Join(dir, DevCertName))
			if reused := bytes.Equal(before, after); reused != tc.wantReuse {
				t.Errorf("reused %v, want %v", reused, tc.wantReuse)
			}
			want := map[bool]string{true: "reusing the development certificate", false: "generated a development certificate"}
			if !strings.Contains(log.String(), want[tc.wantReuse]) {
				t.Errorf("log does not say %q:\n%s", want[tc.wantReuse], log.String())
			}
			if left := s.Stats().Certificates[0].ExpiresInS; left < int64(7*24*3600) {
				t.Errorf("serving a certificate with %ds left", left)
			}
		})
	}
}
