// Command pushload is the load client of the push benchmark (bench/push.sh, issue 5
// item 8). Against a websocket push server (Gozer's push endpoint, or nginx + nchan) it
// runs, in one process and in this order:
//
//  1. connect: opens -n websocket connections (ids ID_PREFIX0 .. ID_PREFIX(n-1)) from
//     source addresses 127.0.0.2 .. 127.0.0.(1+sources), at most -conn-rate a second with
//     at most -inflight handshakes in flight, and checks every 101 and its accept key;
//  2. memory: the target's RSS (all its processes) before and after, less before, per
//     connection; with -go-heap-url a GC first, and the Go heap figures too;
//  3. throughput: -rate POSTs a second for -duration, each to a random connected id,
//     stamped with the time it was sent: POST-to-device latency p50/p99/p999, delivered/s,
//     lost messages;
//  4. broadcast: -broadcasts times, one POST to the broadcast URL and the time until every
//     connection has it (and how many did).
//
// Results go to stdout as "result KEY VALUE" lines for the harness; progress to stderr.
// The connections live in one epoll set on one goroutine (poller.go), not a goroutine each,
// so the client itself stays small next to the target it measures.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	wsAddr := flag.String("ws", "127.0.0.1:18580", "host:port of the websocket listener (IPv4)")
	path := flag.String("path", "/push/ws", "websocket path; ?id=ID is added")
	api := flag.String("api", "http://127.0.0.1:18581", "push API base: POST {api}/push/{id}, {api}/push/broadcast")
	n := flag.Int("n", 100000, "connections")
	idPrefix := flag.String("id-prefix", "d", "client ids are this plus the connection's index")
	sources := flag.Int("sources", 0, "source addresses 127.0.0.2..; 0: one per 25,000 connections")
	connRate := flag.Float64("conn-rate", 20000, "new connections per second (0: bounded by -inflight only)")
	inflight := flag.Int("inflight", 512, "handshakes in flight at most")
	hsTimeout := flag.Duration("handshake-timeout", 10*time.Second, "one connection's connect + handshake")
	connTimeout := flag.Duration("connect-timeout", 180*time.Second, "the whole connect phase")
	pid := flag.Int("pid", 0, "the target's (root) pid, for memory and CPU readings; 0: none")
	heapURL := flag.String("go-heap-url", "", "a Go pprof heap URL (?gc=1&debug=1) to GC the target before memory readings")
	settle := flag.Duration("settle", 3*time.Second, "wait before each memory reading")
	rate := flag.Float64("rate", 10000, "throughput phase: messages per second (0 skips the phase)")
	dur := flag.Duration("duration", 10*time.Second, "throughput phase: how long")
	senders := flag.Int("senders", 64, "throughput phase: HTTP connections (and messages in flight at most)")
	size := flag.Int("size", 64, "message size in bytes (padded)")
	drain := flag.Duration("drain", 3*time.Second, "after the last POST, wait this long at most for deliveries")
	broadcasts := flag.Int("broadcasts", 3, "broadcast rounds (0 skips the phase)")
	bTimeout := flag.Duration("broadcast-timeout", 30*time.Second, "a round's wait for every connection")
	bGap := flag.Duration("broadcast-gap", time.Second, "pause between rounds")
	clkTck := flag.Int64("clk-tck", 100, "clock ticks per second of /proc/PID/stat (getconf CLK_TCK)")
	nice := flag.Int("poller-nice", -10, "nice value of the thread that reads the connections (0: leave it)")
	cpuProfile := flag.String("cpuprofile", "", "write the client's own CPU profile here (to see what limits it)")
	coresFlag := flag.String("cores", "0,1", "the cores of the bench (target and client), for the other-load figures")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatalf("%v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatalf("%v", err)
		}
		defer pprof.StopCPUProfile()
	}
	var cores []int
	for f := range strings.SplitSeq(*coresFlag, ",") {
		if c, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			cores = append(cores, c)
		}
	}

	// The poller blocks in epoll_wait, a raw syscall the Go scheduler does not see as
	// network I/O: with one P (GOMAXPROCS follows taskset, one core) the senders would wait
	// for sysmon to take the P back, up to 10 ms, which would show up as push latency.
	// More Ps than cores is fine: the kernel shares the core between their threads.
	runtime.GOMAXPROCS(max(4, runtime.GOMAXPROCS(0)))
	start := time.Now()
	host, portS, err := net.SplitHostPort(*wsAddr)
	ip := net.ParseIP(host).To4()
	port, _ := strconv.Atoi(portS)
	if err != nil || ip == nil || port <= 0 || *n <= 0 || *inflight <= 0 || *senders <= 0 || *broadcasts > 250 {
		fatalf("bad flags (-ws must be an IPv4 host:port; -n, -inflight, -senders positive; -broadcasts at most 250)")
	}
	if *sources == 0 {
		*sources = (*n + 24999) / 25000
	}
	need := *n + *senders + 256
	if lim := raiseNofile(uint64(need)); lim < uint64(need) {
		fatalf("open files limit is %d, %d connections need %d (raise the hard limit, or lower -n)", lim, *n, need)
	}
	cpuMS := func(ns int64) float64 { return float64(ns) / 1e6 }
	// outCPU reports how busy the target, this client and other jobs were between a and b.
	outCPU := func(prefix string, a, b cpuSnap) {
		t, c, o := cpuPcts(a, b, *clkTck)
		out(prefix+"target_cpu_pct", fmt.Sprintf("%.0f", t))
		out(prefix+"client_cpu_pct", fmt.Sprintf("%.0f", c))
		out(prefix+"other_cpu_pct", fmt.Sprintf("%.0f", o))
	}

	// 2 (before). The baseline: the target as it is before any connection.
	var heap0 map[string]int64
	var rss0, pss0 int64
	if *pid > 0 {
		heap0 = heapStats(*heapURL)
		time.Sleep(*settle)
		rss0, pss0 = memKiB(*pid)
	}

	// 1. Connect.
	s := newSink(*n)
	p, err := newPoller(pollerConfig{addr: [4]byte(ip), port: port, path: *path, idPrefix: *idPrefix, n: *n,
		sources: *sources, connRate: *connRate, inflight: *inflight, handshakeTTL: *hsTimeout, retries: 3, nice: *nice}, start, s)
	if err != nil {
		fatalf("%v", err)
	}
	logf("connecting %d websockets to %s%s from %d source addresses (%.0f/s, %d in flight at most)",
		*n, *wsAddr, *path, *sources, *connRate, *inflight)
	cpu0 := takeSnap(*pid, cores)
	t0 := time.Now()
	go p.run()
	lastLog := time.Now()
	for p.everOpen.Load()+p.failed.Load() < int64(*n) && time.Since(t0) < *connTimeout {
		time.Sleep(20 * time.Millisecond)
		if time.Since(lastLog) >= 2*time.Second {
			lastLog = time.Now()
			logf("  %d open, %d failed", p.connected.Load(), p.failed.Load())
		}
	}
	connectSecs := time.Since(t0).Seconds()
	if at := p.allOpenAt.Load(); at > 0 {
		connectSecs = (time.Duration(at) - t0.Sub(start)).Seconds()
	}
	cpu1 := takeSnap(*pid, cores)
	conns := p.connected.Load()
	out("connected", conns)
	out("failed", p.failed.Load())
	out("sources", *sources)
	out("connect_secs", fmt.Sprintf("%.2f", connectSecs))
	out("connect_per_sec", fmt.Sprintf("%.0f", float64(p.everOpen.Load())/connectSecs))
	if *pid > 0 && conns > 0 {
		out("connect_cpu_us_per_conn", fmt.Sprintf("%.1f", cpuMS(cpu1.target-cpu0.target)*1000/float64(conns)))
	}
	outCPU("connect_", cpu0, cpu1)
	logf("%d open, %d failed in %.1fs", conns, p.failed.Load(), connectSecs)
	if e := p.firstError(); e != "" {
		out("first_error", e)
		logf("first error: %s", e)
	}
	if conns == 0 {
		fatalf("no connection opened")
	}

	// 2 (after). Memory with every connection idle.
	if *pid > 0 {
		heap1 := heapStats(*heapURL)
		time.Sleep(*settle)
		rss1, pss1 := memKiB(*pid)
		out("rss_before_kib", rss0)
		out("rss_after_kib", rss1)
		out("rss_bytes_per_conn", (rss1-rss0)*1024/conns)
		out("rss_total_bytes_per_conn", rss1*1024/conns)
		if pss0 > 0 && pss1 > 0 {
			out("pss_bytes_per_conn", (pss1-pss0)*1024/conns)
		}
		if heap0 != nil && heap1 != nil {
			out("go_heapinuse_before", heap0["HeapInuse"])
			out("go_heapinuse_after", heap1["HeapInuse"])
			out("go_heap_bytes_per_conn", (heap1["HeapInuse"]-heap0["HeapInuse"])/conns)
			out("go_sys_bytes_per_conn", (heap1["Sys"]-heap0["Sys"])/conns)
		}
		logf("target RSS %d KiB -> %d KiB: %d B per connection", rss0, rss1, (rss1-rss0)*1024/conns)
	}

	ps := newPusher(*api, *senders)

	// 3. Throughput.
	if *rate > 0 && *dur > 0 {
		planned := int(*rate * dur.Seconds())
		logf("throughput: %.0f messages/s for %v to random ids", *rate, *dur)
		s.startUnicast(planned)
		c0, phase0 := takeSnap(*pid, cores), p.now()
		tr := throughput(ps, p, *rate, *dur, *senders, *size)
		end := time.Now().Add(*drain)
		for time.Now().Before(end) {
			s.mu.Lock()
			got := s.received
			s.mu.Unlock()
			if got >= tr.accepted {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		c1 := takeSnap(*pid, cores)
		s.mu.Lock()
		lats := sortedCopy(s.lats)
		recv, dups, mis, last := s.received, s.dups, s.misdelivered, s.lastRecv
		s.mu.Unlock()
		out("tput_planned", tr.planned)
		out("tput_sent", tr.sent)
		out("tput_accepted", tr.accepted)
		out("tput_not_reached", tr.notReached)
		out("tput_failed", tr.failed)
		out("tput_received", recv)
		out("tput_lost", tr.accepted-recv)
		out("tput_dups", dups)
		out("tput_misdelivered", mis)
		out("tput_send_per_sec", fmt.Sprintf("%.0f", float64(tr.sent)/tr.sendSecs))
		if last > phase0 {
			out("tput_delivered_per_sec", fmt.Sprintf("%.0f", float64(recv)/time.Duration(last-phase0).Seconds()))
		}
		out("tput_late", tr.late)
		out("tput_max_lag_ms", fmt.Sprintf("%.1f", tr.maxLag.Seconds()*1000))
		for _, q := range []struct {
			name string
			q    float64
		}{{"p50", 0.5}, {"p99", 0.99}, {"p999", 0.999}, {"max", 1}} {
			out("tput_"+q.name+"_us", fmt.Sprintf("%.0f", float64(percentile(lats, q.q))/1e3))
		}
		if *pid > 0 && recv > 0 {
			out("tput_cpu_us_per_msg", fmt.Sprintf("%.1f", cpuMS(c1.target-c0.target)*1000/float64(recv)))
		}
		outCPU("tput_", c0, c1)
		if tr.firstErr != "" {
			out("tput_first_error", tr.firstErr)
		}
		logf("  sent %d (%d reached a connection, %d none, %d failed), received %d, lost %d; p50 %.2f ms, p99 %.2f ms",
			tr.sent, tr.accepted, tr.notReached, tr.failed, recv, tr.accepted-recv,
			float64(percentile(lats, 0.5))/1e6, float64(percentile(lats, 0.99))/1e6)
	}

	// 4. Broadcast.
	var alls []float64
	minRecv := int64(-1)
	bc0 := takeSnap(*pid, cores)
	for r := 1; r <= *broadcasts; r++ {
		time.Sleep(*bGap)
		expect := p.connected.Load()
		s.startRound(uint8(r), int(expect))
		c0 := takeSnap(*pid, cores)
		req, resp := newReqResp()
		sentAt := p.now()
		body := pad(fmt.Appendf(nil, "b %d %d ", r, sentAt), *size)
		status, reached, err := ps.post(req, resp, "/push/broadcast", body)
		postMS := float64(p.now()-sentAt) / 1e6
		if err != nil || status/100 != 2 {
			if err == nil {
				err = fmt.Errorf("status %d: %.200s", status, resp.Body())
			}
			out("bcast_error", fmt.Sprintf("round %d: %v", r, err))
			logf("broadcast %d: %v", r, err)
			continue
		}
		deadline := time.Now().Add(*bTimeout)
		var got int
		for time.Now().Before(deadline) {
			s.mu.Lock()
			got = len(s.bTimes)
			s.mu.Unlock()
			if int64(got) >= expect {
				break
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // late duplicates or strays, if any, show up in the counts
		c1 := takeSnap(*pid, cores)
		s.mu.Lock()
		times := sortedCopy(s.bTimes)
		bdups := s.bDups
		s.mu.Unlock()
		recv := int64(len(times))
		if minRecv < 0 || recv < minRecv {
			minRecv = recv
		}
		allMS := -1.0
		if recv >= expect {
			allMS = float64(times[len(times)-1]) / 1e6
			alls = append(alls, allMS)
		}
		pre := fmt.Sprintf("bcast%d_", r)
		out(pre+"expected", expect)
		out(pre+"reached", reached)
		out(pre+"received", recv)
		out(pre+"dups", bdups)
		out(pre+"all_ms", fmt.Sprintf("%.1f", allMS))
		out(pre+"p50_ms", fmt.Sprintf("%.1f", float64(percentile(times, 0.5))/1e6))
		out(pre+"p99_ms", fmt.Sprintf("%.1f", float64(percentile(times, 0.99))/1e6))
		out(pre+"post_ms", fmt.Sprintf("%.1f", postMS))
		out(pre+"target_cpu_ms", fmt.Sprintf("%.0f", cpuMS(c1.target-c0.target)))
		out(pre+"client_cpu_ms", fmt.Sprintf("%.0f", cpuMS(c1.self-c0.self)))
		logf("broadcast %d: %d of %d received, all in %.1f ms (POST answered in %.1f ms, reached %d)",
			r, recv, expect, allMS, postMS, reached)
	}
	if *broadcasts > 0 {
		outCPU("bcast_", bc0, takeSnap(*pid, cores))
		out("bcast_rounds_complete", len(alls))
		out("bcast_min_received", minRecv)
		if len(alls) > 0 {
			slices.Sort(alls)
			out("bcast_all_ms_median", fmt.Sprintf("%.1f", alls[len(alls)/2]))
		}
	}

	out("server_closed", p.serverClosed.Load())
	out("pings", p.pings.Load())
	s.mu.Lock()
	out("unknown_messages", s.unknown)
	s.mu.Unlock()
	if r, _ := memKiB(os.Getpid()); r > 0 {
		out("client_rss_kib", r)
	}
	p.stop.Store(true)
	<-p.done
}

func heapStats(url string) map[string]int64 {
	if url == "" {
		return nil
	}
	h, err := goHeap(url)
	if err != nil {
		logf("go heap stats: %v", err)
		return nil
	}
	return h
}

// raiseNofile lifts RLIMIT_NOFILE to want if it can (the hard limit needs privileges),
// else to the hard limit, and returns what it got.
func raiseNofile(want uint64) uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur >= want {
		return rl.Cur
	}
	if unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: want, Max: max(want, rl.Max)}) == nil {
		return want
	}
	_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: rl.Max, Max: rl.Max})
	_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

func out(key string, v any) { fmt.Printf("result %s %v\n", key, v) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s pushload: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func fatalf(format string, args ...any) {
	logf("FATAL: "+format, args...)
	os.Exit(1)
}
