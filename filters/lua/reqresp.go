package lua

import (
	"fmt"
	"strconv"
	"strings"

	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
	"gozer/gateway/httpcodec"
)

// request returns the current request context, raising when it has no request.
func (l *Loop) request(L *glua.LState) *filters.Context {
	ctx := l.cur(L)
	if ctx.Req == nil {
		L.RaiseError("ctx.req: this request context has no request")
	}
	return ctx
}

// reqIndex serves the per-request fields of ctx.req.
func (l *Loop) reqIndex(L *glua.LState) int {
	ctx := l.request(L)
	switch key := L.CheckString(2); key {
	case "method":
		m := ctx.Method()
		if v, ok := l.api.methods[string(m)]; ok { // no allocation: map lookup by string(m)
			L.Push(v)
		} else {
			L.Push(glua.LString(m))
		}
	case "path":
		L.Push(l.api.show(&l.api.path, ctx))
	case "query":
		L.Push(glua.LString(ctx.Query()))
	case "host":
		L.Push(l.api.show(&l.api.host, ctx))
	case "scheme":
		if ctx.Scheme == "https" {
			L.Push(l.api.schemes[1])
		} else {
			L.Push(l.api.schemes[0])
		}
	case "proto":
		L.Push(glua.LString(ctx.Proto))
	case "remote_addr":
		L.Push(glua.LString(ctx.RemoteAddr))
	case "tls":
		L.Push(tlsTable(L, ctx.TLS))
	default:
		L.RaiseError("ctx.req has no field %q", key)
	}
	return 1
}

// reqArg is ctx.req.arg(name): the first value of a query parameter,
// unescaped, or nil.
func (l *Loop) reqArg(L *glua.LState) int {
	ctx := l.request(L)
	if v, ok := ctx.Arg(L.CheckString(l.arg0(L))); ok {
		L.Push(glua.LString(v))
	} else {
		L.Push(glua.LNil)
	}
	return 1
}

// reqHeader is ctx.req.header(name): the first value, or nil when absent
// (or empty).
func (l *Loop) reqHeader(L *glua.LState) int {
	ctx := l.request(L)
	pushBytes(L, ctx.Req.Header.Peek(L.CheckString(l.arg0(L))))
	return 1
}

// pushBytes pushes b as a string, or nil when b is empty: fasthttp does not
// tell an absent header from an empty one reliably (a deleted Server header
// peeks as empty), so header() treats both as absent.
func pushBytes(L *glua.LState, b []byte) {
	if len(b) == 0 {
		L.Push(glua.LNil)
	} else {
		L.Push(glua.LString(b))
	}
}

// reqHeaders is ctx.req.headers(): an iterator over (name, value) pairs, in
// order, one pair per header line. It iterates a copy: changing headers
// inside the loop does not disturb it.
func (l *Loop) reqHeaders(L *glua.LState) int {
	ctx := l.request(L)
	var list []string
	ctx.Req.VisitHeaders(func(name, value []byte) bool {
		list = append(list, string(name), string(value))
		return true
	})
	return pushPairs(L, list)
}

// pushPairs pushes an iterator over list's (name, value) pairs.
func pushPairs(L *glua.LState, list []string) int {
	i := 0
	L.Push(L.NewFunction(func(L *glua.LState) int {
		if i >= len(list) {
			return 0
		}
		L.Push(glua.LString(list[i]))
		L.Push(glua.LString(list[i+1]))
		i += 2
		return 2
	}))
	return 1
}

// reqMutable returns the request a filter may change: inbound only, since
// later the request has been sent.
func (l *Loop) reqMutable(L *glua.LState, fn string) *filters.Context {
	ctx := l.request(L)
	l.only(L, fn, filters.Inbound)
	return ctx
}

