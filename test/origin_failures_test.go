package test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestOriginFailures(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "o1")
	tests := []struct {
		name       string
		cfg        config
		host, path string
		wantStatus int
		wantCause  string
	}{
		{"nothing listening", oneOrigin(map[string]string{"retries": "0"}, closedPort(t)), "gozer.test", "/",
			502, "FAILURE_ORIGIN_CONNECTIVITY"},
		{"nothing listening, retried", oneOrigin(map[string]string{"retries": "2"}, closedPort(t), closedPort(t)), "gozer.test", "/",
			502, "FAILURE_ORIGIN_CONNECTIVITY"},
		{"origin silent past read_timeout", oneOrigin(map[string]string{"read_timeout": "1s"}, o.Addr), "gozer.test", "/hang",
			504, "FAILURE_ORIGIN_READ_TIMEOUT"},
		{"origin resets before answering", oneOrigin(nil, o.Addr), "gozer.test", "/reset",
			502, "FAILURE_ORIGIN_RESET"},
		{"no route matches", config{
			Origins: map[string]originConfig{"api": {Servers: []string{o.Addr}}},
			Routes:  []route{{Host: "api.example.com", PathPrefix: "/", Origin: "api"}},
		}, "www.example.com", "/", 404, "FAILURE_LOCAL_NO_ROUTE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := startGozer(t, tc.cfg)
			c := dialRaw(t, g.ProxyAddr)
			resp, body := c.roundTrip("GET " + tc.path + " HTTP/1.1\r\nHost: " + tc.host + "\r\n\r\n")
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d; body %q", resp.StatusCode, tc.wantStatus, tail(string(body), 200))
			}
			wantGozerStatus(t, resp, tc.wantCause)
			if id := resp.Header.Get("X-Request-Id"); id == "" {
				t.Errorf("error response has no X-Request-Id to trace it by")
			}
		})
	}
}

// TestOriginFailsMidBody: the origin has answered 200 and sent half of a 1 MiB body,
// then hangs up or goes silent past read_timeout. The client must not be handed a
// short body as if it were whole, nor be left waiting: its connection is closed.
func TestOriginFailsMidBody(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, map[string]string{"read_timeout": "1s"})
	client := newClient(t, 20*time.Second)
	const n = 1 << 20
	tests := []struct{ name, path string }{
		{"origin closes", fmt.Sprintf("/close-mid?n=%d", n)},
		{"origin silent past read_timeout", fmt.Sprintf("/slow-body?n=%d&delay=8s", n)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Get(g.URL(tc.path))
			if err != nil {
				return // no response at all is also not a complete body
			}
			defer resp.Body.Close()
			got, err := io.Copy(io.Discard, resp.Body)
			if err == nil {
				t.Fatalf("read %d bytes and a clean end of body (status %d); want unexpected EOF before %d bytes", got, resp.StatusCode, n)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("after %d bytes the client was left waiting (%v): the connection should have been closed", got, err)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Logf("body read error: %v (unexpected EOF was expected; still not a complete body)", err)
			}
			if got >= n {
				t.Errorf("got %d bytes, want fewer than %d", got, n)
			}
		})
	}
}

// TestRetryOnConnectFailure: one of two servers is down; with retries 1 every request
// still succeeds, and the access log shows the second attempt on the healthy one.
func TestRetryOnConnectFailure(t *testing.T) {
	t.Parallel()
	healthy := startOrigin(t, "healthy")
	// Round robin, so that each loop's walk reaches the dead server within two
	// requests; the bound below still covers any loop placement of the connections.
	g := startGozer(t, oneOrigin(map[string]string{"retries": "1", "balancer": "round_robin"}, closedPort(t), healthy.Addr))
	const maxRequests = 16
	var retried []accessLine
	for i := 0; i < maxRequests && len(retried) == 0; i++ {
		// A new connection each time, so that every loop's walk advances.
		id := uniqueID(fmt.Sprintf("retry%d", i))
		c := dialRaw(t, g.ProxyAddr)
		resp, _ := c.roundTrip(request("GET", "/", "X-Request-Id: "+id, "Connection: close"))
		if resp.StatusCode != 200 || resp.Header.Get("X-Origin-Name") != "healthy" {
			t.Fatalf("request %d: status %d from %q, want 200 from healthy", i, resp.StatusCode, resp.Header.Get("X-Origin-Name"))
		}
		for _, l := range g.waitAccessLog(t, "request "+id, byRequestID(id)) {
			if a, _ := l.num("attempts"); a == 2 {
				retried = append(retried, l)
			}
		}
	}
	if len(retried) == 0 {
		t.Fatalf("no access-log line with attempts 2 among %d requests; log:\n%s", maxRequests, tail(g.stdout.String(), 3000))
	}
	for _, l := range retried {
		if l.str("server") != healthy.Addr {
			t.Errorf("retried request logged server %q, want the healthy %s", l.str("server"), healthy.Addr)
		}
	}
}

// TestOriginStatusIsNotAGozerFailure: an origin's own error answer passes through as
// the origin sent it, without being reported as a gateway failure.
func TestOriginStatusIsNotAGozerFailure(t *testing.T) {
	t.Parallel()
	g, _ := proxied(t, nil, nil)
	client := newClient(t, 10*time.Second)
	resp, err := client.Get(g.URL("/status?code=500"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || string(body) != "status 500 from demo-origin o1\n" {
		t.Errorf("got %d %q, want the origin's own 500", resp.StatusCode, body)
	}
	if s := resp.Header.Get("X-Gozer-Status"); strings.HasPrefix(s, "FAILURE_") {
		t.Errorf("X-Gozer-Status %q blames the gateway for the origin's own answer", s)
	}
}
