package test

// HTTPS at the front door, as clients meet it: Go's crypto/tls, curl, openssl
// s_client and a websocket client over wss://, all against a real Gozer and a
// real origin.

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHTTPSProxies: over TLS 1.3 and 1.2, requests reach the origin with
// X-Forwarded-Proto: https, keep-alive holds one connection, bodies larger
// than a record go both ways intact, and the access log names the TLS facts.
func TestHTTPSProxies(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost", "127.0.0.1")
	o := startOrigin(t, "o")
	g := tlsGozer(t, o.Addr, nil, [2]string{cert, key})

	for _, tc := range []struct {
		name    string
		version uint16
	}{{"tls1.3", tls.VersionTLS13}, {"tls1.2", tls.VersionTLS12}} {
		t.Run(tc.name, func(t *testing.T) {
			c := httpsClient(t, ca, "localhost", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tc.version, tc.version })
			conns := 0
			trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
				if !i.Reused {
					conns++
				}
			}}
			for i := range 10 {
				req, _ := http.NewRequest("GET", g.httpsURL(fmt.Sprintf("/headers?i=%d", i)), nil)
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("GET /headers over %s: %v", tc.name, err)
				}
				var seen struct{ Headers map[string][]string }
				_ = json.NewDecoder(resp.Body).Decode(&seen)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version != tc.version {
					t.Fatalf("status %d, TLS %+v; want 200 over %s", resp.StatusCode, resp.TLS, tc.name)
				}
				if p := seen.Headers["X-Forwarded-Proto"]; len(p) != 1 || p[0] != "https" {
					t.Fatalf("origin saw X-Forwarded-Proto %q, want https", p)
				}
			}
			if conns != 1 {
				t.Errorf("10 keep-alive requests used %d connections, want 1", conns)
			}
			body := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16) // 300 KiB: ~19 records
			resp, got := fetch(t, c, "POST", g.httpsURL("/echo"), body, nil)
			if resp.StatusCode != 200 || !bytes.Equal(got, body) {
				t.Fatalf("POST /echo of %d bytes: status %d, %d bytes back (equal: %v)", len(body), resp.StatusCode, len(got), bytes.Equal(got, body))
			}
		})
	}
	l := g.waitAccessLog(t, "a request over TLS 1.2", func(l accessLine) bool {
		tl, _ := l["tls"].(map[string]any)
		return l.str("path") == "/echo" && tl["version"] == "1.2"
	})
	tl := l[0]["tls"].(map[string]any)
	// Go's client offers no ALPN over HTTP/1.1 only; curl's does (below).
	if tl["sni"] != "localhost" || tl["resumed"] != false || !strings.HasPrefix(tl["cipher"].(string), "TLS_ECDHE_ECDSA_") {
		t.Errorf("access log tls %v: want sni localhost, not resumed, an ECDHE-ECDSA suite", tl)
	}
	if s := g.tlsStats(t); s.Handshakes.Versions["1.3"] < 1 || s.Handshakes.Versions["1.2"] < 1 {
		t.Errorf("/admin/tls handshakes_by_version %v, want both", s.Handshakes.Versions)
	}
	// Plain HTTP to the TLS port is answered 400 and counted. (GET /admin/tls
	// is compared with docs/ADMIN.md by TestAdminTLSClientCertificates, whose
	// Gozer has the admin listener's TLS on as well.)
	if resp, _ := dialRaw(t, g.HTTPSAddr).roundTrip("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 400 {
		t.Fatalf("plain HTTP to the TLS port: %d", resp.StatusCode)
	}
	g.waitTLSFailure(t, "plain_http", 1)
}

