package test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// dialFrom opens a raw connection to addr from the local address src
// (127.0.0.x: another client as far as Gozer can tell).
func dialFrom(t testing.TB, src, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return dialed(t, c)
}

// TestPerClientConnectionCap: one address gets server.max_connections_per_ip
// connections; the next is answered 429 and closed before a loop serves it,
// another address is not affected, and a closed connection gives its place back.
func TestPerClientConnectionCap(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, map[string]string{"max_connections_per_ip": "3"}, nil)
	var held []*rawConn
	for i := range 3 {
		c := dialRaw(t, g.ProxyAddr)
		if resp, _ := c.roundTrip(request("GET", "/counter")); resp.StatusCode != 200 {
			t.Fatalf("connection %d of 3: status %d", i+1, resp.StatusCode)
		}
		held = append(held, c)
	}
	over := dialRaw(t, g.ProxyAddr)
	_ = over.write(request("GET", "/counter"))
	resp, _, err := over.readResponse("GET")
	if err != nil || resp.StatusCode != 429 {
		t.Fatalf("4th connection from one address: %v, %v; want a 429", resp, err)
	}
	wantGozerStatus(t, resp, "FAILURE_CLIENT_TOO_MANY_CONNECTIONS")
	over.mustClose("the refused connection")

	other := dialFrom(t, "127.0.0.2", g.ProxyAddr)
	if resp, _ := other.roundTrip(request("GET", "/counter")); resp.StatusCode != 200 {
		t.Fatalf("another address: status %d, want 200", resp.StatusCode)
	}
	held[0].Close()
	waitFor(t, 10*time.Second, "a closed connection to give its place back", func() bool {
		c, err := tryGet(g.ProxyAddr, "/counter", 5*time.Second)
		return err == nil && c.StatusCode == 200
	})
	if e := g.adminEdge(t); e.RefusedConnectionsIP < 1 {
		t.Errorf("/admin/edge refused_connections_per_ip_total = %d, want the refusal counted", e.RefusedConnectionsIP)
	}
	g.waitLog(t, "connection refused: too many connections from one client", "FAILURE_CLIENT_TOO_MANY_CONNECTIONS")
}

// TestPerClientRequestCap: one address has at most server.max_requests_per_ip
// requests in flight across its connections; the next gets 429 at once.
func TestPerClientRequestCap(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, map[string]string{"max_requests_per_ip": "3"}, nil)
	for range 3 {
		c := dialRaw(t, g.ProxyAddr)
		c.send(request("GET", "/hang"))
	}
	waitFor(t, 10*time.Second, "three requests in flight", func() bool {
		return g.adminOrigin(t, "demo").InFlight == 3
	})
	c := dialRaw(t, g.ProxyAddr)
	resp, _ := c.roundTrip(request("GET", "/counter"))
	if resp.StatusCode != 429 {
		t.Fatalf("4th request in flight from one address: status %d, want 429", resp.StatusCode)
	}
	wantGozerStatus(t, resp, "FAILURE_CLIENT_TOO_MANY_REQUESTS")
	if resp, _ := dialFrom(t, "127.0.0.3", g.ProxyAddr).roundTrip(request("GET", "/counter")); resp.StatusCode != 200 {
		t.Fatalf("another address: status %d, want 200", resp.StatusCode)
	}
	if e := g.adminEdge(t); e.RefusedRequestsIP != 1 || e.Requests["FAILURE_CLIENT_TOO_MANY_REQUESTS"] != 1 {
		t.Errorf("/admin/edge: refused_requests_per_ip_total %d, requests %v; want the one refusal", e.RefusedRequestsIP, e.Requests)
	}
}

