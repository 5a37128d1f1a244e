package test

// Three gozer nodes sharing a real redis-server as the push cluster registry: a
// push at one node reaches a device on another, forwarded requests are not
// forwarded again, broadcasts reach every node, and a node killed without a
// goodbye drops out of the registry within its TTL.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPushCluster: nodes A, B and C with push.cluster on one redis-server (ttl 2s).
func TestPushCluster(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	cluster := fmt.Sprintf(`{enabled: true, redis: %q, ttl: 2s, secret: %q}`, rs.Addr, clusterSecret)
	var nodes []*gozer
	for range 3 {
		nodes = append(nodes, pushGozer(t, map[string]string{"cluster": cluster}))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		if m := n.adminPush(t); jsonPath(m, "cluster.enabled") != true || jsonPath(m, "cluster.node") != n.AdminAddr {
			t.Fatalf("GET /admin/push at %s: cluster %v, want cluster mode as node %s", n.AdminAddr, m["cluster"], n.AdminAddr)
		}
	}

	devC := dialWS(t, c, "on-c", c.pushToken(t, "on-c", "1h"))
	// The registry learns of it asynchronously (the registrar's goroutine).
	var st pushAnswer
	waitFor(t, 5*time.Second, "node A sees on-c connected on node C", func() bool {
		var ok bool
		st, ok = a.clusterStatus(t, "on-c")
		return ok && st.Connected && slices.Equal(st.nodeList(t), []string{c.AdminAddr})
	})
	if st.Local != 0 {
		t.Errorf("GET /push/on-c at A: %+v, want local 0", st)
	}

	ans := a.push(t, "on-c", "via A", 200)
	if ans.Reached != 1 || !slices.Equal(ans.nodeList(t), []string{c.AdminAddr}) {
		t.Errorf("POST /push/on-c at A: %+v, want reached 1 on [%s]", ans, c.AdminAddr)
	}
	devC.expectText(t, "via A")

	// A request that only claims to be forwarded (no signature) is refused:
	// the header alone skips nothing (push_forward_auth_test.go has the rest).
	resp, ans := pushAPI(t, a.AdminAddr, "POST", "/push/on-c", []byte("looped"), map[string]string{"X-Gozer-Push-Forwarded": b.AdminAddr})
	if resp.StatusCode != 401 || ans.Reached != 0 {
		t.Errorf("unsigned forwarded POST /push/on-c at A: status %d %+v, want 401 reached 0", resp.StatusCode, ans)
	}

	devA := dialWS(t, a, "on-a", a.pushToken(t, "on-a", "1h"))
	devB := dialWS(t, b, "on-b", b.pushToken(t, "on-b", "1h"))
	for _, n := range nodes {
		for id, on := range map[string]*gozer{"on-a": a, "on-b": b} {
			waitFor(t, 5*time.Second, fmt.Sprintf("%s sees %s on %s", n.AdminAddr, id, on.AdminAddr), func() bool {
				st, ok := n.clusterStatus(t, id)
				return ok && slices.Equal(st.nodeList(t), []string{on.AdminAddr})
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
		st, ok := a.clusterStatus(t, "on-c")
		return ok && !st.Connected
	})
	t.Logf("on-c left the registry %v after node C was killed", time.Since(killed).Round(10*time.Millisecond))
	// Its device was seen within push.history.max_age (Redis holds the marker):
	// the message is kept for its reconnect, not refused.
	ans = a.push(t, "on-c", "to a dead node", 202)
	if ans.Reached != 0 || !ans.Stored {
		t.Errorf("POST /push/on-c at A after C died: %+v, want reached 0, stored", ans)
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

// TestPushClusterRegistryHeals: Redis loses the registry (FLUSHALL) under a
// running two-node cluster. The nodes notice within a probe and register their
// devices again at once, long before the periodic refresh (ttl/3, 10 s here):
// meanwhile a push is answered 503 "recovering", never a false 404. Then Redis
// dies: go-redis's own log lines come through Gozer's sampling, a few per node,
// not one per failed call.
func TestPushClusterRegistryHeals(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	cluster := fmt.Sprintf(`{enabled: true, redis: %q, ttl: 30s, secret: %q}`, rs.Addr, clusterSecret)
	a := pushGozer(t, map[string]string{"cluster": cluster})
	b := pushGozer(t, map[string]string{"cluster": cluster})
	dev := dialWS(t, b, "heal-b", b.pushToken(t, "heal-b", "1h"))
	waitFor(t, 5*time.Second, "node A sees heal-b on node B", func() bool {
		st, ok := a.clusterStatus(t, "heal-b")
		return ok && slices.Equal(st.nodeList(t), []string{b.AdminAddr})
	})

	redisCommand(t, rs.Addr, "FLUSHALL")
	flushed := time.Now()
	var recovering int
	for i := 0; ; i++ {
		msg := fmt.Sprintf("after the flush %d", i)
		resp, ans := pushAPI(t, a.AdminAddr, "POST", "/push/heal-b", []byte(msg), nil)
		if resp.StatusCode == 200 {
			dev.expectText(t, msg)
			break
		}
		if resp.StatusCode != 503 || !strings.Contains(ans.Error, "recovering") || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("push %d after the flush: status %d %+v, want 200, or 503 recovering with Retry-After (never a false 404)",
				i, resp.StatusCode, ans)
		}
		recovering++
		if time.Since(flushed) > 3*time.Second {
			t.Fatalf("heal-b not reachable %v after the flush (the periodic refresh would take 10s)", time.Since(flushed))
		}
		time.Sleep(10 * time.Millisecond)
	}
	healed := time.Since(flushed)
	t.Logf("reachable again %v after the flush; %d pushes answered 503 recovering meanwhile", healed.Round(time.Millisecond), recovering)
	if n := b.pushCounter(t, "cluster.registry_rebuilds_total"); n != 1 {
		t.Errorf("node B cluster.registry_rebuilds_total = %d, want 1", n)
	}
	if n := a.pushCounter(t, "api.registry_recovering_total"); n != int64(recovering) {
		t.Errorf("node A api.registry_recovering_total = %d, want %d", n, recovering)
	}
	// An id connected nowhere is a plain 404 again once the registry is whole.
	waitFor(t, 3*time.Second, "a push to an unknown id is a 404 again", func() bool {
		resp, _ := pushAPI(t, a.AdminAddr, "POST", "/push/nobody-here", []byte("x"), nil)
		return resp.StatusCode == 404
	})

	// Redis dies: every push now fails its lookup, and go-redis would log each
	// failed dial; Gozer lets one line through per 5 s.
	rs.stop(5 * time.Second)
	outage := time.Now()
	for time.Since(outage) < 6*time.Second {
		_, _ = pushAPI(t, a.AdminAddr, "POST", "/push/heal-b", []byte("during the outage"), nil)
		time.Sleep(50 * time.Millisecond)
	}
	for _, n := range []*gozer{a, b} {
		lines := strings.Count(n.stderr.String(), `"from":"go-redis"`)
		t.Logf("node %s: %d go-redis log lines in 6s of outage", n.AdminAddr, lines)
		if lines > 3 {
			t.Errorf("node %s logged %d go-redis lines in 6s of outage, want at most 3 (sampled every 5s)", n.AdminAddr, lines)
		}
	}
}

// redisCommand sends one inline command to the Redis at addr and fails the test
// unless the answer is +OK.
func redisCommand(t testing.TB, addr, cmd string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("redis %s: %q %v", cmd, line, err)
	}
}
