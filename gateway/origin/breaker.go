package origin

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/afex/hystrix-go/hystrix"
)

// Outcome is how a request to an origin ended, as its breaker counts it.
type Outcome uint8

const (
	// Success: the origin answered (any status the core does not count as failure).
	Success Outcome = iota
	// Failure: connect failure, reset, bad response, or a 5xx the core counts.
	Failure
	// Timeout: the origin did not answer within the read timeout. Counts as an error.
	Timeout
	// Canceled: the client left first; the origin's health is unknown, nothing is counted.
	Canceled
)

// hystrix event names, one slice each so that ReportEvent never needs a new one.
var (
	evSuccess = []string{"success"}
	evFailure = []string{"failure"}
	evTimeout = []string{"timeout"}
)

// BreakerConfig is the origin's circuit breaker: origins.NAME.breaker.
type BreakerConfig struct {
	// ErrorPercentThreshold opens the breaker when errors reach this share (0–100)
	// of the requests in the last 10 s. 0 means hystrix's default, 50.
	ErrorPercentThreshold int
	// RequestVolumeThreshold is the least number of requests in the last 10 s
	// before the error share is judged at all. 0 means hystrix's default, 20.
	RequestVolumeThreshold int
	// SleepWindow is how long the breaker stays open before it lets one trial
	// request through. 0 means hystrix's default, 5 s.
	SleepWindow time.Duration
	// Enabled turns the breaker on; a disabled breaker allows everything.
	Enabled bool
	// HystrixSample is the least time between two outcomes copied into hystrix-go's
	// circuit, for its metrics and dashboard stream. 0 means 1 ms (≤ 1000 events/s
	// per origin, well within hystrix's 2000-event channel); negative: no copy.
	// The copies wait in the breaker until ForwardSamples hands them over.
	HystrixSample time.Duration
	// Clock gives unix nanoseconds to Allow and Report; nil means time.Now. The
	// request path should call AllowAt and ReportAt with the loop's cached clock.
	Clock func() int64
}

const (
	defaultErrorPercent  = 50 // hystrix.DefaultErrorPercentThreshold
	defaultRequestVolume = 20 // hystrix.DefaultVolumeThreshold
	defaultSleepWindow   = 5 * time.Second
	breakerBuckets       = 10 // 10 × 1 s, hystrix's rolling window
	defaultHystrixSample = time.Millisecond
)

// Breaker is one origin's circuit breaker: closed (requests flow, outcomes are
// counted over a 10 × 1 s rolling window), open (requests are refused for the sleep
// window), half-open (one trial request is out: its success closes the breaker, its
// failure opens it for another sleep window).
//
// The decision is Gozer's own, lock-free. hystrix-go's circuit was measured unfit for
// the request path (ISOLATION.md, "Why the breaker does not use hystrix-go's
// decision"). Its AllowRequest takes six read locks and walks maps (200–580 ns). Its
// ReportEvent allocates three objects and costs its metrics goroutine another
// ~2.6 µs per event. It drops events once that goroutine lacks CPU (42–47 % at 200k/s
// on busy loops), so it opens late, or, CPU-starved, not at all. It closes on any
// success that lands while it is open (a straggler). And it reads the wall clock, so
// it cannot be tested without sleeping. The breaker still registers the origin as a
// hystrix command (ConfigureCommand with the same three settings) and copies a
// time-sampled stream of outcomes into its circuit (ReportEvent), so hystrix's
// metrics and dashboard stream show each origin's volume and error share.
//
// The copy is handed over off the request path. ReportEvent sends on a channel
// whose reader, hystrix's metrics goroutine, is usually parked: each send woke
// it, which woke an idle thread to run it, and on the proxy's core that thread
// pre-empted the event loop (bench/README.md, "Thread wake-ups under load": ~4 context
// switches per copy, most of Gozer's switches under load). So the loop only
// queues the sampled outcome (pending), and ForwardSamples, called every
// 100 ms by the server's tick goroutine, sends what queued.
//
// A Breaker is safe for concurrent use: every event loop calls AllowAt and ReportAt
// on the request path; they use atomics only and do not allocate (the sampled
// hystrix copy, at most once per HystrixSample per origin, holds a mutex for
// an append; ForwardSamples holds it for a swap).
type Breaker struct {
	name    string
	enabled bool
	percent uint64
	volume  uint64
	sleep   int64
	sample  int64
	clock   func() int64
	circuit *hystrix.CircuitBreaker
	sink    hystrixSink // circuit, or a test's recorder

	// The sampled copies not yet handed to sink (mirror appends, ForwardSamples
	// takes them; at most maxPendingSamples: beyond, a late forwarder loses copies).
	pendingMu sync.Mutex
	pending   []hystrixEvent
	spare     []hystrixEvent // the slice the last ForwardSamples sent from, for reuse

	// st is the state: 0 closed; > 0 open since st (unix ns); < 0 half-open, the
	// trial let through at -st. One word so that a transition is one CAS.
	st         atomic.Int64
	lastSample atomic.Int64
	opens      atomic.Int64
	win        *window
}

