package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"gozer/gateway/push"
)

// The poller holds every websocket connection on raw non-blocking sockets in one epoll
// set, owned by one goroutine: a connection costs the client a 32-byte slot and a socket,
// not a goroutine with its stack and a bufio reader, so 100,000 of them fit in a few MB
// and one core. The same goroutine opens the connections (at a bounded rate and with a
// bounded number of handshakes in flight), so no socket is ever touched by two goroutines.

const (
	stConnecting uint8 = iota + 1 // connect() in progress: waiting for EPOLLOUT
	stHandshake                   // upgrade request sent: waiting for the 101
	stOpen                        // websocket open: frames flow
	stClosed                      // failed or closed by the server
)

// The fixed handshake key and its RFC 6455 answer: the server must echo the accept value,
// which proves it ran the websocket handshake and is not some other 101.
const (
	wsKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	wsAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

type wsConn struct {
	fd      int32
	state   uint8
	retries uint8
	pend    []byte // a partial handshake answer or frame; nil almost always
	frag    []byte // a fragmented message being reassembled; nil almost always
}

type pollerConfig struct {
	addr         [4]byte // target IPv4
	port         int
	path         string // e.g. /push/ws
	idPrefix     string
	n            int
	sources      int     // source addresses 127.0.0.2 .. 127.0.0.(1+sources)
	connRate     float64 // new connections per second; 0: as fast as inflight allows
	inflight     int
	handshakeTTL time.Duration
	retries      int
	nice         int // the poller thread's nice value; 0 leaves it
}

// poller is the connection side. Counters are atomics that main reads while it runs;
// what a message carries (latency, broadcast receipt) goes to the sink.
type poller struct {
	cfg   pollerConfig
	ep    int
	conns []wsConn
	start time.Time
	sink  *sink

	dialStart        time.Time // connect pacing counts from here
	opened, inflight int
	started          map[int32]time.Time // handshakes in flight: conn index -> started
	retry            []int32
	lastDeadline     time.Time

	connected    atomic.Int64 // got their 101 and are open now
	everOpen     atomic.Int64 // got their 101 at some point
	failed       atomic.Int64 // gave up on (after retries)
	serverClosed atomic.Int64 // open connections the server closed (EOF, reset or close frame)
	pings        atomic.Int64 // pings answered
	allOpenAt    atomic.Int64 // ns since start when the last connection opened
	stop         atomic.Bool

	errMu    sync.Mutex
	firstErr string
	done     chan struct{}
}

func newPoller(cfg pollerConfig, start time.Time, s *sink) (*poller, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &poller{cfg: cfg, ep: ep, conns: make([]wsConn, cfg.n), start: start, sink: s,
		started: make(map[int32]time.Time, cfg.inflight), done: make(chan struct{})}, nil
}

func (p *poller) now() int64 { return int64(time.Since(p.start)) }

func (p *poller) fail(i int32, what string, err error) {
	p.errMu.Lock()
	if p.firstErr == "" {
		p.firstErr = fmt.Sprintf("%s (id %s%d): %v", what, p.cfg.idPrefix, i, err)
	}
	p.errMu.Unlock()
}

func (p *poller) firstError() string {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.firstErr
}

// run is the poller goroutine: open connections while some are left to open, serve
// events, until stop.
func (p *poller) run() {
	defer close(p.done)
	defer p.closeAll()
	if p.cfg.nice != 0 {
		// The receiving side timestamps each message as it reads it: on a core it shares
		// with the senders, a higher priority lets it run as soon as epoll wakes it rather
		// than after a sender's time slice, which would count as push latency.
		runtime.LockOSThread()
		if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), p.cfg.nice); err != nil {
			logf("setpriority %d for the poller thread: %v (running at the default priority)", p.cfg.nice, err)
		}
	}
	events := make([]unix.EpollEvent, 1024)
	buf := make([]byte, 64<<10)
	p.dialStart = time.Now()
	for !p.stop.Load() {
		// Connection state is the poller's; it holds the sink's lock whenever it changes
		// it, so that main (the sender's choice of targets, the results) sees it whole.
		p.sink.mu.Lock()
		p.openMore()
		p.sink.mu.Unlock()
		timeout := 50
		if p.opened < p.cfg.n || len(p.retry) > 0 {
			timeout = 1 // pace the next connects
		}
		n, err := unix.EpollWait(p.ep, events, timeout)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue // the Go runtime's preemption signals
			}
			p.fail(-1, "epoll_wait", err)
			return
		}
		p.sink.mu.Lock()
		for k := 0; k < n; k++ {
			p.event(int32(events[k].Fd), events[k].Events, buf)
		}
		if len(p.started) > 0 && time.Since(p.lastDeadline) > 100*time.Millisecond {
			p.expireHandshakes()
		}
		p.sink.mu.Unlock()
	}
}

