package httpcodec

import (
	"slices"
	"strings"
	"testing"
)

func TestResponseFraming(t *testing.T) {
	tests := []struct {
		name      string
		head      string
		head2     bool // request was HEAD
		status    int
		framing   Framing
		cl        int64
		hasCL     bool
		keepAlive bool
	}{
		{name: "length", head: req("HTTP/1.1 200 OK", "Content-Length: 12"), status: 200,
			framing: FramingLength, cl: 12, hasCL: true, keepAlive: true},
		{name: "length zero", head: req("HTTP/1.1 200 OK", "Content-Length: 0"), status: 200,
			framing: FramingLength, hasCL: true, keepAlive: true},
		{name: "chunked", head: req("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), status: 200,
			framing: FramingChunked, keepAlive: true},
		{name: "chunked ows case", head: req("HTTP/1.1 200 OK", "transfer-encoding:  Chunked "), status: 200,
			framing: FramingChunked, keepAlive: true},
		{name: "until close", head: req("HTTP/1.1 200 OK", "Content-Type: text/plain"), status: 200,
			framing: FramingUntilClose},
		{name: "close", head: req("HTTP/1.1 200 OK", "Content-Length: 1", "Connection: close"), status: 200,
			framing: FramingLength, cl: 1, hasCL: true},
		{name: "http10", head: req("HTTP/1.0 200 OK", "Content-Length: 1"), status: 200,
			framing: FramingLength, cl: 1, hasCL: true},
		{name: "http10 keep-alive", head: req("HTTP/1.0 200 OK", "Content-Length: 1", "Connection: keep-alive"),
			status: 200, framing: FramingLength, cl: 1, hasCL: true, keepAlive: true},
		{name: "head with cl", head: req("HTTP/1.1 200 OK", "Content-Length: 5000"), head2: true, status: 200,
			framing: FramingNone, cl: 5000, hasCL: true, keepAlive: true},
		{name: "head with chunked", head: req("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), head2: true,
			status: 200, framing: FramingNone, keepAlive: true},
		{name: "head without framing", head: req("HTTP/1.1 200 OK"), head2: true, status: 200,
			framing: FramingNone, keepAlive: true},
		{name: "204 with cl", head: req("HTTP/1.1 204 No Content", "Content-Length: 10"), status: 204,
			framing: FramingNone, cl: 10, hasCL: true, keepAlive: true},
		{name: "304", head: req("HTTP/1.1 304 Not Modified", "ETag: \"x\""), status: 304,
			framing: FramingNone, keepAlive: true},
		{name: "100 continue", head: req("HTTP/1.1 100 Continue"), status: 100,
			framing: FramingNone, keepAlive: true},
		{name: "101", head: req("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"),
			status: 101, framing: FramingNone},
		{name: "no reason", head: req("HTTP/1.1 404", "Content-Length: 0"), status: 404,
			framing: FramingLength, hasCL: true, keepAlive: true},
		{name: "empty reason", head: req("HTTP/1.1 503 ", "Content-Length: 0"), status: 503,
			framing: FramingLength, hasCL: true, keepAlive: true},
		{name: "leading crlf", head: "\r\n" + req("HTTP/1.1 200 OK", "Content-Length: 0"), status: 200,
			framing: FramingLength, hasCL: true, keepAlive: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := HeadScanner{Response: true}
			n, err := s.Scan([]byte(tc.head), Limits{})
			if err != nil || n != len(tc.head) {
				t.Fatalf("scan %d %v", n, err)
			}
			var r Response
			if err := r.Parse([]byte(tc.head), tc.head2); err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.status || r.Framing != tc.framing || r.ContentLength != tc.cl ||
				r.HasContentLength != tc.hasCL || r.KeepAlive != tc.keepAlive {
				t.Fatalf("got status %d framing %v cl %d/%v keepAlive %v, want %d %v %d/%v %v",
					r.Status, r.Framing, r.ContentLength, r.HasContentLength, r.KeepAlive,
					tc.status, tc.framing, tc.cl, tc.hasCL, tc.keepAlive)
			}
		})
	}
}

func TestResponseRejections(t *testing.T) {
	tests := []struct{ name, head string }{
		{"cl and te", req("HTTP/1.1 200 OK", "Content-Length: 5", "Transfer-Encoding: chunked")},
		{"duplicate cl", req("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 5")},
		{"cl list", req("HTTP/1.1 200 OK", "Content-Length: 5, 5")},
		{"cl negative", req("HTTP/1.1 200 OK", "Content-Length: -1")},
		{"cl garbage", req("HTTP/1.1 200 OK", "Content-Length: 1x")},
		{"cl overflow", req("HTTP/1.1 200 OK", "Content-Length: 99999999999999999999")},
		{"te gzip", req("HTTP/1.1 200 OK", "Transfer-Encoding: gzip")},
		{"te list", req("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked")},
		{"te twice", req("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked")},
		{"te on 1.0", req("HTTP/1.0 200 OK", "Transfer-Encoding: chunked")},
		{"garbage", req("garbage")},
		{"html", "<html><body>oops</body></html>\r\n\r\n"},
		{"http2", req("HTTP/2 200", "Content-Length: 0")},
		{"version 1.2", req("HTTP/1.2 200 OK", "Content-Length: 0")},
		{"status two digits", req("HTTP/1.1 20 OK", "Content-Length: 0")},
		{"status letters", req("HTTP/1.1 2x0 OK", "Content-Length: 0")},
		{"status 600", req("HTTP/1.1 600 OK", "Content-Length: 0")},
		{"status 099", req("HTTP/1.1 099 OK", "Content-Length: 0")},
		{"status four digits", req("HTTP/1.1 2000 OK", "Content-Length: 0")},
		{"control in reason", req("HTTP/1.1 200 O\x01K", "Content-Length: 0")},
		{"space before colon", req("HTTP/1.1 200 OK", "Content-Length : 5")},
		{"obs-fold", req("HTTP/1.1 200 OK", "X: a", " b", "Content-Length: 0")},
		{"bare lf", "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n"},
		{"incomplete", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"},
		{"nul in value", req("HTTP/1.1 200 OK", "X: a\x00", "Content-Length: 0")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Response
			wantError(t, r.Parse([]byte(tc.head), false), 502, CauseOriginBadResponse)
		})
	}
}

func TestResponseReuse(t *testing.T) {
	var r Response
	if err := r.Parse([]byte(req("HTTP/1.1 200 OK", "Content-Length: 5", "X-A: 1")), false); err != nil {
		t.Fatal(err)
	}
	r.Reset()
	if err := r.Parse([]byte(req("HTTP/1.1 404 Not Found", "Transfer-Encoding: chunked")), false); err != nil {
		t.Fatal(err)
	}
	if r.Status != 404 || r.Framing != FramingChunked || r.HasContentLength || len(r.Header.Peek("X-A")) != 0 {
		t.Fatalf("state leaked: %+v", r.Framing)
	}
	// No default Content-Type is invented.
	if ct := r.Header.ContentType(); len(ct) != 0 {
		t.Fatalf("content-type %q", ct)
	}
	out := string(AppendClientResponse(nil, &r, &ResponseInfo{Chunked: true}))
	if strings.Contains(out, "Content-Type") {
		t.Fatalf("invented content-type:\n%s", out)
	}
}

// TestSetHeader: SetHeader edits a lazy head's lines without parsing it (the
// first line of the name takes the value in place, the others go, a new header
// goes last), the same as it edits a parsed head; Value sees the edits, and a
// later Materialize keeps them.
func TestSetHeader(t *testing.T) {
	head := req("HTTP/1.1 200 OK", "Content-Type: text/html", "vary: Cookie", "ETag: \"v1\"",
		"VARY: Origin", "Content-Length: 5000", "X-Last: 1")
	type set struct{ name, value string }
	for _, tc := range []struct {
		name string
		sets []set
		want []string // the header lines written for the client, in order
	}{
		{"new", []set{{"Content-Encoding", "gzip"}},
			[]string{"Content-Type: text/html", "vary: Cookie", "ETag: \"v1\"", "VARY: Origin", "X-Last: 1", "Content-Encoding: gzip"}},
		{"replace, duplicates go", []set{{"Vary", "Cookie, Accept-Encoding"}},
			[]string{"Content-Type: text/html", "vary: Cookie, Accept-Encoding", "ETag: \"v1\"", "X-Last: 1"}},
		{"several, twice", []set{{"ETag", "W/\"v1\""}, {"Content-Encoding", "br"}, {"Content-Encoding", "gzip"}, {"X-Long", strings.Repeat("x", 300)}},
			[]string{"Content-Type: text/html", "vary: Cookie", "ETag: W/\"v1\"", "VARY: Origin", "X-Last: 1", "Content-Encoding: gzip", "X-Long: " + strings.Repeat("x", 300)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lazy, parsed Response
			if err := lazy.ParseLazy([]byte(head), false); err != nil {
				t.Fatal(err)
			}
			if err := parsed.Parse([]byte(head), false); err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.sets {
				v := []byte(s.value)
				lazy.SetHeader(s.name, v)
				parsed.SetHeader(s.name, v)
				copy(v, strings.Repeat("#", len(v))) // SetHeader copied it
			}
			if !lazy.lazy {
				t.Fatal("SetHeader parsed the lazy head")
			}
			last := tc.sets[len(tc.sets)-1]
			if got := string(lazy.Get(strings.ToLower(last.name))); got != last.value {
				t.Errorf("Value(%q) = %q, want %q", last.name, got, last.value)
			}
			ri := ResponseInfo{}
			lines := strings.Split(strings.TrimSuffix(string(AppendClientResponse(nil, &lazy, &ri)), "\r\n\r\n"), "\r\n")
			want := append(append([]string{"HTTP/1.1 200 OK"}, tc.want...), "Content-Length: 5000")
			if !slices.Equal(lines, want) {
				t.Errorf("lazy head written as\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
			}
			// The parsed head says the same, in fasthttp's order and case.
			fromLazy := headerMultiset(t, AppendClientResponse(nil, &lazy, &ri))
			if fromParsed := headerMultiset(t, AppendClientResponse(nil, &parsed, &ri)); fromLazy != fromParsed {
				t.Errorf("lazy and parsed heads differ after SetHeader:\n%s\n---\n%s", fromLazy, fromParsed)
			}
			// Materialized afterwards, the edits stay.
			if err := lazy.Materialize(); err != nil {
				t.Fatal(err)
			}
			if after := headerMultiset(t, AppendClientResponse(nil, &lazy, &ri)); after != fromLazy {
				t.Errorf("Materialize lost the edits:\n%s\n---\n%s", after, fromLazy)
			}
			// Reset forgets them.
			lazy.Reset()
			if err := lazy.ParseLazy([]byte(head), false); err != nil || lazy.Get("content-encoding") != nil || len(lazy.edits) != 0 {
				t.Errorf("edits survived Reset: %q, %d", lazy.Get("content-encoding"), len(lazy.edits))
			}
		})
	}
}

func TestResponseHeadersLazyAndMaterialized(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Type: text/plain\r\nX-A: 2\r\nContent-Length: 3\r\n\r\n"
	for _, materialize := range []bool{false, true} {
		var r Response
		if err := r.ParseLazy([]byte(head), false); err != nil {
			t.Fatal(err)
		}
		if materialize {
			if err := r.Materialize(); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		r.Headers(func(k, v []byte) { got = append(got, string(k)+"="+string(v)) })
		joined := strings.Join(got, ",")
		for _, want := range []string{"X-A=1", "X-A=2", "Content-Type=text/plain", "Content-Length=3"} {
			if !strings.Contains(joined, want) {
				t.Errorf("materialized %v: headers %q lack %q", materialize, joined, want)
			}
		}
	}
}

// TestResponseConnectionNominated: what the origin's Connection names is gone
// as the head is parsed (filters never see it), and a field an outbound
// filter sets under such a name reaches the client: an origin naming
// Strict-Transport-Security there cannot strip the HSTS a filter adds, and
// Content-Encoding stays (the body is coded whatever Connection says). Lazy
// head or materialized before or after the filter's edit, the same.
func TestResponseConnectionNominated(t *testing.T) {
	head := req("HTTP/1.1 200 OK", "Connection: X-A, strict-transport-security", "X-A: 1",
		"Strict-Transport-Security: max-age=0", "X-B: 2", "Connection: keep-alive, Via, Content-Encoding", "Via: 1.0 o",
		"Content-Encoding: gzip", "Content-Length: 0")
	for _, when := range []string{"lazy", "materialized before", "materialized after"} {
		t.Run(when, func(t *testing.T) {
			var r Response
			if err := r.ParseLazy([]byte(head), false); err != nil {
				t.Fatal(err)
			}
			if when == "materialized before" {
				if err := r.Materialize(); err != nil {
					t.Fatal(err)
				}
			}
			if v := r.Get("X-A"); v != nil {
				t.Errorf("a filter sees X-A: %q", v)
			}
			r.SetHeader("Strict-Transport-Security", []byte("max-age=63072000"))
			if when == "materialized after" {
				if err := r.Materialize(); err != nil {
					t.Fatal(err)
				}
			}
			got := headerMultiset(t, AppendClientResponse(nil, &r, &ResponseInfo{Via: "1.1 gozer"}))
			for _, want := range []string{"strict-transport-security:max-age=63072000", "x-b:2", "via:1.0 o, 1.1 gozer", "content-encoding:gzip"} {
				if !strings.Contains(got, want) {
					t.Errorf("client head lacks %q:\n%s", want, got)
				}
			}
			for _, gone := range []string{"x-a:", "max-age=0", "connection:"} {
				if strings.Contains(got, gone) {
					t.Errorf("client head has %q:\n%s", gone, got)
				}
			}
		})
	}
}
