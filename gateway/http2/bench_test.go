package http2

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkConnStreams: the CPU and allocations of one stream (a request's
// HEADERS in, a local 404's HEADERS and DATA out) on one connection, with
// no sockets (fakeConn) and no origin: what gateway/http2 and the exchange
// cost per request beside the transport and the proxying. Streams come 10
// per callback with a WINDOW_UPDATE, as h2load -m 10 sends them.
//
//	go test -run '^$' -bench ConnStreams -benchmem ./gateway/http2/
func BenchmarkConnStreams(b *testing.B) {
	c, fc, l := newTestConn(b)
	feed(l, c, fc, clientFrames(func(*http2.Framer, func(...string) []byte) {}))
	const batch = 10
	var in, blk bytes.Buffer
	fr := http2.NewFramer(&in, nil)
	enc := hpack.NewEncoder(&blk)
	req := [...]hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "localhost:8443"}, {Name: ":path", Value: "/x"},
		{Name: "user-agent", Value: "h2load nghttp2/1.52.0"}, {Name: "accept", Value: "*/*"}}
	id := uint32(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		in.Reset()
		_ = fr.WriteWindowUpdate(0, 1<<12) // what the 404s take of the window
		for j := 0; j < batch; j++ {
			blk.Reset()
			for _, f := range req {
				_ = enc.WriteField(f)
			}
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndStream: true, EndHeaders: true, BlockFragment: blk.Bytes()})
			id += 2
		}
		fc.out = fc.out[:0]
		b.StartTimer()
		feed(l, c, fc, in.Bytes())
		if c.state != stOpen || len(c.streams) != 0 {
			b.Fatalf("after %d streams: connection state %d, %d streams open", i+batch, c.state, len(c.streams))
		}
	}
}
