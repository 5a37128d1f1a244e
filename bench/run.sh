#!/usr/bin/env bash
# Gozer vs its peers (nginx, HAProxy, Caddy) as reverse proxies, on loopback, side by side,
# and Gozer with Lua filters vs nginx with lua-nginx-module running the same logic.
#
#   bash bench/run.sh            (what `make bench` runs: the "all" suite, ~6 minutes on 2 cores)
#
# Every proxy runs pinned to core 0 with one worker/thread/event loop; wrk and the one
# shared origin (an nginx of our own) are pinned to core 1. wrk runs against each target
# in interleaved rounds (gozer gozer-lua1 ... caddy gozer gozer-lua1 ...) so that drift of
# the machine hits all targets alike; figures are medians over rounds, with ratios to nginx.
# Each target must first show that it does its work (lib/work.sh). Then the plain proxies
# hold BENCH_IDLE_CONNS idle keep-alive connections and we report the RSS each one costs.
# Results go to stdout and bench/results/latest.txt.
#
# Knobs (environment):
#   BENCH_SUITE=all         which targets: core (gozer nginx haproxy caddy), lua (gozer
#                           gozer-lua1 gozer-lua3 nginx nginx-lua1 nginx-lua3), async (gozer
#                           gozer-async nginx nginx-async: one side call per request from a
#                           Lua filter), metrics (gozer gozer-nometrics nginx: Gozer with
#                           its metrics on, the default, and off) or all (every one of them)
#   BENCH_TARGETS           the exact target list instead (overrides BENCH_SUITE)
#   BENCH_BASE_REV          a git revision for the gozer-base and gozer-lua3-base targets: Gozer as it was then,
#                           beside the working tree's in the same rounds (a change's cost)
#   BENCH_ROUNDS=5          measured rounds per target
#   BENCH_DURATION=6        seconds per wrk run
#   BENCH_WARMUP=3          seconds of warm-up per target (not reported)
#   BENCH_CONNS=64          wrk connections
#   BENCH_IDLE_CONNS=10000  idle keep-alive connections for the memory figure (0 skips it)
#   BENCH_IDLE_TARGETS="gozer nginx haproxy caddy"  targets (of those run) whose idle
#                           memory is measured; Lua filters do not change it per connection
#   BENCH_GOZER_GOMAXPROCS  "default" or a number: skip the GOMAXPROCS trial and use this
#   BENCH_STRICT=1          exit non-zero when Gozer could not be measured
#   BENCH_KEEP_TMP=1        keep the temp dir (configs, logs, raw wrk output)
#   BENCH_OTHER_CPU_MAX=10  a run during which something else used more than this % of a
#                           core on the bench cores is marked disturbed and left out of the
#                           medians (unless all runs of a target were disturbed)
#   BENCH_RETRY_BUDGET=60   seconds of extra runs allowed to redo disturbed runs (once each)
#   BENCH_PROFILE           Gozer targets to take a CPU profile of after the rounds (e.g.
#                           "gozer-async"): they get listeners.admin.pprof, and the report
#                           shows the top functions, flat and cumulative, of
#                           /debug/pprof/profile during a wrk run like the measured ones; the
#                           profile is saved as bench/results/profile-NAME.pprof
#   BENCH_PROFILE_SECS=10   seconds of each profile
#
# Adding a target: write bench/targets/NAME.sh with a function target_NAME_start that starts
# the proxy pinned to $PROXY_CPU, forwarding to 127.0.0.1:$ORIGIN_PORT, via bg_start, and sets
# T_PID, T_URL (what wrk hits), T_READY_URL, T_LOG and T_DESC; add its ports to BENCH_PORTS at
# the top of the file; then add NAME to BENCH_TARGETS (or its default below).
#
# Lua targets set T_WORK (lib/work.sh) and Gozer ones T_FILTERS_URL; a target that does not
# do its work is not measured and makes the exit status non-zero.
#
# Exit status: non-zero when the harness failed (a tool missing, the origin or a peer not
# starting) or a target did not do its work (lib/work.sh). A target slower than nginx is a
# result; so is a Gozer that does not build or start (BENCH_STRICT=1 makes that fail).
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

