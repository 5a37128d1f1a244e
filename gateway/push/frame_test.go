package push

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/gobwas/ws"
)

var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// cf builds a masked client frame.
func cf(op Opcode, fin bool, payload string) []byte {
	return AppendMaskedFrame(nil, op, fin, testMask, []byte(payload))
}

// raw builds a frame from explicit header bytes, masking the payload with
// testMask when the mask bit is set.
func raw(b0, b1 byte, ext []byte, payload string) []byte {
	out := append([]byte{b0, b1}, ext...)
	p := []byte(payload)
	if b1&0x80 != 0 {
		out = append(out, testMask[:]...)
		ws.Cipher(p, testMask, 0)
	}
	return append(out, p...)
}

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

type event struct {
	op      Opcode
	payload string
	code    CloseCode
}

// feed plays the event loop: bytes arrive in chunks (sizes from chunk; 0 or
// nil: all at once) into an inbound buffer, the decoder runs over it, and the
// consumed bytes are discarded. It returns the events and the first error.
func feed(d *Decoder, input []byte, chunk func(i int) int) ([]event, error) {
	input = bytes.Clone(input) // Decode unmasks in place
	var inbuf, evs = []byte(nil), []event(nil)
	for off, i := 0, 0; off < len(input); i++ {
		k := len(input) - off
		if chunk != nil {
			k = min(max(chunk(i), 1), k)
		}
		inbuf = append(inbuf, input[off:off+k]...)
		off += k
		buf, consumed := inbuf, 0
		for {
			n, m, err := d.Decode(buf)
			buf, consumed = buf[n:], consumed+n
			if err != nil {
				return evs, err
			}
			if !m.Ok() {
				break
			}
			evs = append(evs, event{m.Op, string(m.Payload), m.Code})
		}
		inbuf = append(inbuf[:0], inbuf[consumed:]...)
	}
	return evs, nil
}

func closeCode(err error) CloseCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

