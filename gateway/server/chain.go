package server

import (
	"fmt"
	"strconv"

	"gozer/filters"
	"gozer/gateway/httpcodec"
)

// chain is one version of the filter set on one loop (the Lua runtime's Chain). A
// request keeps the chain it started with, so a reload never changes the filters of
// a request in flight. Every method runs on the loop's goroutine.
type chain interface {
	Inbound(ctx *filters.Context)
	Endpoint(name string, ctx *filters.Context) bool
	Outbound(ctx *filters.Context)
	NeedsRequestBody() bool
	NeedsResponseBody() bool
}

// initContext fills the request context the filters see.
func (ex *exchange) initContext() {
	fc, l := &ex.fc, ex.l
	fc.Req = &ex.req
	fc.Phase = filters.Inbound
	fc.ID = ex.id
	fc.Start = ex.started
	fc.Log = &l.srv.log
	if ex.cl != nil {
		fc.RemoteAddr = ex.cl.remote
	}
	fc.Push = l.pushKindOf(&ex.req)
	if l.chain != nil {
		ex.chain = l.chain()
	}
}

// collectBody gathers the request body into the context (for an inbound filter that
// declared it reads it), then routes. The body goes to the origin from the replay
// buffer, so a retry can send it again.
func (ex *exchange) collectBody() {
	cl := ex.cl
	buf, _ := cl.c.Peek(-1)
	off := 0
	limit := ex.l.limit.maxFilterBody
	for off < len(buf) && !ex.reqDone {
		var data []byte
		if ex.req.Framing == httpcodec.FramingLength {
			n := len(buf) - off
			if int64(n) > ex.reqRemaining {
				n = int(ex.reqRemaining)
			}
			data = buf[off : off+n]
			off += n
			ex.reqRemaining -= int64(n)
			ex.reqDone = ex.reqRemaining == 0
		} else {
			consumed, d, done, err := ex.reqChunks.Next(buf[off:])
			off += consumed
			if err != nil {
				_, _ = cl.c.Discard(off)
				ex.failBody(err)
				return
			}
			data = d
			ex.reqDone = done
			if consumed == 0 {
				break
			}
		}
		if len(ex.replay)+len(data) > limit {
			_, _ = cl.c.Discard(off)
			ex.failBody(&httpcodec.Error{Status: 413, Cause: filters.ClientBodyTooLarge.Name,
				Reason: fmt.Sprintf("body over filters.max_body_bytes (%d) that a filter reading the body allows", limit)})
			return
		}
		ex.replay = append(ex.replay, data...)
		ex.reqBody += int64(len(data))
	}
	_, _ = cl.c.Discard(off)
	ex.bytesIn += int64(off)
	if !ex.reqDone {
		return // more to come: client.onData calls again
	}
	ex.collecting = false
	ex.fc.Body, ex.fc.BodyOK = ex.replay, true
	cl.deadline = 0
	ex.route()
}

// route runs the inbound filters, then answers locally or picks the origin.
func (ex *exchange) route() {
	fc, l, req := &ex.fc, ex.l, &ex.req
	if ex.chain != nil {
		ex.chain.Inbound(fc)
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
		var ok bool
		if name, ok = l.srv.router.Route(fc.Host(), fc.Path()); !ok {
			ex.fail(filters.LocalNoRoute, "no route matches the request")
			return
		}
	}
	o, ok := l.srv.origins.Get(name)
	if !ok {
		ex.fail(filters.LocalNoRoute, "route names unknown origin "+strconv.Quote(name))
		return
	}
	if o, ok = ex.admit(o); !ok {
		return
	}
	ex.origin = o
	if fc.Route.Host != nil {
		req.Header.Set("Host", string(fc.Route.Host))
	}
	fi := httpcodec.ForwardInfo{
		ClientIP: ex.cl.ip, Proto: "http", TrustForwarded: l.srv.cfg.Listeners.Proxy.TrustForwarded,
		RequestID: ex.id, Via: l.srv.cfg.Server.Via, DefaultHost: o.DefaultHost, Path: fc.Route.Path,
	}
	ex.fwd = httpcodec.AppendForwardRequest(ex.fwd, req, &fi)
	ex.attempt()
}

