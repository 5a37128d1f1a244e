package cors

import (
	"testing"
	"time"
)

func mustNew(t testing.TB, o Options) *Policy {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAllowsOrigin(t *testing.T) {
	p := mustNew(t, Options{AllowOrigins: []string{
		"https://app.example.com", "http://localhost:3000", "https://*.example.org", "http://[::1]:8080", "HTTPS://Upper.Example.NET:443",
	}})
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://app.example.com", true},
		{"https://APP.Example.com", true},     // host case
		{"HTTPS://app.example.com", true},     // scheme case
		{"https://app.example.com:443", true}, // the default port is no port
		{"https://app.example.com:8443", false},
		{"http://app.example.com", false}, // another scheme
		{"https://app.example.com/", false},
		{"https://app.example.com/path", false},
		{"https://app.example.com.evil.com", false}, // look-alike: suffix
		{"https://evilapp.example.com", false},
		{"https://app.example.co", false},
		{"https://user@app.example.com", false},
		{"https://app.example.com.", false},
		{" https://app.example.com", false},
		{"http://localhost:3000", true},
		{"http://localhost:3001", false},
		{"http://localhost", false},
		{"http://LOCALHOST:3000", true},
		{"http://127.0.0.1:3000", false},
		{"http://localhost:03000", false},
		{"http://localhost:99999", false},
		{"https://a.example.org", true},
		{"https://a.b.example.org", true},
		{"https://example.org", false}, // the apex is not a subdomain
		{"https://.example.org", false},
		{"https://a..example.org", false},
		{"https://*.example.org", false},     // a pattern is not an origin
		{"https://aexample.org", false},      // no dot
		{"https://example.org.evil", false},  // look-alike
		{"https://a.example.org:444", false}, // the wildcard's port is the default
		{"http://a.example.org", false},
		{"https://a.example.org.evil.com", false},
		{"http://[::1]:8080", true},
		{"http://[::1]", false},
		{"http://[::1:8080", false},
		{"https://upper.example.net", true},
		{"null", false},
		{"", false},
		{"*", false},
		{"app.example.com", false},
		{"://app.example.com", false},
	}
	for _, tc := range tests {
		if got := p.AllowsOrigin([]byte(tc.origin)); got != tc.want {
			t.Errorf("AllowsOrigin(%q) = %v, want %v", tc.origin, got, tc.want)
		}
	}

	any := mustNew(t, Options{AllowOrigins: []string{"*"}})
	for o, want := range map[string]bool{"https://x.y": true, "http://localhost:1": true, "null": false, "garbage": false} {
		if got := any.AllowsOrigin([]byte(o)); got != want {
			t.Errorf("* policy: AllowsOrigin(%q) = %v, want %v", o, got, want)
		}
	}
	null := mustNew(t, Options{AllowOrigins: []string{"null"}})
	if !null.AllowsOrigin([]byte("null")) || null.AllowsOrigin([]byte("https://x.y")) {
		t.Error("null policy: allows only null")
	}
}

