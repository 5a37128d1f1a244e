package exchange

import (
	"errors"
	"fmt"

	"gozer/filters"
	"gozer/gateway/httpcodec"
	"gozer/gateway/origin"
	"gozer/gateway/originconn"
)

// admit routes the request through its origin's isolation: the fallback when
// the origin is open or has no available server, then the breaker and the
// bulkhead. It reports false when it answered the request itself (503).
func (ex *Exchange) admit(o *origin.Origin) (*origin.Origin, bool) {
	now := ex.lp.l.Now()
	o, ex.try.fellBack = ex.snap.Origins.ResolveAt(o, now)
	if o.Iso == nil {
		return o, true
	}
	switch o.Iso.Admit(now) {
	case origin.RefusedConcurrency:
		ex.try.origin = o
		ex.fail(filters.LocalOriginConcurrency, fmt.Sprintf("origin %s has %d requests in flight (max_concurrent_requests)", o.Name, o.Iso.Bulkhead.InFlight()))
		return nil, false
	case origin.RefusedAdaptive:
		ex.try.origin = o
		ex.fail(filters.LocalAdaptiveLimit, fmt.Sprintf("origin %s has %d requests in flight (its adaptive concurrency limit)", o.Name, o.Iso.Adaptive.Limit()))
		return nil, false
	case origin.RefusedOpen:
		ex.try.origin = o
		ex.fail(filters.LocalOriginCircuitOpen, "origin "+o.Name+" circuit breaker is open")
		return nil, false
	}
	ex.try.admitted, ex.try.admitAt = true, now
	return o, true
}

// attempt sends the request to the next server: over an idle pooled connection
// when the loop has one, else over a new connection dialled onto this loop.
func (ex *Exchange) attempt() {
	t := &ex.try
	srv, balanced := ex.lp.origins.PickServer(t.origin, t.tried)
	t.server, t.open = srv, balanced
	t.tried |= srv.Bit()
	t.n++
	t.start = ex.lp.l.Now()
	t.firstByte, t.passOpen = false, ex.flt.fc.Passport != nil
	ex.mark(filters.PassAttemptStart, srv.Addr)
	c, reused, err := ex.lp.origins.Acquire(t.origin, srv, ex, ex.log.started)
	if err != nil {
		ex.fail(filters.LocalOriginConnLimit, err.Error())
		return
	}
	t.conn, t.ready = c, reused
	if reused {
		ex.mark(filters.PassOriginConnected, "pooled")
		ex.sendRequest()
	}
}

// failKind is how an attempt failed, for the retry decision.
type failKind uint8

const (
	failConnect  failKind = iota // the connection could not be opened
	failNoAnswer                 // closed or reset before any response byte
	failStatus                   // answered 502, 503 or 504
	failSilent                   // no byte within read_timeout
)

// retryInput is what the retry decision looks at.
type retryInput struct {
	kind       failKind
	idempotent bool // the method may be repeated
	bodyDone   bool // the whole request body was sent
	reusedConn bool // the attempt ran on a pooled connection
	staleUsed  bool // the free retry for a stale pooled connection was taken
	attempts   int  // made so far, this one included
	retries    int  // the origin's retries
	sent       bool // a response byte reached the client
	replayLost bool // body bytes were sent that cannot be sent again
}

// verdict is the retry decision.
type verdict uint8

const (
	giveUp    verdict = iota // the failure is the request's
	retry                    // another server, if the retry budget allows
	freeRetry                // another attempt that neither counts nor asks the budget
)

// decideRetry is the one rule for a failed attempt. Nothing is retried once a
// response byte reached the client, or when body bytes were sent that replay
// no longer holds. A pooled connection the origin closed while it sat idle
// (closed before answering an idempotent request) gets one free retry, as
// browsers and Go's transport do: the request most likely never reached the
// origin. Otherwise, within the origin's retries: a connect failure and a
// close or reset before any response byte go to another server for every
// method; a 502/503/504 and a silent server only for idempotent methods whose
// body was sent whole.
func decideRetry(in retryInput) verdict {
	if in.sent || in.replayLost {
		return giveUp
	}
	if in.kind == failNoAnswer && in.reusedConn && !in.staleUsed && in.idempotent {
		return freeRetry
	}
	if in.attempts > in.retries {
		return giveUp
	}
	switch in.kind {
	case failStatus, failSilent:
		if !in.idempotent || !in.bodyDone {
			return giveUp
		}
	}
	return retry
}

