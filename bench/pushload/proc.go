package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"gozer/bench/internal/procfs"
)

// Readings of the target from /proc: its process tree (nginx: master + worker), the
// memory it holds in user space and the CPU time it used.

// memKiB sums Rss and Pss (smaps_rollup; VmRSS from status when that is missing) over
// the tree of root. Pss splits pages shared between processes (nginx's shared memory
// zone, touched by master and worker) so that they are counted once.
func memKiB(root int) (rss, pss int64) {
	for _, pid := range procfs.Tree(root) {
		r, p := smapsRollup(pid)
		if r < 0 {
			r, p = statusRSS(pid), -1
		}
		rss += max(r, 0)
		if p >= 0 {
			pss += p
		}
	}
	return rss, pss
}

func smapsRollup(pid int) (rss, pss int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return -1, -1
	}
	defer f.Close()
	rss, pss = -1, -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "Rss":
			rss = n
		case "Pss":
			pss = n
		}
	}
	return rss, pss
}

func statusRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

// goHeap GETs a Go pprof heap URL (…/debug/pprof/heap?gc=1&debug=1: a GC first, then the
// profile, which ends with runtime.MemStats as "# Name = value" lines) and returns those.
func goHeap(url string) (map[string]int64, error) {
	c := http.Client{Timeout: 60 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	stats := map[string]int64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, val, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = ")
		if !ok || !strings.HasPrefix(line, "# ") {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64); err == nil {
			stats[name] = n
		}
	}
	return stats, nil
}

// cpuSnap is a reading of the CPU time used so far by the target, by this program and by
// the measured cores as a whole (/proc/stat): the difference of two readings tells how
// busy each side was, and how much CPU other jobs on the machine took from those cores,
// which would disturb the figures.
type cpuSnap struct {
	at           time.Time
	target, self int64 // ns
	cores        int64 // clock ticks
}

func takeSnap(pid int, cores []int) cpuSnap {
	s := cpuSnap{at: time.Now(), target: procfs.CPUNanos(pid), self: procfs.CPUNanos(os.Getpid())}
	for _, ticks := range procfs.CoreBusyTicks(cores) {
		s.cores += ticks
	}
	return s
}

// cpuPcts returns, between a and b, the target's and this program's CPU and what else
// ran on the measured cores, each in % of one core. The cores' figure comes in clock
// ticks: over less than a second or so "other" is mostly rounding.
func cpuPcts(a, b cpuSnap, tck int64) (target, self, other float64) {
	wall := float64(b.at.Sub(a.at))
	if wall <= 0 {
		return 0, 0, 0
	}
	t, s := float64(b.target-a.target), float64(b.self-a.self)
	cores := float64(b.cores-a.cores) * 1e9 / float64(tck)
	return 100 * t / wall, 100 * s / wall, 100 * max(0, cores-t-s) / wall
}