// TestHTTPSWithCurlAndOpenSSL: the command-line clients operators use. curl
// fetches through Gozer; openssl s_client gets the certificate its SNI names
// (exact, wildcard, default), is refused below TLS 1.2, and resumes a session.
func TestHTTPSWithCurlAndOpenSSL(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make test installs it)", tool)
		}
	}
	ca := newTestCA(t)
	defCert, defKey, _ := ca.issue(t, "default", false, "default.test", "127.0.0.1")
	wildCert, wildKey, _ := ca.issue(t, "wild", false, "*.wild.test")
	exactCert, exactKey, _ := ca.issue(t, "exact", true, "exact.test")
	o := startOrigin(t, "o")
	g := tlsGozer(t, o.Addr, nil, [2]string{defCert, defKey}, [2]string{wildCert, wildKey}, [2]string{exactCert, exactKey})
	port := g.HTTPSAddr[strings.LastIndex(g.HTTPSAddr, ":")+1:]

	out, err := exec.Command("curl", "-sS", "--max-time", "10", "--cacert", ca.caFile(),
		"--resolve", "a.wild.test:"+port+":127.0.0.1", "-w", "\n%{http_code} %{ssl_verify_result}",
		"https://a.wild.test:"+port+"/headers").CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "200 0") || !strings.Contains(string(out), `"X-Forwarded-Proto":["https"]`) {
		t.Fatalf("curl https://a.wild.test: %v\n%s", err, out)
	}
	l := g.waitAccessLog(t, "curl's request", func(l accessLine) bool {
		tl, _ := l["tls"].(map[string]any)
		return tl["sni"] == "a.wild.test"
	})
	// curl offers h2 first, and listeners.https.h2 is on by default.
	if tl := l[0]["tls"].(map[string]any); tl["alpn"] != "h2" || tl["version"] != "1.3" || l[0].str("protocol") != "HTTP/2.0" {
		t.Errorf("curl's access-log tls %v, protocol %q: want alpn h2 over 1.3, HTTP/2.0", tl, l[0].str("protocol"))
	}

	sclient := func(args ...string) string {
		cmd := exec.Command("openssl", append([]string{"s_client", "-connect", g.HTTPSAddr, "-CAfile", ca.caFile()}, args...)...)
		cmd.Stdin = strings.NewReader("")
		b, _ := cmd.CombinedOutput()
		return string(b)
	}
	for _, tc := range []struct{ sni, want string }{
		{"exact.test", "CN = exact.test"}, {"x.wild.test", "CN = *.wild.test"},
		{"unknown.test", "CN = default.test"}, {"", "CN = default.test"},
	} {
		args := []string{"-noservername"}
		if tc.sni != "" {
			args = []string{"-servername", tc.sni}
		}
		if out := sclient(args...); !strings.Contains(out, "subject="+tc.want) && !strings.Contains(out, "subject=/"+strings.ReplaceAll(tc.want, " = ", "=")) {
			t.Errorf("SNI %q: want the certificate %q; openssl said:\n%s", tc.sni, tc.want, tail(out, 1500))
		}
	}
	if out := sclient("-servername", "default.test", "-tls1_1"); !strings.Contains(out, "alert protocol version") && !strings.Contains(out, "no protocols available") {
		t.Errorf("a TLS 1.1 client: want a protocol_version alert; openssl said:\n%s", tail(out, 1500))
	}
	g.waitTLSFailure(t, "protocol_version", 1)

	sess := t.TempDir() + "/sess.pem"
	first := sclient("-servername", "default.test", "-sess_out", sess)
	if !strings.Contains(first, "New, TLSv1.3") {
		t.Fatalf("first handshake: want New, TLSv1.3; openssl said:\n%s", tail(first, 1500))
	}
	// TLS 1.3 tickets arrive after the handshake; s_client saves them when
	// it reads, which its empty stdin ends quickly: retry a few times.
	if !eventually(10*time.Second, func() bool {
		return strings.Contains(sclient("-servername", "default.test", "-sess_in", sess), "Reused, TLSv1.3")
	}) {
		t.Fatalf("a second handshake with the saved session was not resumed; openssl said:\n%s",
			tail(sclient("-servername", "default.test", "-sess_in", sess), 1500))
	}
	// The loop counts the handshake when it takes the connection over, which
	// may come after s_client, its stdin empty, already left.
	waitFor(t, 10*time.Second, "/admin/tls resumed_total to count the resumed handshake", func() bool {
		return g.tlsStats(t).Handshakes.Resumed >= 1
	})
}

