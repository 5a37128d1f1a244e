package filters

// Go filters: filters written in Go, compiled into the gateway, with the same
// phases, order and should-filter test as Lua scripts, sorted into one chain
// with them by (order, name). A Go filter is a SyncFilter (logic on the loop,
// no I/O: Zuul's sync filter) or an AsyncFilter (starts I/O and resumes the
// request on its loop: Zuul's async filter). filters/builtin holds the ones
// the gateway ships; the Lua runtime (filters/lua) runs them in its chains.
//
// Concurrency: one value serves every event loop at once, so a Go filter
// keeps no per-request state in itself: what a request needs goes in its
// Context (Vars is the Lua runtime's; a Go filter uses Context fields or its
// own loop-safe state). Every method runs on the request's loop.

// Filter is what every Go filter has.
type Filter interface {
	// Name is unique among all filters, Lua and Go (filters.disabled names it).
	Name() string
	// Phase is Inbound, Endpoint or Outbound. An endpoint filter answers the
	// requests routed to the endpoint of its name.
	Phase() Phase
	// Order sorts the filters of a phase (then the name).
	Order() int
	// ShouldFilter says whether Apply runs for this request.
	ShouldFilter(ctx *Context) bool
}

// LazyHeadFilter is an outbound Go filter that uses ctx.Resp only through the
// httpcodec.Response methods that work on a head the core has not parsed
// (Get, Value, Headers, SetHeader, DelHeader, Status), never Resp.Header.
// LazyResponseHead returning true spares every response the parse of its
// head into Resp.Header (fasthttp's), which a chain with any other outbound
// Go filter needs.
type LazyHeadFilter interface {
	Filter
	LazyResponseHead() bool
}

// SyncFilter does its work on the loop and returns: no I/O, no waiting.
type SyncFilter interface {
	Filter
	Apply(ctx *Context)
}

// AsyncFilter starts I/O (side calls through ctx.Calls) and returns at once;
// it calls done, on the loop, exactly once when its work is finished, and the
// chain goes on then. If the request ends first (its client left), done is
// never expected: the side calls made through ctx.Calls during the filter
// are cancelled by the chain, and a late done is ignored. Inbound and
// endpoint phases only.
type AsyncFilter interface {
	Filter
	ApplyAsync(ctx *Context, done func())
}
