// Package server runs the gateway: it builds what the configuration names,
// accepts client connections and hands each to one gnet event loop for life,
// builds each loop's rooms (loop, originconn, pushconn, exchange, http1) the
// first time the loop is seen, dispatches gnet's events to the connection
// kinds, ticks the loops' timers, and drains on shutdown.
//
// Concurrency: every connection is served on the goroutine of the loop that
// owns it; the loops accept their client connections themselves
// (server.accept_on_loops, accept.go). The other goroutines are the acceptors
// (plain and HTTPS; only with accept_on_loops off), gnet's ticker (with it on), the TLS
// handshakes (one per handshaking connection, gateway/tlsconn), the
// certificate store's checks, the dialers (one per new origin connection),
// the writable watcher, the ticker, the memory reclaimer, the admin server,
// the configuration file watcher (reloads run on it, on the admin server's
// goroutines and on main's for SIGHUP, one at a time)
// and the log writers; they reach a loop only through
// EventLoop.Execute. Server's methods are safe to call from any goroutine.
package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
	"github.com/rs/zerolog"

	"gozer/filters"
	"gozer/filters/builtin"
	"gozer/filters/dict"
	"gozer/filters/lua"
	"gozer/gateway/admin"
	"gozer/gateway/config"
	"gozer/gateway/loop"
	"gozer/gateway/origin"
	"gozer/gateway/push"
	"gozer/gateway/pushconn"
	"gozer/gateway/ratelimit"
	"gozer/gateway/telemetry"
	"gozer/gateway/tlscert"
	"gozer/gateway/tlsconn"
)

// Server is one running gateway. Create it with New, start it with Start, stop
// it with Shutdown.
type Server struct {
	cfg     *config.Config
	log     zerolog.Logger
	origins *origin.Table // the origins of cfg (at start; reloads swap others in)
	access  *telemetry.AccessLog
	counts  *telemetry.CauseCounters
	filters *lua.Runtime // nil when no scripts directory
	hub     *push.Hub
	shared  *loop.Shared
	limits  *limitsState

	engine  *gnet.Client // the loops, when acceptors hand them connections
	loopEng *loopEngine  // the loops, when they accept (server.accept_on_loops)
	// died receives why the loops stopped when they stopped by themselves
	// (Done); dead says so to the health check.
	died    chan error
	dead    atomic.Bool
	handler *handler
	watcher *loop.Watcher

	proxyLn   net.Listener    // the acceptor's (nil with accept_on_loops)
	httpsLn   net.Listener    // the acceptor's (nil with accept_on_loops or without an HTTPS listener)
	proxyAddr string          // the bound proxy address
	httpsAddr string          // the bound HTTPS address ("" without one)
	certs     *tlscert.Store  // its certificates
	tls       *tlsconn.Server // its handshakes, shared by the loops
	admin     *admin.Server
	// adminCerts are the admin listener's certificates (listeners.admin.tls);
	// nil when it speaks plain HTTP.
	adminCerts *tlscert.Store

	// reload swaps reloaded configurations in (nil until SetConfigSource);
	// cfgWatch reloads when the file changes (nil: not watched).
	reload   *reloader
	cfgWatch *configWatcher

	loopsMu sync.Mutex
	loops   []*loop.Loop // every loop seen so far; read by the ticker under loopsMu
	rooms   []*rooms     // their rooms, in the same order (GET /metrics)

	stopTick chan struct{}
	wg       sync.WaitGroup
}

// New builds what the config names (origins and their first DNS lookups, the
// access log, the Lua filters, the push hub) but binds nothing.
func New(cfg *config.Config, log zerolog.Logger) (*Server, error) {
	// Before the breakers exist, so that their hystrix circuits report to it:
	// the dashboard's p50/p99 while the request metrics are off
	// (latencySource).
	admin.HystrixLatency()
	tab, err := origin.Build(cfg.Origins)
	if err != nil {
		return nil, err
	}
	sink, err := telemetry.OpenSink(cfg.Log.AccessLog)
	if err != nil {
		tab.Close()
		return nil, err
	}
	names := make([]string, len(tab.List))
	for i, o := range tab.List {
		names[i] = o.Name
	}
	s := &Server{
		cfg: cfg, log: log, origins: tab,
		access:   telemetry.NewAccessLog(sink),
		counts:   telemetry.NewCauseCounters(names),
		stopTick: make(chan struct{}),
	}
	s.handler = &handler{srv: s}
	s.limits = newLimits(cfg)
	if s.filters, err = loadFilters(cfg, log, s.limits.node); err != nil {
		s.release()
		return nil, err
	}
	node := ""
	if cfg.Push.Cluster.Enabled {
		node = cfg.ClusterNode()
	}
	s.hub, err = push.NewHub(push.HubConfig{Push: &cfg.Push, Node: node, Origins: tab, Count: s.counts.Add, Log: log})
	if err != nil {
		s.release()
		return nil, fmt.Errorf("push: %w", err)
	}
	return s, nil
}

