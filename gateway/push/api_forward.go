package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// forwardResult is the outcome of forwarding one request to one node.
type forwardResult struct {
	node    string
	reached int
	err     error
}

// forward sends body to every node as POST http://{node}{path}, in parallel,
// with r's Content-Type and ForwardedHeader set to this node, and returns one
// result per node in nodes' order. A 200 answer counts its "reached"; a 404
// (the id left that node; its registry entry is stale) counts 0 and is not an
// error; anything else is an error, counted and logged (sampled).
//
// The forwards do not depend on r's context: the message was delivered here
// already, and abandoning the other nodes because the API client hung up
// would deliver it to some devices of an id and not to others. They share one
// deadline of forwardTimeout instead. One goroutine per node: clusters are
// tens of nodes, not thousands.
func (a *API) forward(r *http.Request, nodes []string, path string, body []byte) []forwardResult {
	if len(nodes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), forwardTimeout)
	defer cancel()
	ct := r.Header.Get("Content-Type")
	res := make([]forwardResult, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		res[i].node = node
		wg.Go(func() {
			res[i].reached, res[i].err = a.forwardOne(ctx, node, path, ct, body)
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
			a.log.Warn().Err(x.err).Str("node", x.node).Str("path", r.URL.Path).Int64("suppressed", suppressed).
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

func (a *API) forwardOne(ctx context.Context, node, path, ct string, body []byte) (reached int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+node+path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("forward to %s: %w", node, err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set(ForwardedHeader, a.self)
	req.Header.Set("User-Agent", "gozer-push-forward")
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("forward to %s: %w", node, err)
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
			return 0, fmt.Errorf("forward to %s: reading the answer: %w", node, decodeErr)
		}
		return ans.Reached, nil
	case http.StatusNotFound:
		return 0, nil
	default:
		if ans.Error == "" {
			ans.Error = "no reason given"
		}
		return 0, fmt.Errorf("forward to %s: answered %d: %s", node, resp.StatusCode, ans.Error)
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
func defaultForwardClient() *http.Client {
	return &http.Client{
		Timeout: forwardTimeout,
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: forwardTimeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
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
