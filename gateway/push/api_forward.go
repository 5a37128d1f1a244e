package push

// The cluster side of the push API: asking the cluster registry and
// forwarding requests to the other nodes. Nothing here is on the single-node
// path: it may allocate as it likes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// pushAnswer is the answer to POST /push/{id}.
type pushAnswer struct {
	Reached int               `json:"reached"`
	Stored  bool              `json:"stored,omitempty"`
	ID      uint64            `json:"id,omitempty"`
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

// forwardResult is the outcome of forwarding one request to one node.
type forwardResult struct {
	node    string
	reached int
	stored  bool // answered 202: the id was seen there and the message kept
	err     error
}

// statusCluster fills in ans.Nodes for GET /push/{id} from the cluster
// registry. When that fails and nothing is local, it answers 503 and returns
// false.
func (a *API) statusCluster(ctx *fasthttp.RequestCtx, ans *statusAnswer) bool {
	// The nodes are the cluster registry's view, which may lag behind this
	// node's own connections for a moment; connected also counts the local
	// ones.
	cctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	nodes, err := a.cluster.Lookup(cctx, ans.ClientID, ans.Nodes)
	cancel()
	if err != nil {
		err = a.clusterFailed(ctx, "lookup", err)
		if ans.Local == 0 {
			ctx.Response.Header.Set("Retry-After", "1")
			a.failAnswer(ctx, fasthttp.StatusServiceUnavailable, statusAnswer{ClientID: ans.ClientID, Nodes: []string{}, Error: err.Error()})
			return false
		}
		nodes = append(nodes[:0], a.self)
		ans.Warning = "other nodes unknown: " + err.Error()
	}
	ans.Nodes = nodes
	return true
}

// pushCluster finishes POST /push/{id} in a cluster, for a request from an
// API client: n connections here took the message already; the other nodes
// that hold id get it forwarded, and the answer sums them up.
//
// With a history in Redis, the message is written there before the lookup:
// a device that reconnects elsewhere registers before it reads Redis, so
// either this lookup finds it (and forwards the message, which it holds
// until its replay is out) or its read finds the message.
func (a *API) pushCluster(ctx *fasthttp.RequestCtx, id string, body []byte, binary bool, d Delivery) {
	n := d.Reached
	ans := pushAnswer{Reached: n, ID: d.ID}
	if n > 0 {
		ans.Nodes = append(ans.Nodes, a.self)
	}
	stored := d.Stored
	var inRedis bool
	var entry Entry
	if a.hist != nil && a.hist.Clustered() {
		entry = Entry{ID: d.ID, At: a.hist.nowMS(), Msg: body, Binary: binary}
		ok, err := a.hist.Store().Append(id, entry, n > 0, true)
		inRedis = ok
		if err != nil {
			ans.Warning = "kept on this node only: " + err.Error()
		}
	}
	var clusterErr error
	cctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	nodes, err := a.cluster.Lookup(cctx, id, nil)
	cancel()
	if err != nil {
		clusterErr = a.clusterFailed(ctx, "lookup", err)
		ans.Warning = "delivered on this node only: " + clusterErr.Error()
	} else {
		path := apiPrefix + id // a valid id needs no escaping in a path
		for _, res := range a.forward(ctx, a.peers(nodes), path, body, d.ID) {
			if res.err != nil {
				ans.Failed = setErr(ans.Failed, res.node, res.err)
				continue
			}
			stored = stored || res.stored
			if res.reached > 0 {
				ans.Reached += res.reached
				ans.Nodes = append(ans.Nodes, res.node)
			}
		}
	}
	if ans.Reached > n && a.hist != nil && a.hist.Clustered() && !inRedis && ans.Warning == "" {
		// Redis did not know the id (seen too long ago), but a device on
		// another node took the message: keep it for that device's next
		// reconnect too.
		inRedis, _ = a.hist.Store().Append(id, entry, true, true)
	}
	stored = stored || inRedis

	switch {
	case ans.Reached > 0:
		a.pushed.Add(1)
		writeJSON(ctx, fasthttp.StatusOK, ans)
	case clusterErr != nil:
		ans.Warning, ans.Error = "", clusterErr.Error()
		ctx.Response.Header.Set("Retry-After", "1")
		a.failAnswer(ctx, fasthttp.StatusServiceUnavailable, ans)
	case len(ans.Failed) > 0:
		ans.Error = fmt.Sprintf("client not reached: forwarding failed to %d node(s), it may be connected there", len(ans.Failed))
		a.failAnswer(ctx, fasthttp.StatusBadGateway, ans)
	case stored:
		a.stored.Add(1)
		ans.Stored = true
		writeJSON(ctx, fasthttp.StatusAccepted, ans)
	case d.Full:
		a.historyFull(ctx)
	default:
		a.notFound.Add(1)
		ans.Error, ans.ID = msgNotConnected, 0
		a.failAnswer(ctx, fasthttp.StatusNotFound, ans)
	}
}

// broadcastCluster forwards a broadcast to the other nodes and adds their
// counts to ans. The error is the cluster registry's, when it could not be
// asked (then only this node was reached).
func (a *API) broadcastCluster(ctx *fasthttp.RequestCtx, prefix string, body []byte, ans *broadcastAnswer) error {
	cctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	nodes, err := a.cluster.Nodes(cctx, nil)
	cancel()
	if err != nil {
		err = a.clusterFailed(ctx, "nodes", err)
		ans.Warning = "delivered on this node only: " + err.Error()
		return err
	}
	path := apiPrefix + broadcastID
	if prefix != "" {
		path += "?prefix=" + prefix // a valid prefix needs no escaping in a query
	}
	for _, res := range a.forward(ctx, a.peers(nodes), path, body, 0) {
		if res.err != nil {
			ans.Failed = setErr(ans.Failed, res.node, res.err)
			continue
		}
		ans.Nodes[res.node] = res.reached
		ans.Reached += res.reached
	}
	return nil
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
func (a *API) clusterFailed(ctx *fasthttp.RequestCtx, op string, err error) error {
	if errors.Is(err, ErrRecovering) {
		// Not a failure: the registry answered, and said it cannot tell yet.
		a.recovering.Add(1)
		return ErrRecovering
	}
	a.clusterErrors.Add(1)
	if ok, suppressed := a.clusterLog.allow(a.now()); ok {
		a.log.Warn().Err(err).Str("op", op).Bytes("path", ctx.Path()).Int64("suppressed", suppressed).
			Msg("push api: cluster registry unavailable, delivering on this node only")
	}
	return fmt.Errorf("cluster registry unavailable: %w", err)
}

// forward sends body to every node as POST http://{node}{path}, in parallel,
// with ctx's Content-Type, ForwardedHeader set to this node and signed
// (ForwardSigner), and returns one
// result per node in nodes' order. A 200 answer counts its "reached"; a 404
// (the id left that node; its registry entry is stale) counts 0 and is not an
// error; anything else is an error, counted and logged (sampled).
//
// The forwards do not depend on the API client: the message was delivered
// here already, and abandoning the other nodes because the API client hung up
// would deliver it to some devices of an id and not to others. They share one
// deadline of forwardTimeout instead. One goroutine per node: clusters are
// tens of nodes, not thousands. Nothing of rctx is used after forward
// returns, nor by the goroutines: they get copies.
func (a *API) forward(rctx *fasthttp.RequestCtx, nodes []string, path string, body []byte, msgID uint64) []forwardResult {
	if len(nodes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	ct := string(rctx.Request.Header.ContentType())
	res := make([]forwardResult, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		res[i].node = node
		wg.Go(func() {
			res[i].reached, res[i].stored, res[i].err = a.forwardOne(ctx, node, path, ct, body, msgID)
		})
	}
	wg.Wait()
	a.forwarded.Add(uint64(len(nodes)))
	for _, x := range res {
		if x.err == nil {
			continue
		}
		a.forwardErrors.Add(1)
		if ok, suppressed := a.forwardLog.allow(a.now()); ok {
			a.log.Warn().Err(x.err).Str("node", x.node).Bytes("path", rctx.Path()).Int64("suppressed", suppressed).
				Msg("push api: forwarding to another node failed")
		}
	}
	return res
}

// forwardAnswer is what forwardOne reads of another node's answer.
type forwardAnswer struct {
	Reached int    `json:"reached"`
	Error   string `json:"error"`
}

// maxForwardAnswer bounds how much of another node's answer is read.
const maxForwardAnswer = 64 << 10

func (a *API) forwardOne(ctx context.Context, node, path, ct string, body []byte, msgID uint64) (reached int, stored bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+node+path, bytes.NewReader(body))
	if err != nil {
		return 0, false, fmt.Errorf("forward to %s: %w", node, err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for _, h := range a.signer.Sign(time.Now(), http.MethodPost, req.URL.RequestURI(), ct, body) {
		req.Header.Set(h[0], h[1])
	}
	if msgID != 0 {
		// Not covered by the signature (a forward's signature is over the
		// method, URI, content type and body): a forged id could only reorder
		// a message a signed forward delivers anyway.
		req.Header.Set(MessageIDHeader, strconv.FormatUint(msgID, 10))
	}
	req.Header.Set("User-Agent", "gozer-push-forward")
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("forward to %s: %w", node, err)
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxForwardAnswer))
		_ = resp.Body.Close()
	}()
	var ans forwardAnswer
	decodeErr := json.NewDecoder(io.LimitReader(resp.Body, maxForwardAnswer)).Decode(&ans)
	switch resp.StatusCode {
	case http.StatusOK:
		if decodeErr != nil {
			return 0, false, fmt.Errorf("forward to %s: reading the answer: %w", node, decodeErr)
		}
		return ans.Reached, false, nil
	case http.StatusAccepted: // the device left that node meanwhile; kept there
		return 0, true, nil
	case http.StatusNotFound:
		return 0, false, nil
	default:
		if ans.Error == "" {
			ans.Error = "no reason given"
		}
		return 0, false, fmt.Errorf("forward to %s: answered %d: %s", node, resp.StatusCode, ans.Error)
	}
}

// setErr records node's error in m, making m if needed.
func setErr(m map[string]string, node string, err error) map[string]string {
	if m == nil {
		m = make(map[string]string)
	}
	m[node] = err.Error()
	return m
}

// defaultForwardClient is the client for APIConfig.Client nil: bounded dial
// and overall timeouts, keep-alive connections to the other nodes, no proxy
// from the environment (the nodes talk to each other directly) and no
// redirects (a node that redirects is misconfigured).
func defaultForwardClient(control func(network, address string, c syscall.RawConn) error) *http.Client {
	return &http.Client{
		Timeout: forwardTimeout,
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second, Control: control}).DialContext,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: forwardTimeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// LimitDials gives the default forward client's dialer a Control (nil:
// none): the server's open-file ceiling of the admin side
// (loop.DialCeiling), which keeps half the loops' reserve free
// (gateway/admin, accept.go). Call it before the admin listener serves; any
// goroutine.
func (a *API) LimitDials(control func(network, address string, c syscall.RawConn) error) {
	a.dialLimit.Store(&control)
}

// dialControl is the default forward client's dialer Control: LimitDials's.
func (a *API) dialControl(network, address string, rc syscall.RawConn) error {
	if f := a.dialLimit.Load(); f != nil && *f != nil {
		return (*f)(network, address, rc)
	}
	return nil
}

// logSampler lets through at most one log line per logEvery and counts the
// ones it held back. Safe for any goroutine; the zero value is ready.
type logSampler struct {
	next       atomic.Int64 // clock reading from which the next line may go
	suppressed atomic.Int64
}

// allow reports whether a line may be logged at now (nanoseconds on the
// API's clock) and, if so, how many were suppressed since the last one.
func (s *logSampler) allow(now int64) (ok bool, suppressed int64) {
	next := s.next.Load()
	if now < next || !s.next.CompareAndSwap(next, now+int64(logEvery)) {
		s.suppressed.Add(1)
		return false, 0
	}
	return true, s.suppressed.Swap(0)
}

// fanoutAnswer is the answer of a fan-out to every node (a broadcast, a topic
// push): setError replaces its warning and sets its error.
type fanoutAnswer interface{ setError(warning, err string) }

func (b *broadcastAnswer) setError(warning, err string) { b.Warning, b.Error = warning, err }

// answerFanout answers a fan-out that reached reached connections, with failed
// nodes that could not be forwarded to and the cluster registry's error.
// Reaching nobody is a valid outcome, unless some nodes could not be asked:
// then, as for a push, 503 or 502 tells the caller that retrying may reach
// more.
func (a *API) answerFanout(ctx *fasthttp.RequestCtx, ans fanoutAnswer, reached, failed int, clusterErr error) {
	var status int
	var reason string
	switch {
	case reached > 0 || (clusterErr == nil && failed == 0):
		writeJSON(ctx, fasthttp.StatusOK, ans)
		return
	case clusterErr != nil:
		status, reason = fasthttp.StatusServiceUnavailable, clusterErr.Error()
		ans.setError("", reason)
		ctx.Response.Header.Set("Retry-After", "1")
	default:
		status, reason = fasthttp.StatusBadGateway, fmt.Sprintf("nobody reached: forwarding failed to %d node(s)", failed)
		ans.setError("", reason)
	}
	b, status := marshal(ans, status)
	a.fail(ctx, status, reason, b)
}
