package test

// Hostile input at the TLS port: each ends with a clear answer or close, a
// counter and a log line, and never costs the other clients their service.

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestTLSBadInput: plain HTTP, garbage, a stalled handshake, an oversized
// handshake and a renegotiation attempt, while an ordinary HTTPS client keeps
// being served.
func TestTLSBadInput(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost", "127.0.0.1")
	o := startOrigin(t, "o")
	g := tlsGozer(t, o.Addr, map[string]string{"handshake_timeout": "1s"}, [2]string{cert, key})

	// Ordinary traffic throughout, on new connections (a handshake each).
	stop := make(chan struct{})
	var served, failed atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := httpsClient(t, ca, "localhost", nil)
		c.Transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := c.Get(g.httpsURL("/"))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
			} else {
				served.Add(1)
			}
		}
	}()

	t.Run("plain HTTP gets a 400 in plain words", func(t *testing.T) {
		c := dialRaw(t, g.HTTPSAddr)
		resp, body := c.roundTrip("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != 400 || !strings.Contains(string(body), "HTTPS") {
			t.Fatalf("plain HTTP to the TLS port: %d %q, want 400 saying to use HTTPS", resp.StatusCode, body)
		}
		g.waitTLSFailure(t, "plain_http", 1)
	})

	t.Run("garbage is closed", func(t *testing.T) {
		c := dialTCP(t, g.HTTPSAddr)
		_, _ = c.Write(bytes.Repeat([]byte{0xff, 0x00, 0x13}, 100))
		if err := expectClosed(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		g.waitTLSFailure(t, "not_tls", 1)
	})

	t.Run("a stalled handshake ends at the timeout", func(t *testing.T) {
		c := dialTCP(t, g.HTTPSAddr)
		hello := clientHello(t)
		_, _ = c.Write(hello[:len(hello)/2]) // half a ClientHello, then nothing
		start := time.Now()
		if err := expectClosed(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Errorf("closed after %v, before the 1s handshake timeout", d)
		}
		g.waitTLSFailure(t, "timeout", 1)
		g.waitLog(t, "TLS handshake failed", "timeout")
	})

	t.Run("a handshake byte by byte still succeeds", func(t *testing.T) {
		raw := dialTCP(t, g.HTTPSAddr)
		tc := tls.Client(&trickle{Conn: raw}, &tls.Config{RootCAs: ca.pool, ServerName: "localhost"})
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake one byte per write: %v", err)
		}
		if _, err := tc.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 12)
		if _, err := io.ReadFull(tc, line); err != nil || string(line) != "HTTP/1.1 200" {
			t.Fatalf("response %q, %v", line, err)
		}
	})

	t.Run("an oversized handshake is closed", func(t *testing.T) {
		c := dialTCP(t, g.HTTPSAddr)
		// Handshake records claiming one ClientHello of 16 MiB: the server must
		// stop reading long before.
		var rec []byte
		msg := []byte{1, 0xff, 0xff, 0xff} // client_hello, length 2^24-1
		for sent := 0; sent < 200<<10; sent += 16 << 10 {
			body := append(msg, make([]byte, 16<<10-len(msg))...)
			msg = nil
			rec = append(rec[:0], 22, 3, 1, 0, 0)
			binary.BigEndian.PutUint16(rec[3:], uint16(len(body)))
			if _, err := c.Write(append(rec, body...)); err != nil {
				break // already closed: good
			}
		}
		if err := expectClosed(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("renegotiation is refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", g.HTTPSAddr, &tls.Config{RootCAs: ca.pool, ServerName: "localhost",
			MaxVersion: tls.VersionTLS12, Renegotiation: tls.RenegotiateFreelyAsClient})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// A client that tries to start over mid-session (renegotiation, or a
		// confused middlebox) sends a new ClientHello: the server must end
		// the connection, not run a second handshake.
		raw := conn.NetConn()
		_, _ = raw.Write(clientHello(t))
		if err := expectClosed(raw, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	close(stop)
	<-done
	if served.Load() == 0 || failed.Load() > 0 {
		t.Errorf("ordinary HTTPS client meanwhile: %d served, %d failed; want all served", served.Load(), failed.Load())
	}
	if s := g.tlsStats(t); s.Handshakes.InProgress != 0 {
		t.Errorf("handshakes_in_progress %d after the attacks, want 0", s.Handshakes.InProgress)
	}
}

// TestTLSMaxHandshakes: a connection takes a handshake slot once its
// ClientHello is all in, not at accept: silent connections and ones that send
// part of a hello (or a hello cut into tiny records) and stall take none
// (counted as awaiting their hello), and past listeners.https.max_handshakes in progress (here
// without eviction) a new client's hello closes it, counted; when the
// stalled ones time out, handshakes succeed again.
func TestTLSMaxHandshakes(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost")
	o := startOrigin(t, "o")
	// No eviction here (TestTLSHandshakeEviction has it): the 4th is refused.
	// handshake_timeout 6s: the steps before the 4th must not outlast it.
	g := tlsGozer(t, o.Addr, map[string]string{"handshake_timeout": "6s", "max_handshakes": "3", "evict_handshakes_after": "0s"}, [2]string{cert, key})
	for range 3 {
		dialTCP(t, g.HTTPSAddr) // connected, silent
	}
	sendHello(t, g.HTTPSAddr, 5)  // a record header
	sendHello(t, g.HTTPSAddr, 60) // a hello cut short
	tiny := dialTCP(t, g.HTTPSAddr)
	if _, err := tiny.Write([]byte{22, 3, 1, 0, 1, 1}); err != nil { // a whole record, of one byte of a hello
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "6 connections awaiting their hello", func() bool { return g.tlsStats(t).Handshakes.AwaitingHello == 6 })
	c := httpsClient(t, ca, "localhost", nil)
	if resp, _ := fetch(t, c, "GET", g.httpsURL("/"), nil, nil); resp.StatusCode != 200 {
		t.Fatalf("beside silent connections: status %d", resp.StatusCode)
	}
	c.CloseIdleConnections()
	if s := g.tlsStats(t); s.Handshakes.InProgress != 0 || s.Handshakes.Refused != 0 {
		t.Errorf("with those only: %d handshakes in progress, %d refused; want 0, 0", s.Handshakes.InProgress, s.Handshakes.Refused)
	}
	for range 3 {
		sendHello(t, g.HTTPSAddr, -1) // a whole ClientHello, then nothing: each holds a handshake
	}
	waitFor(t, 5*time.Second, "3 handshakes in progress", func() bool { return g.tlsStats(t).Handshakes.InProgress == 3 })
	if err := expectClosed(sendHello(t, g.HTTPSAddr, -1), 5*time.Second); err != nil {
		t.Fatalf("a 4th handshake: %v", err)
	}
	if s := g.tlsStats(t); s.Handshakes.Refused != 1 {
		t.Errorf("refused_too_many_handshakes_total %d, want 1", s.Handshakes.Refused)
	}
	g.waitLog(t, "too many TLS handshakes")
	waitFor(t, 15*time.Second, "the stalled handshakes time out", func() bool {
		s := g.tlsStats(t)
		return s.Handshakes.InProgress == 0 && s.Handshakes.AwaitingHello == 0
	})
	if s := g.tlsStats(t); s.Handshakes.Failures["timeout"] != 9 {
		t.Errorf("handshake_failures_by_reason %v: want 9 timeouts (6 awaiting their hello, 3 stalled)", s.Handshakes.Failures)
	}
	if resp, _ := fetch(t, c, "GET", g.httpsURL("/"), nil, nil); resp.StatusCode != 200 {
		t.Fatalf("after the timeouts: status %d", resp.StatusCode)
	}
	// A client that goes away in the middle of its handshake gives its slot
	// back at once, not at the 2s timeout (its goroutine's read ends).
	stalled := sendHello(t, g.HTTPSAddr, -1)
	waitFor(t, 5*time.Second, "the stalled handshake", func() bool { return g.tlsStats(t).Handshakes.InProgress == 1 })
	_ = stalled.Close()
	start := time.Now()
	waitFor(t, 5*time.Second, "its slot back", func() bool { return g.tlsStats(t).Handshakes.InProgress == 0 })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the slot came back after %v: at the timeout, not at the close", d)
	}
}

// TestTLSHelloBudget: what connections awaiting their ClientHello hold is
// bounded node-wide (20 KiB per handshake slot: 40 KiB with max_handshakes
// 2): a third connection that sent 15 KB of an unfinished hello is closed,
// counted and logged; the two before it keep waiting.
func TestTLSHelloBudget(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost")
	o := startOrigin(t, "o")
	g := tlsGozer(t, o.Addr, map[string]string{"handshake_timeout": "30s", "max_handshakes": "2"}, [2]string{cert, key})
	// A record announcing 16000 bytes of a hello of 15996, of which 15000 come.
	part := append([]byte{22, 3, 1, 0x3e, 0x80, 1, 0, 0x3e, 0x7c}, make([]byte, 14996)...)
	var held []net.Conn
	for i := range 2 {
		c := dialTCP(t, g.HTTPSAddr)
		if _, err := c.Write(part); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		waitFor(t, 5*time.Second, "the unfinished hello waits", func() bool { return g.tlsStats(t).Handshakes.AwaitingHello == int64(i+1) })
	}
	third := dialTCP(t, g.HTTPSAddr)
	if _, err := third.Write(part); err != nil {
		t.Fatal(err)
	}
	if err := expectClosed(third, 5*time.Second); err != nil {
		t.Fatalf("a third 15 KB of unfinished hello, over the node's 40 KiB: %v", err)
	}
	g.waitLog(t, "budget of bytes from clients whose ClientHello is not all in")
	s := g.tlsStats(t)
	if s.Handshakes.Refused != 1 || s.Handshakes.AwaitingHello != 2 || s.Handshakes.InProgress != 0 {
		t.Errorf("refused %d, awaiting %d, in progress %d; want 1, 2, 0", s.Handshakes.Refused, s.Handshakes.AwaitingHello, s.Handshakes.InProgress)
	}
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var ne net.Error
		if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("a waiting hello within the budget: %v, want it still open", err)
		}
	}
}

