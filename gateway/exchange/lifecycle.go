package exchange

import (
	"errors"
	"fmt"
	"time"

	"gozer/filters"
	"gozer/gateway/httpcodec"
	"gozer/gateway/loop"
)

// Start routes the request the downstream parsed into Request and begins its
// first attempt (or answers it locally).
func (ex *Exchange) Start() {
	req := &ex.req
	if id := req.RequestID(); len(id) > 0 && len(id) <= 128 {
		ex.id = append(ex.id, id...)
	} else {
		ex.id = ex.lp.l.NextRequestID(ex.id)
	}
	// Before anything reads the path: filters, routes, the access log, and
	// the answers refused below.
	req.NormalizePath(ex.snap.Limits.Paths)
	ex.beginTrace()
	ex.out.closeAfter = !req.KeepAlive || ex.ds.Draining()
	ex.initContext() // before any answer: outbound filters see the gateway's errors too
	ex.body.done = req.Framing == httpcodec.FramingNone ||
		req.Framing == httpcodec.FramingLength && req.ContentLength == 0
	if p := ex.ds.Client().Peer; p != nil {
		peers, now := ex.lp.l.Shared.Peers, ex.lp.l.Now()
		if !peers.Begin(p, now) {
			reason := fmt.Sprintf("client has server.max_requests_per_ip (%d) requests in flight", ex.snap.Config.Server.MaxRequestsPerIP)
			if peers.Penalized(p, now) {
				reason += " (a sixteenth of it for server.rate_window: a request from its address was too slow)"
			}
			ex.fail(filters.ClientTooManyRequests, reason)
			return
		}
		ex.peer = p
	}
	if ex.denied() || ex.looped() {
		return
	}
	req.NoUnderscoreTrailers = ex.snap.Limits.Underscores != loop.UnderscoresAllow
	if req.Underscores && ex.underscores() {
		return
	}
	if max := ex.snap.Limits.MaxBody; max > 0 && req.Framing == httpcodec.FramingLength && req.ContentLength > max {
		ex.fail(filters.ClientBodyTooLarge, fmt.Sprintf("content-length %d over server.max_request_body %d", req.ContentLength, max))
		return
	}
	if !ex.body.done {
		ex.ds.BodyExpected(true) // the body must start coming too
		if ex.flt.chain != nil && ex.flt.chain.NeedsRequestBody() {
			if req.Framing == httpcodec.FramingLength && req.ContentLength > int64(ex.snap.Limits.MaxFilterBody) {
				// Known now: not worth inviting the body (the 100) to refuse it.
				f := ex.filterBodyTooLarge()
				ex.fail(f.Cause, f.Reason)
				return
			}
			ex.continueBody()
			ex.body.collecting = true // an inbound filter reads the body: route once it is all here
			ex.collectBody()
			return
		}
	}
	ex.route()
}

// continueBody sends "100 Continue" to a client that asked for it
// (Expect: 100-continue), once: when the body is wanted, by an inbound filter
// that reads it, or by the origin the request goes to once its isolation
// admitted it (or before its body is buffered, request_buffer). A request
// refused before (a filter's 401, no route, a rate limit, a full bulkhead, a
// body over a limit) gets only its final answer: the client is not invited
// to upload what would be thrown away (RFC 9110 10.1.1), and the connection
// closes after it. When a filter of the chain reads bodies (body = true),
// every request with a body gets its 100 before the inbound filters run:
// they run once the body is here.
func (ex *Exchange) continueBody() {
	if ex.req.ExpectContinue && !ex.body.done {
		ex.req.ExpectContinue = false
		ex.ds.Continue()
	}
}

// Refuse answers a request whose head could not be read (err: the codec's
// error, or a *Failure) and ends the connection: after bad framing nothing
// that follows on it can be trusted. method and target are what the head's
// request line held (nil when not received whole), for the access log.
func (ex *Exchange) Refuse(err error, method, target []byte) {
	cause, reason := causeOf(err)
	ex.log.headRefused = true
	ex.log.method = append(ex.log.method[:0], method...)
	ex.log.target = append(ex.log.target[:0], target...)
	// The request could not be read: outbound filters still see the answer,
	// with an empty request.
	ex.req.Reset()
	ex.id = ex.lp.l.NextRequestID(ex.id[:0])
	ex.beginTrace()
	ex.initContext()
	ex.out.closeAfter = true
	ex.body.done = true
	ex.fail(cause, reason)
}

// Failure is an error of the gateway's own making with its status cause: a
// timeout, a limit. Its Cause's Status is the answer's.
type Failure struct {
	Cause  filters.Cause
	Reason string
}

func (f *Failure) Error() string { return f.Cause.Name + ": " + f.Reason }

// causeOf maps an error that ends a request to its status cause and reason:
// the codec's errors by their class (with their own status), a *Failure as
// it says, anything else a bad request.
func causeOf(err error) (filters.Cause, string) {
	var f *Failure
	if errors.As(err, &f) {
		return f.Cause, f.Reason
	}
	var ce *httpcodec.Error
	if errors.As(err, &ce) {
		cause := filters.CauseOfCodec(ce.Cause)
		if ce.Status != 0 && ce.Status != cause.Status {
			cause.Status = ce.Status
		}
		return cause, ce.Reason
	}
	return filters.ClientBadRequest, err.Error()
}

