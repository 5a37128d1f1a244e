package http2

import (
	"testing"

	"golang.org/x/net/http2"
)

// TestConnSplitAnywhere: frames cut anywhere, into pieces of any size (a
// byte, a frame header's worth, more than a frame), are read the same as
// when they come whole: the partial frame is completed from the next bytes
// and the frames after it are read where they are.
func TestConnSplitAnywhere(t *testing.T) {
	in := clientFrames(func(fr *http2.Framer, enc func(...string) []byte) {
		get := func(id uint32) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndStream: true, EndHeaders: true,
				BlockFragment: enc(":method", "GET", ":scheme", "http", ":authority", "h", ":path", "/x")})
		}
		get(1)
		get(3)
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, EndHeaders: true,
			BlockFragment: enc(":method", "POST", ":scheme", "http", ":authority", "h", ":path", "/x")})
		_ = fr.WriteData(5, false, make([]byte, 16384)) // a frame of the largest size
		_ = fr.WritePing(false, [8]byte{7})
		_ = fr.WriteData(5, false, make([]byte, 5000))
		_ = fr.WriteData(5, true, []byte("end"))
		blk := enc(":method", "GET", ":scheme", "http", ":authority", "h", ":path", "/y")
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, EndStream: true, BlockFragment: blk[:2]})
		_ = fr.WriteContinuation(7, true, blk[2:])
		get(9)
	})
	type result struct {
		answered, pings int
		goaway, closed  bool
	}
	run := func(piece int) result {
		c, fc, l := newTestConn(t)
		for off := 0; off < len(in); off += piece {
			feed(l, c, fc, in[off:min(off+piece, len(in))])
		}
		var r result
		for _, f := range serverFrames(t, fc.out) {
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				if f.PseudoValue("status") == "404" {
					r.answered++
				}
			case *http2.PingFrame:
				r.pings++
			case *http2.GoAwayFrame:
				r.goaway = true
			}
		}
		r.closed = fc.closed
		if len(c.part) != 0 || len(fc.in) != 0 {
			t.Errorf("pieces of %d: %d bytes left partial, %d unread", piece, len(c.part), len(fc.in))
		}
		return r
	}
	want := run(len(in))
	if want != (result{answered: 5, pings: 1}) {
		t.Fatalf("whole: %+v, want 5 answers and a PING ack", want)
	}
	for _, piece := range []int{1, 2, 3, 5, 8, 9, 10, 11, 100, 4096, 16393, 16394, 20000} {
		if got := run(piece); got != want {
			t.Errorf("in pieces of %d bytes: %+v, want %+v", piece, got, want)
		}
	}
}
