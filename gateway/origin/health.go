package origin

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// HealthConfig is origins.NAME.health_check; an origin without one is not checked.
type HealthConfig struct {
	// Path is requested with GET on every server, e.g. "/healthz".
	Path string
	// Host is the Host header sent; "" sends the server's host:port.
	Host string
	// TLS: the checks go over https with this config (the origin's tls
	// settings); nil: plain http.
	TLS *tls.Config
	// Interval between two checks of a server. 0 means 5 s.
	Interval time.Duration
	// Timeout of one check (connect and response). 0 means 1 s.
	Timeout time.Duration
	// Healthy is the number of passed checks in a row that bring a down server
	// back. 0 means 2.
	Healthy int
	// Unhealthy is the number of failed checks in a row that take a server down.
	// 0 means 3.
	Unhealthy int
}

// Health check defaults (HAProxy: inter 2 s, rise 2, fall 3; Envoy's are per config).
const (
	DefaultHealthInterval  = 5 * time.Second
	DefaultHealthTimeout   = time.Second
	DefaultHealthyChecks   = 2
	DefaultUnhealthyChecks = 3
)

// hcCount is one server's run of results, written only by its own check.
type hcCount struct{ ok, fail int }

// HealthChecker checks every server of one origin with an HTTP GET at an interval,
// on its own goroutine with fasthttp's client, off the event loops. A check passes
// on a 2xx or 3xx answer within the timeout. It marks servers down and up with an
// atomic flag on the Server, which the Balancer reads like an ejection. A server
// starts up: a check must fail Unhealthy times before it is taken out.
//
// Start and Close may be called from any goroutine. CheckOnce must not run
// concurrently with itself (the check goroutine is its only caller after Start).
type HealthChecker struct {
	origin string
	cfg    HealthConfig
	src    ServerSource
	client *fasthttp.Client
	counts map[*Server]*hcCount // owned by the checking goroutine

	startOnce, closeOnce sync.Once
	ctx                  context.Context
	cancel               context.CancelFunc
	done                 chan struct{}
}

// NewHealthChecker builds the checker of the servers src publishes.
func NewHealthChecker(origin string, cfg HealthConfig, src ServerSource) (*HealthChecker, error) {
	if cfg.Path == "" || cfg.Path[0] != '/' {
		return nil, fmt.Errorf("origins.%s.health_check.path: must start with /, got %q", origin, cfg.Path)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultHealthInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultHealthTimeout
	}
	if cfg.Healthy <= 0 {
		cfg.Healthy = DefaultHealthyChecks
	}
	if cfg.Unhealthy <= 0 {
		cfg.Unhealthy = DefaultUnhealthyChecks
	}
	h := &HealthChecker{
		origin: origin, cfg: cfg, src: src, counts: map[*Server]*hcCount{}, done: make(chan struct{}),
		client: &fasthttp.Client{
			Name:                "gozer-health-check",
			ReadTimeout:         cfg.Timeout,
			WriteTimeout:        cfg.Timeout,
			MaxIdleConnDuration: 2 * cfg.Interval,
			MaxConnsPerHost:     2,
			TLSConfig:           cfg.TLS,
		},
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h, nil
}

// Start launches the check goroutine: a round right away, then one per interval.
func (h *HealthChecker) Start() {
	h.startOnce.Do(func() { go h.run() })
}

func (h *HealthChecker) run() {
	defer close(h.done)
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		h.CheckOnce()
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close stops the checks and waits for the round in progress.
func (h *HealthChecker) Close() {
	h.closeOnce.Do(func() {
		h.cancel()
		h.startOnce.Do(func() { close(h.done) })
		<-h.done
		h.client.CloseIdleConnections()
	})
}

// CheckOnce checks every current server once, in parallel (one slow server must
// not delay the verdict on the others), and applies the thresholds.
func (h *HealthChecker) CheckOnce() {
	list := h.src.Servers().List
	live := make(map[*Server]*hcCount, len(list))
	for _, s := range list {
		c := h.counts[s]
		if c == nil {
			c = &hcCount{}
		}
		live[s] = c
	}
	h.counts = live // servers that left the set are forgotten
	var wg sync.WaitGroup
	for s, c := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.apply(s, c, h.check(s))
		}()
	}
	wg.Wait()
}

// apply moves a server's run of results and flips it when a threshold is reached.
func (h *HealthChecker) apply(s *Server, c *hcCount, ok bool) {
	if ok {
		c.ok, c.fail = c.ok+1, 0
		if s.down.Load() && c.ok >= h.cfg.Healthy {
			s.down.Store(false)
		}
		return
	}
	c.ok, c.fail = 0, c.fail+1
	if !s.down.Load() && c.fail >= h.cfg.Unhealthy {
		s.down.Store(true)
	}
}

// check does one GET; true on a 2xx or 3xx within the timeout.
func (h *HealthChecker) check(s *Server) bool {
	if h.ctx.Err() != nil {
		return true // closing: a verdict now would be the shutdown's, not the server's
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	scheme := "http://"
	if h.cfg.TLS != nil {
		scheme = "https://"
	}
	req.SetRequestURI(scheme + s.Addr + h.cfg.Path)
	req.Header.SetMethod(fasthttp.MethodGet)
	if h.cfg.Host != "" {
		req.UseHostHeader = true
		req.Header.SetHost(h.cfg.Host)
	}
	if err := h.client.DoTimeout(req, resp, h.cfg.Timeout); err != nil {
		return false
	}
	code := resp.StatusCode()
	return code >= 200 && code < 400
}
