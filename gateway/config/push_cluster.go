package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// PushRedis says where the push cluster registry lives: one Redis server, a
// Redis Cluster, or a master watched by Sentinels. In YAML it is either a
// plain "host:port" (one server, the form of earlier configs) or a mapping of
// the keys below.
type PushRedis struct {
	// Addrs: one server's host:port; several seed nodes of a Redis Cluster;
	// or the Sentinels when MasterName is set.
	Addrs []string `yaml:"addrs"`
	// MasterName is the master's name at the Sentinels; set, Addrs are Sentinels.
	MasterName string `yaml:"master_name"`
	// Cluster makes one address a Redis Cluster (a configuration endpoint);
	// two or more addresses without MasterName are a Redis Cluster anyway.
	Cluster bool `yaml:"cluster"`
	// Username and Password are Redis ACL credentials. Empty password: taken
	// from $GOZER_PUSH_REDIS_PASSWORD (RedisPasswordEnv).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DB is the database number (one server or Sentinel; a Redis Cluster has only 0).
	DB int `yaml:"db"`
	// TLS speaks TLS to Redis, verified against the system's CAs or CAFile.
	TLS    bool   `yaml:"tls"`
	CAFile string `yaml:"ca_file"`
}

// RedisPasswordEnv holds the Redis password when push.cluster.redis.password is empty.
const RedisPasswordEnv = "GOZER_PUSH_REDIS_PASSWORD"

// ClusterSecretEnv holds the cluster secret when push.cluster.secret is empty.
const ClusterSecretEnv = "GOZER_PUSH_CLUSTER_SECRET"

// APITokenEnv holds one more push API bearer token, besides push.api.tokens.
const APITokenEnv = "GOZER_PUSH_API_TOKEN"

// minSecret is the shortest secret or token accepted, in bytes.
const minSecret = 16

// UnmarshalYAML takes "host:port" or the mapping, whose keys are checked as
// strictly as the rest of the file (node.Decode would not).
func (r *PushRedis) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var addr string
		if err := n.Decode(&addr); err != nil {
			return err
		}
		*r = PushRedis{Addrs: []string{addr}}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want host:port or a mapping (addrs, master_name, ...)", n.Line)
	}
	known := []string{"addrs", "master_name", "cluster", "username", "password", "db", "tls", "ca_file"}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !slices.Contains(known, k) {
			return fmt.Errorf("line %d: field %s not found in type config.PushRedis", n.Content[i].Line, k)
		}
	}
	type plain PushRedis // no UnmarshalYAML: no recursion
	p := plain(*r)       // keys not given keep their defaults
	if err := n.Decode(&p); err != nil {
		return err
	}
	*r = PushRedis(p)
	return nil
}

// RedisPassword is the Redis password: the config's, else $GOZER_PUSH_REDIS_PASSWORD.
func (r *PushRedis) RedisPassword() string {
	if r.Password != "" {
		return r.Password
	}
	return os.Getenv(RedisPasswordEnv)
}

// Mode names the kind of Redis deployment: "single", "cluster" or "sentinel".
func (r *PushRedis) Mode() string {
	switch {
	case r.MasterName != "":
		return "sentinel"
	case r.Cluster || len(r.Addrs) > 1:
		return "cluster"
	default:
		return "single"
	}
}

// PushAPI guards the push API on the admin listener (POST /push/..., GET
// /push/{id}). With tokens, a call must carry "Authorization: Bearer <one of
// them>" (else 401); with allow, the caller's address must be in one of the
// networks (else 403); with both, both. With neither, only loopback callers
// are let in. Forwards from the other nodes of the cluster are
// authenticated by their signature (push.cluster.secret) instead.
type PushAPI struct {
	Tokens []string `yaml:"tokens"`
	Allow  []string `yaml:"allow"`
}

// APITokens are push.api.tokens plus $GOZER_PUSH_API_TOKEN when set.
func (p *Push) APITokens() []string {
	toks := slices.Clone(p.API.Tokens)
	if t := os.Getenv(APITokenEnv); t != "" {
		toks = append(toks, t)
	}
	return toks
}

// APIAllow parses push.api.allow (validated: it cannot fail after Load); a
// bare address is a /32 or /128.
func (p *Push) APIAllow() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range p.API.Allow {
		if pfx, err := parsePrefix(s); err == nil {
			out = append(out, pfx)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

// ClusterSecret is the key that signs forwards between nodes: the config's,
// else $GOZER_PUSH_CLUSTER_SECRET.
func (c *PushCluster) ClusterSecret() []byte {
	if c.Secret != "" {
		return []byte(c.Secret)
	}
	return []byte(os.Getenv(ClusterSecretEnv))
}

func (c *Config) validatePushAPI(bad reporter) {
	for i, t := range c.Push.APITokens() {
		if len(t) < minSecret {
			key := fmt.Sprintf("push.api.tokens[%d]", i)
			if i >= len(c.Push.API.Tokens) {
				key = "$" + APITokenEnv
			}
			bad(key, "must be at least %d bytes, got %d bytes", minSecret, len(t)) // never the token itself
		}
	}
	for i, s := range c.Push.API.Allow {
		if _, err := parsePrefix(s); err != nil {
			bad(fmt.Sprintf("push.api.allow[%d]", i), "%q is not an address or CIDR network", s)
		}
	}
}

func (c *Config) validatePushCluster(bad reporter) {
	cl := &c.Push.Cluster
	r := &cl.Redis
	if len(r.Addrs) == 0 {
		bad("push.cluster.redis.addrs", "needs at least one host:port")
	}
	for i, a := range r.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad(fmt.Sprintf("push.cluster.redis.addrs[%d]", i), "%q is not host:port", a)
		}
	}
	if r.DB < 0 || (r.DB != 0 && r.Mode() == "cluster") {
		bad("push.cluster.redis.db", "must be 0 or more, and 0 with a Redis Cluster, got %d", r.DB)
	}
	if r.CAFile != "" && !r.TLS {
		bad("push.cluster.redis.ca_file", "needs push.cluster.redis.tls: true")
	}
	if s := cl.ClusterSecret(); len(s) < minSecret {
		bad("push.cluster.secret", "must be at least %d bytes (or empty and $%s set): nodes sign their forwards with it; got %d bytes",
			minSecret, ClusterSecretEnv, len(s))
	}
}
