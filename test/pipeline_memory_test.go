package test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPipeliningClientThatDoesNotRead: a client pipelines many requests whose
// answers add up to far more than Gozer may hold, and reads nothing for a while.
// Gozer must stop taking its next requests while the answers wait (memory stays
// bounded), then serve every one of them, in order, once the client reads.
func TestPipeliningClientThatDoesNotRead(t *testing.T) {
	plainGozer(t)
	if testing.Short() {
		t.Skip("300 MiB of answers; runs without -short")
	}
	g := streamingGozer(t)
	const (
		// Small answers: each one arrives from the origin in one read and is done
		// at once, so only the check between exchanges can hold the next request.
		// 40000 x 3 kB = 120 MB of answers if Gozer kept taking requests.
		requests = 40000
		size     = 3000
		bound    = 64 << 20
	)
	c := dialRaw(t, g.ProxyAddr)
	var all strings.Builder
	for i := 0; i < requests; i++ {
		all.WriteString(request("GET", fmt.Sprintf("/bytes?n=%d&i=%d", size, i)))
	}
	// Gozer stops reading once its answers pile up, so the write blocks: it runs on
	// its own goroutine and ends when the test closes the connection.
	go func() { _ = c.write(all.String()) }()

	rss := sampleRSS(g.process)
	<-time.After(3 * time.Second) // the sampling window, while the client reads nothing
	rss.done(t, "pipelining client not reading")
	if rss.max > bound {
		t.Errorf("gozer RSS reached %d MiB while the client read nothing: answers pile up (bound %d MiB)", rss.max>>20, bound>>20)
	}

	_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	br := bufio.NewReaderSize(c.br, 64<<10)
	for i := 0; i < requests; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size || resp.StatusCode != 200 {
			t.Fatalf("response %d: status %d, %d bytes, err %v; want 200 with %d bytes", i, resp.StatusCode, n, err, size)
		}
	}
}

// TestPipelinedLocalAnswers: one write of 50,000 pipelined requests that
// Gozer answers itself (404: no route). Each used to begin the next from
// inside its own end, recursively: thousands deep on the loop's stack, every
// exchange kept until the recursion unwound. Now a callback begins at most a
// few and queues the rest as a callback of its own: all are answered, in
// order, and the loop's stack stays small; the process log names the 404s'
// cause once per 10 s. (Other clients of the loop still wait for the whole
// pipeline: gateway/http1/pipeline.go says why.) The stack (go_memstats_stack_inuse_bytes, sampled while the
// answers come) is what is asserted: the recursion grew it by megabytes
// whatever the machine's load, where RSS also moves with the collector's pace.
func TestPipelinedLocalAnswers(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "pipelined")
	cfg := oneOrigin(nil, o.Addr)
	cfg.Routes = []route{{PathPrefix: "/api/", Origin: "demo"}}
	cfg.Server = map[string]string{"event_loops": "1"}
	g := startGozer(t, cfg)
	const requests = 50000
	c := dialRaw(t, g.ProxyAddr)
	all := strings.Repeat("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", requests)
	stack := func() float64 {
		resp, err := g.adminClient.Get(g.adminURL("/metrics"))
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "go_memstats_stack_inuse_bytes "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return 0
	}
	base := stack()
	if base == 0 {
		t.Fatal("no go_memstats_stack_inuse_bytes in /metrics")
	}
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if v := int64(stack()); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	go func() { _ = c.write(all) }()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	br := bufio.NewReaderSize(c.br, 64<<10)
	for i := range requests {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("answer %d: status %d, want 404", i, resp.StatusCode)
		}
	}
	close(stop)
	<-sampled
	t.Logf("goroutine stacks: %d KiB before, peak %d KiB", int64(base)>>10, peak.Load()>>10)
	if grew := peak.Load() - int64(base); grew > 1<<20 {
		t.Errorf("the goroutine stacks grew by %d KiB answering one client's pipeline: recursion", grew>>10)
	}
	// The process log names the cause once per 10 s, not 50,000 times (a
	// scanner's random paths must not flood it).
	if n := g.countLog("request failed", "FAILURE_LOCAL_NO_ROUTE"); n < 1 || n > 6 {
		t.Errorf("%d process-log lines for the 404s, want one per 10 s", n)
	}
}
