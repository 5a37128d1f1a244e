// Package loop holds what one gnet event loop gives every connection it owns,
// whatever the connection's kind (an HTTP/1.1 client, a push connection, an
// origin connection): the clock, the timers, backpressure, request ids, a
// random source, scratch buffers, the access-log writer, and the
// configuration snapshot the loop serves with; and, for drain, its listening
// sockets when it accepts (ListeningOf).
//
// gnet v2.10 lacks three things Gozer needs, so this package reaches into its
// unexported fields by reflection, each place guarded by a test that fails if
// a gnet upgrade moves them: the loop's epoll fd (EpollFD, TestLoopEpollFD),
// a connection's addresses (CompactAddrs, TestCompactAddrs) and the engine's
// loops and listeners (ListeningOf, TestLoopListeners). It also lacks a way to
// run work after the loop's next round of I/O; Turn builds one from a socket
// pair the loop polls (turns.go, TestTurnLetsIOIn).
//
// Concurrency: a Loop belongs to its event loop's goroutine; every method
// runs there unless its comment says otherwise. Other goroutines reach a loop
// only through Execute. Shared is the node-wide part every loop reads; its
// fields are safe for any goroutine.
package loop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"gozer/gateway/faults"
	"net"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"

	"gozer/filters"
	"gozer/filters/cors"
	"gozer/gateway/origin"
	"gozer/gateway/peers"
	"gozer/gateway/ratelimit"
	"gozer/gateway/telemetry"
)

// Shared is what every loop of one gateway shares: the configuration snapshot
// in service, the process log, the access log, the writable watcher and the
// node-wide connection counts. Build it once (NewShared); any goroutine.
type Shared struct {
	snap    atomic.Pointer[Snapshot]
	Log     zerolog.Logger
	Access  *telemetry.AccessLog
	Watcher *Watcher
	// Peers counts connections and requests per client address.
	Peers *peers.Table
	// Sampled logs what floods bring (refusals, slow clients closed): once per
	// reason and 10 s.
	Sampled *telemetry.Sampled

	// Clients counts the client connections open (HTTP and push); Closed the
	// ones closed since start (a signal for the memory reclaimer).
	Clients atomic.Int64
	Closed  atomic.Int64
	// Draining is set once a drain began: new connections close after their
	// first answer.
	Draining atomic.Bool

	// Buffered is what the client connections hold in their send buffers
	// (bytes gnet could not write yet); Budget is server.max_buffered_total.
	// Over it, responses pause their origins at a lower mark (SendAllowance).
	Buffered atomic.Int64
	Budget   int64
	// Parked counts the origin connections paused behind a client that reads
	// slower than the origin sends.
	Parked atomic.Int64
	// RefusedMax counts connections refused over server.max_connections;
	// ProxyRefused those closed for a missing or malformed PROXY header.
	RefusedMax   atomic.Int64
	ProxyRefused atomic.Int64
	// FDCeiling, when not 0, is the descriptor number from which a new socket
	// is closed at once, an origin socket before it connects (server/accept.go,
	// "The open-file limit"; originconn's dialer Control): set before
	// the loops start with accept_on_loops, where an accept4 that meets
	// EMFILE stops every loop. OriginOpenFiles counts the origin connections
	// (and side calls) failed by it.
	FDCeiling       int
	OriginOpenFiles atomic.Int64
	// AdminFDCeiling, set with FDCeiling, is the descriptor number from which
	// the admin listener closes a connection it accepted (gateway/admin,
	// accept.go): half-way from FDCeiling to the open-file limit, so that
	// the admin side (its connections, hijacked or not, and the push API's
	// forwards) keeps the other half of the reserve free for the loops'
	// accept4. AdminOpenFiles counts what it closed and refused.
	AdminFDCeiling int
	AdminOpenFiles atomic.Int64
	// InterimForwarded counts the origins' interim answers (1xx but 100 and
	// 101: 103 Early Hints) passed to clients; InterimDropped those not
	// passed for the client's sake: over the cap per request, or toward a
	// client holding its allowance unread (gateway/exchange, interim.go).
	InterimForwarded atomic.Int64
	InterimDropped   atomic.Int64
	// CORS counts preflights answered and origins refused (filters.CORS).
	CORS cors.Stats
	// H2 counts HTTP/2 connections, streams and what ended them (gateway/http2).
	H2 telemetry.H2Stats

	// Limits are the node's rate limits, new-connection rates and deny list
	// (gateway/ratelimit); built once (nil: none), the rules follow the
	// snapshot. Set before the loops start.
	Limits *ratelimit.Node

	// Metrics are the per-request metrics (GET /metrics); nil when
	// listeners.admin.metrics is off, and then loops do not time their
	// callbacks either (Busy).
	Metrics *telemetry.Metrics

	// Tunnels counts the websocket tunnels per origin (gateway/tunnel).
	Tunnels *telemetry.Tunnels

	// Faults is the fault injection set through the admin API and the
	// counts of injected failures (gateway/faults); the config's rules are
	// the Snapshot's.
	Faults *faults.Live
}

