package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// The push API: the fasthttp handler the gateway mounts on its internal
// admin listener (DESIGN.md, section 5). Routes, all answered in JSON:
//
//	POST /push/{client_id}            push the body to every connection of the id, cluster-wide
//	GET  /push/{client_id}            where the id is connected
//	POST /push/broadcast[?prefix=p]   push the body to every id starting with p, cluster-wide
//	POST /push/topic/{name}           push the body to every id subscribed to the topic, cluster-wide
//	GET  /push/topic/{name}           where the topic has subscribers (api_topic.go)
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
//	200 {"reached": N, "nodes": ["node", ...], "id": I}   push: N connections took the message, on these nodes;
//	                                                 I is its message id (with a history)
//	202 {"reached": 0, "stored": true, "id": I}      push: no device connected, but the id was seen within
//	                                                 push.history.max_age: kept for its devices to recover
//	200 {"reached": N, "nodes": {"node": n, ...}}   broadcast: per node, this one included, even with 0
//	200 {"client_id": id, "connected": b, "local": n, "nodes": [...]}   GET
//	400 bad client id or prefix, text body not UTF-8, unreadable body
//	404 {"reached": 0, "error": "client not connected"}   push: no node has the id, and it was not seen
//	                                                 within push.history.max_age (or there is no history)
//	405 method not allowed (with Allow)
//	413 body over MaxMessage (by Content-Length before reading, or while reading)
//	429 the client id's message rate is exceeded (with Retry-After in seconds)
//	502 nothing was reached and forwarding to at least one node failed
//	503 nothing was reached and the message could not be kept: the history is over
//	    push.history.max_total_bytes (with Retry-After); or the cluster registry could not be asked, or is being
//	    rebuilt after it lost its data ("registry recovering"; with Retry-After)
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
	// is the forwarding node's name. In cluster mode a request carrying it must
	// be signed with the cluster secret (forwardsig.go; else 401 or 403); it
	// is then delivered locally only and never forwarded again (the loop
	// guard), and is not rate limited again. A single node ignores it.
	ForwardedHeader = "X-Gozer-Push-Forwarded"
	// MessageIDHeader carries, on a forwarded push, the message id the first
	// node gave the message, so that it has one id on every node.
	MessageIDHeader = "X-Gozer-Push-Message-Id"

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
	// History gives messages their ids and keeps them; nil: none (pushes go
	// to Registry.Push, a push to an id not connected is 404).
	History *History
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
	// dial and 2 s overall timeout, no proxy, no redirects, whose dials
	// LimitDials bounds (it does nothing to a Client given here).
	Client *http.Client
	// ClusterSecret signs this node's forwards and checks the others' (with
	// Cluster; empty: forwards are refused).
	ClusterSecret []byte
	// Auth says which API clients may call (SetAuth changes it); the zero
	// value lets in loopback callers only.
	Auth APIAuth
	// Topics is this node's topic index; nil: the topic routes answer 404.
	Topics *Topics
}

// APIStats are the push API's counters since NewAPI. "From API clients"
// means requests without ForwardedHeader, so that summing a counter over the
// nodes counts each API call once.
type APIStats struct {
	Pushed           uint64 // push requests from API clients that reached a connection (200)
	Stored           uint64 // push requests from API clients that reached nobody but were kept in the history (202)
	Broadcasts       uint64 // broadcast requests from API clients that passed the checks, whatever they reached
	Delivered        uint64 // messages this node's connections accepted (push and broadcast, forwarded or not)
	Forwarded        uint64 // requests forwarded to other nodes (one per node)
	ForwardErrors    uint64 // forwarded requests that failed (no answer, or not 200/404)
	ForwardsReceived uint64 // requests other nodes forwarded here
	RateLimited      uint64 // 429 answers
	TooLarge         uint64 // 413 answers
	NotFound         uint64 // push requests from API clients answered 404
	ClusterErrors    uint64 // failed cluster registry calls
	Recovering       uint64 // lookups that found nothing while the registry was being rebuilt (ErrRecovering)
	AuthRefused      uint64 // API calls refused by push.api (401 no or wrong token, 403 address not allowed)
	ForwardsRefused  uint64 // forwards refused: unsigned (401), bad signature, stale timestamp, replayed nonce (403)
	TopicPushes      uint64 // topic requests from API clients that passed the checks, whatever they reached
}

