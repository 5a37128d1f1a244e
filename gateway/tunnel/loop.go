package tunnel

import (
	"gozer/gateway/loop"
	"gozer/gateway/telemetry"
)

// Loop is one event loop's tunnels: their timer wheel (idle timeout,
// lifetime, the close handshake's grace) and the drain that closes them all.
// Loop goroutine only.
type Loop struct {
	l       *loop.Loop
	wheel   *loop.Wheel[*Tunnel]
	counts  *telemetry.Tunnels
	scratch []byte // the gateway's own close frames
	// draining: the gateway shuts down; a tunnel that opens now is closed at
	// once (its 101 went out: close 1001 is the polite way to send it away).
	draining bool
}

// NewLoop returns l's tunnels, their timers on l's tick and their close on
// l's drain.
func NewLoop(l *loop.Loop) *Loop {
	lp := &Loop{l: l, counts: l.Shared.Tunnels, scratch: make([]byte, 0, 128)}
	if lp.counts == nil {
		lp.counts = &telemetry.Tunnels{}
	}
	lp.wheel = loop.NewConnWheel(l, (*Tunnel).due, (*Tunnel).onTimer)
	l.OnDrain(lp.drain)
	return lp
}

// Counts are origin name's tunnel counts (node-wide).
func (lp *Loop) Counts(name string) *telemetry.TunnelCounts { return lp.counts.For(name) }

// Len is how many tunnels this loop has (open or closing).
func (lp *Loop) Len() int { return lp.wheel.Len() }

// drain sends close 1001 to both sides of every tunnel of the loop; each
// closes once both echoed, or after the close grace.
func (lp *Loop) drain(now, _ int64) {
	lp.draining = true
	var all []*Tunnel
	lp.wheel.Each(func(t *Tunnel) { all = append(all, t) })
	// Closing reschedules: never while walking the wheel.
	for _, t := range all {
		t.goAway(now, whyDrain, "server restarting")
	}
}
