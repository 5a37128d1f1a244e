# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# HAProxy in HTTP mode: one thread pinned to the proxy core, server connections reused.

HAPROXY_PORT=${HAPROXY_PORT:-18083}
BENCH_PORTS+=("$HAPROXY_PORT")

target_haproxy_start() {
  local dir=$WORK/haproxy
  mkdir -p "$dir"
  # "no strict-limits": sandboxes may refuse to raise the fd limit HAProxy computes from
  # maxconn; the bench never needs more than BENCH_IDLE_CONNS + a few hundred fds.
  cat >"$dir/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn $NOFILE
  no strict-limits

defaults
  mode http
  maxconn $NOFILE
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-request 10s
  timeout http-keep-alive 300s
  option forwardfor
  http-reuse always
  # no "log" line: no access log

frontend fe
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend origin

backend origin
  server s1 127.0.0.1:$ORIGIN_PORT
CONF
  bg_start "$dir/haproxy.log" taskset -c "$PROXY_CPU" haproxy -db -f "$dir/haproxy.cfg"
  T_PID=$BG_PID
  T_LOG=$dir/haproxy.log
  T_URL="http://127.0.0.1:$HAPROXY_PORT/"
  T_READY_URL=$T_URL
  T_DESC="HAProxy $(haproxy -v | awk 'NR==1 {print $3}'): nbthread 1, mode http, http-reuse always, no log"
}
