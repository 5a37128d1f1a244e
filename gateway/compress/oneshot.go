package compress

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
)

// The one-shot gzip encoder: a whole small body, known before its first byte is
// compressed, becomes one gzip member with one deflate block.
//
// Why a second gzip encoder: klauspost's streaming encoder pays a fixed cost per
// stream that a small body cannot amortize. Its level 5 keeps 384 KiB of match
// tables, which a 2 KiB body touches at random, and builds its Huffman tables at
// about 5 µs a block (the CPU profile of bench/compress.sh); with the response
// head's re-parse, that made Gozer's compression of the 1.9 KiB JSON of
// bench/compress.sh cost 1.5 times nginx's per compressed KiB (bench/README.md,
// "Compression", with the command). nginx does what this file
// does: it sizes zlib's window and hash for a known Content-Length (a 2 KiB body
// gets a 4 KiB window and a 4096-entry hash), and zlib's level 5 is lazy
// matching over hash chains. Here the hash table is sized for the body too (2048
// entries of 16-bit positions, 4 KiB, for 2 KiB), the matching is
// zlib's (deflate_slow from level 4 up, deflate_fast below) with zlib's
// parameters for the level, and the Huffman tables come from huffman.go.
//
// One difference from zlib: the chains hash 4 bytes, not 3. On web text, a
// 3-byte hash fills the chains with candidates that cannot beat a 3-byte match,
// and the chain limit of the level runs out on them: hashing 4 bytes finds
// longer matches within the same limits, for less work per position (items.json
// comes out at 841 bytes, zlib -5 at 843: the work checks of bench/compress.sh).
// The output is what the level promises: within 3% of klauspost's stream at every
// level on JSON and HTML from 1 to 8 KiB, and mostly smaller (TestOneShotRatio).
//
// Longer bodies stream through klauspost, whose per-byte speed is the better
// one; Encoder decides (see oneShotMax).

const (
	// oneShotMax is the longest body the one-shot encoder takes. Below it, a
	// body is compressed faster by oneShot than by klauspost's stream at the
	// same level, fixed costs included; at 8 KiB the two cost about the same
	// (BenchmarkOneShot), past it klauspost's faster matching wins. It also
	// keeps positions and distances in 16 bits and the body in one block.
	oneShotMax = 8 << 10

	minMatch    = 3
	maxMatch    = 258
	tooFar      = 4096 // zlib's TOO_FAR: a 3-byte match this far costs more than its literals
	maxHashBits = 13
)

// matchParams is zlib's configuration_table row for a level: chains searched
// shorter once a match is good, no lazy search after a match this long, a match
// this long ends the search, the longest chain walked; greedy is deflate_fast
// (levels 1 to 3), where lazy is also the longest match whose positions are
// hashed.
type matchParams struct {
	good, lazy, nice, chain int
	greedy                  bool
}

var oneShotParams = [MaxLevel + 1]matchParams{
	1: {4, 4, 8, 4, true},
	2: {4, 5, 16, 8, true},
	3: {4, 6, 32, 32, true},
	4: {4, 4, 16, 16, false},
	5: {8, 16, 32, 32, false},
	6: {8, 16, 128, 128, false},
	7: {8, 32, 128, 256, false},
	8: {32, 128, 258, 1024, false},
	9: {32, 258, 258, 4096, false},
}

// oneShot holds the working memory of the one-shot encoder, about 70 KiB,
// reused from body to body. It belongs to one Encoder, which is used by one
// goroutine at a time (its event loop's); it is not safe for concurrent use.
type oneShot struct {
	head  [1 << maxHashBits]uint16 // hash → last position with that hash, plus one (0: none)
	prev  [oneShotMax]uint16       // position → the previous one with its hash, plus one
	hbits uint                     // the hash's size for the current body

	// tokens: a literal byte (< 256), or matchFlag | (length-3)<<16 | (distance-1).
	tokens   []uint32
	litFreq  [numLitLen]uint32
	distFreq [numDist]uint32

	lit, dist, cl huffCode
	clFreq        [numCodeLen]uint32
	clSyms        []uint16 // the code length sequence: symbol | extra bits' value<<8
	lens          [numLitLen + numDist]uint8
	scratch       huffScratch
	w             bitWriter
}

