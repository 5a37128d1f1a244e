package config

import (
	"net"
	"os"
	"strings"
	"time"
)

// Push configures persistent push connections (websocket and SSE), the push API on
// the admin listener and the cluster registry. See gateway/push/DESIGN.md.
type Push struct {
	// WSPath and SSEPath are the proxy-listener paths that open push connections.
	WSPath  string `yaml:"ws_path"`
	SSEPath string `yaml:"sse_path"`
	// MaxMessage bounds one message either way: from a device (over it: close 1009)
	// and through the push API (over it: 413).
	MaxMessage Size `yaml:"max_message"`
	// MaxOutboundBytes bounds what one connection may have queued towards a device
	// that does not read; over it the connection is closed (1008) and counted.
	MaxOutboundBytes Size `yaml:"max_outbound_bytes"`
	// PingInterval is how often the server pings (SSE: a comment line); a connection
	// that misses two pongs in a row is closed.
	PingInterval time.Duration `yaml:"ping_interval"`
	// MaxLifetime is the longest a connection lives before a go-away; each
	// connection's lifetime is shortened by a random part of up to LifetimeDither
	// (a fraction, 0.1 = 10 %) so that reconnects spread out.
	MaxLifetime    time.Duration `yaml:"max_lifetime"`
	LifetimeDither float64       `yaml:"lifetime_dither"`
	// MaxPerClient is how many connections (devices) one client id may hold.
	MaxPerClient int `yaml:"max_per_client"`
	// Rate and Burst limit push-API messages per client id (messages per second).
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
	// TokenSecret signs push tokens (push_verify in Lua, gozer push-token).
	// Empty: taken from the environment variable GOZER_PUSH_SECRET.
	TokenSecret string `yaml:"token_secret"`
	// UpstreamOrigin names the origin that receives the text messages devices send,
	// as POST UpstreamPath with X-Push-Client-Id; empty: they are dropped and counted.
	UpstreamOrigin string `yaml:"upstream_origin"`
	UpstreamPath   string `yaml:"upstream_path"`
	// History keeps the recent messages of every client id, so that a device that
	// reconnects with its last message id recovers what it missed.
	History PushHistory `yaml:"history"`

	Cluster PushCluster `yaml:"cluster"`
	// API guards the push API on the admin listener (config/push_cluster.go).
	API PushAPI `yaml:"api"`

	// Topics bounds the topics devices subscribe to (POST /push/topic/{name}).
	Topics PushTopics `yaml:"topics"`

	// CORS names the CORS policy (cors.NAME) of the push paths: the origins a
	// browser page may open a push connection from (others: 403), and the
	// SSE answer's CORS headers. "": same-origin pages and clients that send
	// no Origin (devices, apps) only.
	CORS string `yaml:"cors"`
}

// PushCluster switches on the Redis-backed cluster registry.
type PushCluster struct {
	Enabled bool `yaml:"enabled"`
	// Redis is where the registry lives: one server, a Redis Cluster or Sentinels.
	Redis PushRedis `yaml:"redis"`
	// Secret signs the requests nodes forward to each other (HMAC-SHA256); at
	// least 16 bytes. Empty: taken from $GOZER_PUSH_CLUSTER_SECRET.
	Secret string `yaml:"secret"`
	// TTL is how long a registry entry outlives its node's last refresh.
	TTL time.Duration `yaml:"ttl"`
	// NodeAddr is this node's push-API address (host:port of the admin listener) as
	// the other nodes reach it. Empty: the admin listener's address, which must then
	// name a host other nodes can dial.
	NodeAddr string `yaml:"node_addr"`
}

