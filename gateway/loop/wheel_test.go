package loop

import (
	"testing"
)

type timed struct {
	t     Timer
	due   int64
	fired []int64
}

func (x *timed) Timer() *Timer { return &x.t }

func newTestWheel(now int64) *Wheel[*timed] {
	return NewWheel(8, 100, now, func(x *timed) int64 { return x.due },
		func(x *timed, now int64) { x.fired = append(x.fired, now); x.due = 0 })
}

// TestWheel: a timer fires once its slot has wholly passed, never early, at
// most a slot late; moving it later is lazy, earlier moves it; a time beyond
// the ring goes round; a cancelled one never fires.
func TestWheel(t *testing.T) {
	tests := []struct {
		name string
		due  int64   // first due time
		move int64   // a later Update to this due time (0: none)
		walk []int64 // Advance times
		want []int64 // the Advance times it fired at
		fix  func(*timed, *Wheel[*timed])
	}{
		{"fires after its slot", 250, 0, []int64{250, 299, 300, 350}, []int64{300}, nil},
		{"never early", 250, 0, []int64{100, 200, 260}, nil, nil},
		{"moved later: lazy", 250, 420, []int64{300, 400, 500}, []int64{500}, nil},
		{"moved earlier: moves", 650, 150, []int64{200, 300}, []int64{200}, nil},
		{"beyond the ring goes round", 2050, 0, []int64{900, 1700, 2000, 2100}, []int64{2100}, nil},
		{"cancelled", 250, 0, []int64{300, 400}, nil, func(x *timed, w *Wheel[*timed]) { w.Cancel(x) }},
		{"due 0 is dropped", 250, 0, []int64{300}, nil, func(x *timed, _ *Wheel[*timed]) { x.due = 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newTestWheel(0)
			x := &timed{due: tc.due}
			x.t.Init()
			w.Schedule(x)
			if tc.move != 0 {
				x.due = tc.move
				w.Update(x)
			}
			if tc.fix != nil {
				tc.fix(x, w)
			}
			for _, now := range tc.walk {
				w.Advance(now)
			}
			if len(x.fired) != len(tc.want) {
				t.Fatalf("fired at %v, want %v", x.fired, tc.want)
			}
			for i := range tc.want {
				if x.fired[i] != tc.want[i] {
					t.Fatalf("fired at %v, want %v", x.fired, tc.want)
				}
			}
			if len(tc.want) > 0 && x.t.Scheduled() {
				t.Errorf("still scheduled after it fired for good (due 0)")
			}
		})
	}
}
