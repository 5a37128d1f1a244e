package config

import (
	"slices"
	"strings"
	"testing"
)

func TestPushClusterAndAPIConfig(t *testing.T) {
	t.Setenv(ClusterSecretEnv, "")
	t.Setenv(APITokenEnv, "")
	base := "origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\nroutes:\n  - {path_prefix: /, origin: api}\npush:\n"
	const secret = "    secret: 0123456789abcdef\n"
	cases := []struct {
		name, yaml, want string // want "": valid
		addrs            []string
		mode             string
	}{
		{"one server, the old form", "  cluster:\n    enabled: true\n    redis: 10.0.0.1:6379\n" + secret, "", []string{"10.0.0.1:6379"}, "single"},
		{"default address", "  cluster:\n    enabled: true\n" + secret, "", []string{"127.0.0.1:6379"}, "single"},
		{"a redis cluster", "  cluster:\n    enabled: true\n    redis: {addrs: [\"a:1\", \"b:2\", \"c:3\"], username: gozer}\n" + secret, "", []string{"a:1", "b:2", "c:3"}, "cluster"},
		{"one cluster endpoint", "  cluster:\n    enabled: true\n    redis: {addrs: [\"a:1\"], cluster: true}\n" + secret, "", []string{"a:1"}, "cluster"},
		{"sentinels", "  cluster:\n    enabled: true\n    redis: {addrs: [\"s1:26379\", \"s2:26379\"], master_name: mymaster, db: 2}\n" + secret, "", []string{"s1:26379", "s2:26379"}, "sentinel"},
		{"unknown redis key", "  cluster:\n    enabled: true\n    redis: {addr: \"a:1\"}\n" + secret, "push.cluster.redis", nil, ""},
		{"bad address", "  cluster:\n    enabled: true\n    redis: {addrs: [\"nope\"]}\n" + secret, "push.cluster.redis.addrs[0]", nil, ""},
		{"db in a redis cluster", "  cluster:\n    enabled: true\n    redis: {addrs: [\"a:1\", \"b:1\"], db: 1}\n" + secret, "push.cluster.redis.db", nil, ""},
		{"ca_file without tls", "  cluster:\n    enabled: true\n    redis: {addrs: [\"a:1\"], ca_file: /x}\n" + secret, "push.cluster.redis.ca_file", nil, ""},
		{"no secret", "  cluster:\n    enabled: true\n", "push.cluster.secret", nil, ""},
		{"short secret", "  cluster:\n    enabled: true\n    secret: short\n", "push.cluster.secret", nil, ""},
		{"api tokens and allow", "  api:\n    tokens: [\"0123456789abcdef0\"]\n    allow: [\"10.0.0.0/8\", \"::1\", \"192.168.1.7\"]\n", "", nil, ""},
		{"short token", "  api:\n    tokens: [\"short\"]\n", "push.api.tokens[0]", nil, ""},
		{"bad network", "  api:\n    allow: [\"10.0.0.0/33\"]\n", "push.api.allow[0]", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(base+tc.yaml), "test")
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v; want one naming %s", err, tc.want)
				}
				if strings.Contains(err.Error(), "0123456789abcdef") || strings.Contains(err.Error(), "short\"") {
					t.Errorf("error %v shows a secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if r := c.Push.Cluster.Redis; tc.addrs != nil && (!slices.Equal(r.Addrs, tc.addrs) || r.Mode() != tc.mode) {
				t.Errorf("redis %+v mode %s; want %v in mode %s", r, r.Mode(), tc.addrs, tc.mode)
			}
		})
	}
}

func TestPushSecretsFromEnv(t *testing.T) {
	t.Setenv(ClusterSecretEnv, "cluster-secret-from-env")
	t.Setenv(APITokenEnv, "api-token-from-the-env")
	c, err := Parse([]byte("origins:\n  api:\n    servers: [\"127.0.0.1:1\"]\npush:\n  api:\n    tokens: [\"api-token-from-the-file\"]\n    allow: [\"10.1.2.3\"]\n  cluster:\n    enabled: true\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if s := string(c.Push.Cluster.ClusterSecret()); s != "cluster-secret-from-env" {
		t.Errorf("cluster secret %q", s)
	}
	if toks := c.Push.APITokens(); !slices.Equal(toks, []string{"api-token-from-the-file", "api-token-from-the-env"}) {
		t.Errorf("tokens %q", toks)
	}
	if a := c.Push.APIAllow(); len(a) != 1 || a[0].String() != "10.1.2.3/32" {
		t.Errorf("allow %v", a)
	}
}