func (l *Loop) reqSetHeader(L *glua.LState) int {
	ctx := l.reqMutable(L, "ctx.req.set_header")
	a := l.arg0(L)
	name, value := L.CheckString(a), L.CheckString(a+1)
	checkHeader(L, "ctx.req.set_header", name, value)
	// Every copy goes: fasthttp's Set replaces only the first, and a client
	// that sends "X-User: root" twice would keep one beside the filter's.
	// (Header.Del, not DeleteHeader: the name set stays in the head, which
	// keeps it out of the trailers already.)
	ctx.Req.Header.Del(name)
	ctx.Req.Header.Set(name, value)
	l.hostMayChange(name)
	return 0
}

func (l *Loop) reqAddHeader(L *glua.LState) int {
	ctx := l.reqMutable(L, "ctx.req.add_header")
	a := l.arg0(L)
	name, value := L.CheckString(a), L.CheckString(a+1)
	checkHeader(L, "ctx.req.add_header", name, value)
	ctx.Req.Header.Add(name, value)
	l.hostMayChange(name)
	return 0
}

func (l *Loop) reqDelHeader(L *glua.LState) int {
	ctx := l.reqMutable(L, "ctx.req.del_header")
	name := L.CheckString(l.arg0(L))
	ctx.Req.DeleteHeader(name) // out of the trailers too
	l.hostMayChange(name)
	return 0
}

// hostMayChange drops the plain field ctx.req.host (fields.go) after a change
// to the request's header name.
func (l *Loop) hostMayChange(name string) {
	if l.api.host.shown && strings.EqualFold(name, "Host") {
		l.api.drop(&l.api.host)
	}
}

// reqSetPath is ctx.req.set_path(p): the request-target sent to the origin
// (path and optional "?query"); ctx.req.path and ctx.req.query follow it.
func (l *Loop) reqSetPath(L *glua.LState) int {
	ctx := l.reqMutable(L, "ctx.req.set_path")
	p := L.CheckString(l.arg0(L))
	if p == "" || p[0] != '/' {
		L.RaiseError("ctx.req.set_path: path must start with '/', not %q", p)
	}
	ctx.Route.Path = append(ctx.Route.Path[:0], p...) // ctx.SetPath without a []byte copy
	l.api.drop(&l.api.path)
	return 0
}

// reqBody is ctx.req.body(): the buffered request body, or nil when the core
// did not buffer it. Only for filters that declared body = true.
func (l *Loop) reqBody(L *glua.LState) int {
	ctx := l.request(L)
	if l.in == nil || !l.in.s.body {
		L.RaiseError("ctx.req.body() needs body = true in the filter table")
	}
	if !ctx.BodyOK {
		L.Push(glua.LNil)
	} else {
		L.Push(glua.LString(ctx.Body))
	}
	return 1
}

// response returns the response ctx.resp works on: in the outbound phase,
// ctx.Resp; in the endpoint phase (resp == nil), the answer the filter made
// with ctx.respond (ctx.RespondStatus, RespondHeaders, RespondBody).
func (l *Loop) response(L *glua.LState) (*filters.Context, *httpcodec.Response) {
	ctx := l.cur(L)
	l.only(L, "ctx.resp", filters.Endpoint, filters.Outbound)
	if l.phase == filters.Endpoint {
		if !ctx.Responded {
			L.RaiseError("ctx.resp: call ctx.respond first (an endpoint's response is the one it makes)")
		}
		return ctx, nil
	}
	if ctx.Resp == nil {
		L.RaiseError("ctx.resp: this request context has no response")
	}
	return ctx, ctx.Resp
}

// parsedResponse is response with the origin's head parsed into r.Header (the
// core leaves it unparsed for a chain of Lua filters: Chain.LazyResponseHead).
// A head fasthttp refuses fails the request as the core would have (502).
func (l *Loop) parsedResponse(L *glua.LState) (*filters.Context, *httpcodec.Response) {
	ctx, r := l.response(L)
	if r != nil {
		if err := r.Materialize(); err != nil {
			ctx.Fail(filters.OriginBadResponse, fmt.Sprintf("bad response head from the origin: %v", err))
			L.RaiseError("ctx.resp: bad response head from the origin: %v", err)
		}
	}
	return ctx, r
}