// endpoint runs a named endpoint instead of the proxy: the built-in health check, or
// a Lua endpoint filter that answers with ctx.respond.
func (ex *exchange) endpoint(name string) {
	fc := &ex.fc
	if name == "health" {
		fc.Respond(200, []byte("ok\n"), nil)
		ex.answerFilter()
		return
	}
	fc.Phase = filters.Endpoint
	if ex.chain == nil || !ex.chain.Endpoint(name, fc) {
		ex.fail(filters.LocalNoRoute, "route names unknown endpoint "+strconv.Quote(name))
		return
	}
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
func (ex *exchange) answerFilter() {
	fc := &ex.fc
	if !ex.reqDone {
		ex.closeAfter = true // the body was not read: the connection cannot be reused
	}
	ex.answer(fc.RespondStatus, filters.LocalFilterResponse, fc.RespondBody, fc.RespondHeaders)
}

// answer sends a response the gateway makes itself (an error, a filter's answer)
// through the outbound filters, like an origin's.
func (ex *exchange) answer(status int, cause filters.Cause, body []byte, headers []filters.Header) {
	cl, l := ex.cl, ex.l
	if status < 100 || status > 999 {
		status = 500
	}
	ex.status, ex.cause = status, cause
	ex.localAnswer = true
	r := &ex.resp
	r.Reset()
	// Reset turns fasthttp's default Content-Type back on; a filter that deletes
	// Content-Type must find it gone.
	r.Header.SetNoDefaultContentType(true)
	r.Header.SetStatusCode(status)
	r.Status = status
	failure := cause.Category != filters.CategorySuccess
	if body == nil && failure {
		body = append(l.errBody[:0], httpcodec.StatusText(status)...)
		body = append(body, '\n')
		l.errBody = body
	}
	r.Header.Set("Content-Type", "text/plain; charset=utf-8")
	for _, h := range headers {
		r.Header.Set(h.Name, h.Value)
	}
	r.Framing, r.ContentLength, r.HasContentLength = httpcodec.FramingLength, int64(len(body)), true
	if ex.req.IsHead {
		r.Framing = httpcodec.FramingNone
	}
	if ex.chain != nil && ex.fc.Req != nil {
		ex.fc.RespBody, ex.fc.RespBodyOK = append(ex.fc.RespBody[:0], body...), true
		ex.runOutbound()
		if ex.fc.Failed && cause.Category == filters.CategorySuccess {
			// A fatal outbound filter on a filter's own answer: a 500 instead.
			r.Status = ex.fc.FailCause.Status
			body = append(l.errBody[:0], httpcodec.StatusText(r.Status)...)
			body = append(body, '\n')
			l.errBody = body
		} else if ex.fc.RespBodyOK {
			body = ex.fc.RespBody
		}
		ex.status = r.Status
	}
	if r.Framing == httpcodec.FramingLength {
		r.ContentLength = int64(len(body))
	}
	close := ex.closeAfter || cl.drainClose
	ri := httpcodec.ResponseInfo{RequestID: ex.id, Via: l.srv.cfg.Server.Via, Close: close, HTTP10: ex.req.HTTP10, Upgrade: ex.upgradeTo}
	out := ex.appendStatusHeaders(httpcodec.AppendClientResponse(l.wbuf[:0], r, &ri))
	if r.Framing == httpcodec.FramingLength {
		out = append(out, body...)
	}
	l.wbuf = out[:0]
	ex.bytesOut += int64(len(out))
	ex.logAccess()
	if !cl.write(out) {
		return
	}
	cl.finishExchange(close)
}

// runOutbound runs the outbound filters on the response head in ex.resp.
func (ex *exchange) runOutbound() {
	fc := &ex.fc
	fc.Phase = filters.Outbound
	fc.Resp = &ex.resp
	fc.Cause = ex.cause
	if fc.Cause.Name == "" {
		fc.Cause = filters.Success
	}
	fc.Attempts = ex.attempts
	ex.chain.Outbound(fc)
	if fc.Failed {
		ex.cause, ex.reason = fc.FailCause, fc.FailReason
	}
}
