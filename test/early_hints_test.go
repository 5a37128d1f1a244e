package test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// An origin's interim answers (RFC 9110 15.2): 103 Early Hints reach
// HTTP/1.1 clients as a 1xx head and HTTP/2 clients as HEADERS before the
// final answer, without hop-by-hop fields; an HTTP/1.0 client gets none, nor
// does anyone get an origin's 100 Continue; a hostile origin's flood is cut
// at 8 per request; a failure after a 103 still gets its final 502;
// server.forward_early_hints: false keeps them all back.

const (
	hintLink = "</style.css>; rel=preload; as=style"
	// rawHint is an origin's 103 with hop-by-hop fields beside its Link.
	rawHint = "HTTP/1.1 103 Early Hints\r\nLink: " + hintLink + "\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n"
	rawOK   = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
)

// hintsOrigin is a Go net/http origin on loopback:
//
//	/hints      a 103 with Link (net/http's WriteHeader(103)), then 200 "hello"
//	/held       the same, but the 200 waits until the test closes release
//	/raw        rawHint then rawOK, by hand
//	/continue   an unasked "100 Continue", then rawOK
//	/flood      50 × rawHint, then rawOK
//	/die        rawHint, then the connection closes
func hintsOrigin(t *testing.T) (srv *httptest.Server, release func()) {
	t.Helper()
	held := make(chan struct{})
	var once sync.Once
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hints", "/held":
			w.Header().Set("Link", hintLink)
			w.WriteHeader(http.StatusEarlyHints) // net/http writes it at once
			if r.URL.Path == "/held" {
				select {
				case <-held:
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Second):
				}
			}
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "hello")
		case "/raw":
			writeRaw(t, w, rawHint+rawOK)
		case "/continue":
			writeRaw(t, w, "HTTP/1.1 100 Continue\r\n\r\n"+rawOK)
		case "/flood":
			writeRaw(t, w, strings.Repeat(rawHint, 50)+rawOK)
		case "/die":
			writeRaw(t, w, rawHint)
		default:
			http.NotFound(w, r)
		}
	}))
	release = func() { once.Do(func() { close(held) }) }
	t.Cleanup(release) // before srv.Close, which waits for /held
	t.Cleanup(srv.Close)
	return srv, release
}

// hintsGozer is a gateway (h2c, and HTTPS with h2) in front of origin, with
// the server.* keys in server.
func hintsGozer(t *testing.T, ca *testCA, origin string, server map[string]string) *gozer {
	t.Helper()
	cfg := oneOrigin(nil, origin)
	cfg.Server = server
	cfg.H2C = true
	if ca != nil {
		cert, key, _ := ca.issue(t, "h2", false, "127.0.0.1", "localhost")
		cfg.HTTPS = map[string]string{"certificates": certList([2]string{cert, key})}
	}
	return startGozer(t, cfg)
}

// readHead reads one response head (through its empty line) off c.
func (c *rawConn) readHead() string {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	var b strings.Builder
	for !strings.HasSuffix(b.String(), "\r\n\r\n") {
		line, err := c.br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			c.t.Fatalf("reading a response head: %v after %q", err, b.String())
		}
	}
	return b.String()
}

// checkHint fails t unless head is a 103 with the origin's Link and none of
// its hop-by-hop fields.
func checkHint(t *testing.T, head string) {
	t.Helper()
	lower := strings.ToLower(head)
	if !strings.HasPrefix(head, "HTTP/1.1 103 Early Hints\r\n") || !strings.Contains(head, "\r\nLink: "+hintLink+"\r\n") ||
		strings.Contains(lower, "x-hop") || strings.Contains(lower, "keep-alive") || strings.Contains(lower, "connection:") ||
		strings.Contains(lower, "content-length") {
		t.Fatalf("want a 103 with the Link and no hop-by-hop field, got %q", head)
	}
}

// edgeCount is /admin/edge's counter name.
func edgeCount(t *testing.T, g *gozer, name string) int64 {
	t.Helper()
	v, _ := adminJSON(t, g, "/admin/edge").(map[string]any)[name].(float64)
	return int64(v)
}

