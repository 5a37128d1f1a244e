package exchange

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"gozer/filters"
	"gozer/gateway/config"
	"gozer/gateway/httpcodec"
	"gozer/gateway/originconn"
)

func TestDecideRetry(t *testing.T) {
	base := retryInput{idempotent: true, bodyDone: true, attempts: 1, retries: 1}
	with := func(f func(*retryInput)) retryInput { in := base; f(&in); return in }
	tests := []struct {
		name string
		in   retryInput
		want verdict
	}{
		{"connect failure", with(func(in *retryInput) { in.kind = failConnect }), retry},
		{"connect failure, POST", with(func(in *retryInput) { in.kind = failConnect; in.idempotent = false }), retry},
		{"no answer, POST with its body sent", with(func(in *retryInput) { in.kind = failNoAnswer; in.idempotent = false }), retry},
		{"no answer, retries used up", with(func(in *retryInput) { in.kind = failNoAnswer; in.attempts = 2 }), giveUp},
		{"no answer on a pooled connection, GET", with(func(in *retryInput) { in.kind = failNoAnswer; in.reusedConn = true }), freeRetry},
		{"pooled, GET, retries 0", with(func(in *retryInput) { in.kind = failNoAnswer; in.reusedConn = true; in.retries = 0 }), freeRetry},
		{"pooled, free retry taken", with(func(in *retryInput) {
			in.kind = failNoAnswer
			in.reusedConn, in.staleUsed = true, true
		}), retry},
		{"pooled, POST", with(func(in *retryInput) { in.kind = failNoAnswer; in.reusedConn = true; in.idempotent = false }), retry},
		{"503 to a GET", with(func(in *retryInput) { in.kind = failStatus }), retry},
		{"503 to a POST", with(func(in *retryInput) { in.kind = failStatus; in.idempotent = false }), giveUp},
		{"503 before the body was sent", with(func(in *retryInput) { in.kind = failStatus; in.bodyDone = false }), giveUp},
		{"silent server, GET", with(func(in *retryInput) { in.kind = failSilent }), retry},
		{"silent server, POST", with(func(in *retryInput) { in.kind = failSilent; in.idempotent = false }), giveUp},
		{"a byte reached the client", with(func(in *retryInput) { in.kind = failConnect; in.sent = true }), giveUp},
		{"body no longer held for replay", with(func(in *retryInput) { in.kind = failNoAnswer; in.replayLost = true }), giveUp},
		{"retries 0", with(func(in *retryInput) { in.kind = failConnect; in.retries = 0 }), giveUp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideRetry(tc.in); got != tc.want {
				t.Errorf("decideRetry(%+v) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestCauseOf(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		cause  filters.Cause
		status int
	}{
		{"smuggling", &httpcodec.Error{Status: 400, Cause: httpcodec.CauseSmuggling, Reason: "x"}, filters.ClientSmuggling, 400},
		{"uri too long", &httpcodec.Error{Status: 414, Cause: httpcodec.CauseURITooLong}, filters.ClientURITooLong, 414},
		{"head too large", &httpcodec.Error{Status: 431, Cause: httpcodec.CauseHeadersTooLarge}, filters.ClientHeadersTooLong, 431},
		{"bad request with its own status", &httpcodec.Error{Status: 505, Cause: httpcodec.CauseBadRequest}, filters.ClientBadRequest, 505},
		{"origin's bad response", &httpcodec.Error{Status: 502, Cause: httpcodec.CauseOriginBadResponse}, filters.OriginBadResponse, 502},
		{"the gateway's own", &Failure{filters.ClientTimeout, "slow"}, filters.ClientTimeout, 408},
		{"wrapped", errors.Join(errors.New("ctx"), &Failure{filters.ClientBodyTooLarge, "big"}), filters.ClientBodyTooLarge, 413},
		{"anything else", errors.New("boom"), filters.ClientBadRequest, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := causeOf(tc.err)
			if c.Name != tc.cause.Name || c.Status != tc.status {
				t.Errorf("causeOf(%v) = %s %d, want %s %d", tc.err, c.Name, c.Status, tc.cause.Name, tc.status)
			}
		})
	}
}

const (
	getHead  = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
	postHead = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
	ok200    = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
)

// step is something that happens to the exchange's current attempt.
type step func(r *testRoom, d *fakeDS)

func answer(b string) step { return func(r *testRoom, d *fakeDS) { r.respond(d, b) } }

func closeOrigin(err error) step {
	return func(r *testRoom, d *fakeDS) {
		c := r.origins.last()
		c.closed = true
		r.event(func() { d.ex.OriginClosed(err) })
	}
}

func dialFails() step {
	return func(r *testRoom, d *fakeDS) {
		r.event(func() { d.ex.OriginDialFailed(syscall.ECONNREFUSED) })
	}
}

func silent() step {
	return func(r *testRoom, d *fakeDS) { r.event(d.ex.OriginTimeout) }
}

func pooled(on bool) step {
	return func(r *testRoom, _ *fakeDS) { r.origins.pooled = on }
}

// TestExchangeAttempts: what the client gets for a request whose attempts meet
// the origin's failures, and how many attempts it took.
func TestExchangeAttempts(t *testing.T) {
	reset := closeOrigin(syscall.ECONNRESET)
	// A TLS 1.3 origin refusing the client certificate, as originconn reports it.
	refused := closeOrigin(fmt.Errorf("%w: remote error: tls: certificate required", originconn.ErrHandshakeRefused))
	tests := []struct {
		name     string
		head     string
		body     []string
		pooled   bool // the first attempt gets a pooled connection
		retries  *int
		steps    []step
		status   int
		cause    string
		attempts int
		conns    int // connections acquired
		aborted  bool
	}{
		{name: "first answer", head: getHead, steps: []step{answer(ok200)},
			status: 200, cause: "SUCCESS", attempts: 1, conns: 1},
		{name: "connect failure, then the other server", head: getHead, steps: []step{dialFails(), answer(ok200)},
			status: 200, cause: "SUCCESS", attempts: 2, conns: 2},
		{name: "connect failure on both", head: getHead, steps: []step{dialFails(), dialFails()},
			status: 502, cause: "FAILURE_ORIGIN_CONNECTIVITY", attempts: 2, conns: 2},
		{name: "TLS handshake refused after the client's side, POST: the other server", head: postHead, body: []string{"hello"},
			steps: []step{refused, answer(ok200)}, status: 200, cause: "SUCCESS", attempts: 2, conns: 2},
		{name: "TLS handshake refused by both servers: a connect failure, not a reset", head: getHead, steps: []step{refused, refused},
			status: 502, cause: "FAILURE_ORIGIN_CONNECTIVITY", attempts: 2, conns: 2},
		{name: "reset before any byte, POST", head: postHead, body: []string{"hello"}, steps: []step{reset, answer(ok200)},
			status: 200, cause: "SUCCESS", attempts: 2, conns: 2},
		{name: "503 to a GET is retried", head: getHead, steps: []step{answer("HTTP/1.1 503 x\r\nContent-Length: 0\r\n\r\n"), answer(ok200)},
			status: 200, cause: "SUCCESS", attempts: 2, conns: 2},
		{name: "503 to a POST is the answer", head: postHead, body: []string{"hello"}, steps: []step{answer("HTTP/1.1 503 x\r\nContent-Length: 0\r\n\r\n")},
			status: 503, cause: "SUCCESS", attempts: 1, conns: 1},
		{name: "silent server, GET", head: getHead, steps: []step{silent(), answer(ok200)},
			status: 200, cause: "SUCCESS", attempts: 2, conns: 2},
		{name: "silent server, POST", head: postHead, body: []string{"hello"}, steps: []step{silent()},
			status: 504, cause: "FAILURE_ORIGIN_READ_TIMEOUT", attempts: 1, conns: 1},
		{name: "stale pooled connection, free retry even with retries 0", head: getHead, pooled: true, retries: new(int),
			steps:  []step{pooled(false), reset, answer(ok200)},
			status: 200, cause: "SUCCESS", attempts: 1, conns: 2},
		{name: "bad response head", head: getHead, steps: []step{answer("HTTP/1.1 2xx nope\r\n\r\n")},
			status: 502, cause: "FAILURE_ORIGIN_BAD_RESPONSE", attempts: 1, conns: 1},
		// The head went out saying SUCCESS; closing the connection is the only
		// honest signal left (the access log says FAILURE_ORIGIN_CLOSED_MID_RESPONSE).
		{name: "closed mid-body: the client's connection closes", head: getHead,
			steps:  []step{answer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"), reset},
			status: 200, cause: "SUCCESS", attempts: 1, conns: 1, aborted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoom(t, func(c *config.Config) {
				if tc.retries != nil {
					c.Origins["api"].Retries = tc.retries
				}
			})
			r.origins.pooled = tc.pooled
			d := r.start(t, tc.head, tc.body...)
			ex := d.ex
			for _, s := range tc.steps {
				s(r, d)
			}
			if d.status != tc.status || d.hdr.Status != tc.cause || d.hdr.Attempts != tc.attempts {
				t.Errorf("client got %d %s after %d attempts, want %d %s after %d",
					d.status, d.hdr.Status, d.hdr.Attempts, tc.status, tc.cause, tc.attempts)
			}
			if n := len(r.origins.conns); n != tc.conns {
				t.Errorf("%d origin connections acquired, want %d", n, tc.conns)
			}
			if d.aborted != tc.aborted || (!tc.aborted && !d.done) {
				t.Errorf("downstream done %v aborted %v, want aborted %v", d.done, d.aborted, tc.aborted)
			}
			if ex.ds != nil {
				t.Error("the exchange still holds its downstream after it ended")
			}
		})
	}
}

// TestExchangeFraming: the request body reaches the origin framed as it came
// (Content-Length) or re-chunked; the response's framing is the downstream's
// to write, the exchange hands it the pieces.
func TestExchangeFraming(t *testing.T) {
	const chunkedHead = "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	streamAtOnce := func(c *config.Config) {
		zero := config.Size(0)
		o := c.Origins["api"]
		o.RequestBuffer = &zero
		c.Origins["api"] = o
	}
	tests := []struct {
		name, head string
		edit       func(*config.Config)
		pieces     []string
		wantSent   string // after the head
		response   string
		wantBody   string
	}{
		{"content-length", postHead, nil, []string{"hel", "lo"}, "hello", ok200, "hi"},
		{"chunked, received whole first (request_buffer), is one chunk", chunkedHead, nil,
			[]string{"hel", "lo"}, "5\r\nhello\r\n0\r\n\r\n", ok200, "hi"},
		{"chunked and streamed (request_buffer 0): the pieces one read brings leave as one chunk", chunkedHead, streamAtOnce,
			[]string{"hel", "lo"}, "5\r\nhello\r\n0\r\n\r\n", ok200, "hi"},
		{"chunked response", getHead, nil, nil, "",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n3\r\nyou\r\n0\r\n\r\n", "hiyou"},
		{"close-delimited response", getHead, nil, nil, "", "HTTP/1.1 200 OK\r\n\r\nuntil close", "until close"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoom(t, tc.edit)
			d := r.start(t, tc.head, tc.pieces...)
			c := r.origins.last()
			r.event(d.ex.OriginOpen)
			sent := c.wrote.String()
			_, body, _ := strings.Cut(sent, "\r\n\r\n")
			if body != tc.wantSent {
				t.Errorf("origin got body %q, want %q", body, tc.wantSent)
			}
			r.respond(d, tc.response)
			if strings.Contains(tc.response, "until close") {
				c.closed = true
				r.event(func() { d.ex.OriginClosed(nil) })
			}
			if got := d.body.String(); got != tc.wantBody || !d.ended || !d.done {
				t.Errorf("client got body %q (ended %v, done %v), want %q", got, d.ended, d.done, tc.wantBody)
			}
		})
	}
}

// TestExchangeLocalAnswers: what the gateway answers itself, and whether the
// connection may carry another request after it.
func TestExchangeLocalAnswers(t *testing.T) {
	tests := []struct {
		name      string
		head      string
		edit      func(*config.Config)
		status    int
		cause     string
		closeConn bool
		body      string
	}{
		{"no route", "GET /x HTTP/1.1\r\nHost: h\r\n\r\n",
			func(c *config.Config) { c.Routes = []config.Route{{PathPrefix: "/only", Origin: "api"}} },
			404, "FAILURE_LOCAL_NO_ROUTE", false, "Not Found\n"},
		{"body over server.max_request_body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999\r\n\r\n",
			func(c *config.Config) { c.Server.MaxRequestBody = 10 },
			413, "FAILURE_CLIENT_BODY_TOO_LARGE", true, "Content Too Large\n"},
		{"HEAD gets no body", "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n",
			func(c *config.Config) { c.Routes = nil },
			404, "FAILURE_LOCAL_NO_ROUTE", false, ""},
		{"HTTP/1.0 without keep-alive closes", "GET /x HTTP/1.0\r\n\r\n",
			func(c *config.Config) { c.Routes = nil },
			404, "FAILURE_LOCAL_NO_ROUTE", true, "Not Found\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoom(t, tc.edit)
			d := r.start(t, tc.head)
			if d.status != tc.status || d.hdr.Status != tc.cause || d.closed != tc.closeConn || d.body.String() != tc.body {
				t.Errorf("got %d %s close %v body %q, want %d %s close %v body %q",
					d.status, d.hdr.Status, d.closed, d.body.String(), tc.status, tc.cause, tc.closeConn, tc.body)
			}
			if len(r.origins.conns) != 0 {
				t.Errorf("an answer the gateway makes itself acquired %d origin connections", len(r.origins.conns))
			}
		})
	}
}

