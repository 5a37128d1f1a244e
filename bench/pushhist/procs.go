package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"gozer/bench/internal/procfs"
)

// world is one run's processes and temp dir.
type world struct {
	dir   string
	procs []*exec.Cmd
}

func newWorld() *world {
	dir, err := os.MkdirTemp("", "pushhist-")
	if err != nil {
		log.Fatal(err)
	}
	return &world{dir: dir}
}

func (w *world) stop() {
	for i := len(w.procs) - 1; i >= 0; i-- {
		p := w.procs[i]
		_ = p.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	_ = os.RemoveAll(w.dir)
}

func (w *world) start(name string, args ...string) *exec.Cmd {
	c := exec.Command(args[0], args[1:]...)
	c.Dir = *repo
	out, err := os.Create(filepath.Join(w.dir, name+".log"))
	if err != nil {
		log.Fatal(err)
	}
	c.Stdout, c.Stderr = out, out
	c.Env = append(os.Environ(), "GODEBUG=madvdontneed=1")
	if err := c.Start(); err != nil {
		log.Fatalf("start %s: %v", name, err)
	}
	w.procs = append(w.procs, c)
	return c
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitUntil(what string, timeout time.Duration, ok func() bool) {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			log.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisProc is a redis-server without persistence.
type redisProc struct {
	addr string
	rdb  *redis.Client
}

func (w *world) redis() *redisProc {
	addr := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	w.start("redis", *redisBin, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", port)
	r := &redisProc{addr: addr, rdb: redis.NewClient(&redis.Options{Addr: addr})}
	waitUntil("redis-server", 10*time.Second, func() bool { return r.rdb.Ping(context.Background()).Err() == nil })
	return r
}

func (r *redisProc) resetStats() {
	if err := r.rdb.ConfigResetStat(context.Background()).Err(); err != nil {
		log.Fatal(err)
	}
}

// usedMemory is INFO memory's used_memory, in bytes.
func (r *redisProc) usedMemory() int64 {
	s, err := r.rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

type cmdCalls struct {
	total  int64
	detail string
}

// commandCalls sums INFO commandstats' calls, but for this bench's own INFO
// and CONFIG.
func (r *redisProc) commandCalls() cmdCalls {
	s, err := r.rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		log.Fatal(err)
	}
	var c cmdCalls
	var parts []string
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		name = strings.TrimPrefix(name, "cmdstat_")
		if name == "info" || strings.HasPrefix(name, "config") {
			continue
		}
		n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		c.total += n
		parts = append(parts, fmt.Sprintf("%s %d", name, n))
	}
	c.detail = strings.Join(parts, ", ")
	return c
}

// gozerProc is a gozer node.
type gozerProc struct {
	proxy, admin string
	cmd          *exec.Cmd
}

func (w *world) gozer(name string, rs *redisProc, cluster bool) *gozerProc {
	return w.gozerWith(name, rs, cluster, true)
}

// gozerWith starts a gozer with one event loop, the bench's accept-all push
// filter, and push.history on or off.
func (w *world) gozerWith(name string, rs *redisProc, cluster, history bool) *gozerProc {
	g := &gozerProc{proxy: freeAddr(), admin: freeAddr()}
	maxMsgs := 100
	if !history {
		maxMsgs = 0
	}
	cl := "cluster: {enabled: false}"
	if cluster {
		cl = fmt.Sprintf("cluster: {enabled: true, redis: %q, ttl: 30s, secret: %q}", rs.addr, benchClusterSecret)
	}
	cfg := fmt.Sprintf(`listeners:
  proxy: { addr: %q }
  admin: { addr: %q, pprof: true }
server: { event_loops: 1, max_connections: 300000, max_connections_per_ip: 0, idle_timeout: 300s }
log: { level: warn, access_log: "off" }
filters: { dir: bench/push/scripts, budget: 5ms }
origins: { unused: { servers: ["127.0.0.1:9"] } }
push:
  ws_path: /push/ws
  rate: 1000000
  burst: 1000000
  ping_interval: 1h
  max_lifetime: 24h
  history: { max_messages: %d }
  %s
`, g.proxy, g.admin, maxMsgs, cl)
	path := filepath.Join(w.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		log.Fatal(err)
	}
	g.cmd = w.start("gozer-"+name, *gozerBin, "-config", path)
	waitUntil("gozer "+name, 15*time.Second, func() bool {
		resp, err := http.Get("http://" + g.admin + "/healthcheck")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return g
}

func (g *gozerProc) cpu() time.Duration { return time.Duration(procfs.CPUNanos(g.cmd.Process.Pid)) }

func (g *gozerProc) adminJSON(path string, v any) error {
	resp, err := http.Get("http://" + g.admin + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func waitConns(g *gozerProc, n int) {
	waitUntil(fmt.Sprintf("%d push connections on %s", n, g.admin), 60*time.Second, func() bool {
		var v struct {
			Connections int `json:"connections"`
		}
		return g.adminJSON("/admin/push", &v) == nil && v.Connections == n
	})
}

// waitUnregistered waits until the cluster registry no longer lists id.
func waitUnregistered(g *gozerProc, id string) {
	waitUntil(id+" gone from the cluster registry", 30*time.Second, func() bool {
		var v struct {
			Connected bool `json:"connected"`
		}
		return g.adminJSON("/push/"+id, &v) == nil && !v.Connected
	})
}

func mustBroadcast(g *gozerProc, prefix, msg string) {
	resp, err := http.Post("http://"+g.admin+"/push/broadcast?prefix="+prefix, "text/plain", strings.NewReader(msg))
	if err != nil {
		log.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		log.Fatalf("broadcast: %d %s", resp.StatusCode, b)
	}
}

// waitSettled waits until the cluster registry of a fresh Redis is settled:
// a push to an id nobody has is 404, not 503 "recovering".
func waitSettled(g *gozerProc) {
	waitUntil("the cluster registry to settle", 30*time.Second, func() bool {
		resp, err := http.Post("http://"+g.admin+"/push/nobody-at-all", "text/plain", strings.NewReader("x"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 404
	})
}

// profile saves a 3 s CPU profile of g to path (PUSHHIST_PROFILE: a look at
// where the cluster-with-history mode spends its time).
func profile(g *gozerProc, path string) {
	resp, err := http.Get("http://" + g.admin + "/debug/pprof/profile?seconds=3")
	if err != nil {
		log.Printf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		log.Printf("profile: %v", err)
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

// heapAlloc is g's live Go heap after a GC (runtime.MemStats.HeapAlloc), in
// bytes: exact where RSS keeps freed pages the scavenger has not returned yet.
func (g *gozerProc) heapAlloc() int64 { return g.memStat("HeapAlloc", true) }

// mallocs is how many heap objects g allocated so far (MemStats.Mallocs): a
// count that, unlike CPU time, other jobs on the machine do not change.
func (g *gozerProc) mallocs() int64 { return g.memStat("Mallocs", false) }

// memStat reads a runtime.MemStats field from the heap profile's debug=1
// text, after a GC when gc.
func (g *gozerProc) memStat(name string, gc bool) int64 {
	q := "debug=1"
	if gc {
		q += "&gc=1"
	}
	resp, err := http.Get("http://" + g.admin + "/debug/pprof/heap?" + q)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "# "+name+" = "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	log.Fatalf("no %s in the heap profile", name)
	return 0
}

// idleRSS is g's resident memory after a GC (GODEBUG=madvdontneed=1 returns
// freed pages at once), in bytes.
func (g *gozerProc) idleRSS() int64 {
	resp, err := http.Get("http://" + g.admin + "/debug/pprof/heap?gc=1")
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// benchClusterSecret signs the forwards between the bench's nodes
// (push.cluster.secret: a push cluster needs one).
const benchClusterSecret = "bench-push-cluster-secret-0123456789"
