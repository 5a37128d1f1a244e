package main

import (
	"fmt"
	"log"
	"strings"
	"time"
)

// recResult is one target's recovery: N devices, each missing -missed
// messages, reconnect at once with their last id.
type recResult struct {
	name        string
	took        time.Duration // first dial to the last device's last missed message
	cpu         time.Duration // the reconnect node's CPU meanwhile
	bad         int           // devices that lost, duplicated or reordered a message
	bytesPerMsg float64       // the store's memory growth per missed message (0: not measured)
	memWhat     string        // which memory bytesPerMsg is
	redisOps    *cmdCalls     // Redis commands during the reconnects (nil: no Redis)
}

func (r recResult) print() {
	ops := "no Redis"
	if r.redisOps != nil {
		ops = fmt.Sprintf("Redis commands per device %.2f (%s)", float64(r.redisOps.total)/float64(*nDev), r.redisOps.detail)
	}
	fmt.Printf("recovery  %-26s devices %d, missed %d each: all recovered in %v (from the first dial); CPU %.2f s (%.0f µs per device); %s; %.0f B per stored message (%s); lost/duplicated/out of order: %d devices\n",
		r.name, *nDev, *missed, r.took.Round(time.Millisecond), r.cpu.Seconds(), r.usPerDev(), ops, r.bytesPerMsg, r.memWhat, r.bad)
}

func (r recResult) usPerDev() float64 { return float64(r.cpu.Microseconds()) / float64(*nDev) }

// recovery runs the recovery phase for each of -targets and reports whether
// a message was lost, duplicated or out of order.
func recovery() (bad bool) {
	var res []recResult
	for _, t := range strings.Fields(*targets) {
		var rs []recResult
		switch t {
		case "gozer":
			rs = []recResult{recoverGozer(false, false), recoverGozer(true, false)}
		case "gozer-sse":
			rs = []recResult{recoverGozer(false, true), recoverGozer(true, true)}
		case "nchan":
			rs = []recResult{recoverNchan(false)}
		case "nchan-redis":
			rs = []recResult{recoverNchan(true)}
		default:
			log.Fatalf("unknown target %q (gozer, gozer-sse, nchan, nchan-redis)", t)
		}
		for _, r := range rs {
			r.print()
		}
		res = append(res, rs...)
	}
	by := map[string]recResult{}
	for _, r := range res {
		by[r.name] = r
		bad = bad || r.bad > 0
	}
	for _, proto := range []string{"websocket", "SSE"} {
		ratio(proto+", single node", by["gozer single, "+proto], by["nchan single, SSE"])
		ratio(proto+", two nodes", by["gozer two nodes, "+proto], by["nchan two nodes, SSE"])
	}
	return bad
}

// ratio prints gozer / nchan for a pair both measured.
func ratio(what string, g, n recResult) {
	if g.name == "" || n.name == "" {
		return
	}
	fmt.Printf("recovery  gozer / nchan, gozer over %s: time to recover all %.2f×, CPU per device %.2f× (lower: Gozer better)\n",
		what, g.took.Seconds()/n.took.Seconds(), g.usPerDev()/n.usPerDev())
}

// recoverGozer: devices on node A get m0 and leave, miss their pushes (202
// stored), then reconnect with their last id to node B (twoNodes: cluster
// history in Redis) or to A again (single node: A's own history). Devices
// are websockets (?last_id=), or with sse EventSources (Last-Event-ID), as
// nchan's are.
func recoverGozer(twoNodes, sse bool) recResult {
	w := newWorld()
	defer w.stop()
	proto, dialOne := "websocket", dial
	if sse {
		proto = "SSE"
		dialOne = func(g *gozerProc, id, last string) (*device, error) {
			return dialSSE("http://"+g.proxy+"/push/sse?id="+id, last)
		}
	}
	r := recResult{name: "gozer single, " + proto}
	var rs *redisProc
	a := w.gozerWith("S", nil, false, true)
	b := a
	if twoNodes {
		r.name = "gozer two nodes, " + proto
		rs = w.redis()
		a, b = w.gozer("A", rs, true), w.gozer("B", rs, true)
		waitSettled(a)
		waitSettled(b)
	}
	idOf := func(i int) string { return fmt.Sprintf("dev-%d", i) }
	log.Printf("recovery, %s: %d devices connect", r.name, *nDev)
	devs := make([]*device, *nDev)
	dialAll(devs, func(i int) (*device, error) { return dialOne(a, idOf(i), "") })
	waitConns(a, *nDev)
	mustBroadcast(a, "dev-", "m0")
	last := firstIDs(devs)
	waitConns(a, 0)
	if twoNodes {
		waitUnregistered(a, "dev-0")
	}
	mem := func() int64 { return a.heapAlloc() }
	r.memWhat = "the node's Go heap after a GC"
	if twoNodes {
		mem, r.memWhat = rs.usedMemory, "Redis used_memory"
	}
	mem0 := mem()
	log.Printf("recovery, %s: pushing %d messages to each absent device", r.name, *missed)
	pushAll(a, *nDev**missed, *senders, missedMsg(idOf), 202)
	r.bytesPerMsg = float64(mem()-mem0) / float64(*nDev**missed)

	if rs != nil {
		rs.resetStats()
	}
	cpu0 := b.cpu()
	start := time.Now()
	dialAll(devs, func(i int) (*device, error) { return dialOne(b, idOf(i), last[i]) })
	r.bad = checkAll(devs, func(_ int, d *device) error { return d.expect(30*time.Second, msgsFrom(1, *missed)...) })
	r.took, r.cpu = time.Since(start), b.cpu()-cpu0
	if rs != nil {
		ops := rs.commandCalls()
		r.redisOps = &ops
	}
	mustBroadcast(b, "dev-", "live")
	r.bad += checkAll(devs, func(_ int, d *device) error { return d.expect(10*time.Second, "live") })
	closeAll(devs)
	return r
}

