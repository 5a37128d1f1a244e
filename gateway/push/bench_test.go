package push

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gozer/gateway/httpcodec"
)

// Decoding unmasks in place, so each iteration first copies the masked frames
// into the buffer (as gnet's read would put them there): the copy, a few ns
// for 100 bytes, is part of the figures.
func benchDecode(b *testing.B, wire []byte) {
	pool := NewBufferPool(4)
	d := NewDecoder(1<<20, pool)
	buf := make([]byte, len(wire))
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(buf, wire)
		in := buf
		for {
			n, m, err := d.Decode(in)
			in = in[n:]
			if err != nil {
				b.Fatal(err)
			}
			if !m.Ok() {
				break
			}
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	text100 := strings.Repeat("é", 50) // 100 bytes of non-ASCII UTF-8
	ascii100 := strings.Repeat("a", 100)
	for _, bc := range []struct {
		name string
		wire []byte
	}{
		{"text100", cf(OpText, true, ascii100)},
		{"text100-utf8", cf(OpText, true, text100)},
		{"binary100", cf(OpBinary, true, ascii100)},
		{"binary100-4fragments", cat(cf(OpBinary, false, ascii100[:25]), cf(OpContinuation, false, ascii100[:25]), cf(OpContinuation, false, ascii100[:25]), cf(OpContinuation, true, ascii100[:25]))},
		{"binary4k", cf(OpBinary, true, strings.Repeat("b", 4096))},
		{"ping", cf(OpPing, true, "")},
		{"batch10x100", cat(cf(OpText, true, ascii100), cf(OpText, true, ascii100), cf(OpText, true, ascii100), cf(OpText, true, ascii100), cf(OpText, true, ascii100),
			cf(OpText, true, ascii100), cf(OpText, true, ascii100), cf(OpText, true, ascii100), cf(OpText, true, ascii100), cf(OpText, true, ascii100))},
	} {
		b.Run(bc.name, func(b *testing.B) { benchDecode(b, bc.wire) })
	}
}

func BenchmarkEncode(b *testing.B) {
	payload := []byte(strings.Repeat("a", 100))
	dst := make([]byte, 0, 8192)
	b.Run("frame100", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			dst = AppendFrame(dst[:0], OpText, payload)
		}
	})
	big := []byte(strings.Repeat("a", 4096))
	b.Run("frame4k", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			dst = AppendFrame(dst[:0], OpBinary, big)
		}
	})
	b.Run("close", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			dst = AppendClose(dst[:0], CloseGoingAway, "max connection lifetime")
		}
	})
	b.Run("sse-event100", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			dst = AppendEvent(dst[:0], uint64(i), "update", payload)
		}
	})
	r := NewEventRing(16, 64<<10, 1)
	b.Run("sse-ring-append100", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			dst, _ = r.Append(dst[:0], "update", payload)
		}
	})
}

func BenchmarkHandshake(b *testing.B) {
	var req httpcodec.Request
	head := "GET /push/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + rfcKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if err := req.Parse([]byte(head)); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		key, err := CheckHandshake(req.Header.Method(), req.Header.Protocol(), &req.Header)
		if err != nil {
			b.Fatal(err)
		}
		dst = AppendAccept(dst[:0], key)
	}
}

func BenchmarkToken(b *testing.B) {
	tok, _ := Sign(secret, "user:42", t0.Add(time.Hour))
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := Verify(secret, tok, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sign", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, _ = Sign(secret, "user:42", t0)
		}
	})
}

type nopConn struct{ n atomic.Int64 }

func (c *nopConn) Push([]byte, bool) error { c.n.Add(1); return nil }

func BenchmarkRegistry(b *testing.B) {
	const n = 100_000
	r := NewRegistry(0)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("user:", i)
		r.Add(ids[i], &nopConn{})
	}
	b.Run("lookup-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			dst := make([]Conn, 0, 4)
			i := 0
			for pb.Next() {
				dst = r.Lookup(ids[i%n], dst[:0])
				i += 7919
			}
		})
	})
	b.Run("add-remove-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			c := &nopConn{}
			i := 0
			for pb.Next() {
				id := ids[i%n]
				r.Add(id, c)
				r.Remove(id, c)
				i += 7919
			}
		})
	})
	b.Run("broadcast-100k", func(b *testing.B) {
		b.ReportAllocs()
		msg := []byte("hello")
		for i := 0; i < b.N; i++ {
			if got := r.Broadcast("", msg, false); got != n {
				b.Fatalf("reached %d", got)
			}
		}
	})
}

func BenchmarkRateLimiter(b *testing.B) {
	l := NewRateLimiter(1e12, 1<<20, nil)
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprint("user:", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(ids[i&1023])
			i++
		}
	})
}

func BenchmarkTopics(b *testing.B) {
	const n = 100_000
	r, tp := NewRegistry(0), NewTopics(0, nil)
	api := NewAPI(APIConfig{Registry: r, Topics: tp})
	for i := range n {
		id := fmt.Sprint("user:", i)
		r.Add(id, &nopConn{})
		_ = tp.Subscribe("news", id)
	}
	b.Run("subscribe-unsubscribe-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				topic := fmt.Sprint("t", i%1000)
				_ = tp.Subscribe(topic, "dev")
				tp.Unsubscribe(topic, "dev")
				i += 7919
			}
		})
	})
	b.Run("publish-100k", func(b *testing.B) {
		b.ReportAllocs()
		msg := []byte("hello")
		for i := 0; i < b.N; i++ {
			if got := api.publishLocal("news", msg, false); got != n {
				b.Fatalf("reached %d", got)
			}
		}
	})
}

// BenchmarkHistoryBytesPerMessage measures the live heap one kept message
// costs beyond its payload: 1,000 client ids × 100 messages of 64 bytes
// (go test -run XXX -bench HistoryBytesPerMessage -benchtime 1x ./gateway/push/).
func BenchmarkHistoryBytesPerMessage(b *testing.B) {
	const ids, per, size = 1000, 100, 64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		h := NewHistory(HistoryConfig{MaxMessages: per, MaxBytes: 1 << 20, MaxAge: time.Hour, MaxTotal: 1 << 30}, NewRegistry(0), nil)
		for i := range ids {
			h.Left(fmt.Sprint("device-", i))
		}
		for j := range per {
			for i := range ids {
				msg := make([]byte, size) // as the push API makes each message
				msg[0] = byte(j)
				h.Deliver(fmt.Sprint("device-", i), msg, false)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(ids*per), "B/msg")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(ids*per)-size, "B/msg-overhead")
		runtime.KeepAlive(h)
	}
}
