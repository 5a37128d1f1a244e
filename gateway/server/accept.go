package server

// Accepting on the loops (server.accept_on_loops).
//
// With accept_on_loops off, one acceptor goroutine per client listener
// (acceptLoop) accepts with Go's net package and hands each connection to a
// loop with gnet's EnrollContext: Go's poller registers and unregisters the
// descriptor, gnet dups it, Go's copy is closed, and an eventfd write wakes
// the loop: about ten system calls more per connection than accepting on the
// loop, and a cross-thread wake-up,
// and 27 % of Gozer's CPU on new plain connections in the acceptor goroutine
// (perf record; bench/README.md, "Where a new connection's CPU goes").
//
// With accept_on_loops the loops are a gnet engine (gnet.Rotate) instead of a
// gnet client: SO_REUSEPORT gives every loop its own listening socket on the
// proxy address and on the HTTPS one, and a loop accepts on its own goroutine
// (accept4, one epoll_ctl, then OnOpen), so the connection never crosses a
// thread. Measured (bench/README.md, "Accepting on the loops"): system calls
// per plain connection 21.2 → 10.6 besides the scheduler's (strace -c -f -p
// PID over tlsload -mode tcp -c 16 -d 1.5s), CPU per resumed TLS connection
// 335–347 → 287–302 µs (perf stat -e task-clock over tlsload -mode resumed).
// What the acceptor did moves into OnOpen (Server.acceptedOnLoop):
//
//   - Which listener: the connection's local address, IP and port (the
//     HTTPS listener's, or the proxy's, which may share a port on another
//     IP). An HTTPS connection then meets max_handshakes in
//     tlsconn.New, as before.
//   - Connection protection, max_connections and the per-IP cap: the same
//     checks, counters and sampled log lines (Server.admit); a refusal is
//     OnOpen's answer with gnet.Close (gnet writes it and closes). The PROXY
//     protocol is unchanged: the plain listener skips the per-client checks
//     at accept and http1.Conn.admitClient applies them to the client the
//     header names, on the loop, as before.
//   - The open-file limit: gnet treats any accept4 error other than EAGAIN,
//     EINTR, ECONNRESET and ECONNABORTED as fatal (the loop exits and takes the
//     engine with it), where Go's acceptor logged EMFILE and slept. So a loop
//     refuses a connection whose descriptor number reaches the limit less a
//     reserve (fdCeiling): Linux hands out the lowest free number, so a
//     descriptor that high means few are left, and closing it at once keeps
//     one free for the next accept4. The reserve (1/16 of the limit, at least
//     64) is for what else opens descriptors: the admin listener, Redis,
//     health checks, logs, Go's runtime. Origin connections (requests and
//     side calls) keep under the same ceiling (Shared.FDCeiling,
//     originconn.ErrOpenFiles: the request fails with a 503), so clients
//     holding origin requests cannot eat the reserve; and the admin side (its
//     connections, the push API's forwards) keeps under a second ceiling
//     half-way up the reserve (Shared.AdminFDCeiling; gateway/admin,
//     accept.go), so that a burst of push-API callers cannot either. It
//     bounds; it does not make EMFILE impossible (a descriptor leak, a
//     library's files, the limit lowered under the process), so if the loops
//     stop, Done says so: the health check answers 503 and main exits
//     non-zero, for the supervisor to restart Gozer. The limit is read once,
//     at start (a raised limit needs a restart to be used).
//   - Drain: gnet closes its listeners only with the engine, and that closes
//     every connection; Shutdown instead has each loop take its listening
//     sockets out of its epoll instance and shut them down, on its own
//     goroutine (loop.Listening.Stop), so new clients are refused at once
//     while the loops serve the requests in flight.
//   - Balance: the kernel spreads new connections over the loops' sockets by
//     a hash of the connection's addresses and ports (gnet's LoadBalancing
//     option no longer applies); many clients even out, a few may not
//     (TestAcceptOnLoopsBalance: 64 connections from one address reach both
//     of 2 loops).
//   - SO_REUSEPORT lets another process of the same user bind the same port
//     and take a share of the connections; listenAddr binds each address once
//     without it first, so a port another program holds still fails start-up
//     with "address already in use", and resolves port 0.
//
// The admin listener is fasthttp's, with its own goroutines, in both modes;
// push devices arrive on the proxy and HTTPS listeners and are loop
// connections like any client.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
	"golang.org/x/sys/unix"

	"gozer/filters"
	"gozer/gateway/loop"
)