// OnBody runs when the client sent more of its body.
func (ex *Exchange) OnBody() {
	switch {
	case ex.body.collecting:
		ex.collectBody()
	case ex.body.buffering:
		ex.bufferBody()
	case !ex.body.done && ex.try.conn != nil && ex.try.ready:
		ex.pumpRequestBody()
	}
}

// OnWritable runs when the client took part of the response it had not read:
// the origin's reads go on.
func (ex *Exchange) OnWritable() {
	if c := ex.try.conn; c != nil && c.Paused() && !ex.fault.throttled {
		ex.unpark()
		c.Resume()
		ex.pumpResponse()
	}
}

// OnTimeout runs when one of the downstream's timers expired.
func (ex *Exchange) OnTimeout(t Timeout) {
	lim := &ex.snap.Limits
	switch t {
	case TimeoutBody:
		ex.failBody(&Failure{filters.ClientTimeout, "request body stalled longer than server.header_read_timeout"})
	case TimeoutBodyRate:
		ex.slowClient(filters.ClientBodyTooSlow, fmt.Sprintf("request body slower than server.min_body_rate (%d B/s over %v)",
			lim.MinBodyRate, time.Duration(lim.RateWindow)))
	case TimeoutSendRate:
		ex.slowClient(filters.ClientReadTooSlow, fmt.Sprintf("client took the response slower than server.min_send_rate (%d B/s over %v)",
			lim.MinSendRate, time.Duration(lim.RateWindow)))
	default:
		ex.stopSending(filters.ClientTimeout, "client stopped reading the response for server.idle_timeout")
	}
}

// slowClient ends a request whose client is slower than a minimum rate: a
// 408 while no response byte went out, else a reset.
func (ex *Exchange) slowClient(cause filters.Cause, reason string) {
	ex.penalize()
	if cause == filters.ClientReadTooSlow {
		ex.stopSending(cause, reason)
		return
	}
	ex.failBody(&Failure{cause, reason})
}

// penalize lowers the request's client's cap of requests in flight for a
// rate window (peers.Table.Penalize): it was too slow on purpose or not.
func (ex *Exchange) penalize() {
	ex.lp.l.Shared.Peers.Penalize(ex.peer, ex.lp.l.Now()+ex.snap.Limits.RateWindow)
}

// stopSending ends a response the client does not take: the connection closes.
// A request whose response had not started (another stream of an HTTP/2
// connection ended as too slow) logs the cause's status, as OnGone does.
func (ex *Exchange) stopSending(cause filters.Cause, reason string) {
	ex.log.cause, ex.log.reason = cause, reason
	ex.log.status = ex.resp.Status
	if ex.ds != nil && !ex.ds.Started() {
		ex.log.status = cause.Status
	}
	ex.logAccess()
	ex.abort(true)
}

// OnGone runs when the client connection closed under the exchange; the
// downstream forgot the exchange already.
func (ex *Exchange) OnGone(err error) {
	ex.abandonFilters()
	if ex.log.cause.Name == "" {
		ex.log.cause = filters.ClientClosed
		ex.log.status = filters.ClientClosed.Status
		if err != nil {
			ex.log.reason = "client closed the connection: " + err.Error()
		} else {
			ex.log.reason = "client closed the connection"
		}
		ex.logAccess()
	}
	ex.endAttempt(true) // the client left: nothing against the server
	ex.dropConn()
	ex.ds = nil
	ex.lp.retire(ex)
}

// done ends the exchange with its response complete: the downstream goes on.
func (ex *Exchange) done() {
	ds := ex.ds
	ex.ds = nil
	ex.lp.retire(ex)
	ds.Done(ex.out.closeAfter)
}

// abort ends the exchange and closes the client connection at once (reset:
// abruptly, for a client that does not take its response).
func (ex *Exchange) abort(reset bool) {
	ex.dropConn()
	ds := ex.ds
	ex.ds = nil
	ex.lp.retire(ex)
	ds.Abort(reset)
}

// dropConn closes the current origin connection: its stream state is unknown.
func (ex *Exchange) dropConn() {
	if c := ex.try.conn; c != nil {
		ex.try.conn = nil
		c.Abort()
	}
}

// underscores applies server.headers_with_underscores to a request with a
// header name that has an "_" (Request.Underscores), before any filter sees
// it: it drops those headers, or refuses the request (true: answered).
func (ex *Exchange) underscores() bool {
	switch ex.snap.Limits.Underscores {
	case loop.UnderscoresReject:
		ex.fail(filters.ClientBadRequest, "header name with an underscore (server.headers_with_underscores: reject)")
		return true
	case loop.UnderscoresAllow:
	default:
		ex.req.DropUnderscoreHeaders()
		// Sampled: a deployment whose clients send X_API_KEY learns why its
		// origin stopped seeing it.
		if e := ex.lp.l.Shared.Sampled.Info("underscore_headers"); e != nil {
			e.Str("reason", "underscore_headers").Str("request_id", string(ex.id)).
				Msg("dropped a client's headers named with an underscore (server.headers_with_underscores: drop; allow passes them)")
		}
	}
	return false
}
