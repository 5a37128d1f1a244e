package config

import (
	"strings"
	"testing"
	"time"
)

func TestLimitsValidation(t *testing.T) {
	base := "origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\nroutes:\n  - {path_prefix: /, origin: api}\n"
	cases := []struct {
		name, yaml, want string // want "": valid
	}{
		{"rules", "limits:\n  rules:\n    - {name: a, key: ip/24, rate: 10, per: 1s, burst: 5, origins: [api], path_prefix: /x}\n    - {name: b, key: \"header:X-Api-Key\", rate: 1, per: 1m, cluster: true}\n", ""},
		{"bad key", "limits:\n  rules:\n    - {name: a, key: cookie, rate: 10, per: 1s}\n", "limits.rules[0].key"},
		{"bad prefix", "limits:\n  rules:\n    - {name: a, key: ip/40, rate: 10, per: 1s}\n", "limits.rules[0].key"},
		{"no rate", "limits:\n  rules:\n    - {name: a, key: ip, per: 1s}\n", "limits.rules[0].rate"},
		{"no per", "limits:\n  rules:\n    - {name: a, key: ip, rate: 1}\n", "limits.rules[0].per"},
		{"twice", "limits:\n  rules:\n    - {name: a, key: ip, rate: 1, per: 1s}\n    - {name: a, key: ip, rate: 1, per: 1s}\n", "limits.rules[1].name"},
		{"lua name", "limits:\n  rules:\n    - {name: lua, key: ip, rate: 1, per: 1s}\n", "limits.rules[0].name"},
		{"unknown origin", "limits:\n  rules:\n    - {name: a, key: ip, rate: 1, per: 1s, origins: [nope]}\n", "limits.rules[0].origins"},
		{"few keys", "limits:\n  max_keys: 10\n", "limits.max_keys"},
		{"window", "limits:\n  sync_interval: 1s\n  window: 1s\n", "limits.window"},
		{"deny", "protect:\n  deny: [\"10.0.0.0/8\", \"2001:db8::1\"]\n  new_connections_per_ip: 20\n  max_requests_per_connection: 100\n", ""},
		{"bad deny", "protect:\n  deny: [\"10.0.0.0/33\"]\n", "protect.deny"},
		{"requests per connection", "protect:\n  max_requests_per_connection: 40000\n", "protect.max_requests_per_connection"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(base+tc.yaml), "test")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one naming %s (config %+v)", err, tc.want, c)
			}
		})
	}
}

func TestLimitsDefaultsAndCompile(t *testing.T) {
	c, err := Parse([]byte("origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\nlimits:\n  rules:\n    - {name: a, key: ip/24, rate: 10, per: 1s, burst: 5}\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Limits; l.MaxKeys != 100000 || l.SyncInterval != 100*time.Millisecond || l.Window != time.Second || l.Redis != "" {
		t.Errorf("defaults %+v", l)
	}
	if got := c.Protect.DenyPrefixes(); len(got) != 0 {
		t.Errorf("deny %v; want none by default", got)
	}
}