// loopEngine is the event loops when they accept (accept_on_loops).
type loopEngine struct {
	eng       gnet.Engine
	booted    chan struct{} // closed at the first OnTick: every loop runs
	done      chan error    // gnet.Rotate's result, once the engine stopped
	https     *net.TCPAddr  // the HTTPS listener's address (nil: none)
	fdCeiling int           // a connection whose descriptor reaches it is refused
	bootOnce  sync.Once
}

// startLoopEngine binds the proxy and HTTPS addresses on every loop and starts
// the loops; it returns once they run.
func (s *Server) startLoopEngine() error {
	proxy, err := listenAddr(s.cfg.Listeners.Proxy.Addr)
	if err != nil {
		return fmt.Errorf("listen proxy %s: %w", s.cfg.Listeners.Proxy.Addr, err)
	}
	addrs := []string{"tcp://" + proxy}
	ceiling, adminCeiling := fdCeilings()
	le := &loopEngine{booted: make(chan struct{}), done: make(chan error, 1), fdCeiling: ceiling}
	s.died = make(chan error, 1)
	s.proxyAddr = proxy
	if h := &s.cfg.Listeners.HTTPS; h.Enabled() {
		https, err := listenAddr(h.Addr)
		if err != nil {
			return fmt.Errorf("listen https %s: %w", h.Addr, err)
		}
		if le.https, err = net.ResolveTCPAddr("tcp", https); err != nil {
			return fmt.Errorf("listen https %s: %w", h.Addr, err)
		}
		s.httpsAddr = https
		addrs = append(addrs, "tcp://"+https)
	}
	s.loopEng = le
	s.shared.FDCeiling = le.fdCeiling // origin dials keep under it too (originconn.ErrOpenFiles)
	s.shared.AdminFDCeiling = adminCeiling
	opts := append(loopEngineOptions(s.cfg.Server.EventLoops, gnetLogger{s.log}),
		gnet.WithTicker(true)) // the first tick says the loops run
	go func() {
		err := gnet.Rotate(s.handler, addrs, opts...)
		if booted(le) && !s.shared.Draining.Load() {
			// A loop's accept failed in a way gnet does not survive (package
			// comment, "The open-file limit"): no loop serves any more. The
			// health check says so and main exits non-zero (Done): a
			// supervisor restarts a process it would otherwise think healthy.
			s.log.Error().Err(err).Msg("event loops stopped")
			s.dead.Store(true)
			if err == nil {
				err = errors.New("event loops stopped")
			}
			s.died <- err
		}
		le.done <- err
	}()
	select {
	case <-le.booted:
		return nil
	case err := <-le.done:
		if err == nil {
			err = errors.New("stopped at once")
		}
		return fmt.Errorf("start event loops: %w", err)
	}
}

// Done receives an error once the event loops stopped by themselves (not by
// Shutdown): the process no longer serves and should exit. Nil (never ready)
// until Start, and with accept_on_loops off, whose gnet client has no way to
// report its loops' end.
func (s *Server) Done() <-chan error { return s.died }

// Abandon is what is left to do once Done fired: the loops' goroutines have
// returned (gnet.Rotate waits for them before Done's error is sent), so the
// access-log lines they buffered since their last tick, those of the requests
// their connections' closes ended included, are flushed here, on the
// caller's goroutine, and the access log is closed (closeAccessLog: it writes
// them out, waiting at most telemetry.CloseWait). Call it once, only after
// Done, instead of Shutdown.
func (s *Server) Abandon() {
	for _, l := range s.loopList() {
		l.Log.Flush()
	}
	s.closeAccessLog()
}

