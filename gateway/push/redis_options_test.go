package push

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gozer/gateway/config"
)

// TestRedisOptions: push.cluster.redis picks the kind of client, and a bad
// ca_file is an error naming the key.
func TestRedisOptions(t *testing.T) {
	t.Setenv(config.RedisPasswordEnv, "from-the-env")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		r      config.PushRedis
		client string // the go-redis client type NewRedisClusterWith makes
		err    string
	}{
		{"one server", config.PushRedis{Addrs: []string{"127.0.0.1:6379"}}, "*redis.Client", ""},
		{"a redis cluster", config.PushRedis{Addrs: []string{"a:1", "b:1", "c:1"}}, "*redis.ClusterClient", ""},
		{"one cluster endpoint", config.PushRedis{Addrs: []string{"a:1"}, Cluster: true}, "*redis.ClusterClient", ""},
		{"sentinels", config.PushRedis{Addrs: []string{"s:26379"}, MasterName: "mymaster", DB: 2}, "*redis.Client", ""},
		{"tls with the system CAs", config.PushRedis{Addrs: []string{"a:1"}, TLS: true}, "*redis.Client", ""},
		{"a missing ca_file", config.PushRedis{Addrs: []string{"a:1"}, TLS: true, CAFile: filepath.Join(dir, "nope.pem")}, "", "push.cluster.redis.ca_file"},
		{"a ca_file without a certificate", config.PushRedis{Addrs: []string{"a:1"}, TLS: true, CAFile: notPEM}, "", "no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opt, err := RedisOptions(&tc.r)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one naming %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opt.Password != "from-the-env" || opt.DB != tc.r.DB || opt.MasterName != tc.r.MasterName || (opt.TLSConfig != nil) != tc.r.TLS {
				t.Errorf("options %+v from %+v", opt, tc.r)
			}
			c, err := NewRedisClusterWith(opt, "n:1", time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := typeName(c.Client()); got != tc.client {
				t.Errorf("client %s, want %s", got, tc.client)
			}
		})
	}
}

func typeName(c redis.UniversalClient) string {
	switch c.(type) {
	case *redis.ClusterClient:
		return "*redis.ClusterClient"
	case *redis.Client:
		return "*redis.Client"
	default:
		return "other"
	}
}