func TestDecoder(t *testing.T) {
	long := strings.Repeat("x", 200)
	big := strings.Repeat("y", 70000)
	tests := []struct {
		name  string
		max   int
		in    []byte
		want  []event
		code  CloseCode // expected close error, 0 for none
		extra string    // substring of the error reason
	}{
		{name: "text", in: cf(OpText, true, "hello"), want: []event{{OpText, "hello", 0}}},
		{name: "empty text", in: cf(OpText, true, ""), want: []event{{OpText, "", 0}}},
		{name: "binary", in: cf(OpBinary, true, "\x00\xff\x80"), want: []event{{OpBinary, "\x00\xff\x80", 0}}},
		{name: "16-bit length", in: cf(OpText, true, long), want: []event{{OpText, long, 0}}},
		{name: "64-bit length", max: 1 << 20, in: cf(OpBinary, true, big), want: []event{{OpBinary, big, 0}}},
		{name: "two messages", in: cat(cf(OpText, true, "a"), cf(OpBinary, true, "b")), want: []event{{OpText, "a", 0}, {OpBinary, "b", 0}}},
		{name: "fragmented", in: cat(cf(OpText, false, "he"), cf(OpContinuation, false, "l"), cf(OpContinuation, true, "lo")), want: []event{{OpText, "hello", 0}}},
		{name: "fragmented with empty parts", in: cat(cf(OpBinary, false, ""), cf(OpContinuation, true, "")), want: []event{{OpBinary, "", 0}}},
		{name: "ping inside fragments", in: cat(cf(OpText, false, "he"), cf(OpPing, true, "p"), cf(OpContinuation, true, "llo")), want: []event{{OpPing, "p", 0}, {OpText, "hello", 0}}},
		{name: "ping pong", in: cat(cf(OpPing, true, "abc"), cf(OpPong, true, "")), want: []event{{OpPing, "abc", 0}, {OpPong, "", 0}}},
		{name: "ping of 125", in: cf(OpPing, true, strings.Repeat("p", 125)), want: []event{{OpPing, strings.Repeat("p", 125), 0}}},
		{name: "close with code and reason", in: cf(OpClose, true, "\x03\xe8bye"), want: []event{{OpClose, "bye", CloseNormal}}},
		{name: "close without payload", in: cf(OpClose, true, ""), want: []event{{OpClose, "", CloseNoStatus}}},
		{name: "close app code", in: cf(OpClose, true, "\x0f\xa1"), want: []event{{OpClose, "", 4001}}},
		{name: "close code 1013", in: cf(OpClose, true, "\x03\xf5"), want: []event{{OpClose, "", CloseTryAgainLater}}},
		{name: "input after close ignored", in: cat(cf(OpClose, true, ""), []byte("garbage that is not a frame")), want: []event{{OpClose, "", CloseNoStatus}}},
		{name: "utf-8 text", in: cf(OpText, true, "héllo wörld €𝄞"), want: []event{{OpText, "héllo wörld €𝄞", 0}}},
		{name: "utf-8 rune split over fragments", in: cat(cf(OpText, false, "a\xf0\x9d"), cf(OpContinuation, false, "\x84"), cf(OpContinuation, true, "\x9eb")), want: []event{{OpText, "a𝄞b", 0}}},
		{name: "non-minimal length accepted", in: raw(0x81, 0x80|126, []byte{0, 2}, "ok"), want: []event{{OpText, "ok", 0}}},
		{name: "exactly max", max: 5, in: cf(OpText, true, "12345"), want: []event{{OpText, "12345", 0}}},
		{name: "fragments exactly max", max: 5, in: cat(cf(OpText, false, "12"), cf(OpContinuation, true, "345")), want: []event{{OpText, "12345", 0}}},

		{name: "unmasked", in: raw(0x81, 0x02, nil, "hi"), code: 1002, extra: "not masked"},
		{name: "rsv1", in: raw(0xC1, 0x82, nil, "hi"), code: 1002, extra: "reserved bits"},
		{name: "rsv3", in: raw(0x91, 0x82, nil, "hi"), code: 1002, extra: "reserved bits"},
		{name: "reserved data opcode", in: raw(0x83, 0x80, nil, ""), code: 1002, extra: "reserved opcode"},
		{name: "reserved control opcode", in: raw(0x8B, 0x80, nil, ""), code: 1002, extra: "reserved opcode"},
		{name: "fragmented ping", in: raw(0x09, 0x80, nil, ""), code: 1002, extra: "fragmented control"},
		{name: "ping over 125", in: cf(OpPing, true, strings.Repeat("p", 126)), code: 1002, extra: "over 125"},
		{name: "close over 125", in: cf(OpClose, true, "\x03\xe8"+strings.Repeat("r", 124)), code: 1002, extra: "over 125"},
		{name: "continuation first", in: cf(OpContinuation, true, "x"), code: 1002, extra: "without a message"},
		{name: "text inside fragments", in: cat(cf(OpText, false, "a"), cf(OpText, true, "b")), code: 1002, extra: "inside a fragmented"},
		{name: "length msb", max: 1 << 30, in: raw(0x82, 0x80|127, []byte{0x80, 0, 0, 0, 0, 0, 0, 1}, ""), code: 1002, extra: "most significant"},
		{name: "close of one byte", in: cf(OpClose, true, "\x03"), code: 1002, extra: "one byte"},
		{name: "close code 999", in: cf(OpClose, true, "\x03\xe7"), code: 1002, extra: "invalid close code"},
		{name: "close code 1005", in: cf(OpClose, true, "\x03\xed"), code: 1002},
		{name: "close code 1006", in: cf(OpClose, true, "\x03\xee"), code: 1002},
		{name: "close code 1004", in: cf(OpClose, true, "\x03\xec"), code: 1002},
		{name: "close code 1015", in: cf(OpClose, true, "\x03\xf7"), code: 1002},
		{name: "close code 2000", in: cf(OpClose, true, "\x07\xd0"), code: 1002},
		{name: "close code 5000", in: cf(OpClose, true, "\x13\x88"), code: 1002},
		{name: "close reason bad utf-8", in: cf(OpClose, true, "\x03\xe8\xff"), code: 1007},
		{name: "text bad utf-8", in: cf(OpText, true, "a\xffb"), code: 1007},
		{name: "text truncated rune", in: cf(OpText, true, "a\xe2\x82"), code: 1007},
		{name: "text surrogate", in: cf(OpText, true, "\xed\xa0\x80"), code: 1007},
		{name: "fragment bad utf-8 fails fast", in: cat(cf(OpText, false, "ok\xc0\xaf"), cf(OpPing, true, "never")), code: 1007},
		{name: "fragmented ends mid rune", in: cat(cf(OpText, false, "a"), cf(OpContinuation, true, "\xe2\x82")), code: 1007},
		{name: "binary need not be utf-8", in: cf(OpBinary, true, "\xff"), want: []event{{OpBinary, "\xff", 0}}},
		{name: "over max", max: 4, in: cf(OpText, true, "12345"), code: 1009},
		{name: "fragments over max", max: 4, in: cat(cf(OpText, false, "123"), cf(OpPing, true, "p"), cf(OpContinuation, true, "45")), want: []event{{OpPing, "p", 0}}, code: 1009},
		{name: "huge length rejected from header", max: 1024, in: raw(0x82, 0x80|127, []byte{0, 0, 0, 1, 0, 0, 0, 0}, ""), code: 1009},
		{name: "message before error delivered", in: cat(cf(OpText, true, "first"), raw(0x81, 0x01, nil, "x")), want: []event{{OpText, "first", 0}}, code: 1002},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, split := range []struct {
				name  string
				chunk func(int) int
			}{{"whole", nil}, {"bytewise", func(int) int { return 1 }}, {"by3", func(int) int { return 3 }}} {
				d := NewDecoder(tc.max, NewBufferPool(2))
				got, err := feed(&d, tc.in, split.chunk)
				if code := closeCode(err); code != tc.code {
					t.Fatalf("%s: error %v (code %d), want code %d", split.name, err, code, tc.code)
				}
				if err != nil && tc.extra != "" && !strings.Contains(err.Error(), tc.extra) {
					t.Errorf("%s: error %q lacks %q", split.name, err, tc.extra)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("%s: got %d events %+v, want %+v", split.name, len(got), got, tc.want)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Errorf("%s: event %d = %+v, want %+v", split.name, i, got[i], tc.want[i])
					}
				}
				if err != nil {
					// A failed decoder stays failed.
					if _, _, err2 := d.Decode(cf(OpText, true, "x")); err2 != err {
						t.Errorf("%s: after failure Decode returned %v, want %v", split.name, err2, err)
					}
				}
			}
		})
	}
}

