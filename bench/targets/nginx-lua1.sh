# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# nginx + lua-nginx-module with ONE Lua phase: access_by_lua sets request header X-Route
# from the path. The config is the nginx target's (nginx.sh) plus the module; compare
# with gozer-lua1.

NGINX_LUA1_PORT=${NGINX_LUA1_PORT:-18089}
BENCH_PORTS+=("$NGINX_LUA1_PORT")

target_nginx-lua1_prepare() { nginx_lua_prepare; }

target_nginx-lua1_start() {
  nginx_start nginx-lua1 "$NGINX_LUA1_PORT" "$NGINX_LUA_MODULES" "$NGINX_LUA_ACCESS"
  T_WORK=lua1
  T_DESC+=", $(nginx_lua_version) (LuaJIT): access_by_lua_block (X-Route from \$uri)"
}
