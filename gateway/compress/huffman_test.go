package compress

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"testing"
)

// huffmanCost is the cost (sum of frequency times length) of an optimal
// unlimited Huffman code for freq, by the textbook heap construction: the
// reference minimumRedundancy must match.
func huffmanCost(freq []uint32) int {
	h := &costHeap{}
	for _, f := range freq {
		if f != 0 {
			*h = append(*h, int(f))
		}
	}
	if h.Len() < 2 {
		return 0
	}
	heap.Init(h)
	cost := 0
	for h.Len() > 1 {
		a, b := heap.Pop(h).(int), heap.Pop(h).(int)
		cost += a + b // every merge adds one bit to each symbol below it
		heap.Push(h, a+b)
	}
	return cost
}

type costHeap []int

func (h costHeap) Len() int           { return len(h) }
func (h costHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h costHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *costHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *costHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// checkCode verifies h as a code for freq: lengths within maxBits, every symbol
// that occurs has a code, at least two codes, Kraft's sum exactly 1 (complete),
// and the canonical codes prefix-free (each code, bit-reversed back, differs from
// every other in its first min(len) bits).
func checkCode(t *testing.T, h *huffCode, freq []uint32, maxBits int) {
	t.Helper()
	kraft, used := 0, 0
	for sym, f := range freq {
		l := int(h.lens[sym])
		if f != 0 && l == 0 {
			t.Fatalf("symbol %d occurs %d times but has no code", sym, f)
		}
		if l > maxBits {
			t.Fatalf("symbol %d: length %d over the limit %d", sym, l, maxBits)
		}
		if l != 0 {
			kraft += 1 << (maxBits - l)
			used++
		}
	}
	if used < 2 || kraft != 1<<maxBits {
		t.Fatalf("%d codes, Kraft sum %d/%d: want at least 2 and a complete code", used, kraft, 1<<maxBits)
	}
	type cw struct{ code, len int }
	var codes []cw
	for sym := range freq {
		if l := int(h.lens[sym]); l != 0 {
			c := 0
			for i := 0; i < l; i++ { // undo the bit reversal
				c = c<<1 | int(h.codes[sym]>>i&1)
			}
			codes = append(codes, cw{c, l})
		}
	}
	for i, a := range codes {
		for _, b := range codes[i+1:] {
			short, long := a, b
			if short.len > long.len {
				short, long = long, short
			}
			if long.code>>(long.len-short.len) == short.code {
				t.Fatalf("code %0*b is a prefix of %0*b", short.len, short.code, long.len, long.code)
			}
		}
	}
}

// unlimitedDepth is the longest code of an optimal code for freq without a
// limit (0 when fewer than two symbols occur).
func unlimitedDepth(freq []uint32) int {
	var w []uint32
	for _, f := range freq {
		if f != 0 {
			w = append(w, f)
		}
	}
	if len(w) < 2 {
		return 0
	}
	slices.Sort(w)
	minimumRedundancy(w)
	return int(w[0])
}

func codeCost(h *huffCode, freq []uint32) int {
	cost := 0
	for sym, f := range freq {
		cost += int(f) * int(h.lens[sym])
	}
	return cost
}

// fibonacci returns n frequencies growing like the Fibonacci numbers: the
// distribution that gives an optimal code its deepest tree (depth n-1).
func fibonacci(n int) []uint32 {
	f := make([]uint32, n)
	a, b := uint32(1), uint32(1)
	for i := range f {
		f[i] = a
		a, b = b, a+b
	}
	return f
}

func TestHuffmanBuild(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n, used int, max uint32) []uint32 {
		f := make([]uint32, n)
		for _, i := range r.Perm(n)[:used] {
			f[i] = 1 + r.Uint32N(max)
		}
		return f
	}
	for _, tc := range []struct {
		name    string
		freq    []uint32
		maxBits int
		depth   string // "over": an optimal code exceeds maxBits (the limit is enforced); "within": it does not; "": either
	}{
		{"none used", make([]uint32, numDist), maxCodeBits, "within"},
		{"one used", append(make([]uint32, 7), 5, 0, 0), maxCodeBits, "within"},
		{"one used, the first", append([]uint32{9}, make([]uint32, 29)...), maxCodeBits, "within"},
		{"two used", []uint32{0, 3, 0, 0, 1000}, maxCodeBits, "within"},
		{"equal", []uint32{4, 4, 4, 4, 4, 4, 4, 4}, maxCodeBits, "within"},
		{"literals", random(numLitLen, 120, 300), maxCodeBits, ""},
		{"all literals, counts to 3000", random(numLitLen, numLitLen, 3000), maxCodeBits, ""},
		{"all literals, counts to 60000", random(numLitLen, numLitLen, 60000), maxCodeBits, ""},
		{"distances", random(numDist, 20, 40), maxCodeBits, ""},
		{"code lengths", random(numCodeLen, 12, 300), maxCLBits, ""},
		{"radix: counts past 256", random(numLitLen, 80, 5000), maxCodeBits, ""},
		{"fibonacci within the limit", fibonacci(15), maxCodeBits, "within"},
		{"fibonacci past 15 bits", append(fibonacci(24), make([]uint32, 10)...), maxCodeBits, "over"},
		{"fibonacci past 7 bits", fibonacci(numCodeLen), maxCLBits, "over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHuffCode(len(tc.freq))
			var sc huffScratch
			for i := range h.lens { // garbage from an earlier build must not survive
				h.lens[i] = 9
			}
			h.build(tc.freq, tc.maxBits, &sc)
			checkCode(t, &h, tc.freq, tc.maxBits)
			depth := unlimitedDepth(tc.freq)
			if tc.depth == "over" && depth <= tc.maxBits || tc.depth == "within" && depth > tc.maxBits {
				t.Fatalf("the case is not what it says: an optimal code is %d bits deep, the limit %d", depth, tc.maxBits)
			}
			if depth == 0 {
				return // one symbol or none: Huffman's cost is 0, a complete code's is not
			}
			if got, want := codeCost(&h, tc.freq), huffmanCost(tc.freq); depth <= tc.maxBits && got != want {
				t.Errorf("cost %d, Huffman's %d", got, want)
			} else if got < want {
				t.Errorf("cost %d below Huffman's %d: impossible", got, want)
			}
		})
	}
}

