package filters

import "time"

// Async filters. A filter that does I/O (asks an auth service, a feature-flag
// service) does not block its event loop: it starts the I/O and the request
// is suspended; the loop serves everyone else; when the answer comes, the
// request resumes on the same loop, in the same filter, and the chain goes
// on. This is Zuul's async filter. The core gives a Context two hooks for it:
// Calls, which makes side calls through the named-origin machinery, and
// Resume, which a chain calls when a suspended phase has finished.

// SideCall is a request an async filter sends to a named origin: through
// that origin's pools on the request's own loop, its balancer, bulkhead,
// breaker, retries and outlier ejection, like a proxied request.
type SideCall struct {
	Origin  string
	Method  string // "" is GET
	Path    string // request-target, "/" when empty
	Host    string // "" is the origin's default host
	Headers []Header
	Body    []byte
	// Timeout bounds the whole call (0: the origin's call_timeout, else
	// filters.call_timeout).
	Timeout time.Duration
	// MaxBody caps the answer's body (0, or more than filters.max_body_bytes:
	// filters.max_body_bytes).
	MaxBody int
}

// SideResult is a side call's outcome: the origin's answer (Err empty, any
// status), or why there is none (Err, with Cause: a timeout, an open
// breaker, no server, a connect failure, an answer too large).
type SideResult struct {
	Status  int
	Headers []Header // as the origin sent them, in order
	Body    []byte
	Err     string
	Cause   Cause
}

// Caller makes the side calls of one request. Loop goroutine only.
type Caller interface {
	// Call starts c and returns a handle to abandon it. done runs on the
	// loop exactly once unless the call is cancelled first, and never before
	// Call returned (a call that fails at once completes at the end of the
	// current callback). res is valid until done returns.
	Call(c *SideCall, done func(res *SideResult)) Pending
}

// Pending is a side call in flight.
type Pending interface {
	// Cancel abandons the call: its connection is closed (its answer is not
	// known to be complete), its done never runs. Loop goroutine only.
	Cancel()
}

// The causes of async filters and side calls.
var (
	// LocalTooManySuspended: the loop holds filters.max_suspended requests
	// waiting on async filters; a request that would wait too is refused.
	LocalTooManySuspended = Cause{"FAILURE_LOCAL_TOO_MANY_SUSPENDED", CategoryLocalFailure, 503}
	// LocalCallTimeout: a side call ran past its timeout (the filter gets
	// nil, "timeout"; the side call's own access-log line says this).
	LocalCallTimeout = Cause{"FAILURE_LOCAL_CALL_TIMEOUT", CategoryLocalFailure, 504}
	// LocalCallTooLarge: a side call's answer was larger than its cap.
	LocalCallTooLarge = Cause{"FAILURE_LOCAL_CALL_RESPONSE_TOO_LARGE", CategoryLocalFailure, 502}
	// LocalCallAbandoned: the request that made a side call ended (its client
	// left) before the answer came.
	LocalCallAbandoned = Cause{"FAILURE_LOCAL_CALL_ABANDONED", CategoryLocalFailure, 499}
)