// TestEarlyHintsHTTP1: what an HTTP/1.1 client reads on the wire: the 103
// (with its Link, without the origin's hop-by-hop fields) before the origin
// sent its final answer, then the 200; pipelined requests each get theirs,
// in order; an HTTP/1.0 client gets no 103; an origin's unasked 100
// Continue is not passed on; a flood of 103s is cut at 8 and the request
// completes; a 103 then the origin's death is a 502 on a connection that
// serves the next request.
func TestEarlyHintsHTTP1(t *testing.T) {
	t.Parallel()
	o, release := hintsOrigin(t)
	g := hintsGozer(t, nil, o.Listener.Addr().String(), nil)

	t.Run("the 103 comes before the origin's final answer", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
		hint := c.readHead() // the origin is holding its 200 back
		if !strings.HasPrefix(hint, "HTTP/1.1 103 Early Hints\r\n") || !strings.Contains(hint, "\r\nLink: "+hintLink+"\r\n") ||
			!strings.Contains(hint, "\r\nVia: 1.1 gozer\r\n") {
			t.Fatalf("first head %q", hint)
		}
		release()
		resp, body := c.response("GET")
		if resp.StatusCode != 200 || string(body) != "hello" {
			t.Fatalf("final answer %d %q", resp.StatusCode, body)
		}
		l := g.waitAccessLog(t, "the /held line", byRequestID(resp.Header.Get("X-Request-Id")))
		if st, _ := l[0].num("status"); st != 200 {
			t.Fatalf("access log status %v, want 200", st)
		}
	})
	t.Run("raw bytes, pipelined", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET /raw HTTP/1.1\r\nHost: x\r\n\r\nGET /raw HTTP/1.1\r\nHost: x\r\n\r\n")
		for i := 0; i < 2; i++ {
			checkHint(t, c.readHead())
			resp, body := c.response("GET")
			if resp.StatusCode != 200 || string(body) != "hello" {
				t.Fatalf("request %d: final answer %d %q", i, resp.StatusCode, body)
			}
		}
	})
	t.Run("HTTP/1.0 client: no 103", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET /raw HTTP/1.0\r\nHost: x\r\n\r\n")
		if head := c.readHead(); !strings.HasPrefix(head, "HTTP/1.1 200 ") {
			t.Fatalf("an HTTP/1.0 client's first head: %q", head)
		}
	})
	t.Run("unasked 100 Continue: not passed on", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET /continue HTTP/1.1\r\nHost: x\r\n\r\n")
		if head := c.readHead(); !strings.HasPrefix(head, "HTTP/1.1 200 ") {
			t.Fatalf("first head: %q", head)
		}
	})
	t.Run("a flood of 103s: 8 passed on", func(t *testing.T) {
		before := edgeCount(t, g, "interim_dropped_total")
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
		n := 0
		for {
			head := c.readHead()
			if !strings.HasPrefix(head, "HTTP/1.1 103 ") {
				if !strings.HasPrefix(head, "HTTP/1.1 200 ") {
					t.Fatalf("after %d hints: %q", n, head)
				}
				break
			}
			n++
		}
		if n != 8 {
			t.Fatalf("%d hints passed on, want 8", n)
		}
		if body, _ := io.ReadAll(io.LimitReader(c.br, 5)); string(body) != "hello" {
			t.Fatalf("body %q", body)
		}
		if d := edgeCount(t, g, "interim_dropped_total") - before; d != 42 {
			t.Fatalf("interim_dropped_total grew by %d, want 42", d)
		}
	})
	t.Run("103 then the origin dies: 502, the connection goes on", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET /die HTTP/1.1\r\nHost: x\r\n\r\n")
		checkHint(t, c.readHead())
		resp, _ := c.response("GET")
		if resp.StatusCode != 502 || resp.Header.Get("X-Gozer-Status") != "FAILURE_ORIGIN_BAD_RESPONSE" {
			t.Fatalf("after the 103: %d %s", resp.StatusCode, resp.Header.Get("X-Gozer-Status"))
		}
		c.send("GET /raw HTTP/1.1\r\nHost: x\r\n\r\n")
		checkHint(t, c.readHead())
		if resp, body := c.response("GET"); resp.StatusCode != 200 || string(body) != "hello" {
			t.Fatalf("the next request: %d %q", resp.StatusCode, body)
		}
	})
}

// TestEarlyHintsRetry: a 503 after a 103 is retried on the other server as
// without the hint: the client gets one 103 per attempt and the 200 of the
// server that answered, never the 503.
func TestEarlyHintsRetry(t *testing.T) {
	t.Parallel()
	server := func(final string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_, _ = io.WriteString(c, rawHint+final)
		}))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	unavailable := server("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	g := startGozer(t, oneOrigin(map[string]string{"retries": "1"}, unavailable, server(rawOK)))
	retried := false
	for i := 0; i < 20 && !retried; i++ { // until the balancer picked the 503 first
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET /r HTTP/1.1\r\nHost: x\r\n\r\n")
		hints := 0
		head := c.readHead()
		for ; strings.HasPrefix(head, "HTTP/1.1 103 "); head = c.readHead() {
			checkHint(t, head)
			hints++
		}
		resp, body := c.readResponseHead(head)
		if resp.StatusCode != 200 || body != "hello" || resp.Header.Get("X-Gozer-Attempts") != strconv.Itoa(hints) {
			t.Fatalf("after %d hints: %d %q after %s attempts", hints, resp.StatusCode, body, resp.Header.Get("X-Gozer-Attempts"))
		}
		retried = hints == 2
	}
	if !retried {
		t.Fatal("20 requests, none tried the server answering 503 first")
	}
}

