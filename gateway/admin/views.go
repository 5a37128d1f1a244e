package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"gozer/filters/dict"
	"gozer/filters/lua"
	"gozer/gateway/telemetry"
)

// The admin API's JSON answers. One dialect for all of them (docs/ADMIN.md
// shows each with an example, and test/admin_test.go holds the live answers to
// those examples): keys are snake_case; states are words; a counter since
// start ends in _total, a gauge (what is true now) does not; a map keyed by
// data (a cause, a node) is named <what>_by_<key>.

// originView is one origin in GET /admin/origins.
type originView struct {
	Name     string      `json:"name"`
	Fallback string      `json:"fallback"`
	Breaker  breakerView `json:"breaker"`
	InFlight int64       `json:"in_flight"`
	Refused  int64       `json:"refused_concurrency_total"`
	// Adaptive is the adaptive concurrency limit (adaptive_concurrency);
	// null when off.
	Adaptive *adaptiveView    `json:"adaptive_concurrency"`
	Servers  []serverView     `json:"servers"`
	Requests map[string]int64 `json:"requests_by_cause"`
	DNSError string           `json:"dns_error"`
	// WebSocket is the origin's websocket tunnels (all zero when it had none).
	WebSocket websocketView `json:"websocket"`
}

// websocketView is an origin's websocket tunnels on this node.
type websocketView struct {
	Open      int64 `json:"open_tunnels"`
	Max       int   `json:"max_tunnels"`
	Total     int64 `json:"tunnels_total"`
	Refused   int64 `json:"refused_total"`
	BytesUp   int64 `json:"bytes_up_total"`
	BytesDown int64 `json:"bytes_down_total"`
}

// adaptiveView is an origin's adaptive concurrency limit.
type adaptiveView struct {
	Algorithm string `json:"algorithm"`
	Limit     int64  `json:"limit"`
	InFlight  int64  `json:"in_flight"`
	MinLimit  int    `json:"min_limit"`
	MaxLimit  int    `json:"max_limit"`
	Rejected  int64  `json:"rejected_total"`
}

// breakerView is an origin's circuit breaker.
type breakerView struct {
	// State is closed, open or half_open.
	State string `json:"state"`
	// Refusing: a request now would be refused (open, and no half-open trial free).
	Refusing bool `json:"refusing"`
	// WindowRequests and WindowErrors are the rolling window's counts (closed state).
	WindowRequests uint64 `json:"window_requests"`
	WindowErrors   uint64 `json:"window_errors"`
	Opens          int64  `json:"opens_total"`
}

// serverView is one server of an origin.
type serverView struct {
	Addr        string `json:"addr"`
	Weight      int    `json:"weight"`
	Outstanding int64  `json:"outstanding"`
	Available   bool   `json:"available"`
	Up          bool   `json:"up"`
	Ejected     bool   `json:"ejected"`
	// Connections open to the server from every loop (idle, busy, and paused
	// behind slow readers).
	Connections int64 `json:"connections"`
	// Opened counts the connections ever opened to it (dials, not requests):
	// it stands still while pooled connections carry the traffic.
	Opened int64 `json:"connections_opened_total"`
}

// adminOrigins serves GET /admin/origins: every origin's breaker, bulkhead, servers
// (outstanding requests, ejected, health) and requests by status cause.
func (a *Server) origins(w http.ResponseWriter, _ *http.Request) {
	now := time.Now().UnixNano()
	counts := a.src.Counts.Snapshot()
	out := []originView{}
	for _, o := range a.src.Origins().List { // counts[telemetry.NoOrigin] is /admin/edge's
		v := originView{Name: o.Name, Fallback: o.Fallback, Requests: counts[o.Name], Servers: []serverView{}}
		if sh := a.src.Shared; sh != nil && sh.Tunnels != nil {
			tc := sh.Tunnels.For(o.Name)
			v.WebSocket = websocketView{Open: tc.Open.Load(), Total: tc.Total.Load(), Refused: tc.Refused.Load(),
				BytesUp: tc.BytesUp.Load(), BytesDown: tc.BytesDown.Load()}
		}
		if o.Config != nil {
			v.WebSocket.Max = o.Config.WebSocket.MaxTunnels
		}
		if iso := o.Iso; iso != nil {
			st := iso.Breaker.Stats(now)
			v.Breaker = breakerView{State: st.State.String(), Refusing: iso.Breaker.Refusing(now),
				WindowRequests: st.Requests, WindowErrors: st.Errors, Opens: st.Opens}
			v.InFlight, v.Refused = iso.Bulkhead.InFlight(), iso.Bulkhead.Refused()
			v.DNSError = iso.Discovery.LastError()
			if ad := iso.Adaptive; ad != nil {
				c := ad.Config()
				v.Adaptive = &adaptiveView{Algorithm: c.Algorithm, Limit: ad.Limit(), InFlight: ad.InFlight(),
					MinLimit: c.MinLimit, MaxLimit: c.MaxLimit, Rejected: ad.Rejected()}
			}
			for _, srv := range iso.Discovery.Servers().List {
				v.Servers = append(v.Servers, serverView{
					Addr: srv.Addr, Weight: srv.Weight, Outstanding: srv.Outstanding(),
					Available: srv.Available(now), Up: srv.Up(), Ejected: iso.Outlier.Ejected(srv, now),
					Connections: srv.Conns(), Opened: srv.Opened(),
				})
			}
		}
		out = append(out, v)
	}
	writeAdminJSON(w, out)
}

