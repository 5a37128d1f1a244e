// Package filters holds the filter model shared by the core and the filter runtimes:
// the request's route decision and the status categories a request can end with.
// The Lua runtime and the filter chains (inbound → endpoint → outbound) build on it.
package filters

import "gozer/gateway/httpcodec"

// Category says who a request's outcome is attributed to, as Zuul's StatusCategory does.
type Category uint8

// The categories a request can end with.
const (
	CategorySuccess Category = iota
	CategoryLocalFailure
	CategoryClientFailure
	CategoryOriginFailure
)

// Cause is why a request ended: shown in the access log, in X-Gozer-Status and in
// counters. A Cause is a constant; compare causes by value.
type Cause struct {
	Name     string
	Category Category
	Status   int // HTTP status the client gets when the gateway answers itself (0: origin's)
}

// The causes the core produces. Names are stable: operators alert on them.
var (
	Success = Cause{"SUCCESS", CategorySuccess, 0}

	ClientBadRequest     = Cause{"FAILURE_CLIENT_BAD_REQUEST", CategoryClientFailure, 400}
	ClientSmuggling      = Cause{"FAILURE_CLIENT_SMUGGLING", CategoryClientFailure, 400}
	ClientTimeout        = Cause{"FAILURE_CLIENT_TIMEOUT", CategoryClientFailure, 408}
	ClientBodyTooLarge   = Cause{"FAILURE_CLIENT_BODY_TOO_LARGE", CategoryClientFailure, 413}
	ClientURITooLong     = Cause{"FAILURE_CLIENT_URI_TOO_LONG", CategoryClientFailure, 414}
	ClientHeadersTooLong = Cause{"FAILURE_CLIENT_HEADERS_TOO_LARGE", CategoryClientFailure, 431}
	ClientClosed         = Cause{"FAILURE_CLIENT_CLOSED", CategoryClientFailure, 499}
	// Slow clients and per-client fairness (server.min_body_rate,
	// server.min_send_rate, server.max_connections_per_ip, server.max_requests_per_ip).
	// A client too slow to read its response cannot be answered any more: the
	// connection closes and 408 is what the access log says.
	ClientBodyTooSlow        = Cause{"FAILURE_CLIENT_BODY_TOO_SLOW", CategoryClientFailure, 408}
	ClientReadTooSlow        = Cause{"FAILURE_CLIENT_READ_TOO_SLOW", CategoryClientFailure, 408}
	ClientTooManyConnections = Cause{"FAILURE_CLIENT_TOO_MANY_CONNECTIONS", CategoryClientFailure, 429}
	ClientTooManyRequests    = Cause{"FAILURE_CLIENT_TOO_MANY_REQUESTS", CategoryClientFailure, 429}
	// Rate limits (limits.rules, ctx.limit) and the deny list (protect.deny,
	// /admin/deny, ctx.deny).
	ClientRateLimited = Cause{"FAILURE_CLIENT_RATE_LIMITED", CategoryClientFailure, 429}
	ClientDenied      = Cause{"FAILURE_CLIENT_DENIED", CategoryClientFailure, 403}
	// Push connections (websocket, SSE).
	ClientPushNotAccepted  = Cause{"FAILURE_CLIENT_PUSH_NOT_ACCEPTED", CategoryClientFailure, 403}
	ClientBadHandshake     = Cause{"FAILURE_CLIENT_BAD_HANDSHAKE", CategoryClientFailure, 400}
	ClientTooManyPushConns = Cause{"FAILURE_CLIENT_TOO_MANY_PUSH_CONNECTIONS", CategoryClientFailure, 429}
	ClientTooManyTopics    = Cause{"FAILURE_CLIENT_TOO_MANY_TOPICS", CategoryClientFailure, 400}
	// ClientOriginRefused: a browser's request from an origin the CORS
	// policy does not allow (a preflight, a push upgrade).
	ClientOriginRefused = Cause{"FAILURE_CLIENT_ORIGIN_REFUSED", CategoryClientFailure, 403}

	LocalNoRoute = Cause{"FAILURE_LOCAL_NO_ROUTE", CategoryLocalFailure, 404}
	// LocalLoopDetected: the request already went through this gateway
	// several times (its Via says so): a route or Host leads back to it.
	LocalLoopDetected    = Cause{"FAILURE_LOCAL_LOOP_DETECTED", CategoryLocalFailure, 508}
	LocalMaxConnections  = Cause{"FAILURE_LOCAL_MAX_CONNECTIONS", CategoryLocalFailure, 503}
	LocalOriginConnLimit = Cause{"FAILURE_LOCAL_THROTTLED_ORIGIN_CONNECTIONS", CategoryLocalFailure, 503}
	// LocalSlowReaders: the origin's connections held by slow readers reached
	// their share; the slow reader that would take one more is closed.
	LocalSlowReaders    = Cause{"FAILURE_LOCAL_TOO_MANY_SLOW_READERS", CategoryLocalFailure, 503}
	LocalShuttingDown   = Cause{"FAILURE_LOCAL_SHUTTING_DOWN", CategoryLocalFailure, 503}
	LocalTooManyTopics  = Cause{"FAILURE_LOCAL_TOO_MANY_TOPICS", CategoryLocalFailure, 503}
	LocalInternal       = Cause{"FAILURE_LOCAL_INTERNAL", CategoryLocalFailure, 500}
	LocalFilterError    = Cause{"FAILURE_LOCAL_FILTER_ERROR", CategoryLocalFailure, 500}
	LocalFilterTimeout  = Cause{"FAILURE_LOCAL_FILTER_TIMEOUT", CategoryLocalFailure, 500}
	LocalFilterResponse = Cause{"SUCCESS_LOCAL_FILTER_RESPONSE", CategorySuccess, 0}
	// LocalRedirectHTTPS: the plain listener sent the client to HTTPS
	// (listeners.proxy.redirect_https).
	LocalRedirectHTTPS = Cause{"SUCCESS_LOCAL_REDIRECT_HTTPS", CategorySuccess, 0}
	SuccessViaFallback = Cause{"SUCCESS_VIA_FALLBACK", CategorySuccess, 0}

	LocalOriginConcurrency = Cause{"FAILURE_LOCAL_THROTTLED_ORIGIN_CONCURRENCY", CategoryLocalFailure, 503}
	LocalOriginCircuitOpen = Cause{"FAILURE_LOCAL_ORIGIN_CIRCUIT_OPEN", CategoryLocalFailure, 503}
	OriginConnectivity     = Cause{"FAILURE_ORIGIN_CONNECTIVITY", CategoryOriginFailure, 502}
	OriginReset            = Cause{"FAILURE_ORIGIN_RESET", CategoryOriginFailure, 502}
	OriginBadResponse      = Cause{"FAILURE_ORIGIN_BAD_RESPONSE", CategoryOriginFailure, 502}
	OriginReadTimeout      = Cause{"FAILURE_ORIGIN_READ_TIMEOUT", CategoryOriginFailure, 504}
	OriginClosedMidBody    = Cause{"FAILURE_ORIGIN_CLOSED_MID_RESPONSE", CategoryOriginFailure, 502}
	OriginStalledRequest   = Cause{"FAILURE_ORIGIN_STALLED_REQUEST_BODY", CategoryOriginFailure, 504}
	// LocalTunnelLimit: the origin has origins.NAME.websocket.max_tunnels
	// websocket tunnels open on this node.
	LocalTunnelLimit = Cause{"FAILURE_LOCAL_THROTTLED_ORIGIN_WEBSOCKETS", CategoryLocalFailure, 503}
)

