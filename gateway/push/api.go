package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// The push API: the HTTP handler the gateway mounts on its internal admin
// listener (DESIGN.md, section 5). Routes, all answered in JSON:
//
//	POST /push/{client_id}            push the body to every connection of the id, cluster-wide
//	GET  /push/{client_id}            where the id is connected
//	POST /push/broadcast[?prefix=p]   push the body to every id starting with p, cluster-wide
//
// The body is the message. Content-Type application/octet-stream (parameters
// ignored) makes it a binary message; anything else, or none, a text message,
// which must then be valid UTF-8 (a websocket client closes the connection on
// a text frame that is not). Because of the broadcast route, the client id
// "broadcast" cannot be addressed by the push API: a device may connect with
// it, but only broadcasts reach it.
//
// Answers:
//
//	200 {"reached": N, "nodes": ["node", ...]}      push: N connections took the message, on these nodes
//	200 {"reached": N, "nodes": {"node": n, ...}}   broadcast: per node, this one included, even with 0
//	200 {"client_id": id, "connected": b, "local": n, "nodes": [...]}   GET
//	400 bad client id or prefix, text body not UTF-8, unreadable body
//	404 {"reached": 0, "error": "client not connected"}   push: no node has the id
//	405 method not allowed (with Allow)
//	413 body over MaxMessage (by Content-Length before reading, or while reading)
//	429 the client id's message rate is exceeded (with Retry-After in seconds)
//	502 nothing was reached and forwarding to at least one node failed
//	503 nothing was reached and the cluster registry could not be asked (with Retry-After)
//
// A 200 may carry "failed" (node → why forwarding to it failed) and
// "warning" (the cluster registry failed, so only this node was tried): the
// message reached someone, but maybe not every device of the id.
//
// Cluster errors do not fail local delivery: the message goes to this node's
// connections first, whatever the registry says. When the registry is down,
// the caller gets 200 if that reached someone (with a warning), else 503 with
// Retry-After: 1, not 404, because the id may well be connected on another
// node: retrying later is the right reaction, giving up is not. Likewise 502
// when the only nodes that could hold the id did not answer.

const (
	// ForwardedHeader marks a request one node forwarded to another; its value
	// is the forwarding node's name. In cluster mode a request carrying it is
	// delivered locally only and never forwarded again (the loop guard), and
	// is not rate limited again. The admin listener is internal and trusted:
	// whoever can reach it can set this header.
	ForwardedHeader = "X-Gozer-Push-Forwarded"

	// apiPrefix is the path prefix the API serves.
	apiPrefix = "/push/"
	// broadcastID is the path segment of the broadcast route, a reserved id.
	broadcastID = "broadcast"
	// localNode names this node in answers in single-node mode.
	localNode = "local"
	// defaultMaxMessage is APIConfig.MaxMessage when it is not positive: the
	// default of push.max_message.
	defaultMaxMessage = 64 << 10
	// clusterTimeout bounds one cluster registry call (Lookup, Nodes).
	clusterTimeout = time.Second
	// forwardTimeout bounds forwarding to the other nodes, all in parallel.
	forwardTimeout = 2 * time.Second
	// sweepInterval is how often SweepLoop sweeps the rate limiter.
	sweepInterval = 10 * time.Second
	// logEvery is how often at most a sampled warning is logged per kind.
	logEvery = 5 * time.Second
)

// APIConfig configures the push API.
type APIConfig struct {
	// Registry holds this node's connections. Required.
	Registry *Registry
	// Limiter limits the message rate per client id on POST /push/{id}; nil:
	// no limit. Broadcasts are not limited.
	Limiter *RateLimiter
	// Cluster is this node's view of the cluster registry; nil: single node
	// (nothing is forwarded, answers name this node "local").
	Cluster ClusterRegistry
	// MaxMessage is the largest body in bytes (over it: 413); not positive:
	// 64 KiB.
	MaxMessage int
	// Log receives a line for every answer that is not 2xx, and forwarding and
	// cluster registry failures.
	Log zerolog.Logger
	// Client forwards requests to the other nodes; nil: a client with a 1 s
	// dial and 2 s overall timeout, no proxy, no redirects.
	Client *http.Client
}

