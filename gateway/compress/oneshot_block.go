package compress

import (
	"encoding/binary"
	"math/bits"
)

// The deflate block of the one-shot encoder (oneshot.go): its tokens written with
// dynamic Huffman codes, the fixed codes or none (stored), whichever is shortest
// (RFC 1951 §3.2.3 to §3.2.7).

// Length and distance codes: per code, its base value and extra bits.
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [numDist]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [numDist]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

	// lengthCode maps length-3 to its code (0..28, symbol 257+code).
	lengthCode = func() (t [256]uint8) {
		for code := len(lengthBase) - 1; code >= 0; code-- {
			for l := int(lengthBase[code]) - minMatch; l < 256 && t[l] == 0; l++ {
				t[l] = uint8(code)
			}
		}
		return t
	}()

	// The order in which a dynamic header gives the code length code's lengths.
	codeLenOrder = [numCodeLen]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// distCode is the code of distance d+1 (d < 32768): two codes per power of two
// past 4, told apart by the bit below the highest.
func distCode(d int) int {
	if d < 4 {
		return d
	}
	hi := bits.Len(uint(d)) - 1
	return 2*hi + (d>>(hi-1))&1
}

// bitWriter appends bits to out, least significant first.
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

// bits writes the n low bits of v (n <= 32).
func (w *bitWriter) bits(v uint32, n uint) {
	w.acc |= uint64(v) << w.nacc
	w.nacc += n
	if w.nacc >= 32 {
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.acc))
		w.acc >>= 32
		w.nacc -= 32
	}
}

// flush writes the last partial byte, zero-padded.
func (w *bitWriter) flush() {
	for ; w.nacc > 0; w.nacc -= min(w.nacc, 8) {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
	}
	w.acc = 0
}

// writeBlock appends the final deflate block holding z's tokens, body being what
// they encode.
func (z *oneShot) writeBlock(dst, body []byte) []byte {
	z.lit.build(z.litFreq[:], maxCodeBits, &z.scratch)
	z.dist.build(z.distFreq[:], maxCodeBits, &z.scratch)
	nlit, ndist := numLitLen, numDist
	for nlit > endOfBlock+1 && z.lit.lens[nlit-1] == 0 {
		nlit--
	}
	for ndist > 1 && z.dist.lens[ndist-1] == 0 {
		ndist--
	}
	z.codeLengths(nlit, ndist)
	z.cl.build(z.clFreq[:], maxCLBits, &z.scratch)
	ncl := numCodeLen
	for ncl > 4 && z.cl.lens[codeLenOrder[ncl-1]] == 0 {
		ncl--
	}

	// Sizes in bits. The extra bits of lengths and distances are the same under
	// either code.
	extra := 0
	for code, e := range lengthExtra {
		extra += int(z.litFreq[endOfBlock+1+code]) * int(e)
	}
	for code, e := range distExtra {
		extra += int(z.distFreq[code]) * int(e)
	}
	dynamic := 3 + 5 + 5 + 4 + 3*ncl + extra
	for sym, f := range z.clFreq {
		dynamic += int(f) * int(z.cl.lens[sym])
	}
	dynamic += 2*int(z.clFreq[16]) + 3*int(z.clFreq[17]) + 7*int(z.clFreq[18])
	fixed := 3 + extra
	for sym, f := range z.litFreq {
		dynamic += int(f) * int(z.lit.lens[sym])
		fixed += int(f) * int(fixedLit.lens[sym])
	}
	for sym, f := range z.distFreq {
		dynamic += int(f) * int(z.dist.lens[sym])
		fixed += int(f) * int(fixedDist.lens[sym])
	}
	stored := 8 * (1 + 4 + len(body)) // the header padded to a byte, LEN, NLEN

	if stored < fixed && stored < dynamic {
		// BFINAL 1, BTYPE 00, padding: one byte.
		dst = append(dst, 1)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(body)))
		dst = binary.LittleEndian.AppendUint16(dst, ^uint16(len(body)))
		return append(dst, body...)
	}

	z.w.out = dst
	lit, dist := &fixedLit, &fixedDist
	if dynamic < fixed {
		lit, dist = &z.lit, &z.dist
		z.w.bits(1|2<<1, 3) // BFINAL 1, BTYPE 10
		z.w.bits(uint32(nlit-257)|uint32(ndist-1)<<5|uint32(ncl-4)<<10, 14)
		for _, sym := range codeLenOrder[:ncl] {
			z.w.bits(uint32(z.cl.lens[sym]), 3)
		}
		for _, s := range z.clSyms {
			sym := s & 0xff
			z.w.bits(uint32(z.cl.codes[sym]), uint(z.cl.lens[sym]))
			switch sym {
			case 16:
				z.w.bits(uint32(s>>8), 2)
			case 17:
				z.w.bits(uint32(s>>8), 3)
			case 18:
				z.w.bits(uint32(s>>8), 7)
			}
		}
	} else {
		z.w.bits(1|1<<1, 3) // BFINAL 1, BTYPE 01
	}
	z.writeTokens(lit, dist)
	z.w.bits(uint32(lit.codes[endOfBlock]), uint(lit.lens[endOfBlock]))
	z.w.flush()
	dst, z.w.out = z.w.out, nil
	return dst
}

