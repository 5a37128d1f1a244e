package test

// Push topics (issue 17, item 5): devices subscribe at connect through their
// token's topics or the accept filter (ctx.push_accept(id, {topics = ...})), or
// at run time with a websocket control message when
// push.topics.client_subscribe is on; POST /push/topic/{name} reaches every
// subscribed device once, on every node of a cluster.
//
// "Not delivered" is shown without waiting for silence: after the topic push,
// the device is sent a direct push (POST /push/{id}); messages to one
// connection keep their order, so when the next message it reads is the
// direct one, the topic message did not come.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// pushTokenTopics is pushToken with `-topics` (comma-separated).
func (g *gozer) pushTokenTopics(t testing.TB, id, topics string) string {
	t.Helper()
	out, err := exec.Command(gozerBin, "push-token", "-config", g.ConfigPath, "-client", id, "-ttl", "1h", "-topics", topics).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("gozer push-token -client %s -topics %s: %v\n%s", id, topics, err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// topicAnswer is the answer of POST and GET /push/topic/{name}.
type topicAnswer struct {
	Reached int               `json:"reached"`
	Nodes   json.RawMessage   `json:"nodes"` // a count (POST) or a list (GET)
	Failed  map[string]string `json:"failed"`
	Error   string            `json:"error"`
	Local   int               `json:"local"`
}

// topicPush POSTs msg to topic at g and checks the status.
func (g *gozer) topicPush(t testing.TB, topic, msg string, status int) topicAnswer {
	t.Helper()
	resp, b := fetch(t, newClient(t, 10*time.Second), "POST", "http://"+g.AdminAddr+"/push/topic/"+topic, []byte(msg), nil)
	var a topicAnswer
	if err := json.Unmarshal(b, &a); err != nil || resp.StatusCode != status {
		t.Fatalf("POST /push/topic/%s: status %d %q, want %d with JSON", topic, resp.StatusCode, tail(string(b), 300), status)
	}
	return a
}

// topicNodes is GET /push/topic/{name}: subscribed ids here, and the nodes.
func (g *gozer) topicNodes(t testing.TB, topic string) (int, []string) {
	t.Helper()
	resp, b := fetch(t, newClient(t, 10*time.Second), "GET", "http://"+g.AdminAddr+"/push/topic/"+topic, nil, nil)
	var a topicAnswer
	var nodes []string
	if resp.StatusCode != 200 || json.Unmarshal(b, &a) != nil || json.Unmarshal(a.Nodes, &nodes) != nil {
		t.Fatalf("GET /push/topic/%s: status %d %q", topic, resp.StatusCode, tail(string(b), 300))
	}
	return a.Local, nodes
}

// expectReached checks a POST answer's reached and nodes (a count).
func (a topicAnswer) expect(t testing.TB, reached, nodes int) {
	t.Helper()
	if a.Reached != reached || string(a.Nodes) != fmt.Sprint(nodes) || len(a.Failed) > 0 {
		t.Fatalf("topic push answered %+v (nodes %s), want reached %d on %d node(s)", a, a.Nodes, reached, nodes)
	}
}

// notDelivered shows that d got nothing since its last message: a direct push
// to id must be the next message it reads.
func notDelivered(t testing.TB, g *gozer, d *wsDevice, id string) {
	t.Helper()
	marker := "direct to " + id + " " + fmt.Sprint(time.Now().UnixNano())
	g.push(t, id, marker, 200)
	d.expectText(t, marker)
}

// TestPushTopicsToken: topics in the push token (gozer push-token -topics,
// the shipped auth filter), for websocket and SSE devices; a topic push reaches its subscribers only, GET
// says who is subscribed, a bad topic name is 400, and a device that leaves
// takes its subscription with it: the topic disappears.
func TestPushTopicsToken(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, nil)
	news := dialWS(t, g, "news", g.pushTokenTopics(t, "dev-news", "news,scores:42"))
	scores := dialWS(t, g, "scores", g.pushTokenTopics(t, "dev-scores", "scores:42"))
	plain := dialWS(t, g, "plain", g.pushToken(t, "dev-plain", "1h"))
	sse := dialSSE(t, g, "sse", g.pushTokenTopics(t, "dev-sse", "scores:42"), "")

	g.topicPush(t, "news", "breaking", 200).expect(t, 1, 1)
	news.expectText(t, "breaking")
	g.topicPush(t, "scores:42", "2-1", 200).expect(t, 3, 1)
	news.expectText(t, "2-1")
	scores.expectText(t, "2-1")
	for {
		ev := sse.nextEvent(t, 5*time.Second)
		if ev.comment {
			continue
		}
		if ev.data != "2-1" {
			t.Fatalf("SSE device got %+v, want the event 2-1", ev)
		}
		break
	}
	notDelivered(t, g, scores, "dev-scores") // "breaking" never came
	notDelivered(t, g, plain, "dev-plain")
	if local, nodes := g.topicNodes(t, "scores:42"); local != 3 || !slices.Equal(nodes, []string{"local"}) {
		t.Errorf("GET /push/topic/scores:42: local %d nodes %v, want 3 on [local]", local, nodes)
	}
	g.topicPush(t, "nobody", "x", 200).expect(t, 0, 0)

	// A control message is an ordinary upstream message while
	// push.topics.client_subscribe is off: not answered, not applied.
	if err := plain.conn.WriteMessage(websocket.TextMessage, []byte(`{"subscribe":"news"}`)); err != nil {
		t.Fatal(err)
	}
	notDelivered(t, g, plain, "dev-plain")
	g.topicPush(t, "news", "still one", 200).expect(t, 1, 1)
	news.expectText(t, "still one")

	for _, bad := range []string{"bad%20name", "a/b", "", strings.Repeat("t", 129), "caf%C3%A9"} {
		resp, b := fetch(t, newClient(t, 10*time.Second), "POST", "http://"+g.AdminAddr+"/push/topic/"+bad, []byte("x"), nil)
		if resp.StatusCode != 400 || !strings.Contains(string(b), "invalid topic name") {
			t.Errorf("POST /push/topic/%s: status %d %q, want 400 invalid topic name", bad, resp.StatusCode, b)
		}
	}

	// On close the subscription lingers for the history's max_age (2m by
	// default; TestPushTopicsRecovery sees it go): the topic stays listed and a
	// push to it reaches nobody now (it is kept in dev-news's history).
	news.conn.Close()
	g.waitConnected(t, "dev-news", false, 5*time.Second)
	if local, _ := g.topicNodes(t, "news"); local != 1 {
		t.Errorf("GET /push/topic/news after its device left: local %d, want 1 (lingering)", local)
	}
	g.topicPush(t, "news", "after close", 200).expect(t, 0, 0)
	if n := g.pushCounter(t, "topics.topics"); n != 2 {
		t.Errorf("/admin/push topics.topics = %d, want 2 (news lingering, scores:42)", n)
	}
}

// TestPushTopicsRecovery: a device subscribed to a topic disconnects; the
// topic's messages meanwhile are kept in its client id's history and it
// recovers them when it comes back with its last event id, then gets live
// ones; once push.history.max_age passed, its lingering subscription goes
// and the topic with it.
func TestPushTopicsRecovery(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, map[string]string{"history": "{max_age: 3s}"})
	tok := g.pushTokenTopics(t, "dev-rec", "alerts")
	d := dialSSE(t, g, "first", tok, "")
	g.waitConnected(t, "dev-rec", true, 5*time.Second)
	g.topicPush(t, "alerts", "a1", 200).expect(t, 1, 1)
	last := d.expectEvents(t, "a1")
	d.resp.Body.Close()
	g.waitConnected(t, "dev-rec", false, 5*time.Second)

	g.topicPush(t, "alerts", "a2", 200).expect(t, 0, 0)
	g.topicPush(t, "alerts", "a3", 200).expect(t, 0, 0)
	d = dialSSE(t, g, "back", tok, last)
	d.expectEvents(t, "a2", "a3")
	g.topicPush(t, "alerts", "live", 200).expect(t, 1, 1)
	d.expectEvents(t, "live") // after the replay: nothing twice
	d.resp.Body.Close()
	g.waitConnected(t, "dev-rec", false, 5*time.Second)

	waitFor(t, 10*time.Second, "the lingering subscription to go after max_age 3s", func() bool {
		local, _ := g.topicNodes(t, "alerts")
		return local == 0
	})
	g.topicPush(t, "alerts", "gone", 200).expect(t, 0, 0)
}