// retryInput describes the current attempt's failure of kind k; reused: it
// ran on a pooled connection.
func (ex *Exchange) retryInput(k failKind, reused bool) retryInput {
	t := &ex.try
	return retryInput{
		kind: k, idempotent: isIdempotent(ex.req.Header.Method()), bodyDone: ex.body.done,
		reusedConn: reused, staleUsed: t.staleRetry, attempts: t.n, retries: t.origin.Retries,
		sent: ex.ds.Started(), replayLost: ex.body.replayLost,
	}
}

// retryOrFail retries the failed attempt on another server when the rule and
// the retry budget allow. When not, a connect failure or a close before any
// answer fails the request with cause and reason; a bad status or a silent
// server is left to the caller. It reports whether it retried.
func (ex *Exchange) retryOrFail(k failKind, reused bool, cause filters.Cause, reason string) bool {
	fails := k == failConnect || k == failNoAnswer
	switch decideRetry(ex.retryInput(k, reused)) {
	case freeRetry:
		ex.try.staleRetry = true
		ex.try.n-- // it does not count against the origin's retries
		ex.endAttempt(true)
		ex.again(reason)
		return true
	case retry:
		if ex.retryAllowed() {
			ex.endAttempt(false)
			ex.again(reason)
			return true
		}
		reason += " (retry budget exhausted)"
	}
	if fails {
		ex.fail(cause, reason)
	}
	return false
}

// again drops the failed attempt's connection and makes the next attempt.
func (ex *Exchange) again(reason string) {
	ex.lp.l.Shared.Log.Debug().Bytes("request_id", ex.id).Str("reason", reason).Int("attempt", ex.try.n).Msg("retrying on another server")
	ex.dropConn()
	ex.out.scan.Reset()
	ex.resp.Reset()
	ex.out.headDone, ex.out.originEOF = false, false
	ex.log.status = 0
	ex.attempt()
}

// endAttempt closes the current attempt in the origin's balancer and outlier
// detector; ok is false when the server failed it (connect, reset, timeout, 5xx).
func (ex *Exchange) endAttempt(ok bool) {
	t := &ex.try
	if t.passOpen {
		t.passOpen = false
		result := "ok"
		if !ok {
			result = "failed"
		}
		ex.mark(filters.PassAttemptEnd, result)
	}
	if !t.open || t.origin == nil || t.origin.Iso == nil {
		return
	}
	t.open = false
	now := ex.lp.l.Now()
	t.origin.Iso.AttemptDone(t.server, ok, now)
	if i := t.n - 1; i >= 0 && i < maxLoggedAttempts {
		result := "ok"
		if !ok {
			result = "failed"
		}
		t.records[i] = attemptRecord{server: t.server.Addr, result: result, durUS: (now - t.start) / 1000}
	}
}

// maxLoggedAttempts is how many attempts of one request the access log details.
const maxLoggedAttempts = 8

// attemptRecord is one attempt as the access log shows it.
type attemptRecord struct {
	server string
	result string // ok | failed
	durUS  int64
}

// retryAllowed asks the origin's retry budget for one more attempt.
func (ex *Exchange) retryAllowed() bool {
	o := ex.try.origin
	if o == nil || o.Iso == nil {
		return true
	}
	return o.Iso.TryRetry(ex.lp.l.Now())
}

func isIdempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// isRetriableStatus: a 502/503/504 from the origin is retried (on another
// server) for idempotent methods, before any of it reached the client.
func isRetriableStatus(status int) bool {
	return status == 502 || status == 503 || status == 504
}

// The exchange is its origin connection's owner (originconn.Owner).

// OriginOpen: the dialled connection is ready.
func (ex *Exchange) OriginOpen() {
	ex.mark(filters.PassOriginConnected, "dialled")
	ex.try.ready = true
	ex.sendRequest()
}

