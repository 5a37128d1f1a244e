package lua

import (
	"testing"

	"gozer/filters"
	"gozer/gateway/config"
)

func TestCORSAPI(t *testing.T) {
	table := filters.NewCORSTable(&config.Config{CORS: map[string]*config.CORSPolicy{
		"partners": {AllowOrigins: []string{"https://partner.test"}}}})
	withTable := func(ctx *filters.Context) { ctx.CORS.Table = table }
	cases := []apiCase{
		{name: "allow", code: `ctx.cors{ allow = true }`, check: func(t *testing.T, ctx *filters.Context) {
			if ctx.CORS.Verdict != filters.VerdictAllow {
				t.Fatalf("verdict %v", ctx.CORS.Verdict)
			}
		}},
		{name: "refuse", code: `ctx.cors{ allow = false }`, check: func(t *testing.T, ctx *filters.Context) {
			if ctx.CORS.Verdict != filters.VerdictRefuse {
				t.Fatalf("verdict %v", ctx.CORS.Verdict)
			}
		}},
		{name: "named policy", setup: withTable, code: `ctx.cors{ policy = "partners" }`, check: func(t *testing.T, ctx *filters.Context) {
			if ctx.CORS.Policy != table.Named("partners") || ctx.CORS.Policy == nil {
				t.Fatal("policy not set to cors.partners")
			}
		}},
		{name: "own policy", code: `ctx.cors{ origins = { "https://own.test", "https://*.own.test" }, methods = { "GET", "DELETE" },
			headers = { "X-A" }, expose = { "X-B" }, credentials = true, max_age = 60 }`,
			check: func(t *testing.T, ctx *filters.Context) {
				p := ctx.CORS.Policy
				if p == nil || !p.AllowsOrigin([]byte("https://a.own.test")) || p.AllowsOrigin([]byte("https://other.test")) ||
					p.MethodsValue != "GET, DELETE" || p.HeadersValue != "X-A" || p.ExposeValue != "X-B" || !p.Credentials() || p.MaxAgeValue != "60" {
					t.Fatalf("policy %+v", p)
				}
			}},
		{name: "unknown policy", setup: withTable, code: `ctx.cors{ policy = "nope" }`, err: `no CORS policy "nope"`},
		{name: "bad origin", code: `ctx.cors{ origins = { "https://a.test/path" } }`, err: `allow_origins[0]: "https://a.test/path" is not an origin`},
		{name: "no origins", code: `ctx.cors{ credentials = true }`, err: "allow_origins: at least one origin is needed"},
		{name: "both", setup: withTable, code: `ctx.cors{ policy = "partners", origins = { "*" } }`, err: "not both"},
		{name: "unknown field", code: `ctx.cors{ origin = "x" }`, err: "unknown field"},
		{name: "allow not boolean", code: `ctx.cors{ allow = "yes" }`, err: "allow must be a boolean"},
		{name: "origins not a list", code: `ctx.cors{ origins = "*" }`, err: "origins must be a list of strings"},
		{name: "a bad call changes nothing", code: `pcall(ctx.cors, { allow = true, bogus = 1 }); ctx.vars.v = "ran"`,
			check: func(t *testing.T, ctx *filters.Context) {
				if ctx.CORS.Verdict != filters.VerdictNone {
					t.Fatalf("verdict %v after a refused call", ctx.CORS.Verdict)
				}
			}},
		{phase: "outbound", name: "outbound raises", code: `ctx.cors{ allow = true }`, err: "ctx.cors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runAPICase(t, c) })
	}
}