// edgeView is GET /admin/edge: the client side of the node, what its limits
// refused and what slow clients hold.
type edgeView struct {
	Connections    int64 `json:"connections"` // client connections open (HTTP and push)
	MaxConnections int   `json:"max_connections"`
	RefusedMax     int64 `json:"refused_max_connections_total"`
	// OriginOpenFiles: origin connections not opened, too close to the
	// open-file limit (accept_on_loops).
	OriginOpenFiles int64 `json:"refused_origin_open_files_total"`
	// AdminOpenFiles: admin connections closed at accept, and push-API
	// forwards not dialled, too close to the open-file limit (accept_on_loops).
	AdminOpenFiles int64 `json:"refused_admin_open_files_total"`
	// Clients are the client addresses (an IPv6 client by its /64) with a
	// connection open; the per-client caps and what they refused.
	Clients              int   `json:"clients"`
	MaxConnectionsPerIP  int   `json:"max_connections_per_ip"`
	MaxRequestsPerIP     int   `json:"max_requests_per_ip"`
	RefusedConnectionsIP int64 `json:"refused_connections_per_ip_total"`
	RefusedRequestsIP    int64 `json:"refused_requests_per_ip_total"`
	// Bytes waiting in client connections' send buffers, and the node's budget
	// for them (server.max_buffered_total).
	Buffered       int64 `json:"buffered_bytes"`
	BufferedBudget int64 `json:"buffered_budget_bytes"`
	// Origin connections paused behind clients that read slower than the
	// origin sends.
	Parked int64 `json:"parked_origin_connections"`
	// Connections closed for a missing or malformed PROXY protocol header.
	ProxyRefused int64 `json:"proxy_protocol_refused_total"`
	// The origins' interim answers (103 Early Hints) passed to clients, and
	// those dropped over the cap per request or toward a client not reading.
	InterimForwarded int64 `json:"interim_forwarded_total"`
	InterimDropped   int64 `json:"interim_dropped_total"`
	// CORS: preflights answered for an allowed origin, and cross-origin
	// requests whose Origin no policy allowed, by kind (preflight, request,
	// push).
	CORSPreflights int64            `json:"cors_preflights_total"`
	CORSRefused    map[string]int64 `json:"cors_refused_total"`
	// HTTP2 is the HTTP/2 connections and streams, and what the gateway ended
	// by reason (gateway/http2).
	HTTP2 http2View `json:"http2"`
	// Requests that never had an origin (refused heads, per-client refusals,
	// no route, filters' answers), by status cause; an origin's own are in
	// /admin/origins.
	Requests map[string]int64 `json:"requests_without_origin_by_cause"`
}

// http2View is /admin/edge's http2.
type http2View struct {
	Connections int64            `json:"connections_total"`
	Streams     int64            `json:"streams_total"`
	Ended       map[string]int64 `json:"ended_total"`
}

// edge serves GET /admin/edge.
func (a *Server) edge(w http.ResponseWriter, _ *http.Request) {
	sh := a.src.Shared
	ps := sh.Peers.Stats()
	writeAdminJSON(w, edgeView{
		Connections: sh.Clients.Load(), MaxConnections: sh.Snapshot().Config.Server.MaxConnections,
		RefusedMax: sh.RefusedMax.Load(), OriginOpenFiles: sh.OriginOpenFiles.Load(), AdminOpenFiles: sh.AdminOpenFiles.Load(), Clients: ps.Clients, MaxConnectionsPerIP: ps.MaxConnsPerIP,
		MaxRequestsPerIP: ps.MaxRequestsPerIP, RefusedConnectionsIP: ps.RefusedConns, RefusedRequestsIP: ps.RefusedRequests,
		Buffered: max(0, sh.Buffered.Load()), BufferedBudget: sh.Budget, Parked: sh.Parked.Load(),
		ProxyRefused: sh.ProxyRefused.Load(), Requests: a.src.Counts.Snapshot()[telemetry.NoOrigin],
		InterimForwarded: sh.InterimForwarded.Load(), InterimDropped: sh.InterimDropped.Load(),
		CORSPreflights: sh.CORS.Preflights.Load(), CORSRefused: map[string]int64{"preflight": sh.CORS.RefusedPreflight.Load(),
			"request": sh.CORS.RefusedRequest.Load(), "push": sh.CORS.RefusedPush.Load()},
		HTTP2: http2View{Connections: sh.H2.Conns.Load(), Streams: sh.H2.Streams.Load(), Ended: sh.H2.Ended()},
	})
}

