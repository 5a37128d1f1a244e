package builtin

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gozer/filters"
	"gozer/filters/cors"
	"gozer/gateway/httpcodec"
)

// corsCtx is a request at http://api.test with the given extra head lines,
// under policy p.
func corsCtx(t testing.TB, p *cors.Policy, st *cors.Stats, lines ...string) *filters.Context {
	t.Helper()
	head := "GET /x HTTP/1.1\r\nHost: api.test\r\n"
	if len(lines) > 0 && strings.HasPrefix(lines[0], "OPTIONS") {
		head = lines[0] + "\r\nHost: api.test\r\n"
		lines = lines[1:]
	}
	for _, l := range lines {
		head += l + "\r\n"
	}
	req := &httpcodec.Request{}
	if err := req.Parse([]byte(head + "\r\n")); err != nil {
		t.Fatal(err)
	}
	return &filters.Context{Req: req, Scheme: "http", CORS: filters.CORS{Policy: p, Stats: st}}
}

func headerMap(hs []filters.Header) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		m[h.Name] = h.Value
	}
	return m
}

func TestCORSPreflight(t *testing.T) {
	p, err := cors.New(cors.Options{AllowOrigins: []string{"http://localhost:3000", "https://*.example.com"},
		AllowMethods: []string{"GET", "PUT"}, AllowHeaders: []string{"X-Demo"}, ExposeHeaders: []string{"X-Request-Id"},
		AllowCredentials: true, MaxAge: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	const opt = "OPTIONS /x HTTP/1.1"
	const vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
	anyMethod, err := cors.New(cors.Options{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		policy  *cors.Policy
		lines   []string
		filter  bool              // ShouldFilter
		status  int               // 0: not answered
		failed  bool              // refused: 403
		headers map[string]string // the answer's headers (exactly)
	}{
		{"allowed", p, []string{opt, "Origin: http://localhost:3000", "Access-Control-Request-Method: PUT", "Access-Control-Request-Headers: x-demo"},
			true, 204, false, map[string]string{"Vary": vary, "Access-Control-Allow-Origin": "http://localhost:3000",
				"Access-Control-Allow-Credentials": "true", "Access-Control-Expose-Headers": "X-Request-Id",
				"Access-Control-Allow-Methods": "GET, PUT", "Access-Control-Allow-Headers": "X-Demo", "Access-Control-Max-Age": "600"}},
		{"wildcard subdomain", p, []string{opt, "Origin: https://a.b.example.com", "Access-Control-Request-Method: GET"},
			true, 204, false, map[string]string{"Vary": vary, "Access-Control-Allow-Origin": "https://a.b.example.com",
				"Access-Control-Allow-Credentials": "true", "Access-Control-Expose-Headers": "X-Request-Id",
				"Access-Control-Allow-Methods": "GET, PUT", "Access-Control-Allow-Headers": "X-Demo", "Access-Control-Max-Age": "600"}},
		{"look-alike refused", p, []string{opt, "Origin: https://example.com.evil.com", "Access-Control-Request-Method: GET"},
			true, 0, true, nil},
		{"another port refused", p, []string{opt, "Origin: http://localhost:3001", "Access-Control-Request-Method: GET"},
			true, 0, true, nil},
		{"null refused", p, []string{opt, "Origin: null", "Access-Control-Request-Method: GET"}, true, 0, true, nil},
		{"a method not listed refused", p, []string{opt, "Origin: http://localhost:3000", "Access-Control-Request-Method: DELETE"},
			true, 0, true, nil},
		{"a header not listed refused", p, []string{opt, "Origin: http://localhost:3000", "Access-Control-Request-Method: PUT",
			"Access-Control-Request-Headers: x-demo, x-secret"}, true, 0, true, nil},
		{"POST: safelisted, passes though not listed", p, []string{opt, "Origin: http://localhost:3000", "Access-Control-Request-Method: POST"},
			true, 204, false, map[string]string{"Vary": vary, "Access-Control-Allow-Origin": "http://localhost:3000",
				"Access-Control-Allow-Credentials": "true", "Access-Control-Expose-Headers": "X-Request-Id",
				"Access-Control-Allow-Methods": "GET, PUT", "Access-Control-Allow-Headers": "X-Demo", "Access-Control-Max-Age": "600"}},
		{"allow_methods *: any method", anyMethod, []string{opt, "Origin: http://localhost:3000", "Access-Control-Request-Method: PUT",
			"Access-Control-Request-Headers: content-type"}, true, 204, false, map[string]string{"Vary": vary,
			"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "*", "Access-Control-Allow-Headers": "content-type"}},
		{"no policy: passes", nil, []string{opt, "Origin: http://localhost:3000", "Access-Control-Request-Method: GET"}, false, 0, false, nil},
		{"OPTIONS without Access-Control-Request-Method: passes", p, []string{opt, "Origin: http://localhost:3000"}, false, 0, false, nil},
		{"GET: passes", p, []string{"Origin: http://localhost:3000", "Access-Control-Request-Method: GET"}, false, 0, false, nil},
		{"same origin: passes", p, []string{opt, "Origin: http://api.test", "Access-Control-Request-Method: GET"}, true, 0, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &cors.Stats{}
			ctx := corsCtx(t, tc.policy, st, tc.lines...)
			f := CORSPreflight{}
			if got := f.ShouldFilter(ctx); got != tc.filter {
				t.Fatalf("ShouldFilter %v, want %v", got, tc.filter)
			}
			if !tc.filter {
				return
			}
			f.Apply(ctx)
			if ctx.Failed != tc.failed {
				t.Fatalf("Failed %v (%s), want %v", ctx.Failed, ctx.FailReason, tc.failed)
			}
			if tc.failed {
				if ctx.FailCause != filters.ClientOriginRefused || st.RefusedPreflight.Load() != 1 {
					t.Fatalf("cause %v, refused %d", ctx.FailCause, st.RefusedPreflight.Load())
				}
				return
			}
			if !ctx.Responded && tc.status == 0 {
				return
			}
			if ctx.RespondStatus != tc.status || !ctx.Responded {
				t.Fatalf("status %d (responded %v), want %d", ctx.RespondStatus, ctx.Responded, tc.status)
			}
			got := headerMap(ctx.RespondHeaders)
			if len(got) != len(tc.headers) {
				t.Errorf("headers %v, want %v", got, tc.headers)
			}
			for k, v := range tc.headers {
				if got[k] != v {
					t.Errorf("%s: %q, want %q", k, got[k], v)
				}
			}
			if st.Preflights.Load() != 1 {
				t.Errorf("preflights counted %d, want 1", st.Preflights.Load())
			}
		})
	}
}

func TestCORSResponse(t *testing.T) {
	p, err := cors.New(cors.Options{AllowOrigins: []string{"http://localhost:3000"}, ExposeHeaders: []string{"X-Request-Id"}, AllowCredentials: true})
	if err != nil {
		t.Fatal(err)
	}
	anyOrigin, _ := cors.New(cors.Options{AllowOrigins: []string{"*"}})
	tests := []struct {
		name     string
		policy   *cors.Policy
		verdict  filters.Verdict
		origin   string
		respHead string // the response's own headers
		want     map[string]string
		refused  int64
	}{
		{"allowed", p, 0, "http://localhost:3000", "", map[string]string{"Vary": "Origin",
			"Access-Control-Allow-Origin": "http://localhost:3000", "Access-Control-Allow-Credentials": "true",
			"Access-Control-Expose-Headers": "X-Request-Id"}, 0},
		{"vary merged", p, 0, "http://localhost:3000", "Vary: Accept-Encoding\r\n", map[string]string{"Vary": "Accept-Encoding, Origin",
			"Access-Control-Allow-Origin": "http://localhost:3000"}, 0},
		{"vary kept", p, 0, "http://localhost:3000", "Vary: origin\r\n", map[string]string{"Vary": "origin"}, 0},
		{"refused: the origin's own headers go", p, 0, "https://evil.test",
			"Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Credentials: true\r\n",
			map[string]string{"Vary": "Origin", "Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": ""}, 1},
		{"any origin: *", anyOrigin, 0, "https://x.test", "", map[string]string{"Access-Control-Allow-Origin": "*",
			"Access-Control-Allow-Credentials": ""}, 0},
		{"a Lua verdict beats the list", p, filters.VerdictAllow, "https://partner.test", "",
			map[string]string{"Access-Control-Allow-Origin": "https://partner.test"}, 0},
		{"a Lua refusal beats the list", p, filters.VerdictRefuse, "http://localhost:3000", "",
			map[string]string{"Access-Control-Allow-Origin": ""}, 1},
		{"same origin: nothing", p, 0, "http://api.test", "", map[string]string{"Vary": "Origin", "Access-Control-Allow-Origin": ""}, 0},
	}
	// On a parsed head, and on the unparsed one the core gives a chain whose
	// outbound Go filters are all filters.LazyHeadFilter.
	for _, lazy := range []bool{false, true} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s lazy=%v", tc.name, lazy), func(t *testing.T) {
				st := &cors.Stats{}
				ctx := corsCtx(t, tc.policy, st, "Origin: "+tc.origin)
				ctx.CORS.Verdict = tc.verdict
				resp := &httpcodec.Response{}
				parse := resp.Parse
				if lazy {
					parse = resp.ParseLazy
				}
				if err := parse([]byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"+tc.respHead+"\r\n"), false); err != nil {
					t.Fatal(err)
				}
				ctx.Resp = resp
				f := CORSResponse{}
				if !f.ShouldFilter(ctx) {
					t.Fatal("ShouldFilter false")
				}
				f.Apply(ctx)
				for k, v := range tc.want {
					if got := string(resp.Get(k)); got != v {
						t.Errorf("%s: %q, want %q", k, got, v)
					}
				}
				if st.RefusedRequest.Load() != tc.refused {
					t.Errorf("refused %d, want %d", st.RefusedRequest.Load(), tc.refused)
				}
			})
		}
	}
	if (CORSResponse{}).ShouldFilter(&filters.Context{Resp: &httpcodec.Response{}}) {
		t.Error("ShouldFilter true without a policy")
	}
}