// PushTopics configures topics: named channels devices subscribe to at
// connect (token claims, ctx.push_accept) or, when ClientSubscribe is on, with
// a websocket control message.
type PushTopics struct {
	// MaxPerConn is how many topics one connection may subscribe to; a
	// connection that asks for more at connect gets 400, a control message
	// over it an error answer.
	MaxPerConn int `yaml:"max_per_conn"`
	// MaxPerNode bounds the distinct topics with a subscriber on this node
	// (memory); a subscription to a new topic over it is refused (503 at
	// connect, an error answer to a control message).
	MaxPerNode int `yaml:"max_per_node"`
	// ClientSubscribe lets websocket devices subscribe and unsubscribe at run
	// time with {"subscribe":"name"} / {"unsubscribe":"name"} text messages.
	// Off: such messages go upstream like any other.
	ClientSubscribe bool `yaml:"client_subscribe"`
	// ClientPrefixes limits what a control message may subscribe to: topics
	// starting with one of them. Empty: any topic, so any device may read any
	// topic it can name.
	ClientPrefixes []string `yaml:"client_prefixes"`
}

// topicAlphabet is the characters of topic names (push.ValidTopic).
const topicAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:@+="

// PushHistory bounds the history kept per client id (gateway/push/DESIGN.md,
// "History"). Every key is restart-only: the hub is built once.
type PushHistory struct {
	// MaxMessages is how many messages are kept per client id; 0: no history (no
	// message ids on websocket, SSE ids count per connection, no 202 stored).
	MaxMessages int `yaml:"max_messages"`
	// MaxBytes bounds the messages kept per client id (their payloads).
	MaxBytes Size `yaml:"max_bytes"`
	// MaxAge is how long a message is kept, and how long a client id counts as
	// recently seen after its last device left: within it a push is stored (202).
	MaxAge time.Duration `yaml:"max_age"`
	// MaxTotalBytes bounds the history of all client ids on this node together.
	MaxTotalBytes Size `yaml:"max_total_bytes"`
}

// SecretEnv is the environment variable that holds the push token secret when the
// config does not.
const SecretEnv = "GOZER_PUSH_SECRET"

func pushDefaults() Push {
	return Push{
		WSPath: "/push/ws", SSEPath: "/push/sse",
		MaxMessage: 64 << 10, MaxOutboundBytes: 256 << 10,
		PingInterval: 30 * time.Second, MaxLifetime: 30 * time.Minute, LifetimeDither: 0.1,
		MaxPerClient: 16, Rate: 100, Burst: 200,
		UpstreamPath: "/push/upstream",
		History:      PushHistory{MaxMessages: 100, MaxBytes: 256 << 10, MaxAge: 2 * time.Minute, MaxTotalBytes: 256 << 20},
		Cluster:      PushCluster{Redis: PushRedis{Addrs: []string{"127.0.0.1:6379"}}, TTL: 30 * time.Second},
		Topics:       PushTopics{MaxPerConn: 32, MaxPerNode: 100000},
	}
}

// Secret returns the push token secret: the config's, else $GOZER_PUSH_SECRET.
// Empty means push tokens cannot be checked (push_verify refuses every token).
func (p *Push) Secret() []byte {
	if p.TokenSecret != "" {
		return []byte(p.TokenSecret)
	}
	return []byte(os.Getenv(SecretEnv))
}

// ClusterNode is this node's push-API address for the cluster registry.
func (c *Config) ClusterNode() string {
	if c.Push.Cluster.NodeAddr != "" {
		return c.Push.Cluster.NodeAddr
	}
	return c.Listeners.Admin.Addr
}