// API is the push API handler. Build it with NewAPI.
//
// Concurrency: ServeFastHTTP, Stats and SweepLoop may be called from any
// goroutine, concurrently. Besides reading the body (bounded by the server's
// read timeout), ServeFastHTTP blocks for at most about 1 s of cluster
// registry lookup plus 2 s of forwarding, whatever the caller does meanwhile:
// once a message was delivered locally, forwarding it completes even if the
// API client went away, so a push is not half delivered because its caller
// hung up.
type API struct {
	reg      *Registry
	hist     *History
	limiter  *RateLimiter
	cluster  ClusterRegistry
	self     string // Cluster.Node(), or "local"
	selfJSON []byte // self as a JSON string, for the answers built by hand
	max      int
	log      zerolog.Logger
	client   *http.Client
	start    time.Time // for the log samplers' clock

	guard    atomic.Pointer[apiGuard]
	signer   *ForwardSigner   // nil: single node
	verifier *forwardVerifier // nil: single node

	clusterLog, forwardLog, errLog, authLog logSampler

	pushed, stored, broadcasts, delivered          atomic.Uint64
	forwarded, forwardErrors, forwardsReceived     atomic.Uint64
	rateLimited, tooLarge, notFound, clusterErrors atomic.Uint64
	recovering, authRefused, forwardsRefused       atomic.Uint64

	topics      *Topics
	topicPushes atomic.Uint64

	// dialLimit is the default forward client's dialer Control (LimitDials).
	dialLimit atomic.Pointer[func(string, string, syscall.RawConn) error]
}

// NewAPI returns the push API for cfg. It starts no goroutine: run SweepLoop
// for the rate limiter. It panics if cfg.Registry is nil.
func NewAPI(cfg APIConfig) *API {
	if cfg.Registry == nil {
		panic("push: NewAPI needs a Registry")
	}
	a := &API{
		reg: cfg.Registry, hist: cfg.History, limiter: cfg.Limiter, cluster: cfg.Cluster, self: localNode,
		max: cfg.MaxMessage, log: cfg.Log, client: cfg.Client, start: time.Now(), topics: cfg.Topics,
	}
	if a.cluster != nil {
		a.self = a.cluster.Node()
		a.signer = NewForwardSigner(cfg.ClusterSecret, a.self)
		a.verifier = newForwardVerifier(cfg.ClusterSecret, time.Now)
	}
	a.SetAuth(cfg.Auth)
	a.selfJSON, _ = json.Marshal(a.self) // a string always marshals
	if a.max <= 0 {
		a.max = defaultMaxMessage
	}
	if a.client == nil {
		a.client = defaultForwardClient(a.dialControl)
	}
	return a
}