// adminFilters serves GET /admin/filters: every Lua filter file, its version in
// service and its counters.
func (a *Server) filters(w http.ResponseWriter, _ *http.Request) {
	list := []lua.FilterStatus{}
	if a.src.Filters != nil {
		list = append(list, a.src.Filters.Status()...)
	}
	writeAdminJSON(w, list)
}

// async is GET /admin/async: requests waiting in async filters, and the
// shared dictionaries.
func (a *Server) async(w http.ResponseWriter, _ *http.Request) {
	st := lua.AsyncStatus{SharedDicts: map[string]dict.Stats{}}
	if a.src.Filters != nil {
		st = a.src.Filters.Async()
	}
	writeAdminJSON(w, st)
}

// pushView is GET /admin/push.
type pushView struct {
	Connections     int64           `json:"connections"`
	Clients         int             `json:"clients"`
	Accepted        int64           `json:"accepted_total"`
	Refused         int64           `json:"refused_total"`
	MessagesSent    int64           `json:"messages_sent_total"`
	GoAways         int64           `json:"goaway_total"`
	SlowClosed      int64           `json:"slow_consumer_closed_total"`
	PingTimeouts    int64           `json:"ping_timeout_closed_total"`
	ProtocolClosed  int64           `json:"protocol_error_closed_total"`
	UpstreamSent    int64           `json:"upstream_sent_total"`
	UpstreamFailed  int64           `json:"upstream_failed_total"`
	UpstreamDropped int64           `json:"upstream_dropped_total"`
	API             pushAPIView     `json:"api"`
	Cluster         pushClusterView `json:"cluster"`
	Topics          pushTopicsView  `json:"topics"`
	History         *pushHistView   `json:"history"` // null: push.history.max_messages 0
}

// pushTopicsView is the topics' part of GET /admin/push.
type pushTopicsView struct {
	Topics         int64  `json:"topics"`                     // distinct topics with a subscriber on this node
	Subscriptions  int64  `json:"subscriptions"`              // (topic, client id) pairs on this node
	Pushes         uint64 `json:"pushes_total"`               // POST /push/topic/{name} from API clients
	NodeFull       int64  `json:"node_limit_refused_total"`   // subscriptions refused by push.topics.max_per_node
	ClientFull     int64  `json:"client_limit_refused_total"` // refused by a client id's share of the node's topics
	ControlApplied int64  `json:"control_applied_total"`      // websocket control messages applied
	ControlRefused int64  `json:"control_refused_total"`      // control messages refused (malformed, bad name, a limit)
}

// pushHistView is the history's part of GET /admin/push.
type pushHistView struct {
	Stored   int64 `json:"messages_stored_total"`   // messages kept (reached or not)
	Dropped  int64 `json:"messages_dropped_total"`  // messages not kept: over max_total_bytes or max_bytes
	Replayed int64 `json:"messages_replayed_total"` // messages sent to reconnecting devices
	Resyncs  int64 `json:"resyncs_total"`           // reconnects told to resync (last id gone)
	Bytes    int64 `json:"bytes"`                   // kept now, all ids (payloads + 100 B per message)
	IDs      int   `json:"client_ids"`              // client ids with a history (or recently seen)
	// Redis (cluster mode): writes done, failures (writes and recovery reads),
	// writes dropped because the writer's queue was full.
	RedisWrites   int64 `json:"redis_writes_total"`
	RedisFailures int64 `json:"redis_failures_total"`
	RedisDropped  int64 `json:"redis_dropped_total"`
}

