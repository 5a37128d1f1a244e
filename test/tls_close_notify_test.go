package test

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestTLSCloseNotifyAnswers: a TLS client's close_notify is a half-close. A
// request at the origin when it comes is still answered, and a long answer
// still on its way when it comes still arrives whole; the connection then
// closes, without waiting for the idle timeout (60 s here, past the test's
// read deadline). Before, the first was a 499 (closed at once) and the
// second closed only at the idle timeout.
func TestTLSCloseNotifyAnswers(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "cn")
	cfg := oneOrigin(nil, o.Addr)
	ca := withHTTPS(t, &cfg)
	cfg.Server = map[string]string{"idle_timeout": "60s", "max_buffered_per_conn": "16MiB"}
	g := startGozer(t, cfg)
	dial := func(t *testing.T) *rawConn {
		// A small receive buffer: a long answer waits in Gozer's.
		d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
		c, err := tls.DialWithDialer(d, "tcp", g.HTTPSAddr, &tls.Config{RootCAs: ca.pool, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return dialed(t, c)
	}
	for _, tc := range []struct {
		name, path string
		ready      func(t *testing.T, c *rawConn) *http.Response // until the moment to half-close
		size       int64
	}{
		{"a request at the origin", "/slow?delay=1s", func(t *testing.T, c *rawConn) *http.Response {
			waitFor(t, 10*time.Second, "the request at the origin", func() bool { return g.adminOrigin(t, "demo").InFlight == 1 })
			return nil
		}, -1},
		{"a long answer on its way", "/bytes?n=6MiB", func(t *testing.T, c *rawConn) *http.Response {
			resp, err := http.ReadResponse(c.br, nil) // its head: the rest is on its way
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}, 6 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t)
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write([]byte("GET " + tc.path + " HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			resp := tc.ready(t, c)
			if err := c.Conn.(*tls.Conn).CloseWrite(); err != nil { // close_notify
				t.Fatal(err)
			}
			if resp == nil {
				var err error
				if resp, err = http.ReadResponse(c.br, nil); err != nil {
					t.Fatalf("no answer after the close_notify: %v", err)
				}
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != 200 || err != nil || tc.size >= 0 && n != tc.size {
				t.Fatalf("status %d, %d body bytes, %v", resp.StatusCode, n, err)
			}
			if _, err := c.br.ReadByte(); err != io.EOF {
				t.Errorf("after the answer: %v, want the connection closed (EOF)", err)
			}
		})
	}
}
