package exchange

import (
	"github.com/rs/zerolog"

	"gozer/filters"
)

// The passport (tracing.passport_threshold) is the request's timeline: the
// exchange marks its own steps (start, route, attempts, response) and the
// chain its filters' in the request context's Passport, which is set only
// while the passport is on. Off, a step is one nil check; on, it is a store
// into the exchange's fixed array, stamped with the loop's time of the
// current event (no clock read; the filters' steps use the times the chain
// reads for its statistics anyway).
//
// It goes into the request's access-log line, not the process log, when
// the request took longer than the threshold: the access log is the
// per-request record, and the passport sits next to the request id, trace
// id, attempts and cause it explains, one line, nothing to join. The process
// log is for what needs attention (failures, breaker transitions, sampled
// in floods): in an origin's brownout every request is slow, and their
// timelines would crowd out the lines that say why.

// mark records step s of the request in its passport (nothing when off).
func (ex *Exchange) mark(s filters.PassportState, detail string) {
	if p := ex.flt.fc.Passport; p != nil {
		p.MarkAt(s, detail, ex.lp.l.Mono())
	}
}

// startPassport turns the request's passport on when the configuration asks
// for one, and marks the start.
func (ex *Exchange) startPassport() {
	if ex.snap.Limits.PassportAfter > 0 {
		if ex.pass == nil {
			ex.pass = new(filters.Passport)
		}
		ex.flt.fc.Passport = ex.pass
		ex.pass.MarkAt(filters.PassStart, "", ex.lp.l.Mono())
	}
}

// logPassport adds the passport to the access-log line e of a request that
// took durNS, when it is on and the request was slower than its threshold.
// The steps are shown as microseconds since the start.
func (ex *Exchange) logPassport(e *zerolog.Event, durNS int64) {
	p := ex.flt.fc.Passport
	if p == nil || durNS < ex.snap.Limits.PassportAfter {
		return
	}
	p.MarkAt(filters.PassEnd, "", ex.lp.l.Mono())
	steps := p.Entries()
	if len(steps) == 0 {
		return
	}
	t0 := steps[0].At
	arr := zerolog.Arr()
	for i := range steps {
		s := &steps[i]
		d := zerolog.Dict().Str("state", s.State.String()).Int64("us", (s.At-t0)/1000)
		if s.Detail != "" {
			d.Str("detail", s.Detail)
		}
		arr.Dict(d)
	}
	e.Array("passport", arr)
	if n := p.Lost(); n > 0 {
		e.Int("passport_lost", n)
	}
}
