# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by tls.sh
# HAProxy terminating TLS: the haproxy target's config (haproxy.sh: one thread, mode http,
# http-reuse always, no log), whose plain listener stays (readiness, and tls.sh's no-TLS
# reference runs), plus a TLS bind in the same frontend with the bench's certificate
# (tls.sh: TLS_CERT_KEY, certificate and key in one PEM file, as HAProxy wants it).
# TLS 1.2 and 1.3, the same suites and groups as nginx-tls (server preference: HAProxy's
# default); resumption by session tickets only: tickets are on by default (keys made at
# start) and tune.ssl.cachesize 0 turns off HAProxy's session-ID cache. For bench/tls.sh.
# (The config repeats haproxy.sh's rather than sourcing it: that file writes and starts
# in one function.) tls_target_prereqs is in nginx-tls.sh.

HAPROXY_TLS_PLAIN_PORT=${HAPROXY_TLS_PLAIN_PORT:-18100}
HAPROXY_TLS_PORT=${HAPROXY_TLS_PORT:-18101}
BENCH_PORTS+=("$HAPROXY_TLS_PLAIN_PORT" "$HAPROXY_TLS_PORT")

target_haproxy-tls_start() {
  local dir=$WORK/haproxy-tls
  tls_target_prereqs || return 1
  mkdir -p "$dir"
  cat >"$dir/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn $NOFILE
  no strict-limits
  tune.ssl.cachesize 0
  ssl-default-bind-options ssl-min-ver TLSv1.2
  ssl-default-bind-ciphers $TLS_CIPHERS12
  ssl-default-bind-ciphersuites $TLS_CIPHERSUITES13

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
  bind 127.0.0.1:$HAPROXY_TLS_PLAIN_PORT
  bind 127.0.0.1:$HAPROXY_TLS_PORT ssl crt $TLS_CERT_KEY curves $TLS_GROUPS
  default_backend origin

backend origin
  server s1 127.0.0.1:$ORIGIN_PORT
CONF
  bg_start "$dir/haproxy.log" taskset -c "$PROXY_CPU" haproxy -db -f "$dir/haproxy.cfg"
  T_PID=$BG_PID
  T_LOG=$dir/haproxy.log
  T_URL="http://127.0.0.1:$HAPROXY_TLS_PLAIN_PORT/"
  T_READY_URL=$T_URL
  T_WORK=plain
  T_TLS_ADDR=127.0.0.1:$HAPROXY_TLS_PORT
  T_PLAIN_ADDR=127.0.0.1:$HAPROXY_TLS_PLAIN_PORT
  T_DESC="HAProxy $(haproxy -v | awk 'NR==1 {print $3}'): nbthread 1, mode http, http-reuse always, no log"
  T_TLS_DESC="bind ssl crt (cert + key PEM) curves $TLS_GROUPS; ssl-min-ver TLSv1.2; ssl-default-bind-ciphers $TLS_CIPHERS12; ssl-default-bind-ciphersuites $TLS_CIPHERSUITES13 (server preference, HAProxy's default); resumption: TLS tickets (default on), tune.ssl.cachesize 0 (no session-ID cache); OpenSSL $(haproxy -vv 2>/dev/null | awk -F': ' '/^Running on OpenSSL version/ { print $2; exit }')"
}
