package test

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestTLSHandshakeEvictionBusyAddress: stalled handshakes from one address
// hold every max_handshakes slot, all far younger than
// evict_handshakes_after. A client from an address with nothing in flight
// takes the place of one of them at once (its address holds more than twice
// the newcomer's), counted and logged; a newcomer from the busy address
// itself evicts nobody (equals never evict each other this way) and is
// refused.
func TestTLSHandshakeEvictionBusyAddress(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost")
	o := startOrigin(t, "o")
	cfg := oneOrigin(nil, o.Addr)
	cfg.Server = map[string]string{"event_loops": "1"}
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key}),
		"handshake_timeout": "60s", "max_handshakes": "3", "evict_handshakes_after": "50s"}
	g := startGozer(t, cfg)
	closed := make(chan int, 3)
	for i := range 3 {
		c := sendHelloFrom(t, "127.0.0.2", g.HTTPSAddr)
		waitFor(t, 5*time.Second, "the stalled handshake", func() bool { return g.tlsStats(t).Handshakes.InProgress == int64(i+1) })
		go func() {
			if expectClosed(c, 30*time.Second) == nil {
				closed <- i
			}
		}()
	}
	get := func(src string) (*http.Response, error) {
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "localhost"}, DialContext: d.DialContext}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(g.httpsURL("/"))
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	// The newcomer from the busy address first: refused, nobody evicted.
	if _, err := get("127.0.0.2"); err == nil {
		t.Error("a client from the address holding every slot got in")
	}
	s := g.tlsStats(t)
	if s.Handshakes.Evicted != 0 || s.Handshakes.Refused < 1 {
		t.Errorf("evicted_handshakes_total %d, refused_too_many_handshakes_total %d: want 0 and at least 1",
			s.Handshakes.Evicted, s.Handshakes.Refused)
	}
	// A client from elsewhere gets in at once, in place of the oldest of the
	// busy address's.
	resp, err := get("127.0.0.1")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a client from an address with nothing in flight: %v, want 200", err)
	}
	wantEvicted(t, closed, 0)
	s = g.tlsStats(t)
	if s.Handshakes.Evicted != 1 || s.Handshakes.EvictedBusy != 1 || s.Handshakes.Failures["evicted"] != 1 {
		t.Errorf("evicted_handshakes_total %d, evicted_from_busy_addresses_total %d, failures %v: want one eviction, for the address's share",
			s.Handshakes.Evicted, s.Handshakes.EvictedBusy, s.Handshakes.Failures)
	}
	g.waitLog(t, "its address holds more than twice the newcomer's in flight")
	select {
	case i := <-closed:
		t.Errorf("stalled handshake %d was closed too", i)
	case <-time.After(200 * time.Millisecond):
	}
}

// sendHelloFrom is sendHello (all of it) from the local address src.
func sendHelloFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write(clientHello(t)); err != nil {
		t.Fatal(err)
	}
	return c
}
