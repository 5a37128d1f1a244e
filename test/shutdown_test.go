package test

import (
	"maps"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdown: on SIGTERM (or SIGINT) Gozer stops accepting, lets the
// request in flight finish, closes idle connections and exits 0 within drain_timeout.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			gracefulShutdown(t, sig)
		})
	}
}

// TestGracefulShutdownAcceptOnLoops: the same drain when the loops accept
// (server.accept_on_loops): each loop's listening socket stops at SIGTERM (a
// new connection is refused) while the request in flight finishes.
func TestGracefulShutdownAcceptOnLoops(t *testing.T) {
	t.Parallel()
	gracefulShutdown(t, syscall.SIGTERM, map[string]string{"accept_on_loops": "true"})
}

// TestGracefulShutdownAcceptor: the same with the acceptor goroutines
// (server.accept_on_loops: false): their listeners close at SIGTERM.
func TestGracefulShutdownAcceptor(t *testing.T) {
	t.Parallel()
	gracefulShutdown(t, syscall.SIGTERM, map[string]string{"accept_on_loops": "false"})
}

func gracefulShutdown(t *testing.T, sig os.Signal, server ...map[string]string) {
	const drain = 10 * time.Second
	keys := map[string]string{"drain_timeout": drain.String()}
	for _, m := range server {
		maps.Copy(keys, m)
	}
	g, o := proxied(t, keys, nil)

	idle := dialRaw(t, g.ProxyAddr)
	if resp, _ := idle.roundTrip(request("GET", "/counter")); resp.StatusCode != 200 {
		t.Fatalf("request on the soon idle connection: %d", resp.StatusCode)
	}
	inflight := dialRaw(t, g.ProxyAddr)
	id := uniqueID("inflight")
	inflight.send(request("GET", "/slow?delay=2s", "X-Test-Id: "+id))
	waitFor(t, 10*time.Second, "the slow request reaches the origin", func() bool { return seen(t, o, id).Requests > 0 })

	sigterm := time.Now()
	if err := g.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}

	t.Run("new connections refused while draining", func(t *testing.T) {
		waitFor(t, 10*time.Second, "a new connection is refused while gozer still runs", func() bool {
			c, err := net.DialTimeout("tcp", g.ProxyAddr, time.Second)
			if err == nil {
				c.Close()
				return false
			}
			return !g.exited() // refused because it stopped listening, not because it is gone
		})
	})
	t.Run("in-flight request completes", func(t *testing.T) {
		resp, body := inflight.response("GET")
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "slow answer") {
			t.Errorf("in-flight request got %d %q, want the origin's 200", resp.StatusCode, body)
		}
	})
	t.Run("idle connection closed", func(t *testing.T) {
		idle.mustClose("idle keep-alive connection during shutdown")
	})
	t.Run("exits 0 within drain_timeout", func(t *testing.T) {
		code, ok := g.exitCode(time.Until(sigterm.Add(drain + 5*time.Second)))
		if !ok {
			t.Fatalf("gozer still running %v after SIGTERM (drain_timeout %v)", time.Since(sigterm).Round(time.Second), drain)
		}
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	})
}

// TestShutdownDrainTimeout: a request that never finishes does not keep Gozer from
// exiting once drain_timeout has passed; its client sees the connection closed.
func TestShutdownDrainTimeout(t *testing.T) {
	t.Parallel()
	const drain = time.Second
	g, o := proxied(t, map[string]string{"drain_timeout": drain.String()}, nil)
	hung := dialRaw(t, g.ProxyAddr)
	id := uniqueID("hung")
	hung.send(request("GET", "/hang", "X-Test-Id: "+id))
	waitFor(t, 10*time.Second, "the hanging request reaches the origin", func() bool { return seen(t, o, id).Requests > 0 })

	sigterm := time.Now()
	if err := g.cmd.Process.Signal(terminate); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.exitCode(time.Until(sigterm.Add(drain + 5*time.Second))); !ok {
		t.Fatalf("gozer still running %v after SIGTERM with drain_timeout %v", time.Since(sigterm).Round(time.Second), drain)
	}
	// The client may get an error answer before the close; either way the connection ends.
	if closed, why := hung.closedBy(10 * time.Second); !closed && !strings.Contains(why, "HTTP/1.1 5") {
		t.Errorf("client of the hung request: %s", why)
	}
}

// TestLogOutputStalledOrClosed: Gozer's stdout and stderr go to a pipe whose
// reader is a log collector that stalled (open, never read: the access log
// fills it) or died (closed: every write gets EPIPE). Either way Gozer keeps
// serving, counts what the access log loses
// (gozer_access_log_dropped_bytes_total: slow_sink, write_error), does not
// die of SIGPIPE at its next log line, and SIGTERM ends it with status 0
// within drain_timeout plus the logs' bounded closes (telemetry.CloseWait,
// 2 s each for the access log and the process log): the last lines are given
// up instead of holding the exit until SIGKILL.
func TestLogOutputStalledOrClosed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, reason, what string
		closeReader        bool
	}{
		{"stalled", "slow_sink", "access-log bytes dropped (the pipe and the writer's queue full)", false},
		{"closed", "write_error", "access-log writes failing (EPIPE)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plainGozer(t) // a race report could not be read from the pipe
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			g := outputGozer(t, w)
			if tc.closeReader {
				r.Close() // the collector is gone
			}
			floodUntil(t, g, tc.name, tc.what, tc.reason)
			stopWithin(t, g)
		})
	}
}

// outputGozer is a gozer whose stdout and stderr are w (closed here once
// Gozer has its copy).
func outputGozer(t *testing.T, w *os.File) *gozer {
	t.Helper()
	o := startOrigin(t, "o1")
	cfg := oneOrigin(nil, o.Addr)
	cfg.Output = w
	g := startGozer(t, cfg)
	w.Close()
	return g
}

// floodUntil sends requests in batches of 1,000 on four connections
// (ordinary), every one of which must be answered 200 while the log output
// is state, until gozer_access_log_dropped_bytes_total{reason} is above 0.
func floodUntil(t *testing.T, g *gozer, state, what, reason string) {
	t.Helper()
	waitFor(t, 90*time.Second, what, func() bool {
		if tr := ordinary(t, g, "/", 1000, 4); tr.failed > 0 {
			t.Fatalf("requests with the log output %s: %d ok, %d failed %v (gozer exited: %v)", state, tr.ok, tr.failed, tr.failures, g.exited())
		}
		return value(t, scrapeMetrics(t, g), "gozer_access_log_dropped_bytes_total", "reason", reason) > 0
	})
}

// stopWithin sends SIGTERM and wants status 0 within the harness's
// drain_timeout (2 s), both logs' bounded closes (2 s each) and some slack.
func stopWithin(t *testing.T, g *gozer) {
	t.Helper()
	if err := g.cmd.Process.Signal(terminate); err != nil {
		t.Fatal(err)
	}
	const drain = 2 * time.Second
	limit := drain + 2*2*time.Second + 6*time.Second
	code, ok := g.exitCode(limit)
	if !ok {
		t.Fatalf("gozer still running %v after SIGTERM with its log output stalled or closed (drain_timeout %v)", limit, drain)
	}
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}
