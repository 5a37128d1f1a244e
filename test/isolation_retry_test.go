package test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRetryGoesToAnotherServer: of two servers one fails every request; a GET that
// meets it is retried on the other and the user gets the other's 200, with
// X-Gozer-Attempts: 2 and the access log saying attempts 2 on the healthy server.
func TestRetryGoesToAnotherServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode fakeMode
	}{
		{"reset before any byte", fakeReset},
		{"503 to an idempotent GET", fakeFail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bad, good := startFakeOrigin(t, "bad", tc.mode), startFakeOrigin(t, "good", fakeServe)
			g := startGozer(t, oneOrigin(map[string]string{
				"retries":  "1",
				"balancer": "round_robin",
				"outlier":  "{consecutive_failures: -1}", // keep the bad server in rotation
			}, bad.Addr, good.Addr))
			client := isolationClient(t, 10*time.Second)
			var retried []clientReply
			for i := range 10 {
				r := doGet(client, g.URL(fmt.Sprintf("/retry/%d", i)), "X-Request-Id: "+uniqueID("retry"))
				if r.Status != 200 || r.From != "good" || r.Cause != "SUCCESS" {
					t.Fatalf("request %d: %v; want 200 SUCCESS from the good server", i, r)
				}
				switch r.Attempts {
				case 1:
				case 2:
					retried = append(retried, r)
				default:
					t.Errorf("request %d: X-Gozer-Attempts %d, want 1 or 2", i, r.Attempts)
				}
			}
			if len(retried) == 0 {
				t.Fatalf("round robin over 2 servers: none of 10 requests met the bad server first (bad saw %d)", bad.count())
			}
			if got := bad.count(); got != int64(len(retried)) {
				t.Errorf("the bad server saw %d attempts, but %d responses said X-Gozer-Attempts: 2", got, len(retried))
			}
			for _, r := range retried {
				for _, l := range g.waitAccessLog(t, "request "+r.ID, byRequestID(r.ID)) {
					if a, _ := l.num("attempts"); a != 2 || l.str("server") != good.Addr {
						t.Errorf("access log of a retried request: attempts %v server %q; want 2 and %s", l["attempts"], l.str("server"), good.Addr)
					}
					// Every attempt is in the log: the bad server failed, the good one answered.
					log, _ := l["attempt_log"].([]any)
					if len(log) != 2 {
						t.Errorf("attempt_log %v: want 2 attempts", l["attempt_log"])
						continue
					}
					first, _ := log[0].(map[string]any)
					second, _ := log[1].(map[string]any)
					if first["server"] != bad.Addr || first["result"] != "failed" || second["server"] != good.Addr || second["result"] != "ok" {
						t.Errorf("attempt_log %v: want %s failed, then %s ok", log, bad.Addr, good.Addr)
					}
					if _, ok := first["duration_us"].(float64); !ok {
						t.Errorf("attempt_log %v: no duration_us", log)
					}
				}
			}
		})
	}
}

// TestRetryNotForPostAfterReadTimeout: server 1 reads the request and never answers,
// server 2 would answer. A POST whose body was sent is not retried when server 1's
// read timeout strikes (the origin may have acted on it): the client gets 504 and
// server 2 never sees the POST. A GET in the same spot is retried and succeeds.
func TestRetryNotForPostAfterReadTimeout(t *testing.T) {
	t.Parallel()
	hole, good := startFakeOrigin(t, "hole", fakeBlackHole), startFakeOrigin(t, "good", fakeServe)
	g := startGozer(t, oneOrigin(map[string]string{
		"retries":      "1",
		"read_timeout": "1s",
		"balancer":     "round_robin",
		"outlier":      "{consecutive_failures: -1}",
		"breaker":      "{enabled: false}",
	}, hole.Addr, good.Addr))
	client := isolationClient(t, 20*time.Second)
	body := bytes.Repeat([]byte("post body "), 400) // 4000 bytes, well under replay_body_bytes

	// Round robin alternates; a request that went to the good server first tells
	// nothing, so try until one meets the black hole first.
	tests := []struct {
		method  string
		body    []byte
		retried bool
	}{
		{"POST", body, false},
		{"GET", nil, true},
	}
	for _, tc := range tests {
		met := false
		for try := 0; try < 6 && !met; try++ {
			id := uniqueID(strings.ToLower(tc.method))
			r := doRequest(client, tc.method, g.URL("/order"), tc.body, "X-Test-Id: "+id, "X-Request-Id: "+id)
			if hole.seenID(id).Requests == 0 {
				if r.Status != 200 || r.From != "good" {
					t.Errorf("%s straight to the good server: %v", tc.method, r)
				}
				continue
			}
			met = true
			if h := hole.seenID(id); h.Method != tc.method || h.BodyBytes != int64(len(tc.body)) {
				t.Errorf("%s: the black hole got %+v; want the whole %d-byte body", tc.method, h, len(tc.body))
			}
			attempts := 1
			if tc.retried {
				attempts = 2
				if r.Status != 200 || r.From != "good" || r.Attempts != 2 {
					t.Errorf("GET after a read timeout: %v; want 200 from the good server, X-Gozer-Attempts: 2", r)
				}
				if n := good.seenID(id).Requests; n != 1 {
					t.Errorf("the good server saw the retried GET %d times, want 1", n)
				}
			} else {
				if r.Status != 504 || r.Cause != "FAILURE_ORIGIN_READ_TIMEOUT" || r.Attempts != 1 {
					t.Errorf("POST after a read timeout: %v; want 504 FAILURE_ORIGIN_READ_TIMEOUT, X-Gozer-Attempts: 1", r)
				}
				if s := good.seenID(id); s.Requests != 0 {
					t.Errorf("the POST was retried: the good server saw it too (%+v)", s)
				}
			}
			for _, l := range g.waitAccessLog(t, tc.method+" "+id, byRequestID(id)) {
				if a, _ := l.num("attempts"); int(a) != attempts {
					t.Errorf("access log of the %s: attempts %v, want %d", tc.method, l["attempts"], attempts)
				}
			}
		}
		if !met {
			t.Errorf("no %s met the black-holed server first in 6 tries (round robin over 2 servers)", tc.method)
		}
	}
}