func TestAllowOriginValue(t *testing.T) {
	tests := []struct {
		name        string
		origins     []string
		credentials bool
		origin      string
		want        string
	}{
		{"any without credentials", []string{"*"}, false, "https://a.b", "*"},
		{"listed with credentials reflects", []string{"https://a.b"}, true, "https://a.b", "https://a.b"},
		{"exact", []string{"https://a.b"}, false, "https://a.b", "https://a.b"},
		{"null reflects", []string{"*", "null"}, false, "null", "null"},
	}
	for _, tc := range tests {
		p := mustNew(t, Options{AllowOrigins: tc.origins, AllowCredentials: tc.credentials})
		if got := string(p.AllowOriginValue([]byte(tc.origin))); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMethodsHeaders(t *testing.T) {
	p := mustNew(t, Options{AllowOrigins: []string{"*"}, AllowMethods: []string{"GET", "PUT"},
		AllowHeaders: []string{"X-Demo", "content-type"}, ExposeHeaders: []string{"X-Request-Id"}, MaxAge: 90 * time.Second})
	if !p.AllowsMethod([]byte("PUT")) || p.AllowsMethod([]byte("put")) || p.AllowsMethod([]byte("DELETE")) {
		t.Error("methods: PUT yes, put and DELETE no")
	}
	for list, want := range map[string]bool{"": true, "x-demo": true, "X-Demo, Content-Type": true, "x-demo,x-other": false, " , x-demo ,": true} {
		if got := p.AllowsHeaders([]byte(list)); got != want {
			t.Errorf("AllowsHeaders(%q) = %v, want %v", list, got, want)
		}
	}
	if p.MethodsValue != "GET, PUT" || p.HeadersValue != "X-Demo, content-type" || p.ExposeValue != "X-Request-Id" || p.MaxAgeValue != "90" {
		t.Errorf("values: %q %q %q %q", p.MethodsValue, p.HeadersValue, p.ExposeValue, p.MaxAgeValue)
	}
	star := mustNew(t, Options{AllowOrigins: []string{"*"}, AllowHeaders: []string{"*"}})
	if !star.AllowsHeaders([]byte("x-anything")) || star.AllowHeadersValue([]byte("x-anything")) != "x-anything" {
		t.Error("headers *: reflects what was asked")
	}
	anyMethod := mustNew(t, Options{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}})
	if !anyMethod.AllowsMethod([]byte("PUT")) || anyMethod.MethodsValue != "*" {
		t.Errorf("methods *: PUT allowed %v, Access-Control-Allow-Methods %q; want any method, \"*\" as is",
			anyMethod.AllowsMethod([]byte("PUT")), anyMethod.MethodsValue)
	}
	def := mustNew(t, Options{AllowOrigins: []string{"*"}})
	if def.MethodsValue != "GET, HEAD, POST" || def.MaxAgeValue != "" {
		t.Errorf("defaults: %q %q", def.MethodsValue, def.MaxAgeValue)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no origins", Options{}, "allow_origins: at least one origin is needed (or \"*\")"},
		{"path", Options{AllowOrigins: []string{"https://a.b/"}}, `allow_origins[0]: "https://a.b/" is not an origin (scheme://host[:port], https://*.domain, null or *)`},
		{"inner wildcard", Options{AllowOrigins: []string{"https://a.*.b"}}, `allow_origins[0]: "https://a.*.b": a wildcard is "*." at the start of the host`},
		{"bare wildcard", Options{AllowOrigins: []string{"https://x.y", "https://*."}}, `allow_origins[1]: "https://*." is not an origin (scheme://host[:port], https://*.domain, null or *)`},
		{"method", Options{AllowOrigins: []string{"*"}, AllowMethods: []string{"GET POST"}}, `allow_methods[0]: "GET POST" is not a method name`},
		{"header", Options{AllowOrigins: []string{"*"}, AllowHeaders: []string{"a:b"}}, `allow_headers[0]: "a:b" is not a header name`},
		{"expose", Options{AllowOrigins: []string{"*"}, ExposeHeaders: []string{""}}, `expose_headers[0]: "" is not a header name`},
		{"max age", Options{AllowOrigins: []string{"*"}, MaxAge: -time.Second}, "max_age: must not be negative, got -1s"},
		{"any with credentials", Options{AllowOrigins: []string{"https://a.b", "*"}, AllowCredentials: true},
			`allow_origins[1]: "*" with allow_credentials would let any page read credentialed answers; list the pages' origins`},
		{"null with credentials", Options{AllowOrigins: []string{"null"}, AllowCredentials: true},
			`allow_origins[0]: "null" with allow_credentials would let any page read credentialed answers; list the pages' origins`},
	}
	for _, tc := range tests {
		_, err := New(tc.o)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
}

// FuzzAllowsOrigin checks that the parser never panics, that an origin it
// accepts serializes back to what the matcher allows (an exact policy of its
// normalized form allows it), and that a wildcard never allows an origin
// whose host does not end with the wildcard's domain.
func FuzzAllowsOrigin(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "http://localhost:3000", "https://a.example.org", "null",
		"http://[::1]:8080", "https://example.org.evil.com", "HTTPS://A.Example.ORG:443", "https://a..example.org"} {
		f.Add(s)
	}
	wild := mustNew(f, Options{AllowOrigins: []string{"https://*.example.org"}})
	f.Fuzz(func(t *testing.T, s string) {
		scheme, host, port, ok := Parse([]byte(s), nil)
		if !ok {
			if wild.AllowsOrigin([]byte(s)) {
				t.Fatalf("wildcard allows %q, which does not parse", s)
			}
			return
		}
		norm := string(scheme) + "://" + string(host) + portPart(port)
		p, err := New(Options{AllowOrigins: []string{norm}})
		if err != nil {
			return // a valid origin is not always a valid pattern (a host with '*' is neither)
		}
		if !p.AllowsOrigin([]byte(s)) {
			t.Fatalf("exact policy %q does not allow %q", norm, s)
		}
		if wild.AllowsOrigin([]byte(s)) {
			h := string(host)
			if string(scheme) != "https" || len(port) != 0 || len(h) <= len(".example.org") || h[len(h)-len(".example.org"):] != ".example.org" {
				t.Fatalf("wildcard allows %q (host %q)", s, h)
			}
		}
	})
}

func BenchmarkAllowsOrigin(b *testing.B) {
	p := mustNew(b, Options{AllowOrigins: []string{"https://app.example.com", "http://localhost:3000", "https://*.example.org"}})
	o := []byte("https://a.example.org")
	b.ReportAllocs()
	for b.Loop() {
		if !p.AllowsOrigin(o) {
			b.Fatal("refused")
		}
	}
}
