package test

// Push across gozer nodes whose registry is a real Redis Cluster (3 masters,
// 3 replicas): pushes and broadcasts cross nodes, the registry's keys spread
// over the shards, and a master that dies under pushes costs cross-node
// delivery only until its replica took over, never local delivery.

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// redisClusterConfig is push.cluster on rc, with ttl.
func redisClusterConfig(rc *redisCluster, ttl string) string {
	quoted := make([]string, 0, len(rc.Nodes))
	for _, a := range rc.Addrs() {
		quoted = append(quoted, fmt.Sprintf("%q", a))
	}
	return fmt.Sprintf(`{enabled: true, redis: {addrs: [%s]}, ttl: %s, secret: %q}`, strings.Join(quoted, ", "), ttl, clusterSecret)
}

// connectIDs opens one websocket device per id on g and waits until node
// other sees each of them on g.
func connectIDs(t *testing.T, g, other *gozer, ids []string) map[string]*wsDevice {
	t.Helper()
	devs := make(map[string]*wsDevice, len(ids))
	for _, id := range ids {
		devs[id] = dialWS(t, g, id, g.pushToken(t, id, "1h"))
	}
	for _, id := range ids {
		waitFor(t, 10*time.Second, fmt.Sprintf("%s sees %s on %s", other.AdminAddr, id, g.AdminAddr), func() bool {
			st, ok := other.clusterStatus(t, id)
			return ok && slices.Equal(st.nodeList(t), []string{g.AdminAddr})
		})
	}
	return devs
}

// TestPushRedisCluster: three gozer nodes on one Redis Cluster.
func TestPushRedisCluster(t *testing.T) {
	t.Parallel()
	rc := startRedisCluster(t)
	cluster := redisClusterConfig(rc, "3s")
	a := pushGozer(t, map[string]string{"cluster": cluster})
	b := pushGozer(t, map[string]string{"cluster": cluster})
	c := pushGozer(t, map[string]string{"cluster": cluster})
	if m := a.adminPush(t); jsonPath(m, "cluster.redis_mode") != "cluster" {
		t.Fatalf("GET /admin/push: cluster %v, want redis_mode cluster", m["cluster"])
	}
	var onB, onC []string
	for i := range 8 {
		onB = append(onB, fmt.Sprintf("rc-b-%d", i))
		onC = append(onC, fmt.Sprintf("rc-c-%d", i))
	}
	devs := connectIDs(t, b, a, onB)
	for id, d := range connectIDs(t, c, a, onC) {
		devs[id] = d
	}

	// The ids' keys sit on several shards: the test exercises the Cluster
	// client's routing, not one master.
	shards := map[string]bool{}
	for _, id := range append(slices.Clone(onB), onC...) {
		shards[rc.masterOf(t, "gozer:push:id:"+id).Addr] = true
	}
	if len(shards) < 2 {
		t.Errorf("16 ids' registry keys on %d master(s), want them spread over several", len(shards))
	}

	for _, id := range append(slices.Clone(onB), onC...) {
		if ans := a.push(t, id, "to "+id, 200); ans.Reached != 1 {
			t.Errorf("push %s at A: %+v, want reached 1", id, ans)
		}
		devs[id].expectText(t, "to "+id)
	}
	resp, ans := pushAPI(t, a.AdminAddr, "POST", "/push/broadcast?prefix=rc-", []byte("all"), nil)
	if resp.StatusCode != 200 || ans.Reached != 16 {
		t.Fatalf("broadcast at A: status %d %+v, want 200 reached 16", resp.StatusCode, ans)
	}
	if per := ans.nodeMap(t); per[b.AdminAddr] != 8 || per[c.AdminAddr] != 8 || per[a.AdminAddr] != 0 {
		t.Errorf("broadcast at A: nodes %v, want 8 on B, 8 on C, 0 on A", per)
	}
	for _, d := range devs {
		d.expectText(t, "all")
	}

	// The history on the Redis Cluster (its keys hash-tagged by client id): a
	// device of B leaves, three pushes at A are stored, and it recovers them
	// at C with its last id, in order, then gets live messages.
	tok := b.pushToken(t, "rc-hist", "1h")
	d := wsHistDevice(t, b, "rc-hist", tok, "")
	waitFor(t, 10*time.Second, "A sees rc-hist connected (on B)", func() bool { return a.pushStatus(t, "rc-hist").Connected })
	a.push(t, "rc-hist", "h1", 200)
	last := d.expectIDMsgs(t, "h1")
	d.conn.Close()
	waitFor(t, 10*time.Second, "A sees rc-hist gone", func() bool { return !a.pushStatus(t, "rc-hist").Connected })
	a.pushStored(t, "rc-hist", "h2", "h3", "h4")
	back := wsHistDevice(t, c, "rc-hist-back", tok, last)
	back.expectIDMsgs(t, "h2", "h3", "h4")
	waitFor(t, 10*time.Second, "A sees rc-hist connected (on C)", func() bool { return a.pushStatus(t, "rc-hist").Connected })
	a.push(t, "rc-hist", "live", 200)
	back.expectIDMsgs(t, "live")
}

