// Package builtin holds the filters written in Go that the gateway ships
// (filters.Filter): they run in every chain beside the Lua scripts, sorted
// with them by (order, name), and filters.disabled turns them off by name.
//
// Adding one: write a type with Name, Phase, Order, ShouldFilter and Apply
// (a filters.SyncFilter: logic on the loop, no I/O) or ApplyAsync (a
// filters.AsyncFilter: side calls through ctx.Calls, done called on the loop
// when finished), list it in All, and test it here and end to end in test/.
// A Go filter serves every loop at once: it keeps no per-request state in
// itself.
package builtin

import (
	"strconv"

	"gozer/filters"
)

// All are the built-in Go filters, in the order they are listed in
// /admin/filters (the chain sorts them by order).
func All() []filters.Filter {
	return []filters.Filter{ServerTiming{}, CORSPreflight{}, CORSResponse{}}
}

// ServerTiming adds "Server-Timing: gozer;dur=MS" to every response: how long
// the request spent in the gateway, origin included, in milliseconds, which
// a browser's developer tools show (to the start of the event that brought
// the response: the loop's clock, no system call). Outbound, order 90 (late, so that the
// time includes the outbound filters before it).
type ServerTiming struct{}

// Name implements filters.Filter.
func (ServerTiming) Name() string { return "server_timing" }

// Phase implements filters.Filter.
func (ServerTiming) Phase() filters.Phase { return filters.Outbound }

// Order implements filters.Filter.
func (ServerTiming) Order() int { return 90 }

// ShouldFilter implements filters.Filter: every response with a head to
// carry it (an endpoint's own answer has none before outbound).
func (ServerTiming) ShouldFilter(ctx *filters.Context) bool { return ctx.Resp != nil }

// Apply implements filters.SyncFilter.
func (ServerTiming) Apply(ctx *filters.Context) {
	ms := float64(ctx.Now()-ctx.Start) / 1e6
	var b [32]byte
	v := append(b[:0], "gozer;dur="...)
	v = strconv.AppendFloat(v, ms, 'f', 2, 64)
	ctx.Resp.SetHeader("Server-Timing", v)
}

// LazyResponseHead implements filters.LazyHeadFilter: Apply only sets a
// header, which works on the unparsed head.
func (ServerTiming) LazyResponseHead() bool { return true }
