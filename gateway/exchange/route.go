package exchange

import (
	"fmt"
	"net"
	"strconv"

	"gozer/filters"
	"gozer/gateway/config"
	"gozer/gateway/httpcodec"
	"gozer/gateway/origin"
)

// initContext fills the request context the filters see.
func (ex *Exchange) initContext() {
	fc := &ex.flt.fc
	fc.Req = &ex.req
	fc.Phase = filters.Inbound
	fc.ID = ex.id
	fc.TraceID = ex.TraceID()
	fc.Start = ex.log.started
	fc.Log = &ex.lp.l.Shared.Log
	fc.RemoteAddr = ex.ds.Client().Remote
	fc.Scheme = ex.ds.Client().Scheme
	fc.Proto = ex.ds.Client().Proto
	fc.TLS = ex.ds.Client().TLS
	fc.Push = ex.pushKind()
	if t := ex.snap.CORS; t != nil {
		fc.CORS = filters.CORS{Policy: t.For(fc.Push, fc.Host(), fc.Path()), Table: t, Stats: &ex.lp.l.Shared.CORS}
	}
	fc.StatusHeaders = ex.showStatus()
	fc.Calls, fc.Resume, fc.Clock = ex, ex.resumeFn, ex.lp.clock
	if ex.lp.chains != nil {
		ex.flt.chain = ex.lp.chains()
	}
	ex.startPassport()
}