// TestStatusHeadersExposure: who sees X-Gozer-Status (server.status_headers).
func TestStatusHeadersExposure(t *testing.T) {
	const ask = "GET /x HTTP/1.1\r\nHost: h\r\nX-Gozer-Debug: 1\r\n\r\n"
	const plain = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
	tests := []struct {
		name, expose, head, client string
		trusted                    []string
		shown                      bool
	}{
		{"all: every client", "all", plain, "198.51.100.7", nil, true},
		{"none: not even a trusted one that asks", "none", ask, "127.0.0.1", nil, false},
		{"debug: a trusted client that asks", "debug", ask, "127.0.0.1", nil, true},
		{"debug: a trusted client that does not ask", "debug", plain, "127.0.0.1", nil, false},
		{"debug: an untrusted client that asks", "debug", ask, "198.51.100.7", nil, false},
		{"debug: an operator's network", "debug", ask, "10.1.2.3", []string{"10.0.0.0/8"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoom(t, func(c *config.Config) {
				c.Routes = nil
				c.Server.StatusHeaders.Expose = tc.expose
				if tc.trusted != nil {
					c.Server.StatusHeaders.TrustedNetworks = tc.trusted
				}
			})
			d := &fakeDS{client: Client{Remote: tc.client + ":1", Addr: netip.MustParseAddr(tc.client)}, bodyEnd: true}
			r.event(func() {
				d.ex = r.lp.Begin(d)
				if err := d.ex.Request().Parse([]byte(tc.head)); err != nil {
					t.Fatal(err)
				}
				d.ex.Start()
			})
			if d.status != 404 {
				t.Fatalf("status %d, want the 404 of no route", d.status)
			}
			if got := d.hdr.Status != ""; got != tc.shown {
				t.Errorf("X-Gozer-Status shown = %v (%q), want %v", got, d.hdr.Status, tc.shown)
			}
		})
	}
}

