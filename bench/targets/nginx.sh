# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# nginx as a reverse proxy: one worker pinned to the proxy core, upstream keep-alive.
# nginx-lua1.sh and nginx-lua3.sh start the same config with lua-nginx-module phases.

NGINX_PORT=${NGINX_PORT:-18082}
BENCH_PORTS+=("$NGINX_PORT")
# Where Debian's nginx dynamic modules live (libnginx-mod-http-lua, libnginx-mod-http-ndk).
NGINX_MODULES_DIR=${NGINX_MODULES_DIR:-/usr/lib/nginx/modules}

# nginx_start NAME PORT MAIN_EXTRA SERVER_EXTRA: write NAME's config (the same for every
# nginx target, plus MAIN_EXTRA at the top, e.g. load_module, and SERVER_EXTRA in the
# server block, e.g. *_by_lua_block) and start it; sets T_*.
nginx_start() {
  local name=$1 port=$2 main_extra=$3 server_extra=$4 dir=$WORK/$1
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
$main_extra
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
    listen 127.0.0.1:$port backlog=4096;
$server_extra
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
  T_URL="http://127.0.0.1:$port/"
  T_READY_URL=$T_URL
  T_DESC="nginx $(nginx -v 2>&1 | sed 's|.*/||'): worker_processes 1, upstream keepalive 256, proxy_http_version 1.1, access_log off"
}

target_nginx_start() {
  nginx_start nginx "$NGINX_PORT" "" ""
  T_WORK=plain
}

# --- lua-nginx-module (the nginx-lua1 and nginx-lua3 targets) ------------------------------

# nginx_lua_prepare installs Debian's lua-nginx-module (with NDK and lua-resty-core, which
# the module loads at start from LuaJIT's default path: no lua_package_path needed) when
# it is missing. (Debian builds the module with LUA_DEFAULT_PATH=/usr/share/lua/5.1.)
nginx_lua_prepare() {
  [[ -e $NGINX_MODULES_DIR/ngx_http_lua_module.so && -e $NGINX_MODULES_DIR/ndk_http_module.so ]] && return 0
  ensure_pkgs libnginx-mod-http-lua
  [[ -e $NGINX_MODULES_DIR/ngx_http_lua_module.so ]] ||
    die "libnginx-mod-http-lua is installed but $NGINX_MODULES_DIR/ngx_http_lua_module.so is not there (set NGINX_MODULES_DIR)"
}

# NDK first: the Lua module depends on it. Absolute paths, as our nginx runs with its own
# prefix (-p), where modules/ does not exist.
NGINX_LUA_MODULES="load_module $NGINX_MODULES_DIR/ndk_http_module.so;
load_module $NGINX_MODULES_DIR/ngx_http_lua_module.so;"
# The same logic as the Gozer Lua targets (gozer.sh), in lua-nginx-module's phases.
NGINX_LUA_ACCESS='    access_by_lua_block { ngx.req.set_header("X-Route", ngx.var.uri) }'
NGINX_LUA_HEADER='    header_filter_by_lua_block { ngx.header["X-Gateway"] = "gozer"; ngx.header["Server"] = nil }'
NGINX_LUA_LOG='    log_by_lua_block { local t = ngx.now() }'

nginx_lua_version() {
  local v
  v=$(dpkg-query -W -f='${Version}' libnginx-mod-http-lua 2>/dev/null | sed 's/^[0-9]*://; s/-.*//')
  echo "lua-nginx-module ${v:-(version unknown)}"
}
