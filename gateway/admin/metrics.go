package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"gozer/gateway/faults"
	"gozer/gateway/origin"
	"gozer/gateway/telemetry"
)

// GET /metrics: Prometheus metrics, in the text exposition format (or
// OpenMetrics / protobuf when the scraper asks), served by
// prometheus/client_golang. Nothing here is on the request path: the request
// metrics are recorded by the loops into telemetry.Metrics (per-loop shards,
// why not the library's own types: see telemetry.Metrics), and everything else
// is read at scrape time from the counters the admin JSON views read too
// (origins' isolation, Lua filters, push) and from the loops themselves
// (Sources.Loops). docs/ADMIN.md lists every metric.

// LoopStats is one event loop's part of GET /metrics, read on the loop.
type LoopStats struct {
	Index       int           // the loop's position, in the order loops were first seen
	HTTPConns   int           // HTTP/1.1 client connections (push connections are counted by push)
	HTTP2Conns  int           // HTTP/2 client connections
	OriginConns int           // origin connections (busy, idle and dialling)
	Busy        time.Duration // time spent in callbacks since start
	Pools       []PoolCount
}

// PoolCount is one loop's connections to one server.
type PoolCount struct {
	Origin, Server string
	Open, Idle     int
}

// metricsHandler returns the GET /metrics handler: a registry of its own with
// the gateway's collector and Go's runtime and process collectors.
func (a *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&collector{src: &a.src},
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{a.src.Log},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// promLogger sends the exposition's errors to the process log.
type promLogger struct{ l zerolog.Logger }

func (p promLogger) Println(v ...any) { p.l.Warn().Msg("GET /metrics: " + fmt.Sprint(v...)) }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("gozer_"+name, help, labels, nil)
}