func TestIdempotentMethods(t *testing.T) {
	for m, want := range map[string]bool{
		"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true, "PUT": true, "DELETE": true,
		"POST": false, "PATCH": false, "get": false,
	} {
		if got := isIdempotent([]byte(m)); got != want {
			t.Errorf("isIdempotent(%s) = %v, want %v", m, got, want)
		}
	}
}

// TestExchangeClientSide: the client's side of an exchange: it leaves, it stops
// sending its body, it reads slower than the origin sends.
func TestExchangeClientSide(t *testing.T) {
	t.Run("client leaves while the origin works: the origin connection is dropped", func(t *testing.T) {
		r := newRoom(t, nil)
		d := r.start(t, getHead)
		c := r.origins.last()
		r.event(func() { d.ex.OnGone(nil) })
		if !c.aborted || c.released {
			t.Errorf("origin connection aborted %v released %v, want aborted (its stream state is unknown)", c.aborted, c.released)
		}
		if d.status != 0 {
			t.Errorf("the client that left got an answer: %d", d.status)
		}
	})
	t.Run("body stalls: 408 and the connection closes", func(t *testing.T) {
		r := newRoom(t, nil)
		d := r.start(t, postHead, "he")
		d.bodyEnd = false
		r.event(func() { d.ex.OnTimeout(TimeoutBody) })
		if d.status != 408 || d.hdr.Status != "FAILURE_CLIENT_TIMEOUT" || !d.closed {
			t.Errorf("got %d %s close %v, want 408 FAILURE_CLIENT_TIMEOUT and a close", d.status, d.hdr.Status, d.closed)
		}
	})
	t.Run("slow reader: the origin pauses until the client drained", func(t *testing.T) {
		r := newRoom(t, nil)
		d := r.start(t, getHead)
		d.buffered = 1 << 30 // the client takes nothing
		r.respond(d, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
		c := r.origins.last()
		if !c.paused || !d.waiting {
			t.Fatalf("origin paused %v, waiting for the client %v; want both", c.paused, d.waiting)
		}
		d.buffered = 0
		c.in = append(c.in, "-rest!"...)
		r.event(d.ex.OnWritable)
		if c.paused || d.body.String() != "half-rest!" || !d.done || !c.released {
			t.Errorf("after the client drained: paused %v body %q done %v released %v", c.paused, d.body.String(), d.done, c.released)
		}
	})
	t.Run("client stops reading: its connection closes", func(t *testing.T) {
		r := newRoom(t, nil)
		d := r.start(t, getHead)
		d.buffered = 1 << 30
		r.respond(d, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
		c := r.origins.last()
		r.event(func() { d.ex.OnTimeout(TimeoutSend) })
		if !d.aborted || !c.aborted {
			t.Errorf("downstream aborted %v, origin aborted %v: want both", d.aborted, c.aborted)
		}
	})
}

// TestExchangeBuffersBodyBeforeOrigin: a request body is received (up to the
// origin's request_buffer) before the request takes an origin connection, so
// a slow upload holds none; a bigger body goes once its first window is here,
// and a body received whole can be sent again on a retry.
func TestExchangeBuffersBodyBeforeOrigin(t *testing.T) {
	const head = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n"
	// startPart starts the request with part of its body arrived.
	startPart := func(t *testing.T, r *testRoom, part string) *fakeDS {
		d := &fakeDS{client: Client{Remote: "192.0.2.1:1", Addr: netip.MustParseAddr("192.0.2.1")}, pieces: [][]byte{[]byte(part)}}
		r.event(func() {
			d.ex = r.lp.Begin(d)
			if err := d.ex.Request().Parse([]byte(head)); err != nil {
				t.Fatal(err)
			}
			d.ex.Start()
		})
		return d
	}
	t.Run("small body: no connection until it is whole", func(t *testing.T) {
		r := newRoom(t, nil)
		d := startPart(t, r, "hello")
		if len(r.origins.conns) != 0 {
			t.Fatalf("%d origin connections taken before the body arrived", len(r.origins.conns))
		}
		d.pieces, d.bodyEnd = [][]byte{[]byte("world")}, true
		r.event(d.ex.OnBody)
		if len(r.origins.conns) != 1 {
			t.Fatalf("%d origin connections once the body is whole, want 1", len(r.origins.conns))
		}
		c := r.origins.last()
		r.event(d.ex.OriginOpen)
		if _, body, _ := strings.Cut(c.wrote.String(), "\r\n\r\n"); body != "helloworld" {
			t.Fatalf("origin got body %q", body)
		}
		// A reset before any answer: the body is replayed to the next server.
		r.event(func() { c.closed = true; d.ex.OriginClosed(nil) })
		next := r.origins.last()
		if next == c {
			t.Fatal("not retried")
		}
		r.event(d.ex.OriginOpen)
		if _, body, _ := strings.Cut(next.wrote.String(), "\r\n\r\n"); body != "helloworld" {
			t.Fatalf("retry sent body %q, want the buffered one", body)
		}
	})
	t.Run("bigger than request_buffer: goes after the first window", func(t *testing.T) {
		r := newRoom(t, func(c *config.Config) {
			four := config.Size(4)
			o := c.Origins["api"]
			o.RequestBuffer = &four
			c.Origins["api"] = o
		})
		d := startPart(t, r, "he")
		if len(r.origins.conns) != 0 {
			t.Fatal("a connection was taken before the first window arrived")
		}
		d.pieces = [][]byte{[]byte("llo")}
		r.event(d.ex.OnBody)
		if len(r.origins.conns) != 1 {
			t.Fatalf("%d connections once request_buffer bytes arrived, want 1 (the rest streams)", len(r.origins.conns))
		}
	})
}
