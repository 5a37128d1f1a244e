package test

// Three gozer nodes sharing a real redis-server as the push cluster registry: a
// push at one node reaches a device on another, forwarded requests are not
// forwarded again, broadcasts reach every node, and a node killed without a
// goodbye drops out of the registry within its TTL.

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestPushCluster: nodes A, B and C with push.cluster on one redis-server (ttl 2s).
func TestPushCluster(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	cluster := fmt.Sprintf(`{enabled: true, redis: %q, ttl: 2s}`, rs.Addr)
	var nodes []*gozer
	for range 3 {
		nodes = append(nodes, pushGozer(t, map[string]string{"cluster": cluster}))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		if m := n.adminPush(t); m["cluster"] != true || m["node"] != n.AdminAddr {
			t.Fatalf("GET /admin/push at %s: cluster %v node %v, want cluster mode as node %s", n.AdminAddr, m["cluster"], m["node"], n.AdminAddr)
		}
	}

	devC := dialWS(t, c, "on-c", c.pushToken(t, "on-c", "1h"))
	// The registry learns of it asynchronously (the registrar's goroutine).
	var st pushAnswer
	waitFor(t, 5*time.Second, "node A sees on-c connected on node C", func() bool {
		st = a.pushStatus(t, "on-c")
		return st.Connected && slices.Equal(st.nodeList(t), []string{c.AdminAddr})
	})
	if st.Local != 0 {
		t.Errorf("GET /push/on-c at A: %+v, want local 0", st)
	}

	ans := a.push(t, "on-c", "via A", 200)
	if ans.Reached != 1 || !slices.Equal(ans.nodeList(t), []string{c.AdminAddr}) {
		t.Errorf("POST /push/on-c at A: %+v, want reached 1 on [%s]", ans, c.AdminAddr)
	}
	devC.expectText(t, "via A")

	// A request another node forwarded is delivered locally only: A has no device
	// of on-c, so 404, and nothing is forwarded to C.
	resp, ans := pushAPI(t, a.AdminAddr, "POST", "/push/on-c", []byte("looped"), map[string]string{"X-Gozer-Push-Forwarded": b.AdminAddr})
	if resp.StatusCode != 404 || ans.Reached != 0 {
		t.Errorf("forwarded POST /push/on-c at A: status %d %+v, want 404 reached 0", resp.StatusCode, ans)
	}

	devA := dialWS(t, a, "on-a", a.pushToken(t, "on-a", "1h"))
	devB := dialWS(t, b, "on-b", b.pushToken(t, "on-b", "1h"))
	for _, n := range nodes {
		for id, on := range map[string]*gozer{"on-a": a, "on-b": b} {
			waitFor(t, 5*time.Second, fmt.Sprintf("%s sees %s on %s", n.AdminAddr, id, on.AdminAddr), func() bool {
				return slices.Equal(n.pushStatus(t, id).nodeList(t), []string{on.AdminAddr})
			})
		}
	}
	resp, ans = pushAPI(t, a.AdminAddr, "POST", "/push/broadcast?prefix=on-", []byte("to everyone"), nil)
	if resp.StatusCode != 200 || ans.Reached != 3 {
		t.Fatalf("broadcast at A: status %d %+v, want 200 reached 3", resp.StatusCode, ans)
	}
	per := ans.nodeMap(t)
	for _, n := range nodes {
		if per[n.AdminAddr] != 1 {
			t.Errorf("broadcast at A: nodes %v, want 1 on each of A, B and C", per)
			break
		}
	}
	// C never got "looped": the next message on-c gets is the broadcast.
	for _, d := range []*wsDevice{devA, devB, devC} {
		d.expectText(t, "to everyone")
	}

	// C dies without leaving the cluster: its entries expire with the TTL (2s).
	killed := time.Now()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.done
	waitFor(t, 6*time.Second, "node A stops listing on-c within the TTL after C was killed", func() bool {
		return !a.pushStatus(t, "on-c").Connected
	})
	t.Logf("on-c left the registry %v after node C was killed", time.Since(killed).Round(10*time.Millisecond))
	ans = a.push(t, "on-c", "to a dead node", 404)
	if ans.Reached != 0 {
		t.Errorf("POST /push/on-c at A after C died: %+v, want reached 0", ans)
	}
	// The others are still reachable across the cluster, and C is out of the
	// node set.
	ans = b.push(t, "on-a", "B to A", 200)
	devA.expectText(t, "B to A")
	waitFor(t, 5*time.Second, "a broadcast at B no longer names C", func() bool {
		resp, ans := pushAPI(t, b.AdminAddr, "POST", "/push/broadcast?prefix=none-", []byte("x"), nil)
		_, hasC := ans.nodeMap(t)[c.AdminAddr]
		return resp.StatusCode == 200 && !hasC && len(ans.Failed) == 0
	})
}
