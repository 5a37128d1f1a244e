package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// What bench/slowclients.sh leaves in DIR/KIND/ for the report:
//
//	base.json      -mode ordinary alone (the baseline)
//	attack.json    -mode ordinary while the attack ran
//	attacker.json  the attack's summary
//	samples.tsv    one line a second: t phase rss_kib fds origin_conns gozer_ticks tcp_mem_pages
//	               coreP_busy_ticks coreL_busy_ticks (Gozer's core, the load side's core)
//	               our_ticks (every process of the run) origin_ticks (both demo-origins);
//	               phase is warm, base, ramp, attack or stop
//	meta.tsv       key<TAB>value: conns, base_secs, attack_secs, gozer_survived, origin_ports, ...
//	origins-0.json, origins-1.json   GET /admin/origins as the attack window opened, closed

// kindResult is one attack kind's files, read.
type kindResult struct {
	kind           string
	base, attack   *ordinaryResult
	attacker       *attackSummary
	meta           map[string]string
	samples        []sample
	missing        []string
	rssBefore      float64 // KiB, the last sample before the attack
	rssPeak        float64
	fdsBefore      float64
	fdsPeak        float64
	originBefore   float64
	originPeak     float64
	tcpMemPeakMiB  float64
	tcpMemBaseMiB  float64
	gozerBasePct   float64 // % of one core
	gozerAttackPct float64
	coreBusy       [2][2]float64  // [Gozer's core, load core][base, attack], % busy
	otherPct       [2]float64     // [base, attack]: both cores' busy time not ours, % of a core
	originPct      [2]float64     // [base, attack]: the demo-origin servers' CPU, % of a core
	causes         map[string]int // requests_by_cause of every origin, over the attack window
}

type sample struct {
	t                                    float64
	phase                                string
	rss, fds, origin, ticks, tcpMemPages float64
	busy                                 [2]float64
	ours, origins                        float64
	hasRSS, hasFds, hasOrigin, hasTicks  bool
	hasBusy                              [2]bool
	hasOurs, hasOrigins                  bool
}

func report(w io.Writer, cfg config) error {
	var results []*kindResult
	for kind := range strings.FieldsSeq(cfg.kind) {
		r, err := readKind(filepath.Join(cfg.dir, kind), kind, cfg.clkTck)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	for _, r := range results {
		r.write(w)
	}
	if len(results) > 0 {
		writeGlance(w, results)
	}
	return nil
}

func readKind(dir, kind string, clkTck int) (*kindResult, error) {
	r := &kindResult{kind: kind, meta: map[string]string{}}
	r.base, r.attack = new(ordinaryResult), new(ordinaryResult)
	r.attacker = new(attackSummary)
	for name, v := range map[string]any{"base.json": r.base, "attack.json": r.attack, "attacker.json": r.attacker} {
		if !readJSONLine(filepath.Join(dir, name), v) {
			r.missing = append(r.missing, name)
		}
	}
	slices.Sort(r.missing)
	if f, err := os.Open(filepath.Join(dir, "meta.tsv")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "\t"); ok {
				r.meta[k] = v
			}
		}
		f.Close()
	}
	r.causes = causesDelta(filepath.Join(dir, "origins-0.json"), filepath.Join(dir, "origins-1.json"))
	f, err := os.Open(filepath.Join(dir, "samples.tsv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Split(sc.Text(), "\t")
		if len(fl) < 11 || fl[0] == "t" {
			continue
		}
		num := func(i int) (float64, bool) {
			v, err := strconv.ParseFloat(fl[i], 64)
			return v, err == nil
		}
		var s sample
		var ok bool
		if s.t, ok = num(0); !ok {
			continue
		}
		s.phase = fl[1]
		s.rss, s.hasRSS = num(2)
		s.fds, s.hasFds = num(3)
		s.origin, s.hasOrigin = num(4)
		s.ticks, s.hasTicks = num(5)
		s.tcpMemPages, _ = num(6)
		s.busy[0], s.hasBusy[0] = num(7)
		s.busy[1], s.hasBusy[1] = num(8)
		s.ours, s.hasOurs = num(9)
		s.origins, s.hasOrigins = num(10)
		r.samples = append(r.samples, s)
	}
	r.summarize(clkTck)
	return r, nil
}

