package test

import (
	"testing"
	"time"
)

// Slow clients (issue 11): each attack reproduced at a scale the suite can
// afford, next to an ordinary client that must keep being served. bench/
// slowclients.sh runs the same attacks with 4,000 connections.

// TestSlowUploadsHoldNoOrigin: R.U.D.Y. Hundreds of connections announce an
// 8 KiB body and trickle it. Their bodies are received before the request
// takes an origin connection (request_buffer), so they hold none of the
// origin's 20 connections and ordinary requests keep being answered; each is
// ended by the minimum body rate with a 408 naming the cause, and counted.
func TestSlowUploadsHoldNoOrigin(t *testing.T) {
	t.Parallel()
	const attackers = 200
	o := startOrigin(t, "rudy")
	cfg := oneOrigin(map[string]string{"max_connections_per_server": "10"}, o.Addr)
	cfg.Server = map[string]string{"min_body_rate": "1KiB", "rate_window": "4s"}
	g := startGozer(t, cfg)

	atk := slowBodies(t, g.ProxyAddr, attackers, 200*time.Millisecond)
	atk.ready.Wait()
	waitFor(t, 10*time.Second, "every attacker connected", func() bool { return g.adminEdge(t).Connections >= attackers })
	tr := ordinary(t, g, "/", 300, 4)
	during := g.adminEdge(t)
	conns := g.adminOrigin(t, "demo").Servers[0].Connections

	if tr.successRate() < 0.99 {
		t.Errorf("ordinary requests during the attack: %d ok, %d failed %v; want at least 99%% ok", tr.ok, tr.failed, tr.failures)
	}
	if during.Connections < attackers {
		t.Fatalf("only %d connections open while the ordinary client ran: the attack was over before it was measured", during.Connections)
	}
	if conns > 8 {
		t.Errorf("%d origin connections open during the attack, want only the ordinary client's few (at most 8)", conns)
	}
	ends := atk.wait(t, attackers, 30*time.Second)
	for _, e := range ends {
		if e.status != 408 || e.cause != "FAILURE_CLIENT_BODY_TOO_SLOW" {
			t.Fatalf("an attacker ended with %d %q (%v) after %v, want 408 FAILURE_CLIENT_BODY_TOO_SLOW", e.status, e.cause, e.err, e.alive)
		}
		if e.alive < 3*time.Second {
			t.Fatalf("an attacker was closed after %v, before its first rate window (4s) ended", e.alive)
		}
	}
	if n := g.adminOrigin(t, "demo").Requests["FAILURE_CLIENT_BODY_TOO_SLOW"]; n != attackers {
		t.Errorf("/admin/origins counts %d FAILURE_CLIENT_BODY_TOO_SLOW, want %d", n, attackers)
	}
	// The process log says it once (per cause and 10 s), not 200 times.
	if n := g.countLog("FAILURE_CLIENT_BODY_TOO_SLOW"); n != 1 {
		t.Errorf("%d process-log lines name FAILURE_CLIENT_BODY_TOO_SLOW, want 1 (sampled)", n)
	}
}

// TestSlowUploadsControl shows the attack above is real: with the body
// streamed to the origin at once (request_buffer: 0) and no minimum rate, the
// same slow uploads take the origin's connections and ordinary requests fail.
func TestSlowUploadsControl(t *testing.T) {
	t.Parallel()
	// 80 attackers for 20 origin connections (10 per loop): the kernel spreads
	// connections over the loops by a hash, and with 40 one loop could get
	// fewer than its 10 (then ordinary requests on it would be served and the
	// wait below would time out at 19 connections).
	const attackers = 80
	o := startOrigin(t, "rudy-control")
	cfg := oneOrigin(map[string]string{"max_connections_per_server": "10", "request_buffer": "0"}, o.Addr)
	cfg.Server = map[string]string{"min_body_rate": "0", "header_read_timeout": "60s"}
	g := startGozer(t, cfg)
	atk := slowBodies(t, g.ProxyAddr, attackers, 200*time.Millisecond)
	atk.ready.Wait()
	var held int64
	if !eventually(10*time.Second, func() bool {
		held = g.adminOrigin(t, "demo").Servers[0].Connections
		return held >= 20 // 10 per loop, 2 loops
	}) {
		t.Fatalf("the attackers hold %d origin connections after 10s, want all 20 (10 per loop): %+v", held, g.adminOrigin(t, "demo").Requests)
	}
	if tr := ordinary(t, g, "/", 100, 4); tr.successRate() > 0.5 {
		t.Fatalf("ordinary requests did fine (%d ok of %d) against slow uploads streamed to the origin: the attack in TestSlowUploadsHoldNoOrigin proves nothing",
			tr.ok, tr.ok+tr.failed)
	}
}

// TestSlowReaders: hundreds of connections ask for 16 MiB each (more than the
// kernel's socket buffers absorb) and read none of it. Each holds at most about one allowance (max_buffered_per_conn, 64
// KiB) in Gozer, its origin connection paused, and the node's count of what
// they hold stays within that; the minimum send rate resets them after a
// rate window, counted; ordinary requests keep being answered meanwhile.
func TestSlowReaders(t *testing.T) {
	t.Parallel()
	raceAlso(t, testSlowReaders)
}

