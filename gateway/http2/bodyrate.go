package http2

import (
	"gozer/gateway/exchange"
	"gozer/gateway/telemetry"
)

// server.min_body_rate over HTTP/2: slow-upload protection (R.U.D.Y.). A
// client can hold a stream, and the origin connection its request took, by
// trickling its body: DATA a few bytes at a time while its windows are
// open. As gateway/http1 does for a connection, a stream whose body is
// expected is measured in windows of server.rate_window: the DATA payload
// that arrived over one must reach min_body_rate × rate_window, else the
// exchange gets exchange.TimeoutBodyRate and ends the request as HTTP/1.1's
// (slowClient: 408 FAILURE_CLIENT_BODY_TOO_SLOW while no response byte went,
// the client's requests-in-flight cap lowered for a window). The 408 ends
// the stream (END_STREAM), then RST_STREAM NO_ERROR tells the client to stop
// sending the rest (stream.finish, RFC 9113 8.1), as Envoy does after its
// local 408 (its codec resets a local reset with NO_ERROR); nginx sends no
// answer and PROTOCOL_ERROR, but the client broke no protocol rule, and a
// client that gets RST_STREAM NO_ERROR after a complete response keeps the
// response, so it learns why. The connection's other streams go on.
//
// Only while no response has started: once the response head went to the
// client, the origin answered and chose to keep reading the stream (gRPC
// client streaming and bidi: a long-lived stream that sends little, as
// TE: trailers invites), and the 408 could no longer be said (the stream
// would be reset mid-response). WriteHead ends the watch.
//
// Only the client's own time is judged. Its DATA can be held back by
// Gozer: the stream's window or the connection's is closed because the
// exchange does not take the body yet (its origin reads slowly, PauseBody;
// other streams' bodies fill the connection's window). A window of the rate
// is lengthened by the time such holds lasted in it, so that the client is
// judged over a whole window of its own time: a moment's hold excuses a
// moment, not the window. So the time held is counted (noteHold): the
// stream's own holds (paused, its window closed) as they begin and end, and
// the connection's window's, closed for every stream alike, as a running
// total each window takes its part of (Conn.bodyHold). A time both held is
// counted twice: the client's favour, never its loss.
//
// Concurrency: everything here runs on the connection's loop, from its
// timer (onTimer) and the frames it reads (onData, credit).

// bodyNeed is what a client must send in one window of min_body_rate (0:
// the check is off).
func (st *stream) bodyNeed() int64 {
	lim := &st.c.lp.l.Snapshot().Limits
	if lim.MinBodyRate <= 0 {
		return 0
	}
	return lim.MinBodyRate * lim.RateWindow / 1e9
}

// bodyWatch starts a window of min_body_rate: the body the client sends
// from now on is measured.
func (st *stream) bodyWatch() {
	st.bodyRateAt = 0
	if st.bodyNeed() == 0 || !st.expectBody || st.remoteDone || st.push != nil || st.started {
		return
	}
	l := st.c.lp.l
	now := l.Now()
	st.bodyMark = st.received
	st.restartHeld(now)
	st.bodyRateAt = now + l.Snapshot().Limits.RateWindow
	st.c.arm(st)
}

// holdClock adds up the time a body was held back (a window closed, the
// exchange paused it): ns before from, and since from while a hold goes on
// (from 0: none). Owned by the connection's loop goroutine.
type holdClock struct{ ns, from int64 }

// note begins or ends a hold as held says; a hold already going on, or
// none, stays as it is.
func (h *holdClock) note(held bool, now int64) {
	switch {
	case held && h.from == 0:
		h.from = now
	case !held && h.from != 0:
		h.ns += now - h.from
		h.from = 0
	}
}

// total is the time held, in all, by now.
func (h *holdClock) total(now int64) int64 {
	if h.from != 0 {
		return h.ns + now - h.from
	}
	return h.ns
}

// restart counts anew from now; a hold going on goes on.
func (h *holdClock) restart(now int64) {
	h.ns = 0
	if h.from != 0 {
		h.from = now
	}
}

// holding reports whether a hold goes on.
func (h *holdClock) holding() bool { return h.from != 0 }

// restartHeld starts counting the time held anew (a window, or its
// lengthening, begins now).
func (st *stream) restartHeld(now int64) {
	st.bodyHold.restart(now)
	st.bodyConnMark = st.c.bodyHold.total(now)
}

// bodyHeld reports whether Gozer holds the stream's body back now: the
// exchange paused it, or a window the client must wait for is closed.
func (st *stream) bodyHeld() bool {
	return st.paused || st.recvWindow <= 0 || st.c.recvWindow <= 0
}

// noteHold counts the stream's own holds: called when it may have begun
// or ended one (paused, its window closed or given back).
func (st *stream) noteHold() {
	st.bodyHold.note(st.paused || st.recvWindow <= 0, st.c.lp.l.Now())
}

// noteHold counts the time the connection's window is closed: called when
// it may have closed or opened.
func (c *Conn) noteHold() { c.bodyHold.note(c.recvWindow <= 0, c.lp.l.Now()) }

// bodyRateDue checks st's window of min_body_rate, which ended: one Gozer
// held the body back in is lengthened by as long; a body that came fast
// enough gets a new window; a slower one fails its exchange (false).
func (st *stream) bodyRateDue() bool {
	st.bodyRateAt = 0
	need := st.bodyNeed()
	if need == 0 || st.ex == nil || !st.expectBody || st.remoteDone || st.reset || st.started {
		return true
	}
	now := st.c.lp.l.Now()
	held := st.bodyHold.total(now) + st.c.bodyHold.total(now) - st.bodyConnMark
	if held > 0 {
		if st.bodyHeld() {
			// A hold that goes on: looked at again a quarter window on
			// at the soonest, not a timer for every moment of it.
			held = max(held, st.c.lp.l.Snapshot().Limits.RateWindow/4)
		}
		st.restartHeld(now)
		st.bodyRateAt = now + held
		st.c.arm(st)
		return true
	}
	if st.received-st.bodyMark >= need {
		st.bodyWatch()
		return true
	}
	// The exchange's cause, log line and answer; counted here too, so that
	// /admin/edge's HTTP/2 ends tell a slow body from the streams' other ends.
	st.c.lp.l.Shared.H2.Count(telemetry.H2SlowBody)
	st.ex.OnTimeout(exchange.TimeoutBodyRate)
	return false
}
