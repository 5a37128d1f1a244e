package test

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestMemoryComesBackAfterSlowReaders: a burst of slow readers (each asks for
// 16 MiB and reads nothing) makes Gozer hold their answers' buffers; once they
// leave, Gozer's RSS returns near its baseline on its own, without a forced
// collection from outside (server.memory_reclaim_interval, 2s here; 10s by
// default).
func TestMemoryComesBackAfterSlowReaders(t *testing.T) {
	plainGozer(t)
	if testing.Short() {
		t.Skip("300 connections holding ~100 MiB; runs without -short")
	}
	t.Parallel()
	o := startOrigin(t, "big")
	cfg := oneOrigin(map[string]string{"max_connections_per_server": "2000", "max_idle_per_server": "8"}, o.Addr)
	// Readers that read nothing are held (no minimum send rate), each with
	// 256 KiB of answer waiting: what is measured is the memory coming back.
	cfg.Server = map[string]string{"memory_reclaim_interval": "2s", "idle_timeout": "5m",
		"min_send_rate": "0", "max_buffered_per_conn": "256KiB"}
	g := startGozer(t, cfg)
	client := newClient(t, 10*time.Second)
	for i := range 20 { // warm: pools, buffers, the first GCs
		resp, err := client.Get(g.URL(fmt.Sprintf("/bytes?n=65536&i=%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	base := settledRSS(t, g)

	// Slow readers with a small receive buffer, so that their answers wait in
	// Gozer rather than in the kernel.
	const readers = 300
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		_ = c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	conns := make([]net.Conn, 0, readers)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range readers {
		c, err := d.Dial("tcp", g.ProxyAddr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := fmt.Fprintf(c, "GET /bytes?n=16777216&slow=%d HTTP/1.1\r\nHost: gozer.test\r\n\r\n", i); err != nil {
			t.Fatal(err)
		}
	}
	var peak int64
	if !eventually(20*time.Second, func() bool {
		r, _ := g.rss()
		peak = max(peak, r)
		return r > base+40<<20
	}) {
		t.Fatalf("gozer RSS %d MiB (baseline %d MiB) with %d slow readers: they do not make it hold buffers, so this test proves nothing",
			peak>>20, base>>20, readers)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]
	left := time.Now()
	var now int64
	if !eventually(60*time.Second, func() bool {
		now, _ = g.rss()
		return now < base+16<<20
	}) {
		t.Fatalf("gozer RSS still %d MiB a minute after %d slow readers left (baseline %d MiB, peak %d MiB)",
			now>>20, readers, base>>20, peak>>20)
	}
	t.Logf("RSS: baseline %d MiB, with %d slow readers %d+ MiB, %d MiB %v after they left",
		base>>20, readers, peak>>20, now>>20, time.Since(left).Round(100*time.Millisecond))
}

// settledRSS is Gozer's RSS once it stopped moving (two readings 500 ms apart
// within 1 MiB).
func settledRSS(t *testing.T, g *gozer) int64 {
	t.Helper()
	if g.unmeasured { // raceAlso's race pass: rss is 0, never settles
		return 0
	}
	var last int64
	eventually(10*time.Second, func() bool {
		r, err := g.rss()
		if err != nil {
			t.Fatal(err)
		}
		stable := last > 0 && r-last < 1<<20 && last-r < 1<<20
		last = r
		time.Sleep(500 * time.Millisecond)
		return stable
	})
	return last
}