// causesDelta is what requests_by_cause of GET /admin/origins counted between two
// snapshots, all origins together (nil when either could not be read).
func causesDelta(before, after string) map[string]int {
	read := func(path string) map[string]int {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		var origins []struct {
			RequestsByCause map[string]int `json:"requests_by_cause"`
		}
		if json.Unmarshal(b, &origins) != nil {
			return nil
		}
		sum := map[string]int{}
		for _, o := range origins {
			for k, v := range o.RequestsByCause {
				sum[k] += v
			}
		}
		return sum
	}
	b0, b1 := read(before), read(after)
	if b0 == nil || b1 == nil {
		return nil
	}
	d := map[string]int{}
	for k, v := range b1 {
		if n := v - b0[k]; n != 0 {
			d[k] = n
		}
	}
	return d
}

// readJSONLine decodes the last line of path that looks like JSON.
func readJSONLine(path string, v any) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "{") {
			return json.Unmarshal([]byte(lines[i]), v) == nil
		}
	}
	return false
}

func (r *kindResult) summarize(clkTck int) {
	pageMiB := float64(os.Getpagesize()) / (1 << 20)
	underAttack := func(p string) bool { return p == "ramp" || p == "attack" }
	for _, s := range r.samples {
		switch {
		case s.phase == "base":
			// The last reading before the attacker starts is "before".
			if s.hasRSS {
				r.rssBefore = s.rss
			}
			if s.hasFds {
				r.fdsBefore = s.fds
			}
			if s.hasOrigin {
				r.originBefore = s.origin
			}
			r.tcpMemBaseMiB = s.tcpMemPages * pageMiB
		case underAttack(s.phase):
			r.rssPeak = max(r.rssPeak, s.rss)
			r.fdsPeak = max(r.fdsPeak, s.fds)
			r.originPeak = max(r.originPeak, s.origin)
			r.tcpMemPeakMiB = max(r.tcpMemPeakMiB, s.tcpMemPages*pageMiB)
		}
	}
	gozer := func(s *sample) (float64, bool) { return s.ticks, s.hasTicks }
	r.gozerBasePct = r.cpuPct("base", clkTck, gozer)
	r.gozerAttackPct = r.cpuPct("attack", clkTck, gozer)
	for c := range 2 {
		core := func(s *sample) (float64, bool) { return s.busy[c], s.hasBusy[c] }
		r.coreBusy[c][0] = r.cpuPct("base", clkTck, core)
		r.coreBusy[c][1] = r.cpuPct("attack", clkTck, core)
	}
	other := func(s *sample) (float64, bool) {
		return s.busy[0] + s.busy[1] - s.ours, s.hasBusy[0] && s.hasBusy[1] && s.hasOurs
	}
	r.otherPct = [2]float64{r.cpuPct("base", clkTck, other), r.cpuPct("attack", clkTck, other)}
	origins := func(s *sample) (float64, bool) { return s.origins, s.hasOrigins }
	r.originPct = [2]float64{r.cpuPct("base", clkTck, origins), r.cpuPct("attack", clkTck, origins)}
}

// cpuPct is the CPU a tick counter of the samples counted over a phase, in % of one
// core (NaN without two readings).
func (r *kindResult) cpuPct(phase string, clkTck int, ticks func(*sample) (float64, bool)) float64 {
	var first, last *sample
	var v0, v1 float64
	for i := range r.samples {
		s := &r.samples[i]
		v, ok := ticks(s)
		if s.phase != phase || !ok {
			continue
		}
		if first == nil {
			first, v0 = s, v
		}
		last, v1 = s, v
	}
	if first == nil || last.t <= first.t {
		return math.NaN()
	}
	return 100 * (v1 - v0) / float64(clkTck) / (last.t - first.t)
}

