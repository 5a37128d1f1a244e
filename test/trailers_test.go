package test

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Trailers passed through (RFC 9110 6.5): an origin's chunked trailer
// section reaches HTTP/1.1 clients in their chunked response and HTTP/2
// clients as trailing HEADERS; a client's trailers (an HTTP/1.1 chunked
// body's, an HTTP/2 stream's trailing HEADERS) reach the origin after the
// last chunk; fields that must not be trailers are dropped both ways.

// trailerOrigin is a Go net/http origin on loopback (a /gz, /lua or
// /lua/set prefix is ignored):
//
//	/trailers       "hello", chunked, with trailers Grpc-Status: 0 and X-Sum: abc
//	/forbidden      the same by hand (hijacked), with Content-Length, Host and Set-Cookie trailers too
//	/big-trailer    "hello" and a 9 KiB trailer section (over the 8 KiB bound)
//	/announced      "hello", chunked, announcing (Trailer) and sending Grpc-Status, X-Checksum and Content-Length
//	/echo-trailers  reads the body, answers {"body": ..., "trailer": r.Trailer, "announced": the names its
//	                Trailer header named}
//	/te             "hello", chunked, with trailer Grpc-Status: 0 only when its TE said "trailers"
//	                (as gRPC servers); X-Got-TE and X-Got-Connection say what came
func trailerOrigin(t *testing.T) *httptest.Server {
	t.Helper()
	const head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n"
	const announcedHead = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTrailer: Grpc-Status, Content-Length, X-Checksum\r\n" +
		"Trailer: Host\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/gz"), "/lua"), "/set")
		switch path {
		case "/trailers":
			w.Header().Set("Trailer", "Grpc-Status")
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "hello")
			w.(http.Flusher).Flush() // chunked: no Content-Length
			w.Header().Set("Grpc-Status", "0")
			w.Header().Set(http.TrailerPrefix+"X-Sum", "abc")
		case "/forbidden":
			writeRaw(t, w, head+"Grpc-Status: 0\r\nContent-Length: 99\r\nHost: evil\r\nSet-Cookie: a=b\r\nIf-Match: *\r\n\r\n")
		case "/big-trailer":
			writeRaw(t, w, head+"X-Big: "+strings.Repeat("b", 9<<10)+"\r\n\r\n")
		case "/te":
			w.Header().Set("X-Got-TE", strings.Join(r.Header.Values("Te"), ","))
			w.Header().Set("X-Got-Connection", strings.Join(r.Header.Values("Connection"), ","))
			w.Header().Set("Content-Type", "text/plain")
			te := strings.Contains(r.Header.Get("Te"), "trailers")
			if te {
				w.Header().Set("Trailer", "Grpc-Status")
			}
			_, _ = io.WriteString(w, "hello")
			w.(http.Flusher).Flush()
			if te {
				w.Header().Set("Grpc-Status", "0")
			}
		case "/announced":
			writeRaw(t, w, announcedHead+"5\r\nhello\r\n0\r\nGrpc-Status: 0\r\nX-Checksum: abc\r\nContent-Length: 99\r\n\r\n")
		case "/echo-trailers":
			announced := slices.Sorted(maps.Keys(r.Trailer)) // what the Trailer header named, before the body
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"body": string(body), "trailer": r.Trailer, "announced": announced})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// trailerGozer is a gateway (h2c, and HTTPS with h2) in front of origin;
// /gz/ goes to the same origin with compression on.
func trailerGozer(t *testing.T, ca *testCA, origin string) *gozer {
	t.Helper()
	cert, key, _ := ca.issue(t, "h2", false, "127.0.0.1", "localhost")
	cfg := config{
		Origins: map[string]originConfig{
			"demo": {Servers: []string{origin}},
			"gz": {Servers: []string{origin}, Opts: map[string]string{
				"compression": "{enabled: true, encodings: [gzip], min_size: 1, types: [text/plain]}"}},
		},
		Routes: []route{{PathPrefix: "/gz/", Origin: "gz"}, {PathPrefix: "/", Origin: "demo"}},
	}
	cfg.H2C = true
	cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	return startGozer(t, cfg)
}

// trailerClient is one of the clients the trailer tests run through
// trailerGozer: Go's HTTP/1.1 client, its h2c one and HTTP/2 over TLS.
type trailerClient struct {
	name   string
	client *http.Client
	base   string // the URL's scheme and host
	proto  int    // the response's ProtoMajor
}

