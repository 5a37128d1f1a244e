// Package adaptive measures the request-path cost of an adaptive concurrency
// limit: Gozer's own (gateway/origin.Adaptive) against
// github.com/platinummonkey/go-concurrency-limits v1.0.0 doing the same job
// (DefaultLimiter + Gradient2Limit + SimpleStrategy), each a TryAcquire and
// a release with a latency sample per request, from every CPU at once.
//
// It is a module of its own so that Gozer's go.mod does not carry the
// library it measured and did not choose (gateway/origin/ISOLATION.md):
//
//	cd bench/adaptive && go test -run XXX -bench . -cpu 1,2
package adaptive

import (
	"context"
	"testing"
	"time"

	"github.com/platinummonkey/go-concurrency-limits/core"
	"github.com/platinummonkey/go-concurrency-limits/limit"
	"github.com/platinummonkey/go-concurrency-limits/limiter"
	"github.com/platinummonkey/go-concurrency-limits/strategy"

	"gozer/gateway/origin"
)

const big = 1 << 20 // a limit never reached: the cost of the bookkeeping alone

func BenchmarkGozerAdaptive(b *testing.B) {
	a, err := origin.NewAdaptive(origin.AdaptiveConfig{MaxLimit: big, InitialLimit: big})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixNano()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int64(0)
		for pb.Next() {
			i++
			if a.TryAcquire() {
				a.Release(origin.Success, 5e6, now+i*1000)
			}
		}
	})
}

func BenchmarkLibraryGradient2(b *testing.B) {
	l, err := limit.NewGradient2Limit("bench", big, big, 1, nil, 0.2, 600, limit.NoopLimitLogger{}, core.EmptyMetricRegistryInstance)
	if err != nil {
		b.Fatal(err)
	}
	lim, err := limiter.NewDefaultLimiter(l, int64(100*time.Millisecond), int64(time.Second), int64(100*time.Microsecond), 100,
		strategy.NewSimpleStrategy(big), limit.NoopLimitLogger{}, core.EmptyMetricRegistryInstance)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ls, ok := lim.Acquire(ctx); ok {
				ls.OnSuccess()
			}
		}
	})
}