// TestStatusHeaders: by default X-Gozer-Status is shown only to a request that
// asks with the debug header from a trusted network; an outbound Lua filter
// may remove it.
func TestStatusHeaders(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "status")
	dir := newScriptDir(t)
	dir.write(t, "outbound", "hide.lua", luaFilter("hide", "outbound", 10, `ctx.req.header("X-Hide") ~= nil`,
		`ctx.resp.del_header("X-Gozer-Status")`))
	cfg := oneOrigin(nil, o.Addr)
	cfg.Filters = &filtersConfig{Dir: string(dir)}
	cfg.Server = map[string]string{"status_headers": "{expose: debug}"}
	g := startGozer(t, cfg)
	get := func(src string, headers ...string) *http.Response {
		resp, _ := dialFrom(t, src, g.ProxyAddr).roundTrip(request("GET", "/status?code=503", headers...))
		return resp
	}
	for _, tc := range []struct {
		name    string
		src     string
		headers []string
		want    string
	}{
		{"a client that does not ask", "127.0.0.1", nil, ""},
		{"a trusted client that asks", "127.0.0.1", []string{"X-Gozer-Debug: 1"}, "SUCCESS"},
		{"asked, then removed by an outbound filter", "127.0.0.1", []string{"X-Gozer-Debug: 1", "X-Hide: 1"}, ""},
	} {
		resp := get(tc.src, tc.headers...)
		if got := resp.Header.Get("X-Gozer-Status"); got != tc.want || (tc.want == "" && resp.Header.Get("X-Gozer-Attempts") != "") {
			t.Errorf("%s: X-Gozer-Status %q, X-Gozer-Attempts %q; want %q", tc.name, got, resp.Header.Get("X-Gozer-Attempts"), tc.want)
		}
	}
}

// TestSIGHUPReloadsScripts: SIGHUP does not stop Gozer (nginx's reload signal):
// it reloads the Lua scripts and the configuration (here unchanged).
func TestSIGHUPReloadsScripts(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	g.waitLog(t, "configuration reload: unchanged")
	if resp, err := tryGet(g.ProxyAddr, "/counter", 5*time.Second); err != nil || resp.StatusCode != 200 || g.exited() {
		t.Fatalf("after SIGHUP: %v %v (exited %v), want Gozer serving", resp, err, g.exited())
	}
}

// TestProxyProtocol: behind a TCP load balancer (proxy_protocol: true) the
// client the PROXY header names, v1 or v2, is the one X-Forwarded-For, the
// access log and the per-client cap see; a connection without a valid header
// is closed unanswered and counted.
func TestProxyProtocol(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "pp")
	cfg := oneOrigin(nil, o.Addr)
	cfg.ProxyProtocol = true
	cfg.Server = map[string]string{"max_connections_per_ip": "1"}
	g := startGozer(t, cfg)
	header := func(version byte, client string) string {
		src, _ := net.ResolveTCPAddr("tcp", client)
		dst, _ := net.ResolveTCPAddr("tcp", "[2001:db8::80]:80")
		if src.IP.To4() != nil {
			dst, _ = net.ResolveTCPAddr("tcp", "192.0.2.80:80")
		}
		b, err := proxyproto.HeaderProxyFromAddrs(version, src, dst).Format()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, header, ip string
	}{
		{"v1 TCP4", header(1, "203.0.113.7:5555"), "203.0.113.7"},
		{"v2 TCP6", header(2, "[2001:db8:1::7]:5556"), "2001:db8:1::7"},
		{"v2 TCP4 split over two writes", header(2, "198.51.100.9:5557"), "198.51.100.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, g.ProxyAddr)
			if strings.Contains(tc.name, "split") {
				c.send(tc.header[:10])
				time.Sleep(50 * time.Millisecond) // the two pieces arrive apart
				c.send(tc.header[10:])
			} else {
				c.send(tc.header)
			}
			id := uniqueID("pp")
			resp, body := c.roundTrip(request("GET", "/headers", "X-Request-Id: "+id))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := decodeView(t, body).Headers.Get("X-Forwarded-For"); got != tc.ip {
				t.Errorf("origin saw X-Forwarded-For %q, want %q", got, tc.ip)
			}
			line := g.waitAccessLog(t, "the request's line", byRequestID(id))[0]
			if host, _, _ := net.SplitHostPort(line.str("client")); host != tc.ip {
				t.Errorf("access log client %q, want %s", line.str("client"), tc.ip)
			}
			// The per-client cap counts the named client: a second connection
			// naming it is refused while this one is open.
			again := dialRaw(t, g.ProxyAddr)
			again.send(tc.header)
			_ = again.write(request("GET", "/counter"))
			if resp, _, err := again.readResponse("GET"); err != nil || resp.StatusCode != 429 {
				t.Errorf("a second connection naming %s: %v %v, want 429 (max_connections_per_ip 1)", tc.ip, resp, err)
			}
		})
	}
	t.Run("no header", func(t *testing.T) {
		before := g.adminEdge(t).ProxyRefused
		c := dialRaw(t, g.ProxyAddr)
		_ = c.write(request("GET", "/counter"))
		c.mustClose("a request without a PROXY header")
		if e := g.adminEdge(t); e.ProxyRefused <= before {
			t.Errorf("proxy_protocol_refused_total %d, want it above %d", e.ProxyRefused, before)
		}
		g.waitLog(t, "connection closed: no valid PROXY protocol header")
	})
	t.Run("malformed v1", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		_ = c.write("PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\n" + request("GET", "/counter"))
		c.mustClose("a malformed PROXY header")
	})
	waitFor(t, 10*time.Second, "every named client's count to be given back", func() bool {
		return g.adminEdge(t).Clients == 0
	})
}