// APIStats are the push API's counters since NewAPI. "From API clients"
// means requests without ForwardedHeader, so that summing a counter over the
// nodes counts each API call once.
type APIStats struct {
	Pushed           uint64 // push requests from API clients that reached a connection (200)
	Broadcasts       uint64 // broadcast requests from API clients that passed the checks, whatever they reached
	Delivered        uint64 // messages this node's connections accepted (push and broadcast, forwarded or not)
	Forwarded        uint64 // requests forwarded to other nodes (one per node)
	ForwardErrors    uint64 // forwarded requests that failed (no answer, or not 200/404)
	ForwardsReceived uint64 // requests other nodes forwarded here
	RateLimited      uint64 // 429 answers
	TooLarge         uint64 // 413 answers
	NotFound         uint64 // push requests from API clients answered 404
	ClusterErrors    uint64 // failed cluster registry calls
}

// API is the push API handler. Build it with NewAPI.
//
// Concurrency: ServeHTTP, Stats and SweepLoop may be called from any
// goroutine, concurrently. ServeHTTP blocks for at most about 1 s of cluster
// registry lookup plus 2 s of forwarding, whatever the caller does meanwhile:
// once a message was delivered locally, forwarding it completes even if the
// API client went away, so a push is not half delivered because its caller
// hung up.
type API struct {
	reg     *Registry
	limiter *RateLimiter
	cluster ClusterRegistry
	self    string // Cluster.Node(), or "local"
	max     int
	log     zerolog.Logger
	client  *http.Client
	start   time.Time // for the log samplers' clock

	clusterLog, forwardLog, errLog logSampler

	pushed, broadcasts, delivered                  atomic.Uint64
	forwarded, forwardErrors, forwardsReceived     atomic.Uint64
	rateLimited, tooLarge, notFound, clusterErrors atomic.Uint64
}

// NewAPI returns the push API for cfg. It starts no goroutine: run SweepLoop
// for the rate limiter. It panics if cfg.Registry is nil.
func NewAPI(cfg APIConfig) *API {
	if cfg.Registry == nil {
		panic("push: NewAPI needs a Registry")
	}
	a := &API{
		reg: cfg.Registry, limiter: cfg.Limiter, cluster: cfg.Cluster, self: localNode,
		max: cfg.MaxMessage, log: cfg.Log, client: cfg.Client, start: time.Now(),
	}
	if a.cluster != nil {
		a.self = a.cluster.Node()
	}
	if a.max <= 0 {
		a.max = defaultMaxMessage
	}
	if a.client == nil {
		a.client = defaultForwardClient()
	}
	return a
}

// Stats returns a snapshot of the counters. Any goroutine.
func (a *API) Stats() APIStats {
	return APIStats{
		Pushed: a.pushed.Load(), Broadcasts: a.broadcasts.Load(), Delivered: a.delivered.Load(),
		Forwarded: a.forwarded.Load(), ForwardErrors: a.forwardErrors.Load(), ForwardsReceived: a.forwardsReceived.Load(),
		RateLimited: a.rateLimited.Load(), TooLarge: a.tooLarge.Load(), NotFound: a.notFound.Load(),
		ClusterErrors: a.clusterErrors.Load(),
	}
}

// SweepLoop calls Limiter.Sweep every 10 s until ctx is done, then returns;
// without a Limiter it only waits for ctx. Run it on its own goroutine.
func (a *API) SweepLoop(ctx context.Context) {
	if a.limiter == nil {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.limiter.Sweep()
		}
	}
}

// ServeHTTP serves the paths under /push/ (see the routes above); any other
// path is a 404. Any goroutine.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, apiPrefix)
	if !ok {
		a.fail(w, r, http.StatusNotFound, errorAnswer{Error: "not found: the push api serves /push/{client_id} and /push/broadcast"})
		return
	}
	if id == broadcastID {
		if r.Method != http.MethodPost {
			a.notAllowed(w, r, "POST")
			return
		}
		a.serveBroadcast(w, r)
		return
	}
	switch r.Method {
	case http.MethodPost:
		a.servePush(w, r, id)
	case http.MethodGet:
		a.serveStatus(w, r, id)
	default:
		a.notAllowed(w, r, "GET, POST")
	}
}

