#!/usr/bin/env bash
# The p99 target of async filters (issue 13): "While 1,000 requests wait on a slow side
# service, the p99 of plain proxied requests on the same loop rises by no more than 10%."
#
#   bash bench/asyncwait.sh                      (~4.5 minutes on 2 cores)
#   BENCH_ROUNDS=1 BENCH_DURATION=3 BENCH_WARMUP=1 ASYNC_LOADS=wrk bash bench/asyncwait.sh   (smoke, ~40 s)
#
# One Gozer, built from the working tree, pinned to core 0 with server.event_loops 1, runs
# ONE async Lua filter (inbound 10_asyncwait.lua, async = true): should_filter is true for
# paths under /wait/, and apply makes one side call, ctx.http{ origin = "side",
# path = "/auth?delay=D", timeout = ASYNC_CALL_TIMEOUT } (D from the request path /wait/D),
# then lets the request go on to the bench origin. Every other path ("plain" requests) is
# proxied to the bench origin with no filter work but that should_filter. The side service
# is gateway/cmd/demo-origin's /auth, which waits D before it answers. On core 1: the bench
# origin (run.sh's nginx, targets/origin.sh, 128-byte body), the side demo-origin, the
# holder and the plain load.
#
# Per round (BENCH_ROUNDS, interleaved: baseline, waiting, baseline, waiting ...):
#   baseline  with ASYNC_CONTROL=1 (the default), the control holder first: the same wrk
#             holder as below, aimed at the side service itself (GET /auth?delay=...s on its
#             port, not through Gozer), holds ASYNC_WAITERS requests there, so that the load
#             core carries the same held connections, timers and goroutines in both phases and
#             only Gozer's share differs (with Gozer holding nothing, ASYNC_CONTROL=0
#             ASYNC_WAIT_VIA=side ASYNC_LOADS=wrk BENCH_ROUNDS=8, the load core's own extra work
#             lifted the closed loop's p99 1.15 on medians, 1.12 within rounds, on 2026-12-06);
#             the ramp waits until the side service has counted ASYNC_WAITERS /auth calls (its
#             X-Auth-Calls), and a run counts only if the holder had ASYNC_WAITERS connections
#             at the side service before and after it and none of its requests was answered
#             while it held them; then the plain load, once per ASYNC_LOADS entry:
#               open  bench/slowclients -mode ordinary: an open loop at ASYNC_RATE requests/s
#                     over ASYNC_OPEN_CONNS keep-alive connections, each request timed from
#                     when it was due (no coordinated omission); below capacity, so it
#                     measures how soon Gozer answers, not how much it can do
#               wrk   wrk -t1 -cASYNC_WRK_CONNS --latency: a closed loop (the most the layout
#                     serves; its latency is mostly queueing)
#             -> req/s, p50, p99, Gozer's CPU µs/req (utime+stime from /proc / requests)
#   waiting   the holder (wrk -t1 -cASYNC_WAITERS --timeout, GET /wait/ASYNC_DELAY_SECSs: one
#             request per connection, each waiting ASYNC_DELAY_SECS at the side service, longer
#             than the phase, so none is answered while we measure) starts; once GET
#             /admin/async reports "suspended" >= ASYNC_WAITERS, the same plain loads run
#             again; then the holder stops (its clients leave: Gozer abandons their side
#             calls) and we wait for "suspended" to come back to 0. With ASYNC_WAIT_VIA=side
#             the holder is the control holder instead (Gozer holds nothing).
# A waiting run counts only if "suspended" was >= ASYNC_WAITERS before and after it (with
# ASYNC_WAIT_VIA=side: as a control run) and the holder had none of its requests answered.
# Results: stdout and bench/results/asyncwait-latest.txt (the exact command at the top), a
# timestamped copy, the runs as TSV (asyncwait-latest-runs.tsv). The verdict: p99 with
# waiters / baseline p99 <= ASYNC_TARGET (1.10), from the medians and from the ratios within
# each round; plus the p50 and req/s ratios, CPU µs/req, Gozer's RSS with the waiters, what
# admitting and releasing them cost Gozer, and the CPU the holder took.
#
# Knobs (environment):
#   BENCH_ROUNDS=5           rounds (each: a baseline phase, then a waiting phase)
#   BENCH_DURATION=6         seconds per load run
#   BENCH_WARMUP=3           seconds of each load before the first round (not reported)
#   ASYNC_LOADS="open wrk"   plain loads, in this order in each phase (open, wrk or both)
#   ASYNC_RATE=5000          open loop: requests/s in all (keep it below the wrk run's req/s)
#   ASYNC_OPEN_CONNS=32      open loop: keep-alive connections
#   ASYNC_OPEN_NICE=-10      open loop: the client's niceness, so that the origin, the side
#                            service and the holder on the same core do not delay the client
#                            that times the requests (as slowclients.sh's ordinary client)
#   ASYNC_WRK_CONNS=32       closed loop: wrk connections (wrk -t1)
#   ASYNC_WAITERS=1000       requests held waiting in the async filter
#   ASYNC_DELAY_SECS=50      how long the side service makes each of them wait (must exceed
#                            a waiting phase: ramp + the loads + retries; the script warns)
#   ASYNC_CALL_TIMEOUT=60    the side call's timeout = (seconds; > ASYNC_DELAY_SECS)
#   ASYNC_RAMP_SECS=30       longest wait for "suspended" to reach ASYNC_WAITERS
#   ASYNC_QUIET_WAIT=60      before each phase, wait up to this many seconds until no other
#                            bench/*.sh runs and other jobs leave Gozer's core alone
#                            (<= BENCH_OTHER_CPU_MAX % of it, 3 s in a row); then measure
#                            anyway, and the runs say how disturbed they were. On a machine
#                            where other benchmarks come and go, raise it (e.g. 1800)
#   ASYNC_TARGET=1.10        the verdict's bound on p99 with waiters / baseline
#   ASYNC_CONTROL=1          1: the baseline runs with the control holder (above); 0: the
#                            baseline runs alone (the comparison before 2026-12-06)
#   ASYNC_WAIT_VIA=gozer     side: the waiting phase's holder is the control holder too, so
#                            Gozer holds nothing; with ASYNC_CONTROL=0 that measures what the
#                            held requests cost the load core alone (the harness's own share)
#   ASYNC_GOZER_GOMAXPROCS   GOMAXPROCS for Gozer (default unset: Gozer's own, event loops + 1)
#   ASYNC_PORT_BASE=18680    bench origin BASE, Gozer BASE+1, its admin BASE+2, side BASE+3
#   BENCH_OTHER_CPU_MAX=10   a run during which other jobs took more than this % of Gozer's
#                            core is disturbed: its phase is done again (after waiting for
#                            quiet); medians are over the clean runs if at least half the
#                            rounds have one, else over the least disturbed half
#   BENCH_RETRY_BUDGET=120   seconds of load runs allowed to redo disturbed phases
#   ASYNC_PHASE_TRIES=3      tries per phase at most
#   BENCH_KEEP_TMP=1         keep configs, logs and raw outputs
#
# Exit status: non-zero when the harness failed (a build, the origin, the side service or
# Gozer not starting, the work check failing, a holder (either) never holding ASYNC_WAITERS, a
# listener left behind). Missing the target is a result, not a failure.
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

BENCH_ROUNDS=${BENCH_ROUNDS:-5}
BENCH_DURATION=${BENCH_DURATION:-6}
BENCH_WARMUP=${BENCH_WARMUP:-3}
BENCH_OTHER_CPU_MAX=${BENCH_OTHER_CPU_MAX:-10}
BENCH_RETRY_BUDGET=${BENCH_RETRY_BUDGET:-120}
ASYNC_PHASE_TRIES=${ASYNC_PHASE_TRIES:-3}
BENCH_KEEP_TMP=${BENCH_KEEP_TMP:-0}
ASYNC_LOADS=${ASYNC_LOADS:-open wrk}
ASYNC_RATE=${ASYNC_RATE:-5000}
ASYNC_OPEN_CONNS=${ASYNC_OPEN_CONNS:-32}
ASYNC_OPEN_NICE=${ASYNC_OPEN_NICE:--10}
ASYNC_WRK_CONNS=${ASYNC_WRK_CONNS:-32}
ASYNC_WAITERS=${ASYNC_WAITERS:-1000}
ASYNC_DELAY_SECS=${ASYNC_DELAY_SECS:-50}
ASYNC_CALL_TIMEOUT=${ASYNC_CALL_TIMEOUT:-60}
ASYNC_RAMP_SECS=${ASYNC_RAMP_SECS:-30}
ASYNC_QUIET_WAIT=${ASYNC_QUIET_WAIT:-60}
ASYNC_TARGET=${ASYNC_TARGET:-1.10}
ASYNC_CONTROL=${ASYNC_CONTROL:-1}
ASYNC_WAIT_VIA=${ASYNC_WAIT_VIA:-gozer}
ASYNC_GOZER_GOMAXPROCS=${ASYNC_GOZER_GOMAXPROCS:-}
ASYNC_PORT_BASE=${ASYNC_PORT_BASE:-18680}