const matchFlag = 1 << 31

func newOneShot() *oneShot {
	return &oneShot{
		tokens: make([]uint32, 0, 4<<10),
		lit:    newHuffCode(numLitLen),
		dist:   newHuffCode(numDist),
		cl:     newHuffCode(numCodeLen),
		clSyms: make([]uint16, 0, numLitLen+numDist),
	}
}

// appendGzip appends body as a gzip member compressed at level to dst, and
// returns the extended slice. The header is the one the streaming encoder
// writes: no name, MTIME 0, XFL as klauspost sets it, OS unknown. body must not
// be longer than oneShotMax: the chains index positions in that many entries.
func (z *oneShot) appendGzip(dst, body []byte, level int) []byte {
	if len(body) > oneShotMax {
		panic("compress: a one-shot body longer than oneShotMax") // Encoder never passes one
	}
	var xfl byte
	switch level {
	case MaxLevel:
		xfl = 2
	case MinLevel:
		xfl = 4
	}
	dst = append(dst, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255)
	dst = z.appendDeflate(dst, body, oneShotParams[level])
	dst = binary.LittleEndian.AppendUint32(dst, crc32.ChecksumIEEE(body))
	return binary.LittleEndian.AppendUint32(dst, uint32(len(body)))
}

// appendDeflate appends body as one final deflate block: dynamic, fixed or
// stored, whichever is smallest.
func (z *oneShot) appendDeflate(dst, body []byte, p matchParams) []byte {
	z.tokens = z.tokens[:0]
	clear(z.litFreq[:])
	clear(z.distFreq[:])
	if len(body) >= minMatch {
		z.hbits = uint(min(max(bits.Len(uint(len(body))), 10), maxHashBits))
		clear(z.head[:1<<z.hbits])
		if p.greedy {
			z.matchGreedy(body, p)
		} else {
			z.matchLazy(body, p)
		}
	} else {
		e := z.emitter()
		for _, c := range body {
			e.literal(c)
		}
		z.tokens = e.tokens
	}
	z.litFreq[endOfBlock] = 1
	return z.writeBlock(dst, body)
}

// chains is the hash chains of a body: head and prev of oneShot, with the
// shift for the body's table size. The matchers keep it, their tokens and their
// counts in locals: through z, every insert and token would reload them.
type chains struct {
	head  *[1 << maxHashBits]uint16
	prev  *[oneShotMax]uint16
	shift uint // 32 - the table's bits, below 32
}

// insert records position s and returns the previous position with the same
// hash, plus one (0: none). The hash is of the 3 bytes at s, read as 4 (the
// fourth shifted out): s+4 <= len(b). The matchers therefore neither hash nor
// search the body's last 3 positions, which costs at most a 3-byte match at the
// very end. The masks cannot change the values (the shift leaves at most
// maxHashBits bits, s < oneShotMax); they spare the bounds checks and the
// shift's overflow check.
func (c chains) insert(b []byte, s int) int {
	h := (binary.LittleEndian.Uint32(b[s:]) * 0x9e3779b1) >> (c.shift & 31) & (1<<maxHashBits - 1)
	cand := c.head[h]
	c.prev[s&(oneShotMax-1)] = cand
	c.head[h] = uint16(s + 1)
	return int(cand)
}

// emitter collects tokens and counts their symbols.
type emitter struct {
	tokens []uint32
	lit    *[numLitLen]uint32
	dist   *[numDist]uint32
}

func (e *emitter) literal(c byte) {
	e.tokens = append(e.tokens, uint32(c))
	e.lit[c]++
}

func (e *emitter) match(length, dist int) {
	l := (length - minMatch) & 0xff
	e.tokens = append(e.tokens, matchFlag|uint32(l)<<16|uint32(dist-1))
	e.lit[endOfBlock+1+int(lengthCode[l])]++
	e.dist[distCode(dist-1)%numDist]++
}