// pushAnswer is the answer to POST /push/{id}.
type pushAnswer struct {
	Reached int               `json:"reached"`
	Nodes   []string          `json:"nodes,omitempty"`
	Failed  map[string]string `json:"failed,omitempty"`
	Warning string            `json:"warning,omitempty"`
	Error   string            `json:"error,omitempty"`
}

// broadcastAnswer is the answer to POST /push/broadcast.
type broadcastAnswer struct {
	Reached int               `json:"reached"`
	Nodes   map[string]int    `json:"nodes"`
	Failed  map[string]string `json:"failed,omitempty"`
	Warning string            `json:"warning,omitempty"`
	Error   string            `json:"error,omitempty"`
}

// statusAnswer is the answer to GET /push/{id}.
type statusAnswer struct {
	ClientID  string   `json:"client_id"`
	Connected bool     `json:"connected"`
	Local     int      `json:"local"`
	Nodes     []string `json:"nodes"`
	Warning   string   `json:"warning,omitempty"`
	Error     string   `json:"error,omitempty"`
}

type errorAnswer struct {
	Error string `json:"error"`
}

func (a *API) servePush(w http.ResponseWriter, r *http.Request, id string) {
	if !ValidClientID(id) {
		a.fail(w, r, http.StatusBadRequest, errorAnswer{Error: "invalid client id: want 1 to 256 of a-z A-Z 0-9 -._~:@+="})
		return
	}
	forwarded := a.isForwarded(r)
	body, binary, ok := a.readMessage(w, r)
	if !ok {
		return
	}
	// The rate limit applies once, at the node the API client called: a
	// forwarded request was limited there already and is not limited again.
	if a.limiter != nil && !forwarded {
		if ok, wait := a.limiter.Allow(id); !ok {
			secs := max(1, int64((wait+time.Second-1)/time.Second))
			a.rateLimited.Add(1)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			a.fail(w, r, http.StatusTooManyRequests, errorAnswer{Error: fmt.Sprintf("rate limited: client id over its message rate, retry in %ds", secs)})
			return
		}
	}

	n := a.reg.Push(id, body, binary)
	a.delivered.Add(uint64(n))
	ans := pushAnswer{Reached: n}
	if n > 0 {
		ans.Nodes = append(ans.Nodes, a.self)
	}
	var clusterErr error
	if a.cluster != nil && !forwarded {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), clusterTimeout)
		nodes, err := a.cluster.Lookup(ctx, id, nil)
		cancel()
		if err != nil {
			clusterErr = a.clusterFailed(r, "lookup", err)
			ans.Warning = "delivered on this node only: " + clusterErr.Error()
		} else {
			path := apiPrefix + id // a valid id needs no escaping in a path
			for _, res := range a.forward(r, a.peers(nodes), path, body) {
				if res.err != nil {
					ans.Failed = setErr(ans.Failed, res.node, res.err)
					continue
				}
				if res.reached > 0 {
					ans.Reached += res.reached
					ans.Nodes = append(ans.Nodes, res.node)
				}
			}
		}
	}

	switch {
	case ans.Reached > 0:
		if !forwarded {
			a.pushed.Add(1)
		}
		writeJSON(w, http.StatusOK, ans)
	case clusterErr != nil:
		ans.Warning, ans.Error = "", clusterErr.Error()
		w.Header().Set("Retry-After", "1")
		a.fail(w, r, http.StatusServiceUnavailable, ans)
	case len(ans.Failed) > 0:
		ans.Error = fmt.Sprintf("client not reached: forwarding failed to %d node(s), it may be connected there", len(ans.Failed))
		a.fail(w, r, http.StatusBadGateway, ans)
	default:
		if !forwarded {
			a.notFound.Add(1)
		}
		ans.Error = "client not connected"
		a.fail(w, r, http.StatusNotFound, ans)
	}
}

