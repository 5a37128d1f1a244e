package httpcodec

import (
	"errors"
	"strings"
	"testing"
)

// req builds a head from lines joined with CRLF, ending with the empty line.
func req(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// scanParse runs a fresh HeadScanner over the whole of head then Parse.
func scanParse(t *testing.T, r *Request, head string, lim Limits) error {
	t.Helper()
	var s HeadScanner
	n, err := s.Scan([]byte(head), lim)
	if err != nil {
		return err
	}
	if n == 0 {
		t.Fatalf("scanner wants more bytes for %q", head)
	}
	return r.Parse([]byte(head[:n]))
}

func wantError(t *testing.T, err error, status int, cause Class) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v, want *Error %d %s", err, status, cause)
	}
	if e.Status != status || e.Cause != cause {
		t.Fatalf("got %d %s (%s), want %d %s", e.Status, e.Cause, e.Reason, status, cause)
	}
}

func TestRequestRejections(t *testing.T) {
	const (
		bad   = CauseBadRequest
		smugg = CauseSmuggling
	)
	tests := []struct {
		name   string
		head   string
		status int
		cause  Class
	}{
		// Framing.
		{"cl and te", req("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Transfer-Encoding: chunked"), 400, smugg},
		{"te and cl", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 5"), 400, smugg},
		{"duplicate cl equal", req("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Content-Length: 5"), 400, smugg},
		{"duplicate cl different", req("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Content-Length: 6"), 400, smugg},
		{"duplicate cl case", req("POST / HTTP/1.1", "Host: a", "content-length: 5", "CONTENT-LENGTH: 5"), 400, smugg},
		{"cl list", req("POST / HTTP/1.1", "Host: a", "Content-Length: 5, 6"), 400, smugg},
		{"cl list equal", req("POST / HTTP/1.1", "Host: a", "Content-Length: 5, 5"), 400, smugg},
		{"cl plus sign", req("POST / HTTP/1.1", "Host: a", "Content-Length: +5"), 400, smugg},
		{"cl minus sign", req("POST / HTTP/1.1", "Host: a", "Content-Length: -5"), 400, smugg},
		{"cl hex", req("POST / HTTP/1.1", "Host: a", "Content-Length: 0x5"), 400, smugg},
		{"cl letters", req("POST / HTTP/1.1", "Host: a", "Content-Length: abc"), 400, smugg},
		{"cl empty", req("POST / HTTP/1.1", "Host: a", "Content-Length:"), 400, smugg},
		{"cl inner space", req("POST / HTTP/1.1", "Host: a", "Content-Length: 1 2"), 400, smugg},
		{"cl overflow", req("POST / HTTP/1.1", "Host: a", "Content-Length: 9223372036854775808"), 400, smugg},
		{"cl huge overflow", req("POST / HTTP/1.1", "Host: a", "Content-Length: 99999999999999999999999"), 400, smugg},
		{"te chunked list", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, x"), 400, smugg},
		{"te gzip chunked", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip, chunked"), 400, smugg},
		{"te xchunked", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: xchunked"), 400, smugg},
		{"te trailing comma", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked,"), 400, smugg},
		{"te leading comma", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: , chunked"), 400, smugg},
		{"te space inside", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chun ked"), 400, smugg},
		{"te vertical tab", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: \vchunked"), 400, bad},
		{"te identity", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: identity"), 400, smugg},
		{"te empty", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding:"), 400, smugg},
		{"te only ows", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: \t "), 400, smugg},
		{"te twice", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), 400, smugg},
		{"te on http/1.0", req("POST / HTTP/1.0", "Host: a", "Transfer-Encoding: chunked"), 400, smugg},
		{"bare lf in header", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400, smugg},
		{"bare lf request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400, smugg},
		{"bare lf end", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400, smugg},
		// Header syntax.
		{"space before colon", req("GET / HTTP/1.1", "Host: a", "Transfer-Encoding : chunked"), 400, bad},
		{"tab before colon", req("GET / HTTP/1.1", "Host: a", "X-Foo\t: 1"), 400, bad},
		{"obs-fold space", req("GET / HTTP/1.1", "Host: a", "X-Foo: 1", " continued"), 400, bad},
		{"obs-fold tab", req("GET / HTTP/1.1", "Host: a", "X-Foo: 1", "\tcontinued"), 400, bad},
		{"first header folded", req("GET / HTTP/1.1", " Host: a"), 400, bad},
		{"name with slash", req("GET / HTTP/1.1", "Host: a", "X/Foo: 1"), 400, bad},
		{"name with brace", req("GET / HTTP/1.1", "Host: a", "X{Foo}: 1"), 400, bad},
		{"name with non-ascii", req("GET / HTTP/1.1", "Host: a", "X-F\xc3\xa9: 1"), 400, bad},
		{"empty name", req("GET / HTTP/1.1", "Host: a", ": 1"), 400, bad},
		{"no colon", req("GET / HTTP/1.1", "Host: a", "X-Foo"), 400, bad},
		{"nul in value", req("GET / HTTP/1.1", "Host: a", "X-Foo: a\x00b"), 400, bad},
		{"bare cr in value", req("GET / HTTP/1.1", "Host: a", "X-Foo: a\rb"), 400, bad},
		{"esc in value", req("GET / HTTP/1.1", "Host: a", "X-Foo: \x1b[31m"), 400, bad},
		{"del in value", req("GET / HTTP/1.1", "Host: a", "X-Foo: a\x7fb"), 400, bad},
		// Host.
		{"missing host", req("GET / HTTP/1.1", "Accept: */*"), 400, bad},
		{"two hosts", req("GET / HTTP/1.1", "Host: a", "Host: b"), 400, bad},
		{"two hosts same", req("GET / HTTP/1.1", "Host: a", "host: a"), 400, bad},
		{"empty host", req("GET / HTTP/1.1", "Host: "), 400, bad},
		{"empty host http10", req("GET / HTTP/1.0", "Host:"), 400, bad},
		{"host with path", req("GET / HTTP/1.1", "Host: a/b"), 400, bad},
		{"host with userinfo", req("GET / HTTP/1.1", "Host: u@a"), 400, bad},
		{"host with space", req("GET / HTTP/1.1", "Host: a b"), 400, bad},
		{"absolute host mismatch", req("GET http://a/x HTTP/1.1", "Host: b"), 400, bad},
		// Request line.
		{"method not token", req("G@T / HTTP/1.1", "Host: a"), 400, bad},
		{"empty method", req(" / HTTP/1.1", "Host: a"), 400, bad},
		{"missing version", req("GET /", "Host: a"), 400, bad},
		{"missing target", req("GET HTTP/1.1", "Host: a"), 400, bad},
		{"double space", req("GET  / HTTP/1.1", "Host: a"), 400, bad},
		{"trailing space", req("GET / HTTP/1.1 ", "Host: a"), 400, bad},
		{"three parts extra", req("GET / x HTTP/1.1", "Host: a"), 400, bad},
		{"lower case version", req("GET / http/1.1", "Host: a"), 400, bad},
		{"garbage version", req("GET / HTTP/1.x", "Host: a"), 400, bad},
		{"version 2.0", req("GET / HTTP/2.0", "Host: a"), 505, bad},
		{"version 0.9", req("GET / HTTP/0.9", "Host: a"), 505, bad},
		{"version 1.2", req("GET / HTTP/1.2", "Host: a"), 505, bad},
		{"h2 preface", req("PRI * HTTP/2.0", "", "SM"), 505, bad},
		{"target no slash", req("GET foo HTTP/1.1", "Host: a"), 400, bad},
		{"target ftp scheme", req("GET ftp://a/ HTTP/1.1", "Host: a"), 400, bad},
		{"target empty authority", req("GET http:///x HTTP/1.1", "Host: a"), 400, bad},
		{"target with tab", req("GET /a\tb HTTP/1.1", "Host: a"), 400, bad},
		{"target with nul", req("GET /a\x00b HTTP/1.1", "Host: a"), 400, bad},
		{"asterisk get", req("GET * HTTP/1.1", "Host: a"), 400, bad},
		// Targets an origin could read otherwise than the routes (checkPath).
		{"fragment", req("GET /admin#x HTTP/1.1", "Host: a"), 400, bad},
		{"fragment in query", req("GET /a?b#c HTTP/1.1", "Host: a"), 400, bad},
		{"fragment absolute", req("GET http://a/x#y HTTP/1.1", "Host: a"), 400, bad},
		{"dot-dot segment", req("GET /api/v1/../../internal HTTP/1.1", "Host: a"), 400, bad},
		{"dot-dot at end", req("GET /api/.. HTTP/1.1", "Host: a"), 400, bad},
		{"dot segment", req("GET /./api HTTP/1.1", "Host: a"), 400, bad},
		{"dot segment at end", req("GET /api/. HTTP/1.1", "Host: a"), 400, bad},
		{"encoded dot-dot", req("GET /api/%2e%2E/x HTTP/1.1", "Host: a"), 400, bad},
		{"half encoded dot-dot", req("GET /api/.%2e/x HTTP/1.1", "Host: a"), 400, bad},
		{"encoded dot", req("GET /api/%2E/x HTTP/1.1", "Host: a"), 400, bad},
		{"dot-dot before query", req("GET /a/..?x=1 HTTP/1.1", "Host: a"), 400, bad},
		{"dot-dot absolute", req("GET http://a/x/../y HTTP/1.1", "Host: a"), 400, bad},
		// What Java and Windows origins resolve: ";parameters", "\\", encoded separators.
		{"dot-dot with parameters", req("GET /api/v1/..;/..;/internal HTTP/1.1", "Host: a"), 400, bad},
		{"dot with parameters", req("GET /api/v1/.;x=1/y HTTP/1.1", "Host: a"), 400, bad},
		{"backslash", req("GET /api/v1/..\\..\\internal HTTP/1.1", "Host: a"), 400, bad},
		{"backslash alone", req("GET /a\\b HTTP/1.1", "Host: a"), 400, bad},
		{"encoded backslash separator", req("GET /api/v1/..%5c..%5Cinternal HTTP/1.1", "Host: a"), 400, bad},
		{"encoded slash separator", req("GET /api/v1/..%2f..%2Finternal HTTP/1.1", "Host: a"), 400, bad},
		{"encoded slash then dot-dot", req("GET /api/v1%2F.. HTTP/1.1", "Host: a"), 400, bad},
		// One credential: a filter checks the first, an origin may use another.
		{"duplicate authorization", req("GET / HTTP/1.1", "Host: a", "Authorization: Bearer a", "authorization: Bearer b"), 400, bad},
		{"connect", req("CONNECT a:443 HTTP/1.1", "Host: a:443"), 400, bad},
		{"too many leading crlf", "\r\n\r\n\r\n" + req("GET / HTTP/1.1", "Host: a"), 400, bad},
		// Expect.
		{"expect other", req("POST / HTTP/1.1", "Host: a", "Expect: 200-ok", "Content-Length: 1"), 417, bad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			err := scanParse(t, &r, tc.head, Limits{})
			wantError(t, err, tc.status, tc.cause)
			// Parse alone (without the scanner) must reject it too.
			var r2 Request
			if err := r2.Parse([]byte(tc.head)); err == nil {
				t.Fatalf("Parse accepted %q", tc.head)
			}
		})
	}
}

func TestRequestValid(t *testing.T) {
	tests := []struct {
		name           string
		head           string
		framing        Framing
		cl             int64
		keepAlive      bool
		http10         bool
		expect         bool
		isHead         bool
		upgrade        bool
		method, target string
		host           string
	}{
		{name: "get", head: req("GET /a?b=c HTTP/1.1", "Host: example.com"), keepAlive: true,
			method: "GET", target: "/a?b=c", host: "example.com"},
		{name: "close", head: req("GET / HTTP/1.1", "Host: a", "Connection: close"),
			method: "GET", target: "/", host: "a"},
		{name: "close in list", head: req("GET / HTTP/1.1", "Host: a", "Connection: X-Foo, CLOSE"),
			method: "GET", target: "/", host: "a"},
		{name: "http10", head: req("GET / HTTP/1.0"), http10: true, method: "GET", target: "/"},
		{name: "http10 keep-alive", head: req("GET / HTTP/1.0", "Host: a", "Connection: Keep-Alive"),
			http10: true, keepAlive: true, method: "GET", target: "/", host: "a"},
		{name: "http10 keep-alive and close", head: req("GET / HTTP/1.0", "Connection: keep-alive, close"),
			http10: true, method: "GET", target: "/"},
		{name: "head", head: req("HEAD /x HTTP/1.1", "Host: a"), keepAlive: true, isHead: true,
			method: "HEAD", target: "/x", host: "a"},
		{name: "post cl", head: req("POST /p HTTP/1.1", "Host: a", "Content-Length: 42"), framing: FramingLength,
			cl: 42, keepAlive: true, method: "POST", target: "/p", host: "a"},
		{name: "post cl zero", head: req("POST /p HTTP/1.1", "Host: a", "Content-Length: 0"), framing: FramingLength,
			keepAlive: true, method: "POST", target: "/p", host: "a"},
		{name: "cl leading zeros", head: req("POST /p HTTP/1.1", "Host: a", "Content-Length: 007"), framing: FramingLength,
			cl: 7, keepAlive: true, method: "POST", target: "/p", host: "a"},
		{name: "cl max", head: req("POST /p HTTP/1.1", "Host: a", "Content-Length: 9223372036854775807"),
			framing: FramingLength, cl: 9223372036854775807, keepAlive: true, method: "POST", target: "/p", host: "a"},
		{name: "chunked", head: req("POST /p HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"),
			framing: FramingChunked, keepAlive: true, method: "POST", target: "/p", host: "a"},
		{name: "chunked case no space", head: req("POST /p HTTP/1.1", "Host: a", "transfer-encoding:CHUNKED"),
			framing: FramingChunked, keepAlive: true, method: "POST", target: "/p", host: "a"},
		// OWS around a list element is RFC 9110 list syntax: one meaning, accepted.
		{name: "chunked trailing tab", head: req("POST /p HTTP/1.1", "Host: a", "Transfer-Encoding: chunked\t"),
			framing: FramingChunked, keepAlive: true, method: "POST", target: "/p", host: "a"},
		{name: "chunked trailing space", head: req("POST /p HTTP/1.1", "Host: a", "Transfer-Encoding: chunked "),
			framing: FramingChunked, keepAlive: true, method: "POST", target: "/p", host: "a"},
		{name: "chunked two leading spaces", head: req("POST /p HTTP/1.1", "Host: a", "Transfer-Encoding:  chunked"),
			framing: FramingChunked, keepAlive: true, method: "POST", target: "/p", host: "a"},
		{name: "chunked leading tab", head: req("POST /p HTTP/1.1", "Host: a", "Transfer-Encoding:\tchunked"),
			framing: FramingChunked, keepAlive: true, method: "POST", target: "/p", host: "a"},
		{name: "expect", head: req("PUT /u HTTP/1.1", "Host: a", "Expect: 100-Continue", "Content-Length: 10"),
			framing: FramingLength, cl: 10, keepAlive: true, expect: true, method: "PUT", target: "/u", host: "a"},
		{name: "expect on http10 ignored", head: req("PUT /u HTTP/1.0", "Expect: 100-continue", "Content-Length: 1"),
			framing: FramingLength, cl: 1, http10: true, method: "PUT", target: "/u"},
		{name: "absolute form", head: req("GET http://Example.com:8080/x?y HTTP/1.1", "Host: example.com:8080"),
			keepAlive: true, method: "GET", target: "http://Example.com:8080/x?y", host: "example.com:8080"},
		{name: "absolute form http10 no host", head: req("GET https://b.example/ HTTP/1.0"),
			http10: true, method: "GET", target: "https://b.example/", host: "b.example"},
		{name: "options asterisk", head: req("OPTIONS * HTTP/1.1", "Host: a"), keepAlive: true,
			method: "OPTIONS", target: "*", host: "a"},
		{name: "header case variations", head: req("GET / HTTP/1.1", "hOsT: a", "CONTENT-length: 3", "cOnNeCtIoN: ClOsE"),
			framing: FramingLength, cl: 3, method: "GET", target: "/", host: "a"},
		{name: "ows around values", head: req("GET / HTTP/1.1", "Host:\ta \t", "Content-Length:  3\t"),
			framing: FramingLength, cl: 3, keepAlive: true, method: "GET", target: "/", host: "a"},
		{name: "leading crlf", head: "\r\n" + req("GET / HTTP/1.1", "Host: a"), keepAlive: true,
			method: "GET", target: "/", host: "a"},
		{name: "two leading crlf", head: "\r\n\r\n" + req("GET / HTTP/1.1", "Host: a"), keepAlive: true,
			method: "GET", target: "/", host: "a"},
		{name: "obs-text value", head: req("GET / HTTP/1.1", "Host: a", "X-Name: caf\xc3\xa9"), keepAlive: true,
			method: "GET", target: "/", host: "a"},
		{name: "extension method", head: req("PROPFIND /d HTTP/1.1", "Host: a"), keepAlive: true,
			method: "PROPFIND", target: "/d", host: "a"},
		{name: "upgrade", head: req("GET /ws HTTP/1.1", "Host: a", "Connection: Upgrade", "Upgrade: websocket"),
			keepAlive: true, upgrade: true, method: "GET", target: "/ws", host: "a"},
		{name: "empty value", head: req("GET / HTTP/1.1", "Host: a", "X-Empty:"), keepAlive: true,
			method: "GET", target: "/", host: "a"},
		// Dots that are not whole segments, and a dot-dot in the query, are names.
		{name: "dots in names", head: req("GET /a..b/.well-known/x.y/...?p=/../ HTTP/1.1", "Host: a"), keepAlive: true,
			method: "GET", target: "/a..b/.well-known/x.y/...?p=/../", host: "a"},
		{name: "percent not a dot", head: req("GET /%2f/%2e%2e%2e/%2ex HTTP/1.1", "Host: a"), keepAlive: true,
			method: "GET", target: "/%2f/%2e%2e%2e/%2ex", host: "a"},
		{name: "parameters and encoded separators around names", head: req("GET /a;b/..x;/x%2f.y/%5c...;v=1 HTTP/1.1", "Host: a"), keepAlive: true,
			method: "GET", target: "/a;b/..x;/x%2f.y/%5c...;v=1", host: "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			if err := scanParse(t, &r, tc.head, Limits{}); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r.Framing != tc.framing || r.ContentLength != tc.cl {
				t.Errorf("framing %v %d, want %v %d", r.Framing, r.ContentLength, tc.framing, tc.cl)
			}
			if r.KeepAlive != tc.keepAlive || r.HTTP10 != tc.http10 || r.ExpectContinue != tc.expect ||
				r.IsHead != tc.isHead || r.Upgrade != tc.upgrade {
				t.Errorf("keepAlive %v http10 %v expect %v head %v upgrade %v, want %v %v %v %v %v",
					r.KeepAlive, r.HTTP10, r.ExpectContinue, r.IsHead, r.Upgrade,
					tc.keepAlive, tc.http10, tc.expect, tc.isHead, tc.upgrade)
			}
			if got := string(r.Header.Method()); got != tc.method {
				t.Errorf("method %q, want %q", got, tc.method)
			}
			if got := string(r.Header.RequestURI()); got != tc.target {
				t.Errorf("target %q, want %q", got, tc.target)
			}
			if got := string(r.Header.Peek("host")); got != tc.host {
				t.Errorf("host %q, want %q", got, tc.host)
			}
		})
	}
}

func TestRequestReuse(t *testing.T) {
	var r Request
	heads := []string{
		req("POST /a HTTP/1.1", "Host: a", "Content-Length: 3", "X-A: 1"),
		req("GET /b HTTP/1.0"),
		req("POST /c HTTP/1.1", "Host: c", "Transfer-Encoding: chunked"),
	}
	for i := 0; i < 3; i++ {
		for _, h := range heads {
			r.Reset()
			if err := r.Parse([]byte(h)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r.Framing != FramingChunked || len(r.Header.Peek("X-A")) != 0 || string(r.Header.Peek("Host")) != "c" {
		t.Fatalf("state leaked between requests: %v %q", r.Framing, r.Header.Peek("X-A"))
	}
	// Parse does not keep the head: overwrite it and the header is intact.
	head := []byte(req("GET /keep HTTP/1.1", "Host: keep", "X-Keep: yes"))
	if err := r.Parse(head); err != nil {
		t.Fatal(err)
	}
	for i := range head {
		head[i] = 'z'
	}
	if string(r.Header.Peek("X-Keep")) != "yes" || string(r.Header.RequestURI()) != "/keep" {
		t.Fatal("Parse kept a reference to the head buffer")
	}
}

func TestRequestIDAndVisit(t *testing.T) {
	var r Request
	if err := r.Parse([]byte(req("GET / HTTP/1.1", "Host: a", "x-request-id: abc", "X-Request-Id: def", "B: 2", "A: 1"))); err != nil {
		t.Fatal(err)
	}
	if got := string(r.RequestID()); got != "abc" {
		t.Fatalf("RequestID %q", got)
	}
	var names []string
	r.VisitHeaders(func(n, v []byte) bool {
		names = append(names, string(n)+"="+string(v))
		return true
	})
	if got := strings.Join(names, ","); got != "Host=a,X-Request-Id=abc,X-Request-Id=def,B=2,A=1" {
		t.Fatalf("order %s", got)
	}
	long := strings.Repeat("x", MaxRequestIDLen+1)
	if err := r.Parse([]byte(req("GET / HTTP/1.1", "Host: a", "X-Request-Id: "+long))); err != nil {
		t.Fatal(err)
	}
	if r.RequestID() != nil {
		t.Fatal("overlong request id not ignored")
	}
}

func TestRequestParseNeedsCompleteHead(t *testing.T) {
	for _, h := range []string{"", "GET / HTTP/1.1\r\nHost: a\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET"} {
		var r Request
		wantError(t, r.Parse([]byte(h)), 400, CauseBadRequest)
	}
	var r Request
	wantError(t, r.Parse([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nX: y\r\n\r\n")), 400, CauseBadRequest)
}

// RequestLineOf tells a log what a refused head's request line held: only
// whole, well-formed pieces, "" for the rest.
func TestRequestLineOf(t *testing.T) {
	tests := []struct {
		name, buf      string
		method, target string
	}{
		{"whole line", "GET /a?b HTTP/1.1\r\nHost: a\r\n", "GET", "/a?b"},
		{"leading empty lines", "\r\n\r\nPOST /p HTTP/1.1\r\n", "POST", "/p"},
		{"line still coming", "PUT /upload HTT", "PUT", "/upload"},
		{"target still coming", "GET /partial", "GET", ""},
		{"method only", "DELETE", "", ""},
		{"target past the limit", "GET /" + strings.Repeat("x", 100) + " HTTP/1.1\r\n", "GET", ""},
		{"method not a token", "G@T / HTTP/1.1\r\n", "", ""},
		{"control in target", "GET /a\x01b HTTP/1.1\r\n", "GET", ""},
		{"binary", "\x16\x03\x01\x02\x00 hello", "", ""},
		{"empty", "", "", ""},
		{"double space", "GET  / HTTP/1.1\r\n", "GET", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, target := RequestLineOf([]byte(tc.buf), 64)
			if string(m) != tc.method || string(target) != tc.target {
				t.Errorf("RequestLineOf(%q) = %q, %q; want %q, %q", tc.buf, m, target, tc.method, tc.target)
			}
		})
	}
}

// TestRequestTraceparent: the client's traceparent is read while the head is
// scanned: exactly one valid one counts.
func TestRequestTraceparent(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name    string
		headers []string
		ok      bool
	}{
		{"one", []string{"traceparent: " + tp}, true},
		{"any case, OWS", []string{"TraceParent:  " + tp + " "}, true},
		{"none", nil, false},
		{"invalid", []string{"traceparent: " + tp[:54]}, false},
		{"two", []string{"traceparent: " + tp, "traceparent: " + tp}, false},
		{"named in connection", []string{"Connection: traceparent", "traceparent: " + tp}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			r.TraceparentOK = true // Parse resets it
			if err := r.Parse([]byte(req(append([]string{"GET / HTTP/1.1", "Host: h"}, tc.headers...)...))); err != nil {
				t.Fatal(err)
			}
			if r.TraceparentOK != tc.ok {
				t.Fatalf("TraceparentOK = %v, want %v", r.TraceparentOK, tc.ok)
			}
			if tc.ok && r.Traceparent.Flags != 1 || tc.ok && r.Traceparent.TraceID[0] != 0x4b {
				t.Fatalf("parsed %+v", r.Traceparent)
			}
		})
	}
}

// TestRequestHeadReaderSizes: heads parse through pooled readers of any size
// (a head past the pooled readers' 4 KiB grows one, which is then dropped,
// not pooled) and from several goroutines at once, each head's own fields
// and nothing of another's.
func TestRequestHeadReaderSizes(t *testing.T) {
	sizes := []int{10, 5000, maxPooledHead + 100, 40 << 10, 10}
	done := make(chan error, 4)
	for g := range 4 {
		go func() {
			var r Request
			for i := range 50 {
				for _, n := range sizes {
					r.Reset()
					v := strings.Repeat(string(rune('a'+g)), n)
					if err := r.Parse([]byte(req("GET /"+v[:1]+" HTTP/1.1", "Host: h", "X-Big: "+v, "X-N: "+v[:1]))); err != nil {
						done <- err
						return
					}
					if string(r.Header.Peek("X-Big")) != v || string(r.Header.Peek("X-N")) != v[:1] {
						done <- errors.New("wrong header after parse " + string(rune('0'+i%10)))
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestRequestConnectionNominated: the fields the client's Connection names
// are gone once the head is parsed (filters never see them), the ones
// forwarding rewrites stay, and the rest of the head is untouched.
func TestRequestConnectionNominated(t *testing.T) {
	var r Request
	head := req("GET / HTTP/1.1", "Host: h", "Connection: keep-alive, X-A, x-b", "Connection: Host, Upgrade, X-Real-IP",
		"X-A: 1", "X-B: 2", "x-a: 3", "X-Real-IP: 1.1.1.1", "Upgrade: websocket", "X-C: 4")
	if err := r.Parse([]byte(head)); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"X-A": "", "X-B": "", "Host": "h", "Upgrade": "websocket",
		"X-Real-IP": "1.1.1.1", "X-C": "4"} {
		if got := string(r.Header.Peek(name)); got != want {
			t.Errorf("%s = %q after Parse, want %q", name, got, want)
		}
	}
	if len(r.Header.PeekAll("Connection")) != 2 {
		t.Errorf("Connection lines: %q, want both kept (forwarding drops them)", r.Header.PeekAll("Connection"))
	}
	// HTTP/1.0 without keep-alive (fasthttp then answers PeekAll("Connection")
	// with "close" alone), and a traceparent named.
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if err := r.Parse([]byte(req("GET / HTTP/1.0", "Connection: X-A", "X-A: 1", "Connection: traceparent", "traceparent: "+tp, "X-C: 4"))); err != nil {
		t.Fatal(err)
	}
	if r.Header.Peek("X-A") != nil || r.Header.Peek("traceparent") != nil || r.TraceparentOK || string(r.Header.Peek("X-C")) != "4" {
		t.Errorf("HTTP/1.0: X-A %q, traceparent %q (ok %v), X-C %q after Parse; want the named ones gone",
			r.Header.Peek("X-A"), r.Header.Peek("traceparent"), r.TraceparentOK, r.Header.Peek("X-C"))
	}
	// Past maxConnNamed named fields: refused (each is a delete over the list).
	many := "Connection: " + strings.Repeat("x-a, ", maxConnNamed) + "x-b"
	wantError(t, r.Parse([]byte(req("GET / HTTP/1.1", "Host: h", many))), 400, CauseBadRequest)
	if err := r.Parse([]byte(req("GET / HTTP/1.1", "Host: h", "Connection: "+strings.Repeat("x-a, ", maxConnNamed-1)+"close"))); err != nil {
		t.Errorf("%d named fields refused: %v", maxConnNamed-1, err)
	}
}

// TestRequestUnderscores: Parse marks a head with an "_" in a header name,
// and DropUnderscoreHeaders deletes exactly those headers.
func TestRequestUnderscores(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
		marked  bool
		left    string // the header names after the drop
	}{
		{"none", []string{"X-A: 1"}, false, "Host,X-A"},
		{"some", []string{"X_User: root", "X-A: 1", "content_length: 5", "A_: 2"}, true, "Host,X-A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			r.Underscores = !tc.marked // Parse resets it
			if err := r.Parse([]byte(req(append([]string{"GET / HTTP/1.1", "Host: h"}, tc.headers...)...))); err != nil {
				t.Fatal(err)
			}
			if r.Underscores != tc.marked {
				t.Fatalf("Underscores = %v, want %v", r.Underscores, tc.marked)
			}
			r.DropUnderscoreHeaders()
			var names []string
			r.VisitHeaders(func(name, _ []byte) bool { names = append(names, string(name)); return true })
			if got := strings.Join(names, ","); got != tc.left {
				t.Fatalf("headers after the drop: %s, want %s", got, tc.left)
			}
		})
	}
}
