package test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTrailersTE: a client that says it takes trailers (TE: trailers) has
// Gozer say so to the origin, so that an origin which sends trailers only
// then (gRPC servers) does, and they reach the client: from Go's HTTP/1.1
// client (with or without Connection: TE, other codings beside it) and its
// HTTP/2 clients (te: trailers, h2c and h2 over TLS). Gozer's TE is
// "trailers" and nothing else, with Connection: TE (RFC 9110 10.1.4); a TE
// without "trailers", no TE, and an HTTP/1.0 client (its close-delimited
// answer cannot carry trailers) send none. An HTTP/2 te other than
// "trailers" is a malformed request (RST_STREAM PROTOCOL_ERROR).
func TestTrailersTE(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o := trailerOrigin(t)
	g := trailerGozer(t, ca, o.Listener.Addr().String())
	http1, h2c, h2 := newClient(t, 20*time.Second), h2cClient(t), h2TLSClient(t, ca)
	plain, tls := "http://"+g.ProxyAddr, "https://"+g.HTTPSAddr
	cases := []struct {
		name     string
		client   *http.Client
		base     string
		header   []string // name, value pairs
		wantTE   string   // what the origin got
		wantConn string
		trailers bool // Grpc-Status: 0 reached the client
	}{
		{"http1 trailers", http1, plain, []string{"TE", "trailers"}, "trailers", "TE", true},
		{"http1 with connection and codings", http1, plain, []string{"TE", "gzip;q=0.5, trailers", "Connection", "TE"}, "trailers", "TE", true},
		{"http1 codings only", http1, plain, []string{"TE", "gzip, deflate"}, "", "", false},
		{"http1 none", http1, plain, nil, "", "", false},
		{"h2c trailers", h2c, plain, []string{"TE", "trailers"}, "trailers", "TE", true},
		{"h2 trailers", h2, tls, []string{"TE", "trailers"}, "trailers", "TE", true},
		{"h2 none", h2, tls, nil, "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", tc.base+"/te", nil)
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			resp, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(body) != "hello" {
				t.Fatalf("%d %s %q %v", resp.StatusCode, resp.Proto, body, err)
			}
			if got := resp.Header.Get("X-Got-TE"); got != tc.wantTE {
				t.Errorf("the origin got TE %q, want %q", got, tc.wantTE)
			}
			if got := resp.Header.Get("X-Got-Connection"); got != tc.wantConn {
				t.Errorf("the origin got Connection %q, want %q", got, tc.wantConn)
			}
			if got := resp.Trailer.Get("Grpc-Status"); (got == "0") != tc.trailers {
				t.Errorf("trailer Grpc-Status %q (trailers %v), want trailers %v", got, resp.Trailer, tc.trailers)
			}
		})
	}
	t.Run("http1.0 trailers", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET /te HTTP/1.0\r\nHost: x\r\nConnection: TE\r\nTE: trailers\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
		all, err := io.ReadAll(c.br)
		s := strings.ToLower(string(all))
		if err != nil || !strings.HasSuffix(s, "\r\n\r\nhello") || !strings.Contains(s, "x-got-te:") || strings.Contains(s, "x-got-te: trailers") {
			t.Fatalf("HTTP/1.0 answer %q (%v): the origin must get no TE", s, err)
		}
	})
	t.Run("side call", func(t *testing.T) {
		// A Lua side call's answer goes to its filter, never with trailers:
		// its TE: trailers is not said to the origin, whatever the request
		// that made it spoke (Go's HTTP/1.1 and h2c clients, both with TE).
		d := newScriptDir(t)
		d.write(t, "inbound", "10_side.lua", luaFilter("side", "inbound", 10, "", `
    local res, err = ctx.http{ origin = "demo", path = "/te", headers = { TE = "trailers" }, timeout = 10 }
    if res == nil then ctx.respond(502, err) return end
    ctx.respond(200, "te=" .. (res.header("X-Got-TE") or "") .. " connection=" .. (res.header("X-Got-Connection") or ""))`,
			"async = true"))
		sg := startGozer(t, config{Origins: map[string]originConfig{"demo": {Servers: []string{o.Listener.Addr().String()}}},
			Routes: []route{{PathPrefix: "/", Origin: "demo"}}, Filters: &filtersConfig{Dir: string(d), Budget: "1s"}, H2C: true})
		for name, c := range map[string]*http.Client{"http1": http1, "h2c": h2c} {
			req, _ := http.NewRequest("GET", "http://"+sg.ProxyAddr+"/side", nil)
			req.Header.Set("TE", "trailers")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(body) != "te= connection=" {
				t.Errorf("%s: %d %q %v: the side call's origin must get no TE nor Connection", name, resp.StatusCode, body, err)
			}
		}
	})
	t.Run("h2 te gzip malformed", func(t *testing.T) {
		h := dialH2(t, g.ProxyAddr)
		if err := h.request(1, "GET", "/te", true, "te", "gzip"); err != nil {
			t.Fatal(err)
		}
		if status, _ := h.waitStream(1, 5*time.Second); status != "RST:PROTOCOL_ERROR" {
			t.Fatalf("te: gzip over HTTP/2 got %q, want RST_STREAM PROTOCOL_ERROR", status)
		}
	})
}