func (r *kindResult) write(w io.Writer) {
	a, m := r.attacker, r.meta
	fmt.Fprintf(w, "## %s\n\n", r.kind)
	switch r.kind {
	case "slowbody":
		fmt.Fprintf(w, "%s connections from %d source addresses, each: POST %s announcing Content-Length %s, then %d bytes every %s (R.U.D.Y., slowhttptest -B).\n\n",
			m["conns"], a.Sources, a.Path, m["content_length"], a.Bytes, a.Every)
	case "slowread":
		fmt.Fprintf(w, "%s connections from %d source addresses, each: GET %s with SO_RCVBUF %s, reading %d bytes every %s (slowhttptest -X).\n\n",
			m["conns"], a.Sources, a.Path, m["rcvbuf"], a.Bytes, a.Every)
	case "slowhead":
		fmt.Fprintf(w, "%s connections from %d source addresses, each: GET %s HTTP/1.1 and Host, then %d bytes of further header lines (X-a: b) every %s, never the empty line that ends the head (slowloris, slowhttptest -H).\n\n",
			m["conns"], a.Sources, a.Path, a.Bytes, a.Every)
	}
	if r.kind == "slowhead" && anyBareStatus(a.ClosedBy) {
		// Not a fault of the harness: Gozer drops a head it refuses unread, debug header and all.
		fmt.Fprintf(w, "Gozer does not read a head it refuses as a request, so it does not see the debug header in it: with status_headers expose: debug "+
			"its 408 or 431 carries no X-Gozer-Status (EXTRA_SERVER_YAML='status_headers: { expose: all }' shows the cause).\n\n")
	}
	if len(r.missing) > 0 {
		fmt.Fprintf(w, "**Incomplete: %s missing** (see the logs in the kept temp dir).\n\n", strings.Join(r.missing, ", "))
	}
	if m["gozer_survived"] == "no" {
		fmt.Fprintf(w, "**Gozer exited during the attack** (%s).\n\n", m["gozer_exit"])
	}

	b, t := r.base, r.attack
	fmt.Fprintf(w, "| ordinary traffic: GET %s, %d keep-alive clients from 127.0.0.1 | baseline (%s s) | under attack (%s s) | attack / baseline |\n",
		b.Path, b.Conc, m["base_secs"], m["attack_secs"])
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	fmt.Fprintf(w, "| success (2xx) | %.2f %% | %.2f %% | %s |\n", b.SuccessPct, t.SuccessPct, ratio(t.SuccessPct, b.SuccessPct))
	fmt.Fprintf(w, "| 2xx per second | %.0f | %.0f | **%s** |\n", b.OKRate, t.OKRate, ratio(t.OKRate, b.OKRate))
	fmt.Fprintf(w, "| requests per second (any outcome) | %.0f | %.0f | %s |\n", b.Rate, t.Rate, ratio(t.Rate, b.Rate))
	fmt.Fprintf(w, "| latency p50 ms | %.2f | %.2f | %s |\n", b.P50Ms, t.P50Ms, ratio(t.P50Ms, b.P50Ms))
	fmt.Fprintf(w, "| latency p99 ms | %.2f | %.2f | %s |\n", b.P99Ms, t.P99Ms, ratio(t.P99Ms, b.P99Ms))
	fmt.Fprintf(w, "| latency max ms | %.2f | %.2f | |\n", b.MaxMs, t.MaxMs)
	fmt.Fprintf(w, "| failed: answered non-2xx (status X-Gozer-Status) | %s | %s | |\n", counts(b.Failures), counts(t.Failures))
	fmt.Fprintf(w, "| failed: no answer | %s | %s | |\n", counts(b.TransportErrors), counts(t.TransportErrors))
	if b.OfferedRate > 0 {
		fmt.Fprintf(w, "| open loop: offered requests/s; sent over 10 ms late | %.0f; %d | %.0f; %d | |\n", b.OfferedRate, b.Late, t.OfferedRate, t.Late)
	}
	fmt.Fprintln(w)

	held := max(a.MaxOpen, 1)
	fmt.Fprintf(w, "| Gozer (sampled every second) | before the attack | peak under attack | growth |\n")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	fmt.Fprintf(w, "| RSS (VmRSS) | %.1f MiB | %.1f MiB | %+.1f MiB = **%.1f KiB per attacking connection** (%d held at most) |\n",
		r.rssBefore/1024, r.rssPeak/1024, (r.rssPeak-r.rssBefore)/1024, (r.rssPeak-r.rssBefore)/float64(held), a.MaxOpen)
	fmt.Fprintf(w, "| open files (/proc/PID/fd) | %.0f | %.0f | %+.0f |\n", r.fdsBefore, r.fdsPeak, r.fdsPeak-r.fdsBefore)
	fmt.Fprintf(w, "| origin connections (established, to %s) | %.0f | %.0f | %+.0f |\n", m["origin_ports"], r.originBefore, r.originPeak, r.originPeak-r.originBefore)
	fmt.Fprintf(w, "| kernel TCP memory, whole machine (/proc/net/sockstat) | %.1f MiB | %.1f MiB | %+.1f MiB = %.1f KiB per attacking connection |\n\n",
		r.tcpMemBaseMiB, r.tcpMemPeakMiB, r.tcpMemPeakMiB-r.tcpMemBaseMiB, (r.tcpMemPeakMiB-r.tcpMemBaseMiB)*1024/float64(held))
	if lim := strings.Fields(m["tcp_mem"]); len(lim) == 3 {
		page := float64(os.Getpagesize()) / (1 << 20)
		pressure, _ := strconv.ParseFloat(lim[1], 64)
		hard, _ := strconv.ParseFloat(lim[2], 64)
		if pressure > 0 && r.tcpMemPeakMiB >= pressure*page {
			fmt.Fprintf(w, "The kernel's TCP memory reached its pressure threshold (net.ipv4.tcp_mem: pressure %.0f MiB, limit %.0f MiB): "+
				"under pressure Linux shrinks every socket's buffers and, at the limit, drops packets, for the ordinary traffic too. "+
				"That memory is in socket buffers (mostly Gozer's unsent data), not in Gozer's RSS.\n\n", pressure*page, hard*page)
		}
	}
	if r.causes != nil {
		fmt.Fprintf(w, "Gozer's own count over the attack window (GET /admin/origins, requests_by_cause; the ordinary traffic's successes included): %s.\n\n", counts(r.causes))
	}

	pc, lc := m["proxy_cpu"], m["load_cpu"]
	fmt.Fprintln(w, "| CPU, % of a core (averages) | baseline | under attack |")
	fmt.Fprintln(w, "|---|---:|---:|")
	fmt.Fprintf(w, "| Gozer (core %s) | %s | %s |\n", pc, pct(r.gozerBasePct), pct(r.gozerAttackPct))
	fmt.Fprintf(w, "| core %s busy | %s | %s |\n", pc, pct(r.coreBusy[0][0]), pct(r.coreBusy[0][1]))
	fmt.Fprintf(w, "| ordinary client (core %s) | %s | %s |\n", lc, pct(b.CPUPct), pct(t.CPUPct))
	fmt.Fprintf(w, "| both demo-origin servers (core %s) | %s | %s |\n", lc, pct(r.originPct[0]), pct(r.originPct[1]))
	fmt.Fprintf(w, "| attacker (core %s; over its whole run) | - | %s |\n", lc, pct(a.CPUPct))
	fmt.Fprintf(w, "| core %s busy | %s | %s |\n", lc, pct(r.coreBusy[1][0]), pct(r.coreBusy[1][1]))
	fmt.Fprintf(w, "| other jobs on the machine (both cores, not this run's processes) | %s | %s |\n\n", pct(r.otherPct[0]), pct(r.otherPct[1]))
	otherMax, err := strconv.ParseFloat(m["other_cpu_max"], 64)
	if err != nil {
		otherMax = 10
	}
	if r.otherPct[0] > otherMax || r.otherPct[1] > otherMax {
		fmt.Fprintf(w, "**Disturbed**: other jobs took more than %.0f %% of a core (SLOW_OTHER_CPU_MAX) from the two cores; rates and latencies moved with them.\n\n", otherMax)
	}
	// A client starved by the attack's load on its core would wait on the run queue;
	// one waiting for answers would not.
	fmt.Fprintf(w, "The ordinary client's threads waited on the run queue %.2f s per second under attack, %.2f s alone "+
		"(summed over its threads, /proc/self/task/*/schedstat)", t.RunqWaitPct/100, b.RunqWaitPct/100)
	if t.RunqWaitPct > 1.25*b.RunqWaitPct+10 {
		fmt.Fprintf(w, ": **the load core starved it**, so part of its drop is the load side's (the attacker, the origins answering the attack, other jobs), not Gozer's.\n\n")
	} else {
		fmt.Fprintf(w, ": not clearly more than alone (within 25 %%), so the load core did not starve it; what it lost, it lost waiting for answers (Gozer, the origins, the kernel).\n\n")
	}

	ready := "never all at once"
	if a.ReadyAfterS >= 0 {
		ready = fmt.Sprintf("all %d open %.1f s after start", a.Conns, a.ReadyAfterS)
	}
	fmt.Fprintln(w, "| attacker | |")
	fmt.Fprintln(w, "|---|---|")
	fmt.Fprintf(w, "| connections open at once | at most %d (%s); %d at the end |\n", a.MaxOpen, ready, a.OpenNow)
	fmt.Fprintf(w, "| connections opened in all | %d over %.0f s |\n", a.Opened, a.DurationS)
	fmt.Fprintf(w, "| **closed by the server** | **%d**%s |\n", a.ClosedByServer, countsPrefixed(a.ClosedBy))
	if a.ClosedByServer > 0 {
		fmt.Fprintf(w, "| time alive of those | median %.1f s, max %.1f s |\n", a.AliveMedianS, a.AliveMaxS)
	}
	fmt.Fprintf(w, "| age of those still open at the end | median %.1f s, max %.1f s |\n", a.OpenAgeMedianS, a.OpenAgeMaxS)
	if a.Completed > 0 {
		fmt.Fprintf(w, "| served in full (the attack did not hold them) | %d |\n", a.Completed)
	}
	fmt.Fprintf(w, "| connect errors | %s |\n", counts(a.ConnectErrors))
	if len(a.LocalErrors) > 0 {
		fmt.Fprintf(w, "| ended by the attacker's own errors | %s |\n", counts(a.LocalErrors))
	}
	fmt.Fprintf(w, "| bytes sent / received | %d / %d |\n", a.BytesSent, a.BytesReceived)
	fmt.Fprintf(w, "| attacker CPU (getrusage) | **%.2f s** over %.0f s = %.1f %% of one core (user %.2f s, sys %.2f s) |\n\n",
		a.CPUS, a.DurationS, a.CPUPct, a.CPUUserS, a.CPUSysS)
}

