# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# The one origin every proxy forwards to: nginx with its own prefix (not the system nginx),
# one worker, answering GET / with a fixed body over long-lived keep-alive connections.
# It is pinned to the load-generator core with wrk, so that the proxy core measures only
# the proxy; run.sh reports the origin's CPU share so one can see it is not the bottleneck.
# $BENCH_CHECK_PATH (lib/work.sh) echoes the X-Route request header it got back as
# X-Bench-Saw-Route: the readiness check's proof that a Lua target set it. wrk never asks
# for that path, so the measured responses stay the same for every target.

ORIGIN_BODY_BYTES=${ORIGIN_BODY_BYTES:-128}
BENCH_PORTS+=("$ORIGIN_PORT")

origin_start() {
  local dir=$WORK/origin body
  mkdir -p "$dir"
  body=$(head -c "$ORIGIN_BODY_BYTES" /dev/zero | tr '\0' 'x')
  cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections $NOFILE; }
http {
  access_log off;
  # Proxies keep their upstream connections for the whole bench: never close them here.
  keepalive_timeout 600s;
  keepalive_requests 1000000000;
  server {
    listen 127.0.0.1:$ORIGIN_PORT backlog=4096;
    location / {
      default_type text/plain;
      return 200 "$body";
    }
    location = $BENCH_SIDE_PATH {
      default_type text/plain;
      return 200 "ok";
    }
    location = $BENCH_CHECK_PATH {
      default_type text/plain;
      add_header X-Bench-Saw-Route \$http_x_route always;
      return 200 "$body";
    }
  }
}
CONF
  bg_start "$dir/stdout.log" taskset -c "$LOADGEN_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
  ORIGIN_PID=$BG_PID
  wait_http origin "$ORIGIN_PID" "http://127.0.0.1:$ORIGIN_PORT/" 15 "$dir/error.log"
}
