package test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Accepting on the loops (server.accept_on_loops, the default): what differs
// from the acceptor goroutines. The whole suite runs on the loops; with
// GOZER_TEST_ACCEPT_ON_LOOPS=false it runs on the acceptors, and
// TestAcceptorPath and TestGracefulShutdownAcceptor keep that path tested in
// every run.

// TestAcceptOnLoopsBalance: with 2 loops each on its own SO_REUSEPORT socket,
// the kernel spreads 64 connections from one client address over both (by
// their ports' hash), and every one is served.
func TestAcceptOnLoopsBalance(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, map[string]string{"accept_on_loops": "true", "event_loops": "2"}, nil)
	var conns []*rawConn
	for i := 0; i < 64; i++ {
		c := dialRaw(t, g.ProxyAddr)
		conns = append(conns, c)
		if resp, _ := c.roundTrip(request("GET", "/counter")); resp.StatusCode != 200 {
			t.Fatalf("connection %d: %d", i, resp.StatusCode)
		}
	}
	fams := scrapeMetrics(t, g)
	total := 0.0
	for _, loop := range []string{"0", "1"} {
		n := sumOf(fams, "gozer_loop_connections", "kind", "http", "loop", loop)
		if n == 0 {
			t.Errorf("loop %s holds no client connection of 64", loop)
		}
		total += n
	}
	if total != 64 {
		t.Errorf("the loops hold %v client connections, want 64", total)
	}
	for _, c := range conns {
		c.Close()
	}
}

// TestAcceptOnLoopsOpenFiles: gnet stops a loop whose accept fails with
// EMFILE, so a loop refuses (503) a connection whose descriptor nears the
// open-file limit and closes it at once. Under a limit of 160 descriptors,
// 200 connections opened at once get 503s past the ceiling, Gozer keeps
// serving, and once they close a new one is served.
func TestAcceptOnLoopsOpenFiles(t *testing.T) {
	t.Parallel()
	g := startGozer(t, openFilesSqueeze(t, nil, nil))
	var conns []net.Conn
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", g.ProxyAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	refused := 0
	for _, c := range conns {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprint(c, request("GET", "/counter")); err != nil {
			refused++ // closed after its 503, which the write may race
			continue
		}
		b := make([]byte, 12)
		n, _ := c.Read(b)
		if strings.HasPrefix(string(b[:n]), "HTTP/1.1 503") {
			refused++
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if refused == 0 {
		t.Error("200 connections under a limit of 160 descriptors: none refused")
	}
	if !strings.Contains(g.output(), "too close to the open-file limit") {
		t.Error("no log line names the open-file limit")
	}
	waitServesAgain(t, g)
}

// TestAcceptorPath: with server.accept_on_loops false the acceptor goroutines
// serve plain and HTTPS clients, and refuse the connection over
// max_connections with a 503 (Server.admit, as on the loops).
func TestAcceptorPath(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost", "127.0.0.1")
	o := startOrigin(t, "o1")
	cfg := oneOrigin(nil, o.Addr)
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	cfg.Server = map[string]string{"accept_on_loops": "false", "max_connections": "3"}
	g := startGozer(t, cfg)
	// The line may reach the test's pipe a moment after the gateway serves.
	if !eventually(5*time.Second, func() bool { return strings.Contains(g.output(), `"accept_on_loops":false`) }) {
		t.Fatal("gozer does not say it runs with accept_on_loops false")
	}
	resp, err := httpsClient(t, ca, "localhost", nil).Get(g.httpsURL("/counter"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body) // read whole, the connection stays open (and counted)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HTTPS: %d", resp.StatusCode)
	}
	for i := range 2 { // with the HTTPS client's kept-alive connection: 3
		c := dialRaw(t, g.ProxyAddr)
		if resp, _ := c.roundTrip(request("GET", "/counter")); resp.StatusCode != 200 {
			t.Fatalf("plain connection %d: %d", i, resp.StatusCode)
		}
	}
	c := dialRaw(t, g.ProxyAddr)
	_ = c.write(request("GET", "/counter"))
	r, _, _ := c.readResponse("GET")
	if r == nil || r.StatusCode != 503 {
		t.Fatalf("4th connection: %v, want a 503", r)
	}
	wantGozerStatus(t, r, "FAILURE_LOCAL_MAX_CONNECTIONS")
}

// TestAcceptOnLoopsTLSByIP: a client that connects by IP and sends no SNI gets
// the certificate whose IP SAN is that address, with the HTTPS listener on
// ":port" (every address, as the shipped ":8443"). gnet reports the
// listener's bound address as the connection's local one; certificate
// selection needs where the client connected (tlsconn wire.LocalAddr).
func TestAcceptOnLoopsTLSByIP(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"true", "false"} {
		t.Run("accept_on_loops="+mode, func(t *testing.T) {
			ca := newTestCA(t)
			c1, k1, _ := ca.issue(t, "names", false, "example.test")
			c2, k2, _ := ca.issue(t, "ip", false, "127.0.0.1")
			o := startOrigin(t, "o1")
			cfg := oneOrigin(nil, o.Addr)
			cfg.HTTPS = map[string]string{"certificates": certList([2]string{c1, k1}, [2]string{c2, k2})}
			cfg.HTTPSAnyIP = true
			cfg.Server = map[string]string{"accept_on_loops": mode}
			g := startGozer(t, cfg)
			conn, err := tls.Dial("tcp", g.HTTPSAddr, &tls.Config{RootCAs: ca.pool}) // an IP: no SNI
			if err != nil {
				t.Fatalf("no-SNI handshake to %s: %v", g.HTTPSAddr, err)
			}
			defer conn.Close()
			if ips := conn.ConnectionState().PeerCertificates[0].IPAddresses; len(ips) != 1 || !ips[0].Equal(net.IPv4(127, 0, 0, 1)) {
				t.Fatalf("served a certificate for %v", ips)
			}
		})
	}
}

// TestAcceptOnLoopsSharedPort: the proxy listener on 127.0.0.1:P and the
// HTTPS one on 127.0.0.2:P: a loop tells their connections apart by IP and
// port, not by port alone (which took plain clients for TLS ones).
func TestAcceptOnLoopsSharedPort(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "ip2", false, "127.0.0.2")
	o := startOrigin(t, "o1")
	cfg := oneOrigin(nil, o.Addr)
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	cfg.HTTPSOnProxyPort = true
	cfg.Server = map[string]string{"accept_on_loops": "true"}
	g := startGozer(t, cfg)
	if resp, _ := dialRaw(t, g.ProxyAddr).roundTrip(request("GET", "/counter")); resp == nil || resp.StatusCode != 200 {
		t.Fatalf("plain request on the proxy listener: %v", resp)
	}
	conn, err := tls.Dial("tcp", g.HTTPSAddr, &tls.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatalf("HTTPS on %s: %v", g.HTTPSAddr, err)
	}
	_ = conn.Close()
}