// sendHello connects and sends the first n bytes of a ClientHello record
// (n < 0: all of it), then nothing. With all of it the handshake starts,
// answers, and waits for the client's next flight: it holds a slot. With
// less it has not started: it holds none.
func sendHello(t testing.TB, addr string, n int) net.Conn {
	t.Helper()
	c := dialTCP(t, addr)
	hello := clientHello(t)
	if n >= 0 {
		hello = hello[:n]
	}
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTLSHandshakeEviction: max_handshakes taken by handshakes that stall
// (from one address here; in an attack from many, which max_requests_per_ip
// cannot stop) shut HTTPS only until they have run evict_handshakes_after,
// not for a whole handshake_timeout: then a real client takes the place of
// the oldest, which is closed, counted and logged; a handshake younger than
// that is never evicted, and nobody is while all are younger.
func TestTLSHandshakeEviction(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost")
	o := startOrigin(t, "o")
	cfg := oneOrigin(nil, o.Addr)
	cfg.Server = map[string]string{"event_loops": "1"} // one loop: its oldest is the first dialled
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key}),
		"handshake_timeout": "60s", "max_handshakes": "3", "evict_handshakes_after": "2s"}
	g := startGozer(t, cfg)
	closed := make(chan int, 3)
	filled := time.Now()
	for i := range 3 {
		c := sendHello(t, g.HTTPSAddr, -1)
		waitFor(t, 5*time.Second, "the stalled handshake", func() bool { return g.tlsStats(t).Handshakes.InProgress == int64(i+1) })
		go func() {
			if expectClosed(c, 30*time.Second) == nil {
				closed <- i
			}
		}()
	}
	client := httpsClient(t, ca, "localhost", nil)
	// None of them has run 2s yet (unless this machine took that long to get
	// here, when there is nothing to check): a client is refused, and nobody
	// is evicted.
	if resp, err := client.Get(g.httpsURL("/")); time.Since(filled) < 1500*time.Millisecond {
		if err == nil {
			resp.Body.Close()
			t.Errorf("a client got in while every slot was held by handshakes younger than evict_handshakes_after")
		}
		if s := g.tlsStats(t); s.Handshakes.Evicted != 0 {
			t.Errorf("%d evicted before any handshake had run evict_handshakes_after", s.Handshakes.Evicted)
		}
	} else if err == nil {
		resp.Body.Close()
	}
	start := time.Now()
	var last error
	if !eventually(20*time.Second, func() bool {
		resp, err := client.Get(g.httpsURL("/"))
		if err != nil {
			last = err // closed: nothing old enough to evict yet
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}) {
		t.Fatalf("no HTTPS request got through while stalled handshakes held every slot: %v", last)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the client got in after %v: at the stalled ones' timeout, not by evicting one", d)
	}
	wantEvicted(t, closed, 0) // the oldest
	s := g.tlsStats(t)
	if s.Handshakes.Evicted < 1 || s.Handshakes.Failures["evicted"] < 1 {
		t.Errorf("evicted_handshakes_total %d, handshake_failures_by_reason %v: want an eviction counted", s.Handshakes.Evicted, s.Handshakes.Failures)
	}
	// The evicted one's slot comes back; the client's handshake is done.
	waitFor(t, 5*time.Second, "2 handshakes in progress", func() bool { return g.tlsStats(t).Handshakes.InProgress == 2 })
	g.waitLog(t, "handshake closed to make room")
	// The client's handshake is over: two stalled ones and a free slot. A
	// fresh stalled one is young; the next client evicts the oldest remaining
	// stalled one (1), never the fresh one.
	client.CloseIdleConnections()
	fresh := sendHello(t, g.HTTPSAddr, -1)
	waitFor(t, 5*time.Second, "3 handshakes in progress again", func() bool { return g.tlsStats(t).Handshakes.InProgress == 3 })
	if !eventually(20*time.Second, func() bool {
		resp, err := client.Get(g.httpsURL("/"))
		if err == nil {
			resp.Body.Close()
		}
		client.CloseIdleConnections() // a new connection, hence a new handshake, each time
		return err == nil && resp.StatusCode == 200
	}) {
		t.Fatal("a second client never got in")
	}
	wantEvicted(t, closed, 1) // the oldest left
	_ = fresh.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var ne net.Error
	if _, err := io.Copy(io.Discard, fresh); !errors.As(err, &ne) || !ne.Timeout() { // its server flight, then nothing
		t.Errorf("the fresh stalled handshake: %v, want it still open", err)
	}
	// Every slot taken again, stalled handshake 2 well past the age: bytes
	// that are no hello (plain HTTP here) evict nobody; they are closed.
	sendHello(t, g.HTTPSAddr, -1)
	waitFor(t, 5*time.Second, "3 handshakes in progress again", func() bool { return g.tlsStats(t).Handshakes.InProgress == 3 })
	evicted := g.tlsStats(t).Handshakes.Evicted
	plain := dialTCP(t, g.HTTPSAddr)
	if _, err := plain.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := expectClosed(plain, 5*time.Second); err != nil {
		t.Fatalf("plain HTTP with every slot taken: %v", err)
	}
	if s := g.tlsStats(t); s.Handshakes.Evicted != evicted {
		t.Errorf("plain HTTP evicted a handshake: evicted_handshakes_total %d, was %d", s.Handshakes.Evicted, evicted)
	}
	select {
	case i := <-closed:
		t.Errorf("stalled handshake %d was closed for plain HTTP bytes", i)
	case <-time.After(200 * time.Millisecond):
	}
}

