package http2

import "gozer/gateway/exchange"

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
// that such a hold touched is not judged: a new one starts. So holds are
// stamped (bodyHeldAt, Conn.bodyHeldAt) when a window closes, when Gozer
// gives it back, and when the exchange pauses or resumes the body; a window
// is judged only when it began after the last stamp and nothing holds the
// body when it ends.
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
	st.bodyMark = st.received
	st.bodyStart = l.Now()
	st.bodyRateAt = st.bodyStart + l.Snapshot().Limits.RateWindow
	st.c.arm(st)
}

// bodyHeld reports whether Gozer holds the stream's body back now: the
// exchange paused it, or a window the client must wait for is closed.
func (st *stream) bodyHeld() bool {
	return st.paused || st.recvWindow <= 0 || st.c.recvWindow <= 0
}

// stampHold notes that Gozer held st's body back (or stopped holding it)
// now: the window of min_body_rate running is not the client's to answer for.
func (st *stream) stampHold() { st.bodyHeldAt = st.c.lp.l.Now() }

// bodyRateDue checks st's window of min_body_rate, which ended: a body that
// came fast enough, or that Gozer held back during the window, gets a new
// window; a slower one fails its exchange (false).
func (st *stream) bodyRateDue() bool {
	st.bodyRateAt = 0
	need := st.bodyNeed()
	if need == 0 || st.ex == nil || !st.expectBody || st.remoteDone || st.reset || st.started {
		return true
	}
	held := st.bodyHeld() || st.bodyHeldAt >= st.bodyStart || st.c.bodyHeldAt >= st.bodyStart
	if held || st.received-st.bodyMark >= need {
		st.bodyWatch()
		return true
	}
	st.ex.OnTimeout(exchange.TimeoutBodyRate) // the exchange's cause, log line and answer
	return false
}
