// Package config loads and validates Gozer's YAML configuration.
//
// A Config is built once (at start or on reload) and then only read: it is safe to
// share between goroutines as long as nobody writes to it after Load returns.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"gozer/conf"
)

// Config is the whole configuration file.
type Config struct {
	Listeners Listeners          `yaml:"listeners"`
	Server    Server             `yaml:"server"`
	Log       Log                `yaml:"log"`
	Filters   Filters            `yaml:"filters"`
	Origins   map[string]*Origin `yaml:"origins"`
	Routes    []Route            `yaml:"routes"`
	Push      Push               `yaml:"push"`
	Tracing   Tracing            `yaml:"tracing"`
	// CORS are the named CORS policies (cors.go) routes and push use.
	CORS map[string]*CORSPolicy `yaml:"cors"`
	// FaultInjection rehearses failures (chaos.go); empty: none.
	FaultInjection []FaultRule `yaml:"fault_injection"`
	// Limits are the request rate limits (limits.go); Protect the connection
	// protection.
	Limits  Limits  `yaml:"limits"`
	Protect Protect `yaml:"protect"`
	// HTTP2 is HTTP/2 downstream (http2.go).
	HTTP2 HTTP2 `yaml:"http2"`
}

// Listeners names the ports Gozer accepts on.
type Listeners struct {
	Proxy ProxyListener `yaml:"proxy"`
	HTTPS HTTPSListener `yaml:"https"`
	Admin AdminListener `yaml:"admin"`
}

// ProxyListener is the public listener.
type ProxyListener struct {
	Addr           string `yaml:"addr"`
	TrustForwarded bool   `yaml:"trust_forwarded"`
	// ProxyProtocol: every connection starts with a PROXY protocol header (v1 or
	// v2) from a TCP load balancer in front, which names the real client.
	ProxyProtocol bool `yaml:"proxy_protocol"`
	// RedirectHTTPS answers every request on this listener with a 308 to the
	// same URL on the HTTPS listener, except the paths in RedirectExcept.
	RedirectHTTPS  bool     `yaml:"redirect_https"`
	RedirectExcept []string `yaml:"redirect_except"`
	// H2C: a connection that starts with the HTTP/2 preface speaks HTTP/2
	// (prior knowledge, RFC 9113 3.3); others HTTP/1.1 as always.
	H2C bool `yaml:"h2c"`
}

// AdminListener is the internal listener (health check, admin API, push API).
// It has no authentication of its own: it listens on loopback unless the
// operator names another address, and mutual TLS (TLS.ClientAuth "require")
// is how to let only the holders of a certificate in.
type AdminListener struct {
	Addr string `yaml:"addr"`
	// Pprof serves /debug/pprof/ (profiles, goroutine dumps, the command line)
	// when true.
	Pprof bool `yaml:"pprof"`
	// Metrics serves GET /metrics (Prometheus) and records the per-request
	// metrics behind it; false turns both off (on by default).
	Metrics bool `yaml:"metrics"`
	// TLS is HTTPS on this listener instead of plain HTTP (off by default).
	TLS AdminTLS `yaml:"tls"`
}

// OnEveryInterface reports whether the admin listener's address takes every
// interface (":8081", "0.0.0.0:8081", "[::]:8081").
func (a AdminListener) OnEveryInterface() bool {
	host, _, err := net.SplitHostPort(a.Addr)
	return err == nil && anyInterface(host)
}

// Authenticated reports whether only clients with a verified certificate
// reach the admin listener (TLS with client_auth "require").
func (a AdminListener) Authenticated() bool {
	return a.TLS.Enabled && a.TLS.ClientAuth == "require"
}

// Scheme is how the admin listener is reached: "https" with TLS, else "http".
func (a AdminListener) Scheme() string {
	if a.TLS.Enabled {
		return "https"
	}
	return "http"
}

// DefaultAdminAddr is where the admin listener listens when the config does
// not say: loopback only, because the push API and the admin endpoints have
// no authentication of their own.
const DefaultAdminAddr = "127.0.0.1:8081"