BENCH_ROUNDS=${BENCH_ROUNDS:-5}
BENCH_DURATION=${BENCH_DURATION:-6}
BENCH_WARMUP=${BENCH_WARMUP:-3}
BENCH_CONNS=${BENCH_CONNS:-64}
BENCH_THREADS=1
BENCH_IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
BENCH_SUITE=${BENCH_SUITE:-all}
case $BENCH_SUITE in
  core) SUITE_TARGETS="gozer nginx haproxy caddy" ;;
  lua) SUITE_TARGETS="gozer gozer-lua1 gozer-lua3 nginx nginx-lua1 nginx-lua3" ;;
  async) SUITE_TARGETS="gozer gozer-async nginx nginx-async" ;;
  metrics) SUITE_TARGETS="gozer gozer-nometrics nginx" ;;
  ratelimit) SUITE_TARGETS="gozer gozer-ratelimit gozer-ratelimit-cluster nginx" ;;
  all) SUITE_TARGETS="gozer gozer-nometrics gozer-lua1 gozer-lua3 gozer-async nginx nginx-lua1 nginx-lua3 nginx-async haproxy caddy" ;;
  *) echo "BENCH_SUITE must be all, core, lua, async, metrics or ratelimit, not '$BENCH_SUITE'" >&2; exit 2 ;;
