package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// proxied starts one origin named "o1" behind a Gozer with the given config tweaks.
func proxied(t *testing.T, server map[string]string, originOpts map[string]string) (*gozer, *origin) {
	t.Helper()
	o := startOrigin(t, "o1")
	cfg := oneOrigin(originOpts, o.Addr)
	cfg.Server = server
	return startGozer(t, cfg), o
}

// sinkAnswer is demo-origin's /sink answer.
type sinkAnswer struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

func decodeSink(t testing.TB, body []byte) sinkAnswer {
	t.Helper()
	var s sinkAnswer
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("origin /sink answer is not JSON (%v): %q", err, tail(string(body), 300))
	}
	return s
}

func TestProxyMethods(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	client := newClient(t, 20*time.Second)
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	tests := []struct {
		name, method, path string
		body               []byte
		contentType        string
		wantStatus         int
		check              func(t *testing.T, resp *http.Response, body []byte)
	}{
		{"GET keeps path and query", "GET", "/headers?q=1&r=two%20words", nil, "", 200, func(t *testing.T, _ *http.Response, body []byte) {
			v := decodeView(t, body)
			if v.Method != "GET" || v.URI != "/headers?q=1&r=two%20words" {
				t.Errorf("origin saw %s %s", v.Method, v.URI)
			}
		}},
		{"POST body echoed", "POST", "/echo", []byte("hello post"), "text/x-post", 200, func(t *testing.T, resp *http.Response, body []byte) {
			if string(body) != "hello post" || resp.Header.Get("Content-Type") != "text/x-post" {
				t.Errorf("echo: %q with Content-Type %q", body, resp.Header.Get("Content-Type"))
			}
		}},
		{"PUT 200KiB body echoed", "PUT", "/echo", big, "application/octet-stream", 200, func(t *testing.T, _ *http.Response, body []byte) {
			if !bytes.Equal(body, big) {
				t.Errorf("echo gave %d bytes, want the %d sent", len(body), len(big))
			}
		}},
		{"DELETE", "DELETE", "/headers", nil, "", 200, func(t *testing.T, _ *http.Response, body []byte) {
			if v := decodeView(t, body); v.Method != "DELETE" {
				t.Errorf("origin saw method %s", v.Method)
			}
		}},
		{"origin 503 passes through", "GET", "/status?code=503", nil, "", 503, func(t *testing.T, _ *http.Response, body []byte) {
			if !strings.Contains(string(body), "status 503 from demo-origin o1") {
				t.Errorf("body %q is not the origin's", body)
			}
		}},
		{"origin 404 passes through", "GET", "/status?code=404", nil, "", 404, func(t *testing.T, _ *http.Response, body []byte) {
			if !strings.Contains(string(body), "status 404 from demo-origin o1") {
				t.Errorf("body %q is not the origin's", body)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rd io.Reader
			if tc.body != nil {
				rd = bytes.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, g.URL(tc.path), rd)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.wantStatus, tail(string(body), 300))
			}
			if got := resp.Header.Get("X-Origin-Name"); got != "o1" {
				t.Errorf("origin's response header X-Origin-Name = %q, want o1", got)
			}
			tc.check(t, resp, body)
		})
	}
}