// The gateway's metrics. Names follow Prometheus' conventions: gozer_ prefix,
// base units (seconds, bytes), _total for counters.
var (
	dRequests = desc("requests_total", "Requests finished, by origin (\"\" when none was chosen), status cause and status class of the answer.", "origin", "cause", "code")
	dDuration = desc("request_duration_seconds", "Whole-request latency, from the complete request head to the end of the response, by origin.", "origin")
	dAtOrigin = desc("origin_duration_seconds", "Time of requests admitted to an origin, from admission (before the first attempt) to the end of the response.", "origin")
	dAttempts = desc("origin_attempts_total", "Attempts made at an origin's servers, retries included.", "origin")
	dRetries  = desc("origin_retries_total", "Attempts past a request's first (retries on another server).", "origin")

	dBreakerState = desc("origin_breaker_state", "Circuit breaker state: 1 for the state the breaker is in, 0 for the others.", "origin", "state")
	dBreakerOpens = desc("origin_breaker_opens_total", "Times the circuit breaker opened (closed or half-open to open).", "origin")
	dInFlight     = desc("origin_in_flight_requests", "Requests admitted to an origin and not finished: the bulkhead in use.", "origin")
	dBulkheadMax  = desc("origin_max_concurrent_requests", "The bulkhead's size (max_concurrent_requests; 0: none).", "origin")
	dBulkheadRej  = desc("origin_bulkhead_rejections_total", "Requests refused because the origin had max_concurrent_requests in flight.", "origin")
	dAdaptLimit   = desc("origin_adaptive_limit", "The adaptive concurrency limit now (adaptive_concurrency; origins without one have no series).", "origin")
	dAdaptFlight  = desc("origin_adaptive_in_flight_requests", "Requests holding a slot of the adaptive concurrency limit.", "origin")
	dAdaptRej     = desc("origin_adaptive_rejections_total", "Requests refused because the origin's adaptive concurrency limit was reached.", "origin")
	dFaults       = desc("faults_injected_total", "Failures injected on purpose (fault_injection, PUT /admin/faults, ctx.inject), by kind: delay, abort, reset, slow_body.", "kind")
	dEjections    = desc("origin_outlier_ejections_total", "Servers ejected by outlier detection.", "origin")
	dEjectRefused = desc("origin_outlier_ejections_refused_total", "Ejections not made because max_ejection_percent was reached.", "origin")
	dEjected      = desc("origin_servers_ejected", "Servers ejected now.", "origin")
	dServers      = desc("origin_servers", "Servers of the origin, by health: up (health check passing, or none) or down.", "origin", "health")

	dConns      = desc("origin_connections", "Connections open to a server from every loop, by state: busy (with a request, or dialling) or idle (pooled).", "origin", "server", "state")
	dConnOpened = desc("origin_connections_opened_total", "Connections to a server opened (dials started, failed ones included).", "origin", "server")
	dConnClosed = desc("origin_connections_closed_total", "Connections to a server closed.", "origin", "server")

	dTunnelsOpen    = desc("origin_websocket_tunnels", "Websocket tunnels to the origin open now (or being opened: the upgrade is at the origin).", "origin")
	dTunnelsTotal   = desc("origin_websocket_tunnels_total", "Websocket tunnels to the origin that opened (the origin answered 101).", "origin")
	dTunnelsRefused = desc("origin_websocket_tunnels_refused_total", "Websocket upgrades refused because the origin had websocket.max_tunnels tunnels open.", "origin")
	dTunnelBytes    = desc("origin_websocket_bytes_total", "Bytes relayed by the origin's websocket tunnels, by direction: up (client to origin) or down.", "origin", "direction")
	dTunnelProto    = desc("origin_websocket_protocol_errors_total", "Websocket tunnels ended by a frame that broke RFC 6455 (either side).", "origin")

	dFilterCalls    = desc("filter_calls_total", "Lua filter invocations, all loops.", "filter", "type")
	dFilterErrors   = desc("filter_errors_total", "Lua filter invocations that raised an error or ran out of time.", "filter", "type")
	dFilterTimeouts = desc("filter_timeouts_total", "Lua filter invocations stopped by the time budget.", "filter", "type")
	dFilterSeconds  = desc("filter_duration_seconds_total", "Time spent running a Lua filter, all loops.", "filter", "type")

	dPushConns     = desc("push_connections", "Push connections (websocket and SSE) open.")
	dPushClients   = desc("push_clients", "Client ids with a push connection on this node.")
	dPushAccepted  = desc("push_connections_accepted_total", "Push connections accepted.")
	dPushRefused   = desc("push_connections_refused_total", "Push handshakes refused.")
	dPushSent      = desc("push_messages_sent_total", "Messages written to push connections.")
	dPushQueued    = desc("push_messages_queued_total", "Messages this node's push connections took from the push API (pushes and broadcasts, forwarded or not).")
	dPushStored    = desc("push_messages_stored_total", "Push API messages that reached no connection but were kept in the history for a device away (202).")
	dPushHist      = desc("push_history_messages_total", "Push history: messages kept, not kept (dropped: over max_total_bytes or max_bytes), replayed to reconnecting devices, and reconnects told to resync.", "kind")
	dPushHistBytes = desc("push_history_bytes", "Bytes the push history keeps on this node (payloads plus 100 bytes per message).")
	dPushDropped   = desc("push_messages_dropped_total", "Push API messages not delivered, by reason: not_found (no connection for the client id), rate_limited, too_large.", "reason")
	dPushSlow      = desc("push_slow_consumers_closed_total", "Push connections closed because the device read slower than messages came.")
	dPushClosed    = desc("push_connections_closed_total", "Push connections closed by the gateway, by reason: goaway, ping_timeout, protocol_error.", "reason")
	dPushUpstream  = desc("push_upstream_messages_total", "Device messages to the push origin, by result: sent, failed, dropped.", "result")
	dPushForwards  = desc("push_cluster_forwards_total", "Push API requests forwarded to other nodes of the cluster, by result: ok, error.", "result")
	dPushForwardIn = desc("push_cluster_forwards_received_total", "Push API requests other nodes forwarded here.")
	dPushAPIRefuse = desc("push_api_refused_total", "Push API requests refused before they were served, by kind: client (push.api: no or wrong bearer token, address not allowed), forward (unsigned, bad signature, stale timestamp, replayed nonce).", "kind")
	dPushTopics    = desc("push_topics", "Topics with a subscriber on this node.")
	dPushTopicSubs = desc("push_topic_subscriptions", "Topic subscriptions (topic, client id) on this node.")
	dPushTopicPub  = desc("push_topic_pushes_total", "POST /push/topic/{name} requests from API clients.")
	dPushTopicRef  = desc("push_topic_refused_total", "Topic subscriptions refused, by reason: node_limit (push.topics.max_per_node), client_limit (a client id's share: push.max_per_client × push.topics.max_per_conn), control (a websocket control message refused).", "reason")

	dLoopConns  = desc("loop_connections", "Connections owned by an event loop, by kind: http (HTTP/1.1 clients), http2 (HTTP/2 clients), origin.", "loop", "kind")
	dLoopBusy   = desc("loop_busy_seconds_total", "Time an event loop spent in callbacks; its rate is the loop's busy share (0 to 1).", "loop")
	dClients    = desc("client_connections", "Client connections open (HTTP and push).")
	dCORSPre    = desc("cors_preflights_total", "CORS preflights the gateway answered for an allowed origin.")
	dCORSRef    = desc("cors_refused_total", "Cross-origin requests whose Origin no CORS policy allowed, by kind: preflight (403), request (served without CORS headers), push (403).", "kind")
	dReloads    = desc("config_reloads_total", "Configuration reloads, by result: applied, refused (invalid, or a restart-only setting changed: nothing changed).", "result")
	dConfigGen  = desc("config_generation", "The configuration in service: 1 at start, one more per applied reload.")
	dConfigAt   = desc("config_loaded_timestamp_seconds", "When the configuration in service was loaded (Unix time).")
	dH2Conns    = desc("http2_connections_total", "Client connections that spoke HTTP/2 (h2 by ALPN, h2c).")
	dH2Streams  = desc("http2_streams_total", "HTTP/2 streams that carried a request.")
	dH2Ended    = desc("http2_ended_total", "HTTP/2 connections (GOAWAY) and streams (RST_STREAM, 431) the gateway ended, by reason: protocol_error, flow_control, frame_size, compression, rapid_reset, continuation_flood, control_flood, header_list_too_large, refused_stream, stream_stalled, slow_reader, slow_body.", "reason")
	dAccessDrop = desc("access_log_dropped_bytes_total", "Access-log bytes lost, by reason: slow_sink (log.access_log's sink took them slower than they came), write_error (its write failed: a full disk, a closed pipe).", "reason")
	dMetricsOn  = desc("metrics_enabled", "1 when the per-request metrics are recorded (listeners.admin.metrics).")
)

