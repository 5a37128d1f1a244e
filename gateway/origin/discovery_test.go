package origin

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDNS is a resolver whose answers the test changes.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][]string
	fail    map[string]bool
	calls   int
}

func (f *fakeDNS) set(host string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[host] = addrs
}

func (f *fakeDNS) setFail(host string, fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[host] = fail
}

func (f *fakeDNS) resolve(_ context.Context, host string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail[host] {
		return nil, errors.New("server misbehaving")
	}
	return slices.Clone(f.answers[host]), nil
}

func newFakeDNS() *fakeDNS {
	return &fakeDNS{answers: map[string][]string{}, fail: map[string]bool{}}
}

func addrs(s *ServerSet) []string {
	var out []string
	for _, srv := range s.List {
		out = append(out, srv.Addr)
	}
	return out
}

func TestDiscoveryParse(t *testing.T) {
	dns := newFakeDNS()
	dns.set("api.internal", "10.0.0.2", "10.0.0.1")
	tests := []struct {
		name    string
		servers []string
		weights map[string]int
		want    []string
		wantErr string
	}{
		{"static only", []string{"127.0.0.1:80", "[::1]:81"}, nil, []string{"127.0.0.1:80", "[::1]:81"}, ""},
		{"name expands, sorted", []string{"api.internal:8080"}, nil, []string{"10.0.0.1:8080", "10.0.0.2:8080"}, ""},
		{"static and name, duplicates once", []string{"10.0.0.1:8080", "api.internal:8080"}, nil, []string{"10.0.0.1:8080", "10.0.0.2:8080"}, ""},
		{"no port", []string{"127.0.0.1"}, nil, nil, "is not host:port"},
		{"bad port", []string{"127.0.0.1:99999"}, nil, nil, "no valid port"},
		{"bad weight", []string{"127.0.0.1:80"}, map[string]int{"127.0.0.1:80": 0}, nil, "must be at least 1"},
		{"name that never resolves", []string{"nope.internal:80"}, nil, nil, "no addresses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDiscovery("api", DiscoveryConfig{Servers: tc.servers, Weights: tc.weights, Resolve: dns.resolve})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := addrs(d.Servers()); !slices.Equal(got, tc.want) {
				t.Fatalf("servers %v, want %v", got, tc.want)
			}
			for i, s := range d.Servers().List {
				if s.Index != i {
					t.Fatalf("initial slots not 0..n-1: %s has %d", s.Addr, s.Index)
				}
			}
		})
	}
}

