package tlsconn

import (
	"bytes"
	"testing"
)

// helloReady: enough of a hello to start the handshake.
func helloReady(b []byte) bool { return helloState(b) != helloWait }

// record is a TLS record of type typ around body.
func record(typ byte, body []byte) []byte {
	return append([]byte{typ, 3, 1, byte(len(body) >> 8), byte(len(body))}, body...)
}

// helloMsg is a ClientHello handshake message of size bytes after its header.
func helloMsg(size int) []byte {
	return append([]byte{1, byte(size >> 16), byte(size >> 8), byte(size)}, bytes.Repeat([]byte{7}, size)...)
}

// TestHelloReady: a handshake starts (and takes a slot) once the client's
// ClientHello is all in, over one record or several, or at once on what
// crypto/tls refuses as soon as it reads it.
func TestHelloReady(t *testing.T) {
	msg := helloMsg(300)
	whole := record(22, msg)
	split := append(record(22, msg[:100]), record(22, msg[100:])...)
	tiny := []byte{}
	for _, b := range msg[:50] {
		tiny = append(tiny, record(22, []byte{b})...)
	}
	cases := []struct {
		name string
		b    []byte
		want bool
	}{
		{"a whole hello", whole, true},
		{"a whole hello and more", append(append([]byte{}, whole...), 22, 3), true},
		{"one byte short", whole[:len(whole)-1], false},
		{"the header only", whole[:5], false},
		{"less than a header", whole[:3], false},
		{"nothing", nil, false},
		{"a hello over two records", split, true},
		{"its first record only", split[:105], false},
		{"the second record's header too", split[:110], false},
		{"a 1-byte record: a whole record, not a whole hello", []byte{22, 3, 1, 0, 1, 1}, false},
		{"a hello in 1-byte records, 50 of them", tiny, false},
		{"a hello announced past maxHelloWait", record(22, helloMsg(maxHelloWait + 1)[:10]), true},
		{"a first message that is not a hello", record(22, []byte{2, 0, 0, 5}), true},
		{"an empty handshake record", record(22, nil), true},
		{"an alert record, whole", record(21, []byte{2, 40}), true},
		{"an alert record, cut", record(21, []byte{2, 40})[:6], false},
		{"application data", append([]byte{23}, whole[1:8]...), true},
		{"plain HTTP", []byte("GET / HTTP/1.1\r\n"), true},
		{"a length past maxCiphertext", []byte{22, 3, 1, 0x48, 0x01}, true},
		{"the longest record, its header only", []byte{22, 3, 1, 0x48, 0x00}, false},
		{"helloBudget bytes of a hello in tiny records", bytes.Repeat([]byte{22, 3, 1, 0, 1, 7}, helloBudget/6+1), true},
	}
	for _, tc := range cases {
		if got := helloReady(tc.b); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Of those ready, only whole hellos may evict (awaitHello).
	for _, tc := range []struct {
		name string
		b    []byte
		want int
	}{
		{"a whole hello", whole, helloWhole},
		{"a hello over two records", split, helloWhole},
		{"plain HTTP", []byte("GET / HTTP/1.1\r\n"), helloOther},
		{"an alert", record(21, []byte{2, 40}), helloOther},
		{"a hello announced past maxHelloWait", record(22, helloMsg(maxHelloWait + 1)[:10]), helloOther},
		{"helloBudget bytes", bytes.Repeat([]byte{22, 3, 1, 0, 1, 7}, helloBudget/6+1), helloOther},
	} {
		if got := helloState(tc.b); got != tc.want {
			t.Errorf("%s: state %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestHelloScanByteByByte: a scan fed a byte at a time (a read each) says
// what a scan from scratch says over every prefix, and reads each whole
// record once.
func TestHelloScanByteByByte(t *testing.T) {
	msg := helloMsg(300)
	tiny := []byte{}
	for _, b := range msg {
		tiny = append(tiny, record(22, []byte{b})...)
	}
	for _, b := range [][]byte{record(22, msg), append(record(22, msg[:100]), record(22, msg[100:])...), tiny,
		[]byte("GET / HTTP/1.1\r\n"), record(21, []byte{2, 40})} {
		var s helloScan
		for i := range len(b) + 1 {
			if got, want := s.state(b[:i]), helloState(b[:i]); got != want {
				t.Fatalf("%d bytes of %x: state %d, from scratch %d", i, b[:min(len(b), 16)], got, want)
			}
			if s.off > i {
				t.Fatalf("%d bytes: read on from %d", i, s.off)
			}
		}
	}
	// The tiny records: each read once, the scan past all but the last.
	var s helloScan
	for i := range len(tiny) {
		s.state(tiny[:i])
	}
	if s.off != len(tiny)-6 {
		t.Errorf("a hello in 1-byte records: the scan stands at %d, want %d", s.off, len(tiny)-6)
	}
}

// FuzzHelloReady: helloReady never panics; once it says ready, more bytes
// never make it take that back (the loop starts the handshake at the first
// yes); and a scan read on after more bytes agrees with one from scratch.
func FuzzHelloReady(f *testing.F) {
	msg := helloMsg(300)
	f.Add(record(22, msg), []byte{22})
	f.Add(append(record(22, msg[:100]), record(22, msg[100:])...), []byte{})
	f.Add([]byte{22, 3, 1, 0, 1, 1}, []byte{22, 3, 1, 0, 1, 0})
	f.Add(record(21, []byte{2, 40}), []byte{1})
	f.Add([]byte("GET / HTTP/1.1\r\n"), []byte("\r\n"))
	f.Add([]byte{22, 3, 1, 0x48, 0x01}, []byte{0})
	f.Fuzz(func(t *testing.T, b, more []byte) {
		all := append(append([]byte{}, b...), more...)
		if helloReady(b) && !helloReady(all) {
			t.Fatalf("ready with %x, not with %x more", b, more)
		}
		// Read on from where it stopped (inputState), the scan agrees with
		// one over all the bytes at once, whenever the first said wait.
		var s helloScan
		if s.state(b) == helloWait {
			if got, want := s.state(all), helloState(all); got != want {
				t.Fatalf("%x then %x more: state %d, read at once %d", b, more, got, want)
			}
		}
	})
}

// BenchmarkHelloScanTinyRecords: the loop's cost of classifying a hello of
// ~20 KiB sent in 1-byte records, a read each (an attacker's), read on from
// where the last read stopped against read from scratch every time:
// go test -run '^$' -bench HelloScanTinyRecords ./gateway/tlsconn/
func BenchmarkHelloScanTinyRecords(b *testing.B) {
	msg := helloMsg(3300)
	tiny := []byte{}
	for _, c := range msg {
		tiny = append(tiny, record(22, []byte{c})...)
	}
	b.Run("resumed", func(b *testing.B) {
		for range b.N {
			var s helloScan
			for i := range len(tiny) {
				s.state(tiny[:i])
			}
		}
	})
	b.Run("from-scratch", func(b *testing.B) {
		for range b.N {
			for i := range len(tiny) {
				helloState(tiny[:i])
			}
		}
	})
}