// booted reports whether the loops of le ran.
func booted(le *loopEngine) bool {
	select {
	case <-le.booted:
		return true
	default:
		return false
	}
}

// loopEngineOptions are the gnet options of loops that accept: the acceptors'
// loops' (engineOptions) with SO_REUSEPORT and TCP_NODELAY on the listening
// sockets.
func loopEngineOptions(loops int, log logging.Logger) []gnet.Option {
	return append(engineOptions(loops, log),
		gnet.WithReusePort(true),
		// As Go's listeners: a restart binds while the last run's
		// connections linger in TIME_WAIT (on Linux it lets no two
		// sockets listen on one port; SO_REUSEPORT does that).
		gnet.WithReuseAddr(true),
		// Set once on each listening socket; Linux copies it to the sockets
		// accepted from it (no setsockopt per connection; TestLoopEngineNoDelay).
		gnet.WithTCPNoDelay(gnet.TCPNoDelay))
}

// listenAddr checks that addr can be bound by a socket without SO_REUSEPORT
// (so a port another program holds fails start-up) and returns it with the
// port chosen when it asked for port 0. The probe is closed before the loops
// bind: a program could take the port in between, and start-up then fails.
func listenAddr(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_ = ln.Close()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}

// fdCeilings returns the descriptor number from which a loop refuses a
// connection, the open-file limit less a reserve for the descriptors that are
// not client connections, and the one from which the admin listener refuses
// one, half-way up the reserve (package comment, "The open-file limit").
func fdCeilings() (loops, admin int) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 1 << 30, 1 << 30
	}
	return ceilingsFor(int(lim.Cur))
}

// ceilingsFor is fdCeilings for an open-file limit.
func ceilingsFor(limit int) (loops, admin int) {
	loops = max(limit-max(limit/16, 64), 16)
	return loops, max(loops, loops+(limit-loops)/2)
}

// OnBoot keeps the engine (accept_on_loops): Shutdown stops it.
func (h *handler) OnBoot(e gnet.Engine) gnet.Action {
	if le := h.srv.loopEng; le != nil {
		le.eng = e
	}
	return gnet.None
}

// OnTick runs on gnet's ticker goroutine once the loops run (only the
// accept_on_loops engine ticks); Gozer's timers have a ticker of their own
// (tickLoop), so it says so once and then sleeps.
func (h *handler) OnTick() (time.Duration, gnet.Action) {
	if le := h.srv.loopEng; le != nil {
		le.bootOnce.Do(func() { close(le.booted) })
	}
	return time.Hour, gnet.None
}

// acceptedOnLoop admits a client connection a loop just accepted, as
// acceptLoop admits one from its listener: it returns the connection's enroll
// context (its peer, or a tlsStart on the HTTPS listener) or the answer to
// refuse it with (nil for a silent close). The connection's loop.
func (s *Server) acceptedOnLoop(c gnet.Conn) (ctx any, answer []byte, ok bool) {
	le := s.loopEng
	secure := false
	if ta, isTCP := c.LocalAddr().(*net.TCPAddr); isTCP && le.https != nil {
		secure = sameListener(ta, le.https)
	}
	if fd := c.Fd(); fd >= le.fdCeiling {
		r := &refusal{cause: filters.LocalMaxConnections, msg: "too close to the open-file limit", limit: "open_files", value: le.fdCeiling}
		s.shared.RefusedMax.Add(1)
		s.logRefusal(c.RemoteAddr().String(), r)
		return nil, s.refusalAnswer(r), false
	}
	a := loop.AddrOf(c.RemoteAddr())
	peer, r := s.admit(a, secure || !s.cfg.Listeners.Proxy.ProxyProtocol)
	if r != nil {
		s.logRefusal(refusalClient(r, a, c.RemoteAddr()), r)
		if r.silent {
			return nil, nil, false
		}
		return nil, s.refusalAnswer(r), false
	}
	if n := s.shared.Snapshot().Config.Server.SocketSendBuffer; n > 0 {
		_ = unix.SetsockoptInt(c.Fd(), unix.SOL_SOCKET, unix.SO_SNDBUF, int(n))
	}
	if secure {
		return &tlsStart{peer: peer}, nil, true
	}
	return peer, nil, true
}

