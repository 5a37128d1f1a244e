package lua

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"gozer/filters"
	"gozer/gateway/httpcodec"
)

// apiCase runs code as the apply of one filter of phase, and checks the
// request context afterwards, or the error the filter raised.
type apiCase struct {
	name  string
	phase string // "inbound" (default), "endpoint", "outbound"
	decl  string // extra fields of the filter table, e.g. "body = true,"
	code  string
	setup func(ctx *filters.Context)
	check func(t *testing.T, ctx *filters.Context)
	err   string // substring of the raised error; "" = must not raise
}

func runAPICase(t *testing.T, c apiCase) {
	t.Helper()
	phase := c.phase
	if phase == "" {
		phase = "inbound"
	}
	e := newEnv(t, map[string]string{phase + "/t.lua": filterSrc("t", phase, 0, c.decl, c.code)}, Options{MaxBodyBytes: 64})
	lg := zerolog.New(e.log)
	ctx := newCtx(t, "", &lg)
	if phase == "outbound" {
		ctx.Resp = newResp(t)
		ctx.Cause, ctx.Attempts = filters.Success, 2
	}
	if c.setup != nil {
		c.setup(ctx)
	}
	ch := e.loop.Chain()
	if ch.Len() != 1 {
		t.Fatalf("chain has %d filters, want 1; log:\n%s", ch.Len(), e.log)
	}
	switch phase {
	case "inbound":
		ch.Inbound(ctx)
	case "endpoint":
		if !ch.Endpoint("t", ctx) {
			t.Fatal("Endpoint(t) = false")
		}
	case "outbound":
		ch.Outbound(ctx)
	}
	st, _ := status(e.rt, "t")
	if c.err == "" {
		if st.Errors != 0 {
			t.Fatalf("filter raised; log:\n%s", e.log)
		}
	} else {
		line := e.log.find("error", c.err)
		if line == nil || st.Errors != 1 {
			t.Fatalf("want a raised error containing %q (errors=%d); log:\n%s", c.err, st.Errors, e.log)
		}
		if !strings.Contains(line["error"].(string), "t.lua:") || line["filter"] != "t" {
			t.Fatalf("error line lacks file:line or filter name: %v", line)
		}
		if ctx.Failed {
			t.Fatalf("a non-fatal error failed the request: %s", ctx.FailReason)
		}
	}
	if c.check != nil {
		c.check(t, ctx)
	}
}

func wantVar(key, want string) func(*testing.T, *filters.Context) {
	return func(t *testing.T, ctx *filters.Context) {
		t.Helper()
		if got := vars(ctx, key); got != want {
			t.Fatalf("ctx.vars.%s = %q, want %q", key, got, want)
		}
	}
}

