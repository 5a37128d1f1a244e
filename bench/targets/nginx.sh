# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# nginx as a reverse proxy: one worker pinned to the proxy core, upstream keep-alive.

NGINX_PORT=${NGINX_PORT:-18082}
BENCH_PORTS+=("$NGINX_PORT")

target_nginx_start() {
  local dir=$WORK/nginx
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections $NOFILE; }
http {
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 1000000000;
  upstream origin {
    server 127.0.0.1:$ORIGIN_PORT;
    keepalive 256;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # Every target tells the origin who the client is, as an edge must.
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CONF
  bg_start "$dir/stdout.log" taskset -c "$PROXY_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
  T_PID=$BG_PID
  T_LOG=$dir/error.log
  T_URL="http://127.0.0.1:$NGINX_PORT/"
  T_READY_URL=$T_URL
  T_DESC="nginx $(nginx -v 2>&1 | sed 's|.*/||'): worker_processes 1, upstream keepalive 256, proxy_http_version 1.1, access_log off"
}
