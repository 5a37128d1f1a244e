package test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestTLSUploadRightAfterHandshake: clients that start a large upload as
// soon as their handshake is done (a TLS 1.3 client sends its request right
// behind its Finished) are served. The loop fed everything it read to the
// handshake goroutine until it took over, and past 256 KiB closed the
// connection as a ClientHello too large: 15-25 % of fresh connections
// uploading 100 MB on a busy machine (review). Now the client is not read
// past that until the loop takes over.
func TestTLSUploadRightAfterHandshake(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "up")
	cfg := oneOrigin(nil, o.Addr)
	ca := withHTTPS(t, &cfg)
	cfg.Server = map[string]string{"event_loops": "1"}
	g := startGozer(t, cfg)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	var wg sync.WaitGroup
	errs := make(chan string, 32)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				// A fresh connection each time: the upload starts with it.
				tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"}, DisableKeepAlives: true}
				c := &http.Client{Transport: tr, Timeout: time.Minute}
				resp, err := c.Post("https://"+g.HTTPSAddr+"/sink", "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					errs <- err.Error()
					continue
				}
				var got struct{ Bytes int }
				err = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				if resp.StatusCode != 200 || err != nil || got.Bytes != len(body) {
					errs <- resp.Status
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("an upload right after the handshake: %s", e)
	}
	if n := g.tlsStats(t).Handshakes.Failures["hello_too_large"]; n != 0 {
		t.Errorf("%d handshakes failed as hello_too_large", n)
	}
}

// TestTLSHelloTooLarge: a ClientHello that goes on past 64 KiB ends the
// handshake, counted once as hello_too_large.
func TestTLSHelloTooLarge(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "big")
	cfg := oneOrigin(nil, o.Addr)
	withHTTPS(t, &cfg)
	g := startGozer(t, cfg)
	c, err := net.Dial("tcp", g.HTTPSAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Handshake records carrying a ClientHello that says it is 65,530 bytes
	// long (crypto/tls takes up to 64 KiB a message), 16 KiB a record: with
	// the record headers, more than the 64 KiB a handshake may read.
	var hello []byte
	for i := range 5 {
		rec := make([]byte, 5+16384)
		copy(rec, []byte{22, 3, 1, 0x40, 0x00})
		if i == 0 {
			copy(rec[5:], []byte{1, 0x00, 0xff, 0xfa, 3, 3})
		}
		hello = append(hello, rec...)
	}
	go func() { _, _ = c.Write(hello) }()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the connection still open 10 s after a ClientHello over 64 KiB")
		}
	}
	var s tlsStats
	if !eventually(5*time.Second, func() bool { s = g.tlsStats(t); return s.Handshakes.Failures["hello_too_large"] >= 1 }) {
		t.Fatalf("handshake failures %v: want hello_too_large", s.Handshakes.Failures)
	}
	if n := s.Handshakes.Failures["hello_too_large"]; n != 1 {
		t.Errorf("hello_too_large counted %d times for one connection", n)
	}
}

// TestTLSFreshConnections: fresh connections, HTTP/1.1 and HTTP/2, whose
// request comes right behind the client's Finished, some of it fed to the
// handshake and some left in gnet's buffer once it was done, are all served:
// the loop decrypts the handshake's leftovers first. A kind made at the
// takeover read gnet's bytes before them (bad record MAC for 6 of 480).
func TestTLSFreshConnections(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "fresh")
	cfg := oneOrigin(nil, o.Addr)
	ca := withHTTPS(t, &cfg)
	cfg.Server = map[string]string{"event_loops": "2"}
	g := startGozer(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan string, 400)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"},
					ForceAttemptHTTP2: (w+i)%2 == 0, DisableKeepAlives: true}
				c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
				resp, err := c.Get("https://" + g.HTTPSAddr + "/x")
				if err != nil {
					errs <- err.Error()
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				tr.CloseIdleConnections()
				if resp.StatusCode != 200 {
					errs <- resp.Status
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a fresh connection: %s", e)
	}
	if n := g.tlsStats(t).Handshakes.ClosedOnRecordError; n != 0 {
		t.Errorf("%d connections closed on a record error", n)
	}
}