// TestPushRedisClusterFailover: the master that holds a device's registry
// entry is killed while pushes go on. Pushes at the device's own node are
// delivered throughout (local delivery never asks Redis); pushes at the
// other node fail only until the replica took over, then cross nodes again.
func TestPushRedisClusterFailover(t *testing.T) {
	t.Parallel()
	rc := startRedisCluster(t)
	cluster := redisClusterConfig(rc, "3s")
	a := pushGozer(t, map[string]string{"cluster": cluster})
	b := pushGozer(t, map[string]string{"cluster": cluster})
	ids := []string{"fo-0", "fo-1", "fo-2", "fo-3", "fo-4", "fo-5"}
	devs := connectIDs(t, b, a, ids)
	victim := rc.masterOf(t, "gozer:push:id:"+ids[0])

	// Local pushes at B, one per 20 ms, all through the failover.
	stop := make(chan struct{})
	var localSent, localFailed atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			resp, ans := pushAPI(t, b.AdminAddr, "POST", "/push/"+ids[0], []byte(fmt.Sprintf("local %d", i)), nil)
			localSent.Add(1)
			if resp.StatusCode != 200 || ans.Reached != 1 {
				localFailed.Add(1)
				t.Errorf("local push %d at B during the failover: status %d %+v, want 200 reached 1", i, resp.StatusCode, ans)
			}
		}
	})

	killed := time.Now()
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	// Cross-node pushes at A: failures are allowed while the slot has no
	// master; every id must be reachable across nodes again afterwards.
	var crossFailed int
	for _, id := range ids {
		waitFor(t, 30*time.Second, "a push at A reaches "+id+" on B again after the failover", func() bool {
			resp, ans := pushAPI(t, a.AdminAddr, "POST", "/push/"+id, []byte("cross "+id), nil)
			if resp.StatusCode == 200 && ans.Reached == 1 {
				return true
			}
			crossFailed++
			return false
		})
	}
	recovered := time.Since(killed)
	close(stop)
	wg.Wait()
	rc.waitHealthy(t, 20*time.Second) // the replica is a master now
	t.Logf("master %s killed: cross-node pushes back after %v (%d answered otherwise meanwhile); %d local pushes at B, %d failed",
		victim.Addr, recovered.Round(10*time.Millisecond), crossFailed, localSent.Load(), localFailed.Load())
	if localSent.Load() == 0 {
		t.Fatal("no local push was sent during the failover")
	}

	// Every local push reached the device, in order, with the cross-node ones
	// that succeeded among them.
	var got []string
	for len(got) < int(localSent.Load()) {
		m := devs[ids[0]].next(t, 5*time.Second)
		if s := string(m.data); strings.HasPrefix(s, "local ") {
			got = append(got, s)
		}
	}
	for i, s := range got {
		if s != fmt.Sprintf("local %d", i) {
			t.Fatalf("local message %d is %q, want \"local %d\" (lost or reordered)", i, s, i)
		}
	}
}