// TestProxyCurl is what a user does first: curl -i through Gozer.
func TestProxyCurl(t *testing.T) {
	t.Parallel()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	g, _ := proxied(t, nil, nil)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"GET page", []string{"-si", g.URL("/")}, []string{
			"HTTP/1.1 200", "hello from demo-origin o1", "X-Forwarded-For: 127.0.0.1", "Via: 1.1 gozer", "X-Request-Id: ",
		}},
		{"POST form", []string{"-si", "-d", "a=1&b=2", g.URL("/sink")}, []string{"HTTP/1.1 200", `"bytes":7`}},
		{"HEAD", []string{"-sI", g.URL("/bytes?n=4096")}, []string{"HTTP/1.1 200", "Content-Length: 4096"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(curl, append([]string{"--max-time", "10"}, tc.args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("curl %v: %v\n%s", tc.args, err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("curl output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestKeepAliveReuse(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	c := dialRaw(t, g.ProxyAddr)
	for i := 1; i <= 50; i++ {
		resp, body := c.roundTrip(request("GET", "/counter"))
		if resp.StatusCode != 200 || string(body) != fmt.Sprintf("%d\n", i) {
			t.Fatalf("request %d on one connection: status %d body %q", i, resp.StatusCode, body)
		}
		if resp.Close {
			t.Fatalf("request %d: response closes the connection", i)
		}
	}
}

// TestPipelining: several requests in one write, answered in order on the same
// connection, whatever their bodies and however long each takes.
func TestPipelining(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	type answer struct {
		method string
		check  func(t *testing.T, resp *http.Response, body []byte)
	}
	status := func(code int) answer {
		return answer{"GET", func(t *testing.T, resp *http.Response, _ []byte) {
			if resp.StatusCode != code {
				t.Errorf("status %d, want %d", resp.StatusCode, code)
			}
		}}
	}
	uri := func(want string) answer {
		return answer{"GET", func(t *testing.T, resp *http.Response, body []byte) {
			if v := decodeView(t, body); resp.StatusCode != 200 || v.URI != want {
				t.Errorf("answer %d for %q, want 200 for %q", resp.StatusCode, v.URI, want)
			}
		}}
	}
	sink := func(n int64) answer {
		return answer{"POST", func(t *testing.T, resp *http.Response, body []byte) {
			if s := decodeSink(t, body); resp.StatusCode != 200 || s.Bytes != n {
				t.Errorf("answer %d, origin got %d bytes; want 200 and %d", resp.StatusCode, s.Bytes, n)
			}
		}}
	}
	slow := answer{"GET", func(t *testing.T, resp *http.Response, body []byte) {
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "slow answer") {
			t.Errorf("answer %d %q, want the slow answer", resp.StatusCode, body)
		}
	}}
	tests := []struct {
		name    string
		reqs    string
		answers []answer
	}{
		{"slowest first", request("GET", "/slow?delay=300ms") + request("GET", "/headers?seq=2") + request("GET", "/status?code=203"),
			[]answer{slow, uri("/headers?seq=2"), status(203)}},
		{"with bodies", request("POST", "/sink", "Content-Length: 5") + "hello" +
			request("POST", "/sink", "Transfer-Encoding: chunked") + chunked([]byte("0123456789"), 3) +
			request("GET", "/headers?seq=3"),
			[]answer{sink(5), sink(10), uri("/headers?seq=3")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, g.ProxyAddr)
			c.send(tc.reqs)
			for i, a := range tc.answers {
				resp, body := c.response(a.method)
				t.Run(fmt.Sprintf("answer %d", i+1), func(t *testing.T) { a.check(t, resp, body) })
			}
		})
	}
}

func TestHTTP10(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	tests := []struct {
		name      string
		req       string
		keepAlive bool
		check     func(t *testing.T, body []byte)
	}{
		{"GET closes", "GET /headers HTTP/1.0\r\nHost: gozer.test\r\n\r\n", false, func(t *testing.T, body []byte) {
			if v := decodeView(t, body); v.Method != "GET" || v.URI != "/headers" {
				t.Errorf("origin saw %s %s", v.Method, v.URI)
			}
		}},
		{"POST with body closes", "POST /sink HTTP/1.0\r\nHost: gozer.test\r\nContent-Length: 5\r\n\r\nhello", false, func(t *testing.T, body []byte) {
			if s := decodeSink(t, body); s.Bytes != 5 {
				t.Errorf("origin got %d body bytes, want 5", s.Bytes)
			}
		}},
		{"keep-alive stays open", "GET /counter HTTP/1.0\r\nHost: gozer.test\r\nConnection: keep-alive\r\n\r\n", true, func(t *testing.T, body []byte) {
			if _, err := strconv.Atoi(strings.TrimSpace(string(body))); err != nil {
				t.Errorf("body %q is not the origin's counter", body)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, g.ProxyAddr)
			c.send(tc.req)
			resp, body := c.response(strings.SplitN(tc.req, " ", 2)[0])
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, body %q", resp.StatusCode, body)
			}
			tc.check(t, body)
			if !tc.keepAlive {
				c.mustClose("HTTP/1.0 request without keep-alive")
				return
			}
			if !strings.Contains(strings.ToLower(resp.Header.Get("Connection")), "keep-alive") {
				t.Errorf("response to an HTTP/1.0 keep-alive request has Connection %q: the client will close", resp.Header.Get("Connection"))
			}
			resp, _ = c.roundTrip(tc.req)
			if resp.StatusCode != 200 {
				t.Errorf("second request on the kept-alive connection: %d", resp.StatusCode)
			}
		})
	}
}

// TestBodilessResponses: answers that carry no body whatever their headers say (HEAD,
// 204, 304) must not leave the connection waiting for one or out of step.
func TestBodilessResponses(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantLength         int64 // Content-Length the client must see; -1 for any
	}{
		{"HEAD keeps Content-Length", "HEAD", "/bytes?n=12345", 200, 12345},
		{"HEAD of a chunked answer", "HEAD", "/bytes?n=5000&chunked=1", 200, -1},
		{"204 No Content", "GET", "/status?code=204", 204, -1},
		{"304 Not Modified", "GET", "/status?code=304", 304, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, g.ProxyAddr)
			resp, body := c.roundTrip(request(tc.method, tc.path))
			if resp.StatusCode != tc.wantStatus || len(body) != 0 {
				t.Fatalf("status %d with %d body bytes, want %d and none", resp.StatusCode, len(body), tc.wantStatus)
			}
			if tc.wantLength >= 0 && resp.ContentLength != tc.wantLength {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, tc.wantLength)
			}
			// Had any body byte followed, or were Gozer still waiting for one, this next
			// answer would not come or not parse.
			resp, body = c.roundTrip(request("GET", "/headers?next=1"))
			if v := decodeView(t, body); resp.StatusCode != 200 || v.URI != "/headers?next=1" {
				t.Fatalf("next request on the same connection: %d for %q", resp.StatusCode, v.URI)
			}
		})
	}
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	c := dialRaw(t, g.ProxyAddr)
	const n = 100000
	c.send(request("POST", "/sink", "Content-Length: "+strconv.Itoa(n), "Expect: 100-continue"))
	resp, _ := c.response("POST")
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("before the body: status %d, want 100 Continue", resp.StatusCode)
	}
	body, _ := io.ReadAll(&patternReader{n: n})
	c.send(string(body))
	resp, got := c.response("POST")
	for i := 0; i < 3 && resp.StatusCode == http.StatusContinue; i++ {
		resp, got = c.response("POST") // a client must ignore an extra 100 (the origin's)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("final status %d, body %q", resp.StatusCode, got)
	}
	if s := decodeSink(t, got); s.Bytes != n || s.SHA256 != patternSHA(n) {
		t.Errorf("origin got %d bytes sha %s, want %d sha %s", s.Bytes, s.SHA256, n, patternSHA(n))
	}
}