// collector reads the gateway's state at scrape time. Collect may run on any
// goroutine, concurrently with itself (the registry serializes nothing): it
// only reads atomics, snapshots and the loops' answers.
type collector struct{ src *Sources }

// Describe sends nothing: the collector is unchecked (its series come and go
// with origins and filters).
func (c *collector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
	}
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	on := 0.0
	if m := c.src.Metrics; m != nil {
		on = 1
		for _, o := range m.Snapshot() {
			for _, r := range o.Requests {
				counter(dRequests, float64(r.N), o.Origin, r.Cause, r.Class)
			}
			if o.Origin != telemetry.NoOrigin {
				counter(dAttempts, float64(o.Attempts), o.Origin)
				counter(dRetries, float64(o.Retries), o.Origin)
				ch <- constHistogram(dAtOrigin, o.AtOrigin, o.Origin)
			}
			ch <- constHistogram(dDuration, o.Duration, o.Origin)
		}
	}
	gauge(dMetricsOn, on)
	var loops []LoopStats
	if c.src.Loops != nil {
		loops = c.src.Loops()
	}
	c.collectOrigins(loops, counter, gauge)
	c.collectTunnels(counter, gauge)
	if sh := c.src.Shared; sh != nil && sh.Faults != nil {
		counts := sh.Faults.Counts()
		for _, k := range faults.Kinds {
			counter(dFaults, float64(counts[k]), k)
		}
	}
	c.collectFilters(counter)
	c.collectPush(counter, gauge)
	c.collectLoops(loops, on == 1, gauge, counter)
	c.collectLimits(counter, gauge)
	if sh := c.src.Shared; sh != nil {
		counter(dH2Conns, float64(sh.H2.Conns.Load()))
		counter(dH2Streams, float64(sh.H2.Streams.Load()))
		for reason, n := range sh.H2.Ended() {
			counter(dH2Ended, float64(n), reason)
		}
		if sh.Access != nil {
			counter(dAccessDrop, float64(sh.Access.Dropped()), "slow_sink")
			counter(dAccessDrop, float64(sh.Access.Failed()), "write_error")
		}
	}
	if cc := c.src.Config; cc != nil {
		st := cc.ReloadStats()
		counter(dReloads, float64(st.Applied), "applied")
		counter(dReloads, float64(st.Refused), "refused")
		gauge(dConfigGen, float64(st.Generation))
		gauge(dConfigAt, float64(st.LoadedAt.UnixNano())/1e9)
	}
}

