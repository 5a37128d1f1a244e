package compress

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// liveHeap returns the heap that each of n encoders of coding e at level retains
// while it is live, in the middle of a response: it was given body, in pieces of
// the given size (all at once when piece is 0), and flushed. That is what one more
// concurrent compressed response costs, and what Pool's bound multiplies.
func liveHeap(t *testing.T, e Encoding, level, n int, body []byte, piece int) uint64 {
	t.Helper()
	if piece <= 0 {
		piece = len(body)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	encs := make([]*Encoder, n)
	for i := range encs {
		enc, err := NewEncoder(e, level)
		if err != nil {
			t.Fatal(err)
		}
		for p := body; len(p) > 0; p = p[min(piece, len(p)):] {
			if _, err := enc.Write(p[:min(piece, len(p))]); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := enc.Flush(); err != nil {
			t.Fatal(err)
		}
		encs[i] = enc
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(encs)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return (after.HeapAlloc - before.HeapAlloc) / uint64(n)
}

// bigBody is the test pages, repeated to copies times 128 KiB: from 4 copies on,
// past every window (zstd's 256 KiB is the largest) and brotli's metablock, and
// with long repeats, which let that metablock (and the buffers sized from it) grow
// to its largest.
func bigBody(t testing.TB, copies int) []byte {
	t.Helper()
	return bytes.Repeat(append(testBody(t, "page.html"), testBody(t, "api.json")...), copies)
}

// TestHeapPerEncoder measures and logs the heap each live encoder holds at the
// default level, the figures DefaultMaxEncoders is derived from: after a 64 KiB
// body, and after 512 KiB in 16 KiB pieces, which is the most an encoder grows to
// (buffers that follow the input stop growing at the window or metablock size). It fails
// when an encoder grows far past them, as a window or table left at a library's
// default would.
func TestHeapPerEncoder(t *testing.T) {
	html, big := testBody(t, "page.html"), bigBody(t, 4)
	// Well above the measured figures (see the package comment), well below what
	// the libraries' defaults cost.
	ceiling := map[Encoding]uint64{Gzip: 1536 << 10, Brotli: 2560 << 10, Zstd: 2560 << 10}
	for _, e := range codings {
		small := liveHeap(t, e, DefaultLevel, 16, html, 0)
		grown := liveHeap(t, e, DefaultLevel, 8, big, 16<<10)
		t.Logf("level %d, %-4v per live encoder: %4d KiB after 64 KiB, %4d KiB after 512 KiB", DefaultLevel, e, small>>10, grown>>10)
		if worst := max(small, grown); worst > ceiling[e] {
			t.Errorf("%v: %d KiB per live encoder, more than the %d KiB expected", e, worst>>10, ceiling[e]>>10)
		}
	}
}

// TestHeapBigFirstWrite: a response whose first piece is large must not make a
// brotli encoder bigger for good. At quality 4 the library picks a 4 MiB hash
// table instead of 512 KiB when its first input reaches 1 MiB, and keeps that
// table for every later stream; Encoder.Write feeds brotli in bounded pieces to
// prevent it. (gzip and zstd size nothing from their input.)
func TestHeapBigFirstWrite(t *testing.T) {
	big := bigBody(t, 10) // 1.25 MiB
	whole := liveHeap(t, Brotli, DefaultLevel, 4, big, 0)
	pieces := liveHeap(t, Brotli, DefaultLevel, 4, big, 16<<10)
	t.Logf("level %d, br per live encoder after 1.25 MiB: %4d KiB in one write, %4d KiB in 16 KiB pieces", DefaultLevel, whole>>10, pieces>>10)
	// The output of the one big write (a quarter of a MiB) sits in the encoder's
	// buffer until the caller's next call, and brotli's command and metablock
	// buffers depend on how the input arrives: allow 1 MiB for both. The big
	// table would add 3.5 MiB.
	if whole > pieces+(1<<20) {
		t.Errorf("br: %d KiB per encoder after one 1.25 MiB write, %d KiB after the same in pieces", whole>>10, pieces>>10)
	}
}

// TestHeapPerLevel logs the heap per live encoder for every coding and level after
// 512 KiB, the table in the package comment. It is documentation: it runs only
// with -v, and not under the race detector.
func TestHeapPerLevel(t *testing.T) {
	if !testing.Verbose() || raceEnabled {
		t.Skip("documentation: run with -v, without -race, to print the table")
	}
	big := bigBody(t, 4)
	for _, e := range codings {
		var row strings.Builder
		for level := MinLevel; level <= MaxLevel; level++ {
			fmt.Fprintf(&row, " %5d", liveHeap(t, e, level, 4, big, 16<<10)>>10)
		}
		t.Logf("%-4v KiB per live encoder after 512 KiB, levels 1..9:%s", e, row.String())
	}
}

// TestHeapOneShot: a gzip encoder that has only compressed small bodies holds
// what the one-shot path needs (the held-back body, the hash chains, the tokens),
// a tenth of the streaming writer it never built.
func TestHeapOneShot(t *testing.T) {
	body := testBody(t, "api.json")[:oneShotMax]
	const n = 16
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	encs := make([]*Encoder, n)
	for i := range encs {
		enc, err := NewEncoder(Gzip, DefaultLevel)
		if err != nil {
			t.Fatal(err)
		}
		encodeAll(t, enc, body, 0)
		enc.Reset()
		encs[i] = enc
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(encs)
	per := int64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("level %d, gzip per encoder after a %d KiB body in one shot: %d KiB", DefaultLevel, len(body)>>10, per>>10)
	if per > 128<<10 {
		t.Errorf("%d KiB per one-shot encoder, more than the 128 KiB expected", per>>10)
	}
}