func TestRequestAPI(t *testing.T) {
	cases := []apiCase{
		{name: "method", code: `ctx.vars.v = ctx.req.method`, check: wantVar("v", "GET")},
		{name: "path", code: `ctx.vars.v = ctx.req.path`, check: wantVar("v", "/a/b")},
		{name: "query", code: `ctx.vars.v = ctx.req.query`, check: wantVar("v", "x=1&y=%20z")},
		{name: "arg", code: `ctx.vars.v = ctx.req.arg("y") .. "|" .. tostring(ctx.req.arg("nope"))`, check: wantVar("v", " z|nil")},
		{name: "host without port", code: `ctx.vars.v = ctx.req.host`, check: wantVar("v", "example.com")},
		{name: "scheme", code: `ctx.vars.v = ctx.req.scheme`, check: wantVar("v", "http")},
		{name: "remote_addr", code: `ctx.vars.v = ctx.req.remote_addr`, check: wantVar("v", "10.0.0.1:5555")},
		{name: "proto", code: `ctx.vars.v = ctx.req.proto`, check: wantVar("v", "HTTP/2.0")},
		{name: "header", code: `ctx.vars.v = ctx.req.header("user-agent") .. "|" .. tostring(ctx.req.header("X-Nope"))`, check: wantVar("v", "t|nil")},
		{name: "header with colon call", code: `ctx.vars.v = ctx.req:header("User-Agent")`, check: wantVar("v", "t")},
		{name: "headers iterates every line", code: `
			local parts = {}
			for name, value in ctx.req.headers() do parts[#parts+1] = name .. "=" .. value end
			ctx.vars.v = table.concat(parts, ";")`,
			check: wantVar("v", "Host=example.com:8080;User-Agent=t;X-Dup=1;X-Dup=2")},
		{name: "set_header", code: `ctx.req.set_header("X-Route", ctx.req.path)`, check: func(t *testing.T, ctx *filters.Context) {
			if got := string(ctx.Req.Header.Peek("X-Route")); got != "/a/b" {
				t.Fatalf("X-Route = %q", got)
			}
		}},
		// A client's second copy must not survive beside the filter's value.
		{name: "set_header replaces every copy", code: `ctx.req.set_header("x-dup", "mine")`, check: func(t *testing.T, ctx *filters.Context) {
			var got []string
			ctx.Req.VisitHeaders(func(name, value []byte) bool {
				if strings.EqualFold(string(name), "X-Dup") {
					got = append(got, string(value))
				}
				return true
			})
			if len(got) != 1 || got[0] != "mine" {
				t.Fatalf("X-Dup values %q, want only \"mine\"", got)
			}
		}},
		{name: "endpoint: resp.set_header replaces every copy", phase: "endpoint", code: `
			ctx.respond(200, "", { ["X-A"] = "1" })
			ctx.resp.add_header("X-B", "2")
			ctx.resp.add_header("x-a", "3")
			ctx.resp.set_header("X-A", "4")`,
			check: func(t *testing.T, ctx *filters.Context) {
				hs := ctx.RespondHeaders
				if len(hs) != 2 || hs[0].Name != "X-A" || hs[0].Value != "4" || hs[1].Name != "X-B" {
					t.Fatalf("headers: %v, want X-A: 4 then X-B: 2", hs)
				}
			}},
		{name: "add_header", code: `ctx.req.add_header("X-Dup", "3")`, check: func(t *testing.T, ctx *filters.Context) {
			n := 0
			ctx.Req.VisitHeaders(func(name, _ []byte) bool {
				if string(name) == "X-Dup" {
					n++
				}
				return true
			})
			if n != 3 {
				t.Fatalf("%d X-Dup headers, want 3", n)
			}
		}},
		{name: "del_header", code: `ctx.req.del_header("user-agent")`, check: func(t *testing.T, ctx *filters.Context) {
			if v := ctx.Req.Header.Peek("User-Agent"); v != nil {
				t.Fatalf("User-Agent still %q", v)
			}
		}},
		{name: "set_header refuses a bad name", code: `ctx.req.set_header("Bad Name", "1")`, err: "invalid header name"},
		{name: "set_header refuses CRLF", code: `ctx.req.set_header("X-A", "1\r\nX-Injected: 1")`, err: "control character"},
		{name: "set_header refuses framing", code: `ctx.req.set_header("Content-Length", "1")`, err: "set by the gateway"},
		{name: "set_path", code: `ctx.req.set_path("/v2/x?q=1"); ctx.vars.v = ctx.req.path .. "|" .. ctx.req.query`,
			check: func(t *testing.T, ctx *filters.Context) {
				wantVar("v", "/v2/x|q=1")(t, ctx)
				if string(ctx.Route.Path) != "/v2/x?q=1" {
					t.Fatalf("Route.Path = %q", ctx.Route.Path)
				}
			}},
		{name: "set_path needs a slash", code: `ctx.req.set_path("v2")`, err: "must start with '/'"},
		{name: "body without body = true", code: `ctx.req.body()`, err: "ctx.req.body() needs body = true in the filter table"},
		{name: "body", decl: "body = true,", code: `ctx.vars.v = ctx.req.body()`,
			setup: func(ctx *filters.Context) { ctx.Body, ctx.BodyOK = []byte("payload"), true }, check: wantVar("v", "payload")},
		{name: "body not buffered", decl: "body = true,", code: `ctx.vars.v = tostring(ctx.req.body())`, check: wantVar("v", "nil")},
		{name: "unknown field", code: `local x = ctx.req.nope`, err: `ctx.req has no field "nope"`},
		{name: "read-only", code: `ctx.req.path = "/x"`, err: "ctx.req is read-only"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runAPICase(t, c) })
	}
}