func testSlowReaders(t *testing.T) {
	const readers = 200
	o := startOrigin(t, "slowread")
	cfg := oneOrigin(map[string]string{"max_connections_per_server": "1000"}, o.Addr)
	// A small socket send buffer keeps the kernel from absorbing megabytes per
	// reader (the default autotunes up to 4 MiB): cheap for CI, and what is
	// measured is Gozer's own memory.
	cfg.Server = map[string]string{"min_send_rate": "1KiB", "rate_window": "8s", "memory_reclaim_interval": "0s",
		"socket_send_buffer": "64KiB"}
	g := startGozer(t, cfg)
	for range 3 { // warm: pools, buffers, the first collections
		ordinary(t, g, "/bytes?n=65536", 20, 4)
	}
	base := settledRSS(t, g)

	atk := slowReaders(t, g.ProxyAddr, readers, 16<<20)
	atk.ready.Wait()
	if !eventually(10*time.Second, func() bool { return g.adminEdge(t).Parked >= readers }) {
		t.Fatalf("not every reader's origin connection was paused behind it: %+v", g.adminEdge(t))
	}
	held := g.adminEdge(t)
	rss, _ := g.rss()
	tr := ordinary(t, g, "/", 300, 4)

	if tr.successRate() < 0.99 {
		t.Errorf("ordinary requests during the attack: %d ok, %d failed %v; want at least 99%% ok", tr.ok, tr.failed, tr.failures)
	}
	if max := int64(readers) * 64 << 10; held.Buffered > max {
		t.Errorf("/admin/edge buffered_bytes %d with %d slow readers, want at most one allowance each (%d)", held.Buffered, readers, max)
	}
	// What a reader costs beyond its buffer: its connection, its exchange, its
	// paused origin connection. The bench measures this at 4,000 readers.
	perReader := (rss - base) / readers
	t.Logf("RSS %d MiB -> %d MiB with %d slow readers: %d KiB each; buffered %d KiB each",
		base>>20, rss>>20, readers, perReader>>10, held.Buffered/readers>>10)
	if perReader > 128<<10 {
		t.Errorf("RSS grew %d KiB per slow reader, want at most 128 KiB (64 KiB allowance and the connections)", perReader>>10)
	}
	ends := atk.wait(t, readers, 30*time.Second)
	for _, e := range ends {
		if e.alive < 7*time.Second {
			t.Fatalf("a reader was closed after %v, before its first rate window (8s) ended", e.alive)
		}
	}
	if n := g.adminOrigin(t, "demo").Requests["FAILURE_CLIENT_READ_TOO_SLOW"]; n != readers {
		t.Errorf("/admin/origins counts %d FAILURE_CLIENT_READ_TOO_SLOW, want %d", n, readers)
	}
	waitFor(t, 10*time.Second, "the paused origin connections to be let go", func() bool {
		e := g.adminEdge(t)
		return e.Parked == 0 && e.Buffered == 0
	})
}

// TestSlowReadersCannotTakeAnOrigin: slow readers may hold at most half of a
// server's connections (per loop); the ones beyond are closed at once
// (FAILURE_LOCAL_TOO_MANY_SLOW_READERS), so ordinary requests still find
// connections.
func TestSlowReadersCannotTakeAnOrigin(t *testing.T) {
	t.Parallel()
	const readers = 30
	o := startOrigin(t, "slowread-share")
	cfg := oneOrigin(map[string]string{"max_connections_per_server": "10"}, o.Addr)
	cfg.Server = map[string]string{"min_send_rate": "1KiB", "rate_window": "30s", "socket_send_buffer": "64KiB"}
	g := startGozer(t, cfg)
	// One after another, so that each finds the origin's connections as the
	// ones before left them: 5 per loop may stay, the other 50 are closed.
	for i := range readers {
		slowReaders(t, g.ProxyAddr, 1, 16<<20).ready.Wait()
		if !eventually(10*time.Second, func() bool {
			shed := g.adminOrigin(t, "demo").Requests["FAILURE_LOCAL_TOO_MANY_SLOW_READERS"]
			return g.adminEdge(t).Parked+shed == int64(i+1)
		}) {
			t.Fatalf("reader %d was neither held nor closed: %+v, %v", i+1, g.adminEdge(t), g.adminOrigin(t, "demo").Requests)
		}
	}
	if e := g.adminEdge(t); e.Parked != 10 {
		t.Errorf("%d origin connections paused behind slow readers, want 10 (half of 10 per loop, 2 loops)", e.Parked)
	}
	if tr := ordinary(t, g, "/", 200, 4); tr.successRate() < 0.99 {
		t.Errorf("ordinary requests: %d ok, %d failed %v; want at least 99%% ok", tr.ok, tr.failed, tr.failures)
	}
	if n := g.adminOrigin(t, "demo").Requests["FAILURE_LOCAL_TOO_MANY_SLOW_READERS"]; n != readers-10 {
		t.Errorf("/admin/origins counts %d FAILURE_LOCAL_TOO_MANY_SLOW_READERS, want %d", n, readers-10)
	}
}