// openMore starts connects up to the rate and the in-flight bound; retries first.
func (p *poller) openMore() {
	allowed := p.cfg.n
	if p.cfg.connRate > 0 {
		// A small burst so that pacing by 1 ms waits does not cap the rate below connRate.
		allowed = min(allowed, int(time.Since(p.dialStart).Seconds()*p.cfg.connRate)+64)
	}
	for p.inflight < p.cfg.inflight && len(p.retry) > 0 {
		i := p.retry[len(p.retry)-1]
		p.retry = p.retry[:len(p.retry)-1]
		p.dial(i)
	}
	for p.inflight < p.cfg.inflight && p.opened < allowed {
		p.dial(int32(p.opened))
		p.opened++
	}
}

func (p *poller) dial(i int32) {
	c := &p.conns[i]
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		p.giveUp(i, "socket", err)
		return
	}
	// Bind to the source address without a port: the port is chosen at connect() by the
	// whole 4-tuple, so each source address gives a full ephemeral range towards the target.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if p.cfg.sources > 0 {
		src := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, byte(2 + int(i)%p.cfg.sources)}}
		if err := unix.Bind(fd, src); err != nil {
			unix.Close(fd)
			p.giveUp(i, "bind", err)
			return
		}
	}
	err = unix.Connect(fd, &unix.SockaddrInet4{Addr: p.cfg.addr, Port: p.cfg.port})
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		p.retryOrGiveUp(i, "connect", err)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLIN | unix.EPOLLRDHUP, Fd: i}
	if err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		p.giveUp(i, "epoll_ctl", err)
		return
	}
	c.fd, c.state, c.pend = int32(fd), stConnecting, nil
	p.inflight++
	p.started[i] = time.Now()
}

func (p *poller) retryOrGiveUp(i int32, what string, err error) {
	c := &p.conns[i]
	if int(c.retries) < p.cfg.retries {
		c.retries++
		p.retry = append(p.retry, i)
		return
	}
	p.giveUp(i, what, err)
}

func (p *poller) giveUp(i int32, what string, err error) {
	p.conns[i].state = stClosed
	p.failed.Add(1)
	p.fail(i, what, err)
}

// endHandshake takes connection i out of the in-flight set; ok: it is open.
func (p *poller) endHandshake(i int32, ok bool) {
	if _, in := p.started[i]; !in {
		return
	}
	delete(p.started, i)
	p.inflight--
	if ok {
		p.connected.Add(1)
		if p.everOpen.Add(1)+p.failed.Load() == int64(p.cfg.n) {
			p.allOpenAt.Store(p.now())
		}
	}
}

// drop closes connection i; a connection that was still opening is retried or failed.
func (p *poller) drop(i int32, what string, err error) {
	c := &p.conns[i]
	if c.state == stClosed {
		return
	}
	unix.Close(int(c.fd))
	c.pend, c.frag = nil, nil
	switch c.state {
	case stOpen:
		c.state = stClosed
		p.connected.Add(-1)
		p.serverClosed.Add(1)
		p.fail(i, what, err)
	case stConnecting:
		c.state = stClosed
		p.endHandshake(i, false)
		p.retryOrGiveUp(i, what, err) // a refused or reset connect may succeed later
	default:
		c.state = stClosed
		p.endHandshake(i, false)
		p.giveUp(i, what, err) // the server answered the upgrade with a no: do not insist
	}
}

func (p *poller) expireHandshakes() {
	p.lastDeadline = time.Now()
	for i, t := range p.started {
		if time.Since(t) > p.cfg.handshakeTTL {
			p.drop(i, "handshake", fmt.Errorf("no answer within %v", p.cfg.handshakeTTL))
		}
	}
}

func (p *poller) event(i int32, ev uint32, buf []byte) {
	c := &p.conns[i]
	switch c.state {
	case stConnecting:
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		if soErr, err := unix.GetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soErr != 0 {
			if err == nil {
				err = unix.Errno(soErr)
			}
			p.drop(i, "connect", err)
			return
		}
		req := fmt.Sprintf("GET %s?id=%s%d HTTP/1.1\r\nHost: %d.%d.%d.%d:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
			p.cfg.path, p.cfg.idPrefix, i, p.cfg.addr[0], p.cfg.addr[1], p.cfg.addr[2], p.cfg.addr[3], p.cfg.port, wsKey)
		// A fresh socket's send buffer always takes a request this small in one write.
		if n, err := unix.Write(int(c.fd), []byte(req)); err != nil || n != len(req) {
			if err == nil {
				err = errors.New("short write")
			}
			p.drop(i, "writing the upgrade request", err)
			return
		}
		c.state = stHandshake
		mod := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: i}
		if err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_MOD, int(c.fd), &mod); err != nil {
			p.drop(i, "epoll_ctl", err)
		}
	case stHandshake, stOpen:
		p.read(i, buf)
	}
}