// OriginDialFailed: the connection could not be opened.
func (ex *Exchange) OriginDialFailed(err error) {
	c := ex.try.conn
	ex.try.conn = nil
	reason := fmt.Sprintf("connect to %s: %v", c.Server().Addr, err)
	if errors.Is(err, originconn.ErrOpenFiles) {
		// Gozer's limit, not the server's fault: no retry (another server
		// needs a descriptor too), nothing against the server's record.
		ex.fail(filters.LocalMaxConnections, reason)
		return
	}
	ex.retryOrFail(failConnect, false, filters.OriginConnectivity, reason)
}

// OriginData: the origin sent bytes.
func (ex *Exchange) OriginData() {
	if ex.flt.fc.Passport != nil && !ex.try.firstByte {
		ex.try.firstByte = true
		ex.mark(filters.PassOriginFirstByte, "")
	}
	ex.pumpResponse()
}

// OriginWritable: the origin took the request body waiting for it; the
// client's body flows again.
func (ex *Exchange) OriginWritable() {
	ex.ds.ResumeBody()
	ex.pumpRequestBody()
}

// OriginTimeout: the origin was silent for read_timeout (or the request's
// total_timeout passed).
func (ex *Exchange) OriginTimeout() {
	c, o := ex.try.conn, ex.try.origin
	if t := o.TotalTimeout; t > 0 && ex.lp.l.Now()-ex.log.started >= int64(t) {
		ex.fail(filters.OriginReadTimeout, fmt.Sprintf("origin %s: no complete answer within total_timeout %v", o.Name, t))
		return
	}
	silent := fmt.Sprintf("no data from %s for %v (read_timeout)", c.Server().Addr, o.ReadTimeout)
	if !c.GotBytes() && ex.retryOrFail(failSilent, c.Reused(), filters.OriginReadTimeout, silent) {
		return // a silent server: an idempotent request tries another one
	}
	if !ex.body.done && !c.GotBytes() && c.OutboundBuffered() > 0 {
		ex.fail(filters.OriginStalledRequest, fmt.Sprintf("origin %s stopped reading the request body for %v", c.Server().Addr, o.ReadTimeout))
		return
	}
	ex.fail(filters.OriginReadTimeout, silent)
}

// OriginClosed: the origin connection closed under the exchange. While a pump
// writes the body, the pump handles it once the client's buffer agrees with
// what was sent.
func (ex *Exchange) OriginClosed(err error) {
	if ex.try.pumping {
		if err == nil {
			err = errOriginClosed
		}
		ex.try.closeErr = err
		return
	}
	ex.originClosed(err)
}

var errOriginClosed = errors.New("origin closed the connection")

// originClosed handles the origin connection's close: the end of a body framed
// by it, a complete small response behind it, or a failure (retried when the
// rule allows).
func (ex *Exchange) originClosed(err error) {
	c := ex.try.conn
	if ex.out.headDone && ex.resp.Framing == httpcodec.FramingUntilClose {
		ex.out.originEOF = true // the close is the end of this body
		ex.pumpResponse()
		return
	}
	if !ex.out.headDone && c.InboundBuffered() > 0 {
		ex.out.originEOF = true // a complete small response may sit unread behind a close
		ex.pumpResponse()
		if ex.ds == nil || ex.try.conn != c {
			return
		}
	}
	ex.try.conn = nil
	what := "closed the connection"
	if originconn.IsReset(err) {
		what = "reset the connection"
	}
	addr := c.Server().Addr
	switch {
	case !ex.out.headDone && errors.Is(err, originconn.ErrHandshakeRefused):
		// The origin refused the TLS handshake (a TLS 1.3 server refuses a
		// client certificate only after the client's side is done): the
		// request never reached it, as with any failed connect.
		ex.retryOrFail(failConnect, false, filters.OriginConnectivity, fmt.Sprintf("connect to %s: %v", addr, err))
	case !ex.out.headDone && !c.GotBytes():
		if c.Reused() {
			what += " (a pooled connection)"
		}
		ex.retryOrFail(failNoAnswer, c.Reused(), filters.OriginReset, fmt.Sprintf("%s %s before responding", addr, what))
	case !ex.out.headDone:
		ex.fail(filters.OriginBadResponse, fmt.Sprintf("%s %s inside the response head", addr, what))
	default:
		ex.fail(filters.OriginClosedMidBody, fmt.Sprintf("%s %s mid-body", addr, what))
	}
}