// TestPushTopicsAcceptFilter: a Lua filter subscribes with
// ctx.push_accept(id, {topics = ...}); a bad name makes push_accept return
// false and the filter answer 400; more topics than push.topics.max_per_conn
// is 400 FAILURE_CLIENT_TOO_MANY_TOPICS, and a new topic over
// push.topics.max_per_node is 503 FAILURE_LOCAL_TOO_MANY_TOPICS.
func TestPushTopicsAcceptFilter(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "inbound", "05_accept.lua", luaFilter("accept", "inbound", 5, "ctx.push ~= nil", `
    local topics = {}
    for name in (ctx.req.arg("topics") or ""):gmatch("[^,]+") do topics[#topics + 1] = name end
    local ok, why = ctx.push_accept(ctx.req.arg("id"), { topics = topics })
    if not ok then ctx.respond(400, "refused: " .. why .. "\n") end`))
	cfg := oneOrigin(nil, closedPort(t))
	cfg.Filters = &filtersConfig{Dir: string(d), Budget: "1s"}
	cfg.Push = map[string]string{"topics": "{max_per_conn: 2, max_per_node: 3}"}
	g := startGozer(t, cfg)
	u := func(id, topics string) string {
		return "ws://" + g.ProxyAddr + "/push/ws?id=" + id + "&topics=" + url.QueryEscape(topics)
	}

	dev := readWS("lua", dialWSConn(t, u("lua-dev", "alerts,alerts,eu"), nil))
	g.topicPush(t, "alerts", "from lua", 200).expect(t, 1, 1)
	dev.expectText(t, "from lua")
	g.topicPush(t, "eu", "eu too", 200).expect(t, 1, 1)
	dev.expectText(t, "eu too")

	status, _, body := dialRefused(t, u("lua-bad", "ok,not ok"), nil)
	if status != 400 || !strings.Contains(body, "invalid topic name") {
		t.Errorf("bad topic name: status %d %q, want 400 from the filter", status, body)
	}
	status, hdr, body := dialRefused(t, u("lua-many", "a,b,c"), nil)
	if status != 400 || hdr.Get("X-Gozer-Status") != "FAILURE_CLIENT_TOO_MANY_TOPICS" {
		t.Errorf("3 topics over max_per_conn 2: status %d %s %q, want 400 FAILURE_CLIENT_TOO_MANY_TOPICS", status, hdr.Get("X-Gozer-Status"), body)
	}
	if a := g.pushStatus(t, "lua-many"); a.Connected {
		t.Errorf("GET /push/lua-many: %+v, want the refused device not connected", a)
	}
	if local, _ := g.topicNodes(t, "a"); local != 0 {
		t.Errorf("GET /push/topic/a: local %d, want 0 after the refusal", local)
	}
	// alerts and eu are two of max_per_node 3: x fits, y does not. The device is
	// refused, and takes x with it.
	status, hdr, body = dialRefused(t, u("lua-full", "x,y"), nil)
	if status != 503 || hdr.Get("X-Gozer-Status") != "FAILURE_LOCAL_TOO_MANY_TOPICS" || hdr.Get("Retry-After") == "" {
		t.Errorf("a 4th topic over max_per_node 3: status %d %s %q, want 503 FAILURE_LOCAL_TOO_MANY_TOPICS with Retry-After", status, hdr.Get("X-Gozer-Status"), body)
	}
	if local, _ := g.topicNodes(t, "x"); local != 0 || g.pushStatus(t, "lua-full").Connected {
		t.Errorf("topic x has %d subscribers after the refusal, want 0 and lua-full not connected", local)
	}
	if n := g.pushCounter(t, "topics.node_limit_refused_total"); n != 1 {
		t.Errorf("/admin/push topics.node_limit_refused_total = %d, want 1", n)
	}
}