// dialed wraps an open connection as a rawConn.
func dialed(t testing.TB, c net.Conn) *rawConn {
	return &rawConn{t: t, Conn: c, br: bufio.NewReader(c)}
}

// TestSlowClientPenalty: once a request from an address was ended as too
// slow, that address keeps a sixteenth of max_requests_per_ip in flight for a
// rate window: an attacker coming back at once costs a 429, not an origin
// request; other addresses are not affected.
func TestSlowClientPenalty(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, map[string]string{"max_requests_per_ip": "16", "min_body_rate": "1KiB", "rate_window": "2s"}, nil)
	slow := dialFrom(t, "127.0.0.4", g.ProxyAddr)
	slow.send("POST /sink HTTP/1.1\r\nHost: gozer.test\r\nContent-Length: 8192\r\n\r\nabcd")
	if resp, _ := slow.response("POST"); resp.StatusCode != 408 {
		t.Fatalf("slow body: status %d, want 408", resp.StatusCode)
	}
	// The 408's request leaves the address's in-flight count a moment after its
	// answer reached the client, on its own loop: a /hang sent at once may still
	// meet it (429). Send another until one is admitted; the cap of one in
	// flight admits at most one.
	waitFor(t, 10*time.Second, "the one request the penalty leaves in flight", func() bool {
		if g.adminOrigin(t, "demo").InFlight == 1 {
			return true
		}
		dialFrom(t, "127.0.0.4", g.ProxyAddr).send(request("GET", "/hang"))
		return false
	})
	resp, _ := dialFrom(t, "127.0.0.4", g.ProxyAddr).roundTrip(request("GET", "/counter"))
	if resp.StatusCode != 429 {
		t.Fatalf("a second request in flight from the penalized address: status %d, want 429", resp.StatusCode)
	}
	if resp, _ := dialFrom(t, "127.0.0.5", g.ProxyAddr).roundTrip(request("GET", "/counter")); resp.StatusCode != 200 {
		t.Fatalf("another address: status %d, want 200", resp.StatusCode)
	}
	line := g.waitAccessLog(t, "the refusal", func(l accessLine) bool { return l.str("cause") == "FAILURE_CLIENT_TOO_MANY_REQUESTS" })[0]
	if !strings.Contains(line.str("reason"), "too slow") {
		t.Errorf("refusal reason %q, want it to say the address was penalized", line.str("reason"))
	}
}
