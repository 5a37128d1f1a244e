package exchange

import (
	"strings"
	"syscall"
	"testing"

	"gozer/gateway/config"
)

// hint103 is an origin's 103 Early Hints with hop-by-hop fields beside its Link.
const hint103 = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nConnection: X-Hop\r\n" +
	"X-Hop: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\n\r\n"

// TestExchangeInterim: which of an origin's interim answers reach the client
// (at once, before the final head, without hop-by-hop fields), how many, and
// that a failure after one still gets its own final answer, a retry
// included.
func TestExchangeInterim(t *testing.T) {
	const (
		resp503 = "HTTP/1.1 503 x\r\nContent-Length: 0\r\n\r\n"
		headReq = "HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n"
	)
	off := func(c *config.Config) { c.Server.ForwardEarlyHints = false }
	// upgrade marks the request as a websocket upgrade sent on (what
	// startWebSocket does, without its tunnel slot: the room has no tunnels).
	upgrade := func(_ *testRoom, d *fakeDS) { d.ex.out.ws = true }
	tests := []struct {
		name      string
		head      string
		edit      func(*config.Config)
		http10    bool // the downstream takes no interim answer (an HTTP/1.0 client)
		buffered  int  // what the client holds unread
		steps     []step
		interim   int // interim answers the client got
		status    int
		cause     string
		attempts  int
		forwarded int64
		dropped   int64
	}{
		{name: "103 passed on, then the final answer", head: getHead, steps: []step{answer(hint103 + ok200)},
			interim: 1, status: 200, cause: "SUCCESS", attempts: 1, forwarded: 1},
		{name: "102 and 104 too", head: getHead,
			steps:   []step{answer("HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 104 Upload Resumption Supported\r\n\r\n" + ok200)},
			interim: 2, status: 200, cause: "SUCCESS", attempts: 1, forwarded: 2},
		{name: "100 Continue is not passed on", head: getHead, steps: []step{answer("HTTP/1.1 100 Continue\r\n\r\n" + ok200)},
			status: 200, cause: "SUCCESS", attempts: 1},
		{name: "the 103 in one read, the final head in the next: passed on once", head: getHead,
			steps:   []step{answer(hint103 + "HTTP/1.1 200 OK\r\n"), answer("Content-Length: 2\r\n\r\nhi")},
			interim: 1, status: 200, cause: "SUCCESS", attempts: 1, forwarded: 1},
		{name: "a 103 cut across reads", head: getHead, steps: []step{answer(hint103[:30]), answer(hint103[30:] + ok200)},
			interim: 1, status: 200, cause: "SUCCESS", attempts: 1, forwarded: 1},
		{name: "to a HEAD request, without Content-Length", head: headReq,
			steps:   []step{answer(hint103 + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")},
			interim: 1, status: 200, cause: "SUCCESS", attempts: 1, forwarded: 1},
		{name: "an HTTP/1.0 client gets none", head: getHead, http10: true, steps: []step{answer(hint103 + ok200)},
			status: 200, cause: "SUCCESS", attempts: 1},
		{name: "server.forward_early_hints off", head: getHead, edit: off, steps: []step{answer(hint103 + ok200)},
			status: 200, cause: "SUCCESS", attempts: 1},
		{name: "a websocket upgrade passes none", head: getHead, steps: []step{upgrade, answer(hint103 + ok200)},
			status: 200, cause: "SUCCESS", attempts: 1},
		{name: "a flood: 8 passed on, the rest dropped", head: getHead, steps: []step{answer(strings.Repeat(hint103, 20) + ok200)},
			interim: maxInterim, status: 200, cause: "SUCCESS", attempts: 1, forwarded: maxInterim, dropped: 20 - maxInterim},
		{name: "a client holding its allowance unread gets none", head: getHead, buffered: 1 << 20,
			steps: []step{answer(hint103 + ok200)}, status: 200, cause: "SUCCESS", attempts: 1, dropped: 1},
		{name: "103, then the origin resets: 502", head: getHead, steps: []step{answer(hint103), closeOrigin(syscall.ECONNRESET)},
			interim: 1, status: 502, cause: "FAILURE_ORIGIN_BAD_RESPONSE", attempts: 1, forwarded: 1},
		{name: "103, then silence: 504", head: getHead, steps: []step{answer(hint103), silent()},
			interim: 1, status: 504, cause: "FAILURE_ORIGIN_READ_TIMEOUT", attempts: 1, forwarded: 1},
		{name: "103 and 503, retried: the other server's 103 and 200", head: getHead,
			steps:   []step{answer(hint103 + resp503), answer(hint103 + ok200)},
			interim: 2, status: 200, cause: "SUCCESS", attempts: 2, forwarded: 2},
		{name: "the cap counts over the attempts", head: getHead,
			steps:   []step{answer(strings.Repeat(hint103, 6) + resp503), answer(strings.Repeat(hint103, 6) + ok200)},
			interim: maxInterim, status: 200, cause: "SUCCESS", attempts: 2, forwarded: maxInterim, dropped: 12 - maxInterim},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoom(t, tc.edit)
			d := r.start(t, tc.head)
			d.noInterim, d.buffered = tc.http10, tc.buffered
			for _, s := range tc.steps {
				s(r, d)
			}
			if len(d.interim) != tc.interim {
				t.Fatalf("the client got %d interim answers, want %d: %q", len(d.interim), tc.interim, d.interim)
			}
			for _, h := range d.interim {
				if !strings.HasPrefix(h, "HTTP/1.1 1") || !strings.HasSuffix(h, "\r\n\r\n") {
					t.Fatalf("interim answer %q", h)
				}
				if !strings.HasPrefix(h, "HTTP/1.1 103 Early Hints\r\n") {
					continue
				}
				lower := strings.ToLower(h)
				for _, bad := range []string{"x-hop", "keep-alive", "connection", "content-length"} {
					if strings.Contains(lower, bad) {
						t.Errorf("interim answer %q passed %s", h, bad)
					}
				}
				for _, want := range []string{"Link: </style.css>; rel=preload; as=style\r\n", "Via: 1.1 gozer\r\n", "X-Request-Id: "} {
					if !strings.Contains(h, want) {
						t.Errorf("interim answer %q lacks %q", h, want)
					}
				}
			}
			if d.status != tc.status || d.hdr.Status != tc.cause || d.hdr.Attempts != tc.attempts || !d.done || d.aborted {
				t.Errorf("client got %d %s after %d attempts (done %v, aborted %v), want %d %s after %d",
					d.status, d.hdr.Status, d.hdr.Attempts, d.done, d.aborted, tc.status, tc.cause, tc.attempts)
			}
			sh := r.lp.l.Shared
			if f, dr := sh.InterimForwarded.Load(), sh.InterimDropped.Load(); f != tc.forwarded || dr != tc.dropped {
				t.Errorf("counted %d forwarded, %d dropped; want %d, %d", f, dr, tc.forwarded, tc.dropped)
			}
		})
	}
}
