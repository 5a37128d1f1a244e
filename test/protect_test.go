package test

// Connection protection end to end (issue 16, point 3): the live deny list
// (admin API and Lua), the new-connection rate per client under a flood from
// one address while another client keeps its rate, and the cap on requests
// per connection.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dialSrc connects to addr from the loopback address src (127.0.0.2: a
// second client on one machine).
func dialSrc(src, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return d.Dial("tcp", addr)
}

// getFrom sends one GET on a new connection from src and returns the status
// (0: the connection was closed without an answer).
func getFrom(src, addr, path string) (int, error) {
	c, err := dialSrc(src, addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path); err != nil {
		return 0, nil // closed at accept: the write may fail
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func adminDo(t testing.TB, g *gozer, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, g.adminURL(path), strings.NewReader(body))
	resp, err := g.adminClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDenyList: POST /admin/deny closes 127.0.0.2's new connections at
// accept (and answers 403 on its open ones) while 127.0.0.1 is served;
// DELETE lifts it; ctx.deny from Lua does the same; all counted.
func TestDenyList(t *testing.T) {
	if _, err := dialSrc("127.0.0.2", "127.0.0.1:1"); err != nil && strings.Contains(err.Error(), "assign requested address") {
		t.Skip("no 127.0.0.2 on this machine")
	}
	o := startOrigin(t, "o")
	d := newScriptDir(t)
	d.write(t, "inbound", "ban.lua", `return { name = "ban", type = "inbound", order = 5,
  should_filter = function(ctx) return ctx.req.path == "/ban-me" end,
  apply = function(ctx)
    local ip = ctx.req.remote_addr:match("^(.*):%d+$")
    ctx.deny(ip, 60)
    ctx.respond(403, "banned\n")
  end }`)
	cfg := config{Origins: servers(o), Routes: []route{{PathPrefix: "/", Origin: "o"}},
		Filters: &filtersConfig{Dir: string(d), Budget: "1s"}, Extra: "protect:\n  deny: [\"192.0.2.0/24\"]\n"}
	g := startGozer(t, cfg)

	// An open keep-alive connection from .2, before the deny.
	kc, err := dialSrc("127.0.0.2", g.ProxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	kr := bufio.NewReader(kc)
	roundTrip := func() int {
		_ = kc.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(kc, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(kr, nil)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := roundTrip(); s != 200 {
		t.Fatalf("before the deny: %d", s)
	}

	if code, body := adminDo(t, g, "POST", "/admin/deny", `{"network": "127.0.0.2/32", "ttl": "1m"}`); code != 200 || !strings.Contains(body, `"127.0.0.2/32"`) || !strings.Contains(body, `"192.0.2.0/24"`) {
		t.Fatalf("POST /admin/deny: %d %s", code, body)
	}
	if s, _ := getFrom("127.0.0.2", g.ProxyAddr, "/x"); s != 0 {
		t.Errorf("denied client's new connection answered %d; want closed at accept", s)
	}
	if s, _ := getFrom("127.0.0.1", g.ProxyAddr, "/x"); s != 200 {
		t.Errorf("other client: %d; want 200", s)
	}
	if s := roundTrip(); s != 403 {
		t.Errorf("denied client's open connection: %d; want 403 FAILURE_CLIENT_DENIED", s)
	}
	if code, body := adminDo(t, g, "DELETE", "/admin/deny?network=127.0.0.2", ""); code != 200 || strings.Contains(body, "127.0.0.2") {
		t.Fatalf("DELETE /admin/deny: %d %s", code, body)
	}
	if s, _ := getFrom("127.0.0.2", g.ProxyAddr, "/x"); s != 200 {
		t.Errorf("after DELETE: %d; want 200", s)
	}
	if code, _ := adminDo(t, g, "DELETE", "/admin/deny?network=192.0.2.0/24", ""); code != 404 {
		t.Errorf("DELETE of a configured network: %d; want 404", code)
	}
	if code, _ := adminDo(t, g, "POST", "/admin/deny?network=not-an-ip", ""); code != 400 {
		t.Errorf("POST of a bad network: %d; want 400", code)
	}

	// Lua bans the client that asks for /ban-me.
	if s, _ := getFrom("127.0.0.2", g.ProxyAddr, "/ban-me"); s != 403 {
		t.Errorf("/ban-me: %d; want 403", s)
	}
	if s, _ := getFrom("127.0.0.2", g.ProxyAddr, "/x"); s != 0 {
		t.Errorf("after ctx.deny: %d; want closed at accept", s)
	}
	if s, _ := getFrom("127.0.0.1", g.ProxyAddr, "/x"); s != 200 {
		t.Errorf("other client after ctx.deny: %d; want 200", s)
	}
	v := g.adminLimits(t)
	if v.Connections.Denied < 3 {
		t.Errorf("denied_total %d; want ≥ 3 (two connections, one request)", v.Connections.Denied)
	}
	if m := value(t, scrapeMetrics(t, g), "gozer_denied_total"); m < 3 {
		t.Errorf("gozer_denied_total %v; want ≥ 3", m)
	}
}

// TestConnFlood: 127.0.0.2 opens new connections as fast as 4 dialers can
// (each sends a request) against protect.new_connections_per_ip 50; a client
// on 127.0.0.1 asking 300 requests per second on keep-alive connections keeps
// at least 90 % of what it gets alone, and the flood's connections over the
// rate are refused at accept and counted.
func TestConnFlood(t *testing.T) {
	plainGozer(t)
	if _, err := dialSrc("127.0.0.2", "127.0.0.1:1"); err != nil && strings.Contains(err.Error(), "assign requested address") {
		t.Skip("no 127.0.0.2 on this machine")
	}
	o := startOrigin(t, "o")
	cfg := oneOrigin(nil, o.Addr)
	cfg.Extra = "protect:\n  new_connections_per_ip: 50\n  new_connections_burst: 10\n"
	g := startGozer(t, cfg)

	// good asks rate requests per second for d on 2 keep-alive connections and
	// returns the share answered 200.
	good := func(d time.Duration) float64 {
		const rate = 300
		var ok, asked atomic.Int64
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Timeout: 2 * time.Second}
				defer c.CloseIdleConnections()
				tick := time.NewTicker(time.Second * 2 / rate)
				defer tick.Stop()
				for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
					asked.Add(1)
					resp, err := c.Get(g.URL("/x"))
					if err != nil {
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ok.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return float64(ok.Load()) / (rate * d.Seconds())
	}
	alone := good(2 * time.Second)

	stop := make(chan struct{})
	var flood, floodOK atomic.Int64
	var fwg sync.WaitGroup
	for range 4 {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				flood.Add(1)
				if s, _ := getFrom("127.0.0.2", g.ProxyAddr, "/x"); s == 200 {
					floodOK.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	under := good(3 * time.Second)
	close(stop)
	fwg.Wait()
	el := time.Since(start).Seconds()
	t.Logf("good client: %.1f%% of its asked rate alone, %.1f%% under a flood of %d connections (%d served) in %.1fs",
		100*alone, 100*under, flood.Load(), floodOK.Load(), el)
	if under < 0.9*alone {
		t.Errorf("good client under flood got %.1f%% of its rate, alone %.1f%%; want ≥ 90%% of alone", 100*under, 100*alone)
	}
	if want := 50*el + 10; float64(floodOK.Load()) > want*1.1+2 {
		t.Errorf("flooder served %d connections in %.1fs; want at most %.0f (50/s + burst 10)", floodOK.Load(), el, want)
	}
	v := g.adminLimits(t)
	if v.Connections.RefusedRate < flood.Load()-floodOK.Load()-1 || v.Connections.RefusedRate == 0 {
		t.Errorf("refused_rate_total %d; want about %d", v.Connections.RefusedRate, flood.Load()-floodOK.Load())
	}
	if n := strings.Count(g.output(), "too many new connections per second"); n < 1 || n > 3 {
		t.Errorf("%d log lines for %d refused connections; want 1 to 3 (sampled)", n, v.Connections.RefusedRate)
	}
}

// TestConnMaxRequests: protect.max_requests_per_connection 3: the third
// answer on a connection says Connection: close and the connection ends.
func TestConnMaxRequests(t *testing.T) {
	o := startOrigin(t, "o")
	cfg := oneOrigin(nil, o.Addr)
	cfg.Extra = "protect:\n  max_requests_per_connection: 3\n"
	g := startGozer(t, cfg)
	c, err := net.Dial("tcp", g.ProxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close != (i == 3) {
			t.Errorf("request %d: %d close=%v; want 200, close only on the third", i, resp.StatusCode, resp.Close)
		}
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("after the third answer: %v; want EOF", err)
	}
}

// TestProtectBehindProxyProtocol: behind a PROXY protocol balancer the
// socket's peer is the balancer, so the deny list and the new-connection
// rate apply to the client the header names: a denied network's connection
// is closed unanswered, a client over new_connections_per_ip gets 429, and
// another client behind the same balancer is served meanwhile.
func TestProtectBehindProxyProtocol(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "ppp")
	cfg := oneOrigin(nil, o.Addr)
	cfg.ProxyProtocol = true
	cfg.Extra = "protect:\n  deny: [\"203.0.113.0/24\"]\n  new_connections_per_ip: 1\n  new_connections_burst: 2\n"
	g := startGozer(t, cfg)
	// get opens a connection naming client and answers its status (0: closed
	// without an answer).
	get := func(client string) int {
		c := dialRaw(t, g.ProxyAddr)
		defer c.Close()
		_ = c.write(fmt.Sprintf("PROXY TCP4 %s 192.0.2.80 5555 80\r\n", client) + request("GET", "/counter"))
		resp, _, err := c.readResponse("GET")
		if err != nil {
			return 0
		}
		return resp.StatusCode
	}
	before := g.adminLimits(t).Connections
	if s := get("203.0.113.9"); s != 0 {
		t.Errorf("a denied client behind the balancer: %d; want closed without an answer", s)
	}
	if s := get("198.51.100.1"); s != 200 {
		t.Errorf("another client: %d; want 200", s)
	}
	// The burst is 2 at 1 per second: within a second, the third is refused
	// (the loop's buckets are per named client, not per balancer).
	got := []int{get("198.51.100.7"), get("198.51.100.7"), get("198.51.100.7")}
	if got[0] != 200 || got[2] != 429 {
		t.Errorf("three new connections naming 198.51.100.7 at once: %v; want 200 first and 429 last", got)
	}
	if s := get("198.51.100.2"); s != 200 {
		t.Errorf("another client after the flood: %d; want 200", s)
	}
	after := g.adminLimits(t).Connections
	if after.Denied <= before.Denied || after.RefusedRate <= before.RefusedRate {
		t.Errorf("counts: denied %d→%d, refused_rate %d→%d; want both up", before.Denied, after.Denied, before.RefusedRate, after.RefusedRate)
	}
	g.waitLog(t, "connection refused: client network denied")
	g.waitLog(t, "connection refused: too many new connections per second from one client")
}
