# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# nginx + lua-nginx-module with THREE Lua phases: access_by_lua (X-Route from the path),
# header_filter_by_lua (X-Gateway: gozer, no Server) and log_by_lua (a clock read at the
# end). The config is the nginx target's plus the module; compare with gozer-lua3.

NGINX_LUA3_PORT=${NGINX_LUA3_PORT:-18091}
BENCH_PORTS+=("$NGINX_LUA3_PORT")

target_nginx-lua3_prepare() { nginx_lua_prepare; }

target_nginx-lua3_start() {
  nginx_start nginx-lua3 "$NGINX_LUA3_PORT" "$NGINX_LUA_MODULES" \
    "$NGINX_LUA_ACCESS"$'\n'"$NGINX_LUA_HEADER"$'\n'"$NGINX_LUA_LOG"
  T_WORK=lua3
  T_DESC+=", $(nginx_lua_version) (LuaJIT): access_by_lua_block (X-Route), header_filter_by_lua_block (X-Gateway, Server = nil), log_by_lua_block (ngx.now())"
}
