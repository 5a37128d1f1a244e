package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if c.Listeners.Proxy.Addr != ":8080" || c.Listeners.Admin.Addr != ":8081" {
		t.Errorf("default listeners %+v", c.Listeners)
	}
	if o := c.Origins["demo"]; o == nil || o.Servers[0] != "127.0.0.1:9000" || o.ConnectTimeout != time.Second {
		t.Errorf("default demo origin %+v", o)
	}
	if c.Server.MaxHeaderBytes != 32<<10 || c.Server.MaxRequestLine != 8<<10 {
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
		{"negative retries", "origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\n    retries: -1\n", "origins.api.retries"},
		{"bad listener", base + "listeners:\n  proxy: {addr: \"8080\"}\n", "listeners.proxy.addr"},
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