// TestTrailerHeader: the Trailer header that announces trailers is kept
// where the trailers go, filtered to the names whose fields pass. An
// origin's "Trailer: Grpc-Status, Content-Length, X-Checksum" and "Trailer:
// Host" reach Go's HTTP/1.1 and HTTP/2 clients as Grpc-Status and
// X-Checksum (resp.Trailer's keys before the body is read), none for a
// compressed answer (its trailers are dropped) or an HTTP/1.0 client. A
// client's Trailer reaches the origin (r.Trailer's keys before it reads the
// body) likewise, and not when its body goes with a Content-Length.
func TestTrailerHeader(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o := trailerOrigin(t)
	g := trailerGozer(t, ca, o.Listener.Addr().String())
	clients := trailerClients(t, ca, g)
	responses := []struct {
		path      string
		announced string // resp.Trailer's keys before the body
		got       string // and after
	}{
		{"/announced", "Grpc-Status X-Checksum", "Grpc-Status:0 X-Checksum:abc"},
		{"/gz/announced", "", ""},
	}
	for _, c := range clients {
		for _, r := range responses {
			t.Run(c.name+r.path, func(t *testing.T) {
				req, _ := http.NewRequest("GET", c.base+r.path, nil)
				req.Header.Set("Accept-Encoding", "gzip") // (so no client decodes it: /gz/ is compressed)
				resp, err := c.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if got := trailerKeys(resp.Trailer, false); got != r.announced {
					t.Errorf("announced %q, want %q", got, r.announced)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 {
					t.Fatalf("%d %v", resp.StatusCode, err)
				}
				if got := trailerKeys(resp.Trailer, true); got != r.got {
					t.Errorf("trailers %q, want %q", got, r.got)
				}
			})
		}
		t.Run(c.name+" request", func(t *testing.T) {
			pr, pw := io.Pipe()
			req, _ := http.NewRequest("POST", c.base+"/echo-trailers", pr)
			req.Trailer = http.Header{"X-Sum": nil, "Grpc-Timeout": nil}
			go func() {
				_, _ = io.WriteString(pw, "hello")
				req.Trailer.Set("X-Sum", "abc")
				req.Trailer.Set("Grpc-Timeout", "1S")
				pw.Close()
			}()
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := announcedAt(t, resp); got != `["Grpc-Timeout","X-Sum"]` {
				t.Fatalf("the origin was announced %s", got)
			}
		})
	}
	t.Run("http1.0", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET /announced HTTP/1.0\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
		all, err := io.ReadAll(c.br)
		if s := strings.ToLower(string(all)); err != nil || !strings.HasSuffix(s, "\r\n\r\nhello") || strings.Contains(s, "\r\ntrailer:") {
			t.Fatalf("HTTP/1.0 answer %q (%v): no Trailer header", all, err)
		}
	})
	t.Run("http1 raw request", func(t *testing.T) {
		resp, body := rawExchange(t, g.ProxyAddr, "POST /echo-trailers HTTP/1.1\r\nHost: x\r\nTrailer: X-Sum, Content-Length, X-A\r\n"+
			"X-A: 1\r\nTrailer: Host\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: abc\r\n\r\n")
		if resp.StatusCode != 200 || !strings.Contains(body, `"announced":["X-Sum"]`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("h2 raw request with content-length", func(t *testing.T) {
		h := dialH2(t, g.ProxyAddr)
		status, body := h.postTrailers(1, []string{"content-length", "5", "trailer", "x-sum"}, "hello", "x-sum", "abc")
		if status != "200" || !strings.Contains(body, `"announced":null`) {
			t.Fatalf("%s %s", status, body)
		}
	})
}

// trailerKeys is h's keys, sorted, space-separated (values: "Key:value",
// for the keys that have one).
func trailerKeys(h http.Header, values bool) string {
	var out []string
	for k := range h {
		switch {
		case !values:
			out = append(out, k)
		case h.Get(k) != "":
			out = append(out, k+":"+h.Get(k))
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// announcedAt is /echo-trailers's "announced", as JSON.
func announcedAt(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var v struct {
		Announced json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d: %v", resp.StatusCode, err)
	}
	return string(v.Announced)
}