// pressureAllowance is the send allowance of every response while the node
// holds more than its budget: the connections holding the most are paused
// first (their buffers then only shrink), those holding little go on.
const pressureAllowance = 16 << 10

// SendAllowance is how much response a client connection may hold before its
// origin's reads pause: perConn (server.max_buffered_per_conn), lowered while
// the node is over its budget. Any goroutine.
func (s *Shared) SendAllowance(perConn int) int {
	if s.Budget > 0 && s.Buffered.Load() > s.Budget {
		return min(perConn, pressureAllowance)
	}
	return perConn
}

// Held is what one client connection counts in Shared.Buffered: the bytes
// gnet could not write to it yet. Its connection's loop goroutine.
type Held int32

// Account sets h to what c holds now (nothing once closed) and adds the
// difference to s.Buffered. A connection calls it after each write and each
// wake-up with bytes pending, so the count is at most one wake-up stale;
// while the client takes everything at once it costs a compare, no atomic add.
func (h *Held) Account(s *Shared, c gnet.Conn, closed bool) {
	n := Held(0)
	if !closed {
		n = Held(min(c.OutboundBuffered(), 1<<30))
	}
	if d := n - *h; d != 0 {
		s.Buffered.Add(int64(d))
		*h = n
	}
}

// PauseAt is how much a client connection may hold after a relay of
// response before its origin's reads pause: allowance less one read of the
// origin (ReadBufferCap), so that the read that comes in before the pause
// takes effect keeps it within allowance. With the default allowance (64 KiB)
// that is 0: a slow reader holds at most one read.
func PauseAt(allowance int) int { return max(0, allowance-ReadBufferCap) }

// ResumeAt is the mark the client's send buffer must drain to before its
// origin is read again.
func ResumeAt(allowance int) int { return min(PauseAt(allowance), allowance/2) }

// ReadBufferCap is the most one read of a connection brings (gnet's read
// buffer, which the server sets to it).
const ReadBufferCap = 64 << 10

// NewShared returns the shared part serving snap.
func NewShared(snap *Snapshot, log zerolog.Logger, access *telemetry.AccessLog, w *Watcher) *Shared {
	s := &Shared{Log: log, Access: access, Watcher: w, Peers: peers.New(0, 0), Sampled: telemetry.NewSampled(log, 10*time.Second), Faults: faults.NewLive(), Tunnels: &telemetry.Tunnels{}}
	if c := snap.Config; c != nil {
		s.Peers.SetLimits(c.Server.MaxConnectionsPerIP, c.Server.MaxRequestsPerIP)
	}
	s.snap.Store(snap)
	return s
}

// Snapshot is the configuration in service. Any goroutine.
func (s *Shared) Snapshot() *Snapshot { return s.snap.Load() }

// Swap puts snap in service (a configuration reload): requests that start
// from now on see it, those in flight keep theirs. Any goroutine.
func (s *Shared) Swap(snap *Snapshot) {
	if c := snap.Config; c != nil {
		s.Peers.SetLimits(c.Server.MaxConnectionsPerIP, c.Server.MaxRequestsPerIP)
		if s.Limits != nil {
			s.Limits.Deny.SetConfigured(c.Protect.DenyPrefixes(), c.Protect.MaxDenied)
		}
	}
	s.snap.Store(snap)
}

// ClientClosed counts a client connection that ended. Any goroutine.
func (s *Shared) ClientClosed() {
	s.Clients.Add(-1)
	s.Closed.Add(1)
}