esac
BENCH_TARGETS=${BENCH_TARGETS:-$SUITE_TARGETS}
BENCH_IDLE_TARGETS=${BENCH_IDLE_TARGETS:-gozer nginx haproxy caddy}
BENCH_GOZER_GOMAXPROCS=${BENCH_GOZER_GOMAXPROCS:-}
BENCH_STRICT=${BENCH_STRICT:-0}
BENCH_KEEP_TMP=${BENCH_KEEP_TMP:-0}
BENCH_OTHER_CPU_MAX=${BENCH_OTHER_CPU_MAX:-10}
BENCH_RETRY_BUDGET=${BENCH_RETRY_BUDGET:-60}
BENCH_PROFILE=${BENCH_PROFILE:-}
BENCH_PROFILE_SECS=${BENCH_PROFILE_SECS:-10}
ORIGIN_PORT=${ORIGIN_PORT:-18090}
IDLE_SOURCES=10 # idle connections come from 127.0.0.2 .. 127.0.0.11
BENCH_PORTS=()  # every port a target listens on; each bench/targets/*.sh adds its own

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh
# shellcheck source=bench/lib/measure.sh
source bench/lib/measure.sh
# shellcheck source=bench/lib/work.sh
source bench/lib/work.sh
for f in bench/targets/*.sh; do
  # shellcheck source=/dev/null
  source "$f"
done

COMMAND="BENCH_SUITE=$BENCH_SUITE BENCH_ROUNDS=$BENCH_ROUNDS BENCH_DURATION=$BENCH_DURATION BENCH_WARMUP=$BENCH_WARMUP BENCH_CONNS=$BENCH_CONNS BENCH_IDLE_CONNS=$BENCH_IDLE_CONNS BENCH_TARGETS=\"$BENCH_TARGETS\"${BENCH_PROFILE:+ BENCH_PROFILE=\"$BENCH_PROFILE\" BENCH_PROFILE_SECS=$BENCH_PROFILE_SECS} bash bench/run.sh"
RESULTS_DIR=$REPO/bench/results
WORK=$(mktemp -d /tmp/gozer-bench.XXXXXX)
RUNS_TSV=$WORK/runs.tsv
MEM_TSV=$WORK/mem.tsv

bench_exit_setup "$BENCH_KEEP_TMP"

# --- 1. tools, limits, cores -------------------------------------------------------------

command -v go >/dev/null || die "go is not installed"
ensure_cmds nginx:nginx haproxy:haproxy caddy:caddy wrk:wrk curl:curl taskset:util-linux \
  pgrep:procps ss:iproute2
raise_nofile 200000
NOFILE=$(ulimit -n)
# The idle-connection client and the proxy each need one fd per connection.
if ((BENCH_IDLE_CONNS > NOFILE - 1000)); then
  warn "BENCH_IDLE_CONNS=$BENCH_IDLE_CONNS does not fit in $NOFILE open files; using $((NOFILE - 1000))"
  BENCH_IDLE_CONNS=$((NOFILE - 1000))
fi

if (($(nproc) >= 2)); then
  PROXY_CPU=0 LOADGEN_CPU=1
  BENCH_CORES=(0 1)
else
  PROXY_CPU=0 LOADGEN_CPU=0
  BENCH_CORES=(0)
  warn "one core only: proxies, origin and wrk share it; ratios still mean something, absolute figures do not"
fi

read -r -a TARGETS <<<"$BENCH_TARGETS"
for t in "${TARGETS[@]}"; do
  declare -F "target_${t}_start" >/dev/null || die "unknown target $t (no target_${t}_start in bench/targets/)"
done
# A target may need more than the tools above (nginx-lua*: lua-nginx-module).
for t in "${TARGETS[@]}"; do
  if declare -F "target_${t}_prepare" >/dev/null; then "target_${t}_prepare"; fi
done
for p in "${BENCH_PORTS[@]}"; do
  if port_in_use "$p"; then die "port $p is already in use (a previous run still up?)"; fi
done

log "building bench/idleconns"
go build -o "$WORK/idleconns" ./bench/idleconns || die "bench/idleconns does not build"

# --- 2. origin, 3. targets ---------------------------------------------------------------

declare -A TARGET_PID TARGET_URL TARGET_DESC TARGET_FILTERS_URL TARGET_PPROF
PROBLEMS=()      # what went wrong with a target (printed in the report)
HARNESS_FAILED=0 # a peer or the origin failed: that is our failure, not a result
WORK_FAILED=0    # a target did not do its work (lib/work.sh): the bench measured nothing true
GOZER_PROBLEM=""

log "starting origin (nginx) on 127.0.0.1:$ORIGIN_PORT, core $LOADGEN_CPU"
origin_start || die "origin did not start"

# start_target NAME runs target_NAME_start, waits until it is ready and until a request
# through it reaches the origin, checks that it does its work (lib/work.sh), and records
# it. On failure START_FAIL_REASON says why (and WORK_FAILED=1 if it was the work check).
START_FAIL_REASON=""
start_target() {
  local name=$1
  T_PID="" T_URL="" T_READY_URL="" T_LOG="" T_DESC="" T_WORK=plain T_FILTERS_URL="" T_PPROF_URL=""
  WAIT_FAIL_REASON="target_${name}_start failed"
  if ! "target_${name}_start"; then
    START_FAIL_REASON="does not start: $WAIT_FAIL_REASON"
    return 1
  fi
  if ! wait_http "$name" "$T_PID" "$T_READY_URL" 30 "$T_LOG" ||
    ! wait_http "$name (through to the origin)" "$T_PID" "$T_URL" 10 "$T_LOG"; then
    START_FAIL_REASON="does not start: $WAIT_FAIL_REASON"
    stop_pid "$T_PID"
    return 1
  fi
  if ! work_check "$name" "$T_URL" "$T_WORK" "$T_FILTERS_URL"; then
    START_FAIL_REASON="DOES NOT DO ITS WORK ($T_WORK), not measured: $WORK_FAIL_REASON"
    WORK_FAILED=1
    stop_pid "$T_PID"
    return 1
  fi
  log "  $name does its work: ${WORK_NOTE[$name]}"
  TARGET_PID[$name]=$T_PID TARGET_URL[$name]=$T_URL TARGET_DESC[$name]=$T_DESC
  TARGET_FILTERS_URL[$name]=$T_FILTERS_URL WORK_OF[$name]=$T_WORK TARGET_PPROF[$name]=$T_PPROF_URL
}

# target_failed NAME REASON drops a target from the runs; a peer failing fails the harness,
# a Gozer target failing is a result (BENCH_STRICT=1 makes it fail).
target_failed() {
  local name=$1 reason=$2 t keep=()
  warn "$name: $reason"
  PROBLEMS+=("$name: $reason")
  if [[ $name == gozer || $name == gozer-* ]]; then
    GOZER_PROBLEM+="${GOZER_PROBLEM:+; }$name: $reason"
  else
    HARNESS_FAILED=1
  fi
  for t in "${TARGETS[@]}"; do
    if [[ $t != "$name" ]]; then keep+=("$t"); fi
  done
  TARGETS=("${keep[@]}")
  if [[ -n ${TARGET_PID[$name]:-} ]]; then stop_pid "${TARGET_PID[$name]}"; fi
  unset "TARGET_PID[$name]"
}

WRK_SPLIT_COLUMNS=1 # kernel_pct and ctxsw_req: the throughput table shows them
printf '%s%s\n' "$RUNS_HEADER" "$RUNS_SPLIT_HEADER" >"$RUNS_TSV"
: >"$MEM_TSV"

# measure_one KIND NAME ROUND: a wrk run; a target that dies or gives no result is dropped.
# A run that other jobs on the machine disturbed is done once more while the retry budget
# lasts (both stay in the runs table; the medians skip disturbed runs).
RETRY_LEFT=$BENCH_RETRY_BUDGET
measure_one() {
  local kind=$1 name=$2 round=$3 secs=${WRK_DURATION:-$BENCH_DURATION} try
  for try in 1 2; do
    if ! wrk_run "$kind" "$name" "$round" "${TARGET_URL[$name]}" "${TARGET_PID[$name]}" ||
      ! alive "${TARGET_PID[$name]}"; then
      alive "${TARGET_PID[$name]}" || tail -n 20 "$WORK/$name"*/*.log >&2 2>/dev/null || true
      target_failed "$name" "failed in $kind round $round (died or gave no result)"
      return 1
    fi
    if ((try == 1)) && [[ $kind != warm ]] && last_run_disturbed && ((RETRY_LEFT >= secs)); then
      RETRY_LEFT=$((RETRY_LEFT - secs))
      log "  other load disturbed that run; running it again (${RETRY_LEFT}s of retry budget left)"
      continue
    fi
    return 0
  done
}

