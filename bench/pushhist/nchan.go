package main

import (
	"bufio"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gozer/bench/internal/procfs"
)

// nchanConf is nginx + nchan for the recovery phase, the peer of Gozer's
// history: each device is an EventSource subscriber of its own channel
// (sub?id=ID) and reconnects with Last-Event-ID; pushes are POSTs to
// pub?id=ID. The channel buffer is Gozer's history bounds (push.history:
// max_messages 100, max_age 2m). Memory store, or Redis with %[8]s.
const nchanConf = `load_module %[1]s/ngx_nchan_module.so;
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile %[2]d;
pid %[3]s/nginx.pid;
error_log %[3]s/error.log warn;
events {
  worker_connections %[4]d;
  multi_accept on;
}
http {
  access_log off;
  nchan_shared_memory_size %[5]s;
  nchan_message_buffer_length 100;
  nchan_message_timeout 2m;
  client_body_temp_path %[3]s/body;
  keepalive_timeout 300s;
  keepalive_requests 1000000000;
  %[8]s
  server {
    listen %[6]s backlog=4096;
    location = /sub {
      nchan_subscriber eventsource;
      nchan_channel_id $arg_id;
    }
  }
  server {
    listen %[7]s backlog=4096;
    location = /pub {
      nchan_publisher http;
      nchan_channel_id $arg_id;
    }
    location = /status {
      nchan_stub_status;
    }
  }
}
`

// nchanProc is one nginx + nchan (master and its worker).
type nchanProc struct {
	sub, pub string // host:port of the subscriber and the publisher servers
	pid      int
}

// nchan starts nginx + nchan; rs non-nil keeps its channels in that Redis
// (nchan_redis_url, nchan_use_redis: several nginx share them).
func (w *world) nchan(name string, rs *redisProc) *nchanProc {
	dir := filepath.Join(w.dir, "nchan-"+name)
	if err := os.MkdirAll(filepath.Join(dir, "body"), 0o755); err != nil {
		log.Fatal(err)
	}
	n := &nchanProc{sub: freeAddr(), pub: freeAddr()}
	redisConf := ""
	if rs != nil {
		redisConf = fmt.Sprintf("nchan_redis_url \"redis://%s\";\n  nchan_use_redis on;", rs.addr)
	}
	shm := max(256, *nDev*(*missed+1)*2/1024) // KiB: a message and its channel's share, twice over
	cfg := fmt.Sprintf(nchanConf, *nchanModules, 4*(*nDev)+4096, dir, 2*(*nDev)+1000,
		strconv.Itoa(shm)+"m", n.sub, n.pub, redisConf)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		log.Fatal(err)
	}
	c := w.start("nchan-"+name, "nginx", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", path)
	n.pid = c.Process.Pid
	waitUntil("nchan "+name, 15*time.Second, func() bool { _, err := n.status(); return err == nil })
	return n
}

func (n *nchanProc) cpu() time.Duration { return time.Duration(procfs.CPUNanos(n.pid)) }

func (n *nchanProc) pubURL(id string) string { return "http://" + n.pub + "/pub?id=" + id }

func (n *nchanProc) dial(id, last string) (*device, error) {
	return dialSSE("http://"+n.sub+"/sub?id="+id, last)
}

// status reads nchan_stub_status: "name: value" lines ("shared memory used:
// 1234K", "subscribers: 10", ...), sizes in KiB as nchan prints them.
func (n *nchanProc) status() (map[string]int64, error) {
	resp, err := http.Get("http://" + n.pub + "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("nchan status: %s", resp.Status)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		x, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), "K"), 10, 64)
		if err == nil {
			out[k] = x
		}
	}
	return out, sc.Err()
}

func (n *nchanProc) stat(k string) int64 {
	s, err := n.status()
	if err != nil {
		log.Fatal(err)
	}
	return s[k]
}

// waitSubscribers waits until nchan counts want subscribers.
func (n *nchanProc) waitSubscribers(want int64) {
	waitUntil(fmt.Sprintf("%d nchan subscribers", want), 60*time.Second, func() bool {
		return n.stat("subscribers") == want
	})
}
