package telemetry

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Tunnels counts the websocket tunnels of every origin on this node (GET
// /admin/origins, GET /metrics). An origin's counts are found by its name
// and made on first use, so they survive a reload that rebuilds the origin
// (its open tunnels still count against the new max_tunnels).
//
// Concurrency: any goroutine. A tunnel looks its counts up once, when it
// opens, and then only adds to their atomics.
type Tunnels struct {
	m sync.Map // origin name → *TunnelCounts
}

// TunnelCounts are one origin's tunnels. Open is a gauge (tunnels open or
// being opened: a slot is taken before the upgrade goes to the origin);
// the rest count since start.
type TunnelCounts struct {
	Open      atomic.Int64
	Total     atomic.Int64 // tunnels that opened (the origin answered 101)
	Refused   atomic.Int64 // upgrades refused over max_tunnels
	BytesUp   atomic.Int64 // client → origin, frames as relayed
	BytesDown atomic.Int64 // origin → client
	// Protocol counts tunnels ended by a websocket protocol error (a frame
	// the tracker refused, from either side).
	Protocol atomic.Int64
}

// For returns the counts of origin name, made on first use.
func (t *Tunnels) For(name string) *TunnelCounts {
	if c, ok := t.m.Load(name); ok {
		return c.(*TunnelCounts)
	}
	c, _ := t.m.LoadOrStore(name, &TunnelCounts{})
	return c.(*TunnelCounts)
}

// Acquire takes a tunnel slot of origin name's counts under max (0: no
// cap); false, and a refusal counted, when max are open.
func (c *TunnelCounts) Acquire(max int) bool {
	if n := c.Open.Add(1); max > 0 && n > int64(max) {
		c.Open.Add(-1)
		c.Refused.Add(1)
		return false
	}
	return true
}

// TunnelStat is one origin's counts, read for a scrape.
type TunnelStat struct {
	Origin                                                   string
	Open, Total, Refused, BytesUp, BytesDown, ProtocolErrors int64
}

// Each returns every origin's counts, by name.
func (t *Tunnels) Each() []TunnelStat {
	var out []TunnelStat
	t.m.Range(func(k, v any) bool {
		c := v.(*TunnelCounts)
		out = append(out, TunnelStat{Origin: k.(string), Open: c.Open.Load(), Total: c.Total.Load(),
			Refused: c.Refused.Load(), BytesUp: c.BytesUp.Load(), BytesDown: c.BytesDown.Load(), ProtocolErrors: c.Protocol.Load()})
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out
}