# Gozer: build it, then try GOMAXPROCS unset (Gozer then takes its event loops + 1, so 2
# with the bench's one loop) against GOMAXPROCS=1 once, and keep the one with the lower
# CPU µs/req.
GOZER_TRIAL=""
start_gozer() {
  if ! gozer_build; then
    target_failed gozer "$GOZER_BUILD_PROBLEM"
    return 0
  fi
  local variants=(default 1) v best="" best_cpu="" rps cpu
  if [[ -n $BENCH_GOZER_GOMAXPROCS ]]; then variants=("$BENCH_GOZER_GOMAXPROCS"); fi
  if ((${#variants[@]} > 1)); then
    for v in "${variants[@]}"; do
      GOZER_GOMAXPROCS=${v/default/}
      log "gozer trial: GOMAXPROCS=$v"
      if ! start_target gozer; then
        target_failed gozer "(GOMAXPROCS=$v) $START_FAIL_REASON"
        return 0
      fi
      WRK_DURATION=$BENCH_WARMUP measure_one warm gozer "gmp-$v" || return 0
      measure_one trial gozer "gmp-$v" || return 0
      stop_pid "${TARGET_PID[gozer]}"
      # Decide on CPU µs/req of the last trial run: unlike req/s it does not move with the
      # load side's share of core 1 or with other jobs on the machine.
      rps=$(tail -n 1 "$RUNS_TSV" | cut -f4)
      cpu=$(tail -n 1 "$RUNS_TSV" | cut -f7)
      GOZER_TRIAL+="GOMAXPROCS=$v: $rps req/s, $cpu CPU µs/req; "
      if [[ -z $best_cpu ]] || awk -v a="$cpu" -v b="$best_cpu" 'BEGIN { exit !(a < b) }'; then
        best=$v best_cpu=$cpu
      fi
    done
    GOZER_TRIAL+="kept GOMAXPROCS=$best (lower CPU µs/req). Unset, Gozer takes event loops + 1 (2 here, on the one core of taskset -c $PROXY_CPU): its loop blocks in epoll_wait holding a P, and its other goroutines would otherwise wait for sysmon to take it back"
  else
    best=${variants[0]}
    GOZER_TRIAL="no GOMAXPROCS trial: GOMAXPROCS=$best set by BENCH_GOZER_GOMAXPROCS"
  fi
  # shellcheck disable=SC2034 # read by target_gozer_start
  GOZER_GOMAXPROCS=${best/default/}
  start_target gozer || target_failed gozer "(GOMAXPROCS=$best) $START_FAIL_REASON"
}

# The gozer-lua* targets run with what the gozer trial kept (or BENCH_GOZER_GOMAXPROCS).
# shellcheck disable=SC2034 # read by targets/gozer.sh
GOZER_GOMAXPROCS=${BENCH_GOZER_GOMAXPROCS/default/}
for t in "${TARGETS[@]}"; do
  if [[ $t == gozer ]]; then
    start_gozer
    continue
  fi
  log "starting $t on core $PROXY_CPU"
  start_target "$t" || target_failed "$t" "$START_FAIL_REASON"
done
((${#TARGETS[@]})) || die "no target could be started"

# --- 4. throughput rounds ----------------------------------------------------------------

# The load side's ceiling: wrk straight to the origin, both on the load-generator core as in
# every proxied run. A proxy whose req/s comes near it was held back by the load side.
log "load-side ceiling: wrk straight to the origin"
wrk_run ceiling origin 0 "http://127.0.0.1:$ORIGIN_PORT/" none || die "wrk against the origin gave no result"
if last_run_disturbed; then wrk_run ceiling origin 0 "http://127.0.0.1:$ORIGIN_PORT/" none || true; fi
CEILING_RPS=$(tail -n 1 "$RUNS_TSV" | cut -f4)
# The origin's own cost per request there, to show it is not what limits the load side.
ORIGIN_NOTE=$(tail -n 1 "$RUNS_TSV" | awk -F'\t' '{ us = $9 / 100 * 1e6 / $4
  printf "the origin used %.1f%% of that core, %.1f µs/req: alone it could serve about %.0f req/s", $9, us, 1e6 / us }')

log "warm-up: ${BENCH_WARMUP}s per target"
# measure_one drops a target that fails (and says so in the report): go on with the others.
for t in "${TARGETS[@]}"; do WRK_DURATION=$BENCH_WARMUP measure_one warm "$t" 0 || true; done

for ((r = 1; r <= BENCH_ROUNDS; r++)); do
  log "round $r/$BENCH_ROUNDS: ${TARGETS[*]}"
  for t in "${TARGETS[@]}"; do measure_one run "$t" "$r" || true; done
done

# --- CPU profiles (BENCH_PROFILE) ---------------------------------------------------------

# A profile of BENCH_PROFILE_SECS during a wrk run like the measured ones (kind "profile":
# not in the medians); the top functions go to the report, the profile to bench/results.
declare -A PROFILE_TOP PROFILE_CUM
PROFILED=()
for t in $BENCH_PROFILE; do
  if [[ -z ${TARGET_PID[$t]:-} || -z ${TARGET_PPROF[$t]:-} ]]; then
    PROBLEMS+=("$t: no CPU profile (BENCH_PROFILE names a Gozer target that was not measured, or not a Gozer target)")
    continue
  fi
  prof=$WORK/profile-$t.pprof
  log "CPU profile of $t: ${BENCH_PROFILE_SECS}s under the same wrk load"
  bg_start "$WORK/pprof-$t.log" curl -s -f -m $((BENCH_PROFILE_SECS + 30)) -o "$prof" \
    "${TARGET_PPROF[$t]}/profile?seconds=$BENCH_PROFILE_SECS"
  pprof_pid=$BG_PID
  sleep 0.2
  WRK_DURATION=$((BENCH_PROFILE_SECS + 1)) measure_one profile "$t" 0 || true
  wait "$pprof_pid" 2>/dev/null || true
  if [[ -s $prof ]] && go tool pprof -top -nodecount=25 "$prof" >"$WORK/pprof-top-$t.txt" 2>/dev/null; then
    PROFILE_TOP[$t]=$(cat "$WORK/pprof-top-$t.txt")
    PROFILE_CUM[$t]=$(go tool pprof -top -cum -nodecount=25 "$prof" 2>/dev/null | sed -n '/flat%/,$p')
    mkdir -p "$RESULTS_DIR"
    cp "$prof" "$RESULTS_DIR/profile-$t.pprof"
    PROFILED+=("$t")
  else
    warn "no CPU profile of $t"
    PROBLEMS+=("$t: no CPU profile (see $WORK/pprof-$t.log; is listeners.admin.pprof on?)")
  fi
done

# Every Gozer filter must have run once per request wrk completed through its target.
for t in "${TARGETS[@]}"; do
  [[ -n ${TARGET_FILTERS_URL[$t]:-} && ${WORK_OF[$t]} != plain ]] || continue
  requests=$(awk -F'\t' -v t="$t" '$2 == t { s += $12 } END { print s + 0 }' "$RUNS_TSV")
  if work_counters_check "$t" "${TARGET_FILTERS_URL[$t]}" "$requests"; then
    log "  $t filter counters: ${WORK_NOTE[$t]##*after the runs: }"
    if [[ -n $WORK_WARNING ]]; then
      warn "$t: $WORK_WARNING"
      PROBLEMS+=("$t: filter errors during the runs (each one a 500, counted in the errors column): $WORK_WARNING")
    fi
  else
    warn "$t: DID NOT DO ITS WORK on every request: $WORK_FAIL_REASON"
    PROBLEMS+=("$t: DID NOT DO ITS WORK on every request (its figures are wrong): $WORK_FAIL_REASON")
    WORK_FAILED=1
  fi
done

# --- 6. idle keep-alive memory -----------------------------------------------------------

IDLE_TARGETS=()
for t in "${TARGETS[@]}"; do
  if [[ " $BENCH_IDLE_TARGETS " == *" $t "* ]]; then IDLE_TARGETS+=("$t"); fi
done
if ((BENCH_IDLE_CONNS > 0 && ${#IDLE_TARGETS[@]})); then
  log "idle keep-alive memory: $BENCH_IDLE_CONNS connections per target (${IDLE_TARGETS[*]})"
  for t in "${IDLE_TARGETS[@]}"; do
    addr=${TARGET_URL[$t]#http://}
    addr=${addr%%/*}
    idle_mem "$t" "$addr" "${TARGET_PID[$t]}" || {
      PROBLEMS+=("$t: idle-connection memory not measured (see log)")
      [[ $t == gozer || $t == gozer-* ]] || HARNESS_FAILED=1
    }
    alive "${TARGET_PID[$t]}" || target_failed "$t" "died while holding idle connections"
  done
fi

# --- 5./8. report ------------------------------------------------------------------------

ALL_TARGETS=()
read -r -a ALL_TARGETS <<<"$BENCH_TARGETS"
MEASURED=()
for t in "${ALL_TARGETS[@]}"; do
  [[ -n $(column_of run "$t" 4) ]] && MEASURED+=("$t")
done

report() {
  local t
  printf '# Gozer reverse-proxy bench, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  # shellcheck disable=SC2016 # the backticks are Markdown
  printf 'Command: `%s`\n\n' "$COMMAND"
  printf 'Machine: %s cores, %s, kernel %s, %s; load average when the bench started: %s\n\n' "$(nproc)" \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(uname -r)" \
    "$(. /etc/os-release && echo "$PRETTY_NAME")" "$LOADAVG_START"
  # shellcheck disable=SC2016 # the backticks are Markdown
  printf 'Setup: each proxy pinned to core %s with one worker/thread/event loop; wrk (`wrk -t%s -c%s -d%ss --latency`) and the one origin (nginx, one worker, %s-byte body, keep-alive) pinned to core %s. ' \
    "$PROXY_CPU" "$BENCH_THREADS" "$BENCH_CONNS" "$BENCH_DURATION" "$ORIGIN_BODY_BYTES" "$LOADGEN_CPU"
  printf 'Every proxy keeps upstream connections alive and sends X-Forwarded-For. **Access logs are off for every target.** '
  printf 'A %ss warm-up per target, then %s interleaved rounds (%s); figures are medians over rounds. ' \
    "$BENCH_WARMUP" "$BENCH_ROUNDS" "${ALL_TARGETS[*]}"
  printf 'CPU µs/req = the proxy'"'"'s utime+stime (all its processes, /proc/PID/stat, %s ticks/s) during the run / requests wrk completed. Open files: %s.\n\n' "$CLK_TCK" "$NOFILE"
  printf 'Targets:\n'
  for t in "${ALL_TARGETS[@]}"; do
    if [[ -n ${TARGET_DESC[$t]:-} ]]; then printf -- '- %s — %s\n' "$t" "${TARGET_DESC[$t]}"; fi
  done
  if [[ -n $GOZER_TRIAL ]]; then printf -- '- Gozer GOMAXPROCS (trial runs of %ss): %s\n' "$BENCH_DURATION" "$GOZER_TRIAL"; fi
  for t in "${PROBLEMS[@]}"; do printf -- '- **PROBLEM** %s\n' "$t"; done
  printf '\nWork checks (one request to the origin'"'"'s %s echo path through each target before its runs; Gozer filter counters from GET /admin/filters after them):\n' "$BENCH_CHECK_PATH"
  for t in "${ALL_TARGETS[@]}"; do
    if [[ -n ${WORK_NOTE[$t]:-} ]]; then printf -- '- %s (%s): %s\n' "$t" "${WORK_OF[$t]:-?}" "${WORK_NOTE[$t]}"; fi
  done
  printf '\n## Throughput and latency (median of %s rounds)\n\n' "$BENCH_ROUNDS"
  if ((${#MEASURED[@]})); then print_throughput_table "${MEASURED[@]}"; fi
  printf '\n"runs used": a run during which other jobs took more than %s%% of a core on cores %s (from /proc/stat, less the CPU time of the proxy, the origin and wrk) is marked disturbed and left out of the medians, unless every run of that target was.\n' \
    "$BENCH_OTHER_CPU_MAX" "${BENCH_CORES[*]}"
  printf '\n"proxy core busy" is the proxy'"'"'s CPU time over wall time: near 100%% means the proxy was the bottleneck. "kernel share" is the part of its CPU time spent in the kernel (stime), "switches/req" its threads'"'"' context switches per request (/proc/PID/task/*/status: voluntary, a thread blocking, and involuntary, a thread pre-empted by another on the proxy'"'"'s core; bench/README.md, "Thread wake-ups under load").\n'
  if [[ " ${MEASURED[*]} " == *-lua* ]]; then
    printf '\n## Lua filters: CPU per request (medians of the table above)\n\n'
    print_lua_table "${MEASURED[@]}"
  fi
  if [[ " ${MEASURED[*]} " == *" gozer-nometrics "* ]]; then
    printf '\n## Metrics: CPU per request, on vs off (medians of the table above)\n\n'
    print_metrics_table
  fi
  if [[ " ${MEASURED[*]} " == *" gozer-ratelimit"* ]]; then
    printf '\n## Rate limits: CPU per request, one limit on every request vs none (medians of the table above)\n\n'
    print_ratelimit_table "${MEASURED[@]}"
  fi
  if [[ " ${MEASURED[*]} " == *-async* ]]; then
    printf '\n## Async filters: one side call per request (medians of the table above)\n\n'
    print_async_table "${MEASURED[@]}"
  fi
  printf '\n## Load-generator core (origin + wrk), median per target run\n\n'
  if ((${#MEASURED[@]})); then print_loadgen_table "${MEASURED[@]}"; fi
  printf '\nCore %s runs both wrk and the origin. Load-side ceiling, wrk straight to the origin on that core: **%s req/s** (%s). ' \
    "$LOADGEN_CPU" "$CEILING_RPS" "$ORIGIN_NOTE"
  printf 'A proxy whose own core is ~100%% busy was the limit of its run; one that comes near the ceiling was also held back by the load side, and then req/s understates the gap between fast targets: CPU µs/req is the fairer comparison there.\n'
  if ((BENCH_IDLE_CONNS > 0)); then
    printf '\n## Memory of %s idle keep-alive connections (RSS, all processes of the target)\n\n' "$BENCH_IDLE_CONNS"
    local idle=()
    for t in "${ALL_TARGETS[@]}"; do
      if [[ " $BENCH_IDLE_TARGETS " == *" $t "* ]]; then idle+=("$t"); fi
    done
    print_mem_table "${idle[@]}"
  fi
  for t in ${PROFILED[@]+"${PROFILED[@]}"}; do
    printf '\n## CPU profile of %s (%ss during a wrk run like the measured ones; bench/results/profile-%s.pprof)\n\n' "$t" "$BENCH_PROFILE_SECS" "$t"
    # shellcheck disable=SC2016 # the backticks are Markdown
    printf 'Top 25, flat:\n\n```\n%s\n```\n\nTop 25, cumulative:\n\n```\n%s\n```\n' "${PROFILE_TOP[$t]}" "${PROFILE_CUM[$t]}"
  done
  printf '\n## Every run\n\n'
  print_runs_table
  printf '\nHarness runtime: %ss.\n' "$SECONDS"
}

mkdir -p "$RESULTS_DIR"
report >"$WORK/report.md"
cp "$WORK/report.md" "$RESULTS_DIR/latest.txt"
cp "$WORK/report.md" "$RESULTS_DIR/$(date -u +%Y%m%d-%H%M%S).txt"
cp "$RUNS_TSV" "$RESULTS_DIR/latest-runs.tsv"
echo
cat "$WORK/report.md"
echo
log "written to bench/results/latest.txt"

stop_all_started
check_ports_released "${BENCH_PORTS[@]}"

if ((HARNESS_FAILED)); then
  log "harness failure: ${PROBLEMS[*]}"
  exit 1
fi
if ((WORK_FAILED)); then
  log "FAILED: a target did not do its work (see **PROBLEM** in the report): ${PROBLEMS[*]}"
  exit 1
fi
if [[ -n $GOZER_PROBLEM && $BENCH_STRICT == 1 ]]; then
  log "BENCH_STRICT=1 and Gozer was not measured: $GOZER_PROBLEM"
  exit 1
fi
exit 0
