package origin

import "math"

// Pool holds one event loop's connections to one server: how many are open, and the
// idle ones ready for reuse, most recently used last. Reusing the newest connection
// keeps the fewest connections warm and lets the oldest age out.
//
// A Pool belongs to one event loop; use it only on that loop's goroutine.
type Pool[C comparable] struct {
	idle    []idleConn[C]
	open    int
	maxOpen int
	maxIdle int
	retired bool
}

type idleConn[C comparable] struct {
	c     C
	since int64 // unix nanoseconds when it went idle
}

// NewPool returns a pool that allows maxOpen connections, maxIdle of them idle.
func NewPool[C comparable](maxOpen, maxIdle int) *Pool[C] {
	return &Pool[C]{maxOpen: maxOpen, maxIdle: maxIdle}
}

// Get takes the most recently used idle connection.
func (p *Pool[C]) Get() (c C, ok bool) {
	n := len(p.idle)
	if n == 0 {
		return c, false
	}
	c = p.idle[n-1].c
	p.idle[n-1] = idleConn[C]{}
	p.idle = p.idle[:n-1]
	return c, true
}

// Retire marks a pool whose server left: Put refuses from then on.
func (p *Pool[C]) Retire() { p.retired = true }

// Put parks an open connection as idle. It returns false when the pool keeps
// enough idle connections already (or was retired): the caller closes c then.
func (p *Pool[C]) Put(c C, now int64) bool {
	if p.retired || len(p.idle) >= p.maxIdle {
		return false
	}
	p.idle = append(p.idle, idleConn[C]{c, now})
	return true
}

// Remove drops c from the idle list (it was closed by its peer); it reports whether c was idle.
func (p *Pool[C]) Remove(c C) bool {
	for i := range p.idle {
		if p.idle[i].c == c {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = idleConn[C]{}
			p.idle = p.idle[:len(p.idle)-1]
			return true
		}
	}
	return false
}