// buildServing is what New builds for serving only (not for -check): a
// development certificate is generated here, never by -check.
func (s *Server) buildServing() error {
	if err := s.buildTLS(); err != nil {
		return err
	}
	return s.buildAdminTLS()
}

// loadFilters starts the filter runtime on filters.dir; nil with filters.dir
// "" (no chain at all). A directory that does not exist yet is watched for
// (the runtime logs it): its scripts load when it appears, and the Go filters
// (route CORS, Server-Timing) run meanwhile. Returning no runtime for it, as
// before, turned the Go filters off too, and never loaded the scripts.
func loadFilters(cfg *config.Config, log zerolog.Logger, limits *ratelimit.Node) (*lua.Runtime, error) {
	dir := cfg.Filters.Dir
	if dir == "" {
		return nil, nil
	}
	rt, err := lua.New(lua.Options{
		Dir: dir, Budget: cfg.Filters.Budget, Disabled: cfg.Filters.Disabled,
		Log: log, MaxBodyBytes: int(cfg.Filters.MaxBodyBytes), MaxSuspended: cfg.Filters.MaxSuspended,
		Dicts:      sharedDicts(cfg.Filters.SharedDicts),
		GoFilters:  builtin.All(),
		PushSecret: cfg.Push.Secret(),
		Limits:     limits,
	})
	if err != nil {
		return nil, fmt.Errorf("load filters: %w", err)
	}
	return rt, nil
}

// Check builds everything New builds from cfg and releases it again without
// binding a port: what `gozer -check` runs, so that it refuses what start-up
// would.
func Check(cfg *config.Config, log zerolog.Logger) error {
	s, err := New(cfg, log)
	if err != nil {
		return err
	}
	s.release()
	return checkTLS(cfg, log)
}

// release frees what New made, for a server that was never started.
func (s *Server) release() {
	if s.filters != nil {
		s.filters.Stop()
	}
	if s.hub != nil {
		s.hub.Stop()
	}
	s.origins.Close()
	s.closeAccessLog()
}

// closeAccessLog writes out what the access log holds and closes its sink,
// waiting at most telemetry.CloseWait: every exit path ends with it, and a
// sink that does not take the lines (a stalled log collector on stdout, a
// full pipe) must not keep the process from exiting; the lines are lost
// then, and the process log says so.
func (s *Server) closeAccessLog() {
	if err := telemetry.CloseWithin(s.access, telemetry.CloseWait); err != nil {
		s.log.Warn().Err(err).Msg("access log not all written out: its sink does not take the lines")
	}
	s.access.ReportDropsAtExit(s.log) // what the last flushes lost
}

// Start binds the listeners and starts the event loops; it returns once Gozer serves.
func (s *Server) Start() error {
	if err := s.buildServing(); err != nil {
		return err
	}
	w, err := loop.NewWatcher()
	if err != nil {
		return err
	}
	s.watcher = w
	s.shared = loop.NewShared(loop.NewSnapshot(s.cfg, s.origins, filters.NewRouteTable(s.cfg.Routes)), s.log, s.access, w)
	s.shared.Budget = sendBudget(&s.cfg.Server)
	s.startLimits()
	if s.cfg.Listeners.Admin.Metrics {
		s.shared.Metrics = telemetry.NewMetrics()
	}
	s.log.Info().Int64("max_buffered_total", s.shared.Budget).Msg("bytes buffered toward clients are bounded node-wide")
	if s.filters != nil {
		s.filters.Start()
	}
	for _, o := range s.origins.List {
		o.Iso.Start()
	}
	s.hub.Start()
	s.setGoMaxProcs()
	if err := s.startLoops(); err != nil {
		return err
	}
	// The admin side's forwards keep under its ceiling (gateway/admin, accept.go).
	s.hub.API.LimitDials(loop.DialCeiling(s.shared.AdminFDCeiling, &s.shared.AdminOpenFiles))
	if err := s.listen(); err != nil {
		_ = s.stopLoops()
		return err
	}
	if every := s.cfg.Server.MemoryReclaimInterval; every > 0 {
		r := newReclaimer(every, s.shared.Closed.Load, s.log)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); r.run(s.stopTick) }()
	}
	if s.proxyLn != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.acceptLoop(s.proxyLn, false) }()
	}
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.watcher.Run() }()
	go func() { defer s.wg.Done(); s.tickLoop() }()
	go func() {
		defer s.wg.Done()
		if err := s.admin.Serve(); err != nil {
			s.log.Error().Err(err).Msg("admin listener stopped")
		}
	}()
	s.startTLS()
	s.startConfigWatch()
	s.log.Info().Str("proxy", s.proxyAddr).Bool("accept_on_loops", s.loopEng != nil).Str("admin", s.admin.Addr().String()).
		Str("admin_scheme", s.cfg.Listeners.Admin.Scheme()).Str("admin_client_auth", s.cfg.Listeners.Admin.TLS.ClientAuth).
		Int("origins", len(s.origins.List)).Msg("gozer serving")
	return nil
}

