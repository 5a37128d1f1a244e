package loop

import (
	"testing"
	"time"

	"gozer/filters"
)

// TestClockFollowsTheWallClock: the loop's clock reads the wall clock once per
// clockAnchor and runs on the monotonic clock in between; its unix time stays
// within a millisecond of time.Now's across anchors, its Mono is filters.Mono's
// and never goes back.
func TestClockFollowsTheWallClock(t *testing.T) {
	var c clock
	var lastNow, lastMono int64
	anchors := 0
	deadline := time.Now().Add(3 * clockAnchor)
	for time.Now().Before(deadline) {
		before := filters.Mono()
		wallBefore := time.Now().UnixNano()
		anchor := c.anchorWall
		now := c.read()
		wallAfter := time.Now().UnixNano()
		after := filters.Mono()
		if c.anchorWall != anchor {
			anchors++
		}
		if now < wallBefore-int64(time.Millisecond) || now > wallAfter+int64(time.Millisecond) {
			t.Fatalf("clock %d outside the wall clock's [%d, %d] ± 1 ms", now, wallBefore, wallAfter)
		}
		if c.mono < before || c.mono > after {
			t.Fatalf("mono %d outside filters.Mono's [%d, %d]", c.mono, before, after)
		}
		// The wall time may step back at an anchor by what NTP slewed since
		// the last one (≤ 500 ppm of clockAnchor); the monotonic time never.
		if now < lastNow-int64(clockAnchor)/2000 || c.mono < lastMono {
			t.Fatalf("went back: now %d after %d, mono %d after %d", now, lastNow, c.mono, lastMono)
		}
		if c.mono-c.anchorM >= int64(clockAnchor) {
			t.Fatalf("ran %v past its anchor", time.Duration(c.mono-c.anchorM))
		}
		lastNow, lastMono = now, c.mono
		time.Sleep(time.Millisecond)
	}
	// 3 anchors' worth of time: the first read, then one per clockAnchor (a
	// slow or loaded machine may stretch the loop and skip one: at least 2,
	// and no more than one per anchor's worth of time and a spare).
	if anchors < 2 || anchors > 5 {
		t.Fatalf("%d wall clock readings over %v", anchors, 3*clockAnchor)
	}
}
