package loop

// BufPool is a loop's free list of same-sized byte buffers: a connection takes
// one while it has bytes in it and gives it back when it is empty again, so an
// idle connection holds none. Loop goroutine only.
type BufPool struct {
	size, keep int
	free       [][]byte
}

// NewBufPool keeps at most keep free buffers of size bytes.
func NewBufPool(size, keep int) BufPool { return BufPool{size: size, keep: keep} }

// Get returns an empty buffer of the pool's size.
func (p *BufPool) Get() []byte {
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		return b
	}
	return make([]byte, 0, p.size)
}

// Put gives b back; a buffer that grew past the pool's size is left to the
// garbage collector, as are those past keep.
func (p *BufPool) Put(b []byte) {
	if cap(b) != p.size || len(p.free) >= p.keep {
		return
	}
	p.free = append(p.free, b[:0])
}

// Size is the size of the pool's buffers.
func (p *BufPool) Size() int { return p.size }