// TestFixedCodes: RFC 1951's fixed literal/length code starts 0x30 at 8 bits for
// literal 0, 0x190 at 9 bits for 144, 0 at 7 bits for 256, 0xc0 at 8 bits for 280.
func TestFixedCodes(t *testing.T) {
	for _, tc := range []struct {
		sym       int
		code, len int
	}{{0, 0x30, 8}, {143, 0xbf, 8}, {144, 0x190, 9}, {255, 0x1ff, 9}, {256, 0, 7}, {279, 0x17, 7}, {280, 0xc0, 8}, {287, 0xc7, 8}} {
		c := 0
		for i := 0; i < int(fixedLit.lens[tc.sym]); i++ {
			c = c<<1 | int(fixedLit.codes[tc.sym]>>i&1)
		}
		if c != tc.code || int(fixedLit.lens[tc.sym]) != tc.len {
			t.Errorf("fixed code of %d: %0*b, want %0*b", tc.sym, fixedLit.lens[tc.sym], c, tc.len, tc.code)
		}
	}
	for d := range numDist {
		if fixedDist.lens[d] != 5 || int(fixedDist.codes[d]) != reverse5(d) {
			t.Errorf("fixed distance code %d: %05b/%d", d, fixedDist.codes[d], fixedDist.lens[d])
		}
	}
}

func reverse5(v int) int {
	r := 0
	for i := 0; i < 5; i++ {
		r = r<<1 | v>>i&1
	}
	return r
}

// TestDistCode checks distCode and the length table against RFC 1951's bases.
func TestDistCode(t *testing.T) {
	for d := 1; d <= 32768; d++ {
		c := distCode(d - 1)
		if c >= numDist || d < int(distBase[c]) || d >= int(distBase[c])+1<<distExtra[c] {
			t.Fatalf("distance %d: code %d (base %d, %d extra bits)", d, c, distBase[c], distExtra[c])
		}
	}
	for l := minMatch; l <= maxMatch; l++ {
		c := lengthCode[l-minMatch]
		hi := int(lengthBase[c]) + 1<<lengthExtra[c]
		if c == 27 {
			hi = 258 // 227..257: the last value of its range is code 28's
		}
		if l < int(lengthBase[c]) || l >= hi {
			t.Fatalf("length %d: code %d (base %d, %d extra bits)", l, c, lengthBase[c], lengthExtra[c])
		}
	}
	if lengthCode[maxMatch-minMatch] != 28 {
		t.Errorf("length 258: code %d, want 28", lengthCode[maxMatch-minMatch])
	}
}