func (a *API) serveStatus(w http.ResponseWriter, r *http.Request, id string) {
	if !ValidClientID(id) {
		a.fail(w, r, http.StatusBadRequest, errorAnswer{Error: "invalid client id: want 1 to 256 of a-z A-Z 0-9 -._~:@+="})
		return
	}
	local := a.reg.Count(id)
	ans := statusAnswer{ClientID: id, Local: local, Nodes: []string{}}
	switch {
	case a.cluster == nil:
		if local > 0 {
			ans.Nodes = append(ans.Nodes, localNode)
		}
	default:
		// The nodes are the cluster registry's view, which may lag behind
		// this node's own connections for a moment; connected also counts
		// the local ones.
		ctx, cancel := context.WithTimeout(r.Context(), clusterTimeout)
		nodes, err := a.cluster.Lookup(ctx, id, ans.Nodes)
		cancel()
		if err != nil {
			err = a.clusterFailed(r, "lookup", err)
			if local == 0 {
				w.Header().Set("Retry-After", "1")
				a.fail(w, r, http.StatusServiceUnavailable, statusAnswer{ClientID: id, Nodes: []string{}, Error: err.Error()})
				return
			}
			nodes = append(nodes[:0], a.self)
			ans.Warning = "other nodes unknown: " + err.Error()
		}
		ans.Nodes = nodes
	}
	ans.Connected = local > 0 || len(ans.Nodes) > 0
	writeJSON(w, http.StatusOK, ans)
}

func (a *API) serveBroadcast(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	if prefix != "" && !ValidClientID(prefix) {
		a.fail(w, r, http.StatusBadRequest, errorAnswer{Error: "invalid prefix: want up to 256 of a-z A-Z 0-9 -._~:@+="})
		return
	}
	forwarded := a.isForwarded(r)
	body, binary, ok := a.readMessage(w, r)
	if !ok {
		return
	}

	n := a.reg.Broadcast(prefix, body, binary)
	a.delivered.Add(uint64(n))
	ans := broadcastAnswer{Reached: n, Nodes: map[string]int{a.self: n}}
	var clusterErr error
	if a.cluster != nil && !forwarded {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), clusterTimeout)
		nodes, err := a.cluster.Nodes(ctx, nil)
		cancel()
		if err != nil {
			clusterErr = a.clusterFailed(r, "nodes", err)
			ans.Warning = "delivered on this node only: " + clusterErr.Error()
		} else {
			path := apiPrefix + broadcastID
			if prefix != "" {
				path += "?prefix=" + prefix // a valid prefix needs no escaping in a query
			}
			for _, res := range a.forward(r, a.peers(nodes), path, body) {
				if res.err != nil {
					ans.Failed = setErr(ans.Failed, res.node, res.err)
					continue
				}
				ans.Nodes[res.node] = res.reached
				ans.Reached += res.reached
			}
		}
	}
	if !forwarded {
		a.broadcasts.Add(1)
	}

	// Reaching nobody is a valid outcome of a broadcast, unless some nodes
	// could not be asked: then, as for a push, 503 or 502 tells the caller
	// that retrying may reach more.
	switch {
	case ans.Reached > 0 || (clusterErr == nil && len(ans.Failed) == 0):
		writeJSON(w, http.StatusOK, ans)
	case clusterErr != nil:
		ans.Warning, ans.Error = "", clusterErr.Error()
		w.Header().Set("Retry-After", "1")
		a.fail(w, r, http.StatusServiceUnavailable, ans)
	default:
		ans.Error = fmt.Sprintf("nobody reached: forwarding failed to %d node(s)", len(ans.Failed))
		a.fail(w, r, http.StatusBadGateway, ans)
	}
}

// isForwarded reports whether r was forwarded by another node. Only cluster
// mode honours the header: a single node never forwards, so there the header
// cannot skip the rate limit.
func (a *API) isForwarded(r *http.Request) bool {
	if a.cluster == nil || r.Header.Get(ForwardedHeader) == "" {
		return false
	}
	a.forwardsReceived.Add(1)
	return true
}

