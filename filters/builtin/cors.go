package builtin

import (
	"strconv"

	"gozer/filters"
)

// CORSPreflight answers CORS preflights (OPTIONS with Origin and
// Access-Control-Request-Method) of the requests that have a CORS policy
// (routes[].cors, push.cors, or a Lua filter's ctx.cors before it): an allowed
// origin gets 204 with Access-Control-Allow-Origin, -Methods, -Headers,
// -Credentials and -Max-Age; another gets 403 without them (the browser then
// refuses the request), counted. Either way no origin is called and no later
// filter runs: inbound, order 1, before the auth filters (order 5 and on),
// so a preflight, which carries no credentials, is never refused 401. A Lua
// filter that decides CORS itself runs before it (order 0).
type CORSPreflight struct{}

// Name implements filters.Filter.
func (CORSPreflight) Name() string { return "cors" }

// Phase implements filters.Filter.
func (CORSPreflight) Phase() filters.Phase { return filters.Inbound }

// Order implements filters.Filter.
func (CORSPreflight) Order() int { return 1 }

// ShouldFilter implements filters.Filter: preflights of requests with a
// policy (or a Lua verdict).
func (CORSPreflight) ShouldFilter(ctx *filters.Context) bool {
	return (ctx.CORS.Policy != nil || ctx.CORS.Verdict != filters.VerdictNone) && ctx.IsPreflight()
}

// Apply implements filters.SyncFilter.
func (CORSPreflight) Apply(ctx *filters.Context) {
	origin, ok, cross := ctx.CORSAllowed(filters.CORSPreflight)
	if !cross {
		return // a same-origin OPTIONS: not the gateway's to answer
	}
	const vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
	if !ok {
		ctx.Fail(filters.ClientOriginRefused, "CORS preflight from origin "+string(origin)+" not allowed")
		return
	}
	if reason := refusedAsk(ctx); reason != "" {
		if st := ctx.CORS.Stats; st != nil {
			st.RefusedPreflight.Add(1)
		}
		ctx.Fail(filters.ClientOriginRefused, reason)
		return
	}
	ctx.CORS.Preflight = true
	if st := ctx.CORS.Stats; st != nil {
		st.Preflights.Add(1)
	}
	hs := ctx.RespondHeaders[:0]
	hs = append(hs, filters.Header{Name: "Vary", Value: vary})
	hs = ctx.AppendCORSHeaders(hs, origin)
	if p := ctx.CORS.Policy; p != nil {
		hs = append(hs, filters.Header{Name: "Access-Control-Allow-Methods", Value: p.MethodsValue})
		if v := p.AllowHeadersValue(ctx.Req.Header.Peek("Access-Control-Request-Headers")); v != "" {
			hs = append(hs, filters.Header{Name: "Access-Control-Allow-Headers", Value: v})
		}
		if p.MaxAgeValue != "" {
			hs = append(hs, filters.Header{Name: "Access-Control-Max-Age", Value: p.MaxAgeValue})
		}
	} else { // allowed by a Lua verdict alone: what was asked
		hs = append(hs, filters.Header{Name: "Access-Control-Allow-Methods", Value: string(ctx.Req.Header.Peek("Access-Control-Request-Method"))})
		if v := ctx.Req.Header.Peek("Access-Control-Request-Headers"); len(v) > 0 {
			hs = append(hs, filters.Header{Name: "Access-Control-Allow-Headers", Value: string(v)})
		}
	}
	ctx.Respond(204, nil, hs)
}

// refusedAsk is why the policy refuses what an allowed origin's preflight asks
// for ("" when it does not): a method it does not list (the CORS-safelisted
// GET, HEAD and POST excepted: browsers send those whatever the answer lists)
// or a header it does not allow. A browser would refuse the request anyway;
// the 403 says so where operators look (the access log, cors_refused_total),
// as Spring's CORS processor does. A Lua verdict (ctx.cors{allow=...})
// decides the origin only; without a policy it answers what was asked.
func refusedAsk(ctx *filters.Context) string {
	p := ctx.CORS.Policy
	if p == nil {
		return ""
	}
	h := &ctx.Req.Header
	m := h.Peek("Access-Control-Request-Method")
	switch string(m) {
	case "GET", "HEAD", "POST":
	default:
		if !p.AllowsMethod(m) {
			return "CORS preflight asks for method " + strconv.Quote(string(m)) + ", not in the policy's allow_methods"
		}
	}
	if hs := h.Peek("Access-Control-Request-Headers"); !p.AllowsHeaders(hs) {
		return "CORS preflight asks for headers " + strconv.Quote(string(hs)) + ", not all in the policy's allow_headers"
	}
	return ""
}

// CORSResponse puts the CORS headers on every actual response of a request
// with a policy and a cross-origin Origin, whoever made it: the origin, a
// filter's ctx.respond, the gateway's own errors (502, 503, 429...). An
// allowed origin gets Access-Control-Allow-Origin (and -Credentials,
// -Expose-Headers); a refused one gets none, and the origin's own
// Access-Control-* headers are removed, so the browser withholds the answer
// from the page (counted). Vary: Origin on all of them, and on the answers
// to requests without Origin (a cache must keep them apart). Outbound, order 95:
// after the scripts, so that the policy has the last word.
type CORSResponse struct{}

// Name implements filters.Filter.
func (CORSResponse) Name() string { return "cors_response" }

// Phase implements filters.Filter.
func (CORSResponse) Phase() filters.Phase { return filters.Outbound }

// Order implements filters.Filter.
func (CORSResponse) Order() int { return 95 }

// ShouldFilter implements filters.Filter.
func (CORSResponse) ShouldFilter(ctx *filters.Context) bool {
	return ctx.Resp != nil && !ctx.CORS.Preflight &&
		(ctx.CORS.Policy != nil || ctx.CORS.Verdict != filters.VerdictNone)
}

// corsHeaders are the response headers a policy decides.
var corsHeaders = []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
	"Access-Control-Expose-Headers", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age"}

// Apply implements filters.SyncFilter.
func (CORSResponse) Apply(ctx *filters.Context) {
	origin, ok, cross := ctx.CORSAllowed(filters.CORSRequest)
	r := ctx.Resp // read and edited with the methods that work on an unparsed head
	// Vary: Origin on every answer of a route with a policy, same-origin
	// ones and those without Origin included: a shared cache must not give
	// one origin's answer to another.
	if vary := r.Get("Vary"); len(vary) == 0 {
		r.SetHeader("Vary", []byte("Origin"))
	} else if v := filters.MergeVary(vary, "Origin"); v != nil {
		r.SetHeader("Vary", v)
	}
	if !cross {
		return
	}
	for _, name := range corsHeaders {
		r.DelHeader(name)
	}
	if !ok {
		return
	}
	var buf [4]filters.Header
	for _, kv := range ctx.AppendCORSHeaders(buf[:0], origin) {
		r.SetHeader(kv.Name, []byte(kv.Value))
	}
}

// LazyResponseHead implements filters.LazyHeadFilter: Apply uses
// Response.Get, SetHeader and DelHeader only.
func (CORSResponse) LazyResponseHead() bool { return true }