// Loop is the state one gnet event loop owns. Connection kinds keep a pointer
// to it and hook their per-loop work into it (OnTick, OnCallbackEnd, OnDrain).
type Loop struct {
	EL     gnet.EventLoop
	Shared *Shared
	// Log is this loop's access-log writer.
	Log *telemetry.LoopWriter
	// Rand is this loop's random source (the balancer's choices, dithers).
	Rand *origin.Rand

	// Scratch buffers for what is written in one go; valid until the callback
	// that filled them returns.
	Buf      []byte
	Iov      [][]byte
	ChunkHdr [24]byte
	// TLSPlain holds the plaintext buffers of TLS connections with bytes their
	// kind has not read; TLSScratch gathers a Writev's pieces into one record
	// (gateway/tlsconn).
	TLSPlain   BufPool
	TLSScratch []byte

	epfd      int      // the loop's epoll instance, for pausing reads (flow.go)
	clock     clock    // the loop's time as of the current event (clock.go)
	idPrefix  [16]byte // random per loop: request ids are unique across loops and restarts
	idSeq     uint64
	localAddr *net.TCPAddr // shared by the loop's accepted connections (CompactAddrs)
	addrWarn  bool

	depth int // callbacks in progress (they nest: Enter, Leave)
	// Busy time (metrics on): when the outermost callback began, and the
	// callbacks' total so far, written by the loop, read by any goroutine.
	timeBusy bool
	entered  int64 // Mono
	yielded  int64 // Mono of the last yield to Go's scheduler (yield.go)
	busy     atomic.Int64
	later    []Task
	last     []Task // LaterLast's, run from lastAt on
	lastAt   int
	turns    turns // turns.go
	tickTask gnet.RunnableFunc
	ticks    []func(now int64)
	ends     []func()
	drains   []func(now, till int64)
}

