// Package admin is the internal admin listener: the health check, the admin
// API (GET /admin/origins, /admin/push, /admin/filters: docs/ADMIN.md),
// Prometheus metrics (GET /metrics, metrics.go), the push API, the live
// dashboard (GET /dashboard, fed by GET /dashboard/stream from a sampler
// goroutine: sampler.go), and Go's profiles when the configuration switches
// them on. Every admin
// handler and the JSON answers live here. It speaks plain HTTP, or HTTPS with
// optional client certificates (ListenerTLS), its certificates held by a
// gateway/tlscert store of its own.
//
// Concurrency: fasthttp serves each connection on a goroutine of its own,
// which also runs the connection's TLS handshake; Serve and Shutdown may be
// called from any goroutine, Shutdown once. The Sources it reads are safe for
// any goroutine.
package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"gozer/filters/lua"
	"gozer/gateway/loop"
	"gozer/gateway/origin"
	"gozer/gateway/push"
	"gozer/gateway/telemetry"
	"gozer/gateway/tlscert"
	"gozer/gateway/tlsconn"
)

// The admin listener's limits. net/http served it before with a 5 s header and
// a 30 s request timeout and no write timeout; these keep the same bounds.
const (
	// adminHeaderTimeout bounds reading a request's header, from its first byte
	// (and a new connection's wait for its first request).
	adminHeaderTimeout = 5 * time.Second
	// adminBodyTimeout bounds reading a body once the header is in: a slow
	// push-API sender does not hold a connection's goroutine longer.
	adminBodyTimeout = 30 * time.Second
	// adminIdleTimeout is how long a keep-alive connection may wait for its
	// next request (net/http's default was the 30 s read timeout).
	adminIdleTimeout = 30 * time.Second
	// adminWriteTimeout bounds writing an answer, counted from when the handler
	// returns: a CPU profile's 30 s of sampling is not part of it.
	adminWriteTimeout = 30 * time.Second
	// adminConcurrency is how many connections are served at once; past it a
	// new one gets a 503 and is closed. The listener is internal: its clients
	// are the push-API callers' connection pools and operators.
	adminConcurrency = 4096
	// adminReadBuffer is a connection's read buffer, which bounds a request's
	// header (over it: 431).
	adminReadBuffer = 8 << 10
	// adminMaxBody bounds the body of a request to the net/http handlers,
	// none of which reads one.
	adminMaxBody = 1 << 20
)

// answerOpenFiles is what a plain-HTTP admin connection refused near the
// open-file limit gets before it is closed (accept.go).
var answerOpenFiles = func() []byte {
	body := "admin listener: too close to the open-file limit\n"
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}()

// Sources are what the admin listener shows and serves. Any goroutine.
type Sources struct {
	Log zerolog.Logger
	// Origins returns the origins in service now; it is called per request
	// and per dashboard sample, so a reload that swaps the table is seen at
	// once. Any goroutine.
	Origins  func() *origin.Table
	Counts   *telemetry.CauseCounters
	Filters  *lua.Runtime // nil: no Lua filters
	Push     *push.Hub
	Draining func() bool
	// Dead reports that the event loops stopped by themselves: the health
	// check answers 503 until the process exits (nil: never).
	Dead func() bool
	// Shared is the loops' node-wide state: client connections, per-client
	// counts, buffered bytes (GET /admin/edge).
	Shared *loop.Shared
	// Pprof serves /debug/pprof/ (listeners.admin.pprof).
	Pprof bool
	// Config shows the configuration in service and reloads it (GET
	// /admin/config, POST /admin/config/reload); nil: 404.
	Config ConfigControl
	// TLS is the HTTPS listener's side (GET /admin/tls, POST
	// /admin/tls/reload); nil without one.
	TLS *TLSSource
	// ListenerTLS makes this listener speak HTTPS (listeners.admin.tls); nil:
	// plain HTTP.
	ListenerTLS *ListenerTLS
	// Metrics are the request metrics; nil: GET /metrics is not served
	// (listeners.admin.metrics off).
	Metrics *telemetry.Metrics
	// Loops reads every event loop's connections, pools and busy time, on the
	// loops (GET /metrics); nil: none.
	Loops func() []LoopStats
	// Latency gives the origins' p50/p99 to the dashboard; nil: the dashboard
	// shows "–" for them.
	Latency LatencySource
}