func TestConnectionClose(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	c := dialRaw(t, g.ProxyAddr)
	resp, _ := c.roundTrip(request("GET", "/headers", "Connection: close"))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !resp.Close { // http.ReadResponse sets Close (and drops the header) for Connection: close
		t.Errorf("response does not say Connection: close (Connection %q)", resp.Header.Get("Connection"))
	}
	c.mustClose("after a Connection: close request")
}

func TestChunkedRequestBody(t *testing.T) {
	t.Parallel()
	g, o := proxied(t, nil, nil)
	body, _ := io.ReadAll(&patternReader{n: 1 << 20})
	small := body[:100]
	tests := []struct {
		name    string
		encoded string
		want    []byte
	}{
		{"1MiB in odd-sized chunks", chunked(body, 7001), body},
		{"one-byte chunks", chunked(small, 1), small},
		{"chunk extensions and a trailer", "a;name=value\r\n" + string(small[:10]) + "\r\n5a\r\n" + string(small[10:]) +
			"\r\n0\r\nX-Trailer: yes\r\n\r\n", small},
		{"empty body", "0\r\n\r\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uniqueID("chunked")
			c := dialRaw(t, g.ProxyAddr)
			resp, got := c.roundTrip(request("POST", "/sink", "Transfer-Encoding: chunked", "X-Test-Id: "+id) + tc.encoded)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, body %q", resp.StatusCode, tail(string(got), 300))
			}
			h := patternSHA(int64(len(tc.want)))
			if s := decodeSink(t, got); s.Bytes != int64(len(tc.want)) || s.SHA256 != h {
				t.Errorf("origin got %d bytes sha %s, want %d sha %s", s.Bytes, s.SHA256, len(tc.want), h)
			}
			if s := seen(t, o, id); s.Requests != 1 {
				t.Errorf("origin saw %d requests, want exactly 1", s.Requests)
			}
		})
	}
}

