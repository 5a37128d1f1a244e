package http2

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"gozer/gateway/exchange"
	"gozer/gateway/httpcodec"
)

// TestStreamResponseTrailers: an origin's trailer section ends the stream as
// trailing HEADERS with END_STREAM (lower-case names, no pseudo-header, the
// fields that must not be trailers dropped), after every DATA frame, which
// waits for the client's window first; with nothing left to pass on, an
// empty DATA frame ends the stream.
func TestStreamResponseTrailers(t *testing.T) {
	tests := []struct {
		name    string
		trailer string
		window  int64 // the stream's send window (0: the default)
		resize  bool  // a dynamic table size update is owed
		want    []string
	}{
		{name: "fields kept and lower-cased", trailer: "Grpc-Status: 0\r\nX-Sum:\tabc \r\nContent-Length: 9\r\nConnection: close\r\n",
			want: []string{"grpc-status: 0", "x-sum: abc"}},
		{name: "after DATA held back by the window", trailer: "X-Sum: 1\r\n", window: 2, want: []string{"x-sum: 1"}},
		{name: "the size update leads the block", trailer: "X-Sum: 1\r\n", resize: true, want: []string{"x-sum: 1"}},
		{name: "only forbidden fields: DATA ends the stream", trailer: "Host: x\r\nTrailer: X\r\n"},
		{name: "no trailers", trailer: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, fc, l := newTestConn(t)
			l.Enter()
			c.state = stOpen
			st := openStreams(c, 1)[0]
			st.remoteDone = true // the request ended (else the stream tells it to stop: RST_STREAM NO_ERROR)
			c.enc.resize = tc.resize
			if tc.window > 0 {
				st.sendWindow = tc.window
			}
			fc.out = nil
			st.WriteBody([]byte("hello"))
			st.EndBody([]byte(tc.trailer))
			c.flush()
			l.Leave()
			if tc.window > 0 {
				if got := frameSummary(fc.out); got != "DATA he" {
					t.Fatalf("with a window of 2: %q", got)
				}
				l.Enter()
				st.sendWindow += 100
				st.sendPending()
				c.flush()
				l.Leave()
			}
			data, fields, ended := readResponse(t, fc.out)
			if data != "hello" || !ended {
				t.Fatalf("DATA %q, stream ended %v", data, ended)
			}
			if strings.Join(fields, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("trailers %q, want %q", fields, tc.want)
			}
			if tc.resize {
				fr := http2.NewFramer(nil, bytes.NewReader(fc.out))
				for {
					f, err := fr.ReadFrame()
					if err != nil {
						t.Fatal("no HEADERS")
					}
					if h, ok := f.(*http2.HeadersFrame); ok {
						if blk := h.HeaderBlockFragment(); blk[0] != 0x20 {
							t.Fatalf("block %x does not start with a size update", blk)
						}
						break
					}
				}
			}
		})
	}
}

// frameSummary names the frames in out.
func frameSummary(out []byte) string {
	var s []string
	eachFrame(out, func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.DataFrame:
			s = append(s, "DATA "+string(f.Data()))
		case *http2.MetaHeadersFrame:
			s = append(s, "HEADERS")
		}
	})
	return strings.Join(s, ", ")
}

// eachFrame calls fn with each frame in out as it is read (a DataFrame's
// payload is valid only until the next frame is read).
func eachFrame(out []byte, fn func(http2.Frame)) {
	fr := http2.NewFramer(nil, bytes.NewReader(out))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		fn(f)
	}
}

// readResponse reads a response's DATA, its trailing HEADERS' fields, and
// whether END_STREAM came last (nothing after it).
func readResponse(t *testing.T, out []byte) (data string, fields []string, ended bool) {
	t.Helper()
	eachFrame(out, func(f http2.Frame) {
		if ended {
			t.Fatalf("a frame after END_STREAM: %v", f.Header())
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			data += string(f.Data())
			ended = f.StreamEnded()
		case *http2.MetaHeadersFrame:
			if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
				t.Fatalf("trailing HEADERS: END_STREAM %v, pseudo-headers %v", f.StreamEnded(), f.PseudoFields())
			}
			for _, hf := range f.Fields {
				fields = append(fields, hf.Name+": "+hf.Value)
			}
			ended = true
		}
	})
	return data, fields, ended
}

