package compress

import "math/bits"

// Huffman codes for the one-shot deflate encoder (oneshot.go): code lengths from
// symbol frequencies, limited to deflate's maximum, and the canonical codes that
// follow from them (RFC 1951 §3.2.2).
//
// Why not klauspost's: its table builder (huffmanEncoder.generate, bitCounts in
// the profiles) is a fixed cost of about 5 µs per block whatever the block's size
// (the CPU profile of bench/compress.sh), which for a 2 KiB response is as much
// as finding its matches; and it is not exported. Here the lengths come from
// Moffat and Katajainen's in-place algorithm over the symbols sorted by a radix
// sort: linear after the sort, no allocation, and the same optimal lengths
// whenever no code exceeds the limit (when one does, the limit is enforced the
// way miniz does it, which keeps the code complete).

const (
	numLitLen   = 286 // literal/length alphabet: 256 literals, end of block, 29 lengths
	numDist     = 30  // distance alphabet
	numCodeLen  = 19  // code length alphabet of a dynamic block header
	endOfBlock  = 256
	maxCodeBits = 15 // deflate's limit for literal/length and distance codes
	maxCLBits   = 7  // and for the code length code
)

// huffCode is one Huffman code: per symbol its length in bits (0 when unused) and
// its code, bit-reversed so that it can be written least significant bit first.
type huffCode struct {
	lens  []uint8
	codes []uint16
}

func newHuffCode(n int) huffCode {
	return huffCode{lens: make([]uint8, n), codes: make([]uint16, n)}
}

// huffScratch is the working memory of build, kept by its owner so that building
// a code does not allocate.
type huffScratch struct {
	syms  [numLitLen + 2]uint32 // frequency<<16 | symbol, in symbol order
	keys  [numLitLen + 2]uint32 // the same sorted by frequency
	tmp   [numLitLen + 2]uint32 // the radix sort's other half
	depth [numLitLen + 2]uint32 // Moffat-Katajainen's array
}

// build sets h to an optimal length-limited code for freq (every frequency below
// 1<<16). At least two symbols get a code, even when fewer occur: a code with a
// single symbol is incomplete, which zlib refuses for the code length code, so
// every code written is complete and any inflater takes it.
func (h *huffCode) build(freq []uint32, maxBits int, sc *huffScratch) {
	syms := sc.syms[:0]
	for sym, f := range freq {
		h.lens[sym] = 0
		if f != 0 {
			syms = append(syms, f<<16|uint32(sym))
		}
	}
	if len(syms) < 2 {
		// The lowest unused symbols get a pretend frequency of 1.
		pretend := 2 - len(syms)
		syms = syms[:0]
		for sym, f := range freq {
			if f == 0 && pretend > 0 {
				f, pretend = 1, pretend-1
			}
			if f != 0 {
				syms = append(syms, f<<16|uint32(sym))
			}
		}
	}
	keys := sc.keys[:len(syms)]
	copy(keys, syms)
	if len(keys) <= 32 {
		insertionSort(keys)
	} else {
		keys = radixSortByFreq(keys, sc.tmp[:len(keys)])
	}

	depth := sc.depth[:len(keys)]
	for i, k := range keys {
		depth[i] = k >> 16
	}
	minimumRedundancy(depth)

	// Count the codes of each length, folding those past the limit into it, then
	// repair the Kraft sum the folding broke.
	var count [maxCodeBits + 1]int
	for _, d := range depth {
		count[min(int(d), maxBits)]++
	}
	limitLengths(count[:maxBits+1], maxBits)

	// The most frequent symbols (the end of keys) get the shortest codes.
	j := len(keys)
	for l := 1; l <= maxBits; l++ {
		for range count[l] {
			j--
			h.lens[keys[j]&0xffff] = uint8(l)
		}
	}
	// Canonical codes, in symbol order (RFC 1951 §3.2.2), bit-reversed for writing.
	var next [maxCodeBits + 1]uint16
	code := uint16(0)
	for l := 1; l <= maxBits; l++ {
		code = (code + uint16(count[l-1])) << 1
		next[l] = code
	}
	for _, k := range syms {
		sym := k & 0xffff
		l := h.lens[sym]
		h.codes[sym] = bits.Reverse16(next[l]) >> (16 - l)
		next[l]++
	}
}

// insertionSort sorts a few keys, ascending.
func insertionSort(keys []uint32) {
	for i := 1; i < len(keys); i++ {
		k := keys[i]
		j := i
		for ; j > 0 && keys[j-1] > k; j-- {
			keys[j] = keys[j-1]
		}
		keys[j] = k
	}
}

