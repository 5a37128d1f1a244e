package loop

import (
	"testing"
	"time"
)

// The loop passes through Go's scheduler once per yieldEvery of its clock,
// however many callbacks that takes, and not more often.
func TestMaybeYield(t *testing.T) {
	ms := int64(time.Millisecond)
	tests := []struct {
		name   string
		at     []int64 // the loop's clock (Mono) at each callback
		yields int
	}{
		{"callbacks 0.1 ms apart for 19.9 ms: at 5, 10 and 15 ms", steps(0, 100*time.Microsecond, 200), 3},
		{"one long gap: one yield", []int64{0, 60 * ms}, 1},
		{"every callback a period apart: each yields", []int64{5 * ms, 10 * ms, 15 * ms}, 3},
		{"just under a period: none", []int64{1 * ms, 4*ms + 999_999}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			defer func(g func()) { gosched = g }(gosched)
			gosched = func() { n++ }
			l := &Loop{}
			for _, at := range tc.at {
				l.clock.mono = at
				l.maybeYield()
			}
			if n != tc.yields {
				t.Fatalf("%d yields, want %d", n, tc.yields)
			}
		})
	}
}

// steps is n clock readings from start, every d.
func steps(start int64, d time.Duration, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = start + int64(i)*int64(d)
	}
	return out
}
