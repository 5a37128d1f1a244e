// Command pushhist is the push history bench (`make bench-push`, after bench/push.sh;
// bench/pushhist.sh runs it): it starts its own redis-server and gozer nodes and measures
//
//   - recovery (recovery.go), for each of -targets: N devices get one message,
//     disconnect, miss -missed pushes each (stored), then all reconnect at once
//     with their last id, to the same node or to another (two nodes sharing
//     Redis): time until every one recovered its messages (each checked: all of
//     them, in order, no duplicate, then a live message as the next one), the
//     reconnect node's CPU, Redis commands per recovered device (INFO
//     commandstats), the store's memory per kept message; Gozer's devices over
//     websocket and over SSE, nginx + nchan's over EventSource (nchan.go), and
//     the ratios gozer / nchan;
//   - throughput: C connected devices, -msgs pushes through the push API, with the
//     history on and off (single node, and cluster with Redis): gozer's CPU per
//     message and the ratio on/off, and the RSS per idle connection before the
//     pushes (after a GC, with GODEBUG=madvdontneed=1).
//
// Every figure it prints is for the machine it ran on; lost or duplicated messages are
// reported and make it exit non-zero.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"
)

var (
	gozerBin = flag.String("gozer", "", "gozer binary (required)")
	redisBin = flag.String("redis", "redis-server", "redis-server binary")
	repo     = flag.String("repo", ".", "the repository root (gozer runs there: bench/push/scripts)")
	nDev     = flag.Int("n", 10000, "recovery: devices")
	missed   = flag.Int("missed", 10, "recovery: messages each device misses")
	nConns   = flag.Int("conns", 1000, "throughput: connected devices")
	nMsgs    = flag.Int("msgs", 50000, "throughput: messages pushed per mode")
	senders  = flag.Int("senders", 64, "push API requests in flight")
	phases   = flag.String("phases", "recovery,throughput", "phases to run")
	targets  = flag.String("targets", "gozer gozer-sse nchan nchan-redis", "recovery: gozer, gozer-sse (websocket or EventSource devices; single node, then two), nchan (single), nchan-redis (two nginx sharing Redis)")

	nchanModules = flag.String("nchan-modules", "/usr/lib/nginx/modules", "the folder of ngx_nchan_module.so")
)

func main() {
	flag.Parse()
	log.SetFlags(log.Ltime)
	if *gozerBin == "" {
		log.Fatal("-gozer is required")
	}
	if *nDev <= *senders {
		// A device's messages are pushed in order only when its next one is
		// not in flight with the previous: -n apart, with -senders in flight.
		log.Fatalf("-n %d must be more than -senders %d", *nDev, *senders)
	}
	bad := false
	for _, p := range strings.Split(*phases, ",") {
		switch p {
		case "recovery":
			bad = recovery() || bad
		case "throughput":
			bad = throughput() || bad
		default:
			log.Fatalf("unknown phase %q", p)
		}
	}
	if bad {
		os.Exit(1)
	}
}

// throughput runs the throughput phase in four modes and reports a loss.
func throughput() (bad bool) {
	type result struct {
		name   string
		perMsg time.Duration
		allocs float64
	}
	var res []result
	for _, mode := range []struct {
		name          string
		history, clus bool
	}{{"single, history off", false, false}, {"single, history on", true, false},
		{"cluster, history off", false, true}, {"cluster, history on", true, true}} {
		w := newWorld()
		var rs *redisProc
		if mode.clus {
			rs = w.redis()
		}
		g := w.gozerWith("T", rs, mode.clus, mode.history)
		if mode.clus {
			waitSettled(g)
		}
		devs := make([]*device, *nConns)
		rss0 := g.idleRSS()
		connectAll(devs, g, func(i int) string { return fmt.Sprintf("t-%d", i) }, nil)
		waitConns(g, *nConns)
		idle := (g.idleRSS() - rss0) / int64(*nConns)
		mallocs0 := g.mallocs()
		cpu0 := g.cpu()
		start := time.Now()
		if prof := os.Getenv("PUSHHIST_PROFILE"); prof != "" && mode.history && mode.clus {
			go profile(g, prof)
		}
		pushAll(g, *nMsgs, *senders, func(k int) (string, string) { return fmt.Sprintf("t-%d", k%*nConns), "x" }, 200)
		got := countAll(devs, *nMsgs, 30*time.Second)
		cpu := g.cpu() - cpu0
		took := time.Since(start)
		per := cpu / time.Duration(*nMsgs)
		allocs := float64(g.mallocs()-mallocs0) / float64(*nMsgs)
		fmt.Printf("throughput  %-22s %d messages to %d devices in %v (%.0f/s): gozer CPU %v and %.1f allocations per message; received %d; idle RSS %d B per connection before (fixed costs dominate below ~10,000; target ≤ 1 KB)\n",
			mode.name, *nMsgs, *nConns, took.Round(time.Millisecond), float64(*nMsgs)/took.Seconds(), per, allocs, got, idle)
		if got != *nMsgs {
			bad = true
		}
		res = append(res, result{mode.name, per, allocs})
		closeAll(devs)
		w.stop()
	}
	if len(res) == 4 {
		fmt.Printf("throughput  CPU per message, history on / off: single node %.2f×, cluster %.2f× (target ≤ 1.2×)\n",
			float64(res[1].perMsg)/float64(res[0].perMsg), float64(res[3].perMsg)/float64(res[2].perMsg))
		fmt.Printf("throughput  allocations per message, history on / off: single node %.1f / %.1f, cluster %.1f / %.1f (a count other jobs do not change, unlike CPU)\n",
			res[1].allocs, res[0].allocs, res[3].allocs, res[2].allocs)
	}
	return bad
}

func msgsFrom(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint("m", from+i)
	}
	return out
}
