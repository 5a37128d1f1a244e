package test

// Session tickets over real sockets: a Go client resumes on whichever event
// loop its next connection lands on, and the ticket keys rotate on a timer
// (listeners.https.ticket_key_rotation) with the window the docs promise: a
// ticket resumes while its key is one of the three kept (the current one and
// the two before it); once its key has left, the client does a full
// handshake and its request is served all the same.

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// pinnedCache is a ClientSessionCache that keeps the first ticket a server
// sends and offers it on every later connection. A real client's cache
// (tls.NewLRUClientSessionCache) takes the new ticket every resumption
// brings, issued under the newest key: pinning the first one is how the test
// presents a ticket whose key it knows the age of. Any goroutine.
type pinnedCache struct {
	mu sync.Mutex
	s  *tls.ClientSessionState
}

func (c *pinnedCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s, c.s != nil
}

func (c *pinnedCache) Put(_ string, s *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s == nil && s != nil {
		c.s = s
	}
}

func (c *pinnedCache) pinned() bool {
	_, ok := c.Get("")
	return ok
}

// ticketGet makes one request over a new connection (TLS version, sessions
// from cache) and returns its status and whether the handshake resumed. The
// body is read whole: a TLS 1.3 client takes its ticket in while reading.
// With keepOpen the connection stays open until the test ends, else it is
// closed at once.
func ticketGet(t testing.TB, g *gozer, ca *testCA, version uint16, cache tls.ClientSessionCache, path string, keepOpen bool) (status int, resumed bool) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: !keepOpen, TLSClientConfig: &tls.Config{
		RootCAs: ca.pool, ServerName: "localhost", MinVersion: version, MaxVersion: version, ClientSessionCache: cache,
	}}
	if keepOpen {
		t.Cleanup(tr.CloseIdleConnections)
	} else {
		defer tr.CloseIdleConnections()
	}
	resp, _ := fetch(t, &http.Client{Transport: tr, Timeout: 10 * time.Second}, "GET", g.httpsURL(path), nil, nil)
	return resp.StatusCode, resp.TLS.DidResume
}

// loggedTLS is the loop (the request id's per-loop prefix, gateway/loop) and
// the tls.resumed of the access-log line of path.
func loggedTLS(t testing.TB, g *gozer, path string) (loop string, resumed bool) {
	t.Helper()
	l := g.waitAccessLog(t, path, func(l accessLine) bool { return l.str("path") == path })[0]
	tl, _ := l["tls"].(map[string]any)
	id := l.str("request_id")
	if len(id) != 32 {
		t.Fatalf("access log: request_id %q of %s is not 32 hex digits", id, path)
	}
	return id[:16], tl["resumed"] == true
}

// TestTLSTicketsResumeOnEveryLoop: with an ordinary session cache, every
// connection after the first resumes, over TLS 1.2 and 1.3, and the resumed
// connections are served by both event loops. Every ticket comes from the
// first connection or a resumption after it, so resumptions on both loops
// mean a ticket issued on one loop resumed on the other: the loops share
// their ticket keys. The connections stay open: the acceptor gives a new
// connection to the loop with the fewest (gnet's least-connections), so open
// ones spread the next over both loops (with server.accept_on_loops a hash
// does, so it may take a few more).
func TestTLSTicketsResumeOnEveryLoop(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost", "127.0.0.1")
	o := startOrigin(t, "o")
	g := tlsGozer(t, o.Addr, nil, [2]string{cert, key}) // two event loops (the harness's server.event_loops)

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			cache := tls.NewLRUClientSessionCache(4)
			loops := map[string]int{} // loop → resumed connections it served
			// 6 connections, and more until both loops resumed some: with
			// server.accept_on_loops the kernel picks a connection's loop by a
			// hash of its ports, not in turn (32 make missing one 2^-31 likely).
			const conns, most = 6, 32
			for i := 0; i < conns || (len(loops) < 2 && i < most); i++ {
				path := fmt.Sprintf("/resume/%x/%d", version, i)
				status, resumed := ticketGet(t, g, ca, version, cache, path, true)
				if status != 200 || resumed != (i > 0) {
					t.Fatalf("connection %d: status %d, resumed %v; want 200, resumed %v", i, status, resumed, i > 0)
				}
				loop, logged := loggedTLS(t, g, path)
				if logged != resumed {
					t.Errorf("connection %d: access log tls.resumed %v, the client saw %v", i, logged, resumed)
				}
				if resumed {
					loops[loop]++
				}
			}
			if len(loops) != 2 {
				t.Errorf("resumed connections by loop %v: want both loops to have resumed some", loops)
			}
		})
	}
	if s := g.tlsStats(t); s.Handshakes.Resumed < 10 {
		t.Errorf("/admin/tls resumed_total %d, want at least 10 (5 per version)", s.Handshakes.Resumed)
	}
}

