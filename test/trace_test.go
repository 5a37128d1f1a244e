package test

// W3C Trace Context through real processes: what the origin receives of the
// client's traceparent and tracestate, the access log's trace_id, ctx.trace_id
// in Lua, side calls' spans, and the passport of slow requests.

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

const clientTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

var traceparentRe = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

// traceparentOf splits a traceparent the gateway sent; the test fails on a
// malformed one.
func traceparentOf(t testing.TB, v string) (trace, parent, flags string) {
	t.Helper()
	m := traceparentRe.FindStringSubmatch(v)
	if m == nil {
		t.Fatalf("traceparent %q is not a version 00 traceparent", v)
	}
	if m[1] == strings.Repeat("0", 32) || m[2] == strings.Repeat("0", 16) {
		t.Fatalf("traceparent %q has an all-zero id", v)
	}
	return m[1], m[2], m[3]
}

func TestTraceparent(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	c := newClient(t, 10*time.Second)
	tests := []struct {
		name        string
		traceparent string // "" sends none
		keepTrace   bool   // the origin gets the client's trace id
		flags       string
	}{
		{"valid", clientTraceparent, true, "01"},
		{"absent", "", false, "00"},
		{"uppercase", strings.ToUpper(clientTraceparent), false, "00"},
		{"version ff", "ff" + clientTraceparent[2:], false, "00"},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, "00"},
		{"future version", "01" + clientTraceparent[2:] + "-more", true, "01"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("trace-%d", i)
			hdr := map[string]string{"X-Request-Id": id, "Tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"}
			if tc.traceparent != "" {
				hdr["Traceparent"] = tc.traceparent
			}
			resp, body := fetch(t, c, "GET", g.URL("/headers"), nil, hdr)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			seen := decodeView(t, body).Headers
			if n := len(seen["Traceparent"]); n != 1 {
				t.Fatalf("origin got %d traceparent headers: %v", n, seen["Traceparent"])
			}
			trace, parent, flags := traceparentOf(t, seen["Traceparent"][0])
			if kept := trace == clientTraceparent[3:35]; kept != tc.keepTrace {
				t.Errorf("origin got trace id %s; the client's kept: %v, want %v", trace, kept, tc.keepTrace)
			}
			if parent == clientTraceparent[36:52] {
				t.Errorf("origin got the client's parent id %s: the gateway is a span of its own", parent)
			}
			if flags != tc.flags {
				t.Errorf("flags %s, want %s", flags, tc.flags)
			}
			// tracestate goes on with a valid traceparent, unchanged; without
			// one (absent or invalid) it is dropped.
			state := strings.Join(seen["Tracestate"], ",")
			if tc.keepTrace && state != hdr["Tracestate"] || !tc.keepTrace && state != "" {
				t.Errorf("origin got tracestate %q (client's trace kept: %v)", state, tc.keepTrace)
			}
			line := g.waitAccessLog(t, "request "+id, byRequestID(id))[0]
			if got := line.str("trace_id"); got != trace {
				t.Errorf("access log trace_id %q, origin saw %s", got, trace)
			}
		})
	}
	// Each request is a span of its own.
	parents := map[string]bool{}
	for range 5 {
		_, body := fetch(t, c, "GET", g.URL("/headers"), nil, map[string]string{"Traceparent": clientTraceparent})
		_, parent, _ := traceparentOf(t, decodeView(t, body).Headers["Traceparent"][0])
		parents[parent] = true
	}
	if len(parents) != 5 {
		t.Errorf("5 requests of one trace got %d span ids", len(parents))
	}
}

