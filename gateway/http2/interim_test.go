package http2

import (
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"gozer/gateway/exchange"
	"gozer/gateway/httpcodec"
)

// TestStreamInterim: an interim answer is a HEADERS frame with :status 103
// and the origin's fields (lower-case, hop-by-hop ones dropped, Via and
// X-Request-Id added) without END_STREAM, before the final HEADERS and the
// DATA; it does not start the stream's response, goes out whatever the
// windows (HEADERS are not flow-controlled), and a reset stream takes none.
func TestStreamInterim(t *testing.T) {
	const hint = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n"
	c, fc, l := newTestConn(t)
	l.Enter()
	defer l.Leave()
	c.state = stOpen
	sts := openStreams(c, 2)
	st := sts[0]
	st.remoteDone = true
	st.sendWindow, c.sendWindow = 0, 0 // no window: the hint goes anyway
	var r httpcodec.Response
	if err := r.ParseLazy([]byte(hint), false); err != nil {
		t.Fatal(err)
	}
	h := &exchange.Head{RequestID: []byte("rid-1"), Via: "1.1 gozer"}
	fc.out = nil
	if !st.WriteInterim(&r, h) || st.Started() {
		t.Fatalf("WriteInterim refused, or started the response (%v)", st.Started())
	}
	c.flush()
	var frames []string
	eachFrame(fc.out, func(f http2.Frame) {
		hf, ok := f.(*http2.MetaHeadersFrame)
		if !ok {
			frames = append(frames, "other")
			return
		}
		var fields []string
		for _, x := range hf.Fields {
			fields = append(fields, x.Name+": "+x.Value)
		}
		frames = append(frames, strings.Join(fields, "|"))
		if hf.StreamEnded() || hf.StreamID != st.id {
			t.Errorf("interim HEADERS on stream %d with END_STREAM %v", hf.StreamID, hf.StreamEnded())
		}
	})
	want := ":status: 103|link: </style.css>; rel=preload|x-request-id: rid-1|via: 1.1 gozer"
	if len(frames) != 1 || frames[0] != want {
		t.Fatalf("frames %q, want one HEADERS %q", frames, want)
	}

	// The final answer follows on the same stream, as without the hint.
	st.sendWindow, c.sendWindow = 1<<16, 1<<16
	var final httpcodec.Response
	if err := final.ParseLazy([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"), false); err != nil {
		t.Fatal(err)
	}
	fc.out = nil
	st.WriteHead(&final, &exchange.Head{})
	st.WriteBody([]byte("hi"))
	st.EndBody(nil)
	c.flush()
	if got := frameSummary(fc.out); !strings.HasPrefix(got, "HEADERS, DATA hi") || !st.Started() {
		t.Fatalf("after the hint: %q (started %v)", got, st.Started())
	}

	reset := sts[1]
	reset.reset = true
	if reset.WriteInterim(&r, h) {
		t.Error("a reset stream took an interim answer")
	}

	// No allocation once the buffers grew.
	other := openStreams(c, 1)[0]
	if n := testing.AllocsPerRun(100, func() {
		other.WriteInterim(&r, h)
		c.out = c.out[:0]
	}); n != 0 {
		t.Errorf("%v allocations per interim answer", n)
	}
}