// TestRetryBudgetCapsRetriesUnderOutage: every server resets every request, retries
// 2 would triple the load; the retry budget (ratio 0.2, min_per_second 1, window 10s)
// keeps the attempts the origin servers see to requests × 1.2 + 10.
func TestRetryBudgetCapsRetriesUnderOutage(t *testing.T) {
	t.Parallel()
	const (
		requests = 100
		ratio    = 0.2
		minPerS  = 1
		window   = 10 // seconds
	)
	var servers []*fakeOrigin
	for i := range 3 {
		servers = append(servers, startFakeOrigin(t, fmt.Sprintf("s%d", i), fakeReset))
	}
	g := startGozer(t, oneOrigin(map[string]string{
		"retries":      "2",
		"retry_budget": fmt.Sprintf("{ratio: %v, min_per_second: %d, window: %ds}", ratio, minPerS, window),
		"breaker":      "{enabled: false}", // let every request through to the origin
		"outlier":      "{consecutive_failures: -1}",
	}, fakeAddrs(servers...)...))
	client := isolationClient(t, 10*time.Second)
	start := time.Now()
	headerSum, single := 0, 0
	for i := range requests {
		r := doGet(client, g.URL(fmt.Sprintf("/outage/%d", i)))
		if r.Status != 502 || r.Cause != "FAILURE_ORIGIN_RESET" {
			t.Fatalf("request %d: %v; want 502 FAILURE_ORIGIN_RESET", i, r)
		}
		headerSum += r.Attempts
		if r.Attempts == 1 {
			single++
		}
	}
	took := time.Since(start)
	var seen int64
	for _, s := range servers {
		seen += s.count()
	}
	bound := int64(requests*(1+ratio) + minPerS*window)
	t.Logf("%d requests in %v: the servers saw %d attempts (bound %d, %d without a budget); %d requests were not retried",
		requests, took.Round(time.Millisecond), seen, bound, requests*3, single)
	if took > window*time.Second {
		t.Logf("the requests took longer than the %ds window: the bound is looser than computed", window)
	}
	if seen > bound {
		t.Errorf("the origin saw %d attempts for %d requests; the retry budget allows at most %d", seen, requests, bound)
	}
	if seen <= requests {
		t.Errorf("the origin saw %d attempts for %d requests: no retry at all, though the budget allows some", seen, requests)
	}
	if int64(headerSum) != seen {
		t.Errorf("X-Gozer-Attempts add up to %d, the servers saw %d attempts", headerSum, seen)
	}
}

// TestServerKilledUnderLoadDefaultRetries: an origin of two servers whose config
// leaves retries out; one server is killed (SIGKILL) while clients keep sending
// GETs. The default (one retry) sends every connect failure and every reset
// before a response byte to the other server: the clients see no error at all.
func TestServerKilledUnderLoadDefaultRetries(t *testing.T) {
	t.Parallel()
	victim, survivor := startOrigin(t, "victim"), startOrigin(t, "survivor")
	g := startGozer(t, oneOrigin(nil, victim.Addr, survivor.Addr)) // no retries key
	client := isolationClient(t, 10*time.Second)

	var mu sync.Mutex
	var total, fromVictim int
	var failures []clientReply
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := doGet(client, g.URL(fmt.Sprintf("/headers?w=%d&i=%d", w, i)))
				mu.Lock()
				total++
				if r.Status != 200 {
					failures = append(failures, r)
				}
				if r.From == "victim" {
					fromVictim++
				}
				mu.Unlock()
			}
		})
	}
	count := func() (int, int) { mu.Lock(); defer mu.Unlock(); return total, fromVictim }
	// Both servers take traffic, and the pools hold connections to both.
	waitFor(t, 10*time.Second, "both servers answer under load", func() bool {
		n, v := count()
		return n >= 200 && v >= 20
	})
	_ = victim.cmd.Process.Kill()
	<-victim.done
	before, _ := count()
	waitFor(t, 20*time.Second, "400 more requests after the kill", func() bool {
		n, _ := count()
		return n >= before+400
	})
	close(stop)
	wg.Wait()
	n, _ := count()
	if len(failures) > 0 {
		t.Errorf("%d of %d GETs failed around the kill of one of two servers, want 0; first: %v",
			len(failures), n, failures[0])
	}
	t.Logf("%d GETs, %d before the kill", n, before)
}