// TestPushTopicsControl: with push.topics.client_subscribe, a websocket device
// subscribes and unsubscribes with control messages, each answered; a bad
// name, a topic outside client_prefixes, a topic over max_per_conn and a new
// topic over max_per_node are refused with an error answer and counted;
// unsubscribing stops delivery.
func TestPushTopicsControl(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, map[string]string{"topics": "{client_subscribe: true, max_per_conn: 2, max_per_node: 3, client_prefixes: [a, b, c, d]}"})
	one := dialWS(t, g, "one", g.pushToken(t, "ctl-1", "1h"))
	two := dialWS(t, g, "two", g.pushToken(t, "ctl-2", "1h"))
	send := func(d *wsDevice, msg, want string) {
		t.Helper()
		if err := d.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		m := d.next(t, 5*time.Second)
		if !strings.Contains(string(m.data), want) {
			t.Fatalf("device %s sent %s, got %q, want an answer with %q", d.name, msg, m.data, want)
		}
	}
	send(one, `{"subscribe":"a"}`, `{"subscribed":"a"}`)
	send(one, ` { "subscribe" : "b" } `, `{"subscribed":"b"}`)
	send(one, `{"subscribe":"a"}`, `{"subscribed":"a"}`) // again: no second subscription
	send(one, `{"subscribe":"c"}`, `too many topics for this connection`)
	send(one, `{"subscribe":"bad name"}`, `invalid topic name`)
	send(one, `{"subscribe":7}`, `malformed control message`)
	send(one, `{"subscribe":"secret"}`, `topic not open to subscription by devices`)
	send(two, `{"subscribe":"c"}`, `{"subscribed":"c"}`)
	send(two, `{"subscribe":"d"}`, `too many topics on this node`)

	g.topicPush(t, "a", "to a", 200).expect(t, 1, 1)
	one.expectText(t, "to a")
	send(one, `{"unsubscribe":"a"}`, `{"unsubscribed":"a"}`)
	g.topicPush(t, "a", "after unsubscribe", 200).expect(t, 0, 0)
	notDelivered(t, g, one, "ctl-1")
	send(two, `{"subscribe":"d"}`, `{"subscribed":"d"}`) // a is gone: room on the node again

	m := g.adminPush(t)
	if jsonPath(m, "topics.control_refused_total") != 5.0 || jsonPath(m, "topics.node_limit_refused_total") != 1.0 ||
		jsonPath(m, "topics.topics") != 3.0 {
		t.Errorf("/admin/push topics %v, want 5 control messages refused, 1 by the node limit, 3 topics (b, c, d)", m["topics"])
	}
}