// EvictIdle removes the connections idle since before cutoff (oldest first) and
// hands each to closeFn.
func (p *Pool[C]) EvictIdle(cutoff int64, closeFn func(C)) {
	n := 0
	for n < len(p.idle) && p.idle[n].since < cutoff {
		n++
	}
	if n == 0 {
		return
	}
	evicted := make([]C, n)
	for i := 0; i < n; i++ {
		evicted[i] = p.idle[i].c
	}
	rest := copy(p.idle, p.idle[n:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	for _, c := range evicted {
		closeFn(c)
	}
}

// Reserve counts a new connection about to be opened; false when the server's
// per-loop connection cap is reached.
func (p *Pool[C]) Reserve() bool {
	if p.open >= p.maxOpen {
		return false
	}
	p.open++
	return true
}

// Release uncounts a connection that closed (or failed to open).
func (p *Pool[C]) Release() {
	if p.open > 0 {
		p.open--
	}
}

// Open is the number of counted connections; Idle the number parked.
func (p *Pool[C]) Open() int { return p.open }

// Idle is the number of idle connections.
func (p *Pool[C]) Idle() int { return len(p.idle) }

// LoopState is one event loop's view of all origins: a pool per server and a
// round-robin cursor per origin, indexed by the origin's slot (Origin.Index).
// Slots of origins added by a reload are made on first use.
type LoopState[C comparable] struct {
	pools  [][]*Pool[C] // [origin.Index][server.Index]
	owners [][]*Server  // the server each pool was made for (PoolOf)
	cursor []uint32
}

// NewLoopState builds the per-loop state for every origin of t.
func NewLoopState[C comparable](t *Table) *LoopState[C] {
	s := &LoopState[C]{}
	s.grow(t.slots)
	for _, o := range t.List {
		s.pools[o.Index] = make([]*Pool[C], len(o.Servers))
		s.owners[o.Index] = make([]*Server, len(o.Servers))
		for _, srv := range o.Servers {
			s.pools[o.Index][srv.Index] = NewPool[C](o.MaxConnsPerServer, o.MaxIdlePerServer)
			s.owners[o.Index][srv.Index] = srv
		}
	}
	return s
}

// PoolOf returns this loop's pool for srv, made on first use, so servers that
// discovery found after the loop started get pools too. Discovery reuses the slot
// (Index) of a server that left the set; when srv is such a newcomer, the departed
// server's pool is returned as stale: the caller closes its idle connections
// (stale.EvictIdle with a cutoff of math.MaxInt64); its busy ones still release
// into it and close. Allocates only when a pool is made.
func (s *LoopState[C]) PoolOf(o *Origin, srv *Server) (p, stale *Pool[C]) {
	if o.Index >= len(s.pools) {
		s.grow(o.Index + 1)
	}
	i := srv.Index
	if i >= len(s.pools[o.Index]) {
		s.pools[o.Index] = append(s.pools[o.Index], make([]*Pool[C], i+1-len(s.pools[o.Index]))...)
		s.owners[o.Index] = append(s.owners[o.Index], make([]*Server, i+1-len(s.owners[o.Index]))...)
	}
	if s.owners[o.Index][i] != srv {
		stale = s.pools[o.Index][i]
		s.pools[o.Index][i] = NewPool[C](o.MaxConnsPerServer, o.MaxIdlePerServer)
		s.owners[o.Index][i] = srv
	}
	return s.pools[o.Index][i], stale
}

// Pool returns the pool of server srv of origin o (nil when none was made).
func (s *LoopState[C]) Pool(o *Origin, srv *Server) *Pool[C] {
	if o.Index >= len(s.pools) || srv.Index >= len(s.pools[o.Index]) {
		return nil
	}
	return s.pools[o.Index][srv.Index]
}

// grow makes room for n origin slots (a reload added origins).
func (s *LoopState[C]) grow(n int) {
	if n <= len(s.pools) {
		return
	}
	s.pools = append(s.pools, make([][]*Pool[C], n-len(s.pools))...)
	s.owners = append(s.owners, make([][]*Server, n-len(s.owners))...)
	s.cursor = append(s.cursor, make([]uint32, n-len(s.cursor))...)
}

// Next picks the next server of o round robin, skipping the servers whose bit is
// set in tried (bit i = Servers[i]), unless every server was tried: then a retry
// goes to the next one in turn anyway (a fresh connection to a server that reset
// a pooled one is still worth a try).
func (s *LoopState[C]) Next(o *Origin, tried uint64) *Server {
	if o.Index >= len(s.cursor) {
		s.grow(o.Index + 1)
	}
	n := uint32(len(o.Servers))
	for i := uint32(0); i < n; i++ {
		s.cursor[o.Index]++
		srv := o.Servers[s.cursor[o.Index]%n]
		if srv.Index >= 64 || tried&(1<<uint(srv.Index)) == 0 {
			return srv
		}
	}
	s.cursor[o.Index]++
	return o.Servers[s.cursor[o.Index]%n]
}

// EachPool calls fn with every pool of this loop of every origin of t and
// the server it was made for (a metrics readout).
func (s *LoopState[C]) EachPool(t *Table, fn func(o *Origin, srv *Server, p *Pool[C])) {
	for _, o := range t.List {
		if o.Index >= len(s.pools) {
			continue
		}
		for i, p := range s.pools[o.Index] {
			if p != nil && s.owners[o.Index][i] != nil {
				fn(o, s.owners[o.Index][i], p)
			}
		}
	}
}

// EvictIdle closes, in every pool, the connections idle since before cutoff.
func (s *LoopState[C]) EvictIdle(t *Table, now int64, closeFn func(C)) {
	for _, o := range t.List {
		if o.Index >= len(s.pools) {
			continue // no request of this loop went to it yet
		}
		cutoff := now - int64(o.IdleTimeout)
		for _, p := range s.pools[o.Index] {
			if p != nil { // a slot PoolOf skipped over
				p.EvictIdle(cutoff, closeFn)
			}
		}
	}
}

// Adopt moves the loop from table prev to t (a reload swapped t in): the
// pools of a removed origin are retired (their idle connections closed
// now, their busy ones when released); those of a changed origin keep their
// connections when ConnsCompatible, minus the servers it no longer has, and
// take its new limits; otherwise they are retired and made anew on first use.
func (s *LoopState[C]) Adopt(prev, t *Table, closeFn func(C)) {
	s.grow(t.slots)
	for _, po := range prev.List {
		o, ok := t.byName[po.Name]
		if ok && o == po {
			continue
		}
		if !ok {
			// Retired pools stay in the slot: a request still in flight there
			// gets one that closes its connection when it is done.
			s.retireSlot(po.Index, false, closeFn)
			continue
		}
		if !ConnsCompatible(po, o) {
			s.retireSlot(po.Index, true, closeFn) // new requests make new pools
			continue
		}
		keep := make(map[*Server]bool)
		if o.Iso != nil {
			for _, srv := range o.Iso.Discovery.Servers().List {
				keep[srv] = true
			}
		}
		for i, p := range s.pools[po.Index] {
			if p == nil {
				continue
			}
			if o.Iso != nil && !keep[s.owners[po.Index][i]] {
				p.retire(closeFn)
				s.pools[po.Index][i], s.owners[po.Index][i] = nil, nil
				continue
			}
			p.setLimits(o.MaxConnsPerServer, o.MaxIdlePerServer, closeFn)
		}
	}
}

// retireSlot retires every pool of one origin slot, and empties the slot
// when empty is true.
func (s *LoopState[C]) retireSlot(slot int, empty bool, closeFn func(C)) {
	if slot >= len(s.pools) {
		return
	}
	for _, p := range s.pools[slot] {
		if p != nil {
			p.retire(closeFn)
		}
	}
	if empty {
		s.pools[slot], s.owners[slot] = nil, nil
	}
}

// retire stops p taking connections back and closes its idle ones.
func (p *Pool[C]) retire(closeFn func(C)) {
	p.Retire()
	p.EvictIdle(math.MaxInt64, closeFn)
}

// setLimits gives p new caps; idle connections over the new maxIdle close
// (the oldest first).
func (p *Pool[C]) setLimits(maxOpen, maxIdle int, closeFn func(C)) {
	p.maxOpen, p.maxIdle = maxOpen, maxIdle
	if extra := len(p.idle) - maxIdle; extra > 0 {
		p.EvictIdle(p.idle[extra-1].since+1, closeFn)
	}
}
