package config

import (
	"strings"
	"testing"
)

func TestCORSConfig(t *testing.T) {
	base := "origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\n"
	good := base + "cors:\n  web:\n    allow_origins: [\"https://*.example.com\", \"http://localhost:3000\"]\n    allow_credentials: true\n    max_age: 10m\n" +
		"routes:\n  - {path_prefix: /, origin: api, cors: web}\npush:\n  cors: web\n"
	c, err := Parse([]byte(good), "good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Routes[0].CORS != "web" || c.Push.CORS != "web" || len(c.CORSPolicies()) != 1 {
		t.Fatalf("parsed %+v %+v", c.Routes, c.CORS)
	}
	cases := []struct{ name, yaml, want string }{
		{"bad origin", base + "cors:\n  web:\n    allow_origins: [\"https://a.b/path\"]\n",
			`good.yaml: cors.web (line 5): allow_origins[0]: "https://a.b/path" is not an origin`},
		{"no origins", base + "cors:\n  web:\n    allow_credentials: true\n", "cors.web (line 5): allow_origins: at least one origin is needed"},
		{"unknown route policy", base + "routes:\n  - {path_prefix: /, origin: api, cors: nope}\n", `routes[0].cors (line 5): names unknown CORS policy "nope"`},
		{"unknown push policy", base + "push:\n  cors: nope\n", `push.cors (line 5): names unknown CORS policy "nope"`},
		{"unknown key", base + "cors:\n  web:\n    allow_origin: [\"*\"]\n", `cors.web.allow_origin (line 6): unknown key "allow_origin"`},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.yaml), "good.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to contain %s", tc.name, err, tc.want)
		}
	}
}

// TestDefaultCORS: `make run`'s configuration lets a front end on port 3000
// (either loopback name) use the push paths and the demo route.
func TestDefaultCORS(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	p := c.CORSPolicies()[c.Push.CORS]
	if p == nil || c.Routes[0].CORS != c.Push.CORS {
		t.Fatalf("push.cors %q, routes[0].cors %q: want the same development policy", c.Push.CORS, c.Routes[0].CORS)
	}
	for _, o := range []string{"http://localhost:3000", "http://127.0.0.1:3000"} {
		if !p.AllowsOrigin([]byte(o)) {
			t.Errorf("the development policy refuses %s", o)
		}
	}
	if p.AllowsOrigin([]byte("http://localhost:3001")) || p.AllowsOrigin([]byte("https://evil.test")) {
		t.Error("the development policy allows more than port 3000")
	}
}

func TestCORSNeedsTheChain(t *testing.T) {
	y := "origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\nfilters:\n  dir: \"\"\ncors:\n  web: {allow_origins: [\"*\"]}\n" +
		"routes:\n  - {path_prefix: /, origin: api, cors: web}\n"
	_, err := Parse([]byte(y), "c.yaml")
	if err == nil || !strings.Contains(err.Error(), "routes[0].cors (line 9): needs filters.dir") {
		t.Fatalf("%v, want routes[0].cors needs filters.dir", err)
	}
}