// longest returns the longest match for s longer than best along the chain that
// starts at cand (a position plus one), zlib's longest_match; length 0 when none.
func (c chains) longest(b []byte, s, cand, best int, p matchParams) (length, dist int) {
	maxLen := min(maxMatch, len(b)-s)
	nice := min(p.nice, maxLen)
	chain := p.chain
	if best >= p.good {
		chain >>= 2
	}
	if best >= maxLen {
		return 0, 0
	}
	cur := b[s : s+maxLen]
	end := cur[best] // the byte that would make a match longer than the best
	for ; cand != 0 && chain > 0; chain-- {
		at := cand - 1
		if b[at+best] == end && b[at] == cur[0] {
			if l := matchLen(b[at:], cur); l > best {
				best, length, dist = l, l, s-at
				if l >= nice {
					break
				}
				end = cur[best]
			}
		}
		cand = int(c.prev[at&(oneShotMax-1)])
	}
	return length, dist
}

// matchLen is how many bytes a and b have in common from their start; len(a) >=
// len(b).
func matchLen(a, b []byte) int {
	n := 0
	for ; len(b)-n >= 8; n += 8 {
		if x := binary.LittleEndian.Uint64(a[n:]) ^ binary.LittleEndian.Uint64(b[n:]); x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
	}
	for ; n < len(b) && a[n] == b[n]; n++ {
	}
	return n
}

// chains returns the hash chains for the current body.
func (z *oneShot) chains() chains {
	return chains{head: &z.head, prev: &z.prev, shift: 32 - z.hbits}
}

// emitter returns what collects the current body's tokens; the matchers store
// its tokens back in z when done.
func (z *oneShot) emitter() emitter {
	return emitter{tokens: z.tokens, lit: &z.litFreq, dist: &z.distFreq}
}

// matchLazy is zlib's deflate_slow: a match found at s is kept only if the one
// at s+1 is not longer (then s goes as a literal).
func (z *oneShot) matchLazy(b []byte, p matchParams) {
	n := len(b)
	c, e := z.chains(), z.emitter()
	prevLen, prevDist := 0, 0
	pending := false // b[s-1] is not emitted yet
	for s := 0; s < n; {
		curLen, curDist := 0, 0
		if s+4 <= n {
			cand := c.insert(b, s)
			if cand != 0 && prevLen < p.lazy {
				curLen, curDist = c.longest(b, s, cand, max(prevLen, minMatch-1), p)
				if curLen == minMatch && curDist > tooFar {
					curLen = 0
				}
			}
		}
		if prevLen >= minMatch && curLen <= prevLen {
			// The match at s-1 wins; hash what it covers past s.
			e.match(prevLen, prevDist)
			end := s - 1 + prevLen
			for s++; s < end; s++ {
				if s+4 <= n {
					c.insert(b, s)
				}
			}
			prevLen, pending = 0, false
			continue
		}
		if pending {
			e.literal(b[s-1])
		}
		prevLen, prevDist, pending = curLen, curDist, true
		s++
	}
	if pending {
		e.literal(b[n-1])
	}
	z.tokens = e.tokens
}

// matchGreedy is zlib's deflate_fast: the first match found is taken.
func (z *oneShot) matchGreedy(b []byte, p matchParams) {
	n := len(b)
	c, e := z.chains(), z.emitter()
	for s := 0; s < n; {
		length, dist := 0, 0
		if s+4 <= n {
			if cand := c.insert(b, s); cand != 0 {
				length, dist = c.longest(b, s, cand, minMatch-1, p)
			}
		}
		if length < minMatch {
			e.literal(b[s])
			s++
			continue
		}
		e.match(length, dist)
		end := s + length
		if length <= p.lazy {
			for s++; s < end; s++ {
				if s+4 <= n {
					c.insert(b, s)
				}
			}
		}
		s = end
	}
	z.tokens = e.tokens
}
