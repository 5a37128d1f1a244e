package filters

// Chain is one version of the filter set on one event loop (the Lua runtime's
// Chain): inbound filters, the named endpoints, outbound filters. A request
// keeps the chain it started with, so a reload never changes the filters of a
// request in flight. Every method runs on the loop's goroutine.
//
// Inbound and Endpoint may suspend the request: an async filter waits on
// I/O. They return with ctx.Suspended set; the chain calls ctx.Resume on
// the loop once the phase has finished (Suspended clear again), or never if
// the core calls Abandon first. Outbound filters are sync.
type Chain interface {
	Inbound(ctx *Context)
	// Endpoint runs the endpoint filter called name; false when there is none.
	Endpoint(name string, ctx *Context) bool
	Outbound(ctx *Context)
	// Abandon drops the suspended phase of a request that ended (its client
	// left, a timeout): its side calls are cancelled, nothing of it runs again.
	Abandon(ctx *Context)
	// NeedsRequestBody: an inbound filter reads the whole request body.
	NeedsRequestBody() bool
	// NeedsResponseBody: an outbound filter reads the whole response body.
	NeedsResponseBody() bool
}

// EndpointFunc is a built-in endpoint: it answers with ctx.Respond (or fails
// the request with ctx.Fail).
type EndpointFunc func(ctx *Context)

// builtins are the endpoints the gateway has without any filter, by the name
// a route gives (ctx.route{ endpoint = "health" }).
var builtins = map[string]EndpointFunc{
	"health": func(ctx *Context) { ctx.Respond(200, []byte("ok\n"), nil) },
}

// BuiltinEndpoint returns the built-in endpoint called name.
func BuiltinEndpoint(name string) (EndpointFunc, bool) {
	ep, ok := builtins[name]
	return ep, ok
}