// Across refreshes: unchanged addresses keep their *Server (and its load and
// ejection state), a failed lookup keeps the last good set, a reordered answer is
// no change, and a new server takes the slot a departed one freed.
func TestDiscoveryRefresh(t *testing.T) {
	dns := newFakeDNS()
	dns.set("api.internal", "10.0.0.1", "10.0.0.2", "10.0.0.3")
	d, err := NewDiscovery("api", DiscoveryConfig{
		Servers: []string{"api.internal:80", "192.168.1.1:80"},
		Weights: map[string]int{"api.internal:80": 2},
		Resolve: dns.resolve, Refresh: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := d.Servers()
	byAddr := map[string]*Server{}
	for _, s := range first.List {
		byAddr[s.Addr] = s
	}
	if byAddr["10.0.0.1:80"].Weight != 2 || byAddr["192.168.1.1:80"].Weight != 1 {
		t.Fatal("weights not applied per entry")
	}
	byAddr["10.0.0.1:80"].outstanding.Store(7)

	steps := []struct {
		name        string
		change      func()
		wantAddrs   []string
		wantVersion uint64
		wantErr     bool
	}{
		{"same answer reordered", func() { dns.set("api.internal", "10.0.0.3", "10.0.0.1", "10.0.0.2") },
			[]string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "192.168.1.1:80"}, first.Version, false},
		{"lookup fails: last good set", func() { dns.setFail("api.internal", true) },
			[]string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "192.168.1.1:80"}, first.Version, true},
		{"empty answer: last good set", func() { dns.setFail("api.internal", false); dns.set("api.internal") },
			[]string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "192.168.1.1:80"}, first.Version, true},
		{"one leaves, one arrives", func() { dns.set("api.internal", "10.0.0.1", "10.0.0.3", "10.0.0.4") },
			[]string{"10.0.0.1:80", "10.0.0.3:80", "10.0.0.4:80", "192.168.1.1:80"}, first.Version + 1, false},
	}
	for _, st := range steps {
		st.change()
		err := d.Refresh(ctx)
		if (err != nil) != st.wantErr {
			t.Fatalf("%s: Refresh err = %v, want error %v", st.name, err, st.wantErr)
		}
		if (d.LastError() != "") != st.wantErr {
			t.Fatalf("%s: LastError = %q", st.name, d.LastError())
		}
		cur := d.Servers()
		if got := addrs(cur); !slices.Equal(got, st.wantAddrs) || cur.Version != st.wantVersion {
			t.Fatalf("%s: servers %v v%d, want %v v%d", st.name, got, cur.Version, st.wantAddrs, st.wantVersion)
		}
	}
	cur := d.Servers()
	for _, s := range cur.List {
		if old, ok := byAddr[s.Addr]; ok && old != s {
			t.Fatalf("%s got a new *Server although it stayed", s.Addr)
		}
	}
	if cur.List[0].Outstanding() != 7 {
		t.Fatal("load counter lost across refresh")
	}
	newcomer := cur.List[2]
	if newcomer.Addr != "10.0.0.4:80" || newcomer.Index != byAddr["10.0.0.2:80"].Index {
		t.Fatalf("newcomer %s took slot %d, want the departed server's %d", newcomer.Addr, newcomer.Index, byAddr["10.0.0.2:80"].Index)
	}
	if first.List[1].Addr != "10.0.0.2:80" {
		t.Fatal("an old snapshot changed under its holder")
	}
}

// The refresh goroutine picks a DNS change up by itself, and Close stops it.
func TestDiscoveryBackgroundRefresh(t *testing.T) {
	dns := newFakeDNS()
	dns.set("api.internal", "10.0.0.1")
	d, err := NewDiscovery("api", DiscoveryConfig{Servers: []string{"api.internal:80"}, Resolve: dns.resolve, Refresh: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	defer d.Close()
	dns.set("api.internal", "10.0.0.9")
	deadline := time.Now().Add(5 * time.Second)
	for d.Servers().List[0].Addr != "10.0.0.9:80" {
		if time.Now().After(deadline) {
			t.Fatalf("DNS change not picked up in 5 s: %v", addrs(d.Servers()))
		}
		time.Sleep(time.Millisecond)
	}
	d.Close()
	select {
	case <-d.done: // Close returned only after the goroutine ended
	default:
		t.Fatal("refresh goroutine still running after Close")
	}
}

func TestDiscoveryStaticNeedsNoGoroutine(t *testing.T) {
	d, err := NewDiscovery("api", DiscoveryConfig{Servers: []string{"127.0.0.1:80"}})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	select {
	case <-d.done:
	default:
		t.Fatal("a static origin started a refresh goroutine")
	}
	d.Close()
	// Close without Start must not hang either.
	d2, _ := NewDiscovery("api", DiscoveryConfig{Servers: []string{"127.0.0.1:80"}})
	d2.Close()
}

// The real resolver, on a name every machine has.
func TestDiscoveryRealResolverLocalhost(t *testing.T) {
	d, err := NewDiscovery("local", DiscoveryConfig{Servers: []string{"localhost:8080"}, Refresh: -1})
	if err != nil {
		t.Fatal(err)
	}
	got := addrs(d.Servers())
	if !slices.Contains(got, "127.0.0.1:8080") && !slices.Contains(got, "[::1]:8080") {
		t.Fatalf("localhost resolved to %v", got)
	}
}
