package origin

import (
	"sync/atomic"
	"time"
)

// RetryBudgetConfig is origins.NAME.retry_budget.
type RetryBudgetConfig struct {
	// Ratio is the share of requests that may be retried over the window (0.2: one
	// retry per five requests). Negative: retries are never budgeted away.
	Ratio float64
	// MinPerSecond is a floor of retries per second that is always allowed, so an
	// origin with little traffic can still retry at all.
	MinPerSecond int
	// Window is the span the ratio is measured over, in whole seconds (1 s buckets).
	Window time.Duration
}

// Retry budget defaults: Envoy's budget_percent is 20 %, Finagle's RetryBudget
// allows 20 % over 10 s plus 10 retries per second.
const (
	DefaultRetryRatio        = 0.2
	DefaultRetryMinPerSecond = 10
	DefaultRetryWindow       = 10 * time.Second
	maxRetryWindowBuckets    = 300
)

// RetryBudget keeps one origin's retries to a share of its requests over a sliding
// window, so an origin in trouble gets at most ratio more load from retries, not a
// retry storm that multiplies its traffic by the attempt count.
//
// A RetryBudget is safe for concurrent use. RecordRequest is one CAS on the current
// bucket; TryRetry sums the buckets (only on the rare retry). Two loops retrying at
// the same instant may both take the last retry: the overshoot is bounded by the
// number of loops, which is the price of not locking.
type RetryBudget struct {
	ratio   float64
	reserve uint64 // MinPerSecond × window seconds
	win     *window
	granted atomic.Int64 // retries TryRetry allowed since start
}

// NewRetryBudget builds a budget; zero fields take the defaults above.
func NewRetryBudget(cfg RetryBudgetConfig) *RetryBudget {
	if cfg.Ratio == 0 {
		cfg.Ratio = DefaultRetryRatio
	}
	if cfg.MinPerSecond < 0 {
		cfg.MinPerSecond = 0
	} else if cfg.MinPerSecond == 0 {
		cfg.MinPerSecond = DefaultRetryMinPerSecond
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultRetryWindow
	}
	secs := min(max(int(cfg.Window/time.Second), 1), maxRetryWindowBuckets)
	return &RetryBudget{
		ratio:   cfg.Ratio,
		reserve: uint64(cfg.MinPerSecond) * uint64(secs),
		win:     newWindow(secs, int64(time.Second)),
	}
}

// RecordRequest counts one request (not one attempt) to the origin at now.
func (r *RetryBudget) RecordRequest(now int64) { r.win.add(now, 1, 0) }

// TryRetry reports whether one more retry fits the budget at now and, when it
// does, counts it: retries ≤ ratio × requests + MinPerSecond × window.
func (r *RetryBudget) TryRetry(now int64) bool {
	if r.ratio < 0 {
		r.win.add(now, 0, 1)
		r.granted.Add(1)
		return true
	}
	reqs, retries := r.win.sum(now)
	if float64(retries+1) > r.ratio*float64(reqs)+float64(r.reserve) {
		return false
	}
	r.win.add(now, 0, 1)
	r.granted.Add(1)
	return true
}

// Retries counts the retries TryRetry allowed since start (every attempt after
// a request's first that asked the budget). Any goroutine.
func (r *RetryBudget) Retries() int64 { return r.granted.Load() }

// Counts returns the requests and retries in the window at now.
func (r *RetryBudget) Counts(now int64) (requests, retries uint64) { return r.win.sum(now) }