func TestMergeVary(t *testing.T) {
	for in, want := range map[string]string{"": "Origin", "Accept-Encoding": "Accept-Encoding, Origin",
		"accept-encoding, ORIGIN": "", "*": "", " ": "Origin"} {
		if got := string(filters.MergeVary([]byte(in), "Origin")); got != want {
			t.Errorf("MergeVary(%q) = %q, want %q", in, got, want)
		}
	}
}

// The Go side of CORS per request, no sockets: a preflight's answer, the
// headers of an allowed actual request, and a request without Origin (what
// every request of a route with a policy pays).
func benchCORS(b *testing.B, lines ...string) {
	p, err := cors.New(cors.Options{AllowOrigins: []string{"http://localhost:3000", "https://*.example.com"},
		AllowMethods: []string{"GET", "PUT"}, AllowHeaders: []string{"X-Demo"}, ExposeHeaders: []string{"X-Request-Id"},
		AllowCredentials: true, MaxAge: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	ctx := corsCtx(b, p, &cors.Stats{}, lines...)
	resp := &httpcodec.Response{}
	pre, post := CORSPreflight{}, CORSResponse{}
	b.ReportAllocs()
	for b.Loop() {
		ctx.CORS = filters.CORS{Policy: p}
		ctx.Responded = false
		if pre.ShouldFilter(ctx) {
			pre.Apply(ctx)
			continue
		}
		resp.Reset()
		ctx.Resp = resp
		if post.ShouldFilter(ctx) {
			post.Apply(ctx)
		}
	}
}

func BenchmarkCORSPreflight(b *testing.B) {
	benchCORS(b, "OPTIONS /x HTTP/1.1", "Origin: http://localhost:3000", "Access-Control-Request-Method: PUT", "Access-Control-Request-Headers: x-demo")
}
func BenchmarkCORSActual(b *testing.B)   { benchCORS(b, "Origin: https://app.example.com") }
func BenchmarkCORSNoOrigin(b *testing.B) { benchCORS(b) }