// radixSortByFreq sorts keys by their upper 16 bits (the frequency), stably, in
// one or two passes of 8 bits: ties stay in symbol order. tmp has len(keys).
func radixSortByFreq(keys, tmp []uint32) []uint32 {
	var hi uint32
	for _, k := range keys {
		hi |= k
	}
	for shift := uint(16); shift < 32; shift += 8 {
		if shift == 24 && hi>>24 == 0 {
			break // every frequency below 256: the first pass sorted them
		}
		var pos [256]uint16
		for _, k := range keys {
			pos[byte(k>>shift)]++
		}
		sum := uint16(0)
		for i, c := range pos {
			pos[i] = sum
			sum += c
		}
		for _, k := range keys {
			b := byte(k >> shift)
			tmp[pos[b]] = k
			pos[b]++
		}
		keys, tmp = tmp, keys
	}
	return keys
}

// minimumRedundancy turns a, weights in ascending order, into the lengths of an
// optimal prefix code for them, in place: a[i] becomes the length of the i-th
// weight's code (so lengths descend). Moffat and Katajainen, "In-place
// calculation of minimum-redundancy codes" (1995), as in miniz. len(a) >= 2.
func minimumRedundancy(a []uint32) {
	n := len(a)
	// Phase 1: build the tree in place; internal nodes replace leaves at the
	// front, each holding its parent's index once merged.
	a[0] += a[1]
	root, leaf := 0, 2
	for next := 1; next < n-1; next++ {
		if leaf >= n || a[root] < a[leaf] {
			a[next] = a[root]
			a[root] = uint32(next)
			root++
		} else {
			a[next] = a[leaf]
			leaf++
		}
		if leaf >= n || root < next && a[root] < a[leaf] {
			a[next] += a[root]
			a[root] = uint32(next)
			root++
		} else {
			a[next] += a[leaf]
			leaf++
		}
	}
	// Phase 2: internal nodes' depths, from the root down.
	a[n-2] = 0
	for next := n - 3; next >= 0; next-- {
		a[next] = a[a[next]] + 1
	}
	// Phase 3: leaves' depths, from the internal nodes at each depth.
	avail, used, depth := 1, 0, uint32(0)
	root, next := n-2, n-1
	for avail > 0 {
		for root >= 0 && a[root] == depth {
			used++
			root--
		}
		for avail > used {
			a[next] = depth
			next--
			avail--
		}
		avail, used = 2*used, 0
		depth++
	}
}

// limitLengths makes count (codes per length, 1..maxBits, with every longer code
// already counted at maxBits) satisfy Kraft's equality again: while the code is
// oversubscribed, one code at the limit goes and a shorter one is split in two,
// which keeps the number of codes and lowers the sum by one unit. miniz's
// tdefl_huffman_enforce_max_code_size. A code within the limit is left as is.
func limitLengths(count []int, maxBits int) {
	total := 0
	for l := maxBits; l > 0; l-- {
		total += count[l] << (maxBits - l)
	}
	for total != 1<<maxBits {
		count[maxBits]--
		for l := maxBits - 1; l > 0; l-- {
			if count[l] != 0 {
				count[l]--
				count[l+1] += 2
				break
			}
		}
		total--
	}
}

// assignCodes gives the first n symbols their canonical codes from their lengths
// (RFC 1951 §3.2.2), bit-reversed for writing.
func (h *huffCode) assignCodes(n, maxBits int) {
	var count [maxCodeBits + 1]uint16
	for _, l := range h.lens[:n] {
		count[l]++
	}
	count[0] = 0
	var next [maxCodeBits + 1]uint16
	code := uint16(0)
	for l := 1; l <= maxBits; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	for sym, l := range h.lens[:n] {
		if l != 0 {
			h.codes[sym] = bits.Reverse16(next[l]) >> (16 - l)
			next[l]++
		}
	}
}

// The fixed codes of RFC 1951 §3.2.6, for blocks too small to pay for a table.
var fixedLit, fixedDist = fixedCodes()

func fixedCodes() (lit, dist huffCode) {
	lit, dist = newHuffCode(288), newHuffCode(32)
	for sym := range lit.lens {
		switch {
		case sym < 144:
			lit.lens[sym] = 8
		case sym < 256:
			lit.lens[sym] = 9
		case sym < 280:
			lit.lens[sym] = 7
		default:
			lit.lens[sym] = 8
		}
	}
	lit.assignCodes(len(lit.lens), maxCodeBits)
	for sym := range dist.lens {
		dist.lens[sym] = 5
	}
	dist.assignCodes(len(dist.lens), maxCodeBits)
	return lit, dist
}
