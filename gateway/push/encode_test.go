package push

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// TestAppendFrameAgainstGobwas reads what the encoder writes with gobwas/ws's
// frame reader, an independent implementation.
func TestAppendFrameAgainstGobwas(t *testing.T) {
	tests := []struct {
		name    string
		op      Opcode
		payload string
		hdr     int
	}{
		{"empty text", OpText, "", 2},
		{"short text", OpText, "hello", 2},
		{"125", OpBinary, strings.Repeat("a", 125), 2},
		{"126", OpBinary, strings.Repeat("a", 126), 4},
		{"65535", OpBinary, strings.Repeat("a", 65535), 4},
		{"65536", OpBinary, strings.Repeat("a", 65536), 10},
		{"ping", OpPing, "p", 2},
		{"pong", OpPong, "", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendFrame(nil, tc.op, []byte(tc.payload))
			if len(b) != tc.hdr+len(tc.payload) || FrameHeaderSize(len(tc.payload)) != tc.hdr {
				t.Fatalf("frame of %d bytes, header size %d, want header %d", len(b), FrameHeaderSize(len(tc.payload)), tc.hdr)
			}
			f, err := readFrame(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if !f.Header.Fin || f.Header.Masked || f.Header.Rsv != 0 || Opcode(f.Header.OpCode) != tc.op || string(f.Payload) != tc.payload {
				t.Fatalf("gobwas read %+v", f.Header)
			}
		})
	}
}

func TestAppendMaskedFrameAgainstGobwas(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 1000, 70000} {
		payload := bytes.Repeat([]byte{'q'}, n)
		b := AppendMaskedFrame(nil, OpBinary, n%2 == 0, testMask, payload)
		f, err := readFrame(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if !f.Header.Masked || f.Header.Mask != testMask {
			t.Fatalf("n=%d: frame not masked with the mask: %+v", n, f.Header)
		}
		f = ws.UnmaskFrameInPlace(f)
		if f.Header.Fin != (n%2 == 0) || !bytes.Equal(f.Payload, payload) {
			t.Fatalf("n=%d: gobwas read %+v", n, f.Header)
		}
		// And gobwas' client frames decode with ours.
		var w bytes.Buffer
		if err := ws.WriteFrame(&w, ws.MaskFrameWith(ws.NewBinaryFrame(payload), testMask)); err != nil {
			t.Fatal(err)
		}
		d := NewDecoder(1<<20, nil)
		_, m, err := d.Decode(w.Bytes())
		if err != nil || m.Op != OpBinary || !bytes.Equal(m.Payload, payload) {
			t.Fatalf("n=%d: decode of gobwas frame: %v %v", n, m.Op, err)
		}
	}
}

// readFrame reads one frame with gobwas/ws's header reader, bounding the
// payload as its docs advise.
func readFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > 1<<20 {
		return ws.Frame{}, fmt.Errorf("frame of %d bytes", h.Length)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return ws.Frame{}, err
	}
	return ws.Frame{Header: h, Payload: p}, nil
}

func TestAppendFrameCutsControlPayload(t *testing.T) {
	b := AppendPing(nil, bytes.Repeat([]byte{'p'}, 300))
	if len(b) != 2+125 {
		t.Fatalf("ping frame of %d bytes", len(b))
	}
}

func TestAppendClose(t *testing.T) {
	euro := strings.Repeat("€", 50) // 150 bytes, 3 per rune
	tests := []struct {
		name   string
		code   CloseCode
		reason string
		want   []byte
	}{
		{"normal", CloseNormal, "", []byte{0x88, 2, 0x03, 0xe8}},
		{"going away", CloseGoingAway, "bye", []byte{0x88, 5, 0x03, 0xe9, 'b', 'y', 'e'}},
		{"no status", CloseNoStatus, "ignored", []byte{0x88, 0}},
		{"abnormal", CloseAbnormal, "x", []byte{0x88, 0}},
		{"zero", 0, "", []byte{0x88, 0}},
		{"app", 4000, "a", []byte{0x88, 3, 0x0f, 0xa0, 'a'}},
		{"long ascii cut to 123", CloseNormal, strings.Repeat("r", 200), append([]byte{0x88, 125, 0x03, 0xe8}, strings.Repeat("r", 123)...)},
		{"long utf-8 cut at rune", CloseNormal, euro, append([]byte{0x88, 2 + 123, 0x03, 0xe8}, euro[:123]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendClose(nil, tc.code, tc.reason)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got % x\nwant % x", got, tc.want)
			}
			if !utf8.Valid(got[min(len(got), 4):]) {
				t.Fatal("reason not valid utf-8")
			}
		})
	}
	// A reason cut inside a rune loses the partial rune.
	got := AppendClose(nil, CloseNormal, "x"+euro)
	if r := got[4:]; len(r) != 121 || !utf8.Valid(r) {
		t.Fatalf("reason of %d bytes, valid %v", len(r), utf8.Valid(r))
	}
}

func TestEncodeNoAllocs(t *testing.T) {
	dst := make([]byte, 0, 256)
	payload := bytes.Repeat([]byte{'m'}, 100)
	for name, fn := range map[string]func(){
		"frame": func() { dst = AppendFrame(dst[:0], OpText, payload) },
		"text":  func() { dst = AppendText(dst[:0], "hello") },
		"close": func() { dst = AppendClose(dst[:0], CloseGoingAway, "server going away") },
		"ping":  func() { dst = AppendPing(dst[:0], nil) },
		"pong":  func() { dst = AppendPong(dst[:0], payload[:10]) },
	} {
		if a := testing.AllocsPerRun(100, fn); a != 0 {
			t.Errorf("%s allocates %.1f times", name, a)
		}
	}
}