// sameListener reports whether a connection's local address (gnet gives the
// address its listener was bound to, as resolved from the configuration)
// is the HTTPS listener's: port and IP both, since proxy 10.0.0.1:8443 and
// HTTPS 10.0.0.2:8443 may share a port. No IP and an unspecified one
// (":8443", "0.0.0.0:8443") are the same listener.
func sameListener(a, https *net.TCPAddr) bool {
	if a.Port != https.Port {
		return false
	}
	anyA, anyH := len(a.IP) == 0 || a.IP.IsUnspecified(), len(https.IP) == 0 || https.IP.IsUnspecified()
	if anyA || anyH {
		return anyA && anyH
	}
	return a.IP.Equal(https.IP)
}

// stopLoopAccepting stops every loop's listening sockets (drain), on each
// loop's goroutine, and waits for them until ctx ends (Shutdown's drain
// deadline): a loop stuck in a callback must not hold the drain past it.
func (s *Server) stopLoopAccepting(ctx context.Context) {
	lns, err := loop.ListeningOf(s.loopEng.eng)
	if err != nil {
		s.log.Error().Err(err).Msg("drain: cannot stop the loops' listeners; new connections are served with Connection: close")
		return
	}
	if !loop.StopListening(ctx, lns, func(err error) {
		s.log.Error().Err(err).Msg("drain: a loop's listener goes on accepting")
	}) {
		s.log.Error().Msg("drain: a loop did not stop its listeners before the drain deadline")
	}
}

// stopLoopEngine stops the loops (closing every connection and listener) and
// waits for gnet.Rotate to return.
func (s *Server) stopLoopEngine() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Engine.Stop polls every 500 ms; Rotate's return says when it is done
	_ = s.loopEng.eng.Stop(ctx)
	return <-s.loopEng.done
}

// acceptLoop hands each accepted connection to an event loop
// (server.accept_on_loops off). Accepting outside gnet keeps the listener
// ours: Shutdown can close it (new clients are refused at once while the loops
// go on serving), and a full gateway can answer 503 before the connection ever
// costs a loop anything; it costs more CPU per connection than accepting on
// the loops (accept.go).
func (s *Server) acceptLoop(ln net.Listener, secure bool) {
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
		// Connection protection (deny list, new connections per second per
		// client) and the per-IP cap on the socket's peer. Behind a PROXY
		// protocol balancer that is the balancer: the loop applies them once
		// the header named the client (http1.Conn.admitClient).
		a := loop.AddrOf(c.RemoteAddr())
		peer, r := s.admit(a, secure || !s.cfg.Listeners.Proxy.ProxyProtocol) // proxy_protocol is the plain listener's
		if r != nil {
			s.refuse(c, a, r)
			continue
		}
		cfg := &s.shared.Snapshot().Config.Server
		if n := cfg.SocketSendBuffer; n > 0 {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetWriteBuffer(int(n))
			}
		}
		var ctx any = peer
		if secure {
			ctx = &tlsStart{peer: peer}
		}
		if _, err := s.engine.EnrollContext(c, ctx); err != nil {
			s.shared.Clients.Add(-1)
			s.shared.Peers.Close(peer)
			s.log.Error().Err(err).Msg("cannot hand connection to an event loop")
		}
	}
}

// refuse answers a connection admit refused (unless the refusal is silent),
// closes it and logs it. The acceptor's goroutine.
func (s *Server) refuse(c net.Conn, a netip.Addr, r *refusal) {
	if !r.silent {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(s.refusalAnswer(r))
	}
	_ = c.Close()
	s.logRefusal(refusalClient(r, a, c.RemoteAddr()), r)
}