// Causes lists every cause the core produces, in a fixed order: CauseIndex gives
// a cause's position, so counters can be a plain array indexed by it.
func Causes() []Cause { return all }

var causeIndex = func() map[string]int {
	m := make(map[string]int, len(all))
	for i, c := range all {
		m[c.Name] = i
	}
	return m
}()

// CauseIndex is the position of the cause called name in Causes, or -1.
func CauseIndex(name string) int {
	if i, ok := causeIndex[name]; ok {
		return i
	}
	return -1
}

var all = []Cause{
	Success, ClientBadRequest, ClientSmuggling, ClientTimeout, ClientBodyTooLarge, ClientURITooLong,
	ClientHeadersTooLong, ClientClosed, ClientBodyTooSlow, ClientReadTooSlow, ClientTooManyConnections,
	ClientTooManyRequests, ClientPushNotAccepted, ClientBadHandshake, ClientTooManyPushConns, ClientTooManyTopics, LocalTooManyTopics, ClientOriginRefused, LocalNoRoute, LocalMaxConnections, LocalOriginConnLimit, LocalSlowReaders,
	LocalShuttingDown, LocalInternal, LocalFilterError, LocalFilterTimeout, LocalFilterResponse, LocalRedirectHTTPS, SuccessViaFallback,
	LocalOriginConcurrency, LocalOriginCircuitOpen, OriginConnectivity, OriginReset, OriginBadResponse,
	OriginReadTimeout, OriginClosedMidBody, OriginStalledRequest,
	LocalTooManySuspended, LocalCallTimeout, LocalCallTooLarge, LocalCallAbandoned,
	LocalAdaptiveLimit, LocalInjected, LocalInjectedReset, // inject.go
	ClientRateLimited, ClientDenied,
	LocalTunnelLimit, // websocket tunnels (gateway/tunnel)
	LocalLoopDetected,
}

// CauseOfCodec is the status cause of a decoding error's class (its own
// status, when it has one, wins over the cause's).
func CauseOfCodec(c httpcodec.Class) Cause {
	switch c {
	case httpcodec.CauseSmuggling:
		return ClientSmuggling
	case httpcodec.CauseURITooLong:
		return ClientURITooLong
	case httpcodec.CauseHeadersTooLarge:
		return ClientHeadersTooLong
	case httpcodec.CauseOriginBadResponse:
		return OriginBadResponse
	}
	return ClientBadRequest
}