// pushAPIView is the push API's part of GET /admin/push ("from API clients":
// requests not forwarded by another node, so that a sum over the nodes counts
// each call once).
type pushAPIView struct {
	Pushes           uint64 `json:"pushes_total"`              // push requests from API clients that reached a connection
	NotFound         uint64 `json:"not_found_total"`           // push requests from API clients answered 404
	Stored           uint64 `json:"stored_total"`              // push requests from API clients answered 202 (kept for a device away)
	Broadcasts       uint64 `json:"broadcasts_total"`          // broadcast requests from API clients
	MessagesQueued   uint64 `json:"messages_queued_total"`     // messages this node's connections took, forwarded or not
	Forwarded        uint64 `json:"forwarded_total"`           // requests forwarded to other nodes (one per node)
	ForwardErrors    uint64 `json:"forward_errors_total"`      // forwarded requests that failed
	ForwardsReceived uint64 `json:"forwards_received_total"`   // requests other nodes forwarded here
	RateLimited      uint64 `json:"rate_limited_total"`        // 429 answers
	TooLarge         uint64 `json:"too_large_total"`           // 413 answers
	ClusterErrors    uint64 `json:"cluster_errors_total"`      // failed cluster registry calls
	Recovering       uint64 `json:"registry_recovering_total"` // 503 answers while the cluster registry was being rebuilt
	AuthRefused      uint64 `json:"auth_refused_total"`        // API calls refused by push.api: 401 (token), 403 (address)
	ForwardsRefused  uint64 `json:"forwards_refused_total"`    // forwards refused: unsigned (401), bad signature, stale, replayed (403)
}

// pushClusterView says whether this node is part of a push cluster.
type pushClusterView struct {
	Enabled bool   `json:"enabled"`
	Node    string `json:"node"` // this node's push-API address ("" single node)
	// RedisMode is the kind of Redis deployment: single, cluster or sentinel.
	RedisMode string `json:"redis_mode"` // "" single node
	// RegistrarDropped counts registry updates dropped because the registrar's
	// queue was full (the periodic refresh repairs them).
	RegistrarDropped int64 `json:"registrar_dropped_total"`
	// Rebuilds counts the times this node found the registry had lost its
	// entries (Redis restarted empty, flushed) and registered them all again.
	Rebuilds int64 `json:"registry_rebuilds_total"`
}

// push serves GET /admin/push.
func (a *Server) push(w http.ResponseWriter, _ *http.Request) {
	h := a.src.Push
	st := &h.Stats
	api := h.API.Stats()
	v := pushView{
		Connections: st.Open.Load(), Clients: h.Registry.Clients(),
		Accepted: st.Accepted.Load(), Refused: st.Refused.Load(), MessagesSent: st.Sent.Load(),
		GoAways: st.GoAways.Load(), SlowClosed: st.SlowClosed.Load(), PingTimeouts: st.PingTimeouts.Load(),
		ProtocolClosed: st.ProtocolClosed.Load(),
		UpstreamSent:   st.UpstreamSent.Load(), UpstreamFailed: st.UpstreamFailed.Load(), UpstreamDropped: st.UpstreamDropped.Load(),
		API: pushAPIView{
			Pushes: api.Pushed, NotFound: api.NotFound, Stored: api.Stored, Broadcasts: api.Broadcasts, MessagesQueued: api.Delivered,
			Forwarded: api.Forwarded, ForwardErrors: api.ForwardErrors, ForwardsReceived: api.ForwardsReceived,
			RateLimited: api.RateLimited, TooLarge: api.TooLarge, ClusterErrors: api.ClusterErrors,
			Recovering: api.Recovering, AuthRefused: api.AuthRefused, ForwardsRefused: api.ForwardsRefused,
		},
	}
	ts := h.Topics.Stats()
	v.Topics = pushTopicsView{Topics: ts.Topics, Subscriptions: ts.Subscriptions, Pushes: api.TopicPushes,
		NodeFull: ts.Refused, ClientFull: ts.RefusedIDs, ControlApplied: st.ControlApplied.Load(), ControlRefused: st.ControlRefused.Load()}
	if h.Cluster != nil {
		v.Cluster = pushClusterView{Enabled: true, Node: h.Cluster.Node(), RedisMode: h.Cfg.Cluster.Redis.Mode(),
			RegistrarDropped: h.Registrar.Dropped(), Rebuilds: h.Registrar.Rebuilds()}
	}
	if h.History != nil {
		hs := h.History.Stats()
		v.History = &pushHistView{Stored: hs.Stored, Dropped: hs.Dropped, Replayed: hs.Replayed, Resyncs: hs.Resyncs,
			Bytes: hs.Bytes, IDs: hs.IDs}
		if st := h.History.Store(); st != nil {
			rs := st.Stats()
			v.History.RedisWrites, v.History.RedisFailures, v.History.RedisDropped = rs.Writes, rs.Failures, rs.Dropped
		}
	}
	writeAdminJSON(w, v)
}

// writeAdminJSON writes v as indented JSON.
func writeAdminJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	writeJSONBody(w, v)
}

// writeJSONBody writes v indented, after the headers were written.
func writeJSONBody(w http.ResponseWriter, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeAdminError answers status with {"error": msg}.
func writeAdminError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