func writeGlance(w io.Writer, rs []*kindResult) {
	fmt.Fprintln(w, "## At a glance")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| attack | ordinary 2xx % (baseline → attack) | 2xx/s attack / baseline | p99 ms (baseline → attack) | Gozer RSS per attacking conn | Gozer open files peak | origin conns peak | attackers closed by server (median alive) | attacker CPU |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		a := r.attacker
		alive := ""
		if a.ClosedByServer > 0 {
			alive = fmt.Sprintf(" (%.1f s)", a.AliveMedianS)
		}
		fmt.Fprintf(w, "| %s × %s | %.2f → %.2f | %s | %.2f → %.2f | %.1f KiB | %.0f | %.0f | %d of %d%s | %.2f s (%.1f %% of a core) |\n",
			r.kind, r.meta["conns"], r.base.SuccessPct, r.attack.SuccessPct, ratio(r.attack.OKRate, r.base.OKRate),
			r.base.P99Ms, r.attack.P99Ms, (r.rssPeak-r.rssBefore)/float64(max(a.MaxOpen, 1)),
			r.fdsPeak, r.originPeak, a.ClosedByServer, a.Opened, alive, a.CPUS, a.CPUPct)
	}
	fmt.Fprintln(w)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// pct prints a share of a core. "Other jobs" is busy time less this run's processes,
// two clocks that differ by a few ticks: a small negative figure is none.
func pct(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.0f %%", max(v, 0))
}

// counts prints a tally largest first: "503 FAILURE_X: 120, timeout: 3", or "none".
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(x, y string) int {
		if m[x] != m[y] {
			return m[y] - m[x]
		}
		return strings.Compare(x, y)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, "; ")
}

// anyBareStatus: some of the server's answers in a closed-by tally ("408, then close")
// named no X-Gozer-Status cause.
func anyBareStatus(closedBy map[string]int) bool {
	for k := range closedBy {
		answer, _, _ := strings.Cut(k, ", then ")
		if _, err := strconv.Atoi(answer); err == nil {
			return true
		}
	}
	return false
}

func countsPrefixed(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	return " (" + counts(m) + ")"
}