// TestPushTopicsClientShare: one client id holds at most its share of the
// node's topics (push.max_per_client × push.topics.max_per_conn: 8 here), the
// ones it left lingering included. A device that subscribes to fresh topics,
// leaves them lingering and comes back cannot fill push.topics.max_per_node
// for everyone (it did: 100,000 topics in 2 s from one id, and other devices
// got 503 at connect).
func TestPushTopicsClientShare(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, map[string]string{"max_per_client": "2", "topics": "{client_subscribe: true, max_per_conn: 4}"})
	tok := g.pushToken(t, "hog", "1h")
	send := func(d *wsDevice, msg, want string) {
		t.Helper()
		if err := d.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if m := d.next(t, 5*time.Second); !strings.Contains(string(m.data), want) {
			t.Fatalf("device %s sent %s, got %q, want an answer with %q", d.name, msg, m.data, want)
		}
	}
	for round := range 3 {
		d := dialWS(t, g, "hog", tok)
		for i := range 4 {
			want := "subscribed"
			if round == 2 { // 8 held already, live or lingering
				want = "too many topics for this client id"
			}
			send(d, fmt.Sprintf(`{"subscribe":"hog-%d-%d"}`, round, i), want)
		}
		_ = d.conn.Close()
		g.waitConnected(t, "hog", false, 10*time.Second)
	}
	// At connect, a token's topic over the share: 400.
	resp, _ := rawExchange(t, g.ProxyAddr, wsRequest("GET", "/push/ws?token="+url.QueryEscape(g.pushTokenTopics(t, "hog", "one-more")), g.ProxyAddr, ""))
	if resp.StatusCode != 400 || resp.Header.Get("X-Gozer-Status") != "FAILURE_CLIENT_TOO_MANY_TOPICS" {
		t.Fatalf("a token topic over the id's share: %d %s, want 400 FAILURE_CLIENT_TOO_MANY_TOPICS", resp.StatusCode, resp.Header.Get("X-Gozer-Status"))
	}
	// Another id subscribes as usual.
	send(dialWS(t, g, "other", g.pushToken(t, "other", "1h")), `{"subscribe":"scores"}`, `{"subscribed":"scores"}`)
	m := g.adminPush(t)
	if jsonPath(m, "topics.client_limit_refused_total") != 5.0 || jsonPath(m, "topics.topics") != 9.0 {
		t.Errorf("/admin/push topics %v, want 5 refused by the client's share, 9 topics (8 lingering, scores)", m["topics"])
	}
}

