package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPushRedisSentinel: two gozer nodes find the registry's master through a
// Sentinel; a push crosses nodes; the Sentinel fails the master over to its
// replica, and pushes cross nodes again on the new master.
func TestPushRedisSentinel(t *testing.T) {
	t.Parallel()
	s := startRedisSentinel(t)
	cluster := fmt.Sprintf(`{enabled: true, redis: {addrs: [%q], master_name: mymaster}, ttl: 3s, secret: %q}`, s.Sentinel.Addr, clusterSecret)
	a := pushGozer(t, map[string]string{"cluster": cluster})
	b := pushGozer(t, map[string]string{"cluster": cluster})
	if m := a.adminPush(t); jsonPath(m, "cluster.redis_mode") != "sentinel" {
		t.Fatalf("GET /admin/push: cluster %v, want redis_mode sentinel", m["cluster"])
	}
	devs := connectIDs(t, b, a, []string{"sen-1"})
	if ans := a.push(t, "sen-1", "before", 200); ans.Reached != 1 || !slices.Equal(ans.nodeList(t), []string{b.AdminAddr}) {
		t.Fatalf("push at A: %+v, want reached 1 on B", ans)
	}
	devs["sen-1"].expectText(t, "before")
	if keys := s.cmd(s.Master, "KEYS", "gozer:push:id:*"); !strings.Contains(keys, "gozer:push:id:sen-1") {
		t.Fatalf("the master behind the Sentinel has no key for sen-1: %q", keys)
	}

	if out := s.cmd(s.Sentinel, "SENTINEL", "FAILOVER", "mymaster"); !strings.Contains(out, "OK") {
		t.Fatalf("SENTINEL FAILOVER: %q", out)
	}
	waitFor(t, 20*time.Second, "the replica is the master", func() bool {
		return strings.Contains(s.cmd(s.Replica, "INFO", "replication"), "role:master")
	})
	waitFor(t, 20*time.Second, "a push at A crosses to B through the new master", func() bool {
		resp, ans := pushAPI(t, a.AdminAddr, "POST", "/push/sen-1", []byte("after"), nil)
		return resp.StatusCode == 200 && ans.Reached == 1
	})
	devs["sen-1"].expectText(t, "after")
	// The new master holds the registry: the replica's copy, then refreshes.
	if keys := s.cmd(s.Replica, "KEYS", "gozer:push:id:*"); !strings.Contains(keys, "gozer:push:id:sen-1") {
		t.Errorf("the new master has no key for sen-1: %q", keys)
	}
}
