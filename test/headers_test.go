package test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// viewThrough sends a raw request to /headers through Gozer and returns the response
// and what the origin received.
func viewThrough(t *testing.T, g *gozer, req string) (map[string]string, originView) {
	t.Helper()
	c := dialRaw(t, g.ProxyAddr)
	resp, body := c.roundTrip(req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, body %q", resp.StatusCode, tail(string(body), 300))
	}
	h := map[string]string{}
	for k, v := range resp.Header {
		h[k] = strings.Join(v, ", ")
	}
	return h, decodeView(t, body)
}

func TestHopByHopHeadersStripped(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	_, v := viewThrough(t, g, request("GET", "/headers",
		"Connection: X-Foo, keep-alive",
		"X-Foo: 1",
		"Keep-Alive: timeout=5",
		"Proxy-Authorization: Basic Zm9vOmJhcg==",
		"TE: gzip", // (TE: trailers is said again to the origin: TestTrailersTE)
		"Upgrade: foo/1",
		"X-Kept: yes",
	))
	for _, h := range []string{"X-Foo", "Keep-Alive", "Proxy-Authorization", "Te", "Upgrade"} {
		t.Run(h, func(t *testing.T) {
			if got, ok := v.Headers[h]; ok {
				t.Errorf("origin received hop-by-hop header %s: %q", h, got)
			}
		})
	}
	t.Run("Connection options", func(t *testing.T) {
		if c := strings.ToLower(strings.Join(v.Headers["Connection"], ",")); strings.Contains(c, "x-foo") {
			t.Errorf("origin received the client's Connection options: %q", c)
		}
	})
	t.Run("end-to-end header kept", func(t *testing.T) {
		if got := v.Headers.Get("X-Kept"); got != "yes" {
			t.Errorf("X-Kept = %q, want yes (only hop-by-hop headers may go)", got)
		}
	})
}

func TestForwardedHeaders(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "o1")
	cfg := oneOrigin(nil, o.Addr)
	untrusted := startGozer(t, cfg)
	cfg.TrustForwarded = true
	trusted := startGozer(t, cfg)
	tests := []struct {
		name    string
		g       *gozer
		sent    []string
		wantXFF string
		wantXFP string
		wantXFH string
	}{
		{"untrusted, none sent", untrusted, nil, "127.0.0.1", "http", "shop.test:8080"},
		{"untrusted, client values replaced", untrusted,
			[]string{"X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.test", "X-Real-IP: 203.0.113.9"},
			"127.0.0.1", "http", "shop.test:8080"},
		{"trusted, client XFF appended to", trusted, []string{"X-Forwarded-For: 203.0.113.9, 198.51.100.7"},
			"203.0.113.9, 198.51.100.7, 127.0.0.1", "http", "shop.test:8080"},
		{"trusted, none sent", trusted, nil, "127.0.0.1", "http", "shop.test:8080"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := "GET /headers HTTP/1.1\r\nHost: shop.test:8080\r\n" + strings.Join(append(tc.sent, ""), "\r\n") + "\r\n"
			_, v := viewThrough(t, tc.g, req)
			if got := strings.Join(v.Headers.Values("X-Forwarded-For"), ", "); got != tc.wantXFF {
				t.Errorf("origin saw X-Forwarded-For %q, want %q", got, tc.wantXFF)
			}
			if got := strings.Join(v.Headers.Values("X-Forwarded-Proto"), ", "); got != tc.wantXFP {
				t.Errorf("origin saw X-Forwarded-Proto %q, want %q", got, tc.wantXFP)
			}
			if got := strings.Join(v.Headers.Values("X-Forwarded-Host"), ", "); got != tc.wantXFH {
				t.Errorf("origin saw X-Forwarded-Host %q, want %q", got, tc.wantXFH)
			}
			if v.Host != "shop.test:8080" {
				t.Errorf("origin saw Host %q, want the client's shop.test:8080", v.Host)
			}
			// A client's claim of its own address, which origins read as
			// X-Forwarded-For: only a trusted one goes.
			if got := v.Headers.Get("X-Real-Ip"); tc.g == untrusted && got != "" {
				t.Errorf("origin saw X-Real-IP %q from an untrusted client", got)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	tests := []struct {
		name   string
		sent   string // X-Request-Id the client sends; "" for none
		expect string // the id the origin must see; "" for any fresh one
	}{
		{"added when absent", "", ""},
		{"client id kept", "client-chosen-id-42", "client-chosen-id-42"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hs []string
			if tc.sent != "" {
				hs = append(hs, "X-Request-Id: "+tc.sent)
			}
			resp, v := viewThrough(t, g, request("GET", "/headers", hs...))
			atOrigin := strings.Join(v.Headers.Values("X-Request-Id"), ", ")
			if atOrigin == "" || tc.expect != "" && atOrigin != tc.expect {
				t.Errorf("origin saw X-Request-Id %q, want %q", atOrigin, tc.expect)
			}
			if resp["X-Request-Id"] != atOrigin {
				t.Errorf("response X-Request-Id %q differs from the origin's %q", resp["X-Request-Id"], atOrigin)
			}
		})
	}
	t.Run("fresh per request", func(t *testing.T) {
		_, a := viewThrough(t, g, request("GET", "/headers"))
		_, b := viewThrough(t, g, request("GET", "/headers"))
		if a.Headers.Get("X-Request-Id") == b.Headers.Get("X-Request-Id") {
			t.Errorf("two requests got the same X-Request-Id %q", a.Headers.Get("X-Request-Id"))
		}
	})
}

func TestVia(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	tests := []struct {
		name, sent, wantOrigin string
	}{
		{"added", "", "1.1 gozer"},
		{"appended", "1.0 fred", "1.0 fred, 1.1 gozer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hs []string
			if tc.sent != "" {
				hs = append(hs, "Via: "+tc.sent)
			}
			resp, v := viewThrough(t, g, request("GET", "/headers", hs...))
			if got := strings.Join(v.Headers.Values("Via"), ", "); got != tc.wantOrigin {
				t.Errorf("origin saw Via %q, want %q", got, tc.wantOrigin)
			}
			if !strings.Contains(resp["Via"], "1.1 gozer") {
				t.Errorf("response Via %q lacks 1.1 gozer", resp["Via"])
			}
		})
	}
}