// writeTokens writes z's tokens with the given codes. The bit writer's state is
// kept in locals for the loop: through z, every token would load and store it.
func (z *oneShot) writeTokens(lit, dist *huffCode) {
	out, acc, nacc := z.w.out, z.w.acc, z.w.nacc
	litCodes, litLens := lit.codes[:numLitLen], lit.lens[:numLitLen]
	distCodes, distLens := dist.codes[:numDist], dist.lens[:numDist]
	for _, t := range z.tokens {
		if t < matchFlag {
			acc |= uint64(litCodes[t&0xff]) << nacc
			nacc += uint(litLens[t&0xff])
		} else {
			l := int(t>>16) & 0xff
			code := lengthCode[l]
			sym := endOfBlock + 1 + int(code)
			n := uint(litLens[sym])
			acc |= uint64(uint32(litCodes[sym])|uint32(l+minMatch-int(lengthBase[code%29]))<<n) << nacc
			nacc += n + uint(lengthExtra[code%29])
			// At most 31 + 20 bits so far: room for a distance's 28 only after a flush.
			if nacc >= 32 {
				out = binary.LittleEndian.AppendUint32(out, uint32(acc))
				acc >>= 32
				nacc -= 32
			}
			d := int(t & 0x7fff)
			dc := distCode(d)
			n = uint(distLens[dc])
			acc |= uint64(uint32(distCodes[dc])|uint32(d+1-int(distBase[dc]))<<n) << nacc
			nacc += n + uint(distExtra[dc])
		}
		if nacc >= 32 {
			out = binary.LittleEndian.AppendUint32(out, uint32(acc))
			acc >>= 32
			nacc -= 32
		}
	}
	z.w.out, z.w.acc, z.w.nacc = out, acc, nacc
}

// codeLengths run-length encodes the code lengths of the literal/length code's
// first nlit symbols and the distance code's first ndist (RFC 1951 §3.2.7: 16
// repeats the previous length 3 to 6 times, 17 and 18 give 3 to 10 and 11 to 138
// zeros; a run may cross from one code into the other) into z.clSyms, and counts
// the symbols in z.clFreq.
func (z *oneShot) codeLengths(nlit, ndist int) {
	lens := z.lens[:nlit+ndist]
	copy(lens, z.lit.lens[:nlit])
	copy(lens[nlit:], z.dist.lens[:ndist])
	clear(z.clFreq[:])
	syms := z.clSyms[:0]
	add := func(sym, extra int) {
		syms = append(syms, uint16(sym|extra<<8))
		z.clFreq[sym]++
	}
	for i := 0; i < len(lens); {
		l := lens[i]
		run := 1
		for i+run < len(lens) && lens[i+run] == l {
			run++
		}
		i += run
		if l == 0 {
			for ; run >= 11; run -= min(run, 138) {
				add(18, min(run, 138)-11)
			}
			if run >= 3 {
				add(17, run-3)
				run = 0
			}
		} else {
			add(int(l), 0)
			for run--; run >= 3; run -= min(run, 6) {
				add(16, min(run, 6)-3)
			}
		}
		for ; run > 0; run-- {
			add(int(l), 0)
		}
	}
	z.clSyms = syms
}