// Server holds the limits and timeouts of client connections.
type Server struct {
	EventLoops int `yaml:"event_loops"`
	// AcceptOnLoops makes every event loop accept client connections on
	// listening sockets of its own (SO_REUSEPORT) instead of one acceptor
	// goroutine handing each connection over (gateway/server, accept.go).
	AcceptOnLoops     bool          `yaml:"accept_on_loops"`
	MaxConnections    int           `yaml:"max_connections"`
	HeaderReadTimeout time.Duration `yaml:"header_read_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	DrainTimeout      time.Duration `yaml:"drain_timeout"`
	MaxRequestLine    Size          `yaml:"max_request_line"`
	MaxHeaderBytes    Size          `yaml:"max_header_bytes"`
	// MaxHeaders is the most header fields a request may have (an HTTP/1.1
	// head's lines, an HTTP/2 header list's fields): more → 431.
	MaxHeaders         int    `yaml:"max_headers"`
	MaxRequestBody     Size   `yaml:"max_request_body"`
	MaxBufferedPerConn Size   `yaml:"max_buffered_per_conn"`
	Via                string `yaml:"via"`
	// ForwardEarlyHints passes an origin's interim answers (103 Early Hints,
	// any 1xx but 100 and 101) on to HTTP/1.1 and HTTP/2 clients, as RFC
	// 9110 15.2 has a proxy do; off, they are dropped as before.
	ForwardEarlyHints bool `yaml:"forward_early_hints"`
	// HeadersWithUnderscores is what becomes of a client's header whose name
	// has an "_" (X_User, Content_Length), which origins behind CGI, WSGI,
	// Rack or PHP read as the name with "-": "drop" it (the default, as
	// nginx's underscores_in_headers off), "reject" the request (400, as
	// Envoy's edge advice), or "allow" it.
	HeadersWithUnderscores string `yaml:"headers_with_underscores"`
	// NormalizePath decodes percent-encoded unreserved characters in a
	// request's path ("/%61pi" is "/api", RFC 3986 6.2.2.2) and MergeSlashes
	// merges runs of "/" ("//api//v1" is "/api/v1", as nginx's merge_slashes),
	// before routes and filters see the path; the origin gets the same path
	// (httpcodec.Request.NormalizePath). Both on by default: otherwise
	// "//admin/" passes a filter that denies "/admin/" and reaches an origin
	// that merges slashes.
	NormalizePath bool `yaml:"normalize_path"`
	MergeSlashes  bool `yaml:"merge_slashes"`
	// MemoryReclaimInterval is how often Gozer checks whether connections
	// that closed left memory the Go runtime holds on to, and gives it back to
	// the OS (0: never; the runtime's own pacing then decides).
	MemoryReclaimInterval time.Duration `yaml:"memory_reclaim_interval"`

	// Slow clients and fairness (edge.go).
	MaxConnectionsPerIP int           `yaml:"max_connections_per_ip"`
	MaxRequestsPerIP    int           `yaml:"max_requests_per_ip"`
	MinBodyRate         Size          `yaml:"min_body_rate"`
	MinSendRate         Size          `yaml:"min_send_rate"`
	RateWindow          time.Duration `yaml:"rate_window"`
	MaxBufferedTotal    Size          `yaml:"max_buffered_total"`
	// SocketSendBuffer is SO_SNDBUF of client sockets (0: the kernel's
	// autotuning); a small one bounds what a slow reader holds in the kernel.
	SocketSendBuffer Size          `yaml:"socket_send_buffer"`
	StatusHeaders    StatusHeaders `yaml:"status_headers"`
}

// Log configures the process log and the access log.
type Log struct {
	Level     string `yaml:"level"`
	AccessLog string `yaml:"access_log"`
}

// Filters configures the Lua filter runtime.
type Filters struct {
	Dir          string        `yaml:"dir"`
	Budget       time.Duration `yaml:"budget"`
	Disabled     []string      `yaml:"disabled"`
	MaxBodyBytes Size          `yaml:"max_body_bytes"`
	// MaxSuspended caps, per event loop, the requests waiting on async
	// filters; one more is answered 503 FAILURE_LOCAL_TOO_MANY_SUSPENDED.
	MaxSuspended int `yaml:"max_suspended"`
	// CallTimeout bounds a side call whose filter and origin give none.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// SharedDicts are the node's shared dictionaries (ctx.shared(name)), by
	// name, each with its memory bound.
	SharedDicts map[string]Size `yaml:"shared_dicts"`
}

// Origin is a named group of servers.
type Origin struct {
	Servers        []string      `yaml:"servers"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	ReadTimeout    time.Duration `yaml:"read_timeout"`
	// Retries is how many more attempts a request may make on other servers;
	// nil (left out) is DefaultRetries, so that 0 stays an operator's choice.
	Retries                 *int          `yaml:"retries"`
	MaxConnectionsPerServer int           `yaml:"max_connections_per_server"`
	MaxIdlePerServer        int           `yaml:"max_idle_per_server"`
	IdleTimeout             time.Duration `yaml:"idle_timeout"`
	// TotalTimeout bounds a request's time at the origin across all its attempts (0: none).
	TotalTimeout time.Duration `yaml:"total_timeout"`
	// MaxRequestsPerConnection retires an origin connection after this many requests (0: no limit).
	MaxRequestsPerConnection int `yaml:"max_requests_per_connection"`
	// MaxConnectionsPerServerTotal caps connections to one server from all loops (0: no cap).
	MaxConnectionsPerServerTotal int `yaml:"max_connections_per_server_total"`
	// ReplayBodyBytes is how much request body is kept so a retry can resend it.
	ReplayBodyBytes Size `yaml:"replay_body_bytes"`
	// RequestBuffer is how much request body is received before the request
	// takes an origin connection (all of a smaller body); 0: stream at once.
	RequestBuffer         *Size          `yaml:"request_buffer"`
	Compression           Compression    `yaml:"compression"`
	DNSRefresh            time.Duration  `yaml:"dns_refresh"`
	DNSServer             string         `yaml:"dns_server"`
	Balancer              string         `yaml:"balancer"`
	Weights               map[string]int `yaml:"weights"`
	MaxConcurrentRequests int            `yaml:"max_concurrent_requests"`
	Breaker               Breaker        `yaml:"breaker"`
	RetryBudget           RetryBudget    `yaml:"retry_budget"`
	Outlier               Outlier        `yaml:"outlier"`
	HealthCheck           *HealthCheck   `yaml:"health_check"`
	Fallback              string         `yaml:"fallback"`
	TLS                   OriginTLS      `yaml:"tls"`
	// CallTimeout bounds an async filter's side call to this origin when the
	// call gives no timeout (0: filters.call_timeout).
	CallTimeout time.Duration `yaml:"call_timeout"`
	// AdaptiveConcurrency is the optional limit that follows the origin's
	// latency (nil or not enabled: off).
	AdaptiveConcurrency *AdaptiveConcurrency `yaml:"adaptive_concurrency"`
	// WebSocket proxies websocket upgrades to the origin (websocket.go).
	WebSocket WebSocket `yaml:"websocket"`
}