// TestTLSTicketKeyRotation: ticket keys rotate every second here. A ticket
// still resumes one and two rotations after the key that issued it was put in
// service (the two keys before the current one still decrypt); three
// rotations after, its key is gone: the client does a full handshake and its
// request is answered 200. /admin/tls counts the rotations, and the access log
// says which requests resumed.
func TestTLSTicketKeyRotation(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost", "127.0.0.1")
	o := startOrigin(t, "o")
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			t.Parallel()
			g := tlsGozer(t, o.Addr, map[string]string{"ticket_key_rotation": "1s"}, [2]string{cert, key})
			rotations := func() int64 { return g.tlsStats(t).Certificates.Rotations }
			g.waitLog(t, "ticket_key_rotation 1s") // the warning a rotation under a minute earns

			// at brackets one connection between two readings of the rotation
			// count, until none came in between: the count is then the age the
			// ticket's key had (the key in service when a ticket was issued
			// is the count's). Rotations are a second apart; a connection on
			// loopback takes milliseconds.
			at := func(cache *pinnedCache, path string) (count int64, resumed bool) {
				waitFor(t, 10*time.Second, "a connection between two rotations", func() bool {
					before := rotations()
					var status int
					status, resumed = ticketGet(t, g, ca, version, cache, path, false)
					if status != 200 {
						t.Fatalf("GET %s: status %d, want 200", path, status)
					}
					count = before
					return rotations() == before
				})
				return count, resumed
			}

			// The ticket: from a full handshake with no rotation around it
			// (else a fresh cache and another try).
			var cache *pinnedCache
			var issued int64
			for try := 0; cache == nil || !cache.pinned(); try++ {
				if try == 10 {
					t.Fatal("no first handshake left a ticket between two rotations in 10 tries")
				}
				cache = &pinnedCache{}
				before := rotations()
				status, resumed := ticketGet(t, g, ca, version, cache, fmt.Sprintf("/tickets/%x/first-%d", version, try), false)
				if status != 200 || resumed {
					t.Fatalf("the first connection: status %d, resumed %v; want 200, a full handshake", status, resumed)
				}
				if rotations() != before {
					cache = nil
					continue
				}
				issued = before
			}

			for _, step := range []struct {
				age     int64 // rotations since the ticket's key was put in service
				resumes bool
			}{{1, true}, {2, true}, {3, false}} {
				waitFor(t, 10*time.Second, fmt.Sprintf("rotation %d after the ticket's", step.age), func() bool {
					return rotations() >= issued+step.age
				})
				path := fmt.Sprintf("/tickets/%x/age-%d", version, step.age)
				count, resumed := at(cache, path)
				age := count - issued
				if step.resumes && age != step.age {
					t.Fatalf("the ticket was presented %d rotations after its key, want %d: the test fell behind the 1s rotation", age, step.age)
				}
				if resumed != step.resumes {
					t.Errorf("a ticket %d rotations old: resumed %v, want %v", age, resumed, step.resumes)
				}
				if _, logged := loggedTLS(t, g, path); logged != step.resumes {
					t.Errorf("a ticket %d rotations old: access log tls.resumed %v, want %v", age, logged, step.resumes)
				}
			}
		})
	}
}
