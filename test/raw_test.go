package test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ioTimeout bounds every single read or write of a raw connection: long enough for a
// loaded 2-core machine, short enough that a hung gateway fails the test clearly.
const ioTimeout = 15 * time.Second

// rawConn is a client TCP connection driven byte by byte.
type rawConn struct {
	t testing.TB
	net.Conn
	br *bufio.Reader
}

// dialRaw opens a TCP connection to addr, closed at cleanup.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, Conn: c, br: bufio.NewReader(c)}
}

// write sends s; the error is returned because a gateway may rightly close a
// connection before it has read everything a bad client sends.
func (c *rawConn) write(s string) error {
	_ = c.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := io.WriteString(c.Conn, s)
	return err
}

// send writes s and fails the test on error.
func (c *rawConn) send(s string) {
	c.t.Helper()
	if err := c.write(s); err != nil {
		c.t.Fatalf("write request: %v", err)
	}
}

// readResponse reads one whole response (head and body) to a request of method.
func (c *rawConn) readResponse(method string) (*http.Response, []byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, nil, fmt.Errorf("read response head: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp, body, fmt.Errorf("read response body (%d bytes so far): %w", len(body), err)
	}
	return resp, body, nil
}

// response reads one whole response and fails the test if there is none.
func (c *rawConn) response(method string) (*http.Response, []byte) {
	c.t.Helper()
	resp, body, err := c.readResponse(method)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, body
}

// roundTrip sends req and reads its response.
func (c *rawConn) roundTrip(req string) (*http.Response, []byte) {
	c.t.Helper()
	c.send(req)
	return c.response(strings.SplitN(req, " ", 2)[0])
}

// closedBy tells whether the peer closes the connection (EOF or reset) within
// timeout, reading and discarding nothing: any byte that arrives instead is reported.
func (c *rawConn) closedBy(timeout time.Duration) (bool, string) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	b := make([]byte, 512)
	n, err := c.br.Read(b)
	switch {
	case n > 0:
		return false, fmt.Sprintf("got %d more bytes instead of a close: %q", n, b[:n])
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return true, ""
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false, fmt.Sprintf("connection still open after %v", timeout)
	default:
		return true, "" // any other read error also means the connection is gone
	}
}

// mustClose fails the test unless the peer closes the connection within 10 s.
func (c *rawConn) mustClose(what string) {
	c.t.Helper()
	if closed, why := c.closedBy(10 * time.Second); !closed {
		c.t.Fatalf("%s: expected the connection to be closed: %s", what, why)
	}
}

// request builds a raw HTTP/1.1 request; extra header lines are written as given.
func request(method, path string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: gozer.test\r\n", method, path)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// chunked encodes body as chunks of the given size, with the final 0 chunk.
func chunked(body []byte, size int) string {
	var b strings.Builder
	for len(body) > 0 {
		n := min(size, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// uniqueID is a fresh value for X-Test-Id or X-Request-Id.
func uniqueID(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// seenCounts is demo-origin's answer to /seen?id=X.
type seenCounts struct {
	Requests    int `json:"requests"`    // heads its handler accepted
	Complete    int `json:"complete"`    // requests whose whole body it read
	Connections int `json:"connections"` // connections whose raw bytes carried the id
}

// seen asks an origin directly what it saw of X-Test-Id: id.
func seen(t testing.TB, o *origin, id string) seenCounts {
	t.Helper()
	resp, err := http.Get(o.URL("/seen?id=" + id))
	if err != nil {
		t.Fatalf("ask origin /seen: %v", err)
	}
	defer resp.Body.Close()
	var s seenCounts
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("decode /seen: %v", err)
	}
	return s
}

// originView is demo-origin's answer to /headers: what it received.
type originView struct {
	Method           string      `json:"method"`
	URI              string      `json:"uri"`
	Host             string      `json:"host"`
	Proto            string      `json:"proto"`
	ContentLength    int64       `json:"content_length"`
	TransferEncoding []string    `json:"transfer_encoding"`
	Headers          http.Header `json:"headers"`
	BodyBytes        int64       `json:"body_bytes"`
}

func decodeView(t testing.TB, body []byte) originView {
	t.Helper()
	var v originView
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("origin /headers answer is not JSON (%v): %q", err, tail(string(body), 500))
	}
	return v
}

// wantGozerStatus checks the X-Gozer-Status header of an error response against
// want: a cause name, a prefix ending in "_", or alternatives joined by "|".
func wantGozerStatus(t testing.TB, resp *http.Response, want string) {
	t.Helper()
	got := resp.Header.Get("X-Gozer-Status")
	for _, w := range strings.Split(want, "|") {
		if got == w || strings.HasSuffix(w, "_") && strings.HasPrefix(got, w) {
			return
		}
	}
	t.Errorf("X-Gozer-Status = %q, want %q", got, want)
}

// serveTCP accepts connections on a loopback port until the test ends, and
// runs handle on each in a goroutine of its own (the connection closes when
// handle returns); it returns the port's address.
func serveTCP(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}
