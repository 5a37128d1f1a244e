package origin

import (
	"sync"
	"testing"
	"time"

	"gozer/gateway/config"
)

// drive runs windows of load on a: each window, conc requests of rtt each
// are admitted and finished, then the clock moves one window on. It returns
// the limit after the windows and the clock.
func drive(a *Adaptive, now int64, windows, conc int, rtt time.Duration) (int64, int64) {
	w := int64(a.Config().Window)
	for i := 0; i < windows; i++ {
		var got int
		for j := 0; j < conc; j++ {
			if a.TryAcquire() {
				got++
			}
		}
		for j := 0; j < got; j++ {
			a.Release(Success, int64(rtt), now)
		}
		now += w
	}
	return a.Limit(), now
}

func TestAdaptiveFollowsLatency(t *testing.T) {
	// Vegas steps by log10(limit) a window: it takes longer to come down.
	for _, tc := range []struct {
		algo        string
		slowWindows int
	}{{AlgoGradient2, 15}, {AlgoVegas, 60}} {
		algo := tc.algo
		t.Run(algo, func(t *testing.T) {
			a, err := NewAdaptive(AdaptiveConfig{Algorithm: algo, MinLimit: 2, MaxLimit: 200, InitialLimit: 40, Window: 100 * time.Millisecond, LongWindow: 20})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1000, 0).UnixNano()
			healthy, now := drive(a, now, 50, 100, 5*time.Millisecond)
			if healthy < 40 {
				t.Fatalf("healthy origin throttled: limit %d, want ≥ 40", healthy)
			}
			slow, now := drive(a, now, tc.slowWindows, 100, 100*time.Millisecond)
			if slow >= healthy/2 {
				t.Fatalf("slow origin: limit %d, want < half of %d", slow, healthy)
			}
			back, _ := drive(a, now, 100, 100, 5*time.Millisecond)
			if back <= slow*2 {
				t.Fatalf("recovered origin: limit %d, want > 2 × %d", back, slow)
			}
			t.Logf("%s: healthy %d, slow %d, recovered %d", algo, healthy, slow, back)
		})
	}
}

func TestAdaptiveBoundsAndRefusals(t *testing.T) {
	tests := []struct {
		name    string
		cfg     AdaptiveConfig
		wantErr bool
		limit   int64
	}{
		{"defaults", AdaptiveConfig{}, false, 20},
		{"initial clamped", AdaptiveConfig{MinLimit: 10, MaxLimit: 12, InitialLimit: 50}, false, 12},
		{"bad algorithm", AdaptiveConfig{Algorithm: "aimd"}, true, 0},
		{"max below min", AdaptiveConfig{MinLimit: 10, MaxLimit: 5}, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAdaptive(tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if a.Limit() != tc.limit {
				t.Fatalf("limit %d, want %d", a.Limit(), tc.limit)
			}
			for i := int64(0); i < tc.limit; i++ {
				if !a.TryAcquire() {
					t.Fatalf("refused at %d of %d", i, tc.limit)
				}
			}
			if a.TryAcquire() || a.Rejected() != 1 || a.InFlight() != tc.limit {
				t.Fatalf("over the limit: rejected %d in flight %d", a.Rejected(), a.InFlight())
			}
		})
	}
}

// TestAdaptiveConcurrent: loops racing never overrun the limit, and the
// in-flight count returns to 0 (go test -race checks the accesses).
func TestAdaptiveConcurrent(t *testing.T) {
	a, _ := NewAdaptive(AdaptiveConfig{InitialLimit: 8, MinLimit: 8, MaxLimit: 8, Window: time.Millisecond})
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := int64(0)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				if a.TryAcquire() {
					if n := a.InFlight(); n > 8 {
						mu.Lock()
						peak = max(peak, n)
						mu.Unlock()
					}
					a.Release(Success, 1000, time.Now().UnixNano())
				}
			}
		}()
	}
	wg.Wait()
	if peak > 0 || a.InFlight() != 0 {
		t.Fatalf("in flight peaked at %d over the limit 8, ends at %d", peak, a.InFlight())
	}
}

// BenchmarkAdaptive is the request path's cost of the adaptive limit:
// TryAcquire and Release, every loop at once (-cpu 1,2).
func BenchmarkAdaptive(b *testing.B) {
	a, _ := NewAdaptive(AdaptiveConfig{MaxLimit: 1 << 20, InitialLimit: 1 << 20})
	now := time.Now().UnixNano()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int64(0)
		for pb.Next() {
			i++
			if a.TryAcquire() {
				a.Release(Success, 5e6, now+i*1000)
			}
		}
	})
}

// TestAdaptiveRebuild: a reload keeps an origin's adaptive limit (its learned
// limit and its in-flight count) when its settings stay, and starts a new
// one when they change; Admit and Finish hold and give back its slot.
func TestAdaptiveRebuild(t *testing.T) {
	withAdaptive := func(initial int, servers ...string) *config.Origin {
		o := originCfg(servers...)
		o.AdaptiveConcurrency = &config.AdaptiveConcurrency{Enabled: true, InitialLimit: initial, MinLimit: 1}
		return o
	}
	prev, err := Build(map[string]*config.Origin{"api": withAdaptive(1, "127.0.0.1:1")})
	if err != nil {
		t.Fatal(err)
	}
	defer prev.Close()
	api, _ := prev.Get("api")
	now := time.Now().UnixNano()
	if v := api.Iso.Admit(now); v != Admitted {
		t.Fatalf("first request: %v", v)
	}
	if v := api.Iso.Admit(now); v != RefusedAdaptive || api.Iso.Bulkhead.InFlight() != 1 {
		t.Fatalf("over the adaptive limit 1: %v, bulkhead in flight %d", v, api.Iso.Bulkhead.InFlight())
	}
	same, _, err := Rebuild(prev, map[string]*config.Origin{"api": withAdaptive(1, "127.0.0.1:1", "127.0.0.1:2")})
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	other, _, err := Rebuild(prev, map[string]*config.Origin{"api": withAdaptive(5, "127.0.0.1:1")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	sa, _ := same.Get("api")
	oa, _ := other.Get("api")
	if sa.Iso.Adaptive != api.Iso.Adaptive || oa.Iso.Adaptive == api.Iso.Adaptive || oa.Iso.Adaptive.Limit() != 5 {
		t.Fatal("the adaptive limit is inherited only while its settings stay")
	}
	api.Iso.Finish(Success, now, now+int64(time.Millisecond))
	if api.Iso.Adaptive.InFlight() != 0 {
		t.Fatalf("Finish leaves %d in flight", api.Iso.Adaptive.InFlight())
	}
}