// TestTraceLua: ctx.trace_id in filters, and a side call's span: the same
// trace, a span id of its own, its own access-log line with the trace id.
func TestTraceLua(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	// The side call asks the "side" origin what it received, and passes its
	// traceparent on to the request's origin as X-Side-Traceparent.
	d.write(t, "inbound", "10_side.lua", luaFilter("side", "inbound", 10, "", `
    local res, err = ctx.http{ origin = "side", path = "/headers", timeout = 5 }
    if res == nil then ctx.respond(503, err) return end
    ctx.req.set_header("X-Side-Traceparent", res.body:match('"Traceparent":%["([^"]*)"%]') or "none")
    ctx.req.set_header("X-Lua-Trace-Id", ctx.trace_id)`, "async = true"))
	d.write(t, "outbound", "10_trace.lua", luaFilter("trace", "outbound", 10, "", `ctx.resp.set_header("X-Trace-Id", ctx.trace_id)`))
	api, side := startOrigin(t, "api"), startOrigin(t, "side")
	g := luaGozer(t, d, filtersConfig{}, servers(api, side), route{PathPrefix: "/", Origin: "api"})
	c := newClient(t, 10*time.Second)

	for _, tc := range []struct{ name, traceparent string }{{"client's trace", clientTraceparent}, {"gateway's trace", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			id := "lua-" + strings.ReplaceAll(tc.name, " ", "-")
			hdr := map[string]string{"X-Request-Id": id}
			if tc.traceparent != "" {
				hdr["Traceparent"] = tc.traceparent
			}
			resp, body := fetch(t, c, "GET", g.URL("/headers"), nil, hdr)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			seen := decodeView(t, body).Headers
			trace, parent, _ := traceparentOf(t, strings.Join(seen["Traceparent"], ""))
			if tc.traceparent != "" && trace != tc.traceparent[3:35] {
				t.Errorf("origin got trace %s, the client sent %s", trace, tc.traceparent)
			}
			if got := resp.Header.Get("X-Trace-Id"); got != trace {
				t.Errorf("ctx.trace_id in the outbound filter %q, origin saw %s", got, trace)
			}
			if got := strings.Join(seen["X-Lua-Trace-Id"], ""); got != trace {
				t.Errorf("ctx.trace_id in the inbound filter %q, origin saw %s", got, trace)
			}
			sideTrace, sideParent, _ := traceparentOf(t, strings.Join(seen["X-Side-Traceparent"], ""))
			if sideTrace != trace || sideParent == parent || sideParent == clientTraceparent[36:52] {
				t.Errorf("side call's traceparent %s-%s; the request's %s-%s: want the same trace, a span of its own",
					sideTrace, sideParent, trace, parent)
			}
			call := g.waitAccessLog(t, "the side call of "+id, func(l accessLine) bool { return l.str("parent_id") == id })[0]
			if got := call.str("trace_id"); got != trace {
				t.Errorf("side call's access-log trace_id %q, want %s", got, trace)
			}
			if got := g.waitAccessLog(t, "request "+id, byRequestID(id))[0].str("trace_id"); got != trace {
				t.Errorf("access-log trace_id %q, want %s", got, trace)
			}
		})
	}
}

// TestPassport: a request slower than tracing.passport_threshold has its
// timeline in its access-log line; a fast one has none.
func TestPassport(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "inbound", "10_mark.lua", luaFilter("mark", "inbound", 10, "", `ctx.req.set_header("X-Marked", "1")`))
	o := startOrigin(t, "o1")
	g := startGozer(t, config{
		Origins: map[string]originConfig{"demo": {Servers: []string{o.Addr}}},
		Routes:  []route{{PathPrefix: "/", Origin: "demo"}},
		Filters: &filtersConfig{Dir: string(d), Budget: "1s"},
		Tracing: map[string]string{"passport_threshold": "300ms"},
	})
	c := newClient(t, 10*time.Second)

	resp, _ := fetch(t, c, "GET", g.URL("/slow?delay=600ms"), nil, map[string]string{"X-Request-Id": "passport-slow"})
	if resp.StatusCode != 200 {
		t.Fatalf("slow request: status %d", resp.StatusCode)
	}
	start := time.Now()
	resp, _ = fetch(t, c, "GET", g.URL("/headers"), nil, map[string]string{"X-Request-Id": "passport-fast"})
	if resp.StatusCode != 200 {
		t.Fatalf("fast request: status %d", resp.StatusCode)
	}
	fastTook := time.Since(start)

	slow := g.waitAccessLog(t, "the slow request", byRequestID("passport-slow"))[0]
	steps, ok := slow["passport"].([]any)
	if !ok {
		t.Fatalf("slow request's line has no passport: %v", slow)
	}
	var states []string
	at := map[string]float64{}
	last := -1.0
	for _, s := range steps {
		m := s.(map[string]any)
		st, _ := m["state"].(string)
		us, _ := m["us"].(float64)
		if us < last {
			t.Errorf("passport goes back in time at %s: %v", st, steps)
		}
		last = us
		if detail, _ := m["detail"].(string); detail != "" {
			st += "(" + detail + ")"
		}
		states = append(states, st)
		at[st] = us
	}
	want := []string{"start", "filter_start(mark)", "filter_end(mark)", "route(demo)", "attempt_start(" + o.Addr + ")",
		"origin_connected(dialled)", "origin_first_byte", "response_head", "attempt_end(ok)", "end"}
	// In this order; the shipped Go filters (Server-Timing) may come between.
	if !subsequence(want, states) {
		t.Errorf("passport\n %s\nwant, in this order,\n %s", strings.Join(states, " "), strings.Join(want, " "))
	}
	if wait := at["origin_first_byte"] - at["origin_connected(dialled)"]; wait < 500e3 {
		t.Errorf("the origin's 600ms show as %v µs between connected and first byte", wait)
	}

	fast := g.waitAccessLog(t, "the fast request", byRequestID("passport-fast"))[0]
	if _, ok := fast["passport"]; ok && fastTook < 300*time.Millisecond {
		t.Errorf("a request of %v has a passport: %v", fastTook, fast)
	}
}

// subsequence reports whether want appears in got in order (other elements
// may come between).
func subsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