// Stats returns a snapshot of the counters. Any goroutine.
func (a *API) Stats() APIStats {
	return APIStats{
		Pushed: a.pushed.Load(), Stored: a.stored.Load(), Broadcasts: a.broadcasts.Load(), Delivered: a.delivered.Load(),
		Forwarded: a.forwarded.Load(), ForwardErrors: a.forwardErrors.Load(), ForwardsReceived: a.forwardsReceived.Load(),
		RateLimited: a.rateLimited.Load(), TooLarge: a.tooLarge.Load(), NotFound: a.notFound.Load(),
		ClusterErrors: a.clusterErrors.Load(), Recovering: a.recovering.Load(),
		AuthRefused: a.authRefused.Load(), ForwardsRefused: a.forwardsRefused.Load(),
		TopicPushes: a.topicPushes.Load(),
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

// ServeFastHTTP serves the paths under /push/ (see the routes above); any
// other path is a 404. Any goroutine.
//
// Serve it with a fasthttp.Server that has StreamRequestBody and
// DisablePreParseMultipartForm set: the API then sees a request before its
// body is read and applies MaxMessage itself, with its JSON 413 and the
// TooLarge counter, whatever the framing (Content-Length or chunked), and a
// multipart body stays a message instead of becoming a form. A server that
// buffers bodies works too, but refuses a body over its own
// MaxRequestBodySize with fasthttp's plain 413 before the API sees it.
//
// Nothing of ctx is kept after the call: fasthttp reuses the request's
// buffers. The client id is looked at in place (Registry.Push and
// ValidClientID do not keep it) and the message is copied into a slice of
// its own, which the connections may keep until written (Conn).
func (a *API) ServeFastHTTP(ctx *fasthttp.RequestCtx) {
	a.route(ctx)
	finishBody(ctx)
}

func (a *API) route(ctx *fasthttp.RequestCtx) {
	path := ctx.Path() // decoded, "." and ".." resolved, as net/http's URL.Path
	if !bytes.HasPrefix(path, []byte(apiPrefix)) {
		a.failAnswer(ctx, fasthttp.StatusNotFound, errorAnswer{Error: "not found: the push api serves /push/{client_id} and /push/broadcast"})
		return
	}
	claim, ok := a.admit(ctx)
	if !ok {
		return
	}
	id := path[len(apiPrefix):]
	if bytes.HasPrefix(id, []byte(topicSegment)) {
		a.routeTopic(ctx, id[len(topicSegment):], claim)
		return
	}
	if string(id) == broadcastID { // the conversion is only compared: no copy
		if !ctx.IsPost() {
			a.notAllowed(ctx, "POST")
			return
		}
		a.serveBroadcast(ctx, claim)
		return
	}
	switch {
	case ctx.IsPost():
		a.servePush(ctx, id, claim)
	case ctx.IsGet():
		if claim != nil && !a.verifyForward(ctx, claim, nil) {
			return
		}
		a.serveStatus(ctx, id)
	default:
		a.notAllowed(ctx, "GET, POST")
	}
}

// errorAnswer is the answer of most refusals; the other answers, which
// carry the cluster's view, are with the cluster code (api_forward.go).
type errorAnswer struct {
	Error string `json:"error"`
}

// Bodies of the hot answers, built without encoding/json; they are exactly
// what json.Marshal makes of the answer types, plus the newline writeJSON adds.
var notConnectedBody = []byte(`{"reached":0,"error":"client not connected"}` + "\n")

const (
	msgNotConnected = "client not connected"
	msgInvalidID    = "invalid client id: want 1 to 256 of a-z A-Z 0-9 -._~:@+="
)

// servePush serves POST /push/{id}. idb is the id in the request's buffer.
// Single node (and a forwarded request in a cluster), it allocates only the
// message's own copy (and, for an id the rate limiter has not seen, its key):
// the answers are appended, not marshalled.
func (a *API) servePush(ctx *fasthttp.RequestCtx, idb []byte, claim *forwardClaim) {
	id := b2s(idb) // only for calls that do not keep it: see ServeFastHTTP
	if !ValidClientID(id) {
		a.failAnswer(ctx, fasthttp.StatusBadRequest, errorAnswer{Error: msgInvalidID})
		return
	}
	forwarded := claim != nil
	body, binary, ok := a.readMessage(ctx)
	if !ok || (forwarded && !a.verifyForward(ctx, claim, body)) {
		return
	}
	// The rate limit applies once, at the node the API client called: a
	// forwarded request was limited there already and is not limited again.
	if a.limiter != nil && !forwarded {
		// The limiter copies a new id before keeping it as a map key.
		if ok, wait := a.limiter.Allow(id); !ok {
			secs := max(1, int64((wait+time.Second-1)/time.Second))
			a.rateLimited.Add(1)
			ctx.Response.Header.Set("Retry-After", strconv.FormatInt(secs, 10))
			a.failAnswer(ctx, fasthttp.StatusTooManyRequests, errorAnswer{Error: fmt.Sprintf("rate limited: client id over its message rate, retry in %ds", secs)})
			return
		}
	}

	d := a.deliver(ctx, id, body, binary, forwarded)
	n := d.Reached
	a.delivered.Add(uint64(n))
	if a.cluster == nil || forwarded {
		// Nothing to forward: the answer is this node's alone.
		switch {
		case n > 0:
			if !forwarded {
				a.pushed.Add(1)
			}
			a.writePushed(ctx, n, d.ID)
		case d.Stored:
			if !forwarded {
				a.stored.Add(1)
			}
			writeStored(ctx, d.ID)
		case d.Full:
			a.historyFull(ctx)
		default:
			if !forwarded {
				a.notFound.Add(1)
			}
			a.fail(ctx, fasthttp.StatusNotFound, msgNotConnected, notConnectedBody)
		}
		return
	}

	a.pushCluster(ctx, string(idb), body, binary, d) // from here on, the id may be kept
}

// writePushed answers 200 {"reached":n,"nodes":[self],"id":msgID} (no id: 0).
func (a *API) writePushed(ctx *fasthttp.RequestCtx, n int, msgID uint64) {
	var buf [96]byte // on the stack unless the node's name is long
	b := append(buf[:0], `{"reached":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `,"nodes":[`...)
	b = append(b, a.selfJSON...)
	b = append(b, ']')
	if msgID != 0 {
		b = append(b, `,"id":`...)
		b = strconv.AppendUint(b, msgID, 10)
	}
	b = append(b, "}\n"...)
	writeBody(ctx, fasthttp.StatusOK, b)
}

func (a *API) serveStatus(ctx *fasthttp.RequestCtx, idb []byte) {
	id := string(idb) // kept in the answer
	if !ValidClientID(id) {
		a.failAnswer(ctx, fasthttp.StatusBadRequest, errorAnswer{Error: msgInvalidID})
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
		if !a.statusCluster(ctx, &ans) {
			return
		}
	}
	ans.Connected = local > 0 || len(ans.Nodes) > 0
	writeJSON(ctx, fasthttp.StatusOK, ans)
}

func (a *API) serveBroadcast(ctx *fasthttp.RequestCtx, claim *forwardClaim) {
	prefix := string(ctx.QueryArgs().Peek("prefix")) // decoded, the first one if several
	if prefix != "" && !ValidClientID(prefix) {
		a.failAnswer(ctx, fasthttp.StatusBadRequest, errorAnswer{Error: "invalid prefix: want up to 256 of a-z A-Z 0-9 -._~:@+="})
		return
	}
	forwarded := claim != nil
	body, binary, ok := a.readMessage(ctx)
	if !ok || (forwarded && !a.verifyForward(ctx, claim, body)) {
		return
	}

	var n int
	if a.hist != nil {
		n = a.hist.Broadcast(prefix, body, binary)
	} else {
		n = a.reg.Broadcast(prefix, body, binary)
	}
	a.delivered.Add(uint64(n))
	ans := broadcastAnswer{Reached: n, Nodes: map[string]int{a.self: n}}
	var clusterErr error
	if a.cluster != nil && !forwarded {
		clusterErr = a.broadcastCluster(ctx, prefix, body, &ans)
	}
	if !forwarded {
		a.broadcasts.Add(1)
	}

	a.answerFanout(ctx, &ans, ans.Reached, len(ans.Failed), clusterErr)
}

// errTooLarge is readMessage's "the body went over MaxMessage".
var errTooLarge = errors.New("message too large")

// readMessage reads and checks the message body. When it returns ok false,
// it answered already. The body is a fresh slice per request: connections may
// keep it until it was written, so it is never reused, and fasthttp's
// buffers, which it is read from, are reused by the next request.
func (a *API) readMessage(ctx *fasthttp.RequestCtx) (body []byte, binary, ok bool) {
	cl := ctx.Request.Header.ContentLength() // -1: chunked
	if cl > a.max {
		// Refused unread, as net/http did: the answer closes the connection.
		a.tooLarge.Add(1)
		a.failAnswer(ctx, fasthttp.StatusRequestEntityTooLarge, errorAnswer{Error: fmt.Sprintf("message too large: %d bytes, the limit is %d", cl, a.max)})
		closeAfter(ctx)
		return nil, false, false
	}
	var err error
	switch stream := ctx.RequestBodyStream(); {
	case stream == nil: // no body, or a server that buffers bodies read it already
		b := ctx.PostBody()
		if len(b) > a.max {
			err = errTooLarge
			break
		}
		body = append(make([]byte, 0, len(b)), b...)
	case cl >= 0:
		body = make([]byte, cl)
		_, err = io.ReadFull(stream, body)
	default:
		body, err = io.ReadAll(io.LimitReader(stream, int64(a.max)+1))
		if err == nil && len(body) > a.max {
			err = errTooLarge
		}
	}
	switch {
	case err == nil:
		// Read to its end: nothing is left for finishBody to drain.
		_ = ctx.Request.CloseBodyStream()
	case errors.Is(err, errTooLarge):
		a.tooLarge.Add(1)
		a.failAnswer(ctx, fasthttp.StatusRequestEntityTooLarge, errorAnswer{Error: fmt.Sprintf("message too large: over the limit of %d bytes", a.max)})
		closeAfter(ctx)
		return nil, false, false
	default:
		a.failAnswer(ctx, fasthttp.StatusBadRequest, errorAnswer{Error: "reading message: " + err.Error()})
		closeAfter(ctx) // the framing is lost: no next request on it
		return nil, false, false
	}
	binary = isBinary(ctx.Request.Header.ContentType())
	if !binary && !utf8.Valid(body) {
		a.failAnswer(ctx, fasthttp.StatusBadRequest, errorAnswer{Error: "text message is not valid utf-8: send binary data with Content-Type: application/octet-stream"})
		return nil, false, false
	}
	return body, binary, true
}

// maxDrain is how much of a body the API reads and throws away to keep the
// connection: net/http's bound for the same (an unread body left after the
// handler would otherwise be parsed as the next request).
const maxDrain = 256 << 10

// lingerTimeout is how long closeAfter keeps a connection half open after
// its last answer: net/http's delay for the same.
const lingerTimeout = 500 * time.Millisecond

// finishBody makes sure nothing of the request's body is left unread on a
// connection that stays open: after an answer given without reading it (400,
// 405, GET with a body), the rest is read and dropped, up to maxDrain, and
// past that the connection closes after the answer.
func finishBody(ctx *fasthttp.RequestCtx) {
	if ctx.RequestBodyStream() == nil || ctx.Response.ConnectionClose() {
		return // read to its end, or closeAfter took care of it
	}
	if !discardBody(ctx) {
		closeAfter(ctx)
	}
}

// closeAfter makes the answer, complete by now, the connection's last, for a
// request whose body may be left unread (413, a broken body). fasthttp would
// close the socket right after writing the answer, and closing a socket with
// unread data resets the connection: a client still sending its body gets
// the reset, and typically not the answer. So, as net/http does, the answer
// is written, the sending side shut, and the socket closed only after the
// client stopped sending or lingerTimeout passed, on a goroutine of its own
// (a hijacked connection).
func closeAfter(ctx *fasthttp.RequestCtx) {
	ctx.SetConnectionClose()
	if ctx.RequestBodyStream() == nil {
		return // the body was read (by a server that buffers bodies)
	}
	answer := []byte(ctx.Response.String()) // headers as the server would write them
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) { answerAndLinger(c, answer) })
}

// answerAndLinger writes answer on c, shuts c's sending side and reads what the
// client still sends, until it stops or lingerTimeout passes. fasthttp closes
// c after it returns.
func answerAndLinger(c net.Conn, answer []byte) {
	_ = c.SetDeadline(time.Now().Add(lingerTimeout))
	if _, err := c.Write(answer); err != nil {
		return
	}
	raw := c // fasthttp's hijacked conn hides the TCP conn behind UnsafeConn
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn()
	}
	if cw, ok := raw.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, c)
}

// discardBody reads and drops up to maxDrain bytes of the body and reports
// whether that reached its end.
func discardBody(ctx *fasthttp.RequestCtx) bool {
	stream := ctx.RequestBodyStream()
	if stream == nil {
		return true
	}
	if _, err := io.CopyN(io.Discard, stream, maxDrain+1); err != io.EOF {
		return false // more than maxDrain left, or the body could not be read
	}
	_ = ctx.Request.CloseBodyStream()
	return true
}

// isBinary reports whether a Content-Type asks for a binary message: media
// type application/octet-stream, any case, parameters ignored (a bad
// parameter too, as mime.ParseMediaType reports it); unparsable is text.
func isBinary(ct []byte) bool {
	if len(ct) == 0 {
		return false
	}
	if bytes.IndexByte(ct, ';') < 0 {
		// What ParseMediaType answers for a bare type, without its copies.
		return bytes.EqualFold(bytes.TrimSpace(ct), []byte("application/octet-stream"))
	}
	mt, _, err := mime.ParseMediaType(string(ct))
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return false
	}
	return mt == "application/octet-stream"
}
