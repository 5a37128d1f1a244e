package test

import (
	"strings"
	"testing"
)

// TestAccessLog: every request yields exactly one JSON line on stdout that tells
// who asked what, how it ended and why.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "o1")
	down := closedPort(t)
	g := startGozer(t, config{
		Origins: map[string]originConfig{
			"demo": {Servers: []string{o.Addr}},
			"down": {Servers: []string{down}, Opts: map[string]string{"retries": "0"}},
		},
		Routes: []route{
			{PathPrefix: "/down", Origin: "down"},
			{Host: "gozer.test", PathPrefix: "/", Origin: "demo"},
		},
	})
	proxiedKeys := []string{"time", "request_id", "client", "method", "path", "status", "cause",
		"origin", "server", "attempts", "bytes_in", "bytes_out", "duration_us"}
	tests := []struct {
		name       string
		req        string
		wantStatus int
		wantCause  string // "" for a success: any cause not starting with FAILURE_
		origin     string
		server     string
		keys       []string
	}{
		{"proxied POST", "POST /sink?x=1 HTTP/1.1\r\nHost: gozer.test\r\nContent-Length: 5\r\n\r\nhello",
			200, "", "demo", o.Addr, proxiedKeys},
		{"origin down", "GET /down/x HTTP/1.1\r\nHost: gozer.test\r\n\r\n",
			502, "FAILURE_ORIGIN_CONNECTIVITY", "down", down, proxiedKeys},
		{"no route", "GET /x HTTP/1.1\r\nHost: other.test\r\n\r\n",
			404, "FAILURE_LOCAL_NO_ROUTE", "", "", []string{"time", "request_id", "client", "method", "path", "status", "cause"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, g.ProxyAddr)
			resp, body := c.roundTrip(tc.req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			id := resp.Header.Get("X-Request-Id")
			if id == "" {
				t.Fatal("response has no X-Request-Id to find its log line by")
			}
			lines := g.waitAccessLog(t, "X-Request-Id "+id, byRequestID(id))
			if len(lines) != 1 {
				t.Fatalf("%d access-log lines for one request, want 1: %v", len(lines), lines)
			}
			l := lines[0]
			for _, k := range tc.keys {
				if _, ok := l[k]; !ok {
					t.Errorf("access-log line lacks %q: %v", k, l)
				}
			}
			method, path, _ := strings.Cut(tc.req, " ")
			path, _, _ = strings.Cut(path, "?")
			path, _, _ = strings.Cut(path, " ")
			if l.str("method") != method || !strings.HasPrefix(l.str("path"), path) {
				t.Errorf("logged %s %s, want %s %s", l.str("method"), l.str("path"), method, path)
			}
			if l.str("client") != c.LocalAddr().String() {
				t.Errorf("logged client %q, want the client's address %s", l.str("client"), c.LocalAddr())
			}
			if s, _ := l.num("status"); int(s) != tc.wantStatus {
				t.Errorf("logged status %v, want %d", l["status"], tc.wantStatus)
			}
			cause := l.str("cause")
			switch {
			case tc.wantCause == "" && strings.HasPrefix(cause, "FAILURE_"):
				t.Errorf("success logged with cause %q", cause)
			case tc.wantCause != "" && cause != tc.wantCause:
				t.Errorf("logged cause %q, want %q", cause, tc.wantCause)
			case tc.wantCause != "" && l.str("reason") == "":
				t.Errorf("error line has no reason: %v", l)
			}
			if tc.origin != "" && (l.str("origin") != tc.origin || l.str("server") != tc.server) {
				t.Errorf("logged origin %q server %q, want %q %q", l.str("origin"), l.str("server"), tc.origin, tc.server)
			}
			if tc.wantStatus == 200 {
				checkCounts(t, l, 5, int64(len(body)))
			}
			// Gozer's own answers count what they sent too (they logged 0 before).
			if n, _ := l.num("bytes_out"); int(n) < len("HTTP/1.1 200 OK\r\n")+len(body) {
				t.Errorf("bytes_out %v, want at least the status line and the %d body bytes", l["bytes_out"], len(body))
			}
		})
	}
}

// checkCounts checks the numeric fields of a successful request's line.
func checkCounts(t *testing.T, l accessLine, minIn, minOut int64) {
	t.Helper()
	if a, ok := l.num("attempts"); !ok || a != 1 {
		t.Errorf("attempts %v, want 1", l["attempts"])
	}
	if n, ok := l.num("bytes_in"); !ok || int64(n) < minIn {
		t.Errorf("bytes_in %v, want at least the %d body bytes", l["bytes_in"], minIn)
	}
	if n, ok := l.num("bytes_out"); !ok || int64(n) < minOut {
		t.Errorf("bytes_out %v, want at least the %d body bytes", l["bytes_out"], minOut)
	}
	if d, ok := l.num("duration_us"); !ok || d < 0 {
		t.Errorf("duration_us %v, want a number of microseconds", l["duration_us"])
	}
	if l["time"] == nil || l["time"] == "" {
		t.Errorf("time %v, want a timestamp", l["time"])
	}
}

// TestAccessLogOneLinePerRequest: many requests on one connection, one line each.
func TestAccessLogOneLinePerRequest(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	c := dialRaw(t, g.ProxyAddr)
	var ids []string
	for range 10 {
		id := uniqueID("line")
		if resp, _ := c.roundTrip(request("GET", "/counter", "X-Request-Id: "+id)); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if lines := g.waitAccessLog(t, id, byRequestID(id)); len(lines) != 1 {
			t.Errorf("request %s has %d access-log lines, want 1", id, len(lines))
		}
	}
}

// TestAccessLogRefusedHead: a request refused while its head is read is logged
// as what was received: its method and path when the request line came whole,
// "-" for what did not, never the defaults of an empty request (GET /).
func TestAccessLogRefusedHead(t *testing.T) {
	t.Parallel()
	g := startGozer(t, config{
		Server:  map[string]string{"header_read_timeout": "1s", "max_request_line": "1KiB", "max_header_bytes": "4KiB"},
		Origins: map[string]originConfig{"demo": {Servers: []string{closedPort(t)}}},
		Routes:  []route{{PathPrefix: "/", Origin: "demo"}},
	})
	tests := []struct {
		name         string
		req          string
		status       int
		method, path string
	}{
		{"bad header", "POST /refused/a?x=1 HTTP/1.1\r\nHost: a\r\nX-Folded: 1\r\n continued\r\n\r\n", 400, "POST", "/refused/a"},
		{"headers too large", "PATCH /refused/b HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 5000) + "\r\n\r\n", 431, "PATCH", "/refused/b"},
		{"target too long", "GET /" + strings.Repeat("u", 2000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414, "GET", "-"},
		{"smuggling", "POST /refused/c HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "POST", "/refused/c"},
		{"not http", "\x16\x03\x01\x02\x00 hello\r\n\r\n", 400, "-", "-"},
		{"head stalls", "PUT /refused/d HTTP/1.1\r\nHost: a\r\n", 408, "PUT", "/refused/d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, g.ProxyAddr)
			_ = c.write(tc.req)
			resp, body, err := c.readResponse("GET")
			if resp == nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, tail(string(body), 200))
			}
			id := resp.Header.Get("X-Request-Id")
			l := g.waitAccessLog(t, "X-Request-Id "+id, byRequestID(id))[0]
			if l.str("method") != tc.method || l.str("path") != tc.path {
				t.Errorf("access log: method %q path %q, want %q %q: %v", l.str("method"), l.str("path"), tc.method, tc.path, l)
			}
		})
	}
}
