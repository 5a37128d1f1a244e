package filters

import "time"

// Injection is a failure injected into one request, to rehearse an origin's
// failure (fault_injection in the config, PUT /admin/faults, or a filter's
// ctx.inject): a delay before the request goes to its origin, then at most
// one of an abort with a status, a reset of the client's connection, or a
// response body slowed to SlowBody bytes per second. The zero value injects
// nothing.
type Injection struct {
	Delay    time.Duration
	Abort    int // status; 0: none
	Reset    bool
	SlowBody int64 // bytes per second; 0: not slowed
	// Rule names where it came from: a fault_injection rule's name, or "lua".
	Rule string
}

// Any reports whether i injects something.
func (i *Injection) Any() bool {
	return i.Delay > 0 || i.Abort != 0 || i.Reset || i.SlowBody > 0
}

// Kinds names what i injects, for the access log and the counters: "delay",
// "abort", "reset", "slow_body", or "delay+abort" and so on. Constant
// strings: no allocation.
func (i *Injection) Kinds() string {
	k := 0
	switch {
	case i.Abort != 0:
		k = 1
	case i.Reset:
		k = 2
	case i.SlowBody > 0:
		k = 3
	}
	if i.Delay > 0 {
		return delayKinds[k]
	}
	return kinds[k]
}

var (
	kinds      = [4]string{"", "abort", "reset", "slow_body"}
	delayKinds = [4]string{"delay", "delay+abort", "delay+reset", "delay+slow_body"}
)

// The causes of injected failures: operators tell a rehearsal from an outage
// by them. An abort answers with the rule's status (the cause's 503 is the
// default); a reset closes the client's connection (499 in the access log).
var (
	LocalInjected      = Cause{"FAILURE_LOCAL_INJECTED", CategoryLocalFailure, 503}
	LocalInjectedReset = Cause{"FAILURE_LOCAL_INJECTED_RESET", CategoryLocalFailure, 499}
	// LocalAdaptiveLimit: the origin's adaptive concurrency limit
	// (origins.NAME.adaptive_concurrency) was reached.
	LocalAdaptiveLimit = Cause{"FAILURE_LOCAL_THROTTLED_ORIGIN_ADAPTIVE", CategoryLocalFailure, 503}
)
