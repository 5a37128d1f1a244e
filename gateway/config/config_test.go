package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	// The admin listener (the unauthenticated push API) is loopback only unless
	// an operator opens it; profiles are off.
	if c.Listeners.Proxy.Addr != ":8080" || c.Listeners.Admin.Addr != "127.0.0.1:8081" || c.Listeners.Admin.Pprof {
		t.Errorf("default listeners %+v, want the admin listener on 127.0.0.1:8081 without pprof", c.Listeners)
	}
	if c.Listeners.Admin.OnEveryInterface() {
		t.Error("the embedded config's admin listener takes every interface")
	}
	if o := c.Origins["demo"]; o == nil || o.Servers[0] != "127.0.0.1:9000" || o.ConnectTimeout != time.Second {
		t.Errorf("default demo origin %+v", o)
	}
	if tr := c.Tracing; !tr.AcceptTraceparent || tr.SampleRatio != 0 || tr.PassportThreshold != 0 {
		t.Errorf("default tracing %+v, want traceparent accepted, nothing sampled, the passport off", tr)
	}
	if c.Server.MaxHeaderBytes != 32<<10 || c.Server.MaxRequestLine != 8<<10 || c.Server.MaxHeaders != 100 {
		t.Errorf("default limits %+v", c.Server)
	}
}