// Breaker is an origin's circuit breaker.
type Breaker struct {
	Enabled       *bool         `yaml:"enabled"`
	ErrorPercent  int           `yaml:"error_percent"`
	RequestVolume int           `yaml:"request_volume"`
	SleepWindow   time.Duration `yaml:"sleep_window"`
}

// RetryBudget caps retries at a share of an origin's requests.
type RetryBudget struct {
	Ratio        *float64      `yaml:"ratio"`
	MinPerSecond int           `yaml:"min_per_second"`
	Window       time.Duration `yaml:"window"`
}

// Outlier ejects servers that keep failing.
type Outlier struct {
	ConsecutiveFailures int           `yaml:"consecutive_failures"`
	BaseEjection        time.Duration `yaml:"base_ejection"`
	MaxEjection         time.Duration `yaml:"max_ejection"`
	MaxEjectionPercent  int           `yaml:"max_ejection_percent"`
}

// HealthCheck is an origin's optional active health check.
type HealthCheck struct {
	Path      string        `yaml:"path"`
	Host      string        `yaml:"host"`
	Interval  time.Duration `yaml:"interval"`
	Timeout   time.Duration `yaml:"timeout"`
	Healthy   int           `yaml:"healthy"`
	Unhealthy int           `yaml:"unhealthy"`
}

// Route maps a host and a path prefix to an origin.
type Route struct {
	Host       string `yaml:"host"`
	PathPrefix string `yaml:"path_prefix"`
	Origin     string `yaml:"origin"`
	// CORS names the route's CORS policy (cors.NAME); "" none.
	CORS string `yaml:"cors"`
	// WebSocket is the route's say on websocket proxying: true tunnels the
	// upgrade requests it routes even when the origin's websocket.enabled is
	// off, false never tunnels them (the Upgrade header stops at Gozer), nil
	// (left out) leaves it to the origin. It applies when this route chose
	// the origin (not when a filter did); a filter's ctx.route{websocket =}
	// overrides it.
	WebSocket *bool `yaml:"websocket"`
}

