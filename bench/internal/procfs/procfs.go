// Package procfs reads what the load generators of bench/ need from /proc: a
// process tree, fields of /proc/PID/stat and the exact CPU time of a tree.
// Linux only; any goroutine.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Tree returns root and all its descendants (nginx: master + workers).
func Tree(root int) []int {
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
		if pp := StatField(pid, 1); pp > 0 {
			parent[int(pp)] = append(parent[int(pp)], pid)
		}
	}
	out := []int{root}
	for k := 0; k < len(out); k++ {
		out = append(out, parent[out[k]]...)
	}
	return out
}

// StatField returns field k (0-based) of /proc/PID/stat after the command
// name, which may hold spaces: 0 is the state, 1 ppid, 11 utime, 12 stime. -1
// if unreadable.
func StatField(pid, k int) int64 {
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

// CPUNanos is the CPU time used so far by the tree of root, in ns: the sum
// over its threads of /proc/PID/task/TID/schedstat (exact ns, where
// utime+stime come in 10 ms ticks, too coarse for short runs). Threads that
// already exited are not in it; the targets' threads live as long as they do
// (Go's too: the runtime parks them, it does not end them).
func CPUNanos(root int) int64 {
	var t int64
	for _, pid := range Tree(root) {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
			if err != nil {
				continue
			}
			f, _, _ := strings.Cut(string(b), " ")
			n, _ := strconv.ParseInt(f, 10, 64)
			t += n
		}
	}
	return t
}

// CoreBusyTicks reads /proc/stat and returns, for each of cores, its busy
// clock ticks so far (user nice system irq softirq steal; idle and iowait are
// not busy): the difference of two readings tells how busy each core was.
func CoreBusyTicks(cores []int) map[int]int64 {
	out := map[int]int64{}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return out
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil || !slices.Contains(cores, n) {
			continue
		}
		for _, k := range []int{1, 2, 3, 6, 7, 8} {
			v, _ := strconv.ParseInt(f[k], 10, 64)
			out[n] += v
		}
	}
	return out
}
