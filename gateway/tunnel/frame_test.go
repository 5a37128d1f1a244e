package tunnel

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"gozer/gateway/internal/fuzzseed"
	"gozer/gateway/push"
)

var key = [4]byte{1, 2, 3, 4}

// masked and plain build frames as a client and a server send them.
func masked(op push.Opcode, fin bool, p []byte) []byte {
	return push.AppendMaskedFrame(nil, op, fin, key, p)
}

func plain(op push.Opcode, fin bool, p []byte) []byte {
	return append(push.AppendFrameHeader(nil, op, fin, len(p)), p...)
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func closePayload(code uint16, reason string) []byte {
	return append([]byte{byte(code >> 8), byte(code)}, reason...)
}

// trackerCases: a stream of one direction, what Feed relays of it, and the
// close code and error it ends with.
var trackerCases = []struct {
	name   string
	masked bool
	in     []byte
	relay  int    // bytes Feed relays (-1: all)
	code   uint16 // CloseCode after
	err    bool
}{
	{"text", true, masked(push.OpText, true, []byte("hello")), -1, 0, false},
	{"fragments and a ping between", true, cat(masked(push.OpText, false, []byte("he")),
		masked(push.OpPing, true, nil), masked(push.OpContinuation, true, []byte("llo"))), -1, 0, false},
	{"64 KiB binary (16-bit length)", false, plain(push.OpBinary, true, make([]byte, 65535)), -1, 0, false},
	{"70 KiB binary (64-bit length)", false, plain(push.OpBinary, true, make([]byte, 70<<10)), -1, 0, false},
	{"rsv bits (an extension's) pass", false, func() []byte {
		f := plain(push.OpText, true, []byte("x"))
		f[0] |= 0x40
		return f
	}(), -1, 0, false},
	{"close with code, then data not relayed", true, cat(masked(push.OpClose, true, closePayload(4001, "bye")),
		masked(push.OpText, true, []byte("late"))), len(masked(push.OpClose, true, closePayload(4001, "bye"))), 4001, false},
	{"server close without code", false, cat(plain(push.OpClose, true, nil), []byte{0x81}), 2, 1005, false},
	{"unmasked client frame", true, plain(push.OpText, true, []byte("hi")), 2, 0, true},
	{"masked server frame", false, masked(push.OpText, true, []byte("hi")), 6, 0, true},
	{"reserved opcode", false, []byte{0x83, 0}, 2, 0, true},
	{"fragmented ping", false, []byte{0x09, 0}, 2, 0, true},
	{"ping over 125 bytes", false, []byte{0x89, 126, 0, 126}, 4, 0, true},
	{"close with a 1-byte payload", false, []byte{0x88, 1, 3}, 2, 0, true},
	{"64-bit length top bit", false, []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10, 0, true},
}

// TestTracker feeds each case whole and byte by byte: the same bytes are
// relayed, with the same end.
func TestTracker(t *testing.T) {
	for _, tc := range trackerCases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.relay
			if want < 0 {
				want = len(tc.in)
			}
			whole := NewTracker(tc.masked)
			n, err := whole.Feed(tc.in, false)
			if n != want || (err != nil) != tc.err || whole.CloseCode() != tc.code {
				t.Fatalf("whole: relayed %d, err %v, code %d; want %d, err %v, code %d", n, err, whole.CloseCode(), want, tc.err, tc.code)
			}
			if err != nil && !errors.Is(err, ErrProtocol) {
				t.Errorf("error %v does not wrap ErrProtocol", err)
			}
			bytewise := NewTracker(tc.masked)
			total := 0
			for i := 0; i < len(tc.in); i++ {
				n, err = bytewise.Feed(tc.in[i:i+1], false)
				total += n
				if err != nil || n == 0 {
					break
				}
			}
			if total != want || (err != nil) != tc.err || bytewise.CloseCode() != tc.code {
				t.Fatalf("byte by byte: relayed %d, err %v, code %d; want %d", total, err, bytewise.CloseCode(), want)
			}
			if !tc.err && tc.relay < 0 && !whole.AtBoundary() {
				t.Errorf("a stream of whole frames does not end at a boundary")
			}
		})
	}
}

// TestTrackerStop: with stop, Feed relays up to the end of the frame in
// progress and no further.
func TestTrackerStop(t *testing.T) {
	a, b := masked(push.OpBinary, true, make([]byte, 300)), masked(push.OpText, true, []byte("next"))
	tr := NewTracker(true)
	if n, _ := tr.Feed(a[:100], false); n != 100 || tr.AtBoundary() {
		t.Fatalf("first piece: %d, boundary %v", n, tr.AtBoundary())
	}
	n, err := tr.Feed(cat(a[100:], b), true)
	if err != nil || n != len(a)-100 || !tr.AtBoundary() {
		t.Fatalf("stop: relayed %d (want %d), err %v, boundary %v", n, len(a)-100, err, tr.AtBoundary())
	}
	if n, _ := tr.Feed(b, true); n != 0 {
		t.Fatalf("stop at a boundary relayed %d; want 0", n)
	}
}

// trackerSeeds are the table's streams, committed under
// testdata/fuzz/FuzzTracker (regenerate with GOZER_WRITE_CORPUS=1).
func trackerSeeds() []trackerSeed {
	var out []trackerSeed
	for i, tc := range trackerCases {
		out = append(out, trackerSeed{tc.in, tc.masked, uint16(i * 7)})
	}
	return out
}

// trackerSeed is FuzzTracker's arguments.
type trackerSeed struct {
	in     []byte
	masked bool
	split  uint16
}

func TestWriteTrackerCorpus(t *testing.T) {
	if os.Getenv("GOZER_WRITE_CORPUS") == "" {
		t.Skip("set GOZER_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzTracker")
	}
	for i, s := range trackerSeeds() {
		fuzzseed.Write(t, "FuzzTracker", i, s.in, s.masked, s.split)
	}
}

// FuzzTracker checks, for any stream and any split of it into two pieces:
// no panic; Feed never relays more than it was given; the split changes
// neither what is relayed nor the end (error, close code, boundary); after
// a close nothing more is relayed.
func FuzzTracker(f *testing.F) {
	for _, s := range trackerSeeds() {
		f.Add(s.in, s.masked, s.split)
	}
	f.Fuzz(func(t *testing.T, in []byte, maskedDir bool, split uint16) {
		whole := NewTracker(maskedDir)
		n, err := whole.Feed(in, false)
		if n < 0 || n > len(in) {
			t.Fatalf("relayed %d of %d", n, len(in))
		}
		if err == nil && !whole.Closed() && n != len(in) {
			t.Fatalf("relayed %d of %d without a close or an error", n, len(in))
		}
		at := int(split) % (len(in) + 1)
		parts := NewTracker(maskedDir)
		n1, err1 := parts.Feed(in[:at], false)
		n2 := 0
		var err2 error
		if err1 == nil && !parts.Closed() {
			n2, err2 = parts.Feed(in[at:], false)
		}
		if n1+n2 != n || (err1 != nil || err2 != nil) != (err != nil) ||
			parts.CloseCode() != whole.CloseCode() || parts.AtBoundary() != whole.AtBoundary() {
			t.Fatalf("split at %d: relayed %d+%d (whole %d), errs %v %v (whole %v), codes %d %d",
				at, n1, n2, n, err1, err2, err, parts.CloseCode(), whole.CloseCode())
		}
		if whole.Closed() {
			if m, _ := whole.Feed(in, false); m != 0 {
				t.Fatalf("relayed %d after a close", m)
			}
		}
	})
}
