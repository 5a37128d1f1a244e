package httpcodec

import (
	"strings"
	"testing"
)

func TestAppendForwardRequest(t *testing.T) {
	fi := ForwardInfo{ClientIP: []byte("10.0.0.9"), Proto: "http", RequestID: []byte("gen-1"), Via: "1.1 gozer"}
	tests := []struct {
		name string
		head string
		fi   ForwardInfo
		edit func(r *Request)
		want string
	}{
		{
			name: "plain get keeps order",
			head: req("GET /a?b HTTP/1.1", "Host: ex.com", "User-Agent: ua", "Accept: */*", "Cookie: a=b; c", "Cookie: d=e"),
			fi:   fi,
			want: req("GET /a?b HTTP/1.1", "Host: ex.com", "User-Agent: ua", "Accept: */*", "Cookie: a=b; c", "Cookie: d=e",
				"X-Forwarded-For: 10.0.0.9", "X-Forwarded-Proto: http", "X-Forwarded-Host: ex.com",
				"X-Request-Id: gen-1", "Via: 1.1 gozer"),
		},
		{
			name: "hop-by-hop stripped",
			head: req("POST /p HTTP/1.1", "Host: h", "Connection: keep-alive, X-Secret , x-other", "Keep-Alive: timeout=5",
				"TE: trailers", "Trailer: X-T", "Upgrade: h2c", "Proxy-Connection: keep-alive", "Proxy-Authorization: Basic x",
				"Proxy-Foo: 1", "X-Secret: s", "X-Other: o", "Expect: 100-continue", "Content-Length: 3", "X-Keep: k"),
			fi: fi,
			want: req("POST /p HTTP/1.1", "Host: h", "X-Keep: k",
				"X-Forwarded-For: 10.0.0.9", "X-Forwarded-Proto: http", "X-Forwarded-Host: h",
				"X-Request-Id: gen-1", "Via: 1.1 gozer", "Content-Length: 3"),
		},
		{
			name: "connection cannot strip host or forwarding headers",
			head: req("GET / HTTP/1.1", "Host: h", "Connection: Host, X-Request-Id, X-Forwarded-For", "X-Request-Id: cid"),
			fi:   fi,
			want: req("GET / HTTP/1.1", "Host: h", "X-Request-Id: cid",
				"X-Forwarded-For: 10.0.0.9", "X-Forwarded-Proto: http", "X-Forwarded-Host: h", "Via: 1.1 gozer"),
		},
		{
			name: "chunked",
			head: req("PUT /u HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", "X-A: 1"),
			fi:   ForwardInfo{},
			want: req("PUT /u HTTP/1.1", "Host: h", "X-A: 1", "X-Forwarded-Proto: http", "X-Forwarded-Host: h",
				"Transfer-Encoding: chunked"),
		},
		{
			name: "post without body gets content-length 0",
			head: req("POST /p HTTP/1.1", "Host: h"),
			fi:   ForwardInfo{},
			want: req("POST /p HTTP/1.1", "Host: h", "X-Forwarded-Proto: http", "X-Forwarded-Host: h", "Content-Length: 0"),
		},
		{
			name: "untrusted forwarded headers replaced",
			head: req("GET / HTTP/1.1", "Host: h", "X-Forwarded-For: 6.6.6.6", "X-Forwarded-Proto: https",
				"X-Forwarded-Host: evil", "Forwarded: for=6.6.6.6", "X-B: 1"),
			fi: ForwardInfo{ClientIP: []byte("10.0.0.9"), Proto: "https"},
			want: req("GET / HTTP/1.1", "Host: h", "X-B: 1",
				"X-Forwarded-For: 10.0.0.9", "X-Forwarded-Proto: https", "X-Forwarded-Host: h"),
		},
		{
			name: "trusted forwarded headers kept and appended",
			head: req("GET / HTTP/1.1", "Host: h", "X-Forwarded-For: 1.1.1.1, 2.2.2.2", "X-Forwarded-Proto: https",
				"x-forwarded-for: 3.3.3.3", "X-Forwarded-Host: front.example", "Forwarded: for=1.1.1.1"),
			fi: ForwardInfo{ClientIP: []byte("10.0.0.9"), TrustForwarded: true},
			want: req("GET / HTTP/1.1", "Host: h", "X-Forwarded-Proto: https", "X-Forwarded-Host: front.example",
				"Forwarded: for=1.1.1.1", "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9"),
		},
		{
			name: "untrusted x-real-ip dropped",
			head: req("GET / HTTP/1.1", "Host: h", "X-Real-IP: 6.6.6.6", "x-real-ip: 7.7.7.7", "X-B: 1"),
			fi:   ForwardInfo{ClientIP: []byte("10.0.0.9")},
			want: req("GET / HTTP/1.1", "Host: h", "X-B: 1",
				"X-Forwarded-For: 10.0.0.9", "X-Forwarded-Proto: http", "X-Forwarded-Host: h"),
		},
		{
			name: "trusted x-real-ip kept",
			head: req("GET / HTTP/1.1", "Host: h", "X-Real-IP: 1.1.1.1"),
			fi:   ForwardInfo{ClientIP: []byte("10.0.0.9"), TrustForwarded: true},
			want: req("GET / HTTP/1.1", "Host: h", "X-Real-Ip: 1.1.1.1", "X-Forwarded-For: 10.0.0.9", "X-Forwarded-Proto: http",
				"X-Forwarded-Host: h"),
		},
		{
			// RFC 9110 7.6.1: Connection names the fields the client sent
			// for this hop, not the ones a filter sets: they go.
			name: "connection does not strip what a filter sets",
			head: req("GET / HTTP/1.1", "Host: h", "Connection: X-User, X-Edge, Tracestate", "X-User: root", "X-Edge: c",
				"Tracestate: a=1", "X-Keep: k"),
			fi: fi,
			edit: func(r *Request) {
				r.Header.Set("X-User", "alice")
				r.Header.Add("X-Edge", "gozer")
			},
			want: req("GET / HTTP/1.1", "Host: h", "X-Keep: k", "X-User: alice", "X-Edge: gozer",
				"X-Forwarded-For: 10.0.0.9", "X-Forwarded-Proto: http", "X-Forwarded-Host: h",
				"X-Request-Id: gen-1", "Via: 1.1 gozer"),
		},
		{
			name: "trusted without client headers",
			head: req("GET / HTTP/1.1", "Host: h"),
			fi:   ForwardInfo{ClientIP: []byte("10.0.0.9"), TrustForwarded: true},
			want: req("GET / HTTP/1.1", "Host: h", "X-Forwarded-For: 10.0.0.9", "X-Forwarded-Proto: http",
				"X-Forwarded-Host: h"),
		},
		{
			name: "existing via appended",
			head: req("GET / HTTP/1.1", "Host: h", "Via: 1.0 fred", "Accept: x", "via: 1.1 p.example (Proxy)"),
			fi:   ForwardInfo{Via: "1.1 gozer"},
			want: req("GET / HTTP/1.1", "Host: h", "Accept: x", "X-Forwarded-Proto: http", "X-Forwarded-Host: h",
				"Via: 1.0 fred, 1.1 p.example (Proxy), 1.1 gozer"),
		},
		{
			name: "client request id kept once",
			head: req("GET / HTTP/1.1", "Host: h", "X-Request-Id: c1", "X-Request-Id: c2"),
			fi:   ForwardInfo{RequestID: []byte("gen")},
			want: req("GET / HTTP/1.1", "Host: h", "X-Request-Id: c1", "X-Forwarded-Proto: http", "X-Forwarded-Host: h"),
		},
		{
			name: "path rewrite",
			head: req("GET /old?q=1 HTTP/1.1", "Host: h"),
			fi:   ForwardInfo{Path: []byte("/new path\r\n?q=1")},
			want: req("GET /new%20path%0D%0A?q=1 HTTP/1.1", "Host: h", "X-Forwarded-Proto: http", "X-Forwarded-Host: h"),
		},
		{
			name: "absolute form sent as origin form",
			head: req("GET http://h:81?x=1 HTTP/1.1", "Host: h:81"),
			fi:   ForwardInfo{},
			want: req("GET /?x=1 HTTP/1.1", "Host: h:81", "X-Forwarded-Proto: http", "X-Forwarded-Host: h:81"),
		},
		{
			name: "http10 keep-alive upgraded to 1.1 without connection header",
			head: req("GET / HTTP/1.0", "Connection: keep-alive", "Accept: x"),
			fi:   ForwardInfo{DefaultHost: []byte("origin:8080")},
			want: req("GET / HTTP/1.1", "Accept: x", "Host: origin:8080", "X-Forwarded-Proto: http"),
		},
		{
			name: "traceparent replaced, tracestate kept",
			head: req("GET / HTTP/1.1", "Host: h", "Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				"tracestate: a=1", "X-A: a", "TraceState: b=2"),
			fi: ForwardInfo{Traceparent: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01")},
			want: req("GET / HTTP/1.1", "Host: h", "Tracestate: a=1", "X-A: a", "Tracestate: b=2",
				"X-Forwarded-Proto: http", "X-Forwarded-Host: h",
				"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"),
		},
		{
			name: "invalid traceparent: tracestate dropped",
			head: req("GET / HTTP/1.1", "Host: h", "traceparent: junk", "tracestate: a=1", "X-A: a"),
			fi:   ForwardInfo{Traceparent: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-00"), DropTracestate: true},
			want: req("GET / HTTP/1.1", "Host: h", "X-A: a", "X-Forwarded-Proto: http", "X-Forwarded-Host: h",
				"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-00"),
		},
		{
			name: "no traceparent of the gateway: the client's goes on",
			head: req("GET / HTTP/1.1", "Host: h", "traceparent: 00-x", "tracestate: a=1"),
			fi:   ForwardInfo{},
			want: req("GET / HTTP/1.1", "Host: h", "Traceparent: 00-x", "Tracestate: a=1", "X-Forwarded-Proto: http", "X-Forwarded-Host: h"),
		},
		{
			name: "te trailers said again, other codings not",
			head: req("GET / HTTP/1.1", "Host: h", "Connection: TE", "TE: deflate;q=0.5, Trailers", "X-A: 1"),
			fi:   ForwardInfo{Trailers: true},
			want: req("GET / HTTP/1.1", "Host: h", "X-A: 1", "X-Forwarded-Proto: http", "X-Forwarded-Host: h",
				"TE: trailers", "Connection: TE"),
		},
		{
			name: "te trailers on a second line, without connection",
			head: req("GET / HTTP/1.1", "Host: h", "TE: gzip", "TE: trailers"),
			fi:   ForwardInfo{Trailers: true},
			want: req("GET / HTTP/1.1", "Host: h", "X-Forwarded-Proto: http", "X-Forwarded-Host: h",
				"TE: trailers", "Connection: TE"),
		},
		{
			name: "trailer announced, filtered, with a chunked body",
			head: req("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", "Connection: X-Hop", "X-Sum: head",
				"Trailer: Grpc-Status, X-Sum, X-Hop, Host, Authorization", "Trailer: Content-Length"),
			fi: ForwardInfo{},
			want: req("POST / HTTP/1.1", "Host: h", "X-Sum: head", "Trailer: Grpc-Status",
				"X-Forwarded-Proto: http", "X-Forwarded-Host: h", "Transfer-Encoding: chunked"),
		},
		{
			name: "trailer dropped with a body framed by its length",
			head: req("POST / HTTP/1.1", "Host: h", "Content-Length: 1", "Trailer: Grpc-Status"),
			fi:   ForwardInfo{},
			want: req("POST / HTTP/1.1", "Host: h", "X-Forwarded-Proto: http", "X-Forwarded-Host: h", "Content-Length: 1"),
		},
		{
			name: "te without trailers",
			head: req("GET / HTTP/1.1", "Host: h", "TE: gzip, trailersx, trailers;q=1"),
			fi:   ForwardInfo{Trailers: true},
			want: req("GET / HTTP/1.1", "Host: h", "X-Forwarded-Proto: http", "X-Forwarded-Host: h"),
		},
		{
			name: "te trailers when trailers cannot reach the client",
			head: req("GET / HTTP/1.1", "Host: h", "TE: trailers"),
			fi:   ForwardInfo{},
			want: req("GET / HTTP/1.1", "Host: h", "X-Forwarded-Proto: http", "X-Forwarded-Host: h"),
		},
		{
			name: "filter edits are forwarded",
			head: req("GET / HTTP/1.1", "Host: h", "X-Drop: 1", "X-Change: old"),
			fi:   ForwardInfo{},
			edit: func(r *Request) {
				r.Header.Del("x-drop")
				r.Header.Set("X-Change", "new")
				r.Header.Add("X-Added", "yes")
				r.Header.SetRequestURI("/rewritten")
			},
			want: req("GET /rewritten HTTP/1.1", "Host: h", "X-Change: new", "X-Added: yes",
				"X-Forwarded-Proto: http", "X-Forwarded-Host: h"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			if err := r.Parse([]byte(tc.head)); err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				tc.edit(&r)
			}
			got := string(AppendForwardRequest(nil, &r, &tc.fi))
			if got != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			// The forwarded request is itself acceptable.
			var r2 Request
			if err := r2.Parse([]byte(got)); err != nil {
				t.Fatalf("forwarded request rejected: %v", err)
			}
		})
	}
}

func TestAppendClientResponse(t *testing.T) {
	tests := []struct {
		name     string
		head     string
		headReq  bool
		lazy     bool // ParseLazy, as the proxy path does, not Parse
		ri       ResponseInfo
		edit     func(r *Response)
		want     string
		contains []string
	}{
		{
			name: "length",
			head: req("HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 5", "X-A: 1"),
			ri:   ResponseInfo{RequestID: []byte("rid"), Via: "1.1 gozer"},
			want: req("HTTP/1.1 200 OK", "Content-Type: text/plain", "X-A: 1", "X-Request-Id: rid", "Via: 1.1 gozer",
				"Content-Length: 5"),
		},
		{
			name: "hop-by-hop stripped and chunked re-framed",
			head: req("HTTP/1.1 200 Fine", "Transfer-Encoding: chunked", "Connection: keep-alive, X-Hop", "X-Hop: 1",
				"Keep-Alive: timeout=5", "Trailer: X-T", "Proxy-Authenticate: Basic", "Upgrade: h2", "X-Request-Id: origin",
				"X-B: 2"),
			ri:   ResponseInfo{RequestID: []byte("rid"), Chunked: true},
			want: req("HTTP/1.1 200 Fine", "X-B: 2", "X-Request-Id: rid", "Transfer-Encoding: chunked"),
		},
		{
			name: "trailer announced, filtered, when the trailers reach the client",
			head: req("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Connection: X-Hop",
				"Trailer: Grpc-Status, Via, X-Hop,, Set-Cookie", "Trailer: x-checksum", "Trailer: Date"),
			lazy: true, // (fasthttp's parse keeps the last Trailer line only, and refuses some names)
			ri:   ResponseInfo{Chunked: true, Trailers: true},
			want: req("HTTP/1.1 200 OK", "Trailer: Grpc-Status, x-checksum", "Transfer-Encoding: chunked"), // one line for all
		},
		{
			name: "trailer announced, filtered, from fasthttp's header",
			head: req("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Trailer: Grpc-Status, Via, X-Checksum"),
			ri:   ResponseInfo{Chunked: true, Trailers: true},
			want: req("HTTP/1.1 200 OK", "Trailer: Grpc-Status, X-Checksum", "Transfer-Encoding: chunked"),
		},
		{
			name: "trailer dropped when the trailers do not reach the client",
			head: req("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Trailer: Grpc-Status"),
			ri:   ResponseInfo{HTTP10: true, Close: true},
			want: req("HTTP/1.1 200 OK", "Connection: close"),
		},
		{
			name: "trailer named by connection dropped",
			head: req("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Connection: Trailer", "Trailer: Grpc-Status"),
			ri:   ResponseInfo{Chunked: true, Trailers: true},
			want: req("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"),
		},
		{
			name: "origin request id kept when none given, via appended",
			head: req("HTTP/1.1 200 OK", "Content-Length: 0", "X-Request-Id: origin", "Via: 1.1 backend"),
			ri:   ResponseInfo{Via: "1.1 gozer"},
			want: req("HTTP/1.1 200 OK", "X-Request-Id: origin", "Via: 1.1 backend, 1.1 gozer", "Content-Length: 0"),
		},
		{
			name:    "head keeps content-length",
			head:    req("HTTP/1.1 200 OK", "Content-Length: 5000"),
			headReq: true,
			ri:      ResponseInfo{},
			want:    req("HTTP/1.1 200 OK", "Content-Length: 5000"),
		},
		{
			name:    "head of chunked is not re-framed",
			head:    req("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"),
			headReq: true,
			ri:      ResponseInfo{Chunked: true},
			want:    req("HTTP/1.1 200 OK"),
		},
		{
			name: "304 keeps content-length, 204 does not",
			head: req("HTTP/1.1 304 Not Modified", "Content-Length: 7", "ETag: \"e\""),
			want: req("HTTP/1.1 304 Not Modified", "Etag: \"e\"", "Content-Length: 7"), // fasthttp canonicalizes names
		},
		{
			name: "204",
			head: req("HTTP/1.1 204 No Content", "Content-Length: 7"),
			want: req("HTTP/1.1 204 No Content"),
		},
		{
			name: "426 names the protocol, the origin's Upgrade is not passed on",
			head: req("HTTP/1.1 426 Upgrade Required", "Upgrade: h2c", "Content-Length: 0"),
			ri:   ResponseInfo{Upgrade: "websocket", Close: true},
			want: req("HTTP/1.1 426 Upgrade Required", "Content-Length: 0", "Upgrade: websocket", "Connection: upgrade, close"),
		},
		{
			name: "until close to http10 client",
			head: req("HTTP/1.0 200 OK", "X: y"),
			ri:   ResponseInfo{Close: true, HTTP10: true},
			want: req("HTTP/1.1 200 OK", "X: y", "Connection: close"),
		},
		{
			name: "http10 keep-alive",
			head: req("HTTP/1.1 200 OK", "Content-Length: 1"),
			ri:   ResponseInfo{HTTP10: true},
			want: req("HTTP/1.1 200 OK", "Content-Length: 1", "Connection: keep-alive"),
		},
		{
			name: "status changed uses standard text",
			head: req("HTTP/1.1 200 Okay Dokey", "Content-Length: 1"),
			edit: func(r *Response) { r.Status = 503 },
			want: req("HTTP/1.1 503 Service Unavailable", "Content-Length: 1"),
		},
		{
			name: "missing reason",
			head: req("HTTP/1.1 404", "Content-Length: 0"),
			want: req("HTTP/1.1 404 Not Found", "Content-Length: 0"),
		},
		{
			name:     "set-cookie kept verbatim",
			head:     req("HTTP/1.1 200 OK", "Set-Cookie: a=b; Path=/; HttpOnly", "Set-Cookie: c=d", "Content-Length: 0"),
			contains: []string{"\r\nSet-Cookie: a=b; Path=/; HttpOnly\r\n", "\r\nSet-Cookie: c=d\r\n"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Response
			parse := r.Parse
			if tc.lazy {
				parse = r.ParseLazy
			}
			if err := parse([]byte(tc.head), tc.headReq); err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				tc.edit(&r)
			}
			got := string(AppendClientResponse(nil, &r, &tc.ri))
			if tc.want != "" && got != tc.want {
				t.Fatalf("got:\n%q\nwant:\n%q", got, tc.want)
			}
			for _, c := range tc.contains {
				if !strings.Contains(got, c) {
					t.Fatalf("%q not in:\n%s", c, got)
				}
			}
			var r2 Response
			if err := r2.Parse([]byte(got), tc.headReq); err != nil {
				t.Fatalf("written response rejected: %v", err)
			}
		})
	}
}

func TestAppendError(t *testing.T) {
	tests := []struct {
		status int
		text   string
	}{
		{400, "Bad Request"}, {404, "Not Found"}, {408, "Request Timeout"}, {413, "Content Too Large"},
		{414, "URI Too Long"}, {417, "Expectation Failed"}, {431, "Request Header Fields Too Large"},
		{500, "Internal Server Error"}, {502, "Bad Gateway"}, {503, "Service Unavailable"},
		{504, "Gateway Timeout"}, {505, "HTTP Version Not Supported"},
	}
	for _, tc := range tests {
		got := string(AppendError(nil, tc.status, "CAUSE", "secret detail", nil, false))
		body := strings.TrimPrefix(tc.text, "")
		want := "HTTP/1.1 " + itoa(tc.status) + " " + tc.text + "\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n" +
			"Content-Length: " + itoa(len(itoa(tc.status))+1+len(body)+1) + "\r\n" +
			"X-Gozer-Status: CAUSE\r\n\r\n" + itoa(tc.status) + " " + tc.text + "\n"
		if got != want {
			t.Fatalf("got:\n%q\nwant:\n%q", got, want)
		}
	}
	got := string(AppendError(nil, 431, string(CauseHeadersTooLarge), "secret detail", []byte("id\r\nX-Evil: 1"), true))
	want := "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: 36\r\nX-Gozer-Status: FAILURE_CLIENT_HEADERS_TOO_LARGE\r\nX-Request-Id: idX-Evil: 1\r\n" +
		"Connection: close\r\n\r\n431 Request Header Fields Too Large\n"
	if got != want {
		t.Fatalf("got:\n%q\nwant:\n%q", got, want)
	}
	if strings.Contains(got, "secret") {
		t.Fatal("reason leaked")
	}
	var r Response
	if err := r.Parse([]byte(got[:strings.Index(got, "\r\n\r\n")+4]), false); err != nil || r.ContentLength != 36 {
		t.Fatalf("error response does not parse: %v", err)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
