package exchange

import (
	"github.com/rs/zerolog"

	"gozer/filters"
	"gozer/gateway/loop"
	"gozer/gateway/origin"
	"gozer/gateway/telemetry"
)

// logAccess writes the request's access-log line, and a process-log line for
// failures; it also ends the request in its origin's isolation.
func (ex *Exchange) logAccess() {
	l, g, t := ex.lp.l, &ex.log, &ex.try
	durNS := l.Now() - g.started
	dur := durNS / 1000
	var originName, serverAddr string
	if t.origin != nil {
		originName = t.origin.Name
	}
	if t.server != nil {
		serverAddr = t.server.Addr
	}
	remote, proto := "", ""
	var in, out int64
	var tlsInfo *filters.TLSInfo
	if ex.ds != nil {
		remote, proto = ex.ds.Client().Remote, ex.ds.Client().Proto
		tlsInfo = ex.ds.Client().TLS
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
		e.Bytes("request_id", ex.id).Bytes("trace_id", ex.TraceID()).Str("client", remote).Bytes("method", method).
			Bytes("path", path).Int("status", g.status).Str("cause", ex.statusName()).
			Str("origin", originName).Str("server", serverAddr).Int("attempts", t.n).
			Int64("bytes_in", in).Int64("bytes_out", out).Int64("duration_us", dur)
		if g.reason != "" {
			e.Str("reason", g.reason)
		}
		if proto != "" {
			e.Str("protocol", proto)
		}
		if f := &ex.fault; f.kinds != "" {
			e.Str("injected", f.kinds).Str("fault_rule", f.inj.Rule) // a rehearsal, not an outage
		}
		if len(g.parent) > 0 {
			e.Bytes("parent_id", g.parent) // a side call of this request's filters
		}
		if tlsInfo != nil {
			d := zerolog.Dict().Str("version", tlsInfo.Version).Str("cipher", tlsInfo.Cipher).
				Str("sni", tlsInfo.SNI).Str("alpn", tlsInfo.ALPN).Bool("resumed", tlsInfo.Resumed)
			if tlsInfo.ClientSubject != "" {
				d.Str("client_subject", tlsInfo.ClientSubject)
			}
			e.Dict("tls", d)
		}
		if n := min(t.n, maxLoggedAttempts); n > 0 {
			arr := zerolog.Arr()
			for i := 0; i < n; i++ {
				r := &t.records[i]
				arr.Dict(zerolog.Dict().Str("server", r.server).Str("result", r.result).Int64("duration_us", r.durUS))
			}
			e.Array("attempt_log", arr)
		}
		ex.logPassport(e, durNS)
		e.Send()
	}
	if g.cause.Category != filters.CategorySuccess {
		failedLine(l.Shared, g.cause).Bytes("request_id", ex.id).Str("client", remote).Bytes("path", path).
			Int("status", g.status).Str("cause", g.cause.Name).Str("origin", originName).
			Str("server", serverAddr).Str("reason", g.reason).Msg("request failed")
	}
}

// failedLine is the process-log line of a failed request (the access log has
// every request; this is for attention). Clients misbehave all day, and
// close mid-request at will: info, and once per cause and 10 s, since an
// attack brings them by the thousand (slow bodies, too many requests). What
// the gateway or an origin did wrong is a warning, each. Requests shed by an
// open breaker or a full bulkhead come by the thousand while an origin is
// sick: info, the breaker's own state change is what deserves attention;
// slow readers shed to keep an origin's connections: once per 10 s.
func failedLine(sh *loop.Shared, cause filters.Cause) *zerolog.Event {
	switch {
	case cause.Category == filters.CategoryClientFailure:
		return sh.Sampled.Info(cause.Name)
	case cause == filters.LocalSlowReaders:
		return sh.Sampled.Warn(cause.Name)
	case cause == filters.LocalOriginCircuitOpen || cause == filters.LocalOriginConcurrency || cause == filters.LocalAdaptiveLimit:
		return sh.Log.Info()
	case cause == filters.LocalNoRoute || cause == filters.LocalLoopDetected:
		// A scanner's random paths bring 404s by the thousand, and a loop
		// one per pass: a warning, once per 10 s (a route to an unknown
		// origin, the operator's mistake, is this cause too).
		return sh.Sampled.Warn(cause.Name)
	case cause == filters.LocalTunnelLimit:
		return sh.Sampled.Info(cause.Name) // upgrades over max_tunnels come by the thousand in a reconnect storm
	case cause.Name == filters.LocalInjected.Name || cause == filters.LocalInjectedReset:
		return sh.Sampled.Info(cause.Name) // rehearsals come by the thousand, on purpose
	}
	return sh.Log.Warn()
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
	ex.countRequest()
	if !t.admitted {
		return
	}
	t.admitted = false
	outcome := origin.Success
	switch {
	case g.cause == filters.OriginReadTimeout || g.cause == filters.OriginStalledRequest || g.cause == filters.LocalCallTimeout:
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
	latency := now - t.admitAt
	if t.headAt > 0 {
		latency = t.headAt - t.admitAt // the origin's time, not the client's reading
	}
	t.origin.Iso.FinishTimed(outcome, t.admitAt, latency, now)
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

// countRequest counts the request's cause for its origin and records its
// metrics (a websocket upgrade's when its tunnel opens: the tunnel holds its
// isolation until it ends).
func (ex *Exchange) countRequest() {
	t, g := &ex.try, &ex.log
	if ex.lp.counts == nil && ex.lp.metrics == nil {
		return
	}
	name := telemetry.NoOrigin
	if t.origin != nil {
		name = t.origin.Name
	}
	cause := filters.CauseIndex(ex.statusName())
	ex.lp.counts.AddIndex(name, cause)
	if ex.lp.metrics != nil {
		now, atOrigin := ex.lp.l.Now(), int64(-1)
		if t.admitted {
			atOrigin = now - t.admitAt
		}
		ex.lp.metrics.Request(name, cause, g.status, now-g.started, atOrigin, t.n)
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
