package telemetry_test

import (
	"fmt"

	"gozer/filters"
	"gozer/gateway/telemetry"
)

// A live view's p50 and p99 over the last second: keep each origin's
// previous histogram, take the difference, estimate the quantiles.
func ExampleMetrics_Latency() {
	m := telemetry.NewMetrics()
	lm := m.NewLoop() // one per event loop, written on that loop only
	success := filters.CauseIndex(filters.Success.Name)

	prev, _, _ := m.Latency("api") // a second ago
	for i := 0; i < 98; i++ {
		lm.Request("api", success, 200, 2_000_000, 1_500_000, 1) // 2 ms
	}
	lm.Request("api", success, 200, 40_000_000, 39_000_000, 1) // 40 ms
	lm.Request("api", success, 200, 40_000_000, 39_000_000, 1)

	now, _, _ := m.Latency("api")
	window := now.Sub(prev)
	fmt.Printf("requests %d, p50 %.4f s, p99 %.4f s\n", window.Count(), window.Quantile(0.5), window.Quantile(0.99))
	// Output: requests 100, p50 0.0018 s, p99 0.0375 s
}