// readResponseHead reads the body of the response whose head was read
// already (readHead).
func (c *rawConn) readResponseHead(head string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(head), c.br)), nil)
	if err != nil {
		c.t.Fatalf("head %q: %v", head, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("body: %v", err)
	}
	return resp, string(body)
}

// hintTrace records the interim answers a Go client saw.
type hintTrace struct {
	mu    sync.Mutex
	codes []int
	links []string
}

func (h *hintTrace) request(t *testing.T, url string) *http.Request {
	t.Helper()
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.codes = append(h.codes, code)
			h.links = append(h.links, hdr.Get("Link"))
			return nil
		},
	})
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestEarlyHintsGoClients: Go's net/http client (httptrace's Got1xxResponse)
// sees the 103 and its Link, then the 200, over HTTP/1.1, h2c and h2 over
// TLS; after a 103 and the origin's death it gets a 502; with
// server.forward_early_hints off it sees none.
func TestEarlyHintsGoClients(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o, _ := hintsOrigin(t)
	addr := o.Listener.Addr().String()
	g := hintsGozer(t, ca, addr, nil)
	gOff := hintsGozer(t, nil, addr, map[string]string{"forward_early_hints": "false"})
	for _, c := range []struct {
		name   string
		client *http.Client
		base   string
		proto  int
	}{
		{"http1", newClient(t, 20*time.Second), "http://" + g.ProxyAddr, 1},
		{"h2c", h2cClient(t), "http://" + g.ProxyAddr, 2},
		{"h2", h2TLSClient(t, ca), "https://" + g.HTTPSAddr, 2},
		{"http1 off", newClient(t, 20*time.Second), "http://" + gOff.ProxyAddr, 1},
		{"h2c off", h2cClient(t), "http://" + gOff.ProxyAddr, 2},
	} {
		off := strings.HasSuffix(c.name, " off")
		for _, tc := range []struct {
			path   string
			status int
			body   string
		}{{"/hints", 200, "hello"}, {"/die", 502, ""}} {
			t.Run(c.name+tc.path, func(t *testing.T) {
				var tr hintTrace
				resp, err := c.client.Do(tr.request(t, c.base+tc.path))
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != tc.status || resp.ProtoMajor != c.proto || tc.body != "" && string(body) != tc.body {
					t.Fatalf("%d %s %q %v", resp.StatusCode, resp.Proto, body, err)
				}
				tr.mu.Lock()
				defer tr.mu.Unlock()
				if off {
					if len(tr.codes) != 0 {
						t.Fatalf("forward_early_hints off, the client saw %v", tr.codes)
					}
					return
				}
				if len(tr.codes) != 1 || tr.codes[0] != 103 || tr.links[0] != hintLink {
					t.Fatalf("interim answers %v with Link %q, want one 103 with %q", tr.codes, tr.links, hintLink)
				}
			})
		}
	}
}

// TestEarlyHintsCurl: curl -v shows the 103 and its Link before the 200,
// over HTTP/1.1 and HTTP/2 (h2c with prior knowledge).
func TestEarlyHintsCurl(t *testing.T) {
	t.Parallel()
	o, _ := hintsOrigin(t)
	g := hintsGozer(t, nil, o.Listener.Addr().String(), nil)
	curl := toolPath(t, "curl")
	for _, tc := range []struct {
		flag, hint, final string
	}{
		{"--http1.1", "< HTTP/1.1 103 Early Hints", "< HTTP/1.1 200 OK"},
		{"--http2-prior-knowledge", "< HTTP/2 103", "< HTTP/2 200"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			out, err := exec.Command(curl, "-sv", "--max-time", "20", tc.flag, g.URL("/hints")).CombinedOutput()
			s := string(out)
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, s)
			}
			hint, link, final := strings.Index(s, tc.hint), strings.Index(strings.ToLower(s), "< link: "+hintLink), strings.Index(s, tc.final)
			if hint < 0 || link < hint || final < link || !strings.HasSuffix(s, "hello") {
				t.Fatalf("curl %s did not show the 103 and its Link before the 200:\n%s", tc.flag, s)
			}
		})
	}
}