// TLSSource is what the admin API shows and does of the HTTPS listener.
type TLSSource struct {
	Handshakes func() tlsconn.Stats
	Certs      *tlscert.Store
}

// Server is the admin listener: one fasthttp server. The push API, the only
// endpoint under load, is a fasthttp handler (push.API); the other endpoints
// (/healthcheck, /admin/*, /debug/pprof/*) are net/http handlers behind
// fasthttpadaptor, which costs some allocations per request and is fine for
// them.
type Server struct {
	srv   *fasthttp.Server
	ln    net.Listener
	tlsLn *tlsListener // ln when it speaks TLS; nil otherwise
	src   Sources
	// sampler feeds the dashboards' streams (GET /dashboard/stream).
	sampler *sampler
}

// New returns the admin server for ln (over TLS when src.ListenerTLS says
// so); Serve starts it.
func New(ln net.Listener, src Sources) *Server {
	var sampled *telemetry.Sampled
	rl := newRetryListener(ln, nil) // accept.go
	if sh := src.Shared; sh != nil {
		sampled, rl.log = sh.Sampled, sh.Sampled
		var answer []byte // a TLS client cannot read a plain 503
		if src.ListenerTLS == nil {
			answer = answerOpenFiles
		}
		rl.refuseFrom(sh.AdminFDCeiling, answer, &sh.AdminOpenFiles)
	}
	ln = rl
	a := &Server{ln: ln, src: src}
	a.sampler = newSampler(a.src.collect, sampleInterval)
	if t := src.ListenerTLS; t != nil {
		a.tlsLn = newTLSListener(ln, t.Config, sampled)
		a.ln = a.tlsLn
	}
	mux := fasthttpadaptor.NewFastHTTPHandler(a.mux())
	api := src.Push.API
	log := src.Log
	handler := func(ctx *fasthttp.RequestCtx) {
		defer func() {
			// net/http recovered a handler's panic and closed the connection;
			// fasthttp would let it end the process.
			if p := recover(); p != nil {
				log.Error().Interface("panic", p).Bytes("path", ctx.Path()).Msg("admin listener: handler panicked")
				ctx.Response.Reset()
				ctx.Error("internal server error\n", fasthttp.StatusInternalServerError)
				ctx.SetConnectionClose()
			}
		}()
		if bytes.HasPrefix(ctx.Path(), []byte("/push/")) {
			api.ServeFastHTTP(ctx)
			return
		}
		if string(ctx.Path()) == dashboardStreamPath {
			a.dashboardStream(ctx)
			return
		}
		if bufferAdminBody(ctx) {
			mux(ctx)
		}
	}
	a.srv = &fasthttp.Server{
		Handler: handler,
		// The push API reads bodies itself, to answer one over push.max_message
		// with its own 413 whatever the framing (push.API.ServeFastHTTP); and a
		// multipart body is a message, not a form to parse.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  adminHeaderTimeout,
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: adminBodyTimeout}
		},
		IdleTimeout:    adminIdleTimeout,
		WriteTimeout:   adminWriteTimeout,
		Concurrency:    adminConcurrency,
		ReadBufferSize: adminReadBuffer,
		// As net/http: no Server header, no Content-Type on an answer without
		// one, and answers during shutdown close their connection.
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{log},
	}
	return a
}

// Addr is the address the listener is bound to.
func (a *Server) Addr() net.Addr { return a.ln.Addr() }

// Serve serves until Shutdown; it returns nil then.
func (a *Server) Serve() error { return a.srv.Serve(a.ln) }

