package test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestHTTP2PushSSE: an SSE push device over HTTP/2 (h2c and h2 over TLS)
// gets its messages on its stream while the same connection serves other
// requests; closing its stream (RST_STREAM) unregisters it, the connection
// goes on.
func TestHTTP2PushSSE(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "h2", false, "127.0.0.1")
	cfg := pushConfig(t, nil)
	cfg.H2C = true
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	g := startGozer(t, cfg)
	for _, tc := range []struct {
		name   string
		client *http.Client
		base   string
	}{
		{"h2c", h2cClient(t), "http://" + g.ProxyAddr},
		{"h2", h2TLSClient(t, ca), "https://" + g.HTTPSAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "h2-sse-" + tc.name
			req, _ := http.NewRequest("GET", tc.base+"/push/sse?token="+url.QueryEscape(g.pushToken(t, id, "1h")), nil)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("SSE over HTTP/2: %d %s %q", resp.StatusCode, resp.Proto, resp.Header.Get("Content-Type"))
			}
			d := &sseDevice{name: id, resp: resp, events: make(chan sseEvent, 64)}
			go d.read()
			g.waitConnected(t, id, true, 5*time.Second)
			for _, msg := range []string{"one", "two"} {
				g.push(t, id, msg, 200)
				if ev := nextEvent(t, d); ev.data != msg {
					t.Fatalf("pushed %q, the device got %+v", msg, ev)
				}
			}
			// The same connection serves other requests meanwhile.
			r2, err := tc.client.Get(tc.base + "/healthcheck-not-routed")
			if err != nil {
				t.Fatal(err)
			}
			r2.Body.Close()
			if r2.ProtoMajor != 2 {
				t.Fatalf("second request: %s", r2.Proto)
			}
			resp.Body.Close() // RST_STREAM CANCEL
			g.waitConnected(t, id, false, 5*time.Second)
		})
	}
}

// nextEvent is the device's next event (comments skipped), within 5 s.
func nextEvent(t *testing.T, d *sseDevice) sseEvent {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-d.events:
			if !ok {
				t.Fatalf("%s: stream ended: %v", d.name, d.err)
			}
			if !ev.comment {
				return ev
			}
		case <-deadline:
			t.Fatalf("%s: no event within 5s", d.name)
		}
	}
}
