// Package server is Gozer's proxy core: it accepts client connections, hands each to
// one gnet event loop for life, decodes HTTP/1.1 on that loop, proxies to origins over
// connections opened onto the same loop, and streams bodies both ways with bounded
// buffering.
//
// Concurrency: everything that touches a connection (client or upstream) runs on the
// goroutine of the event loop that owns it. The only other goroutines are the
// acceptor, the dialers (one per new origin connection, off the request path once
// pools are warm), the drain watcher, the timer ticker, the admin HTTP server and the
// log writers; they reach a loop only through EventLoop.Execute.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"

	"gozer/filters"
	"gozer/filters/lua"
	"gozer/gateway/config"
	"gozer/gateway/origin"
	"gozer/gateway/telemetry"
)

// tickEvery is the resolution of every connection timeout.
const tickEvery = 100 * time.Millisecond

// Server is one running gateway. Create it with New, start it with Start, stop it with
// Shutdown; its methods are safe to call from any goroutine.
type Server struct {
	cfg      *config.Config
	log      zerolog.Logger
	origins  *origin.Table
	router   filters.Router
	access   *telemetry.AccessLog
	filters  *lua.Runtime // nil when no scripts directory
	counters causeCounters
	push     *pushHub // push connections, the push API, the cluster registry

	engine  *gnet.Client
	handler *handler
	watcher *drainWatcher

	proxyLn net.Listener
	admin   *adminServer

	loopsMu sync.Mutex
	loops   []*loop // every loop seen so far; read by the ticker under loopsMu

	clients  atomic.Int64 // client connections open (accepted and not yet closed)
	closed   atomic.Int64 // client connections closed since start (the reclaimer's signal)
	draining atomic.Bool
	stopTick chan struct{}
	wg       sync.WaitGroup
}

// New validates what the config names (origins resolve, access log opens) but binds nothing.
func New(cfg *config.Config, log zerolog.Logger) (*Server, error) {
	tab, err := origin.NewTable(cfg.Origins)
	if err != nil {
		return nil, err
	}
	if err := attachIsolation(tab, cfg.Origins); err != nil {
		return nil, err
	}
	sink, err := telemetry.OpenSink(cfg.Log.AccessLog)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: log, origins: tab,
		router:   filters.NewRouteTable(cfg.Routes),
		access:   telemetry.NewAccessLog(sink),
		stopTick: make(chan struct{}),
	}
	s.handler = &handler{srv: s}
	s.counters = newCauseCounters(tab)
	if dir := cfg.Filters.Dir; dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			log.Warn().Str("dir", dir).Msg("filters directory not found: no Lua filters")
		} else {
			rt, err := lua.New(lua.Options{
				Dir: dir, Budget: cfg.Filters.Budget, Disabled: cfg.Filters.Disabled,
				Log: log, MaxBodyBytes: int(cfg.Filters.MaxBodyBytes),
				PushSecret: cfg.Push.Secret(),
			})
			if err != nil {
				return nil, fmt.Errorf("load filters: %w", err)
			}
			s.filters = rt
		}
	}
	if s.push, err = newPushHub(s); err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	return s, nil
}

// Check builds everything New builds from cfg (the origins with their first DNS
// lookups, the access log, the Lua filters, the push hub) and releases it again
// without binding a port: what `gozer -check` runs, so that it refuses what
// start-up would.
func Check(cfg *config.Config, log zerolog.Logger) error {
	s, err := New(cfg, log)
	if err != nil {
		return err
	}
	s.release()
	return nil
}

// release frees what New made, for a server that was never started.
func (s *Server) release() {
	if s.filters != nil {
		s.filters.Stop()
	}
	s.push.stop()
	s.origins.Close()
	_ = s.access.Close()
}

