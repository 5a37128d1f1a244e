package test

// SSE devices of the push tests: a reader of GET /push/sse that parses its
// events (and keepalive comments) as a browser's EventSource would.

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// sseEvent is one event (or keepalive comment) an SSE device received.
type sseEvent struct {
	id      string
	data    string // data lines joined by \n
	event   string
	comment bool // a ":" line, no event
}

// sseDevice is an SSE push client (net/http, streaming body) whose reader puts
// every event and comment on events.
type sseDevice struct {
	name   string
	resp   *http.Response
	events chan sseEvent
	err    error
}

// dialSSE opens GET /push/sse?token=... with Accept: text/event-stream and
// lastID as Last-Event-ID when not empty, and checks the 200 text/event-stream.
func dialSSE(t testing.TB, g *gozer, name, token, lastID string) *sseDevice {
	t.Helper()
	return dialSSEURL(t, name, g.URL("/push/sse?token="+url.QueryEscape(token)), lastID)
}

// dialSSEURL is dialSSE at the URL u.
func dialSSEURL(t testing.TB, name, u, lastID string) *sseDevice {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("SSE %s: %v", name, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		t.Fatalf("SSE %s: status %d, Content-Type %q, body %q; want 200 text/event-stream",
			name, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	d := &sseDevice{name: name, resp: resp, events: make(chan sseEvent, 1024)}
	go d.read()
	return d
}

func (d *sseDevice) read() {
	defer close(d.events)
	r := bufio.NewReader(d.resp.Body)
	var ev sseEvent
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			d.err = err
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			// As EventSource does: a block without data lines (a "retry:" alone)
			// dispatches no event.
			if data != nil {
				ev.data = strings.Join(data, "\n")
				d.events <- ev
			}
			ev, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
			d.events <- sseEvent{comment: true, data: line}
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				ev.id = v
			case "data":
				data = append(data, v)
			case "event":
				ev.event = v
			}
		}
	}
}

// nextEvent returns the next event that is not a comment.
func (d *sseDevice) nextEvent(t testing.TB, timeout time.Duration) sseEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-d.events:
			if !ok {
				t.Fatalf("SSE %s: stream ended before an event came: %v", d.name, d.err)
			}
			if !ev.comment {
				return ev
			}
		case <-deadline:
			t.Fatalf("SSE %s: no event within %v", d.name, timeout)
		}
	}
}
