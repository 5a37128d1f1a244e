package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gozer/gateway/origin"
	"gozer/gateway/telemetry"
)

// loop is the state one gnet event loop owns: its connections' timers, its origin
// pools, its access-log buffer and its scratch buffers. Only that loop's goroutine
// touches it (the ticker reaches it through Execute).
type loop struct {
	srv     *Server
	el      gnet.EventLoop
	epfd    int // the loop's epoll instance, for pausing reads (flow.go)
	origins *origin.LoopState[*upstream]
	log     *telemetry.LoopWriter

	clients []*client // open client connections, for timeouts
	push    *pushLoop // push connections

	localAddr  *net.TCPAddr // shared by the loop's connections (compactAddrs)
	addrWarned bool
	ups        []*upstream // connected origin connections, for timeouts

	tickTask gnet.RunnableFunc
	now      int64 // unix nanoseconds, refreshed per event

	idPrefix [16]byte // random per loop: request ids are unique across loops and restarts
	idSeq    uint64

	chain    func() chain // the current filter chain for new requests (nil: no filters)
	rnd      *origin.Rand // the balancer's random choices
	errBody  []byte
	free     []*exchange // recycled exchanges: their buffers stay warm
	dead     []*exchange // finished in this callback; recycled when it returns (reap)
	wbuf     []byte      // coalesces a response head and body pieces into one write
	iov      [][]byte
	chunkHdr [24]byte
	limit    limits
}

// limits are the config values the loop reads per request, copied once.
type limits struct {
	headerTimeout int64
	idleTimeout   int64
	maxBody       int64
	maxBuffered   int
	maxFilterBody int
}

func newLoop(s *Server, el gnet.EventLoop, epfd int) *loop {
	l := &loop{
		srv: s, el: el, epfd: epfd,
		origins: origin.NewLoopState[*upstream](s.origins),
		log:     s.access.NewLoopWriter(),
		wbuf:    make([]byte, 0, 64<<10),
		iov:     make([][]byte, 0, 3),
		limit: limits{
			headerTimeout: int64(s.cfg.Server.HeaderReadTimeout),
			idleTimeout:   int64(s.cfg.Server.IdleTimeout),
			maxBody:       int64(s.cfg.Server.MaxRequestBody),
			maxBuffered:   int(s.cfg.Server.MaxBufferedPerConn),
			maxFilterBody: int(s.cfg.Filters.MaxBodyBytes),
		},
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	hex.Encode(l.idPrefix[:], b[:])
	l.rnd = origin.NewRand(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24 | 1)
	l.tickTask = func(context.Context) error { l.tick(); return nil }
	l.push = newPushLoop(l)
	if s.filters != nil {
		lr := s.filters.NewLoop()
		l.chain = func() chain {
			if c := lr.Chain(); c.Len() > 0 {
				return c
			}
			return nil // no filters loaded: skip the chain entirely
		}
	}
	return l
}

// nextRequestID writes a fresh 32-hex-digit request id into dst.
func (l *loop) nextRequestID(dst []byte) []byte {
	l.idSeq++
	var seq [8]byte
	for i := 7; i >= 0; i-- {
		seq[i] = byte(l.idSeq >> (8 * (7 - i)))
	}
	dst = append(dst, l.idPrefix[:]...)
	return hex.AppendEncode(dst, seq[:])
}

func (l *loop) clock() int64 {
	l.now = time.Now().UnixNano()
	return l.now
}

func (l *loop) addClient(c *client) {
	c.slot = len(l.clients)
	l.clients = append(l.clients, c)
}

func (l *loop) removeClient(c *client) {
	i := c.slot
	if i < 0 || i >= len(l.clients) || l.clients[i] != c {
		return
	}
	last := len(l.clients) - 1
	l.clients[i] = l.clients[last]
	l.clients[i].slot = i
	l.clients[last] = nil
	l.clients = l.clients[:last]
	c.slot = -1
}

func (l *loop) addUpstream(u *upstream) {
	u.slot = len(l.ups)
	l.ups = append(l.ups, u)
}

func (l *loop) removeUpstream(u *upstream) {
	i := u.slot
	if i < 0 || i >= len(l.ups) || l.ups[i] != u {
		return
	}
	last := len(l.ups) - 1
	l.ups[i] = l.ups[last]
	l.ups[i].slot = i
	l.ups[last] = nil
	l.ups = l.ups[:last]
	u.slot = -1
}

// tick fires expired deadlines. Lists are walked backwards so that a handler that
// closes connections (and so swaps list entries) never makes the walk skip one.
func (l *loop) tick() {
	now := l.clock()
	for i := len(l.clients) - 1; i >= 0; i-- {
		if i >= len(l.clients) {
			continue
		}
		if c := l.clients[i]; c.deadline > 0 && now >= c.deadline {
			c.onDeadline()
		}
	}
	for i := len(l.ups) - 1; i >= 0; i-- {
		if i >= len(l.ups) {
			continue
		}
		if u := l.ups[i]; u.deadline > 0 && now >= u.deadline {
			u.onDeadline()
		}
	}
	l.push.tick(now)
	l.origins.EvictIdle(l.srv.origins, now, func(u *upstream) { u.close() })
	l.log.Flush()
	l.reap()
}

// drain starts the graceful shutdown on this loop: idle keep-alive connections close
// now; busy ones close once their current response is out.
func (l *loop) drain() {
	for i := len(l.clients) - 1; i >= 0; i-- {
		if i >= len(l.clients) {
			continue
		}
		c := l.clients[i]
		c.drainClose = true
		if c.state == stHead && c.headStart == 0 && c.c.InboundBuffered() == 0 {
			c.close()
		}
	}
	l.push.drain(l.now, l.now+drainSpread(l.srv.cfg.Server.DrainTimeout))
	l.reap()
}

// retire queues a finished exchange for recycling. Recycling waits for reap, at the
// end of the gnet callback, because callers further up the stack may still look at
// the exchange (they find it finished, never reused by another request).
func (l *loop) retire(ex *exchange) {
	l.dead = append(l.dead, ex)
}

// reap recycles the exchanges retired during this callback.
func (l *loop) reap() {
	for i, ex := range l.dead {
		l.putExchange(ex)
		l.dead[i] = nil
	}
	l.dead = l.dead[:0]
}

// getExchange takes a recycled exchange or makes one.
func (l *loop) getExchange() *exchange {
	if n := len(l.free); n > 0 {
		ex := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		return ex
	}
	return &exchange{l: l}
}

// keepBuf is the largest buffer a recycled exchange keeps: a request that
// needed a bigger one (a body kept for replay or for a filter, a long head)
// does not pin it for the requests after it.
const keepBuf = 16 << 10

// putExchange recycles ex; a loop keeps as many as it ever had in flight at once,
// up to a bound, so a burst does not pin its memory forever.
func (l *loop) putExchange(ex *exchange) {
	ex.reset()
	if len(l.free) >= 1024 {
		return
	}
	ex.fwd = trimBuf(ex.fwd)
	ex.replay = trimBuf(ex.replay)
	ex.fc.Body = trimBuf(ex.fc.Body)
	ex.fc.RespBody = trimBuf(ex.fc.RespBody)
	ex.fc.RespondBody = trimBuf(ex.fc.RespondBody)
	l.free = append(l.free, ex)
}

// trimBuf drops b when it grew past keepBuf.
func trimBuf(b []byte) []byte {
	if cap(b) > keepBuf {
		return nil
	}
	return b
}
