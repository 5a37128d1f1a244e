package main

import (
	"os"
	"time"

	"gozer/bench/internal/procfs"
)

// Readings from /proc: the CPU time the proxy (its whole process tree: nginx master +
// worker), the origin and this program used, and how busy the measured cores were, so that
// the harness can tell CPU per handshake and what other jobs took from the cores. The process
// readers are bench/internal/procfs, shared with bench/pushload.

// snap is one reading: CPU time so far of the proxy, the origin and this program (ns),
// and the busy clock ticks (user nice system irq softirq steal) of each measured core.
type snap struct {
	at                  time.Time
	proxy, origin, self int64
	coreTicks           map[int]int64
}

func takeSnap(proxyPID, originPID int, cores []int) snap {
	s := snap{at: time.Now(), self: procfs.CPUNanos(os.Getpid())}
	if proxyPID > 0 {
		s.proxy = procfs.CPUNanos(proxyPID)
	}
	if originPID > 0 {
		s.origin = procfs.CPUNanos(originPID)
	}
	s.coreTicks = procfs.CoreBusyTicks(cores)
	return s
}
