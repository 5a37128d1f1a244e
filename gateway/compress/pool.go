package compress

// DefaultMaxEncoders is the number of encoders a Pool allows when NewPool is given
// none. A live encoder at level 5 holds 1 to 2 MiB (gzip about 1 MiB, brotli and
// zstd about 2 MiB; the package comment has the figures), so 16 bound compression
// to about 32 MiB per event loop at worst. A response that finds the pool
// exhausted goes out uncompressed, which costs bandwidth, never correctness; the
// Refused count in Stats tells an operator when to raise it.
const DefaultMaxEncoders = 16

// Pool keeps the encoders of one event loop and bounds them. Encoders are costly
// to build (their match tables and windows are the bulk of their memory), so a
// response takes one with Get and gives it back with Put, and the next response of
// the same coding reuses it.
//
// The bound: at most limit encoders (NewPool's argument) exist in a pool at once,
// checked out and idle together, so what a pool holds never exceeds limit times
// the size of its largest encoder, whatever the traffic (encoders it drops are
// garbage until the collector runs). When all of them are checked out, Get returns nil
// and the caller sends that response uncompressed. When the pool is full but some
// encoders are idle, and none of them has the coding asked for, one of them is
// dropped to make room. Trim releases idle encoders after a burst.
//
// Concurrency: a Pool is not safe for concurrent use. Each event loop owns its own
// Pool and calls it (and the encoders it hands out) only from its own goroutine;
// that is what keeps Get and Put free of locks. Another goroutine that wants Stats
// or Trim asks the loop to run them (loop.Execute).
type Pool struct {
	level int
	max   int

	// idle holds the encoders ready for reuse, by coding. They are used last in,
	// first out: the most recently used encoder is the likeliest to be in cache.
	idle     [numEncodings][]*Encoder
	numIdle  int
	numInUse int

	refused uint64
	created uint64
}

// Stats is a snapshot of a Pool's use, for metrics.
type Stats struct {
	InUse   int    // encoders checked out now
	Idle    int    // encoders kept for reuse now
	Refused uint64 // Gets that found the pool exhausted, since the pool was made
	Created uint64 // encoders built, since the pool was made
}

// NewPool returns an empty pool of encoders at the given level, bounded to limit
// encoders. A level out of MinLevel..MaxLevel is clamped into it (0 means
// DefaultLevel): the configuration validates the level, and the data path should
// not fail for it. A limit below 1 means DefaultMaxEncoders.
func NewPool(level int, limit int) *Pool {
	switch {
	case level == 0:
		level = DefaultLevel
	case level < MinLevel:
		level = MinLevel
	case level > MaxLevel:
		level = MaxLevel
	}
	if limit < 1 {
		limit = DefaultMaxEncoders
	}
	return &Pool{level: level, max: limit}
}

// Level returns the level of the pool's encoders.
func (p *Pool) Level() int { return p.level }

// Get returns an encoder for coding e, ready for a new response, or nil when the
// pool is exhausted or e is not a coding Gozer produces. The caller owns the
// encoder until it gives it back with Put, which it must do exactly once, whether
// the response finished or was abandoned.
func (p *Pool) Get(e Encoding) *Encoder {
	if e == None || e >= numEncodings {
		return nil
	}
	if idle := p.idle[e]; len(idle) > 0 {
		enc := idle[len(idle)-1]
		idle[len(idle)-1] = nil
		p.idle[e] = idle[:len(idle)-1]
		p.numIdle--
		return p.checkOut(enc)
	}
	if p.numInUse+p.numIdle >= p.max {
		if p.numIdle == 0 {
			p.refused++
			return nil
		}
		p.dropIdle()
	}
	enc, err := NewEncoder(e, p.level)
	if err != nil {
		// Unreachable: the coding and the level were both checked above. Not
		// compressing is the answer that keeps the response going.
		return nil
	}
	enc.pool = p
	p.created++
	return p.checkOut(enc)
}

func (p *Pool) checkOut(enc *Encoder) *Encoder {
	enc.checkedOut = true
	p.numInUse++
	return enc
}

// dropIdle forgets one idle encoder, from the coding with the most idle ones, so
// the codings in demand keep theirs; the garbage collector takes its memory.
func (p *Pool) dropIdle() {
	most := None
	for e := range p.idle {
		if len(p.idle[e]) > len(p.idle[most]) {
			most = Encoding(e)
		}
	}
	idle := p.idle[most]
	// The oldest (bottom of the stack) goes: it is the coldest.
	copy(idle, idle[1:])
	idle[len(idle)-1] = nil
	p.idle[most] = idle[:len(idle)-1]
	p.numIdle--
}

// Put gives an encoder back to its pool, reset for the next response; the caller
// must not use it, or any slice it returned, afterwards. An encoder may come back
// mid-stream (the client went away): its stream is discarded. Put ignores nil, an
// encoder that is not checked out of this pool (a second Put), and encoders made
// by NewEncoder, so a bookkeeping slip in the caller cannot corrupt the bound.
func (p *Pool) Put(enc *Encoder) {
	if enc == nil || enc.pool != p || !enc.checkedOut {
		return
	}
	enc.checkedOut = false
	p.numInUse--
	enc.Reset()
	p.idle[enc.coding] = append(p.idle[enc.coding], enc)
	p.numIdle++
}

// Trim drops idle encoders until at most keep remain, taking first from the codings
// with the most idle encoders and their least recently used, and returns how many
// it dropped. The server's memory reclaim
// calls it after a burst so that encoders built for the peak do not stay resident.
func (p *Pool) Trim(keep int) int {
	keep = max(keep, 0)
	dropped := 0
	for p.numIdle > keep {
		p.dropIdle()
		dropped++
	}
	return dropped
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{InUse: p.numInUse, Idle: p.numIdle, Refused: p.refused, Created: p.created}
}