func TestDecoderPartialFrameConsumesNothing(t *testing.T) {
	d := NewDecoder(0, nil)
	in := cf(OpText, true, "hello world")
	for i := 0; i < len(in); i++ {
		n, m, err := d.Decode(in[:i])
		if n != 0 || m.Ok() || err != nil {
			t.Fatalf("prefix %d: n=%d m=%+v err=%v", i, n, m, err)
		}
	}
	// The prefix calls must not have unmasked anything.
	n, m, err := d.Decode(in)
	if n != len(in) || string(m.Payload) != "hello world" || err != nil {
		t.Fatalf("whole: n=%d m=%q err=%v", n, m.Payload, err)
	}
}

func TestDecoderPayloadAliasesInput(t *testing.T) {
	d := NewDecoder(0, nil)
	in := cf(OpBinary, true, "zero copy")
	_, m, _ := d.Decode(in)
	if &m.Payload[0] != &in[len(in)-len("zero copy")] {
		t.Fatal("a single-frame message was copied")
	}
}

func TestDecoderBufferPool(t *testing.T) {
	pool := NewBufferPool(1)
	d := NewDecoder(0, pool)
	in := cat(cf(OpText, false, "ab"), cf(OpContinuation, true, "cd"))
	for i := 0; i < 3; i++ {
		if _, m, err := d.Decode(bytes.Clone(in)); err != nil || string(m.Payload) != "abcd" {
			t.Fatalf("round %d: %q %v", i, m.Payload, err)
		}
		if d.Buffered() != 4 || pool.Idle() != 0 {
			t.Fatalf("round %d: buffered %d idle %d while the message is handed out", i, d.Buffered(), pool.Idle())
		}
		// The next call recycles the handed-out buffer: the decoder holds none.
		if n, m, _ := d.Decode(nil); n != 0 || m.Ok() {
			t.Fatal("empty input produced something")
		}
		if d.Buffered() != 0 || pool.Idle() != 1 {
			t.Fatalf("round %d: after: buffered %d idle %d", i, d.Buffered(), pool.Idle())
		}
	}
	// An open fragmented message holds a buffer until Release.
	d.Decode(cf(OpText, false, "open"))
	if d.Buffered() != 4 || pool.Idle() != 0 {
		t.Fatalf("open message: buffered %d idle %d", d.Buffered(), pool.Idle())
	}
	d.Release()
	if pool.Idle() != 1 {
		t.Fatal("Release did not return the buffer")
	}
	// A close frame in the middle of a fragmented message drops it too.
	d.Init(0, pool)
	d.Decode(cat(cf(OpText, false, "open"), cf(OpClose, true, "")))
	if !d.Closed() || d.Buffered() != 0 || pool.Idle() != 1 {
		t.Fatalf("close mid-message: closed %v buffered %d idle %d", d.Closed(), d.Buffered(), pool.Idle())
	}
}