// NewBreaker builds the breaker of origin and registers it with hystrix-go.
func NewBreaker(origin string, cfg BreakerConfig) *Breaker {
	b := &Breaker{
		name: origin, enabled: cfg.Enabled,
		percent: uint64(cfg.ErrorPercentThreshold), volume: uint64(cfg.RequestVolumeThreshold),
		sleep: int64(cfg.SleepWindow), sample: int64(cfg.HystrixSample), clock: cfg.Clock,
		win: newWindow(breakerBuckets, int64(time.Second)),
	}
	if cfg.ErrorPercentThreshold <= 0 {
		b.percent = defaultErrorPercent
	}
	if cfg.RequestVolumeThreshold <= 0 {
		b.volume = defaultRequestVolume
	}
	if cfg.SleepWindow <= 0 {
		b.sleep = int64(defaultSleepWindow)
	}
	if cfg.HystrixSample == 0 {
		b.sample = int64(defaultHystrixSample)
	}
	if b.clock == nil {
		b.clock = wallClock
	}
	hystrix.ConfigureCommand(origin, hystrix.CommandConfig{
		ErrorPercentThreshold:  int(b.percent),
		RequestVolumeThreshold: int(b.volume),
		SleepWindow:            int(max(time.Duration(b.sleep)/time.Millisecond, 1)),
	})
	// GetCircuit never fails in this hystrix-go version; a nil circuit only turns the
	// metrics copy off.
	b.circuit, _, _ = hystrix.GetCircuit(origin)
	if b.circuit != nil {
		b.sink = b.circuit
	}
	return b
}

// maxPendingSamples bounds the copies waiting for ForwardSamples: a second's
// worth at the default sample period, ten ticks of the forwarder.
const maxPendingSamples = 1024

// hystrixEvent is one sampled outcome waiting for ForwardSamples.
type hystrixEvent struct {
	ev         []string // evSuccess, evFailure or evTimeout
	start, end int64    // unix ns
}

// hystrixSink is where ForwardSamples sends outcomes: hystrix's circuit.
type hystrixSink interface {
	ReportEvent(eventTypes []string, start time.Time, runDuration time.Duration) error
}

func wallClock() int64 { return time.Now().UnixNano() }

// Allow is AllowAt with the breaker's clock.
func (b *Breaker) Allow() bool { return b.AllowAt(b.clock()) }

// AllowAt reports whether a request may go to the origin at now. While open, once
// the sleep window has passed, exactly one caller gets true: the trial. A trial
// whose outcome never comes back (ReportAt not called, or Canceled) is replaced by
// another one a sleep window later, so the breaker cannot stick half-open.
func (b *Breaker) AllowAt(now int64) bool {
	s := b.st.Load()
	if s == 0 || !b.enabled {
		return true
	}
	since := s
	if s < 0 {
		since = -s
	}
	if now-since < b.sleep {
		return false
	}
	return b.st.CompareAndSwap(s, -max(now, 1))
}

// Refusing reports whether AllowAt would refuse at now, without taking the trial.
// Failover (Table.Resolve) asks this: an open origin whose trial is due must get
// the trial, or it would never close.
func (b *Breaker) Refusing(now int64) bool {
	s := b.st.Load()
	if s == 0 || !b.enabled {
		return false
	}
	if s < 0 {
		s = -s
	}
	return now-s < b.sleep
}

// Report is ReportAt for a request that started at start and took dur.
func (b *Breaker) Report(outcome Outcome, start time.Time, dur time.Duration) {
	s := start.UnixNano()
	b.ReportAt(outcome, s, s+int64(dur))
}