// New returns the state of event loop el, whose epoll instance is epfd (-1:
// reads cannot be paused). Call it on el's goroutine.
func New(el gnet.EventLoop, epfd int, s *Shared) *Loop {
	l := &Loop{
		EL: el, Shared: s, epfd: epfd,
		Log: s.Access.NewLoopWriter(),
		Buf: make([]byte, 0, 64<<10),
		Iov: make([][]byte, 0, 3),

		// As large as one gnet read, so one fill takes all a read brought.
		TLSPlain: NewBufPool(ReadBufferCap, 16),
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	hex.Encode(l.idPrefix[:], b[:])
	l.Rand = origin.NewRand(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24 | 1)
	l.tickTask = func(context.Context) error { l.Tick(); return nil }
	l.timeBusy = s.Metrics != nil
	l.Clock()
	return l
}

// Busy is the time the loop spent in its callbacks since it began (zero
// while metrics are off), estimated from a random sample of them
// (BusySample): its busy share is the rate at which this grows. Any
// goroutine.
func (l *Loop) Busy() time.Duration { return time.Duration(l.busy.Load()) }

// Snapshot is the configuration in service now. A request keeps the one it
// started with.
func (l *Loop) Snapshot() *Snapshot { return l.Shared.snap.Load() }

// NextRequestID appends a fresh 32-hex-digit request id to dst.
func (l *Loop) NextRequestID(dst []byte) []byte {
	l.idSeq++
	var seq [8]byte
	for i := 7; i >= 0; i-- {
		seq[i] = byte(l.idSeq >> (8 * (7 - i)))
	}
	dst = append(dst, l.idPrefix[:]...)
	return hex.AppendEncode(dst, seq[:])
}

// SetIDPrefix fixes the random part of the request ids (tests).
func (l *Loop) SetIDPrefix(p [16]byte) { l.idPrefix = p }

// OnTick adds fn to what the loop's tick runs (timers, pool eviction).
func (l *Loop) OnTick(fn func(now int64)) { l.ticks = append(l.ticks, fn) }

// OnCallbackEnd adds fn to what runs when every (outermost) callback of the
// loop returns (recycling what the callback retired).
func (l *Loop) OnCallbackEnd(fn func()) { l.ends = append(l.ends, fn) }

// OnDrain adds fn to what a drain runs: now, and the time by which spread-out
// work (push go-aways) should be done.
func (l *Loop) OnDrain(fn func(now, till int64)) { l.drains = append(l.drains, fn) }

// Enter starts a callback on the loop: the clock is refreshed. Every Enter
// needs its Leave. Callbacks nest (gnet calls OnClose from inside a Write that
// failed, on the same goroutine): only the outermost Leave runs the
// end-of-callback hooks, so nothing is recycled while a caller up the stack
// may still look at it.
func (l *Loop) Enter() int64 {
	l.depth++
	now := l.Clock()
	if l.depth == 1 {
		l.entered = l.clock.mono
	}
	return now
}

// Leave ends a callback begun with Enter; the outermost runs the tasks
// queued with Later and LaterLast, then the end-of-callback hooks.
func (l *Loop) Leave() {
	if l.depth--; l.depth > 0 {
		return
	}
	// Later tasks run as part of this callback (depth 1): a callback they
	// cause (a failed write's OnClose) nests instead of recycling under them.
	// LaterLast tasks run one by one once no Later task waits; what one
	// queues runs before the next.
	for {
		for i := 0; i < len(l.later); i++ {
			l.depth = 1
			t := l.later[i]
			l.later[i] = nil
			t.Run()
		}
		l.later = l.later[:0]
		if l.lastAt == len(l.last) {
			break
		}
		l.depth = 1
		t := l.last[l.lastAt]
		l.last[l.lastAt] = nil
		l.lastAt++
		t.Run()
	}
	l.last, l.lastAt = l.last[:0], 0
	l.depth = 0
	for _, fn := range l.ends {
		fn()
	}
	if l.timeBusy && l.Rand.Uint32()%BusySample == 0 {
		// One writer: a load and a store, no locked add.
		l.busy.Store(l.busy.Load() + BusySample*(filters.Mono()-l.entered))
	}
	l.maybeYield()
}

// BusySample: one outermost callback in BusySample, chosen at random, is
// timed for the busy share, and counts BusySample times (an unbiased
// estimate). Reading the clock costs ~50 ns here (kvm-clock; the monotonic
// clock only, as Enter's: clock.go); a keep-alive request takes about two
// callbacks, so timing every one would cost ~100 ns of CPU per request, a
// third of the metrics' budget.
const BusySample = 8

// Task is work queued with Later.
type Task interface{ Run() }

// Later runs t at the end of the current outermost callback, after every
// caller up the stack has returned, before anything retired is recycled; a
// task may queue more. It is how a completion (a side call's answer) reaches
// the code waiting for it without re-entering the connection callback that
// produced it. Loop goroutine, inside a callback (Enter, Leave).
func (l *Loop) Later(t Task) { l.later = append(l.later, t) }

// LaterLast runs t at the end of the current outermost callback, after the
// tasks queued with Later, those they queue included: what a callback's
// tasks gathered (a pipelined connection's answers) goes out once. Loop
// goroutine, inside a callback.
func (l *Loop) LaterLast(t Task) { l.last = append(l.last, t) }

// Tick runs the tick hooks and flushes the access log, as a callback.
func (l *Loop) Tick() {
	now := l.Enter()
	for _, fn := range l.ticks {
		fn(now)
	}
	l.Log.Flush()
	l.Leave()
}

// TickTask is Tick as a task for Execute, made once.
func (l *Loop) TickTask() gnet.RunnableFunc { return l.tickTask }

// Drain starts the graceful shutdown on this loop.
func (l *Loop) Drain(till int64) {
	now := l.Enter()
	for _, fn := range l.drains {
		fn(now, till)
	}
	l.Leave()
}

// Execute runs fn on the loop's goroutine as a callback (Enter, Leave). Any
// goroutine; false when the loop is gone.
func (l *Loop) Execute(fn func()) bool {
	err := l.EL.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		l.Enter()
		fn()
		l.Leave()
		return nil
	}))
	return err == nil
}

// Accepted prepares an accepted connection: its addresses are made compact
// (CompactAddrs) and it is counted. Call it in OnOpen.
func (l *Loop) Accepted(c gnet.Conn) {
	if err := CompactAddrs(c, &l.localAddr); err != nil && !l.addrWarn {
		l.addrWarn = true
		l.Shared.Log.Warn().Err(err).Msg("connections keep gnet's addresses (about 130 bytes more each)")
	}
}

// CloseConn closes c now (gnet's OnClose runs before it returns). A transport
// in front of the socket (gateway/tlsconn) first says goodbye in its own
// protocol (close_notify). Loop goroutine of c.
func (l *Loop) CloseConn(c gnet.Conn) error {
	if s, ok := c.(interface{ CloseStream() }); ok {
		s.CloseStream() // a stream of a multiplexed connection (an HTTP/2 push stream): the stream ends, not the socket
		return nil
	}
	if t, ok := c.(interface{ CloseNotify() }); ok {
		t.CloseNotify()
	}
	return l.EL.Close(Raw(c))
}
