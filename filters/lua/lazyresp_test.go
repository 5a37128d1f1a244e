package lua

import (
	"slices"
	"strings"
	"testing"

	"gozer/filters"
	"gozer/filters/builtin"
	"gozer/gateway/httpcodec"
)

// TestLazyResponseHead: outbound Lua filters given an unparsed response head
// (httpcodec.Response.ParseLazy, what the core hands them when
// Chain.LazyResponseHead) read and edit it as they would the parsed one: the
// client gets the same head and the filter sees the same values. (The same
// up to the order of different names and the case of names: a parsed head is
// written in fasthttp's order and case, an unparsed one, like the head of a
// request without filters, in the origin's.)
func TestLazyResponseHead(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nServer: origin\r\nContent-Type: text/plain\r\nX-Dup: 1\r\nx-dup: 2\r\nContent-Length: 5\r\n\r\n"
	cases := []struct{ name, code string }{
		{"set and del", `ctx.resp.set_header("X-Gateway", "gozer"); ctx.resp.del_header("Server")`},
		{"set replaces every line", `ctx.resp.set_header("x-DUP", "3")`},
		{"del every line", `ctx.resp.del_header("X-DUP")`},
		{"del then set", `ctx.resp.del_header("Server"); ctx.resp.set_header("Server", "gw")`},
		{"set then del", `ctx.resp.set_header("X-A", "1"); ctx.resp.del_header("x-a")`},
		{"read", `ctx.resp.set_header("X-Saw", tostring(ctx.resp.header("content-TYPE")) .. "|" ..
			tostring(ctx.resp.header("x-dup")) .. "|" .. tostring(ctx.resp.header("X-Nope")) .. "|" .. ctx.resp.status)`},
		{"read after del", `ctx.resp.del_header("Server"); ctx.resp.set_header("X-Saw", tostring(ctx.resp.header("Server")))`},
		{"status", `ctx.resp.set_status(203); ctx.resp.set_header("X-S", tostring(ctx.resp.status))`},
		// These parse the head: earlier lazy edits must survive it.
		{"edits then headers()", `ctx.resp.del_header("Server"); ctx.resp.set_header("X-A", "1")
			local n = {}
			for k, v in ctx.resp.headers() do n[#n + 1] = k .. "=" .. v end
			ctx.resp.set_header("X-All", table.concat(n, ";"))`},
		{"edits then add_header", `ctx.resp.del_header("x-dup"); ctx.resp.set_header("X-A", "1"); ctx.resp.add_header("X-A", "2")`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, map[string]string{"outbound/t.lua": filterSrc("t", "outbound", 0, "", c.code)}, Options{})
			ch := e.loop.Chain()
			if !ch.LazyResponseHead() {
				t.Fatal("a chain of Lua filters only should take a lazy head")
			}
			var got [2]string
			for i, lazy := range []bool{false, true} {
				r := &httpcodec.Response{}
				var err error
				if lazy {
					err = r.ParseLazy([]byte(head), false)
				} else {
					err = r.Parse([]byte(head), false)
				}
				if err != nil {
					t.Fatal(err)
				}
				ctx := newCtx(t, "", nil)
				ctx.Resp, ctx.Cause = r, filters.Success
				ch.Outbound(ctx)
				if st, _ := status(e.rt, "t"); st.Errors != 0 || ctx.Failed {
					t.Fatalf("lazy=%v: filter failed (%s); log:\n%s", lazy, ctx.FailReason, e.log)
				}
				got[i] = canonicalHead(string(httpcodec.AppendClientResponse(nil, r, &httpcodec.ResponseInfo{})))
			}
			if got[0] != got[1] {
				t.Fatalf("parsed head gives\n%q\nlazy head gives\n%q", got[0], got[1])
			}
		})
	}
}

// TestLazyResponseHeadGoFilter: a Go outbound filter may use ctx.Resp.Header,
// so a chain with one asks the core for a parsed head, unless it is a
// filters.LazyHeadFilter (the built-in ones).
func TestLazyResponseHeadGoFilter(t *testing.T) {
	e := newEnv(t, nil, Options{GoFilters: []filters.Filter{respHeaderGoFilter{}, builtin.ServerTiming{}}})
	if e.loop.Chain().LazyResponseHead() {
		t.Fatal("a chain with a Go outbound filter took a lazy head")
	}
	e = newEnv(t, nil, Options{GoFilters: []filters.Filter{builtin.ServerTiming{}, builtin.CORSResponse{}}})
	if !e.loop.Chain().LazyResponseHead() {
		t.Fatal("a chain with only the built-in Go filters did not take a lazy head")
	}
}

type respHeaderGoFilter struct{}

func (respHeaderGoFilter) Name() string                           { return "h" }
func (respHeaderGoFilter) Phase() filters.Phase                   { return filters.Outbound }
func (respHeaderGoFilter) Order() int                             { return 0 }
func (respHeaderGoFilter) ShouldFilter(ctx *filters.Context) bool { return true }
func (respHeaderGoFilter) Apply(ctx *filters.Context)             { ctx.Resp.Header.Set("X-H", "1") }

// canonicalHead is a response head with its header names in lower case and
// its lines sorted by name, stably (lines of one name keep their order).
func canonicalHead(h string) string {
	lines := strings.Split(strings.TrimSuffix(h, "\r\n\r\n"), "\r\n")
	hs := lines[1:]
	for i, l := range hs {
		name, value, _ := strings.Cut(l, ":")
		hs[i] = strings.ToLower(name) + ":" + value
	}
	slices.SortStableFunc(hs, func(a, b string) int {
		an, _, _ := strings.Cut(a, ":")
		bn, _, _ := strings.Cut(b, ":")
		return strings.Compare(an, bn)
	})
	return lines[0] + "\n" + strings.Join(hs, "\n")
}
