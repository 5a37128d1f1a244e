package filters

import "time"

// PassportState is one step of a request's way through the gateway, as
// Zuul's Passport records them.
type PassportState uint8

// The steps a passport records. Detail says which filter, origin, server or
// result where it matters.
const (
	PassStart           PassportState = iota + 1 // the request's head was read
	PassFilterStart                              // a filter began (detail: its name)
	PassFilterSuspend                            // an async filter waits on side calls
	PassFilterResume                             // its answers came: it runs again
	PassFilterEnd                                // the filter finished
	PassRoute                                    // the origin was decided (detail: its name)
	PassEndpoint                                 // an endpoint answers instead (detail: its name)
	PassAttemptStart                             // an attempt began (detail: the server)
	PassOriginConnected                          // its connection is ready (detail: "pooled" or "dialled")
	PassOriginFirstByte                          // the attempt's first response byte came
	PassAttemptEnd                               // the attempt ended (detail: "ok" or "failed")
	PassResponseHead                             // the response head went to the client
	PassEnd                                      // the response ended (the access-log line)
)

var passNames = [...]string{"", "start", "filter_start", "filter_suspend", "filter_resume", "filter_end",
	"route", "endpoint", "attempt_start", "origin_connected", "origin_first_byte", "attempt_end",
	"response_head", "end"}

func (s PassportState) String() string {
	if int(s) < len(passNames) {
		return passNames[s]
	}
	return "unknown"
}

// PassportLen is how many steps a passport holds; steps past it are counted
// (Lost), not kept.
const PassportLen = 32

// PassportEntry is one step: when (Mono), what, and its detail.
type PassportEntry struct {
	At     int64 // Mono
	State  PassportState
	Detail string // a long-lived string (a filter's name, a server's address): never built per request
}

// Passport is a request's timeline (tracing.passport_threshold): a fixed
// array of steps in the request's context, filled without allocating and
// logged only for requests slower than the threshold. The core keeps one per
// exchange and sets Context.Passport to it only while the passport is on: a
// nil *Passport records nothing, so a step costs one nil check when off.
//
// Concurrency: the request's event loop only, like its Context.
type Passport struct {
	n, lost int
	e       [PassportLen]PassportEntry
}

// Mark records step s now.
func (p *Passport) Mark(s PassportState, detail string) {
	if p == nil {
		return
	}
	p.MarkAt(s, detail, Mono())
}

// MarkAt records step s at time at (Mono), for callers that know the time
// without reading the clock: the event loop's time of the current event, a
// time the filter chain read anyway. A step is never shown before the one
// recorded before it (the loop's time is the event's start, which may be
// earlier than a filter's end in the same event).
func (p *Passport) MarkAt(s PassportState, detail string, at int64) {
	if p == nil {
		return
	}
	if p.n == PassportLen {
		p.lost++
		return
	}
	if p.n > 0 && at < p.e[p.n-1].At {
		at = p.e[p.n-1].At
	}
	p.e[p.n] = PassportEntry{At: at, State: s, Detail: detail}
	p.n++
}

// Entries are the steps recorded, in order; valid until Reset.
func (p *Passport) Entries() []PassportEntry { return p.e[:p.n] }

// Lost is how many steps did not fit.
func (p *Passport) Lost() int { return p.lost }

// Reset empties p for the next request.
func (p *Passport) Reset() {
	clear(p.e[:p.n]) // drop the details' strings
	p.n, p.lost = 0, 0
}

// monoEpoch anchors Mono: time.Since reads the monotonic clock only.
var monoEpoch = time.Now()

// Mono is a monotonic clock in nanoseconds (since the process started): the
// passport's and the filters' timing clock, immune to wall-clock steps.
func Mono() int64 { return int64(time.Since(monoEpoch)) }

// MonoOf is t on Mono's scale (t must carry a monotonic reading: from
// time.Now); no clock read.
func MonoOf(t time.Time) int64 { return int64(t.Sub(monoEpoch)) }
