package server

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"

	"gozer/gateway/config"
)

// budgetShare is the part of the machine's memory (or of the cgroup's limit)
// that buffers toward clients may take together when server.max_buffered_total
// is left at 0.
const budgetShare = 8

// fallbackBudget is the budget when the memory size cannot be read.
const fallbackBudget = 256 << 20

// sendBudget is server.max_buffered_total, or an eighth of the memory the
// process may use: the smaller of the machine's and its cgroup's limit.
func sendBudget(s *config.Server) int64 {
	if s.MaxBufferedTotal > 0 {
		return int64(s.MaxBufferedTotal)
	}
	mem := memTotal()
	if lim := cgroupLimit(); lim > 0 && (mem == 0 || lim < mem) {
		mem = lim
	}
	if mem <= 0 {
		return fallbackBudget
	}
	return max(mem/budgetShare, int64(s.MaxBufferedPerConn))
}

// memTotal is MemTotal from /proc/meminfo (0 when unknown).
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// cgroupLimit is the cgroup v2 memory.max of the process (0: none or unknown).
func cgroupLimit() int64 {
	b, err := os.ReadFile("/sys/fs/cgroup/memory.max")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0 // "max": no limit
	}
	return n
}