// TestWSSPush: a websocket device over wss:// receives what the push API
// sends it; its upgrade was an HTTPS request like any other.
func TestWSSPush(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost", "127.0.0.1")
	cfg := pushConfig(t, nil)
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	g := startGozer(t, cfg)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "localhost"}}
	conn, resp, err := d.Dial("wss://"+g.HTTPSAddr+"/push/ws?token="+g.pushToken(t, "dev-wss", "1h"), nil)
	if err != nil {
		t.Fatalf("wss dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	dev := readWS("dev-wss", conn)
	g.waitConnected(t, "dev-wss", true, 5*time.Second)
	for i := range 3 {
		msg := fmt.Sprintf("over tls %d %s", i, strings.Repeat("x", i*20000)) // up to two records
		g.push(t, "dev-wss", msg, 200)
		dev.expectText(t, msg)
	}

	// SSE over HTTPS too: the stream's first bytes arrive.
	c := httpsClient(t, ca, "localhost", nil)
	req, _ := http.NewRequest("GET", g.httpsURL("/push/sse?token="+g.pushToken(t, "dev-sse", "1h")), nil)
	sse, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Body.Close()
	if sse.StatusCode != 200 || !strings.HasPrefix(sse.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("SSE over HTTPS: status %d, Content-Type %q", sse.StatusCode, sse.Header.Get("Content-Type"))
	}
	g.waitConnected(t, "dev-sse", true, 5*time.Second)
	g.push(t, "dev-sse", "hello sse", 200)
	buf := make([]byte, 4096)
	var got []byte
	deadline := time.Now().Add(5 * time.Second)
	for !bytes.Contains(got, []byte("hello sse")) && time.Now().Before(deadline) {
		n, err := sse.Body.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil && err != io.EOF {
			break
		}
	}
	if !bytes.Contains(got, []byte("data: hello sse")) {
		t.Fatalf("SSE over HTTPS: got %q, want the pushed event", got)
	}
}

// TestLuaSeesTLS: a filter reads ctx.req.scheme and ctx.req.tls: https with the
// negotiated version and SNI over TLS, http and nil over the plain port.
func TestLuaSeesTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost", "127.0.0.1")
	d := newScriptDir(t)
	d.write(t, "outbound", "10_tls.lua", luaFilter("tls", "outbound", 10, "", `
    local t = ctx.req.tls
    ctx.resp.set_header("X-Scheme", ctx.req.scheme)
    if t then
      ctx.resp.set_header("X-TLS", t.version .. " " .. t.sni .. " " .. tostring(t.resumed))
    else
      ctx.resp.set_header("X-TLS", "none")
    end`))
	o := startOrigin(t, "o")
	cfg := config{Origins: servers(o), Routes: []route{{PathPrefix: "/", Origin: "o"}}, Filters: &filtersConfig{Dir: string(d), Budget: "1s"}}
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	g := startGozer(t, cfg)

	resp, _ := fetch(t, httpsClient(t, ca, "localhost", func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }), "GET", g.httpsURL("/"), nil, nil)
	if resp.Header.Get("X-Scheme") != "https" || resp.Header.Get("X-TLS") != "1.2 localhost false" {
		t.Errorf("over TLS 1.2: X-Scheme %q, X-TLS %q; want https and \"1.2 localhost false\"", resp.Header.Get("X-Scheme"), resp.Header.Get("X-TLS"))
	}
	resp, _ = fetch(t, newClient(t, 5*time.Second), "GET", g.URL("/"), nil, nil)
	if resp.Header.Get("X-Scheme") != "http" || resp.Header.Get("X-TLS") != "none" {
		t.Errorf("plain: X-Scheme %q, X-TLS %q; want http and none", resp.Header.Get("X-Scheme"), resp.Header.Get("X-TLS"))
	}
}

