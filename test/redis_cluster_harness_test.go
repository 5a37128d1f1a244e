package test

// A real Redis Cluster for the push cluster tests: six redis-server processes
// with cluster-enabled yes (3 masters, 3 replicas) on loopback, joined with
// `redis-cli --cluster create`, started beside startRedis.

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisClusterNode is one redis-server of a redisCluster.
type redisClusterNode struct {
	*process
	Addr string
	Port string
}

// redisCluster is a running Redis Cluster of the test's own.
//
// Concurrency: its methods belong to the test's goroutine (they may fail it).
type redisCluster struct {
	Nodes []*redisClusterNode
	cli   string // redis-cli
}

// Addrs are the addresses of every node, masters and replicas: seeds for a client.
func (rc *redisCluster) Addrs() []string {
	out := make([]string, len(rc.Nodes))
	for i, n := range rc.Nodes {
		out[i] = n.Addr
	}
	return out
}

// redisClusterNodeTimeout is cluster-node-timeout: how long a master may be
// unreachable before its replica takes over (a failover takes about twice it).
const redisClusterNodeTimeout = "1000"

// startRedisCluster starts 3 masters and 3 replicas without persistence,
// creates the cluster and waits until every node says cluster_state:ok and
// every replica is in sync with its master. It fails the test when
// redis-server or redis-cli is not installed (`make deps`).
func startRedisCluster(t testing.TB) *redisCluster {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: the push cluster tests need it (`make deps`)")
	}
	rc := &redisCluster{}
	if rc.cli, err = exec.LookPath("redis-cli"); err != nil {
		t.Fatal("redis-cli is not installed: the Redis Cluster tests need it (`make deps`)")
	}
	dir := t.TempDir()
	// Twelve ports: each node's client port and its cluster bus port, set
	// explicitly (the default, port + 10000, may be taken or beyond 65535).
	ports := freePorts(t, 12)
	for i := range 6 {
		_, port, _ := net.SplitHostPort(ports[i])
		_, bus, _ := net.SplitHostPort(ports[6+i])
		p, err := startProcess("redis-server", bin, "--port", port, "--cluster-port", bus, "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes-"+port+".conf"),
			"--cluster-node-timeout", redisClusterNodeTimeout, "--save", "", "--appendonly", "no", "--dir", dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.stop(5 * time.Second) })
		rc.Nodes = append(rc.Nodes, &redisClusterNode{process: p, Addr: ports[i], Port: port})
	}
	for _, n := range rc.Nodes {
		if !eventually(10*time.Second, func() bool { return !n.exited() && redisPing(n.Addr) }) {
			t.Fatalf("redis-server %s (cluster node) did not answer PING:\n%s", n.Addr, tail(n.output(), 2000))
		}
	}
	args := append([]string{"--cluster", "create"}, rc.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(rc.cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, tail(string(out), 3000))
	}
	rc.waitHealthy(t, 20*time.Second)
	return rc
}

// waitHealthy waits until every live node says cluster_state:ok, there are
// three masters, and every replica's link to its master is up.
func (rc *redisCluster) waitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	var last string
	ok := eventually(timeout, func() bool {
		masters := 0
		for _, n := range rc.Nodes {
			if n.exited() {
				continue
			}
			info := rc.cmd(n, "CLUSTER", "INFO")
			if !strings.Contains(info, "cluster_state:ok") {
				last = n.Addr + ": " + info
				return false
			}
			repl := rc.cmd(n, "INFO", "replication")
			switch {
			case strings.Contains(repl, "role:master"):
				masters++
			case !strings.Contains(repl, "master_link_status:up"):
				last = n.Addr + ": " + repl
				return false
			}
		}
		last = "masters: " + strconv.Itoa(masters)
		return masters == 3
	})
	if !ok {
		t.Fatalf("redis cluster not healthy within %v: %s", timeout, tail(last, 1500))
	}
}

// cmd runs a redis-cli command against node n and returns its output ("" on
// error: the callers poll).
func (rc *redisCluster) cmd(n *redisClusterNode, args ...string) string {
	full := append([]string{"-h", "127.0.0.1", "-p", n.Port}, args...)
	out, err := exec.Command(rc.cli, full...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// masterOf returns the live master that serves key's slot.
func (rc *redisCluster) masterOf(t testing.TB, key string) *redisClusterNode {
	t.Helper()
	for _, n := range rc.Nodes {
		if n.exited() || !strings.Contains(rc.cmd(n, "INFO", "replication"), "role:master") {
			continue
		}
		// A master answers a key it does not serve with MOVED; one it serves
		// with the type (also "none" for a missing key).
		if out := rc.cmd(n, "TYPE", key); out != "" && !strings.Contains(out, "MOVED") {
			return n
		}
	}
	t.Fatalf("no live master serves %q", key)
	return nil
}

// redisSentinelSetup is a master, its replica and one Sentinel watching them
// under the name "mymaster", all of the test's own.
type redisSentinelSetup struct {
	Master, Replica, Sentinel *redisClusterNode
	cli                       string
}

// startRedisSentinel starts the master, the replica (in sync before it
// returns) and a Sentinel (redis-server --sentinel) with a 1 s
// down-after-milliseconds, and waits until the Sentinel knows the replica.
func startRedisSentinel(t testing.TB) *redisSentinelSetup {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: the push cluster tests need it (`make deps`)")
	}
	s := &redisSentinelSetup{}
	if s.cli, err = exec.LookPath("redis-cli"); err != nil {
		t.Fatal("redis-cli is not installed: the Sentinel test needs it (`make deps`)")
	}
	dir := t.TempDir()
	ports := freePorts(t, 3)
	start := func(addr string, args ...string) *redisClusterNode {
		_, port, _ := net.SplitHostPort(addr)
		p, err := startProcess("redis-server", bin, args...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.stop(5 * time.Second) })
		n := &redisClusterNode{process: p, Addr: addr, Port: port}
		if !eventually(10*time.Second, func() bool { return !p.exited() && redisPing(addr) }) {
			t.Fatalf("redis-server %s did not answer PING:\n%s", addr, tail(p.output(), 2000))
		}
		return n
	}
	common := func(port string) []string {
		return []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}
	}
	_, mport, _ := net.SplitHostPort(ports[0])
	_, rport, _ := net.SplitHostPort(ports[1])
	_, sport, _ := net.SplitHostPort(ports[2])
	s.Master = start(ports[0], common(mport)...)
	s.Replica = start(ports[1], append(common(rport), "--replicaof", "127.0.0.1", mport)...)
	conf := filepath.Join(dir, "sentinel.conf") // the Sentinel rewrites it: a file of its own
	body := "port " + sport + "\nbind 127.0.0.1\ndir " + dir + "\n" +
		"sentinel monitor mymaster 127.0.0.1 " + mport + " 1\n" +
		"sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 10000\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Sentinel = start(ports[2], conf, "--sentinel")
	waitFor(t, 20*time.Second, "the replica in sync and known to the Sentinel", func() bool {
		repl := s.cmd(s.Replica, "INFO", "replication")
		known := s.cmd(s.Sentinel, "SENTINEL", "REPLICAS", "mymaster")
		return strings.Contains(repl, "master_link_status:up") && strings.Contains(known, rport)
	})
	return s
}

// cmd runs a redis-cli command against n ("" on error: the callers poll).
func (s *redisSentinelSetup) cmd(n *redisClusterNode, args ...string) string {
	out, err := exec.Command(s.cli, append([]string{"-h", "127.0.0.1", "-p", n.Port}, args...)...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}
