// Command isolation is the helper of bench/isolation.sh (stdlib only). It has three
// subcommands:
//
//	isolation origin -addrs A,B [-fail F -slow S -hole H ...]
//	    An HTTP origin on every address in -addrs. Each request draws its fate: a share
//	    -fail answers 503 at once, a share -slow answers 200 after a delay drawn
//	    uniformly from [-slow-min, -slow-max], a share -hole never answers (the
//	    request is held until the client gives up: a black hole), the rest answers 200
//	    at once. All shares 0 make a healthy origin (the "control" neighbour). GET
//	    /__ready always answers 200 and is not counted; GET /__stats (and SIGTERM or
//	    SIGINT, before it exits) prints what it did so far, one "key value" line each.
//
//	isolation load -url U [-rate R] [-conns C] -duration D
//	    A load generator for the neighbour traffic. With -rate > 0 it is open-loop:
//	    requests are scheduled at R per second whatever the answers, as a population of
//	    independent clients would send them, with at most -conns in flight (a request
//	    that finds them all busy is counted as "dropped", not sent). Latency counts from
//	    the scheduled send time, so a stalled answer is not hidden (no coordinated
//	    omission). With -rate 0 it is closed-loop: -conns connections each send the
//	    next request as soon as the last one is answered. It prints "running" when it
//	    starts, and at the end the status codes, Gozer's X-Gozer-Status causes, errors
//	    and latency percentiles, one "key value" line each.
//
//	isolation causes -url http://ADMIN/admin/origins
//	    Gozer's per-origin counters, one line each: "cause ORIGIN CAUSE N",
//	    "opens ORIGIN N" (breaker openings since start), "open ORIGIN 0|1",
//	    "inflight ORIGIN N", "refused ORIGIN N" (bulkhead refusals since start).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "origin":
		runOrigin(os.Args[2:])
	case "load":
		runLoad(os.Args[2:])
	case "causes":
		runCauses(os.Args[2:])
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: isolation origin|load|causes [flags]")
	os.Exit(2)
}

// --- origin ------------------------------------------------------------------------------

func runOrigin(args []string) {
	fs := flag.NewFlagSet("origin", flag.ExitOnError)
	addrs := fs.String("addrs", "127.0.0.1:18392", "comma-separated listen addresses (one server each)")
	fail := fs.Float64("fail", 0, "share of requests answered 503 at once")
	slow := fs.Float64("slow", 0, "share of requests answered 200 after a delay in [slow-min, slow-max]")
	hole := fs.Float64("hole", 0, "share of requests never answered (held until the client leaves)")
	slowMin := fs.Duration("slow-min", 200*time.Millisecond, "shortest delay of a slow answer")
	slowMax := fs.Duration("slow-max", 2*time.Second, "longest delay of a slow answer")
	holeMax := fs.Duration("hole-max", time.Minute, "a black-holed request is dropped after this long at the latest")
	bodyBytes := fs.Int("body", 128, "bytes of the 200 body")
	_ = fs.Parse(args)
	if *fail < 0 || *slow < 0 || *hole < 0 || *fail+*slow+*hole > 1 || *slowMax < *slowMin {
		fmt.Fprintln(os.Stderr, "origin: shares must be >= 0 and sum to <= 1, slow-max >= slow-min")
		os.Exit(2)
	}

	body := []byte(strings.Repeat("x", *bodyBytes))
	failBody := []byte("sick neighbour: 503\n")
	var nFast, nFail, nSlow, nSlowGone, nHole atomic.Int64
	stats := func() string {
		return fmt.Sprintf("fast %d\nfail503 %d\nslow %d\nslow_abandoned %d\nblackholed %d\n",
			nFast.Load(), nFail.Load(), nSlow.Load(), nSlowGone.Load(), nHole.Load())
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/__ready":
			w.WriteHeader(http.StatusOK)
			return
		case "/__stats":
			_, _ = io.WriteString(w, stats())
			return
		}
		x := rand.Float64()
		switch {
		case x < *fail:
			nFail.Add(1)
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(failBody)
			return
		case x < *fail+*slow:
			nSlow.Add(1)
			d := *slowMin + time.Duration(rand.Int64N(int64(*slowMax-*slowMin)+1))
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done(): // the gateway gave up (read timeout)
				nSlowGone.Add(1)
				return
			}
		case x < *fail+*slow+*hole:
			nHole.Add(1)
			t := time.NewTimer(*holeMax)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
			}
			// Never answer: close the connection without a response.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
				}
			}
			return
		default:
			nFast.Add(1)
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})

	var servers []*http.Server
	for _, a := range strings.Split(*addrs, ",") {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "origin: listen %s: %v\n", a, err)
			os.Exit(1)
		}
		srv := &http.Server{Handler: h, IdleTimeout: 10 * time.Minute, ErrorLog: nil}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(ln) }()
	}
	fmt.Printf("listening %s\n", *addrs)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	for _, s := range servers {
		_ = s.Close()
	}
	fmt.Print(stats())
}