// recoverNchan is recoverGozer for nginx + nchan: EventSource devices, the
// pushes to its publisher location, the reconnects with Last-Event-ID; two
// nodes are two nginx sharing their channels in Redis (nchan_use_redis).
func recoverNchan(twoNodes bool) recResult {
	w := newWorld()
	defer w.stop()
	r := recResult{name: "nchan single, SSE", memWhat: "nchan shared memory used"}
	var rs *redisProc
	if twoNodes {
		r.name, r.memWhat = "nchan two nodes, SSE", "Redis used_memory"
		rs = w.redis()
	}
	a := w.nchan("A", rs)
	b := a
	if twoNodes {
		b = w.nchan("B", rs)
	}
	idOf := func(i int) string { return fmt.Sprintf("dev-%d", i) }
	log.Printf("recovery, %s: %d devices connect", r.name, *nDev)
	devs := make([]*device, *nDev)
	dialAll(devs, func(i int) (*device, error) { return a.dial(idOf(i), "") })
	a.waitSubscribers(int64(*nDev))
	postAll(a.pubURL, *nDev, *senders, func(k int) (string, string) { return idOf(k), "m0" }, 201, 202)
	last := firstIDs(devs)
	a.waitSubscribers(0)
	mem := func() int64 { return a.stat("shared memory used") << 10 }
	if twoNodes {
		mem = rs.usedMemory
	}
	mem0 := mem()
	log.Printf("recovery, %s: pushing %d messages to each absent device", r.name, *missed)
	postAll(a.pubURL, *nDev**missed, *senders, missedMsg(idOf), 201, 202)
	r.bytesPerMsg = float64(mem()-mem0) / float64(*nDev**missed)

	if rs != nil {
		rs.resetStats()
	}
	cpu0 := b.cpu()
	start := time.Now()
	dialAll(devs, func(i int) (*device, error) { return b.dial(idOf(i), last[i]) })
	r.bad = checkAll(devs, func(_ int, d *device) error { return d.expect(30*time.Second, msgsFrom(1, *missed)...) })
	r.took, r.cpu = time.Since(start), b.cpu()-cpu0
	if rs != nil {
		ops := rs.commandCalls()
		r.redisOps = &ops
	}
	postAll(b.pubURL, *nDev, *senders, func(k int) (string, string) { return idOf(k), "live" }, 201, 202)
	r.bad += checkAll(devs, func(_ int, d *device) error { return d.expect(10*time.Second, "live") })
	closeAll(devs)
	return r
}

// firstIDs reads each device's first message (m0), keeps its id and closes
// the device.
func firstIDs(devs []*device) []string {
	last := make([]string, len(devs))
	for i, d := range devs {
		id, p, err := d.next(10 * time.Second)
		if err != nil || p != "m0" || id == "" {
			log.Fatalf("device %d: first message %q (id %q) %v, want m0 with an id", i, p, id, err)
		}
		last[i] = id
		d.close()
	}
	return last
}

// missedMsg is the k-th missed push: to device k%N, message m<1+k/N> (each
// device's in order: N > -senders apart).
func missedMsg(idOf func(int) string) func(k int) (string, string) {
	return func(k int) (string, string) { return idOf(k % *nDev), fmt.Sprint("m", 1 + k / *nDev) }
}