// read drains what one event has for connection i (level-triggered: what is left makes
// the next epoll_wait return at once, which keeps a chatty connection from starving others).
func (p *poller) read(i int32, buf []byte) {
	c := &p.conns[i]
	for range 4 {
		n, err := unix.Read(int(c.fd), buf)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				return
			}
			p.drop(i, "read", err)
			return
		}
		if n == 0 {
			p.drop(i, "read", errors.New("closed by the server"))
			return
		}
		now := p.now()
		data := buf[:n]
		if len(c.pend) > 0 {
			c.pend = append(c.pend, data...)
			data = c.pend
		}
		rest, ok := p.consume(i, data, now)
		if !ok {
			return
		}
		if len(rest) > 0 {
			c.pend = append(c.pend[:0:0], rest...) // copy: buf is reused
		} else {
			c.pend = nil
		}
		if n < len(buf) {
			return
		}
	}
}

// consume handles the handshake answer and then whole frames; it returns what is left
// (an incomplete head or frame) and false when the connection was dropped.
func (p *poller) consume(i int32, data []byte, now int64) ([]byte, bool) {
	c := &p.conns[i]
	if c.state == stHandshake {
		end := bytes.Index(data, []byte("\r\n\r\n"))
		if end < 0 {
			if len(data) > 8<<10 {
				p.drop(i, "handshake", errors.New("answer head over 8 KiB"))
				return nil, false
			}
			return data, true
		}
		head := data[:end]
		if !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) || !bytes.Contains(head, []byte(wsAccept)) {
			line, _, _ := bytes.Cut(head, []byte("\r\n"))
			p.drop(i, "handshake", fmt.Errorf("answer %q, want 101 with Sec-WebSocket-Accept %s", line, wsAccept))
			return nil, false
		}
		c.state = stOpen
		p.endHandshake(i, true)
		data = data[end+4:]
	}
	for len(data) > 0 {
		fin, op, payload, size := parseFrame(data)
		if size == 0 {
			break
		}
		if size < 0 {
			p.drop(i, "frame", errors.New("frame longer than 16 MiB"))
			return nil, false
		}
		data = data[size:]
		switch push.Opcode(op) {
		case push.OpText, push.OpBinary, push.OpContinuation:
			if !fin || len(c.frag) > 0 {
				c.frag = append(c.frag, payload...)
				if !fin {
					continue
				}
				payload, c.frag = c.frag, nil
			}
			p.sink.message(i, payload, now)
		case push.OpPing:
			pong := push.AppendMaskedFrame(nil, push.OpPong, true, [4]byte{1, 2, 3, 4}, payload)
			_, _ = unix.Write(int(c.fd), pong)
			p.pings.Add(1)
		case push.OpClose:
			code := -1
			if len(payload) >= 2 {
				code = int(binary.BigEndian.Uint16(payload))
			}
			p.drop(i, "close frame", fmt.Errorf("server sent close %d %q", code, payload[min(2, len(payload)):]))
			return nil, false
		}
	}
	return data, true
}

// parseFrame reads one server frame from b: size 0 means incomplete, -1 too large.
// Server frames are unmasked; a masked one is unmasked in place all the same.
func parseFrame(b []byte) (fin bool, op byte, payload []byte, size int) {
	if len(b) < 2 {
		return false, 0, nil, 0
	}
	fin, op = b[0]&0x80 != 0, b[0]&0x0F
	masked := b[1]&0x80 != 0
	n, h := uint64(b[1]&0x7F), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return false, 0, nil, 0
		}
		n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return false, 0, nil, 0
		}
		n, h = binary.BigEndian.Uint64(b[2:]), 10
	}
	if n > 16<<20 {
		return false, 0, nil, -1
	}
	var mask []byte
	if masked {
		if len(b) < h+4 {
			return false, 0, nil, 0
		}
		mask, h = b[h:h+4], h+4
	}
	if uint64(len(b)-h) < n {
		return false, 0, nil, 0
	}
	payload = b[h : h+int(n)]
	if masked {
		for j := range payload {
			payload[j] ^= mask[j&3]
		}
	}
	return fin, op, payload, h + int(n)
}

// closeAll resets every connection (SO_LINGER 0): a normal close would leave N sockets in
// TIME_WAIT on the client's source addresses for a minute, and the next run's connect()s
// would crawl through them looking for free ports.
func (p *poller) closeAll() {
	for i := range p.conns {
		c := &p.conns[i]
		if c.state == stClosed || c.state == 0 {
			continue
		}
		_ = unix.SetsockoptLinger(int(c.fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		unix.Close(int(c.fd))
		c.state = stClosed
	}
	unix.Close(p.ep)
}