func TestContextAPI(t *testing.T) {
	cases := []apiCase{
		{name: "id", code: `ctx.vars.v = ctx.id`, check: wantVar("v", "req-1")},
		{name: "trace id", code: `ctx.vars.v = ctx.trace_id`, check: wantVar("v", "4bf92f3577b34da6a3ce929d0e0e4736")},
		{name: "trace id is read-only", code: `ctx.trace_id = "x"`, err: "read-only"},
		{name: "start", code: `ctx.vars.v = string.format("%.3f", ctx.start)`,
			setup: func(ctx *filters.Context) { ctx.Start = 1_700_000_000_250_000_000 }, check: wantVar("v", "1700000000.250")},
		{name: "now", code: `ctx.vars.v = string.format("%d", ctx.now())`, check: func(t *testing.T, ctx *filters.Context) {
			got, err := strconv.ParseInt(vars(ctx, "v"), 10, 64)
			if err != nil || got < time.Now().Unix()-5 || got > time.Now().Unix()+5 {
				t.Fatalf("ctx.now() = %q, want about %d", vars(ctx, "v"), time.Now().Unix())
			}
		}},
		{name: "route", code: `ctx.route{ origin = "api", path = "/v2/x", host = "h.example:81" }`, check: func(t *testing.T, ctx *filters.Context) {
			r := ctx.Route
			if r.Origin != "api" || string(r.Path) != "/v2/x" || string(r.Host) != "h.example:81" || r.Endpoint != "" {
				t.Fatalf("route = %+v", r)
			}
		}},
		{name: "route as a websocket tunnel", code: `ctx.route{ origin = "chat", websocket = true }`, check: func(t *testing.T, ctx *filters.Context) {
			if ctx.Route.Origin != "chat" || ctx.Route.WebSocket != filters.WebSocketOn {
				t.Fatalf("route = %+v", ctx.Route)
			}
		}},
		{name: "route refusing a websocket tunnel", code: `ctx.route{ websocket = false }`, check: func(t *testing.T, ctx *filters.Context) {
			if ctx.Route.Origin != "" || ctx.Route.WebSocket != filters.WebSocketOff {
				t.Fatalf("route = %+v", ctx.Route)
			}
		}},
		{name: "route websocket not a boolean changes nothing", code: `ctx.route{ origin = "chat", websocket = "yes" }`, err: "websocket must be a boolean",
			check: func(t *testing.T, ctx *filters.Context) {
				if ctx.Route.Origin != "" || ctx.Route.WebSocket != filters.WebSocketByOrigin {
					t.Fatalf("route = %+v", ctx.Route)
				}
			}},
		{name: "route to an endpoint", code: `ctx.route{ endpoint = "robots" }`, check: func(t *testing.T, ctx *filters.Context) {
			if ctx.Route.Endpoint != "robots" {
				t.Fatalf("route = %+v", ctx.Route)
			}
		}},
		{name: "route unknown field changes nothing", code: `ctx.route{ origin = "api", bogus = 1 }`, err: "unknown field",
			check: func(t *testing.T, ctx *filters.Context) {
				if ctx.Route.Origin != "" {
					t.Fatalf("origin set by a refused call: %+v", ctx.Route)
				}
			}},
		{name: "route bad path", code: `ctx.route{ path = "v2" }`, err: "path must start with '/'"},
		{name: "route bad host", code: `ctx.route{ host = "a b" }`, err: "invalid host"},
		{name: "respond", code: `ctx.respond(201, "hi", { ["X-B"] = "2", ["X-A"] = "1" })`, check: func(t *testing.T, ctx *filters.Context) {
			if !ctx.Responded || ctx.RespondStatus != 201 || string(ctx.RespondBody) != "hi" ||
				len(ctx.RespondHeaders) != 2 || ctx.RespondHeaders[0] != (filters.Header{Name: "X-A", Value: "1"}) {
				t.Fatalf("respond: %v %d %q %v", ctx.Responded, ctx.RespondStatus, ctx.RespondBody, ctx.RespondHeaders)
			}
		}},
		{name: "respond bad status", code: `ctx.respond(99)`, err: "status must be an integer from 100 to 599"},
		{name: "respond bad header", code: `ctx.respond(200, "x", { ["Bad Name"] = "1" })`, err: "invalid header name"},
		{name: "log", code: `ctx.log("info", "hello from lua")`},
		{name: "log bad level", code: `ctx.log("loud", "x")`, err: "ctx.log: level must be"},
		{name: "vars is a table", code: `ctx.vars.n = 1; ctx.vars.n = ctx.vars.n + 1`, check: wantVar("n", "2")},
		{name: "resp in inbound", code: `local s = ctx.resp.status`, err: "ctx.resp is only for endpoint and outbound filters"},
		{name: "cause in inbound", code: `local c = ctx.cause`, err: "ctx.cause is only for outbound filters"},
		{name: "attempts in inbound", code: `local c = ctx.attempts`, err: "ctx.attempts is only for outbound filters"},
		{name: "unknown field", code: `local x = ctx.nope`, err: `ctx has no field "nope"`},
		{name: "read-only", code: `ctx.req = nil`, err: "ctx is read-only"},
		{name: "metatable hidden", code: `ctx.vars.v = tostring(getmetatable(ctx))`, check: wantVar("v", "false")},

		{name: "endpoint: route", phase: "endpoint", code: `ctx.route{ origin = "api" }`, err: "ctx.route is only for inbound filters"},
		{name: "endpoint: set_header", phase: "endpoint", code: `ctx.req.set_header("X-A", "1")`, err: "ctx.req.set_header is only for inbound filters"},
		{name: "endpoint: resp before respond", phase: "endpoint", code: `ctx.resp.set_header("X-A", "1")`, err: "call ctx.respond first"},
		{name: "endpoint: respond then resp", phase: "endpoint", code: `
			ctx.respond(200, "body", { ["Content-Type"] = "text/plain" })
			ctx.resp.set_header("X-B", "2")
			ctx.resp.set_status(202)
			ctx.resp.set_body(ctx.resp.body() .. "!")
			ctx.vars.v = ctx.resp.status .. "|" .. ctx.resp.header("content-type")`,
			check: func(t *testing.T, ctx *filters.Context) {
				wantVar("v", "202|text/plain")(t, ctx)
				if ctx.RespondStatus != 202 || string(ctx.RespondBody) != "body!" || len(ctx.RespondHeaders) != 2 {
					t.Fatalf("answer: %d %q %v", ctx.RespondStatus, ctx.RespondBody, ctx.RespondHeaders)
				}
			}},
		{name: "endpoint: del_header", phase: "endpoint", code: `
			ctx.respond(200, "", { ["X-A"] = "1", ["X-B"] = "2" })
			ctx.resp.del_header("x-a")`,
			check: func(t *testing.T, ctx *filters.Context) {
				if len(ctx.RespondHeaders) != 1 || ctx.RespondHeaders[0].Name != "X-B" {
					t.Fatalf("headers: %v", ctx.RespondHeaders)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runAPICase(t, c) })
	}
}

func TestResponseAPI(t *testing.T) {
	cases := []apiCase{
		{phase: "outbound", name: "status", code: `ctx.vars.v = ctx.resp.status`, check: wantVar("v", "200")},
		{phase: "outbound", name: "set_status", code: `ctx.resp.set_status(503)`, check: func(t *testing.T, ctx *filters.Context) {
			if ctx.Resp.Status != 503 {
				t.Fatalf("status %d", ctx.Resp.Status)
			}
		}},
		{phase: "outbound", name: "set_status bad", code: `ctx.resp.set_status(1000)`, err: "status must be an integer"},
		{phase: "outbound", name: "headers", code: `
			ctx.vars.v = ctx.resp.header("server") .. "|" .. tostring(ctx.resp.header("X-Nope"))
			ctx.resp.set_header("X-Gateway", "gozer")
			ctx.resp.add_header("X-Multi", "1")
			ctx.resp.add_header("X-Multi", "2")
			ctx.resp.del_header("Server")`,
			check: func(t *testing.T, ctx *filters.Context) {
				wantVar("v", "origin|nil")(t, ctx)
				h := &ctx.Resp.Header
				if string(h.Peek("X-Gateway")) != "gozer" || len(h.Peek("Server")) != 0 {
					t.Fatalf("headers: %s", h.String())
				}
				if n := strings.Count(h.String(), "X-Multi"); n != 2 {
					t.Fatalf("%d X-Multi headers: %s", n, h.String())
				}
			}},
		{phase: "outbound", name: "headers iterates", code: `
			local parts = {}
			for name, value in ctx.resp.headers() do parts[#parts+1] = name .. "=" .. value end
			table.sort(parts)
			ctx.vars.v = table.concat(parts, ";")`,
			check: wantVar("v", "Content-Type=text/plain;Server=origin")},
		{phase: "endpoint", name: "endpoint: headers iterates", code: `
			ctx.respond(200, "", { ["X-A"] = "1" })
			for name, value in ctx.resp.headers() do ctx.vars.v = name .. "=" .. value end`,
			check: wantVar("v", "X-A=1")},
		{phase: "outbound", name: "set_header refuses framing", code: `ctx.resp.set_header("Transfer-Encoding", "chunked")`, err: "set by the gateway"},
		{phase: "outbound", name: "cause and attempts", code: `ctx.vars.v = ctx.cause .. "|" .. ctx.attempts`, check: wantVar("v", "SUCCESS|2")},
		{phase: "outbound", name: "body without body = true", code: `ctx.resp.body()`, err: "ctx.resp.body() needs body = true in the filter table"},
		{phase: "outbound", name: "body", decl: "body = true,", code: `ctx.vars.v = ctx.resp.body()`,
			setup: func(ctx *filters.Context) { ctx.RespBody, ctx.RespBodyOK = []byte("hello"), true }, check: wantVar("v", "hello")},
		{phase: "outbound", name: "body not buffered", decl: "body = true,", code: `ctx.vars.v = tostring(ctx.resp.body())`, check: wantVar("v", "nil")},
		{phase: "outbound", name: "set_body", decl: "body = true,", code: `ctx.resp.set_body("abc")`,
			setup: func(ctx *filters.Context) {
				ctx.RespBody, ctx.RespBodyOK = []byte("hello"), true
				ctx.Resp.Framing = httpcodec.FramingChunked
			},
			check: func(t *testing.T, ctx *filters.Context) {
				r := ctx.Resp
				if string(ctx.RespBody) != "abc" || r.ContentLength != 3 || r.Framing != httpcodec.FramingLength || !r.HasContentLength {
					t.Fatalf("body %q length %d framing %v", ctx.RespBody, r.ContentLength, r.Framing)
				}
			}},
		{phase: "outbound", name: "set_body on a HEAD answer keeps no body", decl: "body = true,", code: `ctx.resp.set_body("abcd")`,
			setup: func(ctx *filters.Context) {
				ctx.RespBodyOK = true
				ctx.Resp.Framing = httpcodec.FramingNone
			},
			check: func(t *testing.T, ctx *filters.Context) {
				if r := ctx.Resp; r.Framing != httpcodec.FramingNone || r.ContentLength != 4 {
					t.Fatalf("framing %v length %d", r.Framing, r.ContentLength)
				}
			}},
		{phase: "outbound", name: "set_body not buffered", decl: "body = true,", code: `ctx.resp.set_body("abc")`, err: "not buffered"},
		{phase: "outbound", name: "set_body too large", decl: "body = true,", code: `ctx.resp.set_body(string.rep("x", 65))`,
			setup: func(ctx *filters.Context) { ctx.RespBodyOK = true }, err: "body larger than 64 bytes"},
		{phase: "outbound", name: "respond", code: `ctx.respond(200)`, err: "ctx.respond is only for inbound and endpoint filters"},
		{phase: "outbound", name: "route", code: `ctx.route{ origin = "x" }`, err: "ctx.route is only for inbound filters"},
		{phase: "outbound", name: "set_path", code: `ctx.req.set_path("/x")`, err: "ctx.req.set_path is only for inbound filters"},
		{phase: "outbound", name: "request fields readable", code: `ctx.vars.v = ctx.req.method .. ctx.req.path`, check: wantVar("v", "GET/a/b")},
		{phase: "outbound", name: "unknown resp field", code: `local x = ctx.resp.nope`, err: `ctx.resp has no field "nope"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runAPICase(t, c) })
	}
}

func TestLogCarriesRequestAndFilter(t *testing.T) {
	e := newEnv(t, map[string]string{
		"inbound/t.lua": filterSrc("t", "inbound", 0, "", `ctx.log("warn", "hello " .. ctx.req.path); print("printed", 1)`),
	}, Options{})
	lg := zerolog.New(e.log).Level(zerolog.DebugLevel)
	e.loop.Chain().Inbound(newCtx(t, "", &lg))
	line := e.log.find("message", "hello /a/b")
	if line == nil || line["level"] != "warn" || line["filter"] != "t" || line["request_id"] != "req-1" {
		t.Fatalf("log line %v; log:\n%s", line, e.log)
	}
	if p := e.log.find("message", "printed\t1"); p == nil || p["level"] != "debug" || p["filter"] != "t" {
		t.Fatalf("print line %v; log:\n%s", p, e.log)
	}
}
