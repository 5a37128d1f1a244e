package tlsconn

import "testing"

// TestRecordCutter: reads cut at record ends, whatever sizes they ask for,
// and the records they end are counted, empty ones included.
func TestRecordCutter(t *testing.T) {
	rec := func(n int) []byte { return append([]byte{23, 3, 3, byte(n >> 8), byte(n)}, make([]byte, n)...) }
	var stream []byte
	sizes := []int{1, 0, 300, 16384 + 256, 5, 0, 0, 2}
	for _, n := range sizes {
		stream = append(stream, rec(n)...)
	}
	for _, read := range []int{1, 2, 4, 5, 6, 7, 100, 1 << 20} {
		r := recordCutter{on: true}
		ended, pos := 0, 0
		var ends []int // stream offsets where a read stopped at a record's end
		for pos < len(stream) {
			k := r.span(min(read, len(stream)-pos))
			if k <= 0 {
				t.Fatalf("reads of %d: span %d at %d", read, k, pos)
			}
			e := r.take(stream[pos : pos+k])
			if e > 1 {
				t.Fatalf("reads of %d: one read ended %d records", read, e)
			}
			ended += e
			pos += k
			if e == 1 {
				ends = append(ends, pos)
			}
		}
		want, off := []int(nil), 0
		for _, n := range sizes {
			off += 5 + n
			want = append(want, off)
		}
		if ended != len(sizes) || len(ends) != len(want) {
			t.Fatalf("reads of %d: %d records ended at %v, want %d at %v", read, ended, ends, len(sizes), want)
		}
		for i := range want {
			if ends[i] != want[i] {
				t.Fatalf("reads of %d: records ended at %v, want %v", read, ends, want)
			}
		}
	}
	off := recordCutter{}
	if off.span(100) != 100 || off.take(make([]byte, 100)) != 0 {
		t.Fatal("a cutter that is off cuts nothing and counts nothing")
	}
}
