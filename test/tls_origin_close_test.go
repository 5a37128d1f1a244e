package test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// heldConn holds what TLS writes once held is set, and sends it in one write
// at flush: the last records of an answer and the close_notify after them
// reach Gozer in one segment, read in one go.
type heldConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	buf  bytes.Buffer
}

func (h *heldConn) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held {
		return h.buf.Write(p)
	}
	return h.Conn.Write(p)
}

func (h *heldConn) flush() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	// crypto/tls's CloseWrite set the write deadline to now, for its own use.
	_ = h.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := h.Conn.Write(h.buf.Bytes())
	return err
}

// TestTLSOriginCloseNotify: an origin over TLS that ends its answer with
// close_notify right behind it (one segment) gets the whole answer to the
// client. Gozer closed the origin connection as soon as it decrypted the
// close_notify, dropping the plaintext decrypted with it: an answer framed by
// the close came to the client cut short, as if whole.
func TestTLSOriginCloseNotify(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "origin", false, "origin.test", "127.0.0.1")
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 2000) // 32,000 bytes: several records
	addr := serveTCP(t, func(nc net.Conn) {
		hc := &heldConn{Conn: nc}
		tc := tls.Server(hc, &tls.Config{Certificates: []tls.Certificate{pair}})
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(tc))
		if err != nil {
			return
		}
		head := "HTTP/1.1 200 OK\r\nConnection: close\r\n" // framed by the close
		if req.URL.Path == "/length" {
			head += fmt.Sprintf("Content-Length: %d\r\n", len(body))
		}
		hc.mu.Lock()
		hc.held = true
		hc.mu.Unlock()
		_, _ = tc.Write([]byte(head + "\r\n"))
		_, _ = tc.Write(body)
		_ = tc.CloseWrite() // close_notify
		_ = hc.flush()
		// Wait for Gozer's close, so that no FIN comes early.
		_, _ = tc.Read(make([]byte, 1))
	})
	g := startGozer(t, oneOrigin(map[string]string{"tls": fmt.Sprintf("{enabled: true, ca_file: %q, server_name: origin.test}", ca.caFile()), "retries": "0"}, addr))
	c := newClient(t, 10*time.Second)
	for _, path := range []string{"/close", "/length"} {
		for try := range 5 {
			resp, got := fetch(t, c, "GET", g.URL(path), nil, nil)
			if resp.StatusCode != 200 || !bytes.Equal(got, body) {
				t.Fatalf("GET %s (try %d): status %d, %d bytes of %d", path, try+1, resp.StatusCode, len(got), len(body))
			}
		}
	}
}
