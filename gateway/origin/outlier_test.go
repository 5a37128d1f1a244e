package origin

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestOutlierEjectsAfterConsecutiveFailures(t *testing.T) {
	tests := []struct {
		name        string
		threshold   int
		results     []bool // in order; true = ok
		wantEjected bool
	}{
		{"N failures in a row", 3, []bool{false, false, false}, true},
		{"one short", 3, []bool{false, false}, false},
		{"a success resets the run", 3, []bool{false, false, true, false, false}, false},
		{"run after a success", 3, []bool{false, true, false, false, false}, true},
		{"default is 5", 0, []bool{false, false, false, false, false}, true},
		{"default: 4 is not enough", 0, []bool{false, false, false, false}, false},
		{"disabled", -1, []bool{false, false, false, false, false, false}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := set(1, 1, 1, 1)
			o := NewOutlier(OutlierConfig{ConsecutiveFailures: tc.threshold, BaseEjection: 10 * time.Second}, s)
			srv := s.List[0]
			for _, ok := range tc.results {
				o.Report(srv, ok, t0)
			}
			if got := o.Ejected(srv, t0); got != tc.wantEjected {
				t.Fatalf("Ejected = %v, want %v", got, tc.wantEjected)
			}
		})
	}
}

// The k-th ejection lasts base × 2^(k-1), capped at max; the server returns by
// itself; and the exponent decays after max of good service.
func TestOutlierBackoffAndReturn(t *testing.T) {
	base, maxE := 10*time.Second, 35*time.Second
	s := set(1, 1)
	o := NewOutlier(OutlierConfig{ConsecutiveFailures: 2, BaseEjection: base, MaxEjection: maxE, MaxEjectionPercent: 50}, s)
	srv := s.List[0]
	now := t0
	for k, want := range []time.Duration{10 * time.Second, 20 * time.Second, 35 * time.Second, 35 * time.Second} {
		o.Report(srv, false, now)
		if !o.Report(srv, false, now) {
			t.Fatalf("ejection %d not made", k+1)
		}
		if !o.Ejected(srv, now+int64(want)-1) || o.Ejected(srv, now+int64(want)) {
			t.Fatalf("ejection %d: not exactly %v", k+1, want)
		}
		now += int64(want) // back by itself
		if !srv.Available(now) {
			t.Fatal("server did not come back when its time passed")
		}
	}
	// Healthy for max after its return: the next ejection is short again.
	o.Report(srv, true, now+int64(maxE))
	now += int64(maxE)
	o.Report(srv, false, now)
	o.Report(srv, false, now)
	if !o.Ejected(srv, now+int64(base)-1) || o.Ejected(srv, now+int64(base)) {
		t.Fatal("ejection length did not decay back to base")
	}
	if ej, _ := o.Counts(); ej != 5 {
		t.Fatalf("counted %d ejections, want 5", ej)
	}
}

func TestOutlierMaxEjectionPercent(t *testing.T) {
	tests := []struct {
		name    string
		servers int
		percent int
		want    int // ejections that succeed when every server fails
	}{
		{"half of four", 4, 50, 2},
		{"half of three rounds down", 3, 50, 1},
		{"a lone server is never ejected", 1, 50, 0},
		{"ten percent of ten", 10, 10, 1},
		{"all allowed", 3, 100, 3},
		{"default is 50", 4, 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := make([]int, tc.servers)
			s := set(w...)
			o := NewOutlier(OutlierConfig{ConsecutiveFailures: 1, MaxEjectionPercent: tc.percent}, s)
			got := 0
			for _, srv := range s.List {
				if o.Report(srv, false, t0) {
					got++
				}
			}
			if got != tc.want {
				t.Fatalf("%d ejected, want %d", got, tc.want)
			}
			if _, refused := o.Counts(); refused != int64(tc.servers-tc.want) {
				t.Fatalf("%d refused, want %d", refused, tc.servers-tc.want)
			}
			// When an ejection ends, its slot under the cap is free again.
			if tc.want > 0 && tc.want < tc.servers {
				later := t0 + int64(DefaultBaseEjection)
				last := s.List[tc.servers-1]
				if !o.Report(last, false, later) {
					t.Fatal("ejection refused after the others returned")
				}
			}
		})
	}
}

// Loops reporting at once can never eject past the cap.
func TestOutlierConcurrentCap(t *testing.T) {
	s := set(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	o := NewOutlier(OutlierConfig{ConsecutiveFailures: 3, MaxEjectionPercent: 30}, s)
	var wg sync.WaitGroup
	var made atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				if o.Report(s.List[(g+i)%len(s.List)], false, t0) {
					made.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	out := 0
	for _, srv := range s.List {
		if o.Ejected(srv, t0) {
			out++
		}
	}
	if out > 3 || made.Load() != int64(out) {
		t.Fatalf("%d ejected (%d reported) with a 30 %% cap of 10", out, made.Load())
	}
}

func TestOutlierIgnoresServerThatLeft(t *testing.T) {
	s := set(1, 1, 1, 1)
	o := NewOutlier(OutlierConfig{ConsecutiveFailures: 1}, s)
	gone := newServer("10.9.9.9:80", 9, 1)
	if o.Report(gone, false, t0) {
		t.Fatal("ejected a server not in the set")
	}
}
