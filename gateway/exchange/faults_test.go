package exchange

import (
	"strings"
	"testing"
	"time"

	"gozer/filters"
	"gozer/gateway/config"
)

// withFaults is a newRoom edit that sets fault_injection.
func withFaults(rules ...config.FaultRule) func(*config.Config) {
	return func(c *config.Config) { c.FaultInjection = rules }
}

func TestFaultInjection(t *testing.T) {
	armed := 0
	afterFunc = func(time.Duration, func()) *time.Timer { armed++; return nil } // fired by hand below
	t.Cleanup(func() { afterFunc = time.AfterFunc })
	hdr := config.FaultRule{Name: "r", Header: "X-Chaos", Percent: 100}
	abort, reset, slow := hdr, hdr, hdr
	abort.Abort, reset.Reset, slow.SlowBody = 418, true, 1000
	big := strings.Repeat("x", 1000)
	tests := []struct {
		name    string
		rule    config.FaultRule
		head    string
		check   func(t *testing.T, r *testRoom, d *fakeDS)
		dialled int // origin connections made
	}{
		{"abort", abort, "GET / HTTP/1.1\r\nHost: h\r\nX-Chaos: 1\r\n\r\n", func(t *testing.T, r *testRoom, d *fakeDS) {
			if d.status != 418 || d.hdr.Status != filters.LocalInjected.Name || !d.done {
				t.Fatalf("status %d cause %q done %v", d.status, d.hdr.Status, d.done)
			}
		}, 0},
		{"no header: untouched", abort, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", func(t *testing.T, r *testRoom, d *fakeDS) {
			r.respond(d, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			if d.status != 200 || d.ex != nil && d.ex.fault.kinds != "" {
				t.Fatalf("status %d", d.status)
			}
		}, 1},
		{"reset", reset, "GET / HTTP/1.1\r\nHost: h\r\nX-Chaos: 1\r\n\r\n", func(t *testing.T, r *testRoom, d *fakeDS) {
			if !d.aborted || d.status != 0 {
				t.Fatalf("aborted %v, status %d", d.aborted, d.status)
			}
		}, 0},
		{"slow body: 100 bytes, then the origin pauses", slow, "GET / HTTP/1.1\r\nHost: h\r\nX-Chaos: 1\r\n\r\n", func(t *testing.T, r *testRoom, d *fakeDS) {
			r.respond(d, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"+big)
			c := r.origins.last()
			if d.status != 200 || d.body.Len() != 100 || !c.paused || !d.ex.fault.throttled {
				t.Fatalf("status %d, %d bytes sent, origin paused %v", d.status, d.body.Len(), c.paused)
			}
			for i := 0; i < 9; i++ {
				r.event(d.ex.faultFired) // what the timer does, on the loop
			}
			if armed != 9 {
				t.Fatalf("%d timers armed, want one per pause (9)", armed)
			}
			if !d.done || d.body.String() != big {
				t.Fatalf("after 9 more ticks: done %v, %d bytes", d.done, d.body.Len())
			}
		}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoom(t, withFaults(tc.rule))
			d := r.start(t, tc.head)
			tc.check(t, r, d)
			if len(r.origins.conns) != tc.dialled {
				t.Fatalf("%d origin connections, want %d", len(r.origins.conns), tc.dialled)
			}
		})
	}
}

// TestFaultNoneConfigured: without rules nothing is matched, nothing counted.
func TestFaultNoneConfigured(t *testing.T) {
	r := newRoom(t, nil)
	if r.lp.l.Snapshot().Faults != nil {
		t.Fatal("no fault_injection: no Set")
	}
	d := r.start(t, "GET / HTTP/1.1\r\nHost: h\r\nX-Chaos: 1\r\n\r\n")
	r.respond(d, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if d.status != 200 {
		t.Fatalf("status %d", d.status)
	}
	for k, n := range r.lp.l.Shared.Faults.Counts() {
		if n != 0 {
			t.Fatalf("%s counted %d", k, n)
		}
	}
}

// BenchmarkExchangeFaults is BenchmarkExchange's request with no rule, and
// with a rule in service that the request does not match (a header it
// lacks): what failure injection costs the requests it leaves alone.
func BenchmarkExchangeFaults(b *testing.B) {
	for _, bc := range []struct {
		name  string
		rules []config.FaultRule
	}{
		{"none", nil},
		{"rule-not-matching", []config.FaultRule{{Header: "X-Chaos", Percent: 100, Abort: 503}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			t := &testing.T{}
			r := newRoom(t, withFaults(bc.rules...))
			r.origins.pooled = true
			b.ReportAllocs()
			for b.Loop() {
				d := r.start(t, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
				r.respond(d, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if !d.done {
					b.Fatal("not done")
				}
				r.origins.conns = r.origins.conns[:0]
			}
		})
	}
}