// --- load --------------------------------------------------------------------------------

type tally struct {
	mu       sync.Mutex
	status   map[int]int64
	cause    map[string]int64
	errs     map[string]int64
	lat      []int32 // µs, completed requests (any status)
	okLat    []int32 // µs, 2xx only
	complete int64
}

func (t *tally) add(status int, cause string, err error, us int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.errs[errKind(err)]++
		return
	}
	t.complete++
	t.status[status]++
	if cause == "" {
		cause = "-"
	}
	t.cause[cause]++
	t.lat = append(t.lat, us)
	if status >= 200 && status < 300 {
		t.okLat = append(t.okLat, us)
	}
}

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return "reset_or_eof"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "other"
}

func pct(xs []int32, p float64) int32 {
	if len(xs) == 0 {
		return -1
	}
	i := int(p*float64(len(xs)) + 0.5)
	if i >= len(xs) {
		i = len(xs) - 1
	}
	return xs[i]
}

func runLoad(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	rawURL := fs.String("url", "http://127.0.0.1:18380/sick/", "URL to load (http only)")
	rate := fs.Float64("rate", 2000, "requests per second (open loop); 0 = closed loop on -conns connections")
	conns := fs.Int("conns", 256, "most requests in flight (open loop) / connections (closed loop)")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	timeout := fs.Duration("timeout", 5*time.Second, "client timeout per request")
	_ = fs.Parse(args)
	u, err := neturl.Parse(*rawURL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		fmt.Fprintf(os.Stderr, "load: bad -url %q\n", *rawURL)
		os.Exit(2)
	}
	// A plain HTTP/1.1 keep-alive client, one connection per worker: far cheaper than
	// net/http's Transport (two goroutines per connection and channel hand-offs per
	// request), which matters because it shares its core with wrk and the origins.
	req := []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: gozer-bench-isolation\r\n\r\n")
	t := &tally{status: map[int]int64{}, cause: map[string]int64{}, errs: map[string]int64{}}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	type clientConn struct {
		c  net.Conn
		br *bufio.Reader
	}
	one := func(cc **clientConn, sched time.Time) {
		if *cc == nil {
			c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
			if err != nil {
				t.add(0, "", err, 0)
				return
			}
			*cc = &clientConn{c: c, br: bufio.NewReaderSize(c, 4096)}
		}
		c := *cc
		fail := func(err error) {
			_ = c.c.Close()
			*cc = nil
			t.add(0, "", err, 0)
		}
		_ = c.c.SetDeadline(time.Now().Add(*timeout))
		if _, err := c.c.Write(req); err != nil {
			fail(err)
			return
		}
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			fail(err)
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			fail(err)
			return
		}
		us := int32(time.Since(sched) / time.Microsecond)
		t.add(resp.StatusCode, resp.Header.Get("X-Gozer-Status"), nil, us)
		if resp.Close {
			_ = c.c.Close()
			*cc = nil
		}
	}

	var scheduled, dropped int64
	var wg sync.WaitGroup
	fmt.Println("running")
	start := time.Now()
	end := start.Add(*duration)
	if *rate > 0 {
		// Free workers wait on a stack (LIFO) so that a few warm connections carry the
		// traffic while answers are fast, and more open only when requests pile up.
		type job struct{ sched time.Time }
		var mu sync.Mutex
		var idle []chan job
		for i := 0; i < *conns; i++ {
			ch := make(chan job, 1)
			idle = append(idle, ch)
			wg.Add(1)
			go func() {
				defer wg.Done()
				var cc *clientConn
				defer func() {
					if cc != nil {
						_ = cc.c.Close()
					}
				}()
				for j := range ch {
					one(&cc, j.sched)
					mu.Lock()
					idle = append(idle, ch)
					mu.Unlock()
				}
			}()
		}
		all := append([]chan job(nil), idle...)
		interval := time.Duration(float64(time.Second) / *rate)
	sched:
		for {
			now := time.Now()
			if now.After(end) || ctx.Err() != nil {
				break
			}
			due := int64(float64(now.Sub(start)) / float64(interval))
			for ; scheduled < due; scheduled++ {
				s := start.Add(time.Duration(scheduled) * interval)
				if s.After(end) {
					break sched
				}
				mu.Lock()
				var ch chan job
				if n := len(idle); n > 0 {
					ch, idle = idle[n-1], idle[:n-1]
				}
				mu.Unlock()
				if ch == nil { // every worker busy: a request this client population cannot send
					dropped++
					continue
				}
				ch <- job{s}
			}
			time.Sleep(500 * time.Microsecond)
		}
		for _, ch := range all {
			close(ch)
		}
	} else {
		var sent atomic.Int64
		for i := 0; i < *conns; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var cc *clientConn
				defer func() {
					if cc != nil {
						_ = cc.c.Close()
					}
				}()
				for time.Now().Before(end) && ctx.Err() == nil {
					sent.Add(1)
					one(&cc, time.Now())
				}
			}()
		}
		wg.Wait()
		scheduled = sent.Load()
	}
	wg.Wait()
	elapsed := time.Since(start)

	t.mu.Lock()
	defer t.mu.Unlock()
	mode := "open"
	if *rate <= 0 {
		mode = "closed"
	}
	fmt.Printf("mode %s\nrate %.0f\nconns %d\nelapsed_s %.3f\nscheduled %d\ndropped %d\ncompleted %d\n",
		mode, *rate, *conns, elapsed.Seconds(), scheduled, dropped, t.complete)
	for _, k := range sortedInts(t.status) {
		fmt.Printf("status %d %d\n", k, t.status[k])
	}
	for _, k := range sortedStrings(t.cause) {
		fmt.Printf("cause %s %d\n", k, t.cause[k])
	}
	for _, k := range sortedStrings(t.errs) {
		fmt.Printf("error %s %d\n", k, t.errs[k])
	}
	for _, l := range []struct {
		name string
		xs   []int32
	}{{"all", t.lat}, {"ok", t.okLat}} {
		sort.Slice(l.xs, func(i, j int) bool { return l.xs[i] < l.xs[j] })
		fmt.Printf("lat_%s_p50_us %d\nlat_%s_p99_us %d\nlat_%s_max_us %d\n",
			l.name, pct(l.xs, 0.50), l.name, pct(l.xs, 0.99), l.name, pct(l.xs, 1))
	}
}

