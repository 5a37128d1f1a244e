package http2

import (
	"testing"

	"golang.org/x/net/http2"
)

// Trailing HEADERS split over CONTINUATION, whose stream ends in between (in
// another callback: the body timer's 408, an origin's early answer, a reset)
// and is recycled when that callback ends. The block must not land on the
// recycled object.

// staleTrailers opens stream 1 on c, sends its trailing HEADERS (END_STREAM,
// no END_HEADERS) with the first byte of name: value's block, ends the stream
// in a callback of its own as a finished response does (finish: RST_STREAM
// NO_ERROR, forget, recycled at the callback's end), and returns the stream
// object and the CONTINUATION that completes the block.
func staleTrailers(t *testing.T, c *Conn, fc *fakeConn, name, value string) (*stream, []byte) {
	t.Helper()
	l := c.lp.l
	pre := clientFrames(func(*http2.Framer, func(...string) []byte) {})
	feed(l, c, fc, pre)
	l.Enter()
	st := openStreams(c, 1)[0]
	l.Leave()
	var blk []byte
	_ = clientFrames(func(_ *http2.Framer, enc func(...string) []byte) { blk = enc(name, value) })
	hb := clientFrames(func(fr *http2.Framer, _ func(...string) []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, BlockFragment: blk[:1]})
	})[len(pre):]
	cb := clientFrames(func(fr *http2.Framer, _ func(...string) []byte) {
		_ = fr.WriteContinuation(1, true, blk[1:])
	})[len(pre):]
	feed(l, c, fc, hb)
	if !c.blk.active {
		t.Fatal("the HEADERS ended the block")
	}
	l.Enter()
	st.localDone = true
	st.finish()
	l.Leave()
	if c.streams[1] != nil {
		t.Fatal("stream 1 did not end")
	}
	return st, cb
}

// TestTrailersStreamGoneFree: the object is free (its conn nil) and the
// block invalid (an upper-case name, which resets the stream): the block is
// dropped, nothing panics, the connection goes on.
func TestTrailersStreamGoneFree(t *testing.T) {
	c, fc, l := newTestConn(t)
	st, cb := staleTrailers(t, c, fc, "X-Bad", "1")
	fc.out = nil
	feed(l, c, fc, cb) // before the fix: resetStream on a nil *Conn, a panic
	if st.remoteDone {
		t.Fatal("the free stream object was marked done: the next stream made from it starts with its body ended")
	}
	for _, f := range serverFrames(t, fc.out) {
		switch f.(type) {
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			t.Fatalf("answered a dropped block with %v", f.Header())
		}
	}
	if fc.closed || c.blk.active {
		t.Fatalf("closed %v, block still active %v", fc.closed, c.blk.active)
	}
}

// TestTrailersStreamGoneReused: the object now is client B's stream on
// another connection of the loop, its body to come: A's trailers must not
// end B's body nor go to B's origin.
func TestTrailersStreamGoneReused(t *testing.T) {
	c, fc, l := newTestConn(t)
	st, cb := staleTrailers(t, c, fc, "x-user", "admin")
	fcB := &fakeConn{}
	l.Enter()
	c.lp.Accept(fcB, nil)
	l.Leave()
	cB := fcB.ctx.(*Conn)
	feed(l, cB, fcB, clientFrames(func(*http2.Framer, func(...string) []byte) {}))
	l.Enter()
	v := openStreams(cB, 1)[0]
	l.Leave()
	if v != st {
		t.Fatal("B's stream is not the recycled object: the test no longer shows the case")
	}
	feed(l, c, fc, cb)
	if v.remoteDone || len(v.trailer) != 0 || v.c != cB {
		t.Fatalf("B's stream took A's trailers: body ended %v, trailer %q", v.remoteDone, v.trailer)
	}
}