// engineOptions are the event loops' gnet options.
//
// TCP_NODELAY: Go's net package sets it on every TCP connection it accepts
// or dials (net.newTCPConn), and gnet's enrollment keeps the socket (a dup of
// the same one), so gnet is told not to set it again (gnet.TCPDelay means
// "leave it", not "turn it off": Client.EnrollContext only ever sets it):
// one setsockopt fewer per accepted connection (strace -c -f -p PID over
// bench/tlsload -mode tcp: 2.00 setsockopt per connection before, 1.00
// after).
// TestEngineNoDelay checks a client's socket still has it.
func engineOptions(loops int, log logging.Logger) []gnet.Option {
	return []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(loops),
		gnet.WithTCPNoDelay(gnet.TCPDelay),
		gnet.WithReadBufferCap(loop.ReadBufferCap),
		gnet.WithLogger(log),
	}
}

// startLoops starts the event loops: a gnet client that the acceptors hand
// connections to, or with server.accept_on_loops a gnet engine whose loops
// accept on the proxy and HTTPS addresses themselves (accept.go).
func (s *Server) startLoops() error {
	if s.cfg.Server.AcceptOnLoops {
		return s.startLoopEngine()
	}
	cli, err := gnet.NewClient(s.handler, engineOptions(s.cfg.Server.EventLoops, gnetLogger{s.log})...)
	if err != nil {
		return fmt.Errorf("create event loops: %w", err)
	}
	if err := cli.Start(); err != nil {
		return fmt.Errorf("start event loops: %w", err)
	}
	s.engine = cli
	return nil
}

// stopLoops stops the event loops; every connection they hold is closed.
func (s *Server) stopLoops() error {
	if s.loopEng != nil {
		return s.stopLoopEngine()
	}
	return s.engine.Stop()
}

// stopAccepting makes the client listeners refuse new connections (drain):
// the acceptors' listeners close, or the loops' listening sockets stop.
func (s *Server) stopAccepting(ctx context.Context) {
	if s.loopEng != nil {
		s.stopLoopAccepting(ctx)
		return
	}
	_ = s.proxyLn.Close()
	if s.httpsLn != nil {
		_ = s.httpsLn.Close()
	}
}