// TestRedirectToHTTPS: with listeners.proxy.redirect_https, a plain request
// gets a 308 to the same URL on the HTTPS port, the health check path is
// served as asked, and the client following the redirect lands over TLS.
func TestRedirectToHTTPS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost", "127.0.0.1")
	o := startOrigin(t, "o")
	cfg := oneOrigin(nil, o.Addr)
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	cfg.RedirectHTTPS = true
	g := startGozer(t, cfg)
	port := g.HTTPSAddr[strings.LastIndex(g.HTTPSAddr, ":")+1:]

	c := newClient(t, 5*time.Second)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := fetch(t, c, "GET", g.URL("/a/b?x=1"), nil, map[string]string{"Host": "localhost:8080"})
	if want := "https://localhost:" + port + "/a/b?x=1"; resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Fatalf("plain GET: %d Location %q, want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if resp, _ := fetch(t, c, "GET", g.URL("/healthcheck"), nil, nil); resp.StatusCode == 308 {
		t.Fatalf("/healthcheck was redirected: it is in redirect_except by default")
	}
	follow := httpsClient(t, ca, "localhost", nil)
	resp, _ = fetch(t, follow, "GET", "http://localhost:"+g.ProxyAddr[strings.LastIndex(g.ProxyAddr, ":")+1:]+"/headers", nil, nil)
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("following the redirect: status %d, TLS %v; want 200 over TLS", resp.StatusCode, resp.TLS != nil)
	}
}

// TestMutualTLS: with client_auth require, a client certificate signed by the
// client CA gets through and its subject reaches the access log; no
// certificate, or an expired one, ends the handshake, counted as
// client_certificate.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost", "127.0.0.1")
	o := startOrigin(t, "o")
	g := tlsGozer(t, o.Addr, map[string]string{"client_auth": "require", "client_ca_file": fmt.Sprintf("%q", ca.caFile())},
		[2]string{cert, key})

	good := ca.clientCert(t, "device-42", time.Now().Add(time.Hour))
	c := httpsClient(t, ca, "localhost", func(c *tls.Config) { c.Certificates = []tls.Certificate{good} })
	if resp, _ := fetch(t, c, "GET", g.httpsURL("/mtls"), nil, nil); resp.StatusCode != 200 {
		t.Fatalf("with a good client certificate: status %d", resp.StatusCode)
	}
	l := g.waitAccessLog(t, "the mTLS request", func(l accessLine) bool { return l.str("path") == "/mtls" })
	if tl, _ := l[0]["tls"].(map[string]any); !strings.Contains(fmt.Sprint(tl["client_subject"]), "CN=device-42") {
		t.Errorf("access-log tls %v: want client_subject with CN=device-42", tl)
	}

	for i, tc := range []struct {
		name  string
		certs []tls.Certificate
	}{
		{"no client certificate", nil},
		{"an expired client certificate", []tls.Certificate{ca.clientCert(t, "device-old", time.Now().Add(-time.Hour))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", g.HTTPSAddr, &tls.Config{RootCAs: ca.pool, ServerName: "localhost", Certificates: tc.certs})
			if err == nil {
				// TLS 1.3: the client learns of the refusal at its first read.
				_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"))
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if err == nil {
				t.Fatalf("the handshake went through")
			}
			g.waitTLSFailure(t, "client_certificate", int64(i+1))
		})
	}
}

// TestHTTPSBesidePROXYProtocol: listeners.proxy.proxy_protocol is the plain
// listener's setting; HTTPS clients on the TLS listener send no PROXY header
// and are served.
func TestHTTPSBesidePROXYProtocol(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key, _ := ca.issue(t, "localhost", false, "localhost", "127.0.0.1")
	o := startOrigin(t, "o")
	cfg := oneOrigin(nil, o.Addr)
	cfg.ProxyProtocol = true
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	g := startGozer(t, cfg)
	if resp, _ := fetch(t, httpsClient(t, ca, "localhost", nil), "GET", g.httpsURL("/"), nil, nil); resp.StatusCode != 200 {
		t.Fatalf("HTTPS with proxy_protocol on the plain listener: status %d, want 200", resp.StatusCode)
	}
}
