# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# Gozer: one event loop, pinned to the proxy core. GOZER_GOMAXPROCS empty leaves Go's
# runtime default (which follows the taskset affinity); run.sh tries both it and 1.
# This target loads NO Lua filters (filters.dir ""; the gateway's default, "scripts",
# would pick up the shipped scripts from the repo): the Lua targets (gozer-lua1.sh,
# gozer-lua3.sh) start from this config and add a scripts dir.

GOZER_PORT=${GOZER_PORT:-18080}
GOZER_ADMIN_PORT=${GOZER_ADMIN_PORT:-18081}
BENCH_PORTS+=("$GOZER_PORT" "$GOZER_ADMIN_PORT")
GOZER_GOMAXPROCS=${GOZER_GOMAXPROCS:-}
GOZER_BUILT="" # "", ok or failed: gozer_build builds once for every Gozer target
GOZER_BUILD_PROBLEM=""

# gozer_build builds the gateway into $WORK/gozer; the gateway is under active work, so
# a failed build is reported as a result (Gozer not measured), not a harness failure.
gozer_build() {
  case $GOZER_BUILT in
    ok) return 0 ;;
    failed) return 1 ;;
  esac
  log "building gozer"
  if ! go build -o "$WORK/gozer" ./gateway/cmd/gozer >"$WORK/gozer-build.log" 2>&1; then
    GOZER_BUILT=failed
    GOZER_BUILD_PROBLEM="does not build: $(head -n 3 "$WORK/gozer-build.log" | tr '\n' ' ')"
    return 1
  fi
  GOZER_BUILT=ok
}

# gozer_start NAME PORT ADMIN_PORT SCRIPTS_DIR [BIN]: write NAME's config (the same for
# every Gozer target but for the filters dir: "" = no Lua filters) and start BIN (default:
# the working tree's build) on it; sets T_*. A target may add to the config through
# GOZER_CONF_ADMIN_EXTRA (keys of listeners.admin, e.g. "pprof: true") and
# GOZER_CONF_ORIGIN_EXTRA (lines under origins.bench, each starting with a newline and
# indented 4 spaces), e.g. `GOZER_CONF_ORIGIN_EXTRA=... gozer_start ...` (gozer-gzip.sh);
# GOZER_CONF_ORIGINS_EXTRA adds whole origins after bench (lines indented 2 spaces, e.g.
# gozer-async.sh's "side"); GOZER_CONF_TOP_EXTRA adds top-level sections (gozer-ratelimit.sh's
# limits:). Unset (every other target), they add nothing.
# The bench's clients are all 127.0.0.1 (the idle-connection run holds thousands), so the
# per-client-IP caps are off; a Gozer older than those keys gets GOZER_CONF_PER_IP="".
GOZER_PER_IP_OFF="  max_connections_per_ip: 0
  max_requests_per_ip: 0"
# The Go filters Gozer builds in (filters/builtin: Server-Timing on every response) run in
# every chain of a Gozer with a filters dir: the Lua targets turn them off
# (filters.disabled), so that they run exactly the bench's Lua logic, as nginx does, and
# their work check lists only it. The names come from the source (`Name() string { return
# "NAME" }`); an unknown name in filters.disabled is harmless (a gozer-base build without one).
GOZER_GO_FILTERS=${GOZER_GO_FILTERS-$(sed -n 's/^func ([A-Za-z0-9_]*) Name() string { return "\([A-Za-z0-9_.-]*\)" }$/\1/p' \
  "$REPO"/filters/builtin/*.go 2>/dev/null | sort -u | paste -sd, -)}

gozer_start() {
  local name=$1 port=$2 admin=$3 scripts=$4 bin=${5:-} dir=$WORK/$1-run
  if [[ -z $bin ]]; then
    if ! gozer_build; then
      WAIT_FAIL_REASON=$GOZER_BUILD_PROBLEM
      return 1
    fi
    bin=$WORK/gozer
  fi
  mkdir -p "$dir"
  # run.sh's BENCH_PROFILE names the targets it takes a CPU profile of: they serve pprof.
  local admin_extra=${GOZER_CONF_ADMIN_EXTRA:-}
  if [[ " ${BENCH_PROFILE:-} " == *" $name "* && $admin_extra != *pprof* ]]; then
    admin_extra+="${admin_extra:+, }pprof: true"
  fi
  cat >"$dir/gozer.yaml" <<CONF
listeners:
  proxy: { addr: "127.0.0.1:$port" }
  admin: { addr: "127.0.0.1:$admin"${admin_extra:+, $admin_extra} }
server:
  event_loops: 1
  max_connections: 200000
  idle_timeout: 300s
${GOZER_CONF_PER_IP-$GOZER_PER_IP_OFF}
log:
  level: warn
  access_log: "off"
filters: { dir: "$scripts", budget: 5ms${GOZER_GO_FILTERS:+, disabled: [$GOZER_GO_FILTERS]} }
origins:
  bench:
    servers: ["127.0.0.1:$ORIGIN_PORT"]
    max_idle_per_server: 256
    max_connections_per_server: 1024${GOZER_CONF_ORIGIN_EXTRA:-}${GOZER_CONF_ORIGINS_EXTRA:-}
routes:
  - path_prefix: "/"
    origin: bench
${GOZER_CONF_TOP_EXTRA:-}
CONF
  local -a envs=()
  [[ -n $GOZER_GOMAXPROCS ]] && envs=("GOMAXPROCS=$GOZER_GOMAXPROCS")
  bg_start "$dir/gozer.log" env "${envs[@]}" taskset -c "$PROXY_CPU" "$bin" -config "$dir/gozer.yaml"
  T_PID=$BG_PID
  T_LOG=$dir/gozer.log
  T_URL="http://127.0.0.1:$port/"
  T_READY_URL="http://127.0.0.1:$admin/healthcheck"
  T_FILTERS_URL="http://127.0.0.1:$admin/admin/filters"
  T_PPROF_URL="http://127.0.0.1:$admin/debug/pprof" # 404 unless listeners.admin.pprof
  T_DESC="Gozer ($(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'no git')): event_loops 1, GOMAXPROCS=${GOZER_GOMAXPROCS:-unset (Gozer: event loops + 1)}, access_log off${scripts:+${GOZER_GO_FILTERS:+, built-in Go filters off (filters.disabled: [$GOZER_GO_FILTERS])}}"
}

target_gozer_start() {
  gozer_start gozer "$GOZER_PORT" "$GOZER_ADMIN_PORT" "" || return 1
  T_WORK=plain
  T_DESC+=", no Lua filters (filters.dir \"\")"
}

# gozer_write_script DIR PHASE FILE BODY: one Lua filter file under DIR/PHASE/.
gozer_write_script() {
  mkdir -p "$1/$2"
  printf '%s\n' "$4" >"$1/$2/$3"
}

# The bench's Lua filters: the logic every *-lua target runs, in Gozer's filter contract.
# (nginx-lua1.sh / nginx-lua3.sh hold the same logic for lua-nginx-module.)
GOZER_LUA_ROUTE='return { name = "route", type = "inbound", order = 10, apply = function(ctx) ctx.req.set_header("X-Route", ctx.req.path) end }'
GOZER_LUA_GW='return { name = "gw", type = "outbound", order = 10, apply = function(ctx) ctx.resp.set_header("X-Gateway", "gozer"); ctx.resp.del_header("Server") end }'
GOZER_LUA_TIMING='return { name = "timing", type = "outbound", order = 90, apply = function(ctx) ctx.vars.t = ctx.now() end }'
