package loop

import (
	"runtime"
	"time"
)

// yieldEvery is the longest a loop runs callbacks without passing through Go's
// scheduler: under it, half of the runtime's forcePreemptNS (10 ms).
//
// Why (bench/README.md, "Thread wake-ups under load"): a loop that
// always has events never returns to the scheduler (gnet yields only when
// epoll_wait finds nothing), so its P keeps one schedtick. After 10 ms of that,
// sysmon preempts the goroutine; caught in a read or write syscall (most of a
// loop's time), the P is taken from it and handed to another thread, and
// sysmon, having taken a P, goes back to waking every 20 µs. On the proxy's
// one core each wake pre-empts the loop: measured 1,600-1,760 sysmon wakes a second
// under the bench's load, against ~100 once the loop yields on its own.
const yieldEvery = int64(5 * time.Millisecond)

// gosched is runtime.Gosched (a test counts the calls instead).
var gosched = runtime.Gosched

// maybeYield lets Go's scheduler run other goroutines if the loop has not
// yielded for yieldEvery (its clock as of the callback's start). Called at
// the end of each outermost callback.
func (l *Loop) maybeYield() {
	if l.clock.mono-l.yielded >= yieldEvery {
		l.yielded = l.clock.mono
		gosched()
	}
}