type emit func(d *prometheus.Desc, v float64, lv ...string)

// constHistogram is h as a Prometheus histogram (cumulative le buckets).
func constHistogram(d *prometheus.Desc, h telemetry.Histogram, lv ...string) prometheus.Metric {
	cum := h.Cumulative()
	buckets := make(map[float64]uint64, len(cum))
	for i, n := range cum {
		buckets[telemetry.LatencyBuckets[i]] = n
	}
	return prometheus.MustNewConstHistogram(d, h.Count(), h.Sum, buckets, lv...)
}

// collectTunnels reads the websocket tunnels' counts of every origin that
// had one.
func (c *collector) collectTunnels(counter, gauge emit) {
	if c.src.Shared == nil || c.src.Shared.Tunnels == nil {
		return
	}
	for _, s := range c.src.Shared.Tunnels.Each() {
		gauge(dTunnelsOpen, float64(s.Open), s.Origin)
		counter(dTunnelsTotal, float64(s.Total), s.Origin)
		counter(dTunnelsRefused, float64(s.Refused), s.Origin)
		counter(dTunnelBytes, float64(s.BytesUp), s.Origin, "up")
		counter(dTunnelBytes, float64(s.BytesDown), s.Origin, "down")
		counter(dTunnelProto, float64(s.ProtocolErrors), s.Origin)
	}
}

// collectOrigins reads every origin's isolation: breaker, bulkhead, outlier
// ejections, servers and their connections.
func (c *collector) collectOrigins(loops []LoopStats, counter, gauge emit) {
	if c.src.Origins == nil {
		return
	}
	tab := c.src.Origins() // the table in service (a reload swaps it)
	if tab == nil {
		return
	}
	idle := map[[2]string]int{} // origin, server → idle connections of every loop
	for _, l := range loops {
		for _, p := range l.Pools {
			idle[[2]string{p.Origin, p.Server}] += p.Idle
		}
	}
	now := time.Now().UnixNano()
	for _, o := range tab.List {
		iso := o.Iso
		if iso == nil {
			continue
		}
		st := iso.Breaker.Stats(now)
		for _, s := range []origin.BreakerState{origin.Closed, origin.Opened, origin.HalfOpen} {
			v := 0.0
			if st.State == s {
				v = 1
			}
			gauge(dBreakerState, v, o.Name, s.String())
		}
		counter(dBreakerOpens, float64(st.Opens), o.Name)
		gauge(dInFlight, float64(iso.Bulkhead.InFlight()), o.Name)
		gauge(dBulkheadMax, float64(iso.Bulkhead.Max()), o.Name)
		counter(dBulkheadRej, float64(iso.Bulkhead.Refused()), o.Name)
		if ad := iso.Adaptive; ad != nil {
			gauge(dAdaptLimit, float64(ad.Limit()), o.Name)
			gauge(dAdaptFlight, float64(ad.InFlight()), o.Name)
			counter(dAdaptRej, float64(ad.Rejected()), o.Name)
		}
		ejections, refused := iso.Outlier.Counts()
		counter(dEjections, float64(ejections), o.Name)
		counter(dEjectRefused, float64(refused), o.Name)
		var ejected, up, down int
		for _, srv := range iso.Discovery.Servers().List {
			if iso.Outlier.Ejected(srv, now) {
				ejected++
			}
			if srv.Up() {
				up++
			} else {
				down++
			}
			n := idle[[2]string{o.Name, srv.Addr}]
			gauge(dConns, float64(max(0, srv.Conns()-int64(n))), o.Name, srv.Addr, "busy")
			gauge(dConns, float64(n), o.Name, srv.Addr, "idle")
			counter(dConnOpened, float64(srv.Opened()), o.Name, srv.Addr)
			counter(dConnClosed, float64(srv.Closed()), o.Name, srv.Addr)
		}
		gauge(dEjected, float64(ejected), o.Name)
		gauge(dServers, float64(up), o.Name, "up")
		gauge(dServers, float64(down), o.Name, "down")
	}
}