// respIndex serves the per-request fields of ctx.resp.
func (l *Loop) respIndex(L *glua.LState) int {
	ctx, r := l.response(L)
	switch key := L.CheckString(2); key {
	case "status":
		switch {
		case r == nil:
			L.Push(glua.LNumber(ctx.RespondStatus))
		case r.Status != 0:
			L.Push(glua.LNumber(r.Status))
		default:
			L.Push(glua.LNumber(r.Header.StatusCode()))
		}
	default:
		L.RaiseError("ctx.resp has no field %q", key)
	}
	return 1
}

func (l *Loop) respHeader(L *glua.LState) int {
	ctx, r := l.response(L)
	name := L.CheckString(l.arg0(L))
	if v, ok := statusHeader(ctx, name); ok {
		L.Push(v)
		return 1
	}
	if r != nil {
		pushBytes(L, r.Get(name)) // the head may be unparsed: Get reads its lines
		return 1
	}
	for _, h := range ctx.RespondHeaders {
		if strings.EqualFold(h.Name, name) {
			L.Push(glua.LString(h.Value))
			return 1
		}
	}
	L.Push(glua.LNil)
	return 1
}

// respHeaders is ctx.resp.headers(): like ctx.req.headers(), over the
// response's headers (Content-Length left out: the gateway writes it from
// the body's framing).
func (l *Loop) respHeaders(L *glua.LState) int {
	ctx, r := l.parsedResponse(L)
	var list []string
	if r == nil {
		for _, h := range ctx.RespondHeaders {
			list = append(list, h.Name, h.Value)
		}
		return pushPairs(L, list)
	}
	for name, value := range r.Header.All() {
		if !strings.EqualFold(string(name), "Content-Length") {
			list = append(list, string(name), string(value))
		}
	}
	return pushPairs(L, list)
}

func (l *Loop) respSetStatus(L *glua.LState) int {
	ctx, r := l.response(L)
	status := checkStatus(L, l.arg0(L), "ctx.resp.set_status")
	if r == nil {
		ctx.RespondStatus = status
	} else {
		r.Status = status // what the codec writes; the reason phrase follows
	}
	return 0
}

func (l *Loop) respSetHeader(L *glua.LState) int {
	ctx, r := l.response(L)
	a := l.arg0(L)
	name, value := L.CheckString(a), L.CheckString(a+1)
	checkHeader(L, "ctx.resp.set_header", name, value)
	ownStatusHeader(ctx, name)
	if r != nil {
		r.SetHeader(name, []byte(value)) // the head may be unparsed: SetHeader edits its lines
		return 0
	}
	// The first copy takes the value in its place; later ones (add_header's) go.
	hs, set := ctx.RespondHeaders[:0], false
	for _, h := range ctx.RespondHeaders {
		if strings.EqualFold(h.Name, name) {
			if set {
				continue
			}
			h.Value, set = value, true
		}
		hs = append(hs, h)
	}
	if !set {
		hs = append(hs, filters.Header{Name: name, Value: value})
	}
	ctx.RespondHeaders = hs
	return 0
}

func (l *Loop) respAddHeader(L *glua.LState) int {
	ctx, r := l.parsedResponse(L)
	a := l.arg0(L)
	name, value := L.CheckString(a), L.CheckString(a+1)
	checkHeader(L, "ctx.resp.add_header", name, value)
	ownStatusHeader(ctx, name)
	if r != nil {
		r.Header.Add(name, value)
	} else {
		ctx.RespondHeaders = append(ctx.RespondHeaders, filters.Header{Name: name, Value: value})
	}
	return 0
}

func (l *Loop) respDelHeader(L *glua.LState) int {
	ctx, r := l.response(L)
	name := L.CheckString(l.arg0(L))
	ownStatusHeader(ctx, name)
	if r != nil {
		r.DelHeader(name) // the head may be unparsed: DelHeader edits its lines
		return 0
	}
	hs := ctx.RespondHeaders[:0]
	for _, h := range ctx.RespondHeaders {
		if !strings.EqualFold(h.Name, name) {
			hs = append(hs, h)
		}
	}
	ctx.RespondHeaders = hs
	return 0
}