// showStatus reports whether the response shows X-Gozer-Status and
// X-Gozer-Attempts (server.status_headers): to every client, to none, or to
// a request that asks with the debug header from a trusted network. The causes
// name the gateway's internals (which origin failed, how), which are not every
// client's business.
func (ex *Exchange) showStatus() bool {
	lim := &ex.snap.Limits
	switch lim.StatusExpose {
	case config.ExposeAll:
		return true
	case config.ExposeDebug:
		if len(ex.req.Header.Peek(lim.DebugHeader)) == 0 {
			return false
		}
		a := ex.ds.Client().Addr
		for _, p := range lim.TrustedPrefix {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

// collectBody gathers the request body into the context (for an inbound filter
// that declared it reads it), then routes. The body goes to the origin from
// the replay buffer, so a retry can send it again.
func (ex *Exchange) collectBody() {
	done, err := ex.ds.ReadBody(ex.collect)
	if err == nil {
		err = ex.body.err
	}
	if err != nil {
		ex.failBody(err)
		return
	}
	if !done {
		return // more to come: OnBody calls again
	}
	ex.body.done = true
	ex.body.collecting = false
	ex.flt.fc.Body, ex.flt.fc.BodyOK = ex.body.replay, true
	ex.ds.BodyExpected(false)
	ex.route()
}

// collectPiece keeps one piece of request body for an inbound filter; false
// (with body.err set) when the body outgrew filters.max_body_bytes.
func (ex *Exchange) collectPiece(p []byte) bool {
	if len(ex.body.replay)+len(p) > ex.snap.Limits.MaxFilterBody {
		ex.body.err = ex.filterBodyTooLarge()
		return false
	}
	ex.body.replay = append(ex.body.replay, p...)
	ex.body.decoded += int64(len(p))
	return true
}

// filterBodyTooLarge is the 413 of a body a filter reads over
// filters.max_body_bytes.
func (ex *Exchange) filterBodyTooLarge() *Failure {
	return &Failure{filters.ClientBodyTooLarge, fmt.Sprintf("body over filters.max_body_bytes (%d) that a filter reading the body allows", ex.snap.Limits.MaxFilterBody)}
}

// route runs the inbound filters, then answers locally or picks the origin.
func (ex *Exchange) route() {
	fc := &ex.flt.fc
	if ex.redirectHTTPS() {
		return
	}
	if ex.flt.chain != nil {
		ex.flt.chain.Inbound(fc)
		if fc.Suspended {
			ex.suspend(filters.Inbound)
			return
		}
	}
	ex.routed()
}

// suspend waits for an async filter of phase: the client's body is not read
// meanwhile (it waits in the kernel's buffers, and its timer does not run),
// and Chain.Resume continues the request (resumed).
func (ex *Exchange) suspend(phase filters.Phase) {
	ex.flt.suspended = phase
	if !ex.body.done && !ex.body.collecting {
		ex.ds.PauseBody()
	}
}

// resumed is the request's Context.Resume: the suspended phase finished.
func (ex *Exchange) resumed() {
	if ex.ds == nil {
		return // ended meanwhile (abandonFilters ran): nothing to continue
	}
	if !ex.body.done && !ex.body.collecting {
		ex.ds.ResumeBody()
	}
	if ex.flt.suspended == filters.Endpoint {
		ex.endpointDone(ex.flt.fc.Route.Endpoint)
		return
	}
	ex.routed()
}

// abandonFilters drops a phase suspended in an async filter: the request
// ends without it (its client left, a timeout).
func (ex *Exchange) abandonFilters() {
	if fc := &ex.flt.fc; fc.Suspended && ex.flt.chain != nil {
		ex.flt.chain.Abandon(fc)
	}
}

// routed goes on from the inbound filters' decision: a local answer, a
// push connection, an endpoint, or an origin.
func (ex *Exchange) routed() {
	fc := &ex.flt.fc
	if ex.flt.chain != nil {
		switch {
		case fc.Failed:
			ex.fail(fc.FailCause, fc.FailReason)
			return
		case fc.Responded:
			ex.answerFilter()
			return
		case fc.PushID != "":
			ex.pushEndpoint()
			return
		case fc.Route.Endpoint != "":
			ex.endpoint(fc.Route.Endpoint)
			return
		}
	}
	if fc.Push != filters.PushNone && fc.Route.Origin == "" {
		ex.pushEndpoint() // not accepted: 403
		return
	}
	name := fc.Route.Origin
	if name == "" {
		m, ok := ex.snap.Router.Route(fc.Host(), fc.Path())
		if !ok {
			ex.fail(filters.LocalNoRoute, "no route matches the request")
			return
		}
		name = m.Origin
		// The route that chose the origin has its say on websocket
		// (routes[].websocket), unless a filter said it already.
		if fc.Route.WebSocket == filters.WebSocketByOrigin {
			fc.Route.WebSocket = m.WebSocket
		}
	}
	o, ok := ex.snap.Origins.Get(name)
	if !ok {
		ex.fail(filters.LocalNoRoute, "route names unknown origin "+strconv.Quote(name))
		return
	}
	ex.mark(filters.PassRoute, o.Name)
	if ex.rateLimited(o.Name) {
		return
	}
	if ex.injectFaults(o) {
		return // answered, or delayed (faults.go)
	}
	ex.toOrigin(o)
}

// toOrigin sends the routed request on to o: once its body is buffered
// (request_buffer), or at once.
func (ex *Exchange) toOrigin(o *origin.Origin) {
	if !ex.body.done && o.RequestBuffer > 0 {
		ex.continueBody()
		ex.try.origin = o
		ex.body.buffering = true
		ex.bufferBody()
		return
	}
	ex.proceed(o)
}

// proceed admits the routed request into its origin's isolation and makes its
// first attempt.
func (ex *Exchange) proceed(o *origin.Origin) {
	if ex.lp.origins == nil { // Config.Origins nil: a loop without sockets (a test's)
		ex.fail(filters.LocalInternal, "no origin connections on this loop")
		return
	}
	fc, req := &ex.flt.fc, &ex.req
	o, ok := ex.admit(o)
	if !ok {
		return
	}
	ex.continueBody()
	ex.try.origin = o
	if !ex.startWebSocket(o) {
		return
	}
	if fc.Route.Host != nil {
		req.Header.Set("Host", string(fc.Route.Host))
	}
	cfg := ex.snap.Config
	fi := httpcodec.ForwardInfo{
		ClientIP: ex.ds.Client().IP, Proto: ex.ds.Client().Scheme, TrustForwarded: cfg.Listeners.Proxy.TrustForwarded,
		RequestID: ex.id, Via: cfg.Server.Via, DefaultHost: o.DefaultHost, Path: fc.Route.Path,
		Traceparent: ex.trace.tp[:], DropTracestate: !ex.trace.keepState,
		Trailers: ex.trailersReachClient(),
	}
	ex.try.fwd = httpcodec.AppendForwardRequest(ex.try.fwd, req, &fi)
	if ex.out.ws {
		// The hop-by-hop headers of the upgrade, this hop's own now.
		ex.try.fwd = append(ex.try.fwd[:len(ex.try.fwd)-2], upgradeHeaders...)
	}
	ex.attempt()
}

// trailersReachClient reports whether an origin's trailers can reach this
// request's client, so that its "TE: trailers" is said again to the origin
// (httpcodec.ForwardInfo.Trailers): not to an HTTP/1.0 client (no chunked
// response), a side call (its answer goes to a filter, without trailers) or
// a websocket upgrade. Whether the response will be compressed or its body
// replaced by an outbound filter (which drop trailers: endBody) depends on
// the response, not known yet: TE goes, and such a response loses the
// trailers it then carries, as it does without TE.
func (ex *Exchange) trailersReachClient() bool {
	return !ex.req.HTTP10 && ex.ds.Client().Proto != "" && !ex.out.ws
}

// endpoint runs a named endpoint instead of the proxy: a built-in one
// (filters.BuiltinEndpoint), or a filter endpoint that answers with
// ctx.respond.
func (ex *Exchange) endpoint(name string) {
	fc := &ex.flt.fc
	ex.mark(filters.PassEndpoint, name)
	if ep, ok := filters.BuiltinEndpoint(name); ok {
		ep(fc)
	} else {
		fc.Phase = filters.Endpoint
		if ex.flt.chain == nil || !ex.flt.chain.Endpoint(name, fc) {
			ex.fail(filters.LocalNoRoute, "route names unknown endpoint "+strconv.Quote(name))
			return
		}
		if fc.Suspended {
			ex.suspend(filters.Endpoint)
			return
		}
	}
	ex.endpointDone(name)
}

// endpointDone sends what the endpoint answered.
func (ex *Exchange) endpointDone(name string) {
	fc := &ex.flt.fc
	switch {
	case fc.Failed:
		ex.fail(fc.FailCause, fc.FailReason)
	case fc.Responded:
		ex.answerFilter()
	default:
		ex.fail(filters.LocalFilterError, "endpoint "+strconv.Quote(name)+" did not respond")
	}
}

// answerFilter sends the answer a filter made with ctx.respond.
func (ex *Exchange) answerFilter() {
	fc := &ex.flt.fc
	if !ex.body.done {
		ex.out.closeAfter = true // the body was not read: the connection cannot be reused
	}
	ex.answer(fc.RespondStatus, filters.LocalFilterResponse, fc.RespondBody, fc.RespondHeaders)
}

// answer sends a response the gateway makes itself (an error, a filter's
// answer) through the outbound filters, like an origin's.
func (ex *Exchange) answer(status int, cause filters.Cause, body []byte, headers []filters.Header) {
	lp := ex.lp
	if status < 100 || status > 999 {
		status = 500
	}
	ex.log.status, ex.log.cause = status, cause
	ex.out.local = true
	r := &ex.resp
	r.Reset()
	// Reset turns fasthttp's default Content-Type back on; a filter that deletes
	// Content-Type must find it gone.
	r.Header.SetNoDefaultContentType(true)
	r.Header.SetStatusCode(status)
	r.Status = status
	if body == nil && cause.Category != filters.CategorySuccess {
		body = lp.statusBody(status)
	}
	if status != 204 {
		r.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	for _, h := range headers {
		r.Header.Set(h.Name, h.Value)
	}
	r.Framing, r.ContentLength, r.HasContentLength = httpcodec.FramingLength, int64(len(body)), true
	if ex.req.IsHead || status == 204 {
		r.Framing = httpcodec.FramingNone // 204: no body, no Content-Length (RFC 9110 8.6), a CORS preflight's answer
	}
	if ex.flt.chain != nil && ex.flt.fc.Req != nil {
		fc := &ex.flt.fc
		fc.RespBody, fc.RespBodyOK = append(fc.RespBody[:0], body...), true
		ex.runOutbound()
		if fc.Failed && cause.Category == filters.CategorySuccess {
			// A fatal outbound filter on a filter's own answer: a 500 instead.
			r.Status = fc.FailCause.Status
			body = lp.statusBody(r.Status)
		} else if fc.RespBodyOK {
			body = fc.RespBody
		}
		ex.log.status = r.Status
	}
	if r.Framing == httpcodec.FramingLength {
		r.ContentLength = int64(len(body))
	}
	ds := ex.ds
	ds.WriteHead(r, ex.head())
	if r.Framing == httpcodec.FramingLength {
		ds.WriteBody(body)
	}
	ds.EndBody(nil)
	ex.logAccess()
	if ex.ds == nil || !ds.Flush() {
		return // the client is gone; OnGone ended the exchange
	}
	ex.done()
}

// statusBody is the body of the gateway's own error answers: "502 Bad Gateway\n".
func (lp *Loop) statusBody(status int) []byte {
	b := append(lp.errBody[:0], httpcodec.StatusText(status)...)
	b = append(b, '\n')
	lp.errBody = b
	return b
}

// head is what the exchange adds to the response head.
func (ex *Exchange) head() *Head {
	ex.mark(filters.PassResponseHead, "")
	h := &ex.out.head
	*h = Head{
		RequestID: ex.id, Via: ex.snap.Config.Server.Via, Close: ex.out.closeAfter || ex.ds.Draining(),
		Upgrade: ex.out.upgradeTo, scratch: h.scratch[:0],
		Trailers: ex.trailersPass() && ex.resp.Framing == httpcodec.FramingChunked,
	}
	if ex.flt.fc.StatusHeaders {
		h.Status, h.Attempts = ex.statusName(), ex.try.n
	}
	return h
}

// runOutbound runs the outbound filters on the response head in ex.resp.
func (ex *Exchange) runOutbound() {
	fc := &ex.flt.fc
	fc.Phase = filters.Outbound
	fc.Resp = &ex.resp
	fc.Cause = ex.log.cause
	if fc.Cause.Name == "" {
		fc.Cause = filters.Success
	}
	fc.Attempts = ex.try.n
	ex.flt.chain.Outbound(fc)
	if fc.Failed {
		ex.log.cause, ex.log.reason = fc.FailCause, fc.FailReason
	}
}

// outbound runs the outbound filters on the origin's response. A fatal one
// drops the origin's answer for a 500; outbound then reports false (the
// exchange is answered).
func (ex *Exchange) outbound() bool {
	ex.runOutbound()
	if !ex.flt.fc.Failed {
		return true
	}
	ex.dropConn()
	ex.flt.chain = nil // the outbound filters already ran on this response
	ex.out.closeAfter = ex.out.closeAfter || !ex.body.done
	ex.answer(ex.flt.fc.FailCause.Status, ex.flt.fc.FailCause, nil, nil)
	return false
}

// redirectHTTPS answers a plain request with a 308 to the same URL on the
// HTTPS listener (listeners.proxy.redirect_https), before any filter: a
// client that must use HTTPS learns it at once. The paths in redirect_except
// (the health check) are served as asked.
func (ex *Exchange) redirectHTTPS() bool {
	lst := &ex.snap.Config.Listeners.Proxy
	if !lst.RedirectHTTPS || ex.ds.Client().Scheme == "https" {
		return false
	}
	uri := ex.req.Header.RequestURI()
	path := filters.PathOf(uri)
	for _, p := range lst.RedirectExcept {
		if string(path) == p {
			return false
		}
	}
	host := ex.req.Header.Host()
	if h, _, err := net.SplitHostPort(string(host)); err == nil {
		host = []byte(h)
	}
	loc := append(append([]byte("https://"), host...), ex.snap.Config.HTTPSPortSuffix()...)
	loc = append(loc, uri...)
	ex.out.closeAfter = ex.out.closeAfter || !ex.body.done
	ex.answer(308, filters.LocalRedirectHTTPS, nil, []filters.Header{{Name: "Location", Value: string(loc)}})
	return true
}
