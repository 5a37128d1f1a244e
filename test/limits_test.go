package test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// badInput is one request a client should not send, and what Gozer must answer.
type badInput struct {
	name       string
	req        func(id string) string // the raw bytes, for a fresh X-Test-Id value
	wantStatus int
	wantCause  string // X-Gozer-Status, as wantGozerStatus reads it
	wantClose  bool   // the connection must be closed after the answer
	// reach says how far the request may get: "none" (the origin never sees a
	// byte of it), "incomplete" (never a whole request, e.g. a body cut short), or
	// "any".
	reach string
}

// runBadInput sends tc.req on a fresh connection and checks the answer, the
// connection and what the origin saw.
func runBadInput(t *testing.T, g *gozer, o *origin, tc badInput) {
	t.Helper()
	id := uniqueID("bad")
	c := dialRaw(t, g.ProxyAddr)
	// A write error is fine: Gozer may answer and close before reading everything.
	_ = c.write(tc.req(id))
	resp, body, err := c.readResponse("GET")
	if resp == nil {
		t.Fatalf("no answer, want %d: %v", tc.wantStatus, err)
	}
	if resp.StatusCode != tc.wantStatus {
		t.Errorf("status %d, want %d; body %q", resp.StatusCode, tc.wantStatus, tail(string(body), 200))
	}
	wantGozerStatus(t, resp, tc.wantCause)
	checkReach(t, o, id, tc.reach)
	if tc.wantClose {
		if closed, why := c.closedBy(10 * time.Second); !closed {
			t.Errorf("after a %d answer, want the connection closed: %s", resp.StatusCode, tail(why, 300))
		}
	}
	// Bad input must not take the gateway down or wedge it.
	if resp, err := tryGet(g.ProxyAddr, "/counter", 10*time.Second); err != nil || resp.StatusCode != 200 {
		t.Errorf("a good request after the bad one: %v %v", resp, err)
	}
}

// checkReach checks what the origin saw of the request X-Test-Id: id and of any
// request smuggled inside it (X-Test-Id: id-inner).
func checkReach(t *testing.T, o *origin, id, reach string) {
	t.Helper()
	switch s := seen(t, o, id); {
	case reach == "none" && s.Requests+s.Connections > 0:
		t.Errorf("the origin saw the rejected request: %+v", s)
	case reach == "incomplete" && s.Complete > 0:
		t.Errorf("the origin got the rejected request whole: %+v", s)
	}
	if s := seen(t, o, id+"-inner"); s.Requests+s.Connections > 0 {
		t.Errorf("the origin saw the request smuggled inside the rejected one: %+v", s)
	}
}

// raw turns a request where the text ID stands for the X-Test-Id value into a
// request builder.
func raw(s string) func(string) string {
	return func(id string) string { return strings.ReplaceAll(s, "ID", id) }
}