func TestBadConfigNamesTheKey(t *testing.T) {
	base := "origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\nroutes:\n  - {path_prefix: /, origin: api}\n"
	cases := []struct {
		name, yaml, want string
	}{
		{"bad server", "origins:\n  api:\n    servers: [\"nope\"]\n", "origins.api.servers[0]"},
		{"bad port", "origins:\n  api:\n    servers: [\"h:99999\"]\n", "origins.api.servers[0]"},
		{"unknown key", base + "server:\n  max_conns: 3\n", "server.max_conns"},
		{"unknown top key", base + "serverz: {}\n", "serverz"},
		{"bad duration", base + "server:\n  idle_timeout: soon\n", "server.idle_timeout"},
		{"bad size", base + "server:\n  max_header_bytes: lots\n", "server.max_header_bytes"},
		{"route to nowhere", base + "  - {path_prefix: /x, origin: ghost}\n", "routes[1].origin"},
		{"no origins", "routes: []\n", "origins"},
		{"bad level", base + "log: {level: loud}\n", "log.level"},
		{"no headers allowed", base + "server:\n  max_headers: 0\n", "server.max_headers"},
		{"too many headers allowed", base + "server:\n  max_headers: 10001\n", "server.max_headers"},
		{"bad underscore mode", base + "server:\n  headers_with_underscores: strip\n", "server.headers_with_underscores"},
		{"negative retries", "origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\n    retries: -1\n", "origins.api.retries"},
		{"bad listener", base + "listeners:\n  proxy: {addr: \"8080\"}\n", "listeners.proxy.addr"},
		{"ticket keys rotated under a second", base + "listeners:\n  https: {addr: \":8443\", ticket_key_rotation: 500ms}\n",
			"listeners.https.ticket_key_rotation"},
		{"negative handshake eviction age", base + "listeners:\n  https: {addr: \":8443\", evict_handshakes_after: -1s}\n",
			"listeners.https.evict_handshakes_after"},
		{"sample ratio over 1", base + "tracing: {sample_ratio: 1.5}\n", "tracing.sample_ratio"},
		{"negative sample ratio", base + "tracing: {sample_ratio: -0.1}\n", "tracing.sample_ratio"},
		{"negative passport threshold", base + "tracing: {passport_threshold: -1s}\n", "tracing.passport_threshold"},
		{"bad passport threshold", base + "tracing: {passport_threshold: slow}\n", "tracing.passport_threshold"},
		{"unknown tracing key", base + "tracing: {sampling: 1}\n", "tracing.sampling"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), "test.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name %q", err, c.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	cases := map[string]Size{"512": 512, "32KiB": 32 << 10, "1GiB": 1 << 30, "8k": 8 << 10, "2 MiB": 2 << 20, "0": 0}
	for in, want := range cases {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "lots", "1.5GiB", "99999999999GiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

// A config that says nothing about listeners, or origins' retries, gets the
// safe and documented defaults.
func TestDefaultsWhenLeftOut(t *testing.T) {
	c, err := Parse([]byte("origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\n  zero:\n    servers: [\"127.0.0.1:2\"]\n    retries: 0\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Listeners.Admin; a.Addr != DefaultAdminAddr || a.Pprof || a.OnEveryInterface() {
		t.Errorf("admin listener %+v, want %s without pprof", a, DefaultAdminAddr)
	}
	if n := c.Origins["api"].RetryCount(); n != 1 {
		t.Errorf("retries left out: %d, want 1 (a connect failure goes to another server)", n)
	}
	if n := c.Origins["zero"].RetryCount(); n != 0 {
		t.Errorf("retries: 0 written out: %d, want 0", n)
	}
	if ws := c.Origins["api"].WebSocket; ws.Enabled || ws.IdleTimeout != DefaultWebSocketIdle || ws.MaxLifetime != DefaultWebSocketLifetime {
		t.Errorf("websocket left out: %+v; want off, idle 5m, lifetime 24h", ws)
	}
}

func TestOnEveryInterface(t *testing.T) {
	for addr, want := range map[string]bool{
		":8081": true, "0.0.0.0:8081": true, "[::]:8081": true,
		"127.0.0.1:8081": false, "[::1]:8081": false, "10.0.0.5:8081": false, "admin.internal:8081": false,
	} {
		if got := (AdminListener{Addr: addr}).OnEveryInterface(); got != want {
			t.Errorf("%q: OnEveryInterface = %v, want %v", addr, got, want)
		}
	}
}

// Listeners that would take the same port are refused by validation (and so
// by -check), naming the key and both values.
func TestListenerConflicts(t *testing.T) {
	origins := "origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\n"
	cases := []struct {
		proxy, admin string
		conflict     bool
	}{
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{":8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8080", "0.0.0.0:8080", true},
		{"[::]:9000", "127.0.0.1:9000", true},
		{":8080", "127.0.0.1:8081", false},
		{"127.0.0.1:8080", "127.0.0.2:8080", false},
		{"127.0.0.1:0", "127.0.0.1:0", false}, // each gets a free port of its own
	}
	for _, tc := range cases {
		y := fmt.Sprintf("listeners:\n  proxy: {addr: %q}\n  admin: {addr: %q}\n%s", tc.proxy, tc.admin, origins)
		_, err := Parse([]byte(y), "t.yaml")
		switch {
		case tc.conflict && err == nil:
			t.Errorf("proxy %s, admin %s: accepted", tc.proxy, tc.admin)
		case tc.conflict && !(strings.Contains(err.Error(), "listeners.admin.addr") && strings.Contains(err.Error(), tc.proxy)):
			t.Errorf("proxy %s, admin %s: %v, want it to name listeners.admin.addr and both addresses", tc.proxy, tc.admin, err)
		case !tc.conflict && err != nil:
			t.Errorf("proxy %s, admin %s: %v", tc.proxy, tc.admin, err)
		}
	}
}

// Every validation message names the key and the value it refuses.
func TestValidationNamesKeyAndValue(t *testing.T) {
	base := "origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\n"
	cases := []struct{ yaml, key, value string }{
		{base + "    connect_timeout: -1s\n", "origins.api.connect_timeout", "-1s"},
		{base + "    read_timeout: -2s\n", "origins.api.read_timeout", "-2s"},
		{base + "    idle_timeout: -3s\n", "origins.api.idle_timeout", "-3s"},
		{base + "    total_timeout: -4s\n", "origins.api.total_timeout", "-4s"},
		{base + "    max_requests_per_connection: -5\n", "origins.api.max_requests_per_connection", "-5"},
		{base + "    max_connections_per_server_total: -6\n", "origins.api.max_connections_per_server_total", "-6"},
		{base + "    retries: 11\n", "origins.api.retries", "11"},
		{base + "push:\n  rate: -1\n", "push.rate", "-1"},
		{base + "push:\n  burst: -2\n", "push.burst", "-2"},
		{base + "push:\n  topics: {max_per_conn: 0}\n", "push.topics.max_per_conn", "0"},
		{base + "push:\n  topics: {max_per_conn: 5000}\n", "push.topics.max_per_conn", "5000"},
		{base + "push:\n  topics: {max_per_node: -1}\n", "push.topics.max_per_node", "-1"},
		{base + "push:\n  topics: {client_prefixes: [\"ok:\", \"not ok\"]}\n", "push.topics.client_prefixes", `"not ok"`},
		{base + "push:\n  ws_path: /p\n  sse_path: /p\n", "push.sse_path", `"/p"`},
		{base + "push:\n  history: {max_messages: -1}\n", "push.history.max_messages", "-1"},
		{base + "push:\n  history: {max_age: 10ms}\n", "push.history.max_age", "10ms"},
		{base + "push:\n  token_secret: short\n", "push.token_secret", "5 bytes"},
		{base + "log:\n  access_log: \"\"\n", "log.access_log", `""`},
		{base + "server:\n  memory_reclaim_interval: -1s\n", "server.memory_reclaim_interval", "-1s"},
		{base + "    websocket: {enabled: true, max_tunnels: -1}\n", "origins.api.websocket.max_tunnels", "-1"},
		{base + "    websocket: {idle_timeout: -1s}\n", "origins.api.websocket.idle_timeout", "-1s"},
		{base + "    websocket: {max_lifetime: -2s}\n", "origins.api.websocket.max_lifetime", "-2s"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.yaml), "t.yaml")
		if err == nil {
			t.Errorf("%s: accepted", tc.key)
			continue
		}
		if !strings.Contains(err.Error(), tc.key+" (line ") || !strings.Contains(err.Error(), tc.value) {
			t.Errorf("%s: error %q does not name the key, its line and the value %s", tc.key, err, tc.value)
		}
	}
}

// TestAdminMetrics: listeners.admin.metrics is on unless switched off, in the
// embedded config and when left out.
func TestAdminMetrics(t *testing.T) {
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if !def.Listeners.Admin.Metrics {
		t.Error("the embedded conf/gozer.yaml has metrics off; want on")
	}
	for _, c := range []struct {
		yaml string
		want bool
	}{
		{"", true},
		{"listeners:\n  admin:\n    pprof: true\n", true},
		{"listeners:\n  admin:\n    metrics: false\n", false},
		{"listeners:\n  admin:\n    metrics: true\n", true},
	} {
		cfg, err := Parse([]byte(c.yaml+minimalOrigins), "t.yaml")
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		if got := cfg.Listeners.Admin.Metrics; got != c.want {
			t.Errorf("%q: metrics %v; want %v", c.yaml, got, c.want)
		}
	}
	if _, err := Parse([]byte("listeners:\n  admin:\n    metrics: maybe\n"+minimalOrigins), "t.yaml"); err == nil || !strings.Contains(err.Error(), "listeners.admin.metrics") {
		t.Errorf("metrics: maybe: %v; want an error naming listeners.admin.metrics", err)
	}
}

const minimalOrigins = "origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\n"
