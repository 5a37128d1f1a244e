# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# Gozer with THREE Lua filters: inbound 10_route.lua (X-Route from the path), outbound
# 10_gw.lua (X-Gateway: gozer, no Server) and outbound 90_timing.lua (a clock read at the
# end). The config is the gozer target's plus filters.dir; compare with nginx-lua3.

GOZER_LUA3_PORT=${GOZER_LUA3_PORT:-18087}
GOZER_LUA3_ADMIN_PORT=${GOZER_LUA3_ADMIN_PORT:-18088}
BENCH_PORTS+=("$GOZER_LUA3_PORT" "$GOZER_LUA3_ADMIN_PORT")

target_gozer-lua3_start() {
  local scripts=$WORK/gozer-lua3-run/scripts
  gozer_write_script "$scripts" inbound 10_route.lua "$GOZER_LUA_ROUTE"
  gozer_write_script "$scripts" outbound 10_gw.lua "$GOZER_LUA_GW"
  gozer_write_script "$scripts" outbound 90_timing.lua "$GOZER_LUA_TIMING"
  gozer_start gozer-lua3 "$GOZER_LUA3_PORT" "$GOZER_LUA3_ADMIN_PORT" "$scripts" || return 1
  T_WORK=lua3
  T_DESC+=", 3 Lua filters (inbound 10_route.lua; outbound 10_gw.lua: X-Gateway, del Server; outbound 90_timing.lua: ctx.vars.t = ctx.now()), budget 5ms"
}
