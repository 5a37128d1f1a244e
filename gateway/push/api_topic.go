package push

// The topic routes of the push API:
//
//	POST /push/topic/{name}   deliver the body to every client id subscribed to the topic, cluster-wide
//	GET  /push/topic/{name}   where the topic has subscribers
//
// Answers:
//
//	200 {"reached": N, "nodes": M}   N connections took the message, on M nodes (this one included)
//	200 {"topic": t, "local": n, "nodes": [...]}   GET: n client ids subscribed here; the nodes with subscribers
//	400 bad topic name, text body not UTF-8; 404 topics not served; 405; 413 as POST /push/{id}
//	502 nothing was reached and forwarding to at least one node failed
//	503 nothing was reached and the cluster registry could not be asked (with Retry-After)
//
// A topic that nobody subscribed to is not an error: 200 with reached 0, as a
// broadcast that matched nobody. Topic pushes are not rate limited (like
// broadcasts, they come from the operator's backend, not per device).

import (
	"context"

	"github.com/valyala/fasthttp"
)

// topicSegment follows /push/ in the topic routes. Client ids cannot contain
// "/", so no client id is shadowed by them.
const topicSegment = "topic/"

// topicAnswer is the answer to POST /push/topic/{name}.
type topicAnswer struct {
	Reached int               `json:"reached"`
	Nodes   int               `json:"nodes"`
	Failed  map[string]string `json:"failed,omitempty"`
	Warning string            `json:"warning,omitempty"`
	Error   string            `json:"error,omitempty"`
}

func (t *topicAnswer) setError(warning, err string) { t.Warning, t.Error = warning, err }

// topicStatusAnswer is the answer to GET /push/topic/{name}.
type topicStatusAnswer struct {
	Topic   string   `json:"topic"`
	Local   int      `json:"local"`
	Nodes   []string `json:"nodes"`
	Warning string   `json:"warning,omitempty"`
}

// routeTopic serves /push/topic/{name}; name is in the request's buffer;
// claim is a forward's (nil: an API client's request).
func (a *API) routeTopic(ctx *fasthttp.RequestCtx, name []byte, claim *forwardClaim) {
	switch {
	case a.topics == nil:
		a.failAnswer(ctx, fasthttp.StatusNotFound, errorAnswer{Error: "topics are not served by this api"})
	case !ValidTopic(b2s(name)):
		a.failAnswer(ctx, fasthttp.StatusBadRequest, errorAnswer{Error: ErrTopicName.Error()})
	case ctx.IsPost():
		a.serveTopic(ctx, string(name), claim)
	case ctx.IsGet():
		if claim != nil && !a.verifyForward(ctx, claim, nil) {
			return
		}
		a.serveTopicStatus(ctx, string(name))
	default:
		a.notAllowed(ctx, "GET, POST")
	}
}

// serveTopic serves POST /push/topic/{name}: this node's subscribers first,
// then (a request from an API client, in a cluster) a forward to every other
// node the topic registry lists.
func (a *API) serveTopic(ctx *fasthttp.RequestCtx, topic string, claim *forwardClaim) {
	forwarded := claim != nil
	body, binary, ok := a.readMessage(ctx)
	if !ok || (forwarded && !a.verifyForward(ctx, claim, body)) {
		return
	}
	ans := topicAnswer{Reached: a.publishLocal(topic, body, binary)}
	if ans.Reached > 0 {
		ans.Nodes = 1
	}
	var clusterErr error
	if a.cluster != nil && !forwarded {
		clusterErr = a.topicCluster(ctx, topic, body, &ans)
	}
	if !forwarded {
		a.topicPushes.Add(1)
	}
	a.answerFanout(ctx, &ans, ans.Reached, len(ans.Failed), clusterErr)
}

// publishLocal delivers msg to every client id subscribed to topic on this
// node, each through deliverTopic (the history, as POST /push/{id}), and returns
// how many connections took it.
func (a *API) publishLocal(topic string, msg []byte, binary bool) int {
	var buf [16]string
	n := 0
	for _, id := range a.topics.IDs(topic, buf[:0]) {
		n += a.deliverTopic(id, msg, binary)
	}
	return n
}

// topicCluster forwards a topic push to the other nodes with subscribers and
// adds what they reached to ans. The error is the registry's, when it could
// not be asked (then only this node was reached).
func (a *API) topicCluster(ctx *fasthttp.RequestCtx, topic string, body []byte, ans *topicAnswer) error {
	treg, ok := a.cluster.(TopicRegistry)
	if !ok {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.Background(), topicCallTimeout)
	nodes, err := treg.TopicNodes(cctx, topic, nil)
	cancel()
	if err != nil {
		err = a.clusterFailed(ctx, "topic nodes", err)
		ans.Warning = "delivered on this node only: " + err.Error()
		return err
	}
	for _, res := range a.forward(ctx, a.peers(nodes), apiPrefix+topicSegment+topic, body, 0) {
		if res.err != nil {
			ans.Failed = setErr(ans.Failed, res.node, res.err)
			continue
		}
		if res.reached > 0 {
			ans.Reached += res.reached
			ans.Nodes++
		}
	}
	return nil
}

// serveTopicStatus serves GET /push/topic/{name}.
func (a *API) serveTopicStatus(ctx *fasthttp.RequestCtx, topic string) {
	ans := topicStatusAnswer{Topic: topic, Local: len(a.topics.IDs(topic, nil)), Nodes: []string{}}
	treg, ok := a.cluster.(TopicRegistry)
	if !ok {
		if ans.Local > 0 {
			ans.Nodes = append(ans.Nodes, a.self)
		}
		writeJSON(ctx, fasthttp.StatusOK, ans)
		return
	}
	cctx, cancel := context.WithTimeout(context.Background(), topicCallTimeout)
	nodes, err := treg.TopicNodes(cctx, topic, ans.Nodes)
	cancel()
	if err != nil {
		err = a.clusterFailed(ctx, "topic nodes", err)
		ctx.Response.Header.Set("Retry-After", "1")
		a.failAnswer(ctx, fasthttp.StatusServiceUnavailable, errorAnswer{Error: err.Error()})
		return
	}
	ans.Nodes = nodes
	writeJSON(ctx, fasthttp.StatusOK, ans)
}
