package telemetry

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Sampled logs events that come in floods (an attack's connections refused,
// slow clients closed) once per reason: the first at once, then at most one
// line per interval and reason, which says how many went unlogged since the
// line before. The counters and the access log have every event; the process
// log must stay readable and cheap under attack.
//
// Concurrency: any goroutine.
type Sampled struct {
	log     zerolog.Logger
	every   int64 // ns
	reasons sync.Map
}

type sampledReason struct {
	next  atomic.Int64 // unix ns from which the next line may go
	quiet atomic.Int64 // events since the last line
}

// NewSampled returns a sampler writing to log at most once per every and reason.
func NewSampled(log zerolog.Logger, every time.Duration) *Sampled {
	return &Sampled{log: log, every: int64(every)}
}

// Warn returns the warning to fill and send for an event of reason, or nil
// when the reason was logged within the interval (the event is counted for
// the next line). zerolog's events are nil-safe: the caller chains as usual.
func (s *Sampled) Warn(reason string) *zerolog.Event { return s.event(reason, zerolog.WarnLevel) }

// Info is Warn at the info level.
func (s *Sampled) Info(reason string) *zerolog.Event { return s.event(reason, zerolog.InfoLevel) }

func (s *Sampled) event(reason string, lvl zerolog.Level) *zerolog.Event {
	v, ok := s.reasons.Load(reason)
	if !ok {
		v, _ = s.reasons.LoadOrStore(reason, &sampledReason{})
	}
	r := v.(*sampledReason)
	now := time.Now().UnixNano()
	next := r.next.Load()
	if now < next || !r.next.CompareAndSwap(next, now+s.every) {
		r.quiet.Add(1)
		return nil
	}
	e := s.log.WithLevel(lvl)
	if q := r.quiet.Swap(0); q > 0 {
		e = e.Int64("unlogged_since_last", q)
	}
	return e
}