func TestDecoderSize(t *testing.T) {
	if s := unsafe.Sizeof(Decoder{}); s > 56 {
		t.Fatalf("Decoder is %d bytes, documented as 56", s)
	}
}

func TestDecoderMaxClamp(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{0, DefaultMaxMessage}, {-1, DefaultMaxMessage}, {10, 10}, {1 << 40, 1 << 30}} {
		d := NewDecoder(tc.in, nil)
		if d.MaxMessage() != tc.want {
			t.Errorf("NewDecoder(%d).MaxMessage() = %d, want %d", tc.in, d.MaxMessage(), tc.want)
		}
	}
}

func TestDecodeNoAllocs(t *testing.T) {
	pool := NewBufferPool(4)
	d := NewDecoder(0, pool)
	single := cf(OpText, true, strings.Repeat("m", 100))
	frag := cat(cf(OpBinary, false, strings.Repeat("a", 50)), cf(OpPing, true, "p"), cf(OpContinuation, true, strings.Repeat("b", 50)))
	buf := make([]byte, len(frag))
	run := func(in []byte) {
		copy(buf, in)
		b := buf[:len(in)]
		for {
			n, m, err := d.Decode(b)
			b = b[n:]
			if err != nil {
				t.Fatal(err)
			}
			if !m.Ok() {
				return
			}
		}
	}
	run(frag) // warm the pool
	for _, in := range [][]byte{single, frag} {
		if a := testing.AllocsPerRun(100, func() { run(in) }); a != 0 {
			t.Errorf("decode allocates %.1f times per run", a)
		}
	}
}

func TestCloseCodeValid(t *testing.T) {
	valid := map[CloseCode]bool{1000: true, 1001: true, 1002: true, 1003: true, 1007: true, 1008: true, 1009: true,
		1010: true, 1011: true, 1012: true, 1013: true, 1014: true, 3000: true, 3999: true, 4000: true, 4999: true}
	for c := CloseCode(0); c < 6000; c++ {
		if c.Valid() != valid[c] && !(c > 3000 && c < 4999) {
			t.Errorf("CloseCode(%d).Valid() = %v", c, c.Valid())
		}
	}
}

func TestOpcodeString(t *testing.T) {
	for _, tc := range []struct {
		op   Opcode
		want string
	}{{OpText, "text"}, {OpBinary, "binary"}, {OpContinuation, "continuation"}, {OpClose, "close"}, {OpPing, "ping"}, {OpPong, "pong"}, {3, "opcode 3"}} {
		if got := tc.op.String(); got != tc.want {
			t.Errorf("%d: %q, want %q", byte(tc.op), got, tc.want)
		}
	}
}