// listen binds the admin listener and, for the acceptors, the proxy and HTTPS
// listeners (the loops bound theirs with accept_on_loops).
func (s *Server) listen() error {
	var ln net.Listener
	if s.loopEng == nil {
		// No TCP keep-alive probes on client connections: idle HTTP connections end
		// at server.idle_timeout and push connections are pinged by the gateway, so
		// the three setsockopt calls Go makes per accepted connection buy nothing.
		lc := net.ListenConfig{KeepAlive: -1}
		var err error
		if ln, err = lc.Listen(context.Background(), "tcp", s.cfg.Listeners.Proxy.Addr); err != nil {
			return fmt.Errorf("listen proxy %s: %w", s.cfg.Listeners.Proxy.Addr, err)
		}
		if err := s.listenHTTPS(); err != nil {
			_ = ln.Close()
			return err
		}
		s.proxyLn, s.proxyAddr = ln, ln.Addr().String()
	}
	adminLn, err := net.Listen("tcp", s.cfg.Listeners.Admin.Addr)
	if err != nil {
		if ln != nil {
			_ = ln.Close()
			if s.httpsLn != nil {
				_ = s.httpsLn.Close()
			}
		}
		return fmt.Errorf("listen admin %s: %w", s.cfg.Listeners.Admin.Addr, err)
	}
	s.admin = admin.New(adminLn, admin.Sources{
		Log: s.log, Origins: func() *origin.Table { return s.shared.Snapshot().Origins }, Counts: s.counts, Filters: s.filters, Push: s.hub,
		Draining: s.shared.Draining.Load, Dead: s.dead.Load, Pprof: s.cfg.Listeners.Admin.Pprof, Shared: s.shared,
		TLS: s.tlsSource(), ListenerTLS: s.adminTLS(), Config: s.configControl(),
		Metrics: s.shared.Metrics, Loops: s.loopStats, Latency: s.latencySource(),
	})
	if a := &s.cfg.Listeners.Admin; a.OnEveryInterface() && !a.Authenticated() {
		s.log.Warn().Str("admin", a.Addr).
			Msg("admin listener on every interface: its admin endpoints have no authentication; listen on loopback or a private address (listeners.admin.addr), or require client certificates (listeners.admin.tls)")
	}
	s.logPushAPIAuth()
	return nil
}

// logPushAPIAuth says at start who may call the push API (push.api), so an
// operator sees that a token is needed, or that only loopback is let in.
func (s *Server) logPushAPIAuth() {
	p := &s.cfg.Push
	toks, allow := p.APITokens(), p.API.Allow
	ev := s.log.Info().Int("tokens", len(toks)).Strs("allow", allow)
	switch {
	case len(toks) == 0 && len(allow) == 0:
		ev.Msg("push api: loopback callers only (push.api.tokens, $GOZER_PUSH_API_TOKEN or push.api.allow let others in)")
	case len(toks) == 0:
		ev.Msg("push api: callers from the allowed networks only (push.api.allow)")
	default:
		ev.Msg("push api: callers need a bearer token (push.api.tokens, $GOZER_PUSH_API_TOKEN)")
	}
}

// setGoMaxProcs gives Go one P per event loop plus one. A gnet loop blocks in
// epoll_wait holding its P; with only as many Ps as loops, every other goroutine
// (the acceptor, the admin and push API, the ticker, the log writers, the
// device-message senders) waits for Go's sysmon to take a P back from a loop,
// which costs tens of microseconds to milliseconds per hand-off. Measured with
// the push bench on one pinned core: 53.2 → 37.7 µs of CPU per pushed message
// and p99 3.60 → 2.25 ms. An explicit GOMAXPROCS in the environment wins.
//
// What the spare P costs: each time a loop's poll finds nothing, gnet calls
// runtime.Gosched, which wakes an idle thread for the spare P that finds no
// work and sleeps again (two context switches). On the websocket bench that is
// 97 % of Gozer's futex calls and a third of its context switches; with
// GOMAXPROCS = loops sysmon churns instead (bench/README.md, "Websocket
// proxying"), and bench/ws.sh, like bench/run.sh, tries both.
func (s *Server) setGoMaxProcs() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	loops := s.cfg.Server.EventLoops
	if loops <= 0 {
		loops = runtime.NumCPU() // gnet's default: one loop per CPU it may run on
	}
	if runtime.GOMAXPROCS(0) <= loops {
		runtime.GOMAXPROCS(loops + 1)
	}
}

// SetConfigSource names where the configuration came from (path; "" for the
// embedded one) and its bytes, which makes it reloadable: by Reload, by POST
// /admin/config/reload and, with watch and a file, when the file changes.
// Call it before Start.
func (s *Server) SetConfigSource(path string, data []byte, watch bool) {
	s.reload = newReloader(s, path, data)
	s.reload.watching = watch && path != ""
}

// Reload is what SIGHUP asks for: the Lua scripts are looked at again now,
// and the configuration is reloaded (when SetConfigSource made it
// reloadable). It never stops the gateway: a refused configuration is logged
// and the one in service stays.
func (s *Server) Reload() {
	if s.filters != nil {
		s.filters.Rescan()
	}
	if s.reload != nil {
		s.reload.Reload(TriggerSignal)
	}
}

// ConfigStatus is the configuration in service and the last reload attempt
// (ok false when the configuration is not reloadable).
func (s *Server) ConfigStatus() (st ConfigStatus, ok bool) {
	if s.reload == nil {
		return st, false
	}
	return s.reload.Status(), true
}

