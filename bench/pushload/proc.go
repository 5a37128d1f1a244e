package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Readings of the target from /proc: its process tree (nginx: master + worker), the
// memory it holds in user space and the CPU time it used.

// procTree returns root and all its descendants.
func procTree(root int) []int {
	if root <= 0 {
		return nil
	}
	parent := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := statField(pid, 1); pp > 0 {
			parent[int(pp)] = append(parent[int(pp)], pid)
		}
	}
	out := []int{root}
	for k := 0; k < len(out); k++ {
		out = append(out, parent[out[k]]...)
	}
	return out
}

// statField returns field k (0-based) of /proc/PID/stat after the command name, which
// may hold spaces: 0 is the state, 1 ppid, 11 utime, 12 stime. -1 if unreadable.
func statField(pid, k int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 {
		b = b[i+1:]
	}
	f := bytes.Fields(b)
	if k >= len(f) {
		return -1
	}
	v, err := strconv.ParseInt(string(f[k]), 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// memKiB sums Rss and Pss (smaps_rollup; VmRSS from status when that is missing) over
// the tree of root. Pss splits pages shared between processes (nginx's shared memory
// zone, touched by master and worker) so that they are counted once.
func memKiB(root int) (rss, pss int64) {
	for _, pid := range procTree(root) {
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

// cpuTicks is utime+stime over the tree of root, in clock ticks.
func cpuTicks(root int) int64 {
	var t int64
	for _, pid := range procTree(root) {
		if u, s := statField(pid, 11), statField(pid, 12); u >= 0 && s >= 0 {
			t += u + s
		}
	}
	return t
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