// TestStreamRequestTrailers: a request's trailing HEADERS are kept for the
// exchange as HTTP/1.1 field lines (what it sends the origin after the last
// chunk); a malformed one resets the stream with PROTOCOL_ERROR; one over
// its bound fails the body with 431.
func TestStreamRequestTrailers(t *testing.T) {
	big := strings.Repeat("v", httpcodec.DefaultMaxTrailerBytes)
	tests := []struct {
		name   string
		fields []string
		over   bool // over SETTINGS_MAX_HEADER_LIST_SIZE (the decoder's mark)
		want   string
		reset  string // the RST_STREAM reason ("": none)
		status int    // the body's error status (0: none)
	}{
		{name: "kept as lines", fields: []string{"grpc-status", "0", "x-sum", "abc"}, want: "grpc-status: 0\r\nx-sum: abc\r\n"},
		{name: "forbidden fields kept for the exchange to drop", fields: []string{"content-length", "3"}, want: "content-length: 3\r\n"},
		{name: "upper-case name", fields: []string{"X-Sum", "1"}, reset: "invalid trailer name"},
		{name: "control character", fields: []string{"x-sum", "a\x00b"}, reset: "control character in trailer x-sum"},
		{name: "connection-specific", fields: []string{"connection", "close"}, reset: "connection-specific trailer connection"},
		{name: "over the header list size", fields: []string{"x-sum", "1"}, over: true, status: 431},
		{name: "over 8 KiB as lines", fields: []string{"x-a", big}, status: 431},
		// "x-a: " and CRLF are 7 bytes; the section's final CRLF 2 more.
		{name: "8 KiB with the final CRLF", fields: []string{"x-a", big[:httpcodec.DefaultMaxTrailerBytes-9]},
			want: "x-a: " + big[:httpcodec.DefaultMaxTrailerBytes-9] + "\r\n"},
		{name: "8 KiB as lines, over with the final CRLF", fields: []string{"x-a", big[:httpcodec.DefaultMaxTrailerBytes-7]}, status: 431},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, fc, l := newTestConn(t)
			l.Enter()
			defer l.Leave()
			c.state = stOpen
			st := openStreams(c, 1)[0]
			if tc.reset == "" {
				// The stream has an exchange: its trailers are kept (a bare one
				// stands in; a reset would end it, so not for those).
				st.ex = &exchange.Exchange{}
			}
			b := &block{over: tc.over}
			for i := 0; i+1 < len(tc.fields); i += 2 {
				b.fields = append(b.fields, hpack.HeaderField{Name: tc.fields[i], Value: tc.fields[i+1]})
			}
			fc.out = nil
			kept := st.takeTrailers(b)
			c.flush()
			if tc.reset != "" {
				rst := false
				for _, f := range serverFrames(t, fc.out) {
					if r, ok := f.(*http2.RSTStreamFrame); ok && r.ErrCode == http2.ErrCodeProtocol {
						rst = true
					}
				}
				if kept || !rst {
					t.Fatalf("kept %v, RST_STREAM PROTOCOL_ERROR %v", kept, rst)
				}
				return
			}
			st.ex = nil
			st.remoteDone = true
			if !kept {
				t.Fatal("stream reset")
			}
			_, err := st.ReadBody(func([]byte) bool { return true })
			if tc.status != 0 {
				if e, ok := err.(*httpcodec.Error); !ok || e.Status != tc.status {
					t.Fatalf("body error %v, want %d", err, tc.status)
				}
				return
			}
			if err != nil || string(st.Trailer()) != tc.want {
				t.Fatalf("Trailer %q (%v), want %q", st.Trailer(), err, tc.want)
			}
		})
	}
}

// FuzzTrailers: whatever fields a request's trailing HEADERS carry, the
// stream keeps them only as a trailer section an origin's chunked decoder
// accepts (the lines it decodes are the lines kept), within 8 KiB, or
// refuses them (a reset, a failed body).
func FuzzTrailers(f *testing.F) {
	f.Add([]byte("grpc-status\x000\nx-sum\x00abc\n"), false)
	f.Add([]byte("content-length\x009\nhost\x00evil\n"), false)
	f.Add([]byte("X-Up\x001\n"), false)
	f.Add([]byte("x\x00a\r\nb: c\n"), false)
	f.Add([]byte("connection\x00close\nte\x00trailers\n"), true)
	// At the 8 KiB bound: the lines and the final CRLF exactly, and 1 byte over.
	f.Add([]byte("x-a\x00"+strings.Repeat("v", httpcodec.DefaultMaxTrailerBytes-9)), false)
	f.Add([]byte("x-a\x00"+strings.Repeat("v", httpcodec.DefaultMaxTrailerBytes-8)), false)
	f.Fuzz(func(t *testing.T, in []byte, over bool) {
		c, _, l := newTestConn(t)
		l.Enter()
		defer l.Leave()
		c.state = stOpen
		st := openStreams(c, 1)[0]
		b := &block{over: over}
		for _, line := range bytes.Split(in, []byte("\n")) {
			n, v, _ := bytes.Cut(line, []byte{0})
			b.fields = append(b.fields, hpack.HeaderField{Name: string(n), Value: string(v)})
		}
		for _, fl := range b.fields {
			if !validName(fl.Name) || !validValue(fl.Value) || hopByHop([]byte(fl.Name)) {
				return // takeTrailers resets the stream (TestStreamRequestTrailers)
			}
		}
		st.ex = &exchange.Exchange{} // the stream has an exchange: its trailers are kept
		if !st.takeTrailers(b) {
			t.Fatal("valid fields reset the stream")
		}
		st.ex, st.remoteDone = nil, true
		if st.bodyErr != nil {
			return
		}
		tr := st.Trailer()
		if len(tr)+len("\r\n") > httpcodec.DefaultMaxTrailerBytes {
			t.Fatalf("%d bytes kept: with the final CRLF, over 8 KiB", len(tr))
		}
		var d httpcodec.ChunkedDecoder
		sec := append(append([]byte("0\r\n"), tr...), "\r\n"...)
		if n, _, done, err := d.Next(sec); err != nil || !done || n != len(sec) {
			t.Fatalf("the origin would refuse %q: %v", sec, err)
		}
		if !bytes.Equal(d.Trailer(), tr) {
			t.Fatalf("decoded %q, kept %q", d.Trailer(), tr)
		}
	})
}