// DrainTimeout is server.drain_timeout of the configuration in service.
func (s *Server) DrainTimeout() time.Duration {
	if s.shared == nil {
		return s.cfg.Server.DrainTimeout
	}
	return s.shared.Snapshot().Config.Server.DrainTimeout
}

// ProxyAddr is the bound address of the proxy listener.
func (s *Server) ProxyAddr() string { return s.proxyAddr }

// tickLoop drives every loop's timers (a loop checks its deadlines on its own
// goroutine) and forwards the breakers' samples to hystrix-go.
func (s *Server) tickLoop() {
	t := time.NewTicker(pushconn.TickEvery)
	defer t.Stop()
	var swept time.Time
	for {
		var now time.Time
		select {
		case <-s.stopTick:
			return
		case now = <-t.C:
		}
		if now.Sub(swept) >= time.Second {
			swept = now
			s.shared.Peers.Sweep(now.UnixNano()) // clients kept for a penalty that ended
			s.access.ReportDrops(now, s.log)
		}
		s.loopsMu.Lock()
		loops := s.loops
		s.loopsMu.Unlock()
		for _, l := range loops {
			_ = l.EL.Execute(context.Background(), l.TickTask())
		}
		// The breakers' sampled outcomes reach hystrix-go from here, not from
		// the loops (origin.Breaker: a send from a loop woke a thread); after
		// the loops' ticks, which it would otherwise delay.
		if snap := s.shared.Snapshot(); snap != nil && snap.Origins != nil {
			snap.Origins.ForwardSamples()
		}
	}
}

// Shutdown drains: it stops accepting, closes idle keep-alive connections, lets
// in-flight requests finish until ctx ends (answering with Connection: close),
// spreads the push connections' go-aways over most of the drain time, then
// stops the loops and flushes the logs.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shared.Draining.Store(true)
	s.stopAccepting(ctx)
	if s.cfgWatch != nil {
		s.cfgWatch.stop() // no reload while draining
	}
	spread := pushconn.DrainSpread(s.DrainTimeout())
	s.forEachLoop(func(l *loop.Loop) { l.Drain(l.Now() + spread) })
	for s.shared.Clients.Load() > 0 {
		select {
		case <-ctx.Done():
			s.log.Warn().Int64("connections", s.shared.Clients.Load()).Msg("drain deadline reached: closing busy connections")
			goto stop
		case <-time.After(20 * time.Millisecond):
		}
	}
stop:
	close(s.stopTick)
	s.stopLimits()
	s.forEachLoop(func(l *loop.Loop) { l.Log.Flush() })
	err := s.stopLoops()
	actx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.admin.Shutdown(actx)
	s.watcher.Stop()
	s.wg.Wait()
	s.watcher.Release()
	s.hub.Stop()
	if s.filters != nil {
		s.filters.Stop()
	}
	if s.reload != nil {
		s.reload.mu.Lock() // a reload under way finishes first; none starts after
		defer s.reload.mu.Unlock()
	}
	s.shared.Snapshot().Origins.Close() // the table in service: reloads replaced the first
	s.closeAccessLog()
	return err
}

// loopList is a copy of the loops so far (handler.roomsOf appends each one
// the first time it sees it).
func (s *Server) loopList() []*loop.Loop {
	s.loopsMu.Lock()
	defer s.loopsMu.Unlock()
	return append([]*loop.Loop(nil), s.loops...)
}

// forEachLoop runs fn on every loop's own goroutine and waits for all of them.
func (s *Server) forEachLoop(fn func(*loop.Loop)) {
	var wg sync.WaitGroup
	for _, l := range s.loopList() {
		wg.Add(1)
		if !l.Execute(func() { defer wg.Done(); fn(l) }) {
			wg.Done()
		}
	}
	wg.Wait()
}

// gnetLogger sends gnet's own log lines to the process log.
type gnetLogger struct{ l zerolog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug().Msgf("gnet: "+f, a...) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug().Msgf("gnet: "+f, a...) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn().Msgf("gnet: "+f, a...) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error().Msgf("gnet: "+f, a...) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error().Msgf("gnet: "+f, a...) }

// sharedDicts builds the node's shared dictionaries (filters.shared_dicts).
func sharedDicts(specs map[string]config.Size) *dict.Set {
	m := make(map[string]int64, len(specs))
	for name, size := range specs {
		m[name] = int64(size)
	}
	return dict.NewSet(m)
}
