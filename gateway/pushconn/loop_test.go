package pushconn

import (
	"math"
	"testing"
	"time"
	"unsafe"
)

func TestSpread(t *testing.T) {
	cases := []struct {
		name string
		rnd  uint32
		span int64
		want int64
	}{
		{"zero span", math.MaxUint32, 0, 0},
		{"negative span", 12345, -5, 0},
		{"lowest draw", 0, int64(30 * time.Second), 0},
		{"middle of 30s", 1 << 31, int64(30 * time.Second), int64(15 * time.Second)},
		// A modulo of the 32-bit draw would cap every spread at 4.29 s.
		{"top of 30s is near 30s", math.MaxUint32, int64(30 * time.Second), int64(30*time.Second) - 7},
		{"one nanosecond", math.MaxUint32, 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := spread(c.rnd, c.span); got != c.want {
				t.Fatalf("spread(%d, %d) = %d, want %d", c.rnd, c.span, got, c.want)
			}
		})
	}
}

// TestPushConnSize: an idle push connection's own state stays in the 128-byte
// size class (the README's memory per connection counts on it).
func TestPushConnSize(t *testing.T) {
	if s := unsafe.Sizeof(Conn{}); s > 128 {
		t.Errorf("Conn is %d bytes, want at most 128", s)
	}
}