// readMessage reads and checks the message body. When it returns ok false,
// it answered already. The body is a fresh slice per request: connections may
// keep it until it was written, so it is never reused.
func (a *API) readMessage(w http.ResponseWriter, r *http.Request) (body []byte, binary, ok bool) {
	if r.ContentLength > int64(a.max) {
		a.tooLarge.Add(1)
		// Do not let the server drain a large body it is going to refuse.
		w.Header().Set("Connection", "close")
		a.fail(w, r, http.StatusRequestEntityTooLarge, errorAnswer{Error: fmt.Sprintf("message too large: %d bytes, the limit is %d", r.ContentLength, a.max)})
		return nil, false, false
	}
	mbr := http.MaxBytesReader(w, r.Body, int64(a.max))
	var err error
	if r.ContentLength >= 0 {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(mbr, body)
	} else {
		body, err = io.ReadAll(mbr)
	}
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			a.tooLarge.Add(1)
			a.fail(w, r, http.StatusRequestEntityTooLarge, errorAnswer{Error: fmt.Sprintf("message too large: over the limit of %d bytes", mbe.Limit)})
		} else {
			a.fail(w, r, http.StatusBadRequest, errorAnswer{Error: "reading message: " + err.Error()})
		}
		return nil, false, false
	}
	binary = isBinary(r.Header.Get("Content-Type"))
	if !binary && !utf8.Valid(body) {
		a.fail(w, r, http.StatusBadRequest, errorAnswer{Error: "text message is not valid utf-8: send binary data with Content-Type: application/octet-stream"})
		return nil, false, false
	}
	return body, binary, true
}

// isBinary reports whether a Content-Type asks for a binary message.
func isBinary(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return false // unparsable: text, like no Content-Type
	}
	return mt == "application/octet-stream"
}

// peers returns nodes without this one, in place.
func (a *API) peers(nodes []string) []string {
	out := nodes[:0]
	for _, n := range nodes {
		if n != a.self && n != "" {
			out = append(out, n)
		}
	}
	return out
}

// clusterFailed counts and logs (sampled) a cluster registry failure and
// returns the error to answer with.
func (a *API) clusterFailed(r *http.Request, op string, err error) error {
	a.clusterErrors.Add(1)
	if ok, suppressed := a.clusterLog.allow(a.now()); ok {
		a.log.Warn().Err(err).Str("op", op).Str("path", r.URL.Path).Int64("suppressed", suppressed).
			Msg("push api: cluster registry unavailable, delivering on this node only")
	}
	return fmt.Errorf("cluster registry unavailable: %w", err)
}

func (a *API) notAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	a.fail(w, r, http.StatusMethodNotAllowed, errorAnswer{Error: fmt.Sprintf("method %s not allowed, use %s", r.Method, allow)})
}

// fail answers a non-2xx status with the JSON body v and logs it: 404 and 429
// at debug (they are routine and can come in floods), other 4xx at info, 5xx
// at warn, at most one 5xx line per 5 s with a count of the ones suppressed
// (a registry outage would otherwise log every request).
func (a *API) fail(w http.ResponseWriter, r *http.Request, status int, v any) {
	reason := ""
	switch v := v.(type) {
	case errorAnswer:
		reason = v.Error
	case pushAnswer:
		reason = v.Error
	case broadcastAnswer:
		reason = v.Error
	case statusAnswer:
		reason = v.Error
	}
	var ev *zerolog.Event
	switch {
	case status >= 500:
		if ok, suppressed := a.errLog.allow(a.now()); ok {
			ev = a.log.Warn().Int64("suppressed", suppressed)
		}
	case status == http.StatusNotFound || status == http.StatusTooManyRequests:
		ev = a.log.Debug()
	default:
		ev = a.log.Info()
	}
	if ev != nil {
		ev.Int("status", status).Str("method", r.Method).Str("path", r.URL.Path).
			Str("remote", r.RemoteAddr).Bool("forwarded", r.Header.Get(ForwardedHeader) != "").
			Str("reason", reason).Msg("push api: request refused")
	}
	writeJSON(w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen with the answer types above
		b, status = []byte(`{"error":"encoding the answer failed"}`), http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func (a *API) now() int64 { return int64(time.Since(a.start)) }