// EmbeddedName is how errors and GET /admin/config name the embedded
// conf/gozer.yaml.
const EmbeddedName = "embedded conf/gozer.yaml"

// Default returns the embedded conf/gozer.yaml, parsed and validated.
func Default() (*Config, error) {
	return Parse(conf.Default, EmbeddedName)
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	data, name, err := Read(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, name)
}

// Read returns the bytes of the configuration at path ("" for the embedded
// conf/gozer.yaml) and the name errors give it: what start-up and every
// reload parse.
func Read(path string) (data []byte, name string, err error) {
	if path == "" {
		return conf.Default, EmbeddedName, nil
	}
	if data, err = os.ReadFile(path); err != nil {
		return nil, path, fmt.Errorf("read config: %w", err)
	}
	return data, path, nil
}

// Parse decodes YAML over the built-in defaults and validates the result.
// Unknown keys are errors: a typo must not silently fall back to a default.
func Parse(data []byte, name string) (*Config, error) {
	c := defaults()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, keyErrors(data, err))
	}
	for _, o := range c.Origins {
		if o != nil {
			o.fillDefaults()
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, withLines(data, err))
	}
	return c, nil
}

func defaults() *Config {
	return &Config{
		Listeners: Listeners{Proxy: ProxyListener{Addr: ":8080", RedirectExcept: []string{"/healthcheck"}}, HTTPS: httpsDefaults(), Admin: AdminListener{Addr: DefaultAdminAddr, Metrics: true, TLS: adminTLSDefaults()}},
		Server: Server{
			AcceptOnLoops:          true,
			ForwardEarlyHints:      true,
			MaxConnections:         100000,
			HeaderReadTimeout:      10 * time.Second,
			IdleTimeout:            60 * time.Second,
			DrainTimeout:           15 * time.Second,
			MaxRequestLine:         8 << 10,
			MaxHeaderBytes:         32 << 10,
			MaxHeaders:             100,
			MaxRequestBody:         1 << 30,
			MaxBufferedPerConn:     64 << 10,
			Via:                    "1.1 gozer",
			HeadersWithUnderscores: "drop",
			NormalizePath:          true,
			MergeSlashes:           true,
			MemoryReclaimInterval:  10 * time.Second,
			MaxConnectionsPerIP:    1024,
			MaxRequestsPerIP:       256,
			MinBodyRate:            1 << 10,
			MinSendRate:            1 << 10,
			RateWindow:             10 * time.Second,
			StatusHeaders:          statusHeaderDefaults(),
		},
		Log: Log{Level: "info", AccessLog: "stdout"},
		Filters: Filters{Dir: "scripts", Budget: 5 * time.Millisecond, MaxBodyBytes: 1 << 20,
			MaxSuspended: 4000, CallTimeout: time.Second},
		Push:    pushDefaults(),
		Tracing: tracingDefaults(),
		Limits:  limitsDefaults(),
		Protect: Protect{MaxDenied: 100000},
		HTTP2:   http2Defaults(),
	}
}

// DefaultRetries is an origin's retries when its config leaves the key out: a
// connect failure or a reset before any response byte goes to another server.
const DefaultRetries = 1

// RetryCount is the origin's retries, DefaultRetries when left out.
func (o *Origin) RetryCount() int {
	if o.Retries == nil {
		return DefaultRetries
	}
	return *o.Retries
}

func (o *Origin) fillDefaults() {
	if o.Retries == nil {
		n := DefaultRetries
		o.Retries = &n
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 15 * time.Second
	}
	if o.MaxConnectionsPerServer == 0 {
		o.MaxConnectionsPerServer = 1024
	}
	if o.MaxIdlePerServer == 0 {
		o.MaxIdlePerServer = min(64, o.MaxConnectionsPerServer) // a small max_connections_per_server needs no edit of this one
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.ReplayBodyBytes == 0 {
		o.ReplayBodyBytes = 64 << 10
	}
	if o.RequestBuffer == nil {
		n := DefaultRequestBuffer
		o.RequestBuffer = &n
	}
	o.Compression.fillDefaults()
	o.WebSocket.fillDefaults()
}
