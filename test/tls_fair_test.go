package test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestTLSHandshakeEvictionBusyAddress: stalled handshakes from one address
// hold every max_handshakes slot, all younger than evict_handshakes_after
// (12s). A newcomer from that address itself evicts nobody (equals never
// evict each other by share) and is refused; so is one from an address with
// nothing in flight while the stalled ones are younger than a quarter of
// evict_handshakes_after (a handshake that merely runs is not closed the
// moment it starts). Past that quarter the client from elsewhere takes the
// place of the oldest of the busy address's, counted and logged as an
// eviction by share, long before any would be evicted by age.
func TestTLSHandshakeEvictionBusyAddress(t *testing.T) {
	t.Parallel()
	g, ca := fairGozer(t, "12s")
	closed := make(chan int, 3)
	first := time.Now()
	for i := range 3 {
		c := sendHelloFrom(t, "127.0.0.2", g.HTTPSAddr)
		waitFor(t, 5*time.Second, "the stalled handshake", func() bool { return g.tlsStats(t).Handshakes.InProgress == int64(i+1) })
		go func() {
			if expectClosed(c, 30*time.Second) == nil {
				closed <- i
			}
		}()
	}
	if err := httpsGetFrom(ca, g, "127.0.0.2"); err == nil {
		t.Error("a client from the address holding every slot got in")
	}
	if s := g.tlsStats(t); s.Handshakes.Evicted != 0 || s.Handshakes.Refused < 1 {
		t.Fatalf("evicted_handshakes_total %d, refused_too_many_handshakes_total %d: want 0 and at least 1",
			s.Handshakes.Evicted, s.Handshakes.Refused)
	}
	// Younger than the quarter (3s), unless this machine took that long to
	// get here: then there is nothing to check (the client may get in, by
	// share: the part after this one still checks that).
	err := httpsGetFrom(ca, g, "127.0.0.1")
	if time.Since(first) < 2500*time.Millisecond {
		if err == nil {
			t.Error("a client got in while every stalled handshake was younger than a quarter of evict_handshakes_after")
		}
		if s := g.tlsStats(t); s.Handshakes.Evicted != 0 {
			t.Errorf("%d evicted while every stalled handshake was younger than a quarter of evict_handshakes_after", s.Handshakes.Evicted)
		}
	}
	var last error
	if !eventually(20*time.Second, func() bool {
		last = httpsGetFrom(ca, g, "127.0.0.1")
		return last == nil
	}) {
		t.Fatalf("a client from an address with nothing in flight never got in: %v", last)
	}
	wantEvicted(t, closed, 0)
	s := g.tlsStats(t)
	if s.Handshakes.Evicted != 1 || s.Handshakes.EvictedBusy != 1 || s.Handshakes.Failures["evicted"] != 1 {
		t.Errorf("evicted_handshakes_total %d, evicted_from_busy_addresses_total %d, failures %v: want one eviction, for the address's share (after %v)",
			s.Handshakes.Evicted, s.Handshakes.EvictedBusy, s.Handshakes.Failures, time.Since(first))
	}
	waitFor(t, 5*time.Second, "the evicted one's slot back", func() bool { return g.tlsStats(t).Handshakes.InProgress == 2 })
	g.waitLog(t, "its address holds more than twice the newcomer's in flight")
	select { // evicted_handshakes_total 1 above says no other was closed; this names it if one was
	case i := <-closed:
		t.Errorf("stalled handshake %d was closed too", i)
	default:
	}
}

// TestTLSNoEvictionWhenOff: with evict_handshakes_after 0s nothing is
// evicted, by age or by share: a client from an address with nothing in
// flight is refused while stalled handshakes of another hold every slot.
func TestTLSNoEvictionWhenOff(t *testing.T) {
	t.Parallel()
	g, ca := fairGozer(t, "0s")
	for i := range 3 {
		sendHelloFrom(t, "127.0.0.2", g.HTTPSAddr)
		waitFor(t, 5*time.Second, "the stalled handshake", func() bool { return g.tlsStats(t).Handshakes.InProgress == int64(i+1) })
	}
	if err := httpsGetFrom(ca, g, "127.0.0.1"); err == nil {
		t.Error("a client got in with eviction off and every slot held")
	}
	if s := g.tlsStats(t); s.Handshakes.Evicted != 0 || s.Handshakes.Refused < 1 {
		t.Errorf("evicted_handshakes_total %d, refused_too_many_handshakes_total %d: want 0 and at least 1",
			s.Handshakes.Evicted, s.Handshakes.Refused)
	}
}

// fairGozer is one event loop, 3 handshake slots, handshake_timeout 60s and
// evict_handshakes_after evict, in front of an origin.
func fairGozer(t *testing.T, evict string) (*gozer, *testCA) {
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost")
	o := startOrigin(t, "o")
	cfg := oneOrigin(nil, o.Addr)
	cfg.Server = map[string]string{"event_loops": "1"}
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key}),
		"handshake_timeout": "60s", "max_handshakes": "3", "evict_handshakes_after": evict}
	return startGozer(t, cfg), ca
}

// httpsGetFrom is one GET / over a new TLS connection from the local
// address src: nil when it was answered 200.
func httpsGetFrom(ca *testCA, g *gozer, src string) error {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "localhost"}, DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(g.httpsURL("/"))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// sendHelloFrom is sendHello (all of it) from the local address src.
func sendHelloFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	c := dialFrom(t, src, addr)
	if _, err := c.Write(clientHello(t)); err != nil {
		t.Fatal(err)
	}
	return c
}