func trailerClients(t *testing.T, ca *testCA, g *gozer) []trailerClient {
	return []trailerClient{
		{"http1", newClient(t, 20*time.Second), "http://" + g.ProxyAddr, 1},
		{"h2c", h2cClient(t), "http://" + g.ProxyAddr, 2},
		{"h2", h2TLSClient(t, ca), "https://" + g.HTTPSAddr, 2},
	}
}

// TestTrailersResponse: an origin's trailers reach Go's HTTP/1.1 client and
// its HTTP/2 clients (h2c, h2 over TLS) in resp.Trailer, without the fields
// that must not be trailers; a compressed response and an HTTP/1.0 client's
// close-delimited one carry none; a trailer section over 8 KiB fails the
// response as the chunked decoder refuses it (a 502 if the head had not
// left, else a cut body; the access log says FAILURE_ORIGIN_BAD_RESPONSE).
func TestTrailersResponse(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o := trailerOrigin(t)
	g := trailerGozer(t, ca, o.Listener.Addr().String())
	clients := trailerClients(t, ca, g)
	paths := []struct {
		path string
		want map[string]string // the trailers the client must see, exactly
	}{
		{"/trailers", map[string]string{"Grpc-Status": "0", "X-Sum": "abc"}},
		{"/forbidden", map[string]string{"Grpc-Status": "0"}},
		{"/gz/trailers", map[string]string{}},
	}
	for _, c := range clients {
		for _, p := range paths {
			t.Run(c.name+p.path, func(t *testing.T) {
				req, _ := http.NewRequest("GET", c.base+p.path, nil)
				req.Header.Set("Accept-Encoding", "gzip") // (so no client decodes it: /gz/ is compressed)
				resp, err := c.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var rd io.Reader = resp.Body
				gz := resp.Header.Get("Content-Encoding") == "gzip"
				if gz {
					if rd, err = gzip.NewReader(resp.Body); err != nil {
						t.Fatal(err)
					}
				}
				body, err := io.ReadAll(rd)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || resp.ProtoMajor != c.proto || string(body) != "hello" {
					t.Fatalf("%d %s %q %v", resp.StatusCode, resp.Proto, body, err)
				}
				if strings.HasPrefix(p.path, "/gz/") != gz {
					t.Fatalf("compressed: %v", gz)
				}
				got := map[string]string{}
				for k := range resp.Trailer {
					if v := resp.Trailer.Get(k); v != "" {
						got[k] = v
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(p.want) {
					t.Fatalf("trailers %v, want %v", got, p.want)
				}
			})
		}
		t.Run(c.name+"/big-trailer", func(t *testing.T) {
			resp, err := c.client.Get(c.base + "/big-trailer")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			// 502 when the head had not left yet (the whole answer came in one
			// read), else the body is cut: never a clean end.
			if err == nil && resp.StatusCode != 502 {
				t.Fatalf("a response whose trailer section went over 8 KiB ended cleanly: %d %q, trailers %v", resp.StatusCode, body, resp.Trailer)
			}
			id := resp.Header.Get("X-Request-Id")
			l := g.waitAccessLog(t, "the big trailer's line", byRequestID(id))
			if cause := l[0].str("cause"); cause != "FAILURE_ORIGIN_BAD_RESPONSE" {
				t.Fatalf("status cause %q", cause)
			}
		})
	}
	t.Run("nghttp", func(t *testing.T) {
		out, err := exec.Command(toolPath(t, "nghttp"), "-nv", g.URL("/forbidden")).CombinedOutput()
		if err != nil {
			t.Fatalf("nghttp: %v\n%s", err, out)
		}
		// The trailing HEADERS: after the DATA, END_STREAM, the kept field only.
		s := string(out)
		data, trailer := strings.Index(s, "recv DATA frame"), strings.Index(s, ") grpc-status: 0")
		if data < 0 || trailer < data || strings.Contains(s, "content-length: 99") || strings.Contains(s, "evil") ||
			!regexp.MustCompile(`recv HEADERS frame <length=\d+, flags=0x05`).MatchString(s[trailer:]) { // END_STREAM | END_HEADERS
			t.Fatalf("nghttp did not show the trailer after the DATA:\n%s", tail(s, 2000))
		}
	})
	t.Run("http1.0", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET /trailers HTTP/1.0\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
		all, err := io.ReadAll(c.br)
		// (Not "abc" anywhere: a random X-Request-Id may hold it.)
		head, body, _ := strings.Cut(string(all), "\r\n\r\n")
		head = strings.ToLower(head)
		if err != nil || body != "hello" || strings.Contains(head, "x-sum") || strings.Contains(head, "grpc-status") || strings.Contains(head, "trailer") {
			t.Fatalf("HTTP/1.0 answer %q (%v): a close-delimited body, no trailers", all, err)
		}
	})
}

// TestTrailersRequest: a client's trailers reach the origin (r.Trailer once
// it read the body) from Go's HTTP/1.1 client (a chunked body) and its
// HTTP/2 clients (trailing HEADERS); fields that must not be trailers are
// dropped (raw clients send them: Go's refuse to); a trailer section over
// its bound is refused: 400 for HTTP/1.1 (the chunked decoder's), 431 for
// HTTP/2 (over 8 KiB as HTTP/1.1 lines).
func TestTrailersRequest(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o := trailerOrigin(t)
	g := trailerGozer(t, ca, o.Listener.Addr().String())
	for _, c := range []struct {
		name   string
		client *http.Client
		base   string
	}{
		{"http1", newClient(t, 20*time.Second), "http://" + g.ProxyAddr},
		{"h2c", h2cClient(t), "http://" + g.ProxyAddr},
		{"h2", h2TLSClient(t, ca), "https://" + g.HTTPSAddr},
	} {
		t.Run(c.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			req, _ := http.NewRequest("POST", c.base+"/echo-trailers", pr)
			req.Trailer = http.Header{"X-Sum": nil, "Grpc-Timeout": nil}
			go func() {
				_, _ = io.WriteString(pw, "hel")
				_, _ = io.WriteString(pw, "lo")
				req.Trailer.Set("X-Sum", "abc") // set before EOF: sent after the body
				req.Trailer.Set("Grpc-Timeout", "1S")
				pw.Close()
			}()
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := echoed(t, resp)
			if got != `hello {"Grpc-Timeout":["1S"],"X-Sum":["abc"]}` {
				t.Fatalf("the origin saw %s", got)
			}
		})
	}
	t.Run("http1 raw: forbidden fields dropped", func(t *testing.T) {
		resp, body := rawExchange(t, g.ProxyAddr, "POST /echo-trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"5\r\nhello\r\n0\r\nX-Sum: abc\r\nContent-Length: 99\r\nHost: evil\r\nIf-Match: *\r\nAuthorization: x\r\n\r\n")
		if resp.StatusCode != 200 || !strings.Contains(body, `"trailer":{"X-Sum":["abc"]}`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("http1 raw: over 8 KiB", func(t *testing.T) {
		resp, _ := rawExchange(t, g.ProxyAddr, "POST /echo-trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"5\r\nhello\r\n0\r\nX-Big: "+strings.Repeat("b", 9<<10)+"\r\n\r\n")
		if resp.StatusCode != 400 || resp.Header.Get("X-Gozer-Status") != "FAILURE_CLIENT_SMUGGLING" {
			t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("X-Gozer-Status"))
		}
	})
	t.Run("h2 raw: forbidden fields dropped", func(t *testing.T) {
		h := dialH2(t, g.ProxyAddr)
		status, body := h.postTrailers(1, nil, "hello", "x-sum", "abc", "content-length", "99", "host", "evil", "if-match", "*", "cookie", "a=b")
		if status != "200" || !strings.Contains(body, `"trailer":{"X-Sum":["abc"]}`) {
			t.Fatalf("%s %s", status, body)
		}
	})
	t.Run("h2 raw: over 8 KiB", func(t *testing.T) {
		h := dialH2(t, g.ProxyAddr)
		status, _ := h.postTrailers(1, nil, "hello", "x-big", strings.Repeat("b", 9<<10))
		if status != "431" {
			t.Fatalf("status %s, want 431", status)
		}
	})
	for _, tc := range []struct {
		name    string
		head    []string
		trailer []string
	}{
		{"connection-specific", nil, []string{"connection", "close"}},
		{"upper case", nil, []string{"X-Sum", "1"}},
		{"pseudo-header", nil, []string{":status", "200"}},
		{"before the content-length's DATA", []string{"content-length", "10"}, []string{"x-sum", "1"}},
	} {
		t.Run("h2 raw: malformed trailers reset the stream: "+tc.name, func(t *testing.T) {
			h := dialH2(t, g.ProxyAddr)
			if status, _ := h.postTrailers(1, tc.head, "hello", tc.trailer...); status != "RST_STREAM PROTOCOL_ERROR" {
				t.Fatalf("got %s", status)
			}
		})
	}
}

// echoed is /echo-trailers's answer as "body trailers-json".
func echoed(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var v struct {
		Body    string
		Trailer json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d: %v", resp.StatusCode, err)
	}
	return v.Body + " " + string(v.Trailer)
}

// postTrailers sends a POST of /echo-trailers on stream id (with the head's
// name, value pairs), its body, and trailing HEADERS of the name, value pairs;
// it returns the answer's :status (or "RST_STREAM <code>") and its body.
func (h *h2raw) postTrailers(id uint32, head []string, body string, trailer ...string) (status, got string) {
	h.t.Helper()
	if err := h.request(id, "POST", "/echo-trailers", false, head...); err != nil {
		h.t.Fatal(err)
	}
	_ = h.fr.WriteData(id, false, []byte(body))
	h.eb.Reset()
	for i := 0; i+1 < len(trailer); i += 2 {
		_ = h.enc.WriteField(hpack.HeaderField{Name: trailer[i], Value: trailer[i+1]})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.eb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
	_ = h.c.SetReadDeadline(time.Now().Add(ioTimeout))
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.t.Fatalf("reading the answer: %v (status %q, body %q)", err, status, got)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				status = f.PseudoValue("status")
				if f.StreamEnded() {
					return status, got
				}
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				got += string(f.Data())
				if f.StreamEnded() {
					return status, got
				}
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return "RST_STREAM " + f.ErrCode.String(), got
			}
		case *http2.GoAwayFrame:
			h.t.Fatalf("GOAWAY %v", f.ErrCode)
		}
	}
}

// TestTrailersLuaFilters: outbound Lua filters that read the head, or the
// whole body (body = true), leave an origin's trailers alone; one that
// replaces the body (ctx.resp.set_body) takes them away: they described the
// origin's. An HTTP/1.0 client, which takes none, gets the read body with
// a Content-Length.
func TestTrailersLuaFilters(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "outbound", "10_saw.lua", luaFilter("saw", "outbound", 10, `ctx.req.path:find("^/lua/") ~= nil`, `
    local b = ctx.resp.body() or ""
    ctx.resp.set_header("X-Saw-Body", tostring(#b))
    if ctx.req.path:find("^/lua/set/") then ctx.resp.set_body(b .. "!") end`, "body = true"))
	d.write(t, "outbound", "20_tag.lua", luaFilter("tag", "outbound", 20, "", `ctx.resp.set_header("X-Tag", "1")`))
	o := trailerOrigin(t)
	g := luaGozer(t, d, filtersConfig{}, map[string]originConfig{"demo": {Servers: []string{o.Listener.Addr().String()}}},
		route{PathPrefix: "/", Origin: "demo"})
	for _, tc := range []struct {
		path, saw, body string
		trailers        bool
	}{
		{"/trailers", "", "hello", true},
		{"/lua/trailers", "5", "hello", true},
		{"/lua/set/trailers", "5", "hello!", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := newClient(t, 20*time.Second).Get(g.URL(tc.path))
			if err != nil {
				t.Fatal(err)
			}
			// The origin's Trailer: Grpc-Status is announced where they follow.
			if announced := trailerKeys(resp.Trailer, false); announced != map[bool]string{true: "Grpc-Status"}[tc.trailers] {
				t.Errorf("announced %q, want them: %v", announced, tc.trailers)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != tc.body || resp.Header.Get("X-Tag") != "1" || resp.Header.Get("X-Saw-Body") != tc.saw {
				t.Fatalf("%d %q %v X-Tag %q X-Saw-Body %q", resp.StatusCode, body, err, resp.Header.Get("X-Tag"), resp.Header.Get("X-Saw-Body"))
			}
			if got := resp.Trailer.Get("Grpc-Status") == "0"; got != tc.trailers {
				t.Fatalf("trailers %v, want them: %v", resp.Trailer, tc.trailers)
			}
		})
	}
	// An HTTP/1.0 client takes no trailers: the buffered body goes with a
	// Content-Length and keep-alive, not close-delimited.
	t.Run("HTTP/1.0 /lua/trailers", func(t *testing.T) {
		resp, body := rawExchange(t, g.ProxyAddr, "GET /lua/trailers HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		if body != "hello" || resp.ContentLength != 5 || resp.Close {
			t.Fatalf("%q Content-Length %d, closed %v", body, resp.ContentLength, resp.Close)
		}
	})
}

// writeRaw answers an origin's request with the bytes s, written on the
// hijacked connection (the test's own framing, which net/http would not
// write), and closes the connection.
func writeRaw(t testing.TB, w http.ResponseWriter, s string) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	_, _ = io.WriteString(c, s)
}
