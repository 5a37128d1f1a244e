package server

import (
	"slices"
	"testing"
	"time"

	"gozer/gateway/config"
)

func TestRestartOnly(t *testing.T) {
	base, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   []string
	}{
		{"nothing", func(*config.Config) {}, nil},
		{"an origin, a route and server limits are live", func(c *config.Config) {
			c.Routes = append(c.Routes, config.Route{PathPrefix: "/x", Origin: "demo"})
			c.Server.IdleTimeout = time.Minute + time.Second
			c.Server.MaxConnections++
			c.Filters.Budget = time.Second
		}, nil},
		{"the proxy listener's address", func(c *config.Config) { c.Listeners.Proxy.Addr = ":9999" }, []string{"listeners.proxy.addr"}},
		{"trust_forwarded is live", func(c *config.Config) { c.Listeners.Proxy.TrustForwarded = !c.Listeners.Proxy.TrustForwarded }, nil},
		{"event loops and the log level", func(c *config.Config) { c.Server.EventLoops = 7; c.Log.Level = "debug" },
			[]string{"log.level", "server.event_loops"}},
		{"push limits are live", func(c *config.Config) { c.Push.PingInterval = time.Hour; c.Push.MaxOutboundBytes = 1 }, nil},
		{"push paths are not", func(c *config.Config) { c.Push.WSPath = "/elsewhere" }, []string{"push.ws_path"}},
		{"push api auth is live", func(c *config.Config) {
			c.Push.API.Tokens = []string{"a-token-of-16-bytes"}
			c.Push.API.Allow = []string{"10.0.0.0/8"}
		}, nil},
		{"the push cluster's redis and secret are not", func(c *config.Config) {
			c.Push.Cluster.Redis.Addrs = []string{"a:1", "b:1"}
			c.Push.Cluster.Secret = "another-secret-0123"
		}, []string{"push.cluster"}},
		{"push topics are not", func(c *config.Config) { c.Push.Topics.ClientSubscribe = true }, []string{"push.topics"}},
		{"the admin listener's TLS", func(c *config.Config) { c.Listeners.Admin.TLS.Enabled = true }, []string{"listeners.admin.tls"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur, _ := config.Default()
			tc.change(cur)
			got := restartOnly(base, cur)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("restartOnly = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestChangedSections(t *testing.T) {
	a, _ := config.Default()
	b, _ := config.Default()
	b.Routes = nil
	b.Server.Via = "other"
	if got := changedSections(a, b); !slices.Equal(got, []string{"server", "routes"}) {
		t.Fatalf("changedSections = %v, want [server routes]", got)
	}
}