// waitServesAgain waits until a new connection to g's proxy is served a 200
// (after an open-file squeeze ends), and fails if g exited meanwhile.
func waitServesAgain(t *testing.T, g *gozer) {
	t.Helper()
	waitFor(t, 10*time.Second, "a new connection is served", func() bool {
		c, err := net.DialTimeout("tcp", g.ProxyAddr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprint(c, request("GET", "/counter"))
		b := make([]byte, 12)
		n, _ := c.Read(b)
		return strings.HasPrefix(string(b[:n]), "HTTP/1.1 200")
	})
	if g.exited() {
		t.Fatal("gozer exited")
	}
}

// squeezedOpenFiles is openFilesSqueeze's open-file limit: the loops refuse
// clients from descriptor 96, the admin side from 128 (squeezedAdminCeiling).
const (
	squeezedOpenFiles    = 160
	squeezedAdminCeiling = 96 + (squeezedOpenFiles-96)/2
)

// openFilesSqueeze is the open-file tests' Gozer: one origin (its keys
// more), accepting on the loops (server keys more), under a limit of 160
// descriptors (prlimit), so that a few hundred connections reach it.
func openFilesSqueeze(t *testing.T, origin, server map[string]string) config {
	t.Helper()
	o := startOrigin(t, "o1")
	cfg := oneOrigin(origin, o.Addr)
	cfg.Server = map[string]string{"accept_on_loops": "true"}
	for k, v := range server {
		cfg.Server[k] = v
	}
	cfg.Prefix = []string{"prlimit", fmt.Sprintf("--nofile=%d:%d", squeezedOpenFiles, squeezedOpenFiles)}
	return cfg
}