// respBody is ctx.resp.body(): the buffered response body, or nil when the
// core did not buffer it. Outbound filters need body = true; an endpoint
// reads the body of its own answer.
func (l *Loop) respBody(L *glua.LState) int {
	ctx, r := l.response(L)
	switch {
	case r == nil:
		L.Push(glua.LString(ctx.RespondBody))
	case l.in == nil || !l.in.s.body:
		L.RaiseError("ctx.resp.body() needs body = true in the filter table")
	case !ctx.RespBodyOK:
		L.Push(glua.LNil)
	default:
		L.Push(glua.LString(ctx.RespBody))
	}
	return 1
}

// respSetBody is ctx.resp.set_body(s): replaces the response body and keeps
// the framing consistent: Content-Length framing with the new length (a
// response that has no body by protocol, HEAD/204/304, keeps none and only
// reports the length).
func (l *Loop) respSetBody(L *glua.LState) int {
	ctx, r := l.response(L)
	body := L.CheckString(l.arg0(L))
	if len(body) > l.rt.opts.MaxBodyBytes {
		L.RaiseError("ctx.resp.set_body: body larger than %d bytes", l.rt.opts.MaxBodyBytes)
	}
	if r == nil {
		ctx.RespondBody = append(ctx.RespondBody[:0], body...)
		return 0
	}
	if l.in == nil || !l.in.s.body {
		L.RaiseError("ctx.resp.set_body() needs body = true in the filter table")
	}
	if !ctx.RespBodyOK {
		L.RaiseError("ctx.resp.set_body: the response body is not buffered (too large, or streamed)")
	}
	ctx.RespBody, ctx.RespBodySet = append(ctx.RespBody[:0], body...), true
	r.ContentLength = int64(len(body))
	if r.Framing != httpcodec.FramingNone {
		r.Framing, r.HasContentLength = httpcodec.FramingLength, true
	}
	return 0
}

// The gateway adds X-Gozer-Status and X-Gozer-Attempts to the head as it
// writes it (after the filters), when server.status_headers shows them to
// this request. A filter sees them as response headers all the same, and a
// filter that deletes or sets one takes both over: the gateway adds neither.
const (
	statusHeaderName   = "X-Gozer-Status"
	attemptsHeaderName = "X-Gozer-Attempts"
)

// statusHeader is the value of the gateway's status header name (ok: name is
// one of them).
func statusHeader(ctx *filters.Context, name string) (glua.LValue, bool) {
	switch {
	case strings.EqualFold(name, statusHeaderName):
		if ctx.StatusHeaders && ctx.Cause.Name != "" {
			return glua.LString(ctx.Cause.Name), true
		}
	case strings.EqualFold(name, attemptsHeaderName):
		if ctx.StatusHeaders && ctx.Attempts > 0 {
			return glua.LString(strconv.Itoa(ctx.Attempts)), true
		}
	}
	return nil, false // not shown: whatever the response itself holds
}

// ownStatusHeader: a filter that writes a status header takes both over.
func ownStatusHeader(ctx *filters.Context, name string) {
	if strings.EqualFold(name, statusHeaderName) || strings.EqualFold(name, attemptsHeaderName) {
		ctx.StatusHeaders = false
	}
}

// tlsTable is ctx.req.tls: what the client's TLS connection negotiated, or nil
// over plain HTTP. A table built per access: filters read it rarely.
func tlsTable(L *glua.LState, t *filters.TLSInfo) glua.LValue {
	if t == nil {
		return glua.LNil
	}
	tb := L.CreateTable(0, 6)
	if t.ClientSubject != "" {
		tb.RawSetString("client_subject", glua.LString(t.ClientSubject))
	}
	tb.RawSetString("version", glua.LString(t.Version))
	tb.RawSetString("cipher", glua.LString(t.Cipher))
	tb.RawSetString("sni", glua.LString(t.SNI))
	tb.RawSetString("alpn", glua.LString(t.ALPN))
	tb.RawSetString("resumed", glua.LBool(t.Resumed))
	return tb
}
