package push

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"gozer/gateway/internal/redistest"
)

// BenchmarkRedisRefresh is the registrar's periodic refresh against one real
// redis-server: ns/op is per id (10,000 ids per Refresh call, pipelined 1,000
// per round trip). docs/PUSH-SCALE.md sizes Redis with it.
func BenchmarkRedisRefresh(b *testing.B) {
	srv := redistest.Start(b)
	c, err := NewRedisCluster(srv.Addr, "10.0.0.1:8081", 10*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprintf("user-%010d", i)
	}
	ctx := context.Background()
	b.ResetTimer()
	for done := 0; done < b.N; done += len(ids) {
		if err := c.Refresh(ctx, ids); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedisHistoryAppend is what the cluster history costs a push API
// request against one real redis-server: 64 pushes in flight, each waiting
// for its write (API.pushCluster's Append), the writer pipelining them.
// cpu-ns/op is this process's CPU (getrusage: callers and writer, not
// Redis) per append, less noisy than ns/op on a busy machine; allocs/op
// counts the writer's allocations too. GOZER_BENCH_REDIS=host:port uses
// that redis-server instead of a child, so that `perf stat -e
// instructions:u` of the test binary counts Gozer's side alone.
func BenchmarkRedisHistoryAppend(b *testing.B) {
	addr := os.Getenv("GOZER_BENCH_REDIS")
	if addr == "" {
		addr = redistest.Start(b).Addr
	}
	s := NewRedisHistory(NewRedisClient(addr), 100, time.Minute, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	defer func() { cancel(); wg.Wait(); _ = s.Close() }()
	msg := []byte(`{"title":"a message of a typical size","body":"for a device"}`)
	var next atomic.Int64
	b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	cpu0 := cpuNanos(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := next.Add(1)
			id := "dev-" + strconv.FormatInt(k%1000, 10)
			if _, err := s.Append(id, Entry{ID: uint64(k), At: time.Now().UnixMilli(), Msg: msg}, true, true); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuNanos(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuNanos is this process's user+system CPU so far.
func cpuNanos(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