// TestHeadersWithUnderscores: a client's header whose name has an "_" is
// dropped by default (X_User is X-User to a CGI, WSGI, Rack or PHP origin),
// refused with a 400 when server.headers_with_underscores is reject, and
// passed when it is allow.
func TestHeadersWithUnderscores(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "o1")
	start := func(mode string) *gozer {
		cfg := oneOrigin(nil, o.Addr)
		if mode != "" {
			cfg.Server = map[string]string{"headers_with_underscores": mode}
		}
		return startGozer(t, cfg)
	}
	req := request("GET", "/headers", "X_User: root", "Content_Length: 5", "X-Kept: yes")
	for _, tc := range []struct {
		mode   string // "": the default
		status int
		passed bool // the origin got X_User and Content_Length
	}{{"", 200, false}, {"reject", 400, false}, {"allow", 200, true}} {
		t.Run("mode "+tc.mode, func(t *testing.T) {
			g := start(tc.mode)
			resp, body := dialRaw(t, g.ProxyAddr).roundTrip(req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, tail(string(body), 200))
			}
			if tc.status != 200 {
				g.waitLog(t, "header name with an underscore")
				return
			}
			if tc.mode == "" {
				g.waitLog(t, "underscore_headers", "dropped a client's headers")
			}
			v := decodeView(t, body)
			got := 0
			for name := range v.Headers {
				if strings.Contains(name, "_") {
					got++
				}
			}
			if tc.passed && got != 2 || !tc.passed && got != 0 {
				t.Errorf("the origin got %d underscore headers of 2 (headers %v)", got, v.Headers)
			}
			if v.Headers.Get("X-Kept") != "yes" {
				t.Errorf("X-Kept = %q, want yes", v.Headers.Get("X-Kept"))
			}
		})
	}
}

// TestTargetsRefused: a path an origin would resolve past the route that
// matched, and a fragment, are 400s that reach no origin.
func TestTargetsRefused(t *testing.T) {
	t.Parallel()
	g, o := proxied(t, nil, nil)
	for _, target := range []string{"/api/v1/../../internal", "/a/%2e%2e/b", "/./x", "/admin#frag"} {
		t.Run(target, func(t *testing.T) {
			id := uniqueID("target")
			resp, _ := dialRaw(t, g.ProxyAddr).roundTrip("GET " + target + " HTTP/1.1\r\nHost: h\r\nX-Test-Id: " + id + "\r\n\r\n")
			if resp.StatusCode != 400 {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			if s := seen(t, o, id); s.Requests+s.Connections > 0 {
				t.Fatalf("the origin got the request: %+v", s)
			}
		})
	}
}

// TestResponseConnectionNominated: an origin's Connection that names a
// header ends that header at Gozer, but cannot strip what an outbound filter
// sets under the same name (here the HSTS a filter adds), over HTTP/1.1.
func TestResponseConnectionNominated(t *testing.T) {
	t.Parallel()
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Hop, Strict-Transport-Security")
		h.Set("X-Hop", "1")
		h.Set("Strict-Transport-Security", "max-age=0")
		h.Set("X-Public", "ok")
		fmt.Fprintln(w, "hello")
	}))
	t.Cleanup(o.Close)
	d := newScriptDir(t)
	d.write(t, "outbound", "10_hsts.lua", luaFilter("hsts", "outbound", 10, "", `
    ctx.resp.set_header("Strict-Transport-Security", "max-age=63072000")`))
	g := luaGozer(t, d, filtersConfig{}, map[string]originConfig{"o": {Servers: []string{strings.TrimPrefix(o.URL, "http://")}}},
		route{PathPrefix: "/", Origin: "o"})
	resp, body := fetch(t, newClient(t, 10*time.Second), "GET", g.URL("/"), nil, nil)
	if resp.StatusCode != 200 || string(body) != "hello\n" {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	for name, want := range map[string]string{"Strict-Transport-Security": "max-age=63072000", "X-Public": "ok", "X-Hop": ""} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}
