package origin

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// AdaptiveConfig is an origin's adaptive concurrency limit:
// origins.NAME.adaptive_concurrency. Zero values take the defaults shown.
type AdaptiveConfig struct {
	// Algorithm is gradient2 (the default) or vegas.
	Algorithm string
	// MinLimit and MaxLimit bound the limit (defaults 5 and 1000);
	// InitialLimit is where it starts (default 20).
	MinLimit, MaxLimit, InitialLimit int
	// Window is how long samples are gathered before the limit moves (default 100 ms).
	Window time.Duration
	// LongWindow is how many windows the gradient2 long-term latency average
	// spans (default 20, i.e. 2 s at the default window).
	LongWindow int
	// Tolerance is how much slower than its long-term average the origin may
	// answer before gradient2 lowers the limit (default 1.5: 50 % slower).
	Tolerance float64
}

// Adaptive algorithms.
const (
	AlgoGradient2 = "gradient2"
	AlgoVegas     = "vegas"
)

// withDefaults fills the zero values of c and checks it.
func (c AdaptiveConfig) withDefaults() (AdaptiveConfig, error) {
	if c.Algorithm == "" {
		c.Algorithm = AlgoGradient2
	}
	if c.Algorithm != AlgoGradient2 && c.Algorithm != AlgoVegas {
		return c, fmt.Errorf("algorithm must be gradient2 or vegas, got %q", c.Algorithm)
	}
	if c.MinLimit <= 0 {
		c.MinLimit = 5
	}
	if c.MaxLimit <= 0 {
		c.MaxLimit = 1000
	}
	if c.InitialLimit <= 0 {
		c.InitialLimit = 20
	}
	if c.MaxLimit < c.MinLimit {
		return c, fmt.Errorf("max_limit %d below min_limit %d", c.MaxLimit, c.MinLimit)
	}
	c.InitialLimit = min(max(c.InitialLimit, c.MinLimit), c.MaxLimit)
	if c.Window <= 0 {
		c.Window = 100 * time.Millisecond
	}
	if c.LongWindow <= 0 {
		c.LongWindow = 20
	}
	if c.Tolerance < 1 {
		c.Tolerance = 1.5
	}
	return c, nil
}

// Adaptive is a concurrency limit that follows the origin's latency, as
// Netflix's concurrency-limits do (gradient2 or Vegas): an origin that slows
// down gets fewer requests at once, a healthy one is not throttled.
//
// The request path is lock-free: TryAcquire is a CAS on the in-flight count
// against the current limit (an atomic load); Release is three atomic adds
// and a load of the window's end. Once per Window, the one Release that wins
// a try-flag (a CAS; the others never wait) computes the next limit from the
// window's average latency, alone: the algorithm's state (estimate, long-term
// average, no-load latency) is only touched under that flag. A sample that
// lands between the swaps of the window's sums may be counted in the next
// window: an approximation the algorithm does not notice.
//
// Safe for concurrent use by every event loop.
type Adaptive struct {
	_        [64]byte
	inFlight atomic.Int64
	_        [56]byte
	limit    atomic.Int64
	peak     atomic.Int64 // the highest in-flight count of the window
	rejected atomic.Int64
	_        [40]byte
	sumRTT   atomic.Int64 // ns of the window's samples
	samples  atomic.Int64
	drops    atomic.Int64 // timeouts and failures of the window
	next     atomic.Int64 // when the window ends (unix ns)
	updating atomic.Bool
	_        [64]byte

	cfg AdaptiveConfig
	// The algorithm's state: only the holder of updating touches it.
	est     float64
	longRTT float64
	noLoad  float64 // vegas: the least latency seen (since the last probe)
	windows int
}

// NewAdaptive returns the adaptive limit of cfg.
func NewAdaptive(cfg AdaptiveConfig) (*Adaptive, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Adaptive{cfg: c, est: float64(c.InitialLimit)}
	a.limit.Store(int64(c.InitialLimit))
	return a, nil
}

// Config is the settings in use (defaults filled in).
func (a *Adaptive) Config() AdaptiveConfig { return a.cfg }

// TryAcquire takes a slot under the current limit; false (counted) when the
// limit's worth of requests are in flight. Every true needs one Release.
func (a *Adaptive) TryAcquire() bool {
	lim := a.limit.Load()
	for {
		n := a.inFlight.Load()
		if n >= lim {
			a.rejected.Add(1)
			return false
		}
		if a.inFlight.CompareAndSwap(n, n+1) {
			if n+1 > a.peak.Load() {
				a.peak.Store(n + 1) // racy max: a lost update only understates the peak a little
			}
			return true
		}
	}
}