func sortedInts(m map[int]int64) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

func sortedStrings(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// --- causes ------------------------------------------------------------------------------

func runCauses(args []string) {
	fs := flag.NewFlagSet("causes", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:18381/admin/origins", "Gozer's GET /admin/origins")
	_ = fs.Parse(args)
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(*url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "causes: %v\n", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	var origins []struct {
		Name    string `json:"name"`
		Breaker struct {
			Refusing bool  `json:"refusing"`
			Opens    int64 `json:"opens_total"`
		} `json:"breaker"`
		InFlight int64            `json:"in_flight"`
		Refused  int64            `json:"refused_concurrency_total"`
		Requests map[string]int64 `json:"requests_by_cause"`
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "causes: %s answered %s\n", *url, resp.Status)
		os.Exit(1)
	}
	if err := json.NewDecoder(resp.Body).Decode(&origins); err != nil {
		fmt.Fprintf(os.Stderr, "causes: %v\n", err)
		os.Exit(1)
	}
	for _, o := range origins {
		for _, k := range sortedStrings(o.Requests) {
			fmt.Printf("cause %s %s %d\n", o.Name, k, o.Requests[k])
		}
		open := 0
		if o.Breaker.Refusing {
			open = 1
		}
		fmt.Printf("opens %s %d\nopen %s %d\ninflight %s %d\nrefused %s %d\n",
			o.Name, o.Breaker.Opens, o.Name, open, o.Name, o.InFlight, o.Name, o.Refused)
	}
}