// wantEvicted waits for the next stalled handshake closed, which must be
// number want.
func wantEvicted(t *testing.T, closed <-chan int, want int) {
	t.Helper()
	select {
	case i := <-closed:
		if i != want {
			t.Errorf("stalled handshake %d was evicted, want %d", i, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no stalled handshake was closed (want %d)", want)
	}
}

// clientHello is a real TLS ClientHello record (what crypto/tls sends first).
func clientHello(t testing.TB) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() { _ = tls.Client(a, &tls.Config{ServerName: "localhost"}).Handshake() }()
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[3:]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

func dialTCP(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectClosed reads until the server closes c (EOF or reset), or fails after
// timeout.
func expectClosed(c net.Conn, timeout time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		var ne net.Error
		switch {
		case err == nil:
			continue // an alert, or a plain answer: read on to the close
		case errors.As(err, &ne) && ne.Timeout():
			return errors.New("the server did not close the connection within " + timeout.String())
		default:
			return nil
		}
	}
}

// trickle writes one byte per Write (a segment each: Go sets TCP_NODELAY), so
// every record reaches the server in pieces.
type trickle struct{ net.Conn }

func (t *trickle) Write(p []byte) (int, error) {
	for i := range p {
		if _, err := t.Conn.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// TestTLSHandshakesPerIP: a handshake in progress is a request in flight of its
// client's address (server.max_requests_per_ip), so one address holding silent
// connections cannot take every listeners.https.max_handshakes slot and shut
// HTTPS for everyone: its next connection is closed at once (counted, logged),
// another address shakes hands meanwhile, and the address gets its share back
// when its connections go.
func TestTLSHandshakesPerIP(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "o")
	cfg := oneOrigin(nil, o.Addr)
	ca := withHTTPS(t, &cfg)
	cfg.HTTPS["handshake_timeout"] = "10s"
	cfg.HTTPSAnyIP = true
	cfg.Server = map[string]string{"max_requests_per_ip": "3"}
	g := startGozer(t, cfg)
	var silent []net.Conn
	for range 3 {
		silent = append(silent, dialTCP(t, g.HTTPSAddr)) // connected, silent: each counts against its address
	}
	waitFor(t, 5*time.Second, "3 connections awaiting their hello", func() bool { return g.tlsStats(t).Handshakes.AwaitingHello == 3 })
	if err := expectClosed(dialTCP(t, g.HTTPSAddr), 5*time.Second); err != nil {
		t.Fatalf("a 4th connection from the same address: %v", err)
	}
	if s := g.tlsStats(t); s.Handshakes.RefusedPerIP != 1 {
		t.Errorf("refused_handshakes_per_ip_total %d, want 1", s.Handshakes.RefusedPerIP)
	}
	g.waitLog(t, "handshakes and requests in flight")

	get := func(src string) int {
		t.Helper()
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "localhost"}, DialContext: d.DialContext}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(g.httpsURL("/"))
		if err != nil {
			t.Fatalf("from %s: %v", src, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get("127.0.0.2"); s != 200 {
		t.Fatalf("another address meanwhile: status %d, want 200", s)
	}
	for _, c := range silent {
		_ = c.Close()
	}
	waitFor(t, 5*time.Second, "the silent connections to end", func() bool { return g.tlsStats(t).Handshakes.AwaitingHello == 0 })
	if s := get("127.0.0.1"); s != 200 {
		t.Fatalf("the address, once its silent connections went: status %d, want 200", s)
	}
}
