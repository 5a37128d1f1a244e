# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# Gozer as it was at BENCH_BASE_REV with gozer-lua3's three Lua filters: a change to the
# Lua path against the revision before it, in the same rounds (the report's line
# "gozer-lua3 / gozer-lua3-base"), as gozer-base does for the plain proxy. Not in any
# suite: name it, e.g.
#   BENCH_BASE_REV=HEAD~1 BENCH_TARGETS="gozer gozer-lua3 gozer-lua3-base nginx nginx-lua3" BENCH_IDLE_CONNS=0 bash bench/run.sh

GOZER_LUA3_BASE_PORT=${GOZER_LUA3_BASE_PORT:-18120}
GOZER_LUA3_BASE_ADMIN_PORT=${GOZER_LUA3_BASE_ADMIN_PORT:-18121}
BENCH_PORTS+=("$GOZER_LUA3_BASE_PORT" "$GOZER_LUA3_BASE_ADMIN_PORT")

target_gozer-lua3-base_start() {
  gozer_base_build || return 1
  local scripts=$WORK/gozer-lua3-base-run/scripts per_ip=$GOZER_PER_IP_OFF
  gozer_write_script "$scripts" inbound 10_route.lua "$GOZER_LUA_ROUTE"
  gozer_write_script "$scripts" outbound 10_gw.lua "$GOZER_LUA_GW"
  gozer_write_script "$scripts" outbound 90_timing.lua "$GOZER_LUA_TIMING"
  grep -rqs max_connections_per_ip "$WORK/gozer-base-src/gateway/config" || per_ip=""
  GOZER_CONF_PER_IP=$per_ip gozer_start gozer-lua3-base "$GOZER_LUA3_BASE_PORT" "$GOZER_LUA3_BASE_ADMIN_PORT" "$scripts" "$WORK/gozer-base" || return 1
  T_WORK=lua3
  T_DESC="Gozer at $(git -C "$REPO" rev-parse --short "$BENCH_BASE_REV"), otherwise as gozer-lua3: event_loops 1, GOMAXPROCS=${GOZER_GOMAXPROCS:-unset (Gozer: event loops + 1)}, access_log off, the same 3 Lua filters, budget 5ms"
}
