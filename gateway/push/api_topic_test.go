package push_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"gozer/gateway/push"
)

// TestAPITopics: POST /push/topic/{name} on three nodes sharing a
// MemoryCluster (and a node "bad" that answers 500): each subscribed id's
// connections get the message once, the answer counts connections and nodes,
// a forwarded request is delivered locally only, and failures answer as a
// broadcast's do.
func TestAPITopics(t *testing.T) {
	type sub struct {
		node     int
		name, id string
	}
	tests := []struct {
		name     string
		subs     []sub
		badNode  bool // "bad" is listed for the topic
		fail     bool // the cluster registry fails
		at       int
		req      apiReq
		status   int
		body     string // exact answer, or "" not checked
		has      string
		got      map[string][]string
		received map[int]uint64 // node → ForwardsReceived
	}{
		{name: "reaches every subscriber once, on every node",
			subs: []sub{{nodeA, "a1", "u1"}, {nodeA, "a2", "u1"}, {nodeC, "c1", "u3"}},
			at:   nodeB, req: apiReq{method: "POST", path: "/push/topic/news", body: "hi"},
			status: 200, body: `{"reached":3,"nodes":2}`,
			got:      map[string][]string{"a1": {"t:hi"}, "a2": {"t:hi"}, "c1": {"t:hi"}},
			received: map[int]uint64{nodeA: 1, nodeB: 0, nodeC: 1}},
		{name: "binary, local and remote", subs: []sub{{nodeA, "a1", "u1"}, {nodeC, "c1", "u3"}},
			at: nodeA, req: apiReq{method: "POST", path: "/push/topic/news", ct: "application/octet-stream", body: "b"},
			status: 200, body: `{"reached":2,"nodes":2}`, got: map[string][]string{"a1": {"b:b"}, "c1": {"b:b"}}},
		{name: "nobody subscribed", at: nodeA, req: apiReq{method: "POST", path: "/push/topic/news", body: "x"},
			status: 200, body: `{"reached":0,"nodes":0}`},
		{name: "forwarded: local only", subs: []sub{{nodeC, "c1", "u3"}},
			at: nodeA, req: apiReq{method: "POST", path: "/push/topic/news", body: "x", forwarded: true},
			status: 200, body: `{"reached":0,"nodes":0}`, got: map[string][]string{"c1": nil}, received: map[int]uint64{nodeC: 0}},
		{name: "a failing node is named, the rest reached", subs: []sub{{nodeC, "c1", "u3"}}, badNode: true,
			at: nodeA, req: apiReq{method: "POST", path: "/push/topic/news", body: "x"},
			status: 200, has: `"failed":{`, got: map[string][]string{"c1": {"t:x"}}},
		{name: "only a failing node: 502", badNode: true,
			at: nodeA, req: apiReq{method: "POST", path: "/push/topic/news", body: "x"}, status: 502, has: "forwarding failed"},
		{name: "registry down, nothing local: 503", fail: true,
			at: nodeA, req: apiReq{method: "POST", path: "/push/topic/news", body: "x"}, status: 503, has: "cluster registry unavailable"},
		{name: "registry down, local subscriber: 200 with a warning", subs: []sub{{nodeA, "a1", "u1"}}, fail: true,
			at: nodeA, req: apiReq{method: "POST", path: "/push/topic/news", body: "x"}, status: 200, has: `"warning":"delivered on this node only`},
		{name: "bad name", at: nodeA, req: apiReq{method: "POST", path: "/push/topic/a%20b", body: "x"}, status: 400, has: "invalid topic name"},
		{name: "too long", at: nodeA, req: apiReq{method: "POST", path: "/push/topic/" + strings.Repeat("n", 129), body: "x"}, status: 400},
		{name: "text not utf-8", at: nodeA, req: apiReq{method: "POST", path: "/push/topic/news", body: "\xff"}, status: 400},
		{name: "too large", at: nodeA, req: apiReq{method: "POST", path: "/push/topic/news", body: strings.Repeat("x", 1025)}, status: 413},
		{name: "method", at: nodeA, req: apiReq{method: "PUT", path: "/push/topic/news"}, status: 405},
		{name: "GET lists the nodes", subs: []sub{{nodeA, "a1", "u1"}, {nodeA, "a2", "u2"}, {nodeC, "c1", "u3"}},
			at: nodeA, req: apiReq{method: "GET", path: "/push/topic/news"}, status: 200, has: `"local":2`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			ctx := context.Background()
			for _, s := range tc.subs {
				n := c.nodes[s.node]
				n.connect(t, c.mc, s.name, s.id, false)
				if err := n.topics.Subscribe("news", s.id); err != nil {
					t.Fatal(err)
				}
				if err := c.mc.Node(n.addr).(push.TopicRegistry).RefreshTopics(ctx, []string{"news"}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.badNode {
				if err := c.mc.Node(c.bad).(push.TopicRegistry).RefreshTopics(ctx, []string{"news"}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.fail {
				c.mc.SetFailure(errors.New("redis down"))
			}
			r := do(t, c.nodes[tc.at].url, tc.req)
			if r.status != tc.status || (tc.body != "" && r.body != tc.body) || !strings.Contains(r.body, tc.has) {
				t.Fatalf("%s %s: %d %s, want %d %q (containing %q)", tc.req.method, tc.req.path, r.status, r.body, tc.status, tc.body, tc.has)
			}
			for name, want := range tc.got {
				for _, n := range c.nodes {
					if conn, ok := n.conns[name]; ok && !slices.Equal(conn.messages(), want) {
						t.Errorf("%s got %q, want %q", name, conn.messages(), want)
					}
				}
			}
			for i, want := range tc.received {
				if got := c.nodes[i].api.Stats().ForwardsReceived; got != want {
					t.Errorf("node %d received %d forwards, want %d", i, got, want)
				}
			}
		})
	}
}
