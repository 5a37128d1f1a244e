package loop

import (
	"time"

	"gozer/filters"
)

// clockAnchor is how long the loop's wall time runs on the monotonic clock
// between two readings of the wall clock.
const clockAnchor = 100 * time.Millisecond

// anchorSkew bounds how long a time.Now taken as an anchor may have spanned
// (from a monotonic reading before it to its own): three tries, then the
// last is kept.
const anchorSkew = 50 * time.Microsecond

// clock is a loop's time: read once per gnet event (Loop.Enter), used by
// everything the event does. time.Now reads two clocks (the wall clock and
// the monotonic one: two vDSO calls, 40 to 80 ns each on a VM's kvm-clock,
// time.Now 106-168 ns against time.Since's 72-80 in a one-off benchmark of
// 2026-12-05 on a busy machine), and the loop reads it about three times per
// proxied request (uprobes on time.now: 2.9-3.1 calls a request through the
// bench's gozer target). So an event reads the monotonic clock only, and the
// wall time is the last wall reading plus the monotonic time since, the wall
// clock being read again every clockAnchor: a step of the system clock shows
// within clockAnchor (an NTP slew changes both clocks' rates alike on Linux).
// An anchor is taken only from a time.Now whose two readings (wall, then
// monotonic) came close together: a thread preempted between them would pair
// an old wall time with a later monotonic one and leave the loop's wall time
// behind by that gap for a whole anchor.
//
// Concurrency: the loop's goroutine only.
type clock struct {
	now, mono           int64 // unix ns and filters.Mono ns, as of the current event
	anchorWall, anchorM int64 // the last wall reading, and Mono when it was taken
}

// read refreshes the clock and returns its unix time.
func (c *clock) read() int64 {
	m := filters.Mono()
	if c.anchorWall == 0 || m-c.anchorM >= int64(clockAnchor) || m < c.anchorM {
		for try := 0; ; try++ {
			at := time.Now()
			c.anchorWall, c.anchorM = at.UnixNano(), filters.MonoOf(at)
			if c.anchorM-m < int64(anchorSkew) || try == 2 {
				break
			}
			m = filters.Mono()
		}
		c.now, c.mono = c.anchorWall, c.anchorM
		return c.now
	}
	c.mono = m
	c.now = c.anchorWall + (m - c.anchorM)
	return c.now
}

// Clock refreshes and returns the loop's time (unix ns): once per gnet event.
func (l *Loop) Clock() int64 { return l.clock.read() }

// Now is the loop's time as of the current event.
func (l *Loop) Now() int64 { return l.clock.now }

// Mono is the loop's time as of the current event on the monotonic clock
// (filters.Mono's scale), without reading the clock again: the passport's
// steps cost no clock read.
func (l *Loop) Mono() int64 { return l.clock.mono }