for v in BENCH_ROUNDS BENCH_DURATION BENCH_WARMUP BENCH_OTHER_CPU_MAX BENCH_RETRY_BUDGET ASYNC_RATE \
  ASYNC_OPEN_CONNS ASYNC_WRK_CONNS ASYNC_WAITERS ASYNC_DELAY_SECS ASYNC_CALL_TIMEOUT ASYNC_RAMP_SECS ASYNC_QUIET_WAIT ASYNC_PHASE_TRIES ASYNC_PORT_BASE; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a whole number, not '${!v}'" >&2; exit 2; }
done
((BENCH_ROUNDS >= 1 && BENCH_DURATION >= 1 && ASYNC_WAITERS >= 1)) || { echo "BENCH_ROUNDS, BENCH_DURATION and ASYNC_WAITERS must be at least 1" >&2; exit 2; }
((ASYNC_CALL_TIMEOUT > ASYNC_DELAY_SECS)) ||
  { echo "ASYNC_CALL_TIMEOUT ($ASYNC_CALL_TIMEOUT) must exceed ASYNC_DELAY_SECS ($ASYNC_DELAY_SECS): the held calls would time out" >&2; exit 2; }
[[ $ASYNC_CONTROL == [01] ]] || { echo "ASYNC_CONTROL must be 0 or 1, not '$ASYNC_CONTROL'" >&2; exit 2; }
[[ $ASYNC_WAIT_VIA == gozer || $ASYNC_WAIT_VIA == side ]] || { echo "ASYNC_WAIT_VIA must be gozer or side, not '$ASYNC_WAIT_VIA'" >&2; exit 2; }
read -r -a LOADS <<<"$ASYNC_LOADS"
((${#LOADS[@]})) || { echo "ASYNC_LOADS is empty" >&2; exit 2; }
for l in "${LOADS[@]}"; do
  case $l in open | wrk) ;; *) echo "unknown load '$l' in ASYNC_LOADS (open, wrk)" >&2; exit 2 ;; esac
done

ORIGIN_PORT=$ASYNC_PORT_BASE
GOZER_PORT=$((ASYNC_PORT_BASE + 1))
ADMIN_PORT=$((ASYNC_PORT_BASE + 2))
SIDE_PORT=$((ASYNC_PORT_BASE + 3))
BENCH_PORTS=() # targets/origin.sh adds the origin's
ORIGIN_BODY_BYTES=${ORIGIN_BODY_BYTES:-128}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh
# shellcheck source=bench/lib/measure.sh
source bench/lib/measure.sh
# shellcheck source=bench/lib/work.sh
source bench/lib/work.sh # BENCH_CHECK_PATH, BENCH_SIDE_PATH: the origin's paths
# shellcheck source=bench/targets/origin.sh
source bench/targets/origin.sh
for f in log warn die ensure_cmds raise_nofile bg_start stop_pid stop_all_started bench_exit_setup alive \
  cpu_ticks cores_busy_ticks rss_kib wait_http port_in_use check_ports_released pick_by_other \
  to_us median ratio num origin_start; do
  declare -F "$f" >/dev/null || { echo "bench/lib or bench/targets/origin.sh no longer defines $f, which bench/asyncwait.sh uses" >&2; exit 1; }
done

# The command that reproduces this run: the main knobs always, the others when changed.
COMMAND="BENCH_ROUNDS=$BENCH_ROUNDS BENCH_DURATION=$BENCH_DURATION ASYNC_LOADS=\"$ASYNC_LOADS\" ASYNC_RATE=$ASYNC_RATE ASYNC_WAITERS=$ASYNC_WAITERS ASYNC_DELAY_SECS=$ASYNC_DELAY_SECS"
for kv in "BENCH_WARMUP 3" "ASYNC_OPEN_CONNS 32" "ASYNC_OPEN_NICE -10" "ASYNC_WRK_CONNS 32" "ASYNC_CALL_TIMEOUT 60" "ASYNC_RAMP_SECS 30" "ASYNC_QUIET_WAIT 60" \
  "ASYNC_TARGET 1.10" "ASYNC_CONTROL 1" "ASYNC_WAIT_VIA gozer" "ASYNC_GOZER_GOMAXPROCS " "ASYNC_PORT_BASE 18680" "BENCH_OTHER_CPU_MAX 10" "BENCH_RETRY_BUDGET 120" "ASYNC_PHASE_TRIES 3"; do
  name=${kv%% *}
  [[ ${!name} == "${kv#* }" ]] || COMMAND+=" $name='${!name}'"
done
COMMAND+=" bash bench/asyncwait.sh"

# A phase with a holder (waiting, and baseline with the control) must end before the held
# requests are answered: ramp (a few seconds), each load once, perhaps a redo each, and the
# admin polls between.
PHASE_SECS=$((5 + 2 * ${#LOADS[@]} * (BENCH_DURATION + 1)))
if ((ASYNC_DELAY_SECS < PHASE_SECS + 5)); then
  echo "WARNING: ASYNC_DELAY_SECS=$ASYNC_DELAY_SECS may not outlast a phase with a holder (~${PHASE_SECS}s): runs whose held requests were answered before they ended do not count" >&2
fi

# --- machine, limits, temp dir, cleanup --------------------------------------------------

command -v go >/dev/null || die "go is not on PATH"
ensure_cmds nginx:nginx wrk:wrk curl:curl taskset:util-linux pgrep:procps ss:iproute2 awk:gawk
raise_nofile 65536
NOFILE=$(ulimit -n)
# Gozer: a client and a side connection per waiter; the holder: one per waiter.
((NOFILE >= 2 * ASYNC_WAITERS + 1000)) || die "open-file limit $NOFILE < $((2 * ASYNC_WAITERS + 1000)) needed for ASYNC_WAITERS=$ASYNC_WAITERS"

NCPU=$(nproc) # before this shell pins itself to one core
if ((NCPU >= 2)); then
  PROXY_CPU=0 LOADGEN_CPU=1
  BENCH_CORES=(0 1)
else
  PROXY_CPU=0 LOADGEN_CPU=0
  BENCH_CORES=(0)
  warn "one core only: Gozer and the load side share it; ratios still mean something, absolute figures do not"
fi

# Other benchmarks on this machine spoil each other's figures: say so (the report does too).
OTHER_BENCHES=$(pgrep -af 'bench/(compress|run|tls|slowclients|push|isolation)\.sh' 2>/dev/null | awk '{ $1 = ""; print }' | sort -u | tr '\n' ';' || true)
[[ -z $OTHER_BENCHES ]] || warn "other benchmarks are running: $OTHER_BENCHES (the report says so)"

WORK=$(mktemp -d /tmp/gozer-asyncwait.XXXXXX)
RUNS_TSV=$WORK/runs.tsv
HOLD_TSV=$WORK/holds.tsv
bench_exit_setup "$BENCH_KEEP_TMP"

# forget_pid PID: a process we stopped is gone; drop it so that the cleanup never signals
# a later process that happens to get the same pid.
forget_pid() {
  local p=$1 x keep=()
  for x in "${STARTED_PIDS[@]}"; do [[ $x == "$p" ]] || keep+=("$x"); done
  STARTED_PIDS=("${keep[@]}")
  printf '%s\n' "${STARTED_PIDS[@]}" >"$PIDS_FILE"
}

for p in "$ORIGIN_PORT" "$GOZER_PORT" "$ADMIN_PORT" "$SIDE_PORT"; do
  if port_in_use "$p"; then die "port $p is already in use (a previous run still up? ASYNC_PORT_BASE moves them)"; fi
done

# --- build -------------------------------------------------------------------------------

log "building gozer (working tree), demo-origin and bench/slowclients"
go build -o "$WORK/gozer" ./gateway/cmd/gozer >"$WORK/build.log" 2>&1 ||
  { cat "$WORK/build.log" >&2; die "gozer does not build"; }
GOZER_REV="$(git describe --always --dirty 2>/dev/null || echo 'no git') (working tree)"
go build -o "$WORK/demo-origin" ./gateway/cmd/demo-origin >>"$WORK/build.log" 2>&1 ||
  { cat "$WORK/build.log" >&2; die "demo-origin does not build"; }
go build -o "$WORK/slowclients" ./bench/slowclients >>"$WORK/build.log" 2>&1 ||
  { cat "$WORK/build.log" >&2; die "bench/slowclients does not build"; }

# From here on this shell and all it starts run on the load core; Gozer alone is moved to
# its own, so that whatever else runs on core 0 is other jobs.
taskset -cp "$LOADGEN_CPU" $$ >/dev/null || warn "could not pin the harness to core $LOADGEN_CPU"

# --- origin, side service, Gozer ---------------------------------------------------------

# with_retry WHAT CMD...: the ephemeral port range here may be 1024-65535, so another job's
# outgoing connection can hold one of our ports for a moment: a start that failed with
# "address already in use" is tried again, up to 5 times 2 s apart (as tls.sh does).
with_retry() {
  local what=$1 i
  shift
  for ((i = 1; i <= 5; i++)); do
    "$@" && return 0
    grep -qsi 'address already in use' "$WORK"/origin/error.log "$WORK"/side.log "$WORK"/gozer.log || return 1
    warn "$what: address already in use; trying again in 2 s ($i/5)"
    sleep 2
  done
  return 1
}

side_start() {
  bg_start "$WORK/side.log" taskset -c "$LOADGEN_CPU" "$WORK/demo-origin" -addr "127.0.0.1:$SIDE_PORT" -name side
  SIDE_PID=$BG_PID
  wait_http side "$SIDE_PID" "http://127.0.0.1:$SIDE_PORT/status?code=200" 15 "$WORK/side.log"
}

log "starting the bench origin (nginx) on 127.0.0.1:$ORIGIN_PORT, core $LOADGEN_CPU"
with_retry origin origin_start || die "the bench origin did not start"

log "starting the side service (demo-origin /auth) on 127.0.0.1:$SIDE_PORT, core $LOADGEN_CPU"
with_retry side side_start || die "the side service did not start"

mkdir -p "$WORK/scripts/inbound"
# The filter: /wait/D waits D at the side service (D like "50s"; anything else: ASYNC_DELAY_SECS).
cat >"$WORK/scripts/inbound/10_asyncwait.lua" <<LUA
-- bench/asyncwait.sh: requests under /wait/ wait at the side service, the rest pass.
return {
  name = "asyncwait",
  type = "inbound",
  order = 10,
  async = true,
  should_filter = function(ctx) return string.sub(ctx.req.path, 1, 6) == "/wait/" end,
  apply = function(ctx)
    local delay = string.match(ctx.req.path, "^/wait/(%d+m?s)$") or "${ASYNC_DELAY_SECS}s"
    local res, err = ctx.http{ origin = "side", path = "/auth?delay=" .. delay,
                               headers = { Authorization = "Bearer allow:bench" }, timeout = $ASYNC_CALL_TIMEOUT }
    if res == nil then ctx.respond(502, "side call failed: " .. err .. "\n") return end
    ctx.req.set_header("X-User", res.header("X-Auth-User") or "")
  end,
}
LUA

SIDE_CONNS=$((ASYNC_WAITERS * 2 > 4096 ? ASYNC_WAITERS * 2 : 4096))
MAX_SUSPENDED=$((ASYNC_WAITERS * 2 > 4000 ? ASYNC_WAITERS * 2 : 4000))
GOZER_YAML=$WORK/gozer.yaml
cat >"$GOZER_YAML" <<CONF
# Written by bench/asyncwait.sh: the gozer target of run.sh (targets/gozer.sh) plus the
# async filter and its side origin.
listeners:
  proxy: { addr: "127.0.0.1:$GOZER_PORT" }
  admin: { addr: "127.0.0.1:$ADMIN_PORT" }
server:
  event_loops: 1
  max_connections: 200000
  idle_timeout: 300s
  max_connections_per_ip: 0
  max_requests_per_ip: 0
log:
  level: warn
  access_log: "off"
filters:
  dir: "$WORK/scripts"
  budget: 5ms
  max_suspended: $MAX_SUSPENDED
  # The built-in Go filters (CORS, Server-Timing on every response) off: plain requests run
  # nothing but the bench filter's should_filter.
  disabled: [cors, cors_response, server_timing]
origins:
  bench:
    servers: ["127.0.0.1:$ORIGIN_PORT"]
    max_idle_per_server: 256
    max_connections_per_server: 1024
  # The slow side service: room for every waiter (connections, no concurrency cap), no
  # retries, no breaker (abandoned calls must not open it), a read timeout past the delay.
  side:
    servers: ["127.0.0.1:$SIDE_PORT"]
    read_timeout: $((ASYNC_CALL_TIMEOUT + 10))s
    retries: 0
    max_connections_per_server: $SIDE_CONNS
    max_idle_per_server: 64
    max_concurrent_requests: 0
    breaker: { enabled: false }
routes:
  - path_prefix: "/"
    origin: bench
CONF
"$WORK/gozer" -check -config "$GOZER_YAML" >"$WORK/check.log" 2>&1 ||
  { cat "$WORK/check.log" >&2; die "Gozer refuses the config $GOZER_YAML"; }

log "starting gozer on core $PROXY_CPU (event_loops 1, GOMAXPROCS ${ASYNC_GOZER_GOMAXPROCS:-unset})"
envs=()
[[ -n $ASYNC_GOZER_GOMAXPROCS ]] && envs=("GOMAXPROCS=$ASYNC_GOZER_GOMAXPROCS")
gozer_start() {
  bg_start "$WORK/gozer.log" env ${envs[@]+"${envs[@]}"} taskset -c "$PROXY_CPU" "$WORK/gozer" -config "$GOZER_YAML"
  GOZER_PID=$BG_PID
  wait_http gozer "$GOZER_PID" "http://127.0.0.1:$ADMIN_PORT/healthcheck" 30 "$WORK/gozer.log"
}
with_retry gozer gozer_start || die "gozer did not start"
wait_http "gozer (through to the origin)" "$GOZER_PID" "http://127.0.0.1:$GOZER_PORT/" 10 "$WORK/gozer.log" ||
  die "gozer does not reach the origin"
PLAIN_URL="http://127.0.0.1:$GOZER_PORT/"
WAIT_URL="http://127.0.0.1:$GOZER_PORT/wait/${ASYNC_DELAY_SECS}s"
CONTROL_URL="http://127.0.0.1:$SIDE_PORT/auth?delay=${ASYNC_DELAY_SECS}s"

# suspended prints GET /admin/async's "suspended" (requests waiting in async filters), or "?".
suspended() {
  local n
  n=$(curl -s -m 2 "http://127.0.0.1:$ADMIN_PORT/admin/async" 2>/dev/null |
    awk '/"suspended":/ { v = $0; sub(/.*"suspended":[ \t]*/, "", v); sub(/[^0-9].*/, "", v); print v; exit }') || true
  echo "${n:-?}"
}

# control_held prints how many connections the running holder has open to the side service
# (the control's requests wait there, not in Gozer): 0 without a holder, "?" when ss fails.
control_held() {
  local out
  [[ -n $HOLDER_PID ]] || { echo 0; return; }
  out=$(ss -Htnp state established "( dport = :$SIDE_PORT )" 2>/dev/null) || { echo '?'; return; }
  grep -c "pid=$HOLDER_PID," <<<"$out" || true
}

# hold_kind PHASE prints the holder a phase runs with: wait (through Gozer), control (at the
# side service itself) or none.
hold_kind() {
  case $1-$ASYNC_CONTROL-$ASYNC_WAIT_VIA in
    wait-*-gozer) echo wait ;;
    wait-*-side | base-1-*) echo control ;;
    *) echo none ;;
  esac
}

# held PHASE prints what holds requests during PHASE: the control holder's connections at the
# side service, else the requests suspended in Gozer.
held() {
  if [[ $(hold_kind "$1") == control ]]; then control_held; else suspended; fi
}

# side_calls prints how many /auth requests the side service has served (a direct call, counted too).
side_calls() {
  curl -s -m 2 -D - -o /dev/null "http://127.0.0.1:$SIDE_PORT/auth" 2>/dev/null |
    awk 'BEGIN { RS = "\r?\n" } tolower($1) == "x-auth-calls:" { print $2; exit }'
}

# --- work check ---------------------------------------------------------------------------

# Plain requests must pass untouched (the origin sees no X-User), a /wait/ request must wait
# at the side service (one /auth call, the delay) and then reach the origin, and Gozer must
# list exactly the one filter, with nothing suspended at rest.
work_check_asyncwait() {
  local problems=() hdrs code t0 t1 c0 c1 got susp max
  hdrs=$(curl -s -m 5 -D - -o "$WORK/check-plain.body" "$PLAIN_URL") || problems+=("GET / gave no answer")
  code=$(awk 'NR == 1 { print $2 }' <<<"$hdrs")
  [[ $code == 200 ]] || problems+=("GET / answered '$code', not 200")
  [[ $(wc -c <"$WORK/check-plain.body") -eq $ORIGIN_BODY_BYTES ]] || problems+=("GET / body is not the origin's $ORIGIN_BODY_BYTES bytes")
  c0=$(side_calls)
  t0=$(date +%s%N)
  code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GOZER_PORT/wait/1s") || code=none
  t1=$(date +%s%N)
  c1=$(side_calls)
  [[ $code == 200 ]] || problems+=("GET /wait/1s answered '$code', not 200")
  (((t1 - t0) / 1000000 >= 1000)) || problems+=("GET /wait/1s took $(((t1 - t0) / 1000000)) ms, not at least the 1 s delay")
  [[ -n $c0 && -n $c1 ]] && ((c1 - c0 == 2)) ||
    problems+=("the side service counted $((${c1:-0} - ${c0:-0} - 1)) /auth calls for one /wait/ request, not 1")
  got=$(gozer_filter_stats "http://127.0.0.1:$ADMIN_PORT/admin/filters" | awk '$5 == "false" { print $1 }' | sort | tr '\n' ' ' | sed 's/ $//')
  [[ $got == asyncwait ]] || problems+=("GET /admin/filters lists [$got], want [asyncwait]")
  susp=$(suspended)
  [[ $susp == 0 ]] || problems+=("GET /admin/async: suspended $susp at rest, not 0")
  max=$(curl -s -m 2 "http://127.0.0.1:$ADMIN_PORT/admin/async" |
    awk '/"max_suspended_per_loop":/ { v = $0; sub(/.*:[ \t]*/, "", v); sub(/[^0-9].*/, "", v); print v; exit }')
  [[ -n $max ]] && ((max >= ASYNC_WAITERS)) || problems+=("GET /admin/async: max_suspended_per_loop '$max' < $ASYNC_WAITERS")
  if ((${#problems[@]})); then
    WORK_FAIL_REASON=$(printf '%s; ' "${problems[@]}")
    return 1
  fi
  WORK_NOTE_ASYNC="GET / 200 with the origin's $ORIGIN_BODY_BYTES bytes; GET /wait/1s 200 after $(((t1 - t0) / 1000000)) ms and one /auth call at the side service; /admin/filters: [asyncwait]; /admin/async: suspended 0, max_suspended_per_loop $max"
}
work_check_asyncwait || die "the bench does not do its work: $WORK_FAIL_REASON"
log "work check: $WORK_NOTE_ASYNC"

# --- measurements -------------------------------------------------------------------------

# One line per load run.
printf 'phase\tload\tround\treq_s\tp50_us\tp99_us\tcpu_us_req\tgozer_pct\torigin_pct\tside_pct\tholder_pct\tclient_pct\tother_proxy_pct\tother_all_pct\tdisturbed\terrors\trequests\theld_before\theld_after\theld\trss_kib\tlate\tmax_us\tdetail\n' >"$RUNS_TSV"
# One line per waiting phase.
printf 'round\tramp_s\tsusp_held\trss_before_kib\trss_held_kib\tgozer_admit_ms\tholder_cpu_ms\tholder_life_s\tside_cpu_ms\trelease_s\tgozer_release_ms\tsusp_after_release\tholder_note\n' >"$HOLD_TSV"

HOLDER_PID=""

# jnum KEY FILE prints a number field of the JSON line in FILE.
jnum() { grep -o "\"$1\":[-0-9.e+]*" "$2" | head -n 1 | cut -d: -f2; }

# load_run PHASE LOAD ROUND [SECS]: one run of a plain load against Gozer while reading the
# CPU time of every process of the bench and of both cores; appends a line to $RUNS_TSV.
# Sets LAST_OTHER0 (other jobs on Gozer's core, % of it). Returns non-zero if the load gave
# no result.
load_run() {
  local phase=$1 load=$2 round=$3 secs=${4:-$BENCH_DURATION}
  local out=$WORK/$phase-$load-$round.txt g0 g1 o0 o1 d0 d1 h0=0 h1=0 bp0 bp1 ba0 ba1 t0 t1 s0 s1 lpid rc=0 hpid=$HOLDER_PID
  s0=$(held "$phase")
  g0=$(cpu_ticks "$GOZER_PID"); o0=$(cpu_ticks "$ORIGIN_PID"); d0=$(cpu_ticks "$SIDE_PID")
  [[ -n $hpid ]] && h0=$(cpu_ticks "$hpid")
  bp0=$(cores_busy_ticks "$PROXY_CPU"); ba0=$(cores_busy_ticks "${BENCH_CORES[@]}"); t0=$(date +%s%N)
  (
    rc=0
    case $load in
      wrk) wrk -t1 -c"$ASYNC_WRK_CONNS" -d"${secs}s" --latency "$PLAIN_URL" >"$out" 2>&1 || rc=$? ;;
      open) nice -n "$ASYNC_OPEN_NICE" "$WORK/slowclients" -mode ordinary -target "127.0.0.1:$GOZER_PORT" -path / -c "$ASYNC_OPEN_CONNS" \
        -ordinary-rate "$ASYNC_RATE" -d "${secs}s" -timeout 5s -debug-header "" >"$out" 2>&1 || rc=$? ;;
    esac
    times >"$out.times"
    exit "$rc"
  ) &
  lpid=$!
  wait "$lpid" || rc=$?
  t1=$(date +%s%N); bp1=$(cores_busy_ticks "$PROXY_CPU"); ba1=$(cores_busy_ticks "${BENCH_CORES[@]}")
  g1=$(cpu_ticks "$GOZER_PID"); o1=$(cpu_ticks "$ORIGIN_PID"); d1=$(cpu_ticks "$SIDE_PID")
  [[ -n $hpid ]] && h1=$(cpu_ticks "$hpid")
  s1=$(held "$phase")
  ((rc == 0)) || warn "$load exited with status $rc ($phase round $round)"

  local requests rps p50 p99 maxl errors late=- detail
  if [[ $load == wrk ]]; then
    requests=$(awk '/ requests in / { print $1; exit }' "$out")
    rps=$(awk '/^Requests\/sec:/ { print $2; exit }' "$out")
    p50=$(to_us "$(awk '$1 == "50%" { print $2; exit }' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" { print $2; exit }' "$out")")
    maxl=$(to_us "$(awk '$1 == "Latency" { print $4; exit }' "$out")")
    errors=$(awk '/Socket errors:/ { gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) s += $i }
                  /Non-2xx or 3xx responses:/ { s += $NF } END { print s + 0 }' "$out")
    detail=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); se = $0 } /Non-2xx or 3xx responses:/ { nx = $NF }
                  END { if (se != "" || nx != "") printf "%s; non-2xx %d", (se == "" ? "no socket errors" : se), nx }' "$out")
  else
    requests=$(jnum requests "$out")
    rps=$(jnum rate "$out")
    p50=$(awk -v v="$(jnum p50_ms "$out")" 'BEGIN { if (v != "") printf "%.0f", v * 1000 }')
    p99=$(awk -v v="$(jnum p99_ms "$out")" 'BEGIN { if (v != "") printf "%.0f", v * 1000 }')
    maxl=$(awk -v v="$(jnum max_ms "$out")" 'BEGIN { if (v != "") printf "%.0f", v * 1000 }')
    errors=$(awk -v r="$requests" -v s="$(jnum successes "$out")" 'BEGIN { print r - s }')
    late=$(jnum late "$out")
    detail=$(grep -o '"failures":{[^}]*},"transport_errors":{[^}]*}' "$out" | head -n 1 | tr '\t' ' ')
  fi
  if [[ -z $requests || -z $rps || ${requests:-0} -eq 0 ]]; then
    warn "$load against gozer ($phase round $round) produced no result:"
    sed 's/^/    /' "$out" >&2
    return 1
  fi
  local client_s held=- line
  client_s=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$out.times")
  if [[ $(hold_kind "$phase") != none ]]; then
    held=no
    [[ $s0 =~ ^[0-9]+$ && $s1 =~ ^[0-9]+$ ]] && ((s0 >= ASYNC_WAITERS && s1 >= ASYNC_WAITERS)) && held=yes
  fi
  line=$(awk -v phase="$phase" -v load="$load" -v round="$round" -v req="$requests" -v rps="$rps" -v p50="$p50" -v p99="$p99" \
    -v dg=$((g1 - g0)) -v dor=$((o1 - o0)) -v dd=$((d1 - d0)) -v dh=$((h1 - h0)) -v bp=$((bp1 - bp0)) -v ba=$((ba1 - ba0)) \
    -v tck="$CLK_TCK" -v wall=$(((t1 - t0) / 1000)) -v cl="$client_s" -v err="$errors" -v max="$BENCH_OTHER_CPU_MAX" \
    -v s0="$s0" -v s1="$s1" -v held="$held" -v rss="$(rss_kib "$GOZER_PID")" -v late="${late:--}" -v maxl="${maxl:--}" \
    -v one=$((PROXY_CPU == LOADGEN_CPU)) -v detail="${detail:--}" 'BEGIN {
      u = 1e6 / tck
      g = dg * u; o = dor * u; d = dd * u; h = dh * u; c = cl * 1e6
      other0 = 100 * (bp * u - g - (one ? o + d + h + c : 0)) / wall
      otherall = 100 * (ba * u - g - o - d - h - c) / wall
      printf "%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
        phase, load, round, rps, p50, p99, g / req, 100 * g / wall, 100 * o / wall, 100 * d / wall, 100 * h / wall, 100 * c / wall,
        other0, otherall, (other0 > max ? "yes" : "no"), err, req, s0, s1, held, rss, late, maxl, detail }')
  printf '%s\n' "$line" >>"$RUNS_TSV"
  LAST_OTHER0=$(cut -f13 <<<"$line")
  awk -F'\t' '{ printf "    %-4s %-4s r%-2s %7s req/s  p50 %6sus  p99 %6sus  max %7sus  %6s us/req  gozer %5s%%  client %5s%%  holder %4s%%  other(core0) %5s%%%s  held %s->%s  errors %s%s\n",
    $1, $2, $3, $4, $5, $6, $23, $7, $8, $12, $11, $13, ($15 == "yes" ? " (DISTURBED)" : ""), $18, $19, $16, ($20 == "no" ? "  NOT HELD" : "") }' <<<"$line" >&2
}

# hold_start ROUND [KIND]: the holder opens ASYNC_WAITERS connections, each with one request
# that waits ASYNC_DELAY_SECS at the side service: KIND wait (the default), GET /wait/... through
# Gozer's async filter, until Gozer reports that many suspended (the ramp is recorded in
# HOLD_*); KIND control, GET /auth?delay=... at the side service itself, until the side
# service has counted that many /auth calls more (X-Auth-Calls, which counts a call as it
# starts waiting; each probe counts itself) and the holder has that many connections there.
# HOLD_ROW0 is the runs table's length: hold_stop marks the runs after it.
hold_start() {
  local round=$1 kind=${2:-wait} end t0 g0 n="?" url=$WAIT_URL c0 c probes=0
  [[ $kind == control ]] && url=$CONTROL_URL
  HOLD_ROW0=$(wc -l <"$RUNS_TSV")
  c0=$(side_calls)
  [[ $c0 =~ ^[0-9]+$ ]] || die "the side service does not report its /auth calls (X-Auth-Calls)"
  HOLD_RSS0=$(rss_kib "$GOZER_PID")
  g0=$(cpu_ticks "$GOZER_PID"); HOLD_SIDE0=$(cpu_ticks "$SIDE_PID")
  t0=$(date +%s%N)
  HOLD_OUT=$WORK/holder-$kind-$round.txt
  bg_start "$HOLD_OUT" taskset -c "$LOADGEN_CPU" wrk -t1 -c"$ASYNC_WAITERS" -d3600s \
    --timeout "$((ASYNC_CALL_TIMEOUT + 60))s" "$url"
  HOLDER_PID=$BG_PID
  HOLD_T0=$t0
  end=$((SECONDS + ASYNC_RAMP_SECS))
  while :; do
    if [[ $kind == control ]]; then
      c=$(side_calls) probes=$((probes + 1)) n="?"
      # The calls counted first: their connections are all made by then.
      [[ $c =~ ^[0-9]+$ ]] && ((c - c0 - probes >= ASYNC_WAITERS)) && n=$(control_held)
    else
      n=$(suspended)
    fi
    if [[ $n =~ ^[0-9]+$ ]] && ((n >= ASYNC_WAITERS)); then break; fi
    alive "$HOLDER_PID" || die "the holder (wrk) exited: $(tail -n 5 "$HOLD_OUT")"
    alive "$GOZER_PID" || die "gozer died while the holder ramped up: $(tail -n 5 "$WORK/gozer.log")"
    if ((SECONDS >= end)); then
      [[ $kind == control ]] && die "the control holder has $((${c:-$c0} - c0 - probes)) calls waiting at the side service and $n connections there, not $ASYNC_WAITERS, ${ASYNC_RAMP_SECS}s after it started"
      die "Gozer reports suspended $n, not $ASYNC_WAITERS, ${ASYNC_RAMP_SECS}s after the holder started (gozer log: $(tail -n 3 "$WORK/gozer.log" | tr '\n' ' '))"
    fi
    sleep 0.1
  done
  if [[ $kind == control ]]; then
    sleep 1 # as for the waiters: the connects settle first
    log "  control: $n requests waiting at the side service itself, $(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')s after the holder started"
    return 0
  fi
  HOLD_RAMP=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  HOLD_ADMIT=$(awk -v d=$(($(cpu_ticks "$GOZER_PID") - g0)) -v tck="$CLK_TCK" 'BEGIN { printf "%.0f", d * 1000 / tck }')
  HOLD_SUSP=$n
  sleep 1 # let the dials and the first GC after the burst settle
  HOLD_RSS1=$(rss_kib "$GOZER_PID")
  log "  $HOLD_SUSP requests suspended ${HOLD_RAMP}s after the holder started (Gozer: ${HOLD_ADMIT} ms CPU to admit them; RSS ${HOLD_RSS0} -> ${HOLD_RSS1} KiB)"
}

# hold_stop ROUND [KIND]: the holder stops (SIGINT: wrk prints its summary and closes its
# connections); for KIND wait, Gozer abandons the waiting requests: wait until none is
# suspended, and record the phase in HOLD_TSV.
hold_stop() {
  local round=$1 kind=${2:-wait} hcpu life g0 t0 end n="?" side note
  hcpu=$(awk -v d="$(cpu_ticks "$HOLDER_PID")" -v tck="$CLK_TCK" 'BEGIN { printf "%.0f", d * 1000 / tck }')
  side=$(awk -v d=$(($(cpu_ticks "$SIDE_PID") - HOLD_SIDE0)) -v tck="$CLK_TCK" 'BEGIN { printf "%.0f", d * 1000 / tck }')
  life=$(awk -v a="$HOLD_T0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  g0=$(cpu_ticks "$GOZER_PID"); t0=$(date +%s%N)
  kill -INT "$HOLDER_PID" 2>/dev/null || true
  end=$((SECONDS + 10))
  while alive "$HOLDER_PID" && ((SECONDS < end)); do sleep 0.1; done
  stop_pid "$HOLDER_PID"
  forget_pid "$HOLDER_PID"
  HOLDER_PID=""
  # What the holder got: a request answered while held is a waiter that left early.
  note=$(awk '/ requests in / { r = $1 } /Non-2xx/ { n = $NF } /Socket errors/ { sub(/.*Socket errors: /, ""); s = $0 }
    END { printf "%s answered while held%s%s", (r == "" ? "?" : r), (n ? ", " n " non-2xx" : ""), (s != "" ? ", socket errors: " s : "") }' "$HOLD_OUT")
  # A held request answered (or a holder that gave no count) means the phase did not hold
  # what it claims all through: its runs do not count.
  local answered=${note%% *} # the note's count, or "?"
  if [[ $answered != 0 ]]; then
    warn "the holder had $answered requests answered while it held them (?: it gave no count): the runs of this phase do not count"
    awk -F'\t' -v OFS='\t' -v from="$HOLD_ROW0" 'NR > from { $20 = "no" } { print }' "$RUNS_TSV" >"$RUNS_TSV.tmp"
    mv "$RUNS_TSV.tmp" "$RUNS_TSV"
  fi
  if [[ $kind == control ]]; then
    log "  control holder stopped after ${life}s ($hcpu ms CPU; $note)"
    sleep 1 # the side service's goroutines end before the waiting phase
    return 0
  fi
  end=$((SECONDS + 30))
  while :; do
    n=$(suspended)
    [[ $n == 0 ]] && break
    if ((SECONDS >= end)); then
      warn "Gozer still reports suspended $n 30 s after the holder left"
      break
    fi
    sleep 0.1
  done
  local rel gcpu
  rel=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  gcpu=$(awk -v d=$(($(cpu_ticks "$GOZER_PID") - g0)) -v tck="$CLK_TCK" 'BEGIN { printf "%.0f", d * 1000 / tck }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$HOLD_RAMP" "$HOLD_SUSP" "$HOLD_RSS0" "$HOLD_RSS1" \
    "$HOLD_ADMIT" "$hcpu" "$life" "$side" "$rel" "$gcpu" "$n" "$note" >>"$HOLD_TSV"
  log "  holder stopped after ${life}s ($hcpu ms CPU; $note); suspended back to $n in ${rel}s (Gozer: ${gcpu} ms CPU to release them)"
  alive "$GOZER_PID" || die "gozer died when the waiters left: $(tail -n 5 "$WORK/gozer.log")"
  sleep 1 # the closes and the side connections' teardown stay out of the next baseline
}

# other_bench prints the command line of another benchmark of this repository's kind that
# is running now (its proxies would share Gozer's core), or nothing.
other_bench() {
  pgrep -af 'bench/(compress|run|tls|slowclients|push|isolation)\.sh' 2>/dev/null | awk '{ $1 = ""; sub(/^ /, ""); print; exit }' || true
}

# wait_quiet: before a phase, wait up to ASYNC_QUIET_WAIT seconds until no other benchmark
# runs and other jobs have left Gozer's core alone (at most BENCH_OTHER_CPU_MAX % of it,
# Gozer's own CPU time aside: everything else of this bench is on the load core) for 3
# seconds in a row. Counts the time waited.
QUIET_WAITED=0 QUIET_GAVE_UP=0
wait_quiet() {
  local end=$((SECONDS + ASYNC_QUIET_WAIT)) start=$SECONDS quiet=0 b0 g0 t0 other ob why last_log=-100
  while :; do
    ob=$(other_bench)
    if [[ -n $ob ]]; then
      quiet=0 why="another benchmark runs ($ob)"
      sleep 2
    else
      b0=$(cores_busy_ticks "$PROXY_CPU"); g0=$(cpu_ticks "$GOZER_PID"); t0=$(date +%s%N)
      sleep 1
      other=$(awk -v b=$(($(cores_busy_ticks "$PROXY_CPU") - b0)) -v g=$(($(cpu_ticks "$GOZER_PID") - g0)) -v tck="$CLK_TCK" \
        -v wall=$((($(date +%s%N) - t0) / 1000)) 'BEGIN { printf "%.0f", 100 * (b - g) * 1e6 / tck / wall }')
      if ((other <= BENCH_OTHER_CPU_MAX)); then quiet=$((quiet + 1)); else quiet=0; fi
      why="other jobs take ${other}% of Gozer's core"
    fi
    if ((quiet >= 3)); then
      if ((SECONDS - start > 4)); then
        QUIET_WAITED=$((QUIET_WAITED + SECONDS - start))
        log "  quiet again after $((SECONDS - start)) s"
      fi
      return 0
    fi
    if ((SECONDS >= end)); then
      QUIET_WAITED=$((QUIET_WAITED + SECONDS - start)) QUIET_GAVE_UP=$((QUIET_GAVE_UP + 1))
      warn "not quiet after ${ASYNC_QUIET_WAIT}s ($why): measuring anyway (the runs say so)"
      return 0
    fi
    if ((quiet == 0 && SECONDS - last_log >= 30)); then
      log "  waiting (up to ${ASYNC_QUIET_WAIT}s in all): $why"
      last_log=$SECONDS
    fi
  done
}

LOADAVG0=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up: ${BENCH_WARMUP}s of each load (${LOADS[*]})"
for l in "${LOADS[@]}"; do load_run warm "$l" 0 "$BENCH_WARMUP" || die "the $l load gave no result in the warm-up"; done

# run_phase PHASE ROUND: wait for Gozer's core to be quiet, then (waiting phase: start the
# holder; baseline with ASYNC_CONTROL=1: the control holder) each load once (then stop it). A phase during which other jobs disturbed a
# run is done again, whole (a fresh holder: a waiting phase must end before the held requests
# are answered), up to ASYNC_PHASE_TRIES times while the retry budget lasts; every run stays
# in the table, and the selection prefers the clean ones.
RETRY_LEFT=$BENCH_RETRY_BUDGET
run_phase() {
  local phase=$1 round=$2 try l disturbed cost=$((${#LOADS[@]} * BENCH_DURATION)) kind
  kind=$(hold_kind "$phase")
  for ((try = 1; ; try++)); do
    wait_quiet
    [[ $kind == none ]] || hold_start "$round" "$kind"
    disturbed=""
    for l in "${LOADS[@]}"; do
      load_run "$phase" "$l" "$round" || die "the $l load gave no result ($phase round $round)"
      alive "$GOZER_PID" || die "gozer died during the $l load ($phase round $round): $(tail -n 5 "$WORK/gozer.log")"
      if awk -v o="$LAST_OTHER0" -v max="$BENCH_OTHER_CPU_MAX" 'BEGIN { exit !(o > max) }'; then disturbed+=" $l (${LAST_OTHER0}%)"; fi
    done
    [[ $kind == none ]] || hold_stop "$round" "$kind"
    [[ -n $disturbed ]] || return 0
    if ((try >= ASYNC_PHASE_TRIES || RETRY_LEFT < cost)); then
      log "  other jobs disturbed$disturbed; no more tries for this phase (${RETRY_LEFT}s of retry budget left)"
      return 0
    fi
    RETRY_LEFT=$((RETRY_LEFT - cost))
    log "  other jobs disturbed$disturbed: the $phase phase again (${RETRY_LEFT}s of retry budget left)"
  done
}

for ((r = 1; r <= BENCH_ROUNDS; r++)); do
  log "round $r/$BENCH_ROUNDS: baseline (${LOADS[*]})"
  run_phase base "$r"
  log "round $r/$BENCH_ROUNDS: $ASYNC_WAITERS requests waiting at the side service"
  run_phase wait "$r"
done

# Gozer's own view: the filter ran for every held request, and each plain request went
# through should_filter only. Best effort, for the report.
FILTER_STATS=$(gozer_filter_stats "http://127.0.0.1:$ADMIN_PORT/admin/filters" | awk '{ printf "%s: %s calls, %s errors, %s past the budget\n", $1, $2, $3, $4 }')

# --- report ------------------------------------------------------------------------------

# Which runs count: a waiting run only if the waiters were held all through it; then the
# clean runs when at least half the rounds have one, else the least disturbed half.
NEED_RUNS=$(((BENCH_ROUNDS + 1) / 2))

# sel PHASE LOAD COL prints column COL of the runs that count: per round, its least
# disturbed run (a phase done again has several), then pick_by_other over the rounds.
sel() {
  awk -F'\t' -v p="$1" -v l="$2" -v c="$3" '$1 == p && $2 == l && $20 != "no" {
      if (!($3 in o) || $13 + 0 <= o[$3]) { o[$3] = $13 + 0; v[$3] = $c }
    }
    END { for (r in o) print v[r], o[r] }' "$RUNS_TSV" | pick_by_other
}
med() { sel "$@" | median; }
# runs_counted PHASE LOAD prints "rounds counted/runs".
runs_counted() {
  printf '%s/%s' "$(sel "$1" "$2" 4 | grep -c . || true)" "$(awk -F'\t' -v p="$1" -v l="$2" '$1 == p && $2 == l { n++ } END { print n + 0 }' "$RUNS_TSV")"
}

# round_pairs LOAD COL prints, per round, "wait/base OTHER" for column COL: each phase's
# least disturbed counted run of that round; the pair counts as its more disturbed run.
round_pairs() {
  awk -F'\t' -v l="$1" -v c="$2" '$2 == l && ($1 == "base" || $1 == "wait") && $20 != "no" {
      k = $3 SUBSEP $1
      if (!(k in o) || $13 + 0 < o[k]) { o[k] = $13 + 0; v[k] = $c }
      r[$3] = 1
    }
    END { for (x in r) if ((x, "base") in v && (x, "wait") in v && v[x, "base"] > 0)
      printf "%.4f %s\n", v[x, "wait"] / v[x, "base"], (o[x, "wait"] > o[x, "base"] ? o[x, "wait"] : o[x, "base"]) }' "$RUNS_TSV" |
    pick_by_other
}

# verdict A B: "met" when both estimates are at most ASYNC_TARGET, "NOT met" when both are above.
verdict() {
  awk -v a="$1" -v b="$2" -v t="$ASYNC_TARGET" 'BEGIN {
    if (a == "-" && b == "-") { print "not measured"; exit }
    if (a == "-") a = b; if (b == "-") b = a
    if (a <= t && b <= t) print "**met**"; else if (a > t && b > t) print "**NOT met**"; else print "borderline (the two estimates straddle " t ")" }'
}

# shellcheck disable=SC2016 # the backticks are Markdown
load_desc() {
  case $1 in
    open) printf 'open loop, %s req/s over %s keep-alive connections (bench/slowclients -mode ordinary at nice %s; latency from when each request was due)' "$ASYNC_RATE" "$ASYNC_OPEN_CONNS" "$ASYNC_OPEN_NICE" ;;
    wrk) printf 'closed loop, `wrk -t1 -c%s -d%ss --latency`' "$ASYNC_WRK_CONNS" "$BENCH_DURATION" ;;
  esac
}

report() {
  local l pr pmed pmin pmax b w
  echo "# Gozer: plain requests while $ASYNC_WAITERS requests wait in an async filter"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), gozer $GOZER_REV, $NCPU × $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r), load average at the start $LOADAVG0."
  echo
  echo "Command: \`$COMMAND\`"
  echo
  if [[ -n $OTHER_BENCHES ]]; then
    echo "**Other benchmarks were running when this one started:** $OTHER_BENCHES — the runs they disturbed are marked and redone once; read the \"other\" columns."
    echo
  fi
  echo "Layout: Gozer pinned to core $PROXY_CPU (event_loops 1, GOMAXPROCS ${ASYNC_GOZER_GOMAXPROCS:-unset, Gozer picks}), one async Lua filter (\`inbound/10_asyncwait.lua\`: \`should_filter\` = path starts with /wait/; \`apply\` = \`ctx.http{ origin = \"side\", path = \"/auth?delay=D\", timeout = $ASYNC_CALL_TIMEOUT }\`, then the request goes on to the origin)."
  echo "On core $LOADGEN_CPU: the bench origin (nginx, one worker, $ORIGIN_BODY_BYTES-byte body), the side service (gateway/cmd/demo-origin \`/auth?delay=D\`), the plain load and the holder."
  local base_desc="each plain load alone (\`ASYNC_CONTROL=0\`: the load core does not carry the holder's connections then)"
  ((ASYNC_CONTROL)) && base_desc="the control holder (the same \`wrk\` holder, aimed at the side service itself: \`GET /auth?delay=${ASYNC_DELAY_SECS}s\` on its port, not through Gozer) holds $ASYNC_WAITERS requests there (the side service counted $ASYNC_WAITERS \`/auth\` calls more, and the holder's connections there were ≥ $ASYNC_WAITERS before and after each run, none of its requests answered, or the run does not count), then each plain load runs; so the load core carries the same held connections in both phases, and only Gozer's share of the waiting differs"
  local wait_desc="the holder (\`wrk -t1 -c$ASYNC_WAITERS --timeout $((ASYNC_CALL_TIMEOUT + 60))s\`, \`GET /wait/${ASYNC_DELAY_SECS}s\`: each request waits ${ASYNC_DELAY_SECS} s at the side service, longer than the phase) holds $ASYNC_WAITERS requests suspended (\`GET /admin/async\` \"suspended\" ≥ $ASYNC_WAITERS before and after each run, none of its requests answered, or the run does not count), the same plain loads run again, then the holder leaves (Gozer abandons the side calls) and \"suspended\" returns to 0 before the next baseline."
  if [[ $ASYNC_WAIT_VIA == side ]]; then
    wait_desc="**\`ASYNC_WAIT_VIA=side\`: the control holder, at the side service itself (as the baseline's control is described), so Gozer held nothing**"
    if ((ASYNC_CONTROL)); then
      wait_desc+=" (with the control in the baseline too, both phases are the same: **the ratio shows only run-to-run noise**)"
    else
      wait_desc+=" (against a baseline alone: **the ratio is what holding the requests costs the load core**, the harness's own share, not Gozer's)"
    fi
    wait_desc+="; the same plain loads run again, then the holder leaves."
  fi
  echo "Plain requests (\`GET /\`) run only the filter's \`should_filter\` and are proxied. Per round: **baseline** = $base_desc; **waiting** = $wait_desc"
  echo "$BENCH_ROUNDS rounds (baseline, waiting, baseline, waiting …), ${BENCH_DURATION} s per run, ${BENCH_WARMUP} s warm-up of each load first; figures are medians over the rounds. CPU µs/req = Gozer's utime+stime (/proc/PID/stat, $CLK_TCK ticks/s) during the run / requests completed."
  echo
  echo "Other jobs: before each phase the script waited until no other benchmark ran and other jobs left Gozer's core alone (up to ${ASYNC_QUIET_WAIT} s): ${QUIET_WAITED} s of waiting in all, $QUIET_GAVE_UP phase(s) measured anyway; $(awk -F'\t' '$1 != "warm" { n++; if ($15 == "yes") d++ } END { printf "%d of %d runs disturbed", d, n }' "$RUNS_TSV"), a phase with a disturbed run done again (whole, after waiting for quiet) up to $ASYNC_PHASE_TRIES times while the retry budget (${BENCH_RETRY_BUDGET} s of runs) lasted."
  echo
  echo "Work check: $WORK_NOTE_ASYNC."
  echo
  # WAITING names the waiting phase; with ASYNC_WAIT_VIA=side there is no target to judge.
  local waiting="$ASYNC_WAITERS waiting in Gozer" side=0
  [[ $ASYNC_WAIT_VIA == side ]] && waiting="$ASYNC_WAITERS held at the side service" side=1
  if ((side)); then
    echo "## Gozer holding nothing: p99 of plain requests with $ASYNC_WAITERS held at the side service / baseline (no target: ASYNC_WAIT_VIA=side)"
  else
    echo "## The target: p99 of plain requests with $ASYNC_WAITERS waiting in Gozer / baseline ≤ $ASYNC_TARGET"
  fi
  echo
  echo "| plain load | p99 baseline µs | p99 waiting phase µs | **ratio of medians** | per-round ratios: median (min–max), rounds | verdict |"
  echo "|---|---:|---:|---:|---:|---|"
  for l in "${LOADS[@]}"; do
    b=$(med base "$l" 6) w=$(med wait "$l" 6)
    pr=$(round_pairs "$l" 6)
    pmed=$(median <<<"$pr") pmin=$(sort -g <<<"$pr" | head -n 1) pmax=$(sort -g <<<"$pr" | tail -n 1)
    printf '| %s | %s | %s | **%s** | %s (%s–%s), %s | %s |\n' "$l" "$(num %.0f "$b")" "$(num %.0f "$w")" "$(ratio "$w" "$b")" \
      "$(num %.2f "$pmed")" "$(num %.2f "$pmin")" "$(num %.2f "$pmax")" "$(grep -c . <<<"$pr" || true)" "$(if ((side)); then echo n/a; else verdict "$(ratio "$w" "$b")" "$(num %.2f "$pmed")"; fi)"
  done
  echo
  for l in "${LOADS[@]}"; do echo "- $l: $(load_desc "$l")"; done
  echo
  echo "\"per-round ratios\": waiting / baseline within each round (the two phases ran back to back, so slow drift of the machine cancels). \"met\" when both estimates are ≤ $ASYNC_TARGET, \"NOT met\" when both are above."
  echo
  echo "## Both phases, medians"
  echo
  echo "| plain load | phase | rounds counted / runs | req/s | p50 µs | p99 µs | max µs | Gozer CPU µs/req | Gozer core busy | client CPU (core $LOADGEN_CPU) | holder CPU | errors | late (open loop) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for l in "${LOADS[@]}"; do
    for p in base wait; do
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s%% | %s%% | %s%% | %s | %s |\n' "$l" "$([[ $p == base ]] && echo "baseline$( ((ASYNC_CONTROL)) && echo " ($ASYNC_WAITERS at the side service)" || echo ", alone")" || echo "$waiting")" \
        "$(runs_counted "$p" "$l")" "$(num %.0f "$(med "$p" "$l" 4)")" "$(num %.0f "$(med "$p" "$l" 5)")" "$(num %.0f "$(med "$p" "$l" 6)")" \
        "$(num %.0f "$(med "$p" "$l" 23)")" "$(num %.2f "$(med "$p" "$l" 7)")" "$(num %.1f "$(med "$p" "$l" 8)")" "$(num %.1f "$(med "$p" "$l" 12)")" \
        "$(num %.1f "$(med "$p" "$l" 11)")" "$(awk -F'\t' -v p="$p" -v l="$l" '$1 == p && $2 == l { s += $16 } END { print s + 0 }' "$RUNS_TSV")" \
        "$(if [[ $l == open ]]; then awk -F'\t' -v p="$p" -v l="$l" '$1 == p && $2 == l { s += $22 } END { print s + 0 }' "$RUNS_TSV"; else echo -; fi)"
    done
    printf '| %s | **waiting phase / baseline** | | **%s** | **%s** | **%s** | | **%s** | | | | | |\n' "$l" \
      "$(ratio "$(med wait "$l" 4)" "$(med base "$l" 4)")" "$(ratio "$(med wait "$l" 5)" "$(med base "$l" 5)")" \
      "$(ratio "$(med wait "$l" 6)" "$(med base "$l" 6)")" "$(ratio "$(med wait "$l" 7)" "$(med base "$l" 7)")"
  done
  echo
  echo "Per-round ratios (waiting / baseline of the same round), median (min–max):"
  echo
  for l in "${LOADS[@]}"; do
    local c name
    for c in 4:req/s 5:p50 7:"CPU µs/req"; do
      name=${c#*:}
      pr=$(round_pairs "$l" "${c%%:*}")
      printf -- '- %s %s: %s (%s–%s)\n' "$l" "$name" "$(num %.2f "$(median <<<"$pr")")" "$(num %.2f "$(sort -g <<<"$pr" | head -n 1)")" "$(num %.2f "$(sort -g <<<"$pr" | tail -n 1)")"
    done
  done
  echo
  echo "\"late (open loop)\": requests the client sent more than 10 ms after they were due (its connection still busy, or the load core starved); their latency counts from when they were due. \"client CPU\", \"holder CPU\": % of one core during the run."
  echo
  echo "## The $ASYNC_WAITERS waiters"
  echo
  if ((side)); then
    echo "None: Gozer held nothing (\`ASYNC_WAIT_VIA=side\`)."
    echo
  else
    echo "| round | ramp s | suspended | Gozer RSS before KiB | RSS with waiters KiB | **RSS per waiter** | Gozer CPU to admit them | per waiter | holder CPU, whole life | holder life s | side service CPU | release s | Gozer CPU to release them | holder |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  fi
  awk -F'\t' -v n="$ASYNC_WAITERS" 'NR > 1 { printf "| %s | %s | %s | %s | %s | **%.1f KiB** | %s ms | %.1f µs | %s ms | %s | %s ms | %s | %s ms | %s |\n",
      $1, $2, $3, $4, $5, ($5 - $4) / n, $6, $6 * 1000 / n, $7, $8, $9, $10, $11, $13 }' "$HOLD_TSV"
  echo
  awk -F'\t' -v n="$ASYNC_WAITERS" 'NR > 1 { d[++k] = ($5 - $4) / n; a[k] = $6 * 1000 / n; h[k] = $7; l[k] = $8; hs[k] = $7 / $8 / 10; rel[k] = $11 * 1000 / n
      if (k > 1) dl[k - 1] = d[k] }
    function med(x, m,   i, j, t, y) { for (i = 1; i <= m; i++) y[i] = x[i]; for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (y[j] < y[i]) { t = y[i]; y[i] = y[j]; y[j] = t }
      return (m % 2 ? y[(m + 1) / 2] : (y[m / 2] + y[m / 2 + 1]) / 2) }
    END { if (!k) exit
      printf "**Memory**: Gozer'"'"'s RSS (VmRSS with the waiters less just before them) grew **%.1f KiB per waiting request** in round 1 (a fresh process: the heap grows)", d[1]
      if (k > 1) printf " and %.1f KiB in the later rounds (median: memory the earlier waiters left is reused)", med(dl, k - 1)
      printf ". **CPU**: admitting one (its client connection and request, the filter'"'"'s coroutine, the side call'"'"'s dial and request, the collections all that allocation brings) cost Gozer **%.0f µs** (median over the rounds), releasing one (its client leaves, the call is abandoned) %.0f µs; a plain proxied request costs the CPU µs/req above. While they wait, the waiters cost what the CPU µs/req ratios show. The holder (wrk) took %.0f ms of CPU over its %.0f s life (%.1f%% of a core on average, nearly all of it opening its connections: see its column in the runs).\n", med(a, k), med(rel, k), med(h, k), med(l, k), med(hs, k) }' "$HOLD_TSV"
  echo
  echo "## Gozer's filter counters after the runs"
  echo
  echo '```'
  echo "$FILTER_STATS"
  echo '```'
  echo
  echo "## Every run"
  echo
  echo "| phase | load | round | req/s | p50 µs | p99 µs | max µs | CPU µs/req | Gozer core | origin | side | holder | client | other jobs, Gozer's core | other jobs, both cores | disturbed | held before → after | counted | errors | requests | late |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---:|---:|"
  awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s%% | %s%% | %s%% | %s%% | %s%% | %s%% | %s%% | %s | %s → %s | %s | %s | %s | %s |\n",
    $1, $2, $3, $4, $5, $6, $23, $7, $8, $9, $10, $11, $12, $13, $14, $15, $18, $19, ($1 == "warm" ? "warm-up" : ($20 == "no" ? "NO: not held" : "yes")), $16 ($16 > 0 ? " (" $24 ")" : ""), $17, $22 }' "$RUNS_TSV"
  echo
  echo "\"held before → after\": the requests suspended in Gozer (GET /admin/async) for a run whose holder waits through Gozer; the control holder's connections at the side service (\`ss\`) for a run with the control holder; for a baseline alone (\`ASYNC_CONTROL=0\`), the requests suspended in Gozer (0 → 0), not checked. \"NO: not held\": fewer than $ASYNC_WAITERS before or after the run, or the holder had requests answered while it held them."
  echo
  echo "\"other jobs, Gozer's core\": core $PROXY_CPU's busy time (/proc/stat) less Gozer's CPU time, in % of the core; above $BENCH_OTHER_CPU_MAX % a run is disturbed, and a figure is the median over the clean runs when at least $NEED_RUNS rounds have one, else over the $NEED_RUNS least disturbed. \"both cores\": the same over cores ${BENCH_CORES[*]}, less every process of the bench."
  echo
  echo "Gozer's config (accepted by \`gozer -check\`):"
  echo
  echo '```yaml'
  cat "$GOZER_YAML"
  echo '```'
  echo
  echo "The filter (\`inbound/10_asyncwait.lua\`):"
  echo
  echo '```lua'
  cat "$WORK/scripts/inbound/10_asyncwait.lua"
  echo '```'
  echo
  echo "Harness runtime: ${SECONDS}s."
}

stop_all_started
HARNESS_FAILED=0
check_ports_released "$ORIGIN_PORT" "$GOZER_PORT" "$ADMIN_PORT" "$SIDE_PORT"
mkdir -p bench/results
RESULT=bench/results/asyncwait-latest.txt
report >"$WORK/report.md"
cp "$WORK/report.md" "$RESULT"
cp "$WORK/report.md" "bench/results/asyncwait-$(date -u +%Y%m%d-%H%M%S).txt"
cp "$RUNS_TSV" bench/results/asyncwait-latest-runs.tsv
echo
cat "$WORK/report.md"
echo
log "written to $RESULT"
((HARNESS_FAILED == 0)) || die "a listener was left behind"