// collectFilters reads the Lua filters' counters.
func (c *collector) collectFilters(counter emit) {
	if c.src.Filters == nil {
		return
	}
	for _, f := range c.src.Filters.Status() {
		counter(dFilterCalls, float64(f.Calls), f.Name, f.Type)
		counter(dFilterErrors, float64(f.Errors), f.Name, f.Type)
		counter(dFilterTimeouts, float64(f.Timeouts), f.Name, f.Type)
		counter(dFilterSeconds, float64(f.TotalTimeUS)/1e6, f.Name, f.Type)
	}
}

// collectPush reads the push hub's and push API's counters.
func (c *collector) collectPush(counter, gauge emit) {
	h := c.src.Push
	if h == nil {
		return
	}
	st := &h.Stats
	gauge(dPushConns, float64(st.Open.Load()))
	gauge(dPushClients, float64(h.Registry.Clients()))
	counter(dPushAccepted, float64(st.Accepted.Load()))
	counter(dPushRefused, float64(st.Refused.Load()))
	counter(dPushSent, float64(st.Sent.Load()))
	counter(dPushSlow, float64(st.SlowClosed.Load()))
	counter(dPushClosed, float64(st.GoAways.Load()), "goaway")
	counter(dPushClosed, float64(st.PingTimeouts.Load()), "ping_timeout")
	counter(dPushClosed, float64(st.ProtocolClosed.Load()), "protocol_error")
	counter(dPushUpstream, float64(st.UpstreamSent.Load()), "sent")
	counter(dPushUpstream, float64(st.UpstreamFailed.Load()), "failed")
	counter(dPushUpstream, float64(st.UpstreamDropped.Load()), "dropped")
	if h.API == nil {
		return
	}
	api := h.API.Stats()
	counter(dPushQueued, float64(api.Delivered))
	counter(dPushStored, float64(api.Stored))
	if hist := h.History; hist != nil {
		hs := hist.Stats()
		counter(dPushHist, float64(hs.Stored), "stored")
		counter(dPushHist, float64(hs.Dropped), "dropped")
		counter(dPushHist, float64(hs.Replayed), "replayed")
		counter(dPushHist, float64(hs.Resyncs), "resync")
		gauge(dPushHistBytes, float64(hs.Bytes))
	}
	counter(dPushDropped, float64(api.NotFound), "not_found")
	counter(dPushDropped, float64(api.RateLimited), "rate_limited")
	counter(dPushDropped, float64(api.TooLarge), "too_large")
	counter(dPushForwards, float64(api.Forwarded-min(api.Forwarded, api.ForwardErrors)), "ok")
	counter(dPushForwards, float64(api.ForwardErrors), "error")
	counter(dPushForwardIn, float64(api.ForwardsReceived))
	counter(dPushAPIRefuse, float64(api.AuthRefused), "client")
	counter(dPushAPIRefuse, float64(api.ForwardsRefused), "forward")
	ts := h.Topics.Stats()
	gauge(dPushTopics, float64(ts.Topics))
	gauge(dPushTopicSubs, float64(ts.Subscriptions))
	counter(dPushTopicPub, float64(api.TopicPushes))
	counter(dPushTopicRef, float64(ts.Refused), "node_limit")
	counter(dPushTopicRef, float64(ts.RefusedIDs), "client_limit")
	counter(dPushTopicRef, float64(st.ControlRefused.Load()), "control")
}

// collectLoops reads the loops' connections and busy time (timed only while
// the metrics are on).
func (c *collector) collectLoops(loops []LoopStats, timed bool, gauge, counter emit) {
	if sh := c.src.Shared; sh != nil {
		gauge(dClients, float64(sh.Clients.Load()))
		counter(dCORSPre, float64(sh.CORS.Preflights.Load()))
		counter(dCORSRef, float64(sh.CORS.RefusedPreflight.Load()), "preflight")
		counter(dCORSRef, float64(sh.CORS.RefusedRequest.Load()), "request")
		counter(dCORSRef, float64(sh.CORS.RefusedPush.Load()), "push")
	}
	for _, l := range loops {
		i := strconv.Itoa(l.Index)
		gauge(dLoopConns, float64(l.HTTPConns), i, "http")
		gauge(dLoopConns, float64(l.HTTP2Conns), i, "http2")
		gauge(dLoopConns, float64(l.OriginConns), i, "origin")
		if timed {
			counter(dLoopBusy, l.Busy.Seconds(), i)
		}
	}
}