// TestPushTopicsCluster: three nodes sharing a redis-server; a device on each
// subscribed to "news" (and two on node A, under two ids). A topic push at
// any node reaches each device exactly once; after the device on C leaves,
// C drops out of the topic's nodes once its subscription stopped lingering
// (push.history.max_age, 2 s here) and is not forwarded to.
func TestPushTopicsCluster(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	cluster := fmt.Sprintf(`{enabled: true, redis: %q, ttl: 3s, secret: %q}`, rs.Addr, clusterSecret)
	var nodes []*gozer
	for range 3 {
		nodes = append(nodes, pushGozer(t, map[string]string{"cluster": cluster, "history": "{max_age: 2s}"}))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	type dev struct {
		d  *wsDevice
		id string
		on *gozer
	}
	var devs []dev
	for i, on := range []*gozer{a, a, b, c} {
		id := fmt.Sprintf("topic-dev-%d", i)
		devs = append(devs, dev{dialWS(t, on, id, on.pushTokenTopics(t, id, "news")), id, on})
	}
	all := []string{a.AdminAddr, b.AdminAddr, c.AdminAddr}
	slices.Sort(all)
	waitFor(t, 10*time.Second, "every node lists A, B and C for topic news", func() bool {
		for _, n := range nodes {
			if _, got := n.topicNodes(t, "news"); !slices.Equal(got, all) {
				return false
			}
		}
		return true
	})

	for i, at := range nodes {
		msg := fmt.Sprintf("news %d", i)
		at.topicPush(t, "news", msg, 200).expect(t, 4, 3)
		for _, d := range devs {
			d.d.expectText(t, msg)
		}
	}
	for _, d := range devs { // exactly once: no second copy before the direct push
		notDelivered(t, d.on, d.d, d.id)
	}

	devs[3].d.conn.Close() // the one on C
	want := []string{a.AdminAddr, b.AdminAddr}
	slices.Sort(want)
	waitFor(t, 10*time.Second, "A no longer lists C for news", func() bool {
		_, got := a.topicNodes(t, "news")
		return slices.Equal(got, want)
	})
	a.topicPush(t, "news", "without C", 200).expect(t, 3, 2)
	for _, d := range devs[:3] {
		d.d.expectText(t, "without C")
	}
	if fw := c.pushCounter(t, "api.forwards_received_total"); fw != 2 {
		t.Errorf("node C received %d forwards, want 2 (the pushes at A and B while it had a subscriber)", fw)
	}
}
