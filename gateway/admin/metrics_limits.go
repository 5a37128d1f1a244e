package admin

// The rate limits' and connection protection's metrics (gateway/ratelimit),
// read at scrape time from the counters GET /admin/limits shows.
var (
	dLimitRejected = desc("rate_limited_total", "Requests answered 429 FAILURE_CLIENT_RATE_LIMITED, by limit (limits.rules' name; \"lua\" for ctx.limit).", "limit")
	dLimitKeys     = desc("rate_limit_keys", "Rate-limit buckets the node holds (bounded by limits.max_keys).")
	dLimitEvicted  = desc("rate_limit_keys_evicted_total", "Rate-limit buckets dropped, least recently used first, to stay within limits.max_keys.")
	dConnRate      = desc("connections_refused_rate_total", "Connections closed at accept over protect.new_connections_per_ip.")
	dDenied        = desc("denied_total", "Connections closed at accept, and requests answered 403, because the client's network is on the deny list.")
	dDenyNetworks  = desc("deny_networks", "Networks on the deny list (protect.deny, /admin/deny, ctx.deny).")
	dDenyEvicted   = desc("deny_evicted_total", "Networks /admin/deny or ctx.deny added, dropped before their end to stay within protect.max_denied.")
	dClusterDown   = desc("rate_limit_cluster_fallback", "1 while cluster limits fall back to local limits (Redis unreachable).")
	dClusterRounds = desc("rate_limit_cluster_rounds_total", "Cluster limit reconciliations through Redis, by result: ok, failed.", "result")
)

// collectLimits reads the node's limits.
func (c *collector) collectLimits(counter, gauge emit) {
	sh := c.src.Shared
	if sh == nil || sh.Limits == nil {
		return
	}
	n := sh.Limits
	cfg := sh.Snapshot().Config
	st := n.Stats(n.RulesFor(cfg, cfg.Limits.Compile))
	for name, v := range st.Rejected {
		counter(dLimitRejected, float64(v), name)
	}
	gauge(dLimitKeys, float64(st.Keys))
	counter(dLimitEvicted, float64(st.Evicted))
	counter(dConnRate, float64(st.Connections.RefusedRate))
	counter(dDenied, float64(st.Connections.DeniedTotal))
	gauge(dDenyNetworks, float64(st.Connections.DenyNetworks))
	counter(dDenyEvicted, float64(st.Connections.DenyEvicted))
	if cs := st.Cluster; cs != nil {
		down := 0.0
		if cs.Fallback {
			down = 1
		}
		gauge(dClusterDown, down)
		counter(dClusterRounds, float64(cs.Rounds-cs.Failures), "ok")
		counter(dClusterRounds, float64(cs.Failures), "failed")
	}
}