func TestClientLimits(t *testing.T) {
	t.Parallel()
	g, o := proxied(t, map[string]string{
		"header_read_timeout": "1s",
		"max_request_line":    "8KiB",
		"max_header_bytes":    "32KiB",
		"max_request_body":    "1KiB",
		"max_headers":         "50",
	}, nil)
	var bigHeaders []string
	for i := range 40 {
		bigHeaders = append(bigHeaders, fmt.Sprintf("X-Big-%d: %s", i, strings.Repeat("a", 1000)))
	}
	manyHeaders := []string{"X-Test-Id: ID"}
	for i := range 50 { // with Host, 52 fields: 2 over, in 700 bytes
		manyHeaders = append(manyHeaders, fmt.Sprintf("X-%d: 1", i))
	}
	body2k := strings.Repeat("b", 2048)
	tests := []badInput{
		{"header block over 32KiB", raw(request("GET", "/headers", append([]string{"X-Test-Id: ID"}, bigHeaders...)...)),
			431, "FAILURE_CLIENT_HEADERS_TOO_LARGE", true, "none"},
		{"header fields over max_headers", raw(request("GET", "/headers", manyHeaders...)),
			431, "FAILURE_CLIENT_HEADERS_TOO_LARGE", true, "none"},
		{"request line over 8KiB", raw(request("GET", "/headers?q="+strings.Repeat("a", 9000), "X-Test-Id: ID")),
			414, "FAILURE_CLIENT_URI_TOO_LONG", true, "none"},
		{"Content-Length over max_request_body", raw(request("POST", "/sink", "X-Test-Id: ID", "Content-Length: 2048") + body2k),
			413, "FAILURE_CLIENT_BODY_TOO_LARGE", false, "none"},
		{"chunked body growing over max_request_body", raw(request("POST", "/sink", "X-Test-Id: ID", "Transfer-Encoding: chunked") +
			chunked([]byte(body2k+body2k), 512)), 413, "FAILURE_CLIENT_BODY_TOO_LARGE", false, "incomplete"},
		{"slowloris: head never completed", raw("GET /headers HTTP/1.1\r\nHost: gozer.test\r\nX-Test-Id: ID\r\nX-Slow: 1"),
			408, "FAILURE_CLIENT_TIMEOUT", true, "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runBadInput(t, g, o, tc) })
	}
}

func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	g, o := proxied(t, nil, nil)
	tests := []badInput{
		{"request line of one token", raw("NOT-HTTP\r\nX-Test-Id: ID\r\n\r\n"), 400, "FAILURE_CLIENT_BAD_REQUEST", true, "none"},
		{"request line with four tokens", raw("GET /headers HTTP/1.1 extra\r\nHost: gozer.test\r\nX-Test-Id: ID\r\n\r\n"),
			400, "FAILURE_CLIENT_BAD_REQUEST", true, "none"},
		{"control byte in method", raw("G\x01T /headers HTTP/1.1\r\nHost: gozer.test\r\nX-Test-Id: ID\r\n\r\n"),
			400, "FAILURE_CLIENT_BAD_REQUEST", true, "none"},
		{"header line without colon", raw("GET /headers HTTP/1.1\r\nHost: gozer.test\r\nX-Test-Id: ID\r\nno colon here\r\n\r\n"),
			400, "FAILURE_CLIENT_BAD_REQUEST", true, "none"},
		{"HTTP/1.1 without Host", raw("GET /headers HTTP/1.1\r\nX-Test-Id: ID\r\n\r\n"), 400, "FAILURE_CLIENT_BAD_REQUEST", true, "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runBadInput(t, g, o, tc) })
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, map[string]string{"idle_timeout": "1s"}, nil)
	c := dialRaw(t, g.ProxyAddr)
	for i := range 2 { // the connection is kept alive between busy requests
		if resp, _ := c.roundTrip(request("GET", "/counter")); resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	idleSince := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.br.Read(make([]byte, 64)); n != 0 || err != io.EOF {
		t.Fatalf("idle keep-alive connection with idle_timeout 1s: read %d bytes, %v; want a clean EOF", n, err)
	}
	if d := time.Since(idleSince); d < 500*time.Millisecond {
		t.Errorf("idle connection closed after %v, before idle_timeout 1s", d)
	}
}

// tryGet does one GET on a new connection, bounded by timeout; it reports the
// status, or an error when the connection was refused, closed or silent.
func tryGet(addr, path string, timeout time.Duration) (*http.Response, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(request("GET", path))); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, map[string]string{"max_connections": "3"}, nil)
	var held []*rawConn
	for i := range 3 {
		c := dialRaw(t, g.ProxyAddr)
		if resp, _ := c.roundTrip(request("GET", "/counter")); resp.StatusCode != 200 {
			t.Fatalf("connection %d of 3: status %d", i+1, resp.StatusCode)
		}
		held = append(held, c)
	}

	t.Run("4th connection refused", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		_ = c.write(request("GET", "/counter"))
		resp, _, err := c.readResponse("GET")
		if resp == nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("4th connection left hanging without an answer or a close: %v", err)
			}
			return // closed without an answer: allowed
		}
		if resp.StatusCode != 503 {
			t.Fatalf("4th connection got %d, want 503 or a closed connection (read error %v)", resp.StatusCode, err)
		}
		wantGozerStatus(t, resp, "FAILURE_LOCAL_MAX_CONNECTIONS")
		c.mustClose("4th connection after its 503")
	})

	t.Run("first 3 still work", func(t *testing.T) {
		for i, c := range held {
			if resp, _ := c.roundTrip(request("GET", "/counter")); resp.StatusCode != 200 {
				t.Errorf("connection %d: status %d", i+1, resp.StatusCode)
			}
		}
	})

	t.Run("a closed connection frees its slot", func(t *testing.T) {
		held[0].Close()
		waitFor(t, 10*time.Second, "a new connection is served after one of the 3 closed", func() bool {
			resp, err := tryGet(g.ProxyAddr, "/counter", 2*time.Second)
			return err == nil && resp.StatusCode == 200
		})
	})
}
