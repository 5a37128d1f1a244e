package tlscert

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestReload(t *testing.T) {
	dir := t.TempDir()
	p := writePair(t, dir, "a", spec{cn: "one", dns: []string{"a.example.com"}})
	var log bytes.Buffer
	s := newStore(t, Options{Pairs: []Pair{p}, Log: zerolog.New(&log)})
	addr := serve(t, s.Config())
	if got := servedCN(t, addr, insecure("a.example.com")); got != "one" {
		t.Fatalf("got %q", got)
	}

	// A new pair in the same files: new handshakes see it at once.
	c2, k2 := makeCert(t, spec{cn: "two", dns: []string{"a.example.com"}})
	writeFile(t, p.CertFile, c2)
	writeFile(t, p.KeyFile, k2)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := servedCN(t, addr, insecure("a.example.com")); got != "two" {
		t.Fatalf("after reload got %q, want two", got)
	}

	// A certificate whose key is not in the key file: the old set stays.
	c3, _ := makeCert(t, spec{cn: "three", dns: []string{"a.example.com"}})
	writeFile(t, p.CertFile, c3)
	err := s.Reload()
	if err == nil || !strings.Contains(err.Error(), "does not match") || !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("Reload error %v, want a key mismatch", err)
	}
	if !strings.Contains(err.Error(), p.KeyFile) {
		t.Errorf("error %q does not name the key file", err)
	}
	if got := servedCN(t, addr, insecure("a.example.com")); got != "two" {
		t.Fatalf("after a failed reload got %q, want two still", got)
	}
	if !strings.Contains(log.String(), `"level":"warn","error":"tlscert: `+p.KeyFile+`: private key does not match`) {
		t.Errorf("no warning with the reason in the log:\n%s", log.String())
	}
	st := s.Stats()
	if st.ReloadsTotal != 1 || st.ReloadFailuresTotal != 1 || !strings.Contains(st.LastError, "does not match") {
		t.Errorf("stats %+v", st)
	}
}

// TestReloadIfChanged: Run's check compares the files' bytes, not their times.
func TestReloadIfChanged(t *testing.T) {
	dir := t.TempDir()
	p := writePair(t, dir, "a", spec{cn: "one", dns: []string{"a.example.com"}})
	s := newStore(t, Options{Pairs: []Pair{p}})
	step := func(what string, wantChanged bool) {
		t.Helper()
		changed, _ := s.reloadIfChanged()
		if changed != wantChanged {
			t.Errorf("%s: changed = %v, want %v", what, changed, wantChanged)
		}
	}
	step("nothing done", false)
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(p.CertFile, future, future); err != nil {
		t.Fatal(err)
	}
	step("touched", false)
	c, _ := makeCert(t, spec{cn: "bad", dns: []string{"a.example.com"}})
	writeFile(t, p.CertFile, c)
	step("certificate replaced alone", true)
	step("still broken", false) // reported once, not on every check
	if n := s.Stats().ReloadFailuresTotal; n != 1 {
		t.Errorf("reload_failures_total %d, want 1", n)
	}
	c, k := makeCert(t, spec{cn: "two", dns: []string{"a.example.com"}})
	writeFile(t, p.CertFile, c)
	writeFile(t, p.KeyFile, k)
	step("pair replaced", true)
	if st := s.Stats(); st.ReloadsTotal != 1 || st.LastError != "" {
		t.Errorf("stats %+v", st)
	}
}

func TestRunNoticesChange(t *testing.T) {
	dir := t.TempDir()
	p := writePair(t, dir, "a", spec{cn: "one", dns: []string{"a.example.com"}})
	s := newStore(t, Options{Pairs: []Pair{p}, CheckEvery: 10 * time.Millisecond})
	addr := serve(t, s.Config())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { s.Run(stop); close(done) }()
	defer func() { close(stop); <-done }()

	c, k := makeCert(t, spec{cn: "two", dns: []string{"a.example.com"}})
	writeFile(t, p.KeyFile, k)
	writeFile(t, p.CertFile, c)
	waitFor(t, "the new certificate", func() bool { return servedCN(t, addr, insecure("a.example.com")) == "two" })
}

// TestConcurrentUse is for -race: handshakes while the set and keys change.
func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	p := writePair(t, dir, "a", spec{cn: "a", dns: []string{"a.example.com"}})
	s := newStore(t, Options{Pairs: []Pair{p}, SessionTickets: true})
	addr := serve(t, s.Config())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Reload(); err != nil {
				t.Error(err)
			}
			s.rotateTickets()
			_ = s.Stats()
		}
	}()
	var clients sync.WaitGroup
	for range 4 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for range 10 {
				if _, err := dial(t, addr, insecure("a.example.com")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	clients.Wait()
	close(stop)
	wg.Wait()
}