// Start binds the listeners and starts the event loops; it returns once Gozer serves.
func (s *Server) Start() error {
	w, err := newDrainWatcher()
	if err != nil {
		return err
	}
	s.watcher = w
	if s.filters != nil {
		s.filters.Start()
	}
	for _, o := range s.origins.List {
		o.Iso.Start()
	}
	s.push.start()
	s.setGoMaxProcs()
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(s.cfg.Server.EventLoops),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReadBufferCap(64 << 10),
		gnet.WithLogger(gnetLogger{s.log}),
	}
	cli, err := gnet.NewClient(s.handler, opts...)
	if err != nil {
		return fmt.Errorf("create event loops: %w", err)
	}
	if err := cli.Start(); err != nil {
		return fmt.Errorf("start event loops: %w", err)
	}
	s.engine = cli

	// No TCP keep-alive probes on client connections: idle HTTP connections end
	// at server.idle_timeout and push connections are pinged by the gateway, so
	// the three setsockopt calls Go makes per accepted connection buy nothing.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", s.cfg.Listeners.Proxy.Addr)
	if err != nil {
		_ = cli.Stop()
		return fmt.Errorf("listen proxy %s: %w", s.cfg.Listeners.Proxy.Addr, err)
	}
	s.proxyLn = ln
	adminLn, err := net.Listen("tcp", s.cfg.Listeners.Admin.Addr)
	if err != nil {
		_ = ln.Close()
		_ = cli.Stop()
		return fmt.Errorf("listen admin %s: %w", s.cfg.Listeners.Admin.Addr, err)
	}
	s.admin = s.newAdmin(adminLn)
	if s.cfg.Listeners.Admin.OnEveryInterface() {
		s.log.Warn().Str("admin", s.cfg.Listeners.Admin.Addr).
			Msg("admin listener on every interface: its push API and admin endpoints have no authentication; listen on loopback or a private address (listeners.admin.addr)")
	}

	if every := s.cfg.Server.MemoryReclaimInterval; every > 0 {
		r := newReclaimer(every, s.closed.Load, s.log)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); r.run(s.stopTick) }()
	}
	s.wg.Add(4)
	go func() { defer s.wg.Done(); s.watcher.run() }()
	go func() { defer s.wg.Done(); s.acceptLoop(ln) }()
	go func() { defer s.wg.Done(); s.tickLoop() }()
	go func() {
		defer s.wg.Done()
		if err := s.admin.serve(); err != nil {
			s.log.Error().Err(err).Msg("admin listener stopped")
		}
	}()
	s.log.Info().Str("proxy", ln.Addr().String()).Str("admin", adminLn.Addr().String()).
		Int("origins", len(s.origins.List)).Msg("gozer serving")
	return nil
}

// setGoMaxProcs gives Go one P per event loop plus one. A gnet loop blocks in
// epoll_wait holding its P; with only as many Ps as loops, every other goroutine
// (the acceptor, the admin and push API, the ticker, the log writers, the
// upstream senders) waits for Go's sysmon to take a P back from a loop, which
// costs tens of microseconds to milliseconds per hand-off. Measured with the push
// bench on one pinned core: 53.2 → 37.7 µs of CPU per pushed message and p99
// 3.60 → 2.25 ms. An explicit GOMAXPROCS in the environment wins.
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

// ProxyAddr is the bound address of the proxy listener.
func (s *Server) ProxyAddr() string { return s.proxyLn.Addr().String() }

// acceptLoop hands each accepted connection to an event loop. Accepting outside gnet
// keeps the listener ours: Shutdown can close it (new clients are refused at once
// while the loops go on serving), and a full gateway can answer 503 before the
// connection ever costs a loop anything.
func (s *Server) acceptLoop(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn().Err(err).Msg("accept failed")
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: do not spin
			continue
		}
		if s.clients.Load() >= int64(s.cfg.Server.MaxConnections) {
			s.refuse(c)
			continue
		}
		s.clients.Add(1)
		if _, err := s.engine.EnrollContext(c, nil); err != nil {
			s.clients.Add(-1)
			s.log.Error().Err(err).Msg("cannot hand connection to an event loop")
		}
	}
}

// refuse answers a connection over the limit with a 503 and closes it.
func (s *Server) refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(errorResponse(nil, filters.LocalMaxConnections, nil, true))
	_ = c.Close()
	s.log.Warn().Str("client", c.RemoteAddr().String()).Str("cause", filters.LocalMaxConnections.Name).
		Int("max_connections", s.cfg.Server.MaxConnections).Msg("connection refused: too many client connections")
}

// tickLoop drives every loop's timers: a loop checks its deadlines on its own goroutine.
func (s *Server) tickLoop() {
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stopTick:
			return
		case <-t.C:
		}
		s.loopsMu.Lock()
		loops := s.loops
		s.loopsMu.Unlock()
		for _, l := range loops {
			_ = l.el.Execute(context.Background(), l.tickTask)
		}
	}
}

// Shutdown drains: it stops accepting, closes idle keep-alive connections, lets
// in-flight requests finish until ctx ends (answering with Connection: close), then
// stops the loops and flushes the logs.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	_ = s.proxyLn.Close()
	s.forEachLoop(func(l *loop) { l.drain() })
	for s.clients.Load() > 0 {
		select {
		case <-ctx.Done():
			s.log.Warn().Int64("connections", s.clients.Load()).Msg("drain deadline reached: closing busy connections")
			goto stop
		case <-time.After(20 * time.Millisecond):
		}
	}
stop:
	close(s.stopTick)
	s.forEachLoop(func(l *loop) { l.log.Flush() })
	err := s.engine.Stop()
	actx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.admin.shutdown(actx)
	s.watcher.stop()
	s.wg.Wait()
	s.watcher.release()
	s.push.stop()
	if s.filters != nil {
		s.filters.Stop()
	}
	s.origins.Close()
	_ = s.access.Close()
	return err
}

// forEachLoop runs fn on every loop's own goroutine and waits for all of them.
func (s *Server) forEachLoop(fn func(*loop)) {
	s.loopsMu.Lock()
	loops := append([]*loop(nil), s.loops...)
	s.loopsMu.Unlock()
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		l := l
		err := l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			defer wg.Done()
			fn(l)
			return nil
		}))
		if err != nil {
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