// Shutdown ends the dashboards' streams and their sampler, stops accepting,
// closes the idle connections and waits until ctx ends for the busy ones to
// finish their request.
func (a *Server) Shutdown(ctx context.Context) error {
	a.sampler.Close()
	err := a.srv.ShutdownWithContext(ctx)
	// Closes the listener even when serve had not started yet, which fasthttp
	// does not: serve then returns at once instead of serving on.
	_ = a.ln.Close()
	return err
}

var errAdminBodyTooLarge = errors.New("request body too large")

// bufferAdminBody reads the body of a request for the net/http handlers, which
// the server streams (StreamRequestBody): the adaptor would read it whole,
// whatever its size. Over adminMaxBody, or unreadable, it answers itself,
// closes the connection and returns false.
func bufferAdminBody(ctx *fasthttp.RequestCtx) bool {
	stream := ctx.RequestBodyStream()
	if stream == nil {
		return true
	}
	var b []byte
	err := errAdminBodyTooLarge
	if ctx.Request.Header.ContentLength() <= adminMaxBody {
		b, err = io.ReadAll(io.LimitReader(stream, adminMaxBody+1))
		if err == nil && len(b) > adminMaxBody {
			err = errAdminBodyTooLarge
		}
	}
	switch {
	case err == nil:
		ctx.Request.SetBody(b) // releases the stream, read to its end
		return true
	case errors.Is(err, errAdminBodyTooLarge):
		ctx.Error("request body too large\n", fasthttp.StatusRequestEntityTooLarge)
	default:
		ctx.Error("reading the request body: "+err.Error()+"\n", fasthttp.StatusBadRequest)
	}
	ctx.SetConnectionClose()
	return false
}

func (a *Server) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthcheck", func(w http.ResponseWriter, _ *http.Request) {
		if a.src.Dead != nil && a.src.Dead() {
			http.Error(w, "event loops stopped\n", http.StatusServiceUnavailable)
			return
		}
		if a.src.Draining() {
			http.Error(w, "draining\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if a.src.Metrics != nil {
		mux.Handle("GET /metrics", a.metricsHandler())
	}
	mux.HandleFunc("GET /admin/filters", a.filters)
	mux.HandleFunc("GET /admin/async", a.async)
	mux.HandleFunc("GET /admin/origins", a.origins)
	mux.HandleFunc("GET /admin/push", a.push)
	mux.HandleFunc("GET /admin/edge", a.edge)
	mux.HandleFunc("GET /admin/tls", a.tls)
	mux.HandleFunc("POST /admin/tls/reload", a.tlsReload)
	mux.HandleFunc("GET /admin/faults", a.faults)
	mux.HandleFunc("PUT /admin/faults", a.faultsPut)
	mux.HandleFunc("DELETE /admin/faults", a.faultsDelete)
	mux.HandleFunc("GET /admin/config", a.config)
	mux.HandleFunc("POST /admin/config/reload", a.configReload)
	mux.HandleFunc("GET /admin/limits", a.limits)
	mux.HandleFunc("GET /admin/deny", a.denyList)
	mux.HandleFunc("POST /admin/deny", a.denyAdd)
	mux.HandleFunc("DELETE /admin/deny", a.denyRemove)
	dashboardRoutes(mux)
	// The admin handler serves /push/ itself (push.API); the pattern is here
	// for ServeMux's redirect of /push to /push/, as when the API was mounted
	// on the mux.
	mux.Handle("/push/", http.NotFoundHandler())
	if a.src.Pprof {
		// Profiles of the running gateway, for operators, when the config asks
		// for them (listeners.admin.pprof): every link of the index answers.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	return mux
}

// fasthttpLogger sends the admin server's own log lines (errors serving a
// connection, the concurrency limit reached) to the process log.
type fasthttpLogger struct{ l zerolog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn().Msgf("admin listener: "+format, args...)
}
