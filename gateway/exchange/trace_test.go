package exchange

import (
	"regexp"
	"strings"
	"testing"

	"gozer/gateway/config"
)

const clientTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

var sentTP = regexp.MustCompile(`(?m)^traceparent: (00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2}))\r$`)

// TestTraceparentForwarded: what the origin gets of the client's trace.
func TestTraceparentForwarded(t *testing.T) {
	tests := []struct {
		name       string
		headers    string
		edit       func(*config.Config)
		keepTrace  bool   // the client's trace id goes on
		flags      string // the flags sent
		tracestate bool   // the client's tracestate goes on
	}{
		{"valid", "traceparent: " + clientTP + "\r\ntracestate: v=1\r\n", nil, true, "01", true},
		{"absent", "", nil, false, "00", false},
		{"invalid: uppercase", "traceparent: " + strings.ToUpper(clientTP) + "\r\ntracestate: v=1\r\n", nil, false, "00", false},
		{"invalid: zero trace id", "traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01\r\ntracestate: v=1\r\n", nil, false, "00", false},
		{"not accepted", "traceparent: " + clientTP + "\r\ntracestate: v=1\r\n",
			func(c *config.Config) { c.Tracing.AcceptTraceparent = false }, false, "00", false},
		{"sampled by the gateway", "", func(c *config.Config) { c.Tracing.SampleRatio = 1 }, false, "01", false},
		{"two traceparents", "traceparent: " + clientTP + "\r\ntraceparent: " + clientTP + "\r\ntracestate: v=1\r\n", nil, false, "00", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoom(t, tc.edit)
			r.origins.pooled = true // the head goes out at once
			d := r.start(t, "GET / HTTP/1.1\r\nHost: h\r\n"+tc.headers+"\r\n")
			sent := r.origins.last().wrote.String()
			m := sentTP.FindAllStringSubmatch(sent, -1)
			if len(m) != 1 {
				t.Fatalf("origin got %d traceparents:\n%s", len(m), sent)
			}
			trace, span, flags := m[0][2], m[0][3], m[0][4]
			if got := string(d.ex.TraceID()); got != trace {
				t.Errorf("exchange's trace id %s, origin got %s", got, trace)
			}
			if keep := trace == clientTP[3:35]; keep != tc.keepTrace {
				t.Errorf("client's trace id kept: %v, want %v (sent %s)", keep, tc.keepTrace, m[0][1])
			}
			if span == clientTP[36:52] || span == strings.Repeat("0", 16) || trace == strings.Repeat("0", 32) {
				t.Errorf("parent id %s: not the gateway's own span", m[0][1])
			}
			if flags != tc.flags {
				t.Errorf("flags %s, want %s", flags, tc.flags)
			}
			if got := strings.Contains(sent, "v=1"); got != tc.tracestate {
				t.Errorf("tracestate forwarded: %v, want %v:\n%s", got, tc.tracestate, sent)
			}
			if strings.Count(strings.ToLower(sent), "traceparent:") != 1 {
				t.Errorf("the client's traceparent went on too:\n%s", sent)
			}
		})
	}
}

// TestTraceSpanPerRequest: each request is a span of its own; a retry is
// the same span (the forwarded head is sent again as it is).
func TestTraceSpanPerRequest(t *testing.T) {
	r := newRoom(t, nil)
	r.origins.pooled = true
	head := "GET / HTTP/1.1\r\nHost: h\r\ntraceparent: " + clientTP + "\r\n\r\n"
	d := r.start(t, head)
	first := sentTP.FindStringSubmatch(r.origins.last().wrote.String())
	r.respond(d, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n") // retried on the other server
	if len(r.origins.conns) != 2 {
		t.Fatalf("%d attempts, want 2", len(r.origins.conns))
	}
	retried := sentTP.FindStringSubmatch(r.origins.last().wrote.String())
	if first == nil || retried == nil || first[1] != retried[1] {
		t.Fatalf("attempts sent %v and %v", first, retried)
	}
	r.respond(d, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	r.start(t, head)
	next := sentTP.FindStringSubmatch(r.origins.last().wrote.String())
	if next == nil || next[2] != first[2] || next[3] == first[3] {
		t.Fatalf("second request sent %v after %v: want the same trace, a new span", next, first)
	}
}
