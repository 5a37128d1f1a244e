// Package lua is Gozer's Lua filter runtime: it turns the scripts under a
// directory (Dir/inbound, Dir/endpoint, Dir/outbound) into filter chains that
// run on the event loops, and reloads them while the gateway runs. API.md in
// this directory is the filter author's reference, with an example per call.
//
// # Scripts
//
// A script returns its filter table:
//
//	return {
//	  name = "routes", type = "inbound", order = 20,
//	  should_filter = function(ctx) return ctx.req.path ~= "/healthcheck" end, -- optional
//	  apply = function(ctx) ctx.route{ origin = "api" } end,
//	  fatal = false, -- optional: an error fails the request (500) instead of being skipped
//	  body = false,  -- optional: the filter reads the buffered body
//	  async = false, -- optional: apply runs in a coroutine and may call ctx.http
//	}
//
// type must match the directory, names are unique. A file that does not
// compile, raises while loading or returns a bad table is refused with a log
// line naming file:line and the reason; its previous version stays in
// service. Runtime.Status shows every file with its last error and counters.
//
// # The ctx API
//
//	ctx.req.method, .path, .query, .host, .scheme, .remote_addr, .tls   fields
//	ctx.req.arg(name)             first query parameter value, unescaped, or nil
//	ctx.req.header(name)          first value or nil; headers() iterates (name, value)
//	ctx.req.set_header(n, v), add_header(n, v), del_header(n), set_path(p)   inbound only
//	ctx.req.body()                buffered body (needs body = true), nil if not buffered
//	ctx.resp.status, header(n), headers(), set_status(s), set_header(n, v), add_header(n, v),
//	  del_header(n), body(), set_body(s)                          endpoint and outbound only
//	ctx.vars                      per-request table shared by the request's filters (recycled: vars.go)
//	ctx.id, ctx.start, ctx.now()  request id; head complete, wall clock (seconds, float)
//	ctx.cause, ctx.attempts       outbound only: the request's status cause name, tries
//	ctx.route{origin=, path=, host=, endpoint=}                   inbound only
//	ctx.respond(status, body, headers)                            inbound and endpoint
//	ctx.log(level, message)       "debug", "info", "warn", "error"
//	ctx.http{origin=, ...}, ctx.http_all{...}   async filters: side calls (async.go)
//	ctx.shared(name)              the node's shared dictionaries (sharedapi.go)
//
// A call made in the wrong phase raises a clear error ("ctx.route is only for
// inbound filters"). Functions work with '.' and ':' alike.
//
// # Errors, budget, sandbox
//
// A filter that raises is logged (name, file:line, message; at most a line a
// second per filter and loop), counted, and the request goes on unchanged by
// it, unless the filter declared fatal = true: then the request fails with
// filters.LocalFilterError. A filter call (should_filter + apply) running past
// Options.Budget is stopped at its next VM instruction; the request fails
// with filters.LocalFilterTimeout and the loop keeps serving. The budget is
// enforced by a reusable context that gopher-lua polls before each
// instruction and a per-LState time.Timer that ticks four times per budget
// while a call runs (see budget.go): no allocation and no new timer per call,
// and time the loop's thread spent descheduled is not charged to the filter.
//
// Scripts see the base library without dofile, loadfile, load, loadstring,
// require, module, getfenv, setfenv, collectgarbage, newproxy (print goes to
// the log at debug level), and copies of string, table and math
// (math.randomseed and string.dump removed). No os, io, debug, package,
// channel or coroutine. Each script instance has its own global environment,
// so a script's globals and library changes are its own. string.rep,
// string.format, string.gsub and table.concat refuse to build strings over
// max(MaxBodyBytes, 1 MiB); recursion is bounded by the call stack (200
// frames) and the value stack (64Ki slots); loops that build huge tables are
// cut by the time budget. A single library call is not interrupted by the
// budget: a backtracking pattern over a long string can exceed it (API.md).
//
// # Async filters and Go filters
//
// An async filter's apply runs in a coroutine of the loop's LState; ctx.http
// hands the calls to the core (filters.Context.Calls) and yields, and the
// answers resume it on the loop (async.go). Go filters (filters.Filter, the
// built-in ones in filters/builtin) are sorted into the same chains as the
// scripts (gofilter.go).
//
// # Threads
//
// Runtime's methods may be called from any goroutine. A Loop, and every Chain
// it returns, belongs to one event loop's goroutine. Scripts are compiled
// once per file version and shared read-only; each Loop instantiates them on
// its own LState, so no Lua value is ever shared between goroutines.
package lua