func TestChunkedResponse(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	client := newClient(t, 30*time.Second)
	for _, n := range []int64{0, 1, 3 << 20} {
		t.Run(strconv.FormatInt(n, 10), func(t *testing.T) {
			resp, err := client.Get(g.URL(fmt.Sprintf("/bytes?n=%d&chunked=1", n)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if _, err := checkPattern(resp.Body, n); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	t.Parallel()
	ors := startOrigins(t, "a", "b")
	g := startGozer(t, oneOrigin(nil, ors[0].Addr, ors[1].Addr))
	client := newClient(t, 10*time.Second)
	count := map[string]int{}
	// The balancer (P2C) breaks ties between idle servers at random: 20
	// requests fell below a quarter on one side about once in 25 runs; with
	// 200, a quarter is ~7 standard deviations away.
	const n = 200
	for range n {
		resp, err := client.Get(g.URL("/"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		count[resp.Header.Get("X-Origin-Name")]++
	}
	if count["a"] < n/4 || count["b"] < n/4 || count["a"]+count["b"] != n {
		t.Errorf("answers per server over %d requests: %v; want both a and b to take a fair share", n, count)
	}
}

func TestHostRouting(t *testing.T) {
	t.Parallel()
	ors := startOrigins(t, "api", "static", "web")
	g := startGozer(t, config{
		Origins: map[string]originConfig{
			"api": {Servers: []string{ors[0].Addr}}, "static": {Servers: []string{ors[1].Addr}}, "web": {Servers: []string{ors[2].Addr}},
		},
		Routes: []route{
			{Host: "api.example.com", PathPrefix: "/", Origin: "api"},
			{PathPrefix: "/static/", Origin: "static"},
			{PathPrefix: "/", Origin: "web"},
		},
	})
	tests := []struct{ host, path, want string }{
		{"api.example.com", "/static/x", "api"}, // first match wins
		{"api.example.com", "/v1/users", "api"},
		{"www.example.com", "/static/app.js", "static"},
		{"www.example.com", "/", "web"},
		{"other.test", "/staticky", "web"},
	}
	for _, tc := range tests {
		t.Run(tc.host+tc.path, func(t *testing.T) {
			c := dialRaw(t, g.ProxyAddr)
			resp, _ := c.roundTrip("GET " + tc.path + " HTTP/1.1\r\nHost: " + tc.host + "\r\n\r\n")
			if got := resp.Header.Get("X-Origin-Name"); resp.StatusCode != 200 || got != tc.want {
				t.Errorf("status %d from origin %q, want 200 from %q", resp.StatusCode, got, tc.want)
			}
		})
	}
}

// TestConcurrentClients: many clients at once, each on its own keep-alive connection,
// each getting back exactly its own body.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	const clients, perClient = 32, 16
	tr := &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perClient {
				want := []byte(strings.Repeat(fmt.Sprintf("client %d request %d;", i, j), 1+(i*perClient+j)%2000))
				resp, err := client.Post(g.URL("/echo"), "text/plain", bytes.NewReader(want))
				if err != nil {
					errs <- fmt.Errorf("client %d request %d: %w", i, j, err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, want) {
					errs <- fmt.Errorf("client %d request %d: status %d, %d bytes back for %d sent, read error %v",
						i, j, resp.StatusCode, len(got), len(want), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
