package exchange

import (
	"strings"
	"testing"
	"time"

	"gozer/filters"
	"gozer/gateway/config"
)

// TestPassportSteps: the exchange's own steps, in order, while the passport
// is on; none recorded while it is off.
func TestPassportSteps(t *testing.T) {
	on := func(c *config.Config) { c.Tracing.PassportThreshold = time.Nanosecond }
	r := newRoom(t, on)
	r.origins.pooled = true
	d := r.start(t, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	var states []filters.PassportState
	for _, e := range d.ex.pass.Entries() {
		states = append(states, e.State)
	}
	want := []filters.PassportState{filters.PassStart, filters.PassRoute, filters.PassAttemptStart, filters.PassOriginConnected}
	if len(states) != len(want) {
		t.Fatalf("steps %v, want %v", states, want)
	}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("steps %v, want %v", states, want)
		}
	}
	if e := d.ex.pass.Entries(); e[1].Detail != "api" || e[2].Detail != "127.0.0.1:1001" && e[2].Detail != "127.0.0.1:1002" {
		t.Errorf("details %+v", e)
	}

	// A 503 retried on the other server: the first attempt ends failed, the
	// second starts.
	r.respond(d, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
	var got []string
	for _, e := range d.ex.pass.Entries()[len(want):] {
		got = append(got, e.State.String()+"("+e.Detail+")")
	}
	if g := strings.Join(got, " "); g != "origin_first_byte() attempt_end(failed) attempt_start("+r.origins.last().srv.Addr+") origin_connected(pooled)" {
		t.Errorf("retry steps: %s", g)
	}

	r = newRoom(t, nil)
	r.origins.pooled = true
	d = r.start(t, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if d.ex.flt.fc.Passport != nil || d.ex.pass != nil {
		t.Fatalf("passport off, but the request has one: %v", d.ex.pass)
	}
}

// BenchmarkExchange is one proxied request through the exchange (fake client
// and origin): the cost of the trace context and of the passport, off and
// on. The fakes allocate (a connection per request, the buffers they write)
// and their time varies by microseconds: this shows that neither adds an
// allocation; the nanoseconds are BenchmarkBeginTrace's and
// filters.BenchmarkPassport's.
func BenchmarkExchange(b *testing.B) {
	for _, bc := range []struct {
		name string
		head string
		edit func(*config.Config)
	}{
		{"passport-off", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", nil},
		{"passport-off-client-traceparent", "GET / HTTP/1.1\r\nHost: h\r\ntraceparent: " + clientTP + "\r\n\r\n", nil},
		{"passport-on", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", func(c *config.Config) { c.Tracing.PassportThreshold = time.Hour }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			t := &testing.T{}
			r := newRoom(t, bc.edit)
			r.origins.pooled = true
			b.ReportAllocs()
			for b.Loop() {
				d := r.start(t, bc.head)
				r.respond(d, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if !d.done {
					b.Fatal("not done")
				}
				r.origins.conns = r.origins.conns[:0]
			}
		})
	}
}

// BenchmarkBeginTrace is the trace context's own cost per request: a client's
// traceparent parsed, or a new trace made; and the gateway's span either way.
func BenchmarkBeginTrace(b *testing.B) {
	for _, bc := range []struct{ name, head string }{
		{"generated", "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n"},
		{"client", "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: x\r\nAccept: */*\r\ntraceparent: " + clientTP + "\r\n\r\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := newRoom(&testing.T{}, nil)
			ex := r.lp.Begin(&fakeDS{})
			if err := ex.Request().Parse([]byte(bc.head)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				ex.beginTrace()
			}
		})
	}
}
