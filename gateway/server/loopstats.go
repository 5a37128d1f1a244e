package server

import (
	"time"

	"gozer/gateway/admin"
	"gozer/gateway/telemetry"
)

// loopStatsWait bounds how long a scrape waits for a loop to answer: a loop
// that does not (stuck, or stopping) is left out of that scrape.
const loopStatsWait = time.Second

// loopStats reads every loop's connections and pools on the loop's own
// goroutine (through Execute: they are loop-owned, not atomic, so the request
// path pays nothing for them), for GET /metrics. Any goroutine.
func (s *Server) loopStats() []admin.LoopStats {
	s.loopsMu.Lock()
	rooms := append([]*rooms(nil), s.rooms...)
	s.loopsMu.Unlock()
	type answer struct {
		i  int
		st admin.LoopStats
	}
	answers := make(chan answer, len(rooms)) // never blocks a loop
	asked := 0
	for i, r := range rooms {
		if r.l.Execute(func() {
			st := admin.LoopStats{Index: i, HTTPConns: r.http.Conns(), HTTP2Conns: r.h2.Conns(), Busy: r.l.Busy()}
			for _, p := range r.origins.Pools() {
				st.OriginConns += p.Open
				st.Pools = append(st.Pools, admin.PoolCount{Origin: p.Origin, Server: p.Server, Open: p.Open, Idle: p.Idle})
			}
			answers <- answer{i, st}
		}) {
			asked++
		}
	}
	out := make([]admin.LoopStats, 0, asked)
	timeout := time.NewTimer(loopStatsWait)
	defer timeout.Stop()
	for range asked {
		select {
		case a := <-answers:
			out = append(out, a.st)
		case <-timeout.C:
			return out
		}
	}
	return out
}

// dashboardWindow is how far back the dashboard's p50/p99 look.
const dashboardWindow = 5 * time.Second

// latencySource is the dashboard's p50/p99: from the request metrics'
// histograms when they are on (every request counts), else from the samples
// the breakers mirror into hystrix-go (admin.HystrixLatency).
func (s *Server) latencySource() admin.LatencySource {
	if m := s.shared.Metrics; m != nil {
		return telemetry.NewLatencyWindow(m, dashboardWindow)
	}
	return admin.HystrixLatency()
}