func (c *Config) validatePush(bad reporter) {
	p := &c.Push
	for key, v := range map[string]string{"push.ws_path": p.WSPath, "push.sse_path": p.SSEPath, "push.upstream_path": p.UpstreamPath} {
		if !strings.HasPrefix(v, "/") {
			bad(key, "must start with /, got %q", v)
		}
	}
	if p.WSPath == p.SSEPath {
		bad("push.sse_path", "must differ from push.ws_path, both are %q", p.SSEPath)
	}
	if p.MaxMessage < 125 || p.MaxMessage > 64<<20 {
		bad("push.max_message", "must be between 125B and 64MiB, got %d", p.MaxMessage)
	}
	if p.MaxOutboundBytes < p.MaxMessage {
		bad("push.max_outbound_bytes", "must be at least push.max_message (%d), got %d", p.MaxMessage, p.MaxOutboundBytes)
	}
	if p.PingInterval < time.Second {
		bad("push.ping_interval", "must be at least 1s, got %v", p.PingInterval)
	}
	if p.MaxLifetime < time.Second {
		bad("push.max_lifetime", "must be at least 1s, got %v", p.MaxLifetime)
	}
	if p.LifetimeDither < 0 || p.LifetimeDither >= 1 {
		bad("push.lifetime_dither", "must be a fraction in [0, 1), got %v", p.LifetimeDither)
	}
	if p.MaxPerClient <= 0 {
		bad("push.max_per_client", "must be positive, got %d", p.MaxPerClient)
	}
	if p.Rate <= 0 {
		bad("push.rate", "must be positive, got %v", p.Rate)
	}
	if p.Burst <= 0 {
		bad("push.burst", "must be positive, got %d", p.Burst)
	}
	if p.UpstreamOrigin != "" {
		if _, ok := c.Origins[p.UpstreamOrigin]; !ok {
			bad("push.upstream_origin", "names unknown origin %q", p.UpstreamOrigin)
		}
	}
	if p.TokenSecret != "" && len(p.TokenSecret) < 16 {
		// The value itself is a secret: only its length is named.
		bad("push.token_secret", "must be at least 16 bytes (or empty: $%s is used), got %d bytes", SecretEnv, len(p.TokenSecret))
	}
	p.History.validate(bad)
	c.validatePushAPI(bad)
	if n := p.Topics.MaxPerConn; n < 1 || n > 1024 {
		bad("push.topics.max_per_conn", "must be between 1 and 1024, got %d", n)
	}
	if n := p.Topics.MaxPerNode; n < 1 {
		bad("push.topics.max_per_node", "must be positive, got %d", n)
	}
	for _, pre := range p.Topics.ClientPrefixes {
		// A prefix is the start of a topic name: the same alphabet, never empty.
		if pre == "" || strings.Trim(pre, topicAlphabet) != "" || len(pre) > 128 {
			bad("push.topics.client_prefixes", "%q is not the start of a topic name (1-128 of A-Z a-z 0-9 -._~:@+=)", pre)
		}
	}
	if cl := p.Cluster; cl.Enabled {
		c.validatePushCluster(bad)
		if cl.TTL < time.Second {
			bad("push.cluster.ttl", "must be at least 1s, got %v", cl.TTL)
		}
		if host, _, err := net.SplitHostPort(c.ClusterNode()); err != nil {
			bad("push.cluster.node_addr", "%q is not host:port", c.ClusterNode())
		} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			bad("push.cluster.node_addr", "must name an address other nodes can dial (admin listener is %q)", c.Listeners.Admin.Addr)
		}
	}
}

func (h *PushHistory) validate(bad reporter) {
	if h.MaxMessages < 0 || h.MaxMessages > 100000 {
		bad("push.history.max_messages", "must be between 0 (no history) and 100000, got %d", h.MaxMessages)
	}
	if h.MaxMessages == 0 {
		return
	}
	if h.MaxBytes < 1<<10 {
		bad("push.history.max_bytes", "must be at least 1KiB, got %d", h.MaxBytes)
	}
	if h.MaxAge < time.Second || h.MaxAge > 24*time.Hour {
		bad("push.history.max_age", "must be between 1s and 24h, got %v", h.MaxAge)
	}
	if h.MaxTotalBytes < h.MaxBytes {
		bad("push.history.max_total_bytes", "must be at least push.history.max_bytes (%d), got %d", h.MaxBytes, h.MaxTotalBytes)
	}
}
