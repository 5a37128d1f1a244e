package exchange

import (
	"github.com/rs/zerolog"

	"gozer/filters"
	"gozer/gateway/origin"
)

// logAccess writes the request's access-log line, and a process-log line for
// failures; it also ends the request in its origin's isolation.
func (ex *Exchange) logAccess() {
	l, g, t := ex.lp.l, &ex.log, &ex.try
	dur := (l.Now() - g.started) / 1000
	var originName, serverAddr string
	if t.origin != nil {
		originName = t.origin.Name
	}
	if t.server != nil {
		serverAddr = t.server.Addr
	}
	remote := ""
	var in, out int64
	if ex.ds != nil {
		remote = ex.ds.Client().Remote
		in, out = ex.ds.Bytes()
	}
	out += g.upgradeOut
	method, path := ex.req.Header.Method(), filters.PathOf(ex.req.Header.RequestURI())
	if g.headRefused {
		// What was received, not the empty request's defaults (GET /).
		method, path = orDash(g.method), orDash(filters.PathOf(g.target))
	}
	ex.finishIsolation()
	if e := l.Log.Logger.Log(); e != nil {
		e.Bytes("request_id", ex.id).Str("client", remote).Bytes("method", method).
			Bytes("path", path).Int("status", g.status).Str("cause", ex.statusName()).
			Str("origin", originName).Str("server", serverAddr).Int("attempts", t.n).
			Int64("bytes_in", in).Int64("bytes_out", out).Int64("duration_us", dur)
		if g.reason != "" {
			e.Str("reason", g.reason)
		}
		if n := min(t.n, maxLoggedAttempts); n > 0 {
			arr := zerolog.Arr()
			for i := 0; i < n; i++ {
				r := &t.records[i]
				arr.Dict(zerolog.Dict().Str("server", r.server).Str("result", r.result).Int64("duration_us", r.durUS))
			}
			e.Array("attempt_log", arr)
		}
		e.Send()
	}
	if g.cause.Category != filters.CategorySuccess {
		// Clients misbehave all day (and close mid-request at will): info. What the
		// gateway or an origin did wrong is a warning. Requests shed by an open
		// breaker or a full bulkhead come by the thousand while an origin is sick:
		// the breaker's own state change is what deserves attention.
		lvl := zerolog.WarnLevel
		if g.cause.Category == filters.CategoryClientFailure ||
			g.cause == filters.LocalOriginCircuitOpen || g.cause == filters.LocalOriginConcurrency {
			lvl = zerolog.InfoLevel
		}
		l.Shared.Log.WithLevel(lvl).Bytes("request_id", ex.id).Str("client", remote).Bytes("path", path).
			Int("status", g.status).Str("cause", g.cause.Name).Str("origin", originName).
			Str("server", serverAddr).Str("reason", g.reason).Msg("request failed")
	}
}

var dash = []byte("-")

// orDash is b, or "-" when b is empty (the access log's "not received").
func orDash(b []byte) []byte {
	if len(b) == 0 {
		return dash
	}
	return b
}

// finishIsolation ends an admitted request in its origin's breaker and
// bulkhead, exactly once, and counts its cause for the origin.
func (ex *Exchange) finishIsolation() {
	t, g := &ex.try, &ex.log
	if t.origin != nil && ex.lp.counts != nil {
		ex.lp.counts.Add(t.origin.Name, ex.statusName())
	}
	if !t.admitted {
		return
	}
	t.admitted = false
	outcome := origin.Success
	switch {
	case g.cause == filters.OriginReadTimeout || g.cause == filters.OriginStalledRequest:
		outcome = origin.Timeout
	case g.cause.Category == filters.CategoryOriginFailure:
		outcome = origin.Failure
	case g.cause.Category == filters.CategorySuccess && g.status >= 500 && !ex.out.local:
		outcome = origin.Failure
	case g.cause.Category != filters.CategorySuccess:
		outcome = origin.Canceled
	}
	br := t.origin.Iso.Breaker
	wasOpen := br.Open()
	now := ex.lp.l.Now()
	t.origin.Iso.Finish(outcome, t.admitAt, now)
	if open := br.Open(); open != wasOpen {
		// The breaker's transitions are what an operator wants to see, once each.
		log := &ex.lp.l.Shared.Log
		if open {
			log.Warn().Str("origin", t.origin.Name).Str("cause", ex.statusName()).Msg("circuit breaker opened")
		} else {
			log.Info().Str("origin", t.origin.Name).Msg("circuit breaker closed")
		}
	}
}

// statusName is the cause shown to the client and in the log.
func (ex *Exchange) statusName() string {
	if c := ex.log.cause; c.Name != "" && c != filters.Success {
		return c.Name
	}
	if ex.try.fellBack {
		return filters.SuccessViaFallback.Name
	}
	return filters.Success.Name
}
