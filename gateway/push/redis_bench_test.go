package push

import (
	"context"
	"fmt"
	"testing"
	"time"

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
