package lua

import (
	"testing"

	"gozer/filters"
	"gozer/gateway/httpcodec"
)

// benchReqHead and benchRespHead are the heads of bench/run.sh's requests:
// what wrk sends and the bench origin answers.
//
//	go test -run '^$' -bench 'Core|Field' -benchmem ./filters/lua/
const (
	benchReqHead  = "GET / HTTP/1.1\r\nHost: 127.0.0.1:18087\r\n\r\n"
	benchRespHead = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 05 Dec 2026 06:20:29 GMT\r\nContent-Type: text/plain\r\nContent-Length: 128\r\nConnection: keep-alive\r\n\r\n"
)

// benchCoreRequests is benchRequests as the core runs a chain: each op parses
// the request head and hands the outbound filters the unparsed response head
// (Response.ParseLazy, Chain.LazyResponseHead), so no undo is needed and the
// difference to BenchmarkCoreZeroFilters is the filters' cost on the proxy's path.
func benchCoreRequests(b *testing.B, scripts map[string]string) {
	e := newEnv(b, scripts, Options{Budget: DefaultBudget})
	l := e.loop
	req, resp := &httpcodec.Request{}, &httpcodec.Response{}
	ctx := &filters.Context{}
	if got := l.Chain().Len(); got != len(scripts) {
		b.Fatalf("chain has %d filters, want %d; log:\n%s", got, len(scripts), e.log)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := req.Parse([]byte(benchReqHead)); err != nil {
			b.Fatal(err)
		}
		if err := resp.ParseLazy([]byte(benchRespHead), false); err != nil {
			b.Fatal(err)
		}
		ctx.Reset()
		ctx.Req, ctx.ID, ctx.RemoteAddr = req, []byte("48b2024ee37554940000000000000002"), "127.0.0.1:5555"
		ch := l.Chain()
		ch.Inbound(ctx)
		ctx.Resp, ctx.Cause = resp, filters.Success
		ch.Outbound(ctx)
		if ctx.Failed {
			b.Fatalf("request failed: %s", ctx.FailReason)
		}
	}
}

func BenchmarkCoreZeroFilters(b *testing.B) { benchCoreRequests(b, nil) }

// BenchmarkCoreBenchScripts is BenchmarkBenchScripts (the bench's three
// scripts) on the core's path: its difference to BenchmarkCoreZeroFilters is
// what the three Lua steps cost a proxied request.
func BenchmarkCoreBenchScripts(b *testing.B) { benchCoreRequests(b, benchScripts) }

// BenchmarkFieldDynamic, BenchmarkFieldMember and BenchmarkFieldNone: one
// filter that reads ctx.req.path (a field served by reqIndex until fields.go
// kept it in the members table), a member function, or nothing: what a field
// read costs.
func BenchmarkFieldDynamic(b *testing.B) {
	benchCoreRequests(b, map[string]string{"inbound/a.lua": filterSrc("a", "inbound", 10, "", `local p = ctx.req.path`)})
}

func BenchmarkFieldMember(b *testing.B) {
	benchCoreRequests(b, map[string]string{"inbound/a.lua": filterSrc("a", "inbound", 10, "", `local p = ctx.req.set_header`)})
}

func BenchmarkFieldNone(b *testing.B) {
	benchCoreRequests(b, map[string]string{"inbound/a.lua": filterSrc("a", "inbound", 10, "", `local p = 1`)})
}