// ReportAt counts the outcome of a request admitted at start (the now given to
// AllowAt, or later) that ended at end. Call it once per admitted request.
//
// Closed: the outcome is counted; a failure that brings the window to the volume
// and error thresholds opens the breaker. Half-open: the trial's outcome closes
// (success, with a fresh window) or re-opens it (error). Any other report made while
// not closed is a straggler admitted before the breaker opened: it changes nothing,
// where hystrix-go would close the circuit on its success.
func (b *Breaker) ReportAt(outcome Outcome, start, end int64) {
	if !b.enabled || outcome == Canceled {
		return
	}
	failed := uint64(0)
	if outcome != Success {
		failed = 1
	}
	s := b.st.Load()
	switch {
	case s == 0:
		b.win.add(end, 1, failed)
		if failed == 1 && b.tripped(end) && b.st.CompareAndSwap(0, max(end, 1)) {
			b.opens.Add(1)
		}
	case s < 0 && start > -s-b.sleep:
		// Only the trial was admitted after the breaker opened (at -s - sleep or
		// earlier), so a request that started since then is the trial; the margin of
		// a sleep window absorbs clock skew between event loops.
		if failed == 1 {
			b.st.CompareAndSwap(s, max(end, 1))
		} else {
			b.win.reset()
			b.st.CompareAndSwap(s, 0)
		}
	}
	b.mirror(outcome, start, end)
}

// tripped reports whether the window at now is over both thresholds. hystrix-go
// opens when requests ≥ volume and round(errors/requests·100) ≥ percent; this is
// the same without the rounding.
func (b *Breaker) tripped(now int64) bool {
	reqs, errs := b.win.sum(now)
	return reqs >= b.volume && errs*100 >= b.percent*reqs
}

// mirror queues one outcome per sample period for hystrix-go's circuit. Sampling
// in time keeps the error share unbiased while bounding what hystrix keeps (it
// stores every duration for 60 s) and what its one metrics goroutine must process.
func (b *Breaker) mirror(outcome Outcome, start, end int64) {
	if b.sample < 0 || b.sink == nil {
		return
	}
	last := b.lastSample.Load()
	if end-last < b.sample || !b.lastSample.CompareAndSwap(last, end) {
		return
	}
	ev := evSuccess
	switch outcome {
	case Failure:
		ev = evFailure
	case Timeout:
		ev = evTimeout
	}
	b.pendingMu.Lock()
	if len(b.pending) < maxPendingSamples { // beyond, hystrix's numbers (advisory) lose it
		if b.pending == nil {
			b.pending = make([]hystrixEvent, 0, 128)
		}
		b.pending = append(b.pending, hystrixEvent{ev: ev, start: start, end: end})
	}
	b.pendingMu.Unlock()
}

// ForwardSamples hands the queued outcomes to hystrix-go's circuit (its metrics
// goroutine applies them). The server calls it every 100 ms for the origins of
// the configuration in service, and once for those a reload replaced; two
// calls at once each send what they took, nothing twice.
func (b *Breaker) ForwardSamples() {
	if b.sink == nil {
		return
	}
	b.pendingMu.Lock()
	out := b.pending
	b.pending, b.spare = b.spare[:0], nil // spare: the slice the last call sent from
	b.pendingMu.Unlock()
	for _, e := range out {
		// A full hystrix channel only loses this sample; hystrix's numbers are advisory.
		_ = b.sink.ReportEvent(e.ev, time.Unix(0, e.start), time.Duration(e.end-e.start))
	}
	b.pendingMu.Lock()
	if b.spare == nil {
		b.spare = out[:0]
	}
	b.pendingMu.Unlock()
}

// Enabled reports whether the breaker judges at all (breaker.enabled); a
// disabled one is always closed and counts nothing.
func (b *Breaker) Enabled() bool { return b.enabled }

// Open reports whether the breaker is not closed (open or half-open).
func (b *Breaker) Open() bool { return b.enabled && b.st.Load() != 0 }

// BreakerState is what a breaker is doing.
type BreakerState uint8

// Breaker states.
const (
	Closed BreakerState = iota
	Opened
	HalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case Opened:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "closed"
}

// BreakerStats is a breaker's state and window, for metrics and the admin API.
type BreakerStats struct {
	State          BreakerState
	Requests       uint64 // in the rolling window (closed state only)
	Errors         uint64
	Opens          int64 // times opened since start
	HystrixCircuit string
}

// Stats reads the breaker at now.
func (b *Breaker) Stats(now int64) BreakerStats {
	st := BreakerStats{Opens: b.opens.Load(), HystrixCircuit: b.name}
	switch s := b.st.Load(); {
	case s > 0:
		st.State = Opened
	case s < 0:
		st.State = HalfOpen
	}
	st.Requests, st.Errors = b.win.sum(now)
	return st
}

// Circuit is the hystrix-go circuit that mirrors this breaker's outcomes.
func (b *Breaker) Circuit() *hystrix.CircuitBreaker { return b.circuit }
