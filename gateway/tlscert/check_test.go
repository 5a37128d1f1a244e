package tlscert

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	day := 24 * time.Hour
	good := writePair(t, dir, "good", spec{cn: "good", dns: []string{"good.test"}})
	soon := writePair(t, dir, "soon", spec{cn: "soon", dns: []string{"soon.test"}, notAfter: time.Now().Add(10 * day)})
	expired := writePair(t, dir, "expired", spec{cn: "expired", dns: []string{"x.test"}, notAfter: time.Now().Add(-day)})
	noSAN := writePair(t, dir, "nosan", spec{cn: "nosan"})
	other := writePair(t, dir, "other", spec{cn: "other", dns: []string{"o.test"}})
	mismatch := Pair{CertFile: good.CertFile, KeyFile: other.KeyFile}
	missing := Pair{CertFile: filepath.Join(dir, "missing.crt"), KeyFile: good.KeyFile}
	garbage := Pair{CertFile: filepath.Join(dir, "garbage.crt"), KeyFile: good.KeyFile}
	writeFile(t, garbage.CertFile, []byte("not pem"))
	devDir := filepath.Join(dir, "dev")

	for _, tc := range []struct {
		name     string
		o        Options
		wantWarn string // a warning contains it ("" for none)
		wantErr  error
		errFile  string // the error names it
	}{
		{"good", Options{Pairs: []Pair{good}}, "", nil, ""},
		{"expires in 10 days", Options{Pairs: []Pair{good, soon}}, "expires in 10 days", nil, ""},
		{"no SANs", Options{Pairs: []Pair{good, noSAN}}, "no DNS or IP subject alternative names", nil, ""},
		{"expired", Options{Pairs: []Pair{good, expired}}, "", ErrExpired, expired.CertFile},
		{"mismatch", Options{Pairs: []Pair{mismatch}}, "", ErrKeyMismatch, mismatch.KeyFile},
		{"missing", Options{Pairs: []Pair{missing}}, "", fs.ErrNotExist, missing.CertFile},
		{"not PEM", Options{Pairs: []Pair{garbage}}, "", ErrNoPEM, garbage.CertFile},
		{"every failure", Options{Pairs: []Pair{expired, mismatch}}, "", ErrKeyMismatch, expired.CertFile},
		{"dev", Options{DevDir: devDir}, "development certificate will be generated in " + devDir, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warnings, err := Check(tc.o)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if msg := err.Error(); !strings.Contains(msg, tc.errFile) || !strings.HasPrefix(msg, "tlscert: ") {
					t.Errorf("error %q does not name %s", msg, tc.errFile)
				}
				if _, nerr := New(tc.o); !errors.Is(nerr, tc.wantErr) {
					t.Errorf("New error %v, want %v like Check", nerr, tc.wantErr)
				}
				return
			}
			joined := strings.Join(warnings, "\n")
			if (tc.wantWarn == "") != (len(warnings) == 0) || !strings.Contains(joined, tc.wantWarn) {
				t.Errorf("warnings %q, want one with %q", warnings, tc.wantWarn)
			}
		})
	}
	if _, err := os.Stat(devDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Check created the development directory: %v", err)
	}
}

func TestOptionErrors(t *testing.T) {
	dir := t.TempDir()
	good := writePair(t, dir, "good", spec{cn: "good", dns: []string{"good.test"}})
	for _, o := range []Options{
		{},
		{Pairs: []Pair{good}, MinVersion: tls.VersionTLS11},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

func TestStatsJSON(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	p := writePair(t, dir, "a", spec{cn: "a", dns: []string{"A.example.com"}, ips: []string{"192.0.2.1"},
		notAfter: now.Add(time.Hour)})
	s := newStore(t, Options{Pairs: []Pair{p}, Now: func() time.Time { return now }})
	b, err := json.Marshal(s.Stats())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"reloads_total":0,"reload_failures_total":0,"last_error":"","last_reload":"2030-01-02T03:04:05Z",` +
		`"dev_certificate":false,"certificates":[{"cert_file":"` + p.CertFile + `","names":["a.example.com","192.0.2.1"],` +
		`"key_type":"ecdsa-p256","not_after":"2030-01-02T04:04:05Z","expires_in_s":3600}],"ticket_rotations_total":0}`
	if string(b) != want {
		t.Errorf("stats\n got %s\nwant %s", b, want)
	}
}
