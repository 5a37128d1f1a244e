# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# Gozer with ONE Lua filter: inbound, sets request header X-Route from the path. The
# config is the gozer target's (gozer.sh) plus filters.dir; compare with nginx-lua1.

GOZER_LUA1_PORT=${GOZER_LUA1_PORT:-18085}
GOZER_LUA1_ADMIN_PORT=${GOZER_LUA1_ADMIN_PORT:-18086}
BENCH_PORTS+=("$GOZER_LUA1_PORT" "$GOZER_LUA1_ADMIN_PORT")

target_gozer-lua1_start() {
  local scripts=$WORK/gozer-lua1-run/scripts
  gozer_write_script "$scripts" inbound 10_route.lua "$GOZER_LUA_ROUTE"
  gozer_start gozer-lua1 "$GOZER_LUA1_PORT" "$GOZER_LUA1_ADMIN_PORT" "$scripts" || return 1
  T_WORK=lua1
  T_DESC+=", 1 Lua filter (inbound 10_route.lua: X-Route from the path), budget 5ms"
}