// Release gives back a slot: outcome Success samples rtt (ns, admission to
// end); Failure and Timeout count as drops (the limit falls); Canceled
// samples nothing. now is the caller's clock (unix ns).
func (a *Adaptive) Release(outcome Outcome, rtt, now int64) {
	a.inFlight.Add(-1)
	switch outcome {
	case Success:
		a.sumRTT.Add(max(rtt, 1))
		a.samples.Add(1)
	case Failure, Timeout:
		a.drops.Add(1)
	}
	if now >= a.next.Load() && a.updating.CompareAndSwap(false, true) {
		a.update(now)
		a.updating.Store(false)
	}
}

// Limit is the current limit.
func (a *Adaptive) Limit() int64 { return a.limit.Load() }

// InFlight is the number of slots taken.
func (a *Adaptive) InFlight() int64 { return a.inFlight.Load() }

// Rejected counts the requests refused over the limit since start.
func (a *Adaptive) Rejected() int64 { return a.rejected.Load() }

// update ends the window at now and computes the next limit. Holder of
// updating only.
func (a *Adaptive) update(now int64) {
	if a.next.Load() == 0 {
		a.next.Store(now + int64(a.cfg.Window)) // the first window starts now
		return
	}
	a.next.Store(now + int64(a.cfg.Window))
	n, sum, drops := a.samples.Swap(0), a.sumRTT.Swap(0), a.drops.Swap(0)
	peak := float64(a.peak.Swap(a.inFlight.Load()))
	if n == 0 && drops == 0 {
		return
	}
	var rtt float64
	if n > 0 {
		rtt = float64(sum) / float64(n)
	}
	if a.cfg.Algorithm == AlgoVegas {
		a.est = a.vegas(rtt, drops > 0, peak)
	} else {
		a.est = a.gradient2(rtt, drops > 0, peak)
	}
	a.est = min(max(a.est, float64(a.cfg.MinLimit)), float64(a.cfg.MaxLimit))
	a.limit.Store(int64(a.est))
}

// gradient2 is Netflix's Gradient2Limit over one window: the ratio of the
// long-term latency average to the window's (with tolerance) scales the
// limit, sqrt(limit) of queue lets it grow, and 0.2 of smoothing damps it.
func (a *Adaptive) gradient2(rtt float64, dropped bool, peak float64) float64 {
	est := a.est
	if rtt == 0 { // failures only: halve, smoothed
		return est * 0.9
	}
	a.windows++
	if a.longRTT == 0 {
		a.longRTT = rtt
	} else {
		a.longRTT += (rtt - a.longRTT) / float64(min(a.windows, a.cfg.LongWindow))
	}
	if a.longRTT/rtt > 2 {
		// Latency is back to normal after a slow spell: forget the slow
		// spell faster than the average would.
		a.longRTT *= 0.9
	}
	gradient := max(0.5, min(1.0, a.cfg.Tolerance*a.longRTT/rtt))
	if dropped {
		gradient = 0.5
	}
	next := est*gradient + math.Sqrt(est)
	const smoothing = 0.2
	next = est*(1-smoothing) + next*smoothing
	if peak < est/2 {
		// The traffic does not use half the limit: it says nothing about
		// more, so the limit may only fall (Netflix's gradient2 freezes it
		// altogether, and then never sheds load that stays under half).
		return min(next, est)
	}
	return next
}

// vegasProbe: every this many windows Vegas forgets its no-load latency, so
// an origin that became slower for good is judged against its new normal.
const vegasProbe = 600

// vegas is TCP Vegas' estimate, as Netflix's VegasLimit: queue = limit ×
// (1 − no-load latency / latency); a short queue grows the limit, a long one
// shrinks it, by log10(limit).
func (a *Adaptive) vegas(rtt float64, dropped bool, peak float64) float64 {
	est := a.est
	step := max(1, math.Log10(est))
	if dropped || rtt == 0 {
		return est - step
	}
	a.windows++
	if a.noLoad == 0 || rtt < a.noLoad || a.windows%vegasProbe == 0 {
		a.noLoad = rtt
	}
	queue := est * (1 - a.noLoad/rtt)
	alpha, beta := 3*step, 6*step
	switch {
	case queue > beta:
		return est - step
	case peak*2 < est:
		return est // the traffic does not use half the limit: no growth
	case queue <= step:
		return est + beta
	case queue < alpha:
		return est + step
	}
	return est
}
