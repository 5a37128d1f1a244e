#!/usr/bin/env bash
# Isolation benchmark (issue 4, item 12): does a sick origin hurt a healthy one behind the
# same Gozer?
#
#   bash bench/isolation.sh          (~3 minutes on a 2-core machine)
#
# One Gozer (event_loops 1, pinned to core 0, access log off) in front of three origins:
#   healthy  an nginx of our own answering a 128-byte body at once (like bench/targets/origin.sh)
#   control  bench/isolation's Go origin, healthy: the same program and the same Gozer
#            isolation config as "sick", but every request answered 200 at once
#   sick     bench/isolation's Go origin, degraded: of its requests 40 % answer 503 at once,
#            30 % answer 200 after 200 ms–2 s (over half of them past the 1 s read
#            timeout), 15 % are black-holed (never answered), 15 % answer 200 at once: about
#            70 % of the attempts fail, enough to open the breaker even after retries.
#            Gozer's config for it: read_timeout 1s, max_concurrent_requests 64, retries 1,
#            breaker and retry_budget defaults.
# Both Go origins run two servers each (two ports), so a retry has another server to go to.
# Routes: /healthy/ -> healthy, /control/ -> control, /sick/ -> sick.
#
# Phases, interleaved in every round (alone ctl-rate sick-rate ctl-hammer sick-hammer):
#   alone        wrk -t1 -c32 --latency on /healthy/ only                       (phase A)
#   ctl-rate     the same wrk + 2000 req/s open-loop on /control/  (fair A for sick-rate)
#   sick-rate    the same wrk + 2000 req/s open-loop on /sick/                  (phase B)
#   ctl-hammer   the same wrk + wrk -c64 closed-loop on /control/ (fair A for sick-hammer)
#   sick-hammer  the same wrk + wrk -c64 closed-loop on /sick/  (phase B, as a second wrk)
# The open-loop neighbour is bench/isolation's "load" (requests at a fixed rate whatever
# the answers, like a population of independent clients); the closed-loop one is a second
# wrk, which re-sends as soon as it gets an answer, so once the breaker opens it sends
# fast 503s as fast as Gozer can answer them: a stress case, not a realistic neighbour.
# wrk, the neighbour load generator and all origins are pinned to core 1.
#
# It reports, per phase (medians over rounds): the healthy origin's req/s, p50, p99 and
# failed requests (wrk's non-2xx + socket errors, and Gozer's own counters), the ratios to
# "alone" and to the fair control, Gozer's CPU µs per request (all requests it served in
# the window) and how busy each core and each process was; what the sick traffic got
# (Gozer's status causes: circuit open / concurrency / timeout / origin 503 ...); and the
# isolation machinery's own per-request cost from `go test -bench BenchmarkRequestPath`.
# Results: stdout and bench/results/isolation-latest.txt.
#
# Knobs (environment):
#   ISO_ROUNDS=3            rounds
#   ISO_DURATION=8          seconds of healthy wrk per phase (ISO_DURATION=10 for -d10s)
#   ISO_WARMUP=2            seconds of warm-up before the rounds (not reported)
#   ISO_CONNS=32            healthy wrk connections
#   ISO_NB_RATE=2000        open-loop neighbour: requests per second
#   ISO_NB_INFLIGHT=256     open-loop neighbour: most requests in flight
#   ISO_HAMMER_CONNS=64     closed-loop neighbour: wrk connections
#   ISO_HAMMER=1            0 skips the two hammer phases (~1 minute less)
#   ISO_SICK_FAIL=0.40 ISO_SICK_SLOW=0.30 ISO_SICK_HOLE=0.15   the sick origin's mix
#   ISO_SICK_SLOW_MIN=200ms ISO_SICK_SLOW_MAX=2s                 its slow answers' delays
#   ISO_MICRO=1             0 skips the go test micro-benchmark
#   ISO_PORT_BASE=18380     first of 7 ports (the next free block of 10 is used if taken)
#   ISO_OTHER_CPU_MAX=10    a phase during which other jobs used > this % of a core on the
#                           two cores is marked disturbed, redone once (ISO_RETRY_BUDGET
#                           seconds in all, default 40) and left out of the medians
#   ISO_QUIET_WAIT=30       before measuring, wait up to this many seconds for other jobs on
#                           the machine to use less than ISO_OTHER_CPU_MAX % of a core
#   ISO_GOZER_LOG_LEVEL=warn  Gozer's process log level (as bench/targets/gozer.sh). At warn,
#                           Gozer writes one "request failed" line per failed request, the sick
#                           neighbour's fast 503s included; "error" shows what that costs
#   ISO_PHASES="alone ctl-rate sick-rate ctl-hammer sick-hammer"  the phases, in round order
#   ISO_KEEP_TMP=1          keep the temp dir (configs, logs, raw outputs; Gozer's log can
#                           reach hundreds of MB)
#
# Exit status: non-zero when the harness failed (a tool missing, Gozer not building, a
# process not starting, a route not answering). A missed target is a result, not a failure.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

ISO_ROUNDS=${ISO_ROUNDS:-3}
ISO_DURATION=${ISO_DURATION:-8}
ISO_WARMUP=${ISO_WARMUP:-2}
ISO_CONNS=${ISO_CONNS:-32}
ISO_NB_RATE=${ISO_NB_RATE:-2000}
ISO_NB_INFLIGHT=${ISO_NB_INFLIGHT:-256}
ISO_HAMMER_CONNS=${ISO_HAMMER_CONNS:-64}
ISO_HAMMER=${ISO_HAMMER:-1}
ISO_SICK_FAIL=${ISO_SICK_FAIL:-0.40}
ISO_SICK_SLOW=${ISO_SICK_SLOW:-0.30}
ISO_SICK_HOLE=${ISO_SICK_HOLE:-0.15}
ISO_SICK_SLOW_MIN=${ISO_SICK_SLOW_MIN:-200ms}
ISO_SICK_SLOW_MAX=${ISO_SICK_SLOW_MAX:-2s}
ISO_MICRO=${ISO_MICRO:-1}
ISO_PORT_BASE=${ISO_PORT_BASE:-18380}
ISO_OTHER_CPU_MAX=${ISO_OTHER_CPU_MAX:-10}
ISO_RETRY_BUDGET=${ISO_RETRY_BUDGET:-40}
ISO_QUIET_WAIT=${ISO_QUIET_WAIT:-30}
ISO_KEEP_TMP=${ISO_KEEP_TMP:-0}
ISO_GOZER_LOG_LEVEL=${ISO_GOZER_LOG_LEVEL:-warn}
BODY_BYTES=128

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh # log warn die ensure_cmds bg_start stop_* cpu_ticks cores_busy_ticks wait_http ...
# shellcheck source=bench/lib/measure.sh
source bench/lib/measure.sh # to_us median ratio num
for f in log warn die ensure_cmds raise_nofile bg_start stop_all_started start_guardian alive cpu_ticks \
  cores_busy_ticks wait_http port_in_use to_us median ratio num; do
  declare -F "$f" >/dev/null || { echo "bench/lib no longer defines $f, which bench/isolation.sh uses" >&2; exit 1; }
done

PHASES=(alone ctl-rate sick-rate)
((ISO_HAMMER)) && PHASES+=(ctl-hammer sick-hammer)
if [[ -n ${ISO_PHASES:-} ]]; then read -r -a PHASES <<<"$ISO_PHASES"; fi
for p in "${PHASES[@]}"; do
  case $p in alone | ctl-rate | sick-rate | ctl-hammer | sick-hammer) ;; *) echo "unknown phase '$p' in ISO_PHASES" >&2; exit 2 ;; esac
done
declare -A PHASE_DESC=(
  [alone]="healthy wrk only"
  [ctl-rate]="+ ${ISO_NB_RATE} req/s open-loop on /control/ (healthy neighbour)"
  [sick-rate]="+ ${ISO_NB_RATE} req/s open-loop on /sick/ (sick neighbour)"
  [ctl-hammer]="+ wrk -c${ISO_HAMMER_CONNS} closed-loop on /control/ (healthy neighbour)"
  [sick-hammer]="+ wrk -c${ISO_HAMMER_CONNS} closed-loop on /sick/ (sick neighbour)"
)

# --- machine, tools, temp dir, cleanup ---------------------------------------------------

ensure_cmds wrk:wrk nginx:nginx curl:curl taskset:util-linux ss:iproute2 awk:gawk
command -v go >/dev/null || die "go is not on PATH"
NCPU=$(nproc)
if ((NCPU >= 2)); then
  PROXY_CPU=0 LOADGEN_CPU=1
else
  PROXY_CPU=0 LOADGEN_CPU=0
  warn "only $NCPU core: Gozer and the load side share core 0; the figures mean little"
fi
raise_nofile 65536
NOFILE=$(ulimit -n)

TMP=$(mktemp -d /tmp/gozer-isolation.XXXXXX)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all_started
  if ((ISO_KEEP_TMP)); then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_guardian "$TMP/pids"

# forget_pid PID: a process we waited for is gone; drop it so that the cleanup never
# signals a later process that happens to get the same pid.
forget_pid() {
  local p=$1 x keep=()
  for x in "${STARTED_PIDS[@]}"; do [[ $x == "$p" ]] || keep+=("$x"); done
  STARTED_PIDS=("${keep[@]}")
  printf '%s\n' "${STARTED_PIDS[@]}" >"$PIDS_FILE"
}

# timed OUT CMD...: runs CMD with its output in OUT and the CPU time it used (the shell's
# "times" of its children, as bench/lib/measure.sh does for wrk) in OUT.times.
timed() {
  local out=$1 rc=0
  shift
  "$@" >"$out" 2>&1 || rc=$?
  times >"$out.times"
  return "$rc"
}

# times_s OUT: the child CPU seconds recorded by timed.
times_s() {
  awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$1.times" 2>/dev/null || echo 0
}

# wait_line FILE REGEX SECS PID: poll FILE for a line matching REGEX, with a deadline.
wait_line() {
  local end=$((SECONDS + $3))
  while ! grep -qsE "$2" "$1"; do
    alive "$4" || return 1
    ((SECONDS < end)) || return 1
    sleep 0.05
  done
}

# Ports: 7 in a block of 10 nobody listens on.
pick_ports() {
  local base=$ISO_PORT_BASE i p busy
  for ((i = 0; i < 20; i++, base += 10)); do
    busy=0
    for ((p = base; p < base + 7; p++)); do
      if port_in_use "$p"; then busy=1; break; fi
    done
    ((busy)) || { PORT_BASE=$base; return 0; }
  done
  die "no free block of 7 ports from $ISO_PORT_BASE"
}
pick_ports
GOZER_PORT=$PORT_BASE
ADMIN_PORT=$((PORT_BASE + 1))
NGINX_PORT=$((PORT_BASE + 2))
SICK_PORTS="$((PORT_BASE + 3)) $((PORT_BASE + 4))"
CTL_PORTS="$((PORT_BASE + 5)) $((PORT_BASE + 6))"
GZ="http://127.0.0.1:$GOZER_PORT"
ORIGINS_URL="http://127.0.0.1:$ADMIN_PORT/admin/origins"

# --- build, micro-benchmark --------------------------------------------------------------

log "building gozer and bench/isolation"
go build -o "$TMP/gozer" ./gateway/cmd/gozer >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log" >&2; die "gozer does not build"; }
go build -o "$TMP/isolation" ./bench/isolation >>"$TMP/build.log" 2>&1 || { cat "$TMP/build.log" >&2; die "bench/isolation does not build"; }
GOZER_REV=$(git describe --always --dirty 2>/dev/null || echo 'no git')

# wait_quiet: other jobs on the two cores (busy ticks less our own processes'), sampled over
# one second, until they use at most ISO_OTHER_CPU_MAX % of a core or ISO_QUIET_WAIT ends.
QUIET_NOTE=""
wait_quiet() {
  local end=$((SECONDS + ISO_QUIET_WAIT)) start=$SECONDS b0 b1 o0 o1 p other
  while :; do
    o0=0; for p in "${STARTED_PIDS[@]}"; do o0=$((o0 + $(cpu_ticks "$p"))); done
    b0=$(cores_busy_ticks "$PROXY_CPU" "$LOADGEN_CPU")
    sleep 1
    b1=$(cores_busy_ticks "$PROXY_CPU" "$LOADGEN_CPU")
    o1=0; for p in "${STARTED_PIDS[@]}"; do o1=$((o1 + $(cpu_ticks "$p"))); done
    other=$(((b1 - b0 - (o1 - o0)) * 100 / CLK_TCK))
    if ((other <= ISO_OTHER_CPU_MAX)); then
      ((SECONDS - start <= 1)) || QUIET_NOTE+="waited $((SECONDS - start)) s for them to calm down; "
      return 0
    fi
    if ((SECONDS >= end)); then
      warn "other jobs still use ${other}% of a core on cores $PROXY_CPU,$LOADGEN_CPU after ${ISO_QUIET_WAIT}s: measuring anyway"
      QUIET_NOTE+="still ~${other}% of a core after waiting ${ISO_QUIET_WAIT} s; "
      return 0
    fi
    log "other jobs use ${other}% of a core on cores $PROXY_CPU,$LOADGEN_CPU: waiting (up to ${ISO_QUIET_WAIT}s in all)"
  done
}
wait_quiet

MICRO_OUT=$TMP/micro.txt
: >"$MICRO_OUT"
if ((ISO_MICRO)); then
  # -cpu 1 is the CPU per request of one loop; -cpu 2 is the brief's command as run on this
  # machine (GOMAXPROCS=2): wall time per op with two goroutines on two cores.
  log "go test -run '^\$' -bench BenchmarkRequestPath -benchtime=2s -cpu 1,2 ./gateway/origin/"
  go test -run '^$' -bench BenchmarkRequestPath -benchtime=2s -cpu 1,2 ./gateway/origin/ >"$MICRO_OUT" 2>&1 ||
    warn "the micro-benchmark failed: $(tail -n 3 "$MICRO_OUT" | tr '\n' ' ')"
  grep -E '^Benchmark' "$MICRO_OUT" >&2 || true
fi

# --- origins and Gozer -------------------------------------------------------------------

# healthy: nginx, one worker, as bench/targets/origin.sh sets it up, on our own port.
start_nginx() {
  local dir=$TMP/nginx body
  mkdir -p "$dir"
  body=$(head -c "$BODY_BYTES" /dev/zero | tr '\0' 'x')
  cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections $NOFILE; }
http {
  access_log off;
  keepalive_timeout 600s;
  keepalive_requests 1000000000;
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / {
      default_type text/plain;
      return 200 "$body";
    }
  }
}
CONF
  bg_start "$dir/stdout.log" taskset -c "$LOADGEN_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
  NGINX_PID=$BG_PID
  wait_http nginx "$NGINX_PID" "http://127.0.0.1:$NGINX_PORT/healthy/" 15 "$dir/error.log" || die "nginx (healthy origin) did not start"
}

# start_goorigin NAME PORTS FAIL SLOW HOLE: bench/isolation's origin on core 1; sets BG_PID.
start_goorigin() {
  local name=$1 ports=$2 addrs p
  addrs=$(for p in $ports; do printf '127.0.0.1:%s,' "$p"; done)
  bg_start "$TMP/$name.log" env GOMAXPROCS=1 taskset -c "$LOADGEN_CPU" "$TMP/isolation" origin -addrs "${addrs%,}" \
    -fail "$3" -slow "$4" -hole "$5" -slow-min "$ISO_SICK_SLOW_MIN" -slow-max "$ISO_SICK_SLOW_MAX" -body "$BODY_BYTES"
  local pid=$BG_PID
  for p in $ports; do
    wait_http "$name" "$pid" "http://127.0.0.1:$p/__ready" 15 "$TMP/$name.log" || die "$name origin did not start"
  done
  BG_PID=$pid
}

servers_yaml() { local p s=""; for p in $1; do s+="\"127.0.0.1:$p\", "; done; echo "[${s%, }]"; }

start_gozer() {
  cat >"$TMP/gozer.yaml" <<CONF
listeners:
  proxy: { addr: "127.0.0.1:$GOZER_PORT" }
  admin: { addr: "127.0.0.1:$ADMIN_PORT" }
server:
  event_loops: 1
  max_connections: 200000
  idle_timeout: 300s
  # All of the bench's clients are 127.0.0.1 (no per-client caps), and it reads
  # the causes Gozer names (shown to every client).
  max_connections_per_ip: 0
  max_requests_per_ip: 0
  status_headers: { expose: all }
log:
  level: $ISO_GOZER_LOG_LEVEL
  access_log: "off"
filters: { dir: "" }
origins:
  healthy:
    servers: ["127.0.0.1:$NGINX_PORT"]
    max_idle_per_server: 256
    max_connections_per_server: 1024
  # control and sick: the same isolation config; only the origin behind differs.
  control:
    servers: $(servers_yaml "$CTL_PORTS")
    read_timeout: 1s
    retries: 1
    max_concurrent_requests: 64
    max_idle_per_server: 256
    max_connections_per_server: 1024
  sick:
    servers: $(servers_yaml "$SICK_PORTS")
    read_timeout: 1s
    retries: 1
    max_concurrent_requests: 64
    max_idle_per_server: 256
    max_connections_per_server: 1024
    # breaker (50 %, 20 requests, 5s), retry_budget (0.2, 10/s, 10s), outlier: defaults
routes:
  - { path_prefix: "/healthy/", origin: healthy }
  - { path_prefix: "/control/", origin: control }
  - { path_prefix: "/sick/", origin: sick }
CONF
  bg_start "$TMP/gozer.log" taskset -c "$PROXY_CPU" "$TMP/gozer" -config "$TMP/gozer.yaml"
  GOZER_PID=$BG_PID
  wait_http gozer "$GOZER_PID" "http://127.0.0.1:$ADMIN_PORT/healthcheck" 20 "$TMP/gozer.log" || die "gozer did not start"
}

log "starting origins (core $LOADGEN_CPU) and gozer (core $PROXY_CPU) on ports $PORT_BASE-$((PORT_BASE + 6))"
start_nginx
start_goorigin control "$CTL_PORTS" 0 0 0
CTL_PID=$BG_PID
start_goorigin sick "$SICK_PORTS" "$ISO_SICK_FAIL" "$ISO_SICK_SLOW" "$ISO_SICK_HOLE"
SICK_PID=$BG_PID
start_gozer

# Every route answers through Gozer, with its status cause.
route_check() {
  local path=$1 want=$2 hdrs status cause
  hdrs=$(curl -s -m 5 -D - -o /dev/null "$GZ$path") || die "no answer from $GZ$path"
  status=$(awk 'NR == 1 { print $2 }' <<<"$hdrs")
  cause=$(awk 'BEGIN { RS = "\r?\n" } tolower($1) == "x-gozer-status:" { print $2 }' <<<"$hdrs")
  [[ -n $cause ]] || die "$GZ$path answered $status without X-Gozer-Status"
  if [[ $want != any && $status != "$want" ]]; then die "$GZ$path answered $status ($cause), want $want"; fi
  log "  $path -> $status $cause"
}
route_check /healthy/ 200
route_check /control/ 200
route_check /sick/ any
"$TMP/isolation" causes -url "$ORIGINS_URL" >/dev/null || die "GET $ORIGINS_URL failed"

# --- one phase ---------------------------------------------------------------------------

RUNS=$TMP/runs.tsv # one line per phase run; columns named in C_*
: >"$RUNS"
# shellcheck disable=SC2034 # the full list of columns, some only for reading the file
C_PHASE=1 C_ROUND=2 C_RPS=3 C_P50=4 C_P90=5 C_P99=6 C_REQ=7 C_ERR=8 C_GFAIL=9 C_GREQ=10 C_GCPU=11
# shellcheck disable=SC2034
C_GPCT=12 C_NGX=13 C_SICK=14 C_CTL=15 C_WRK=16 C_NB=17 C_CORE0=18 C_CORE1=19 C_OTHER=20 C_DIST=21 C_NBREQ=22 C_CLOSED=23 C_LOGB=24 C_DETAIL=25

snapshot() { "$TMP/isolation" causes -url "$ORIGINS_URL" >"$1" || die "GET $ORIGINS_URL failed"; }

# wait_drained: requests the neighbour left in flight (black-holed ones until the read
# timeout or the client's close) end before the window closes, so they count in it.
wait_drained() {
  local end=$((SECONDS + 5)) snap=$TMP/drain.txt
  while ((SECONDS < end)); do
    snapshot "$snap"
    awk '$1 == "inflight" && $3 != 0 { busy = 1 } END { exit busy }' "$snap" && return 0
    sleep 0.05
  done
  warn "requests still in flight at Gozer 5 s after the neighbour stopped: $(awk '$1 == "inflight" { printf "%s=%s ", $2, $3 }' "$snap")"
}

# run_phase PHASE ROUND TAG [RECORD]: one phase; appends to $RUNS unless RECORD is "no".
run_phase() {
  local phase=$1 round=$2 tag=$3 record=${4:-yes}
  local out=$TMP/$tag nb_kind=none nb_path="" nb_pid="" d=$ISO_DURATION
  case $phase in
    alone) ;;
    ctl-rate) nb_kind=load nb_path=/control/ ;;
    sick-rate) nb_kind=load nb_path=/sick/ ;;
    ctl-hammer) nb_kind=wrk nb_path=/control/ ;;
    sick-hammer) nb_kind=wrk nb_path=/sick/ ;;
    *) die "unknown phase $phase" ;;
  esac
  local nbd
  nbd=$(awk -v d="$d" 'BEGIN { printf "%.1f", d + 0.3 }')

  snapshot "$out.causes0"
  local g0 n0 s0 c0 b00 b10 t0
  g0=$(cpu_ticks "$GOZER_PID"); n0=$(cpu_ticks "$NGINX_PID"); s0=$(cpu_ticks "$SICK_PID"); c0=$(cpu_ticks "$CTL_PID")
  local lg0 lg1
  lg0=$(stat -c %s "$TMP/gozer.log")
  b00=$(cores_busy_ticks "$PROXY_CPU"); b10=$(cores_busy_ticks "$LOADGEN_CPU"); t0=$(date +%s%N)

  case $nb_kind in
    load)
      bg_start "$out.nb.log" timed "$out.nb" env GOMAXPROCS=1 taskset -c "$LOADGEN_CPU" "$TMP/isolation" load \
        -url "$GZ$nb_path" -rate "$ISO_NB_RATE" -conns "$ISO_NB_INFLIGHT" -duration "${nbd}s"
      nb_pid=$BG_PID
      wait_line "$out.nb" '^running' 10 "$nb_pid" || die "the neighbour load generator did not start: $(cat "$out.nb" "$out.nb.log" 2>/dev/null | tail -n 3)"
      ;;
    wrk)
      # wrk takes whole seconds only: it runs one second past the healthy wrk.
      bg_start "$out.nb.log" timed "$out.nb" taskset -c "$LOADGEN_CPU" wrk -t1 -c"$ISO_HAMMER_CONNS" -d"$((d + 1))s" \
        --timeout 5s --latency "$GZ$nb_path"
      nb_pid=$BG_PID
      ;;
  esac
  bg_start "$out.h.log" timed "$out.h" taskset -c "$LOADGEN_CPU" wrk -t1 -c"$ISO_CONNS" -d"${d}s" --latency "$GZ/healthy/"
  local h_pid=$BG_PID
  wait "$h_pid" || warn "healthy wrk exited non-zero ($phase round $round): $(tail -n 3 "$out.h")"
  forget_pid "$h_pid"
  if [[ -n $nb_pid ]]; then
    wait "$nb_pid" || warn "neighbour load exited non-zero ($phase round $round): $(tail -n 3 "$out.nb")"
    forget_pid "$nb_pid"
  fi
  wait_drained

  local g1 n1 s1 c1 b01 b11 t1
  t1=$(date +%s%N); b01=$(cores_busy_ticks "$PROXY_CPU"); b11=$(cores_busy_ticks "$LOADGEN_CPU")
  g1=$(cpu_ticks "$GOZER_PID"); n1=$(cpu_ticks "$NGINX_PID"); s1=$(cpu_ticks "$SICK_PID"); c1=$(cpu_ticks "$CTL_PID")
  snapshot "$out.causes1"
  lg1=$(stat -c %s "$TMP/gozer.log")
  alive "$GOZER_PID" || die "gozer died during $phase: $(tail -n 5 "$TMP/gozer.log")"

  # Gozer's counters over the window: "origin cause n" (also kept for the report).
  awk 'NR == FNR { if ($1 == "cause") b[$2 " " $3] = $4; next }
       $1 == "cause" { n = $4 - b[$2 " " $3]; if (n) print $2, $3, n }' "$out.causes0" "$out.causes1" >"$out.causes"
  awk 'NR == FNR { if ($1 == "opens" || $1 == "refused") b[$1 " " $2] = $3; next }
       $1 == "opens" || $1 == "refused" { print $1, $2, $3 - b[$1 " " $2] }' "$out.causes0" "$out.causes1" >"$out.breaker"

  local requests rps p50 p90 p99 errors detail
  requests=$(awk '/ requests in / {print $1; exit}' "$out.h")
  rps=$(awk '/^Requests\/sec:/ {print $2; exit}' "$out.h")
  p50=$(to_us "$(awk '$1 == "50%" {print $2; exit}' "$out.h")")
  p90=$(to_us "$(awk '$1 == "90%" {print $2; exit}' "$out.h")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2; exit}' "$out.h")")
  errors=$(awk '/Socket errors:/ {gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) s += $i}
                /Non-2xx or 3xx responses:/ {s += $NF} END {print s + 0}' "$out.h")
  detail=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); se = $0 } /Non-2xx or 3xx responses:/ { nx = $NF }
                END { printf "%s; non-2xx %d", (se == "" ? "no socket errors" : se), nx }' "$out.h")
  [[ -n $requests && -n $rps ]] || die "healthy wrk produced no result in $phase: $(cat "$out.h")"

  local gfail gclosed greq nbreq wrk_s nb_s
  # wrk stops with requests in flight: Gozer counts them FAILURE_CLIENT_CLOSED. Not a
  # failure the client saw (it had left), so they are counted apart.
  gfail=$(awk '$1 == "healthy" && $2 != "SUCCESS" && $2 != "FAILURE_CLIENT_CLOSED" { s += $3 } END { print s + 0 }' "$out.causes")
  gclosed=$(awk '$1 == "healthy" && $2 == "FAILURE_CLIENT_CLOSED" { s += $3 } END { print s + 0 }' "$out.causes")
  # More of them than wrk has connections cannot be wrk leaving: those count as failures.
  ((gclosed <= ISO_CONNS)) || gfail=$((gfail + gclosed - ISO_CONNS))
  greq=$(awk '{ s += $3 } END { print s + 0 }' "$out.causes")
  nbreq=$(awk -v o="${nb_path//\//}" 'o != "" && $1 == o { s += $3 } END { print s + 0 }' "$out.causes")
  wrk_s=$(times_s "$out.h")
  nb_s=0
  [[ -n $nb_pid ]] && nb_s=$(times_s "$out.nb")

  local line
  line=$(awk -v phase="$phase" -v round="$round" -v rps="$rps" -v p50="$p50" -v p90="$p90" -v p99="$p99" \
    -v req="$requests" -v err="$errors" -v gfail="$gfail" -v gclosed="$gclosed" -v greq="$greq" -v nbreq="$nbreq" \
    -v dg=$((g1 - g0)) -v dn=$((n1 - n0)) -v ds=$((s1 - s0)) -v dc=$((c1 - c0)) -v wrk_s="$wrk_s" -v nb_s="$nb_s" \
    -v b0=$((b01 - b00)) -v b1=$((b11 - b10)) -v tck="$CLK_TCK" -v wall=$(((t1 - t0) / 1000)) \
    -v maxo="$ISO_OTHER_CPU_MAX" -v detail="$detail" -v logb=$((lg1 - lg0)) 'BEGIN {
      u = 1e6 / tck                      # µs per tick
      g = dg * u; n = dn * u; s = ds * u; c = dc * u; w = wrk_s * 1e6; nb = nb_s * 1e6
      other = 100 * (b0 * u + b1 * u - g - n - s - c - w - nb) / wall
      printf "%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%d\t%d\t%d\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%d\t%d\t%d\t%s\n",
        phase, round, rps, p50, p90, p99, req, err, gfail, greq, (greq ? g / greq : 0), 100 * g / wall,
        100 * n / wall, 100 * s / wall, 100 * c / wall, 100 * w / wall, 100 * nb / wall,
        100 * b0 * u / wall, 100 * b1 * u / wall, other, (other > maxo ? "yes" : "no"), nbreq, gclosed, logb, detail }')
  LAST_DISTURBED=$(cut -f"$C_DIST" <<<"$line")
  [[ $record == yes ]] && printf '%s\n' "$line" >>"$RUNS"
  awk -F'\t' '{ printf "    %-11s r%-2s healthy %6s req/s p50 %5sus p99 %6sus err %s/%s | gozer %5s us/req %5s%% | core0 %5s%% core1 %5s%% other %5s%%%s | nb %s req\n",
    $1, $2, $3, $4, $6, $8, $9, $11, $12, $18, $19, $20, ($21 == "yes" ? " DISTURBED" : ""), $22 }' <<<"$line" >&2
  if [[ $nb_path == /sick/ ]]; then
    awk '$1 == "sick" { printf "      sick: %s %s\n", $2, $3 }' "$out.causes" >&2
  fi
}

# --- rounds ------------------------------------------------------------------------------

ISO_QUIET_WAIT=$((ISO_QUIET_WAIT / 2)) wait_quiet
log "warm-up (${ISO_WARMUP}s, not reported)"
ISO_DURATION_SAVED=$ISO_DURATION
ISO_DURATION=$ISO_WARMUP
run_phase ctl-rate 0 warmup no
ISO_DURATION=$ISO_DURATION_SAVED

RETRY_END=-1
for ((r = 1; r <= ISO_ROUNDS; r++)); do
  log "round $r/$ISO_ROUNDS: ${PHASES[*]}"
  for p in "${PHASES[@]}"; do
    run_phase "$p" "$r" "$p-$r"
    if [[ $LAST_DISTURBED == yes ]]; then
      ((RETRY_END >= 0)) || RETRY_END=$((SECONDS + ISO_RETRY_BUDGET))
      if ((SECONDS + ISO_DURATION < RETRY_END)); then
        warn "$p round $r was disturbed by other load on the machine: redoing it once"
        run_phase "$p" "$r" "$p-$r-redo"
      fi
    fi
  done
done

# --- report ------------------------------------------------------------------------------

# col PHASE COL: that column of the phase's clean runs (all its runs when none is clean).
col() {
  awk -F'\t' -v p="$1" -v c="$2" -v d="$C_DIST" 'NR == FNR { if ($1 == p && $d == "no") clean++; next }
    $1 == p && (!clean || $d == "no") { print $c }' "$RUNS" "$RUNS"
}
med() { col "$1" "$2" | median; }
sum_all() { awk -F'\t' -v p="$1" -v c="$2" '$1 == p { s += $c } END { print s + 0 }' "$RUNS"; }
used() {
  awk -F'\t' -v p="$1" -v d="$C_DIST" '$1 == p { n++; if ($d == "no") c++ } END { printf "%d/%d", (c ? c : n), n }' "$RUNS"
}
# per_round PHASE COL: "round value clean", the last clean run of each round, else its last run.
per_round() {
  awk -F'\t' -v p="$1" -v c="$2" -v d="$C_DIST" '$1 == p {
      if (!($2 in any)) order[++n] = $2
      any[$2] = $c; if ($d == "no") clean[$2] = $c }
    END { for (i = 1; i <= n; i++) { r = order[i]; print r, (r in clean ? clean[r] " yes" : any[r] " no") } }' "$RUNS"
}
# paired PHASE BASE COL: median over rounds of PHASE/BASE within the round, min–max, and
# how many rounds: only rounds where both runs were clean, unless there is none.
paired() {
  local v n
  v=$(awk 'NR == FNR { b[$1] = $2; bc[$1] = $3; next } ($1 in b) && b[$1] > 0 {
        r = sprintf("%.3f", $2 / b[$1]); all[++na] = r; if ($3 == "yes" && bc[$1] == "yes") cl[++nc] = r }
      END { if (nc) for (i = 1; i <= nc; i++) print cl[i], "clean"; else for (i = 1; i <= na; i++) print all[i], "all" }' \
    <(per_round "$2" "$3") <(per_round "$1" "$3"))
  [[ -n $v ]] || { echo "-"; return; }
  n=$(wc -l <<<"$v")
  if [[ $v == *clean* ]]; then n="$n clean"; else n="$n, none clean"; fi
  v=$(cut -d' ' -f1 <<<"$v")
  printf '%s (%s–%s; %s)' "$(median <<<"$v" | xargs printf '%.2f')" "$(sort -g <<<"$v" | head -n 1 | xargs printf '%.2f')" \
    "$(sort -g <<<"$v" | tail -n 1 | xargs printf '%.2f')" "$n"
}
verdict_le() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || a == "") print "-"; else print (a + 0 <= b + 0 ? "met" : "**NOT met**") }'; }

fair_of() { case $1 in sick-rate) echo ctl-rate ;; sick-hammer) echo ctl-hammer ;; *) echo "" ;; esac; }

report() {
  local p f
  echo "# Gozer isolation benchmark: a healthy origin with and without a sick neighbour"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), gozer $GOZER_REV, $(nproc) × $(lscpu 2>/dev/null | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print $2; exit }'), Linux $(uname -r)."
  echo "Command: \`bash bench/isolation.sh\` (ISO_ROUNDS=$ISO_ROUNDS, ISO_DURATION=$ISO_DURATION s, healthy wrk -t1 -c$ISO_CONNS)."
  echo
  echo "Layout: Gozer (event_loops 1, access log off) pinned to core $PROXY_CPU; on core $LOADGEN_CPU: the healthy wrk, the neighbour's"
  echo "load generator, the healthy origin (nginx, 1 worker, ${BODY_BYTES}-byte body), and the control and sick origins (bench/isolation,"
  echo "GOMAXPROCS=1, two servers each). Gozer config of control and sick: read_timeout 1s, retries 1, max_concurrent_requests 64,"
  echo "breaker (50 %, 20 req, 5 s), retry_budget (0.2, 10/s, 10 s) and outlier defaults; Gozer's log level $ISO_GOZER_LOG_LEVEL. The sick origin: ${ISO_SICK_FAIL} of requests 503 at once,"
  echo "${ISO_SICK_SLOW} answered 200 after ${ISO_SICK_SLOW_MIN}–${ISO_SICK_SLOW_MAX}, ${ISO_SICK_HOLE} black-holed, the rest 200 at once. The control origin: all 200 at once."
  echo
  local ndist
  ndist=$(awk -F'\t' -v d="$C_DIST" '$d == "yes" { n++ } END { print n + 0 }' "$RUNS")
  echo "Other jobs on the machine: ${QUIET_NOTE:-quiet at the start; }$ndist of $(wc -l <"$RUNS") phase runs were disturbed (other jobs > $ISO_OTHER_CPU_MAX % of a core) and are left out of the medians when the phase has a clean run."
  echo
  echo "Phases (interleaved in each round):"
  echo
  for p in "${PHASES[@]}"; do echo "- \`$p\`: ${PHASE_DESC[$p]}"; done
  echo
  echo "## Healthy origin (/healthy/), medians over rounds"
  echo
  echo "| phase | runs used | req/s | p50 µs | p90 µs | p99 µs | p99 min–max | **p99 vs alone** | p99 vs fair control | req/s vs alone | req/s vs fair control | healthy failed (wrk / Gozer) | Gozer CPU µs/req | Gozer core busy | neighbour req through Gozer |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  local a_p99 a_rps
  a_p99=$(med alone $C_P99) a_rps=$(med alone $C_RPS)
  for p in "${PHASES[@]}"; do
    f=$(fair_of "$p")
    local rps p50 p90 p99 fr fp
    rps=$(med "$p" $C_RPS) p50=$(med "$p" $C_P50) p90=$(med "$p" $C_P90) p99=$(med "$p" $C_P99)
    fr="-" fp="-"
    if [[ -n $f ]]; then fr=$(ratio "$rps" "$(med "$f" $C_RPS)"); fp=$(ratio "$p99" "$(med "$f" $C_P99)"); fi
    printf '| %s | %s | %s | %s | %s | %s | %s–%s | **%s** | %s | %s | %s | %s / %s | %s | %s%% | %s |\n' "$p" "$(used "$p")" \
      "$(num %.0f "$rps")" "$(num %.0f "$p50")" "$(num %.0f "$p90")" "$(num %.0f "$p99")" \
      "$(col "$p" $C_P99 | sort -g | head -n 1)" "$(col "$p" $C_P99 | sort -g | tail -n 1)" \
      "$(ratio "$p99" "$a_p99")" "$fp" "$(ratio "$rps" "$a_rps")" "$fr" \
      "$(sum_all "$p" $C_ERR)" "$(sum_all "$p" $C_GFAIL)" "$(num %.2f "$(med "$p" $C_GCPU)")" \
      "$(num %.1f "$(med "$p" $C_GPCT)")" "$(num %.0f "$(med "$p" $C_NBREQ)")"
  done
  echo
  echo "\"healthy failed\" sums every run (disturbed ones too): wrk's non-2xx + socket errors, and the requests Gozer's own counters"
  echo "(GET /admin/origins, requests_by_cause) ended with a cause other than SUCCESS for origin healthy, less FAILURE_CLIENT_CLOSED:"
  echo "wrk stops with up to $ISO_CONNS requests in flight, which Gozer then counts as closed by the client (\"client left at the end\""
  echo "in the table of every run; $(awk -F'\t' -v c=$C_CLOSED '{ s += $c } END { print s + 0 }' "$RUNS") in all). Gozer CPU µs/req = Gozer's"
  echo "utime+stime over the window / every request it served in it (healthy + neighbour), so it includes the neighbour's cheap fast 503s."
  echo
  echo "Per-round pairs (the ratio within each round, then the median, the spread and the number of rounds whose two runs were both"
  echo "clean; drift of the machine cancels):"
  echo
  echo "| phase | p99 / alone | p99 / fair control | req/s / alone | req/s / fair control |"
  echo "|---|---:|---:|---:|---:|"
  for p in "${PHASES[@]}"; do
    [[ $p == alone ]] && continue
    f=$(fair_of "$p")
    printf '| %s | %s | %s | %s | %s |\n' "$p" "$(paired "$p" alone $C_P99)" "$([[ -n $f ]] && paired "$p" "$f" $C_P99 || echo -)" \
      "$(paired "$p" alone $C_RPS)" "$([[ -n $f ]] && paired "$p" "$f" $C_RPS || echo -)"
  done
  echo
  echo "## Targets (issue 4)"
  echo
  local fails p99r
  local dfails
  fails=$(awk -F'\t' -v e=$C_ERR -v g=$C_GFAIL -v d=$C_DIST '$d == "no" { s += $e + $g } END { print s + 0 }' "$RUNS")
  dfails=$(awk -F'\t' -v e=$C_ERR -v g=$C_GFAIL -v d=$C_DIST -v x=$C_DETAIL '$d == "yes" && $e + $g > 0 {
      s += $e + $g; k = k sprintf("%s%s r%s: %s", (k == "" ? "" : "; "), $1, $2, $x) } END { printf "%d%s", s, (k == "" ? "" : " (" k ")") }' "$RUNS")
  for p in sick-rate sick-hammer; do
    [[ " ${PHASES[*]} " == *" $p "* ]] || continue
    f=$(fair_of "$p")
    p99r=$(ratio "$(med "$p" $C_P99)" "$a_p99")
    echo "- healthy p99 with the sick neighbour ($p) / alone = **$p99r** (target ≤ 1.10: $(verdict_le "$p99r" 1.10));" \
      "against its fair control ($f): **$(ratio "$(med "$p" $C_P99)" "$(med "$f" $C_P99)")** ($(verdict_le "$(ratio "$(med "$p" $C_P99)" "$(med "$f" $C_P99)")" 1.10))"
  done
  echo "- noise: the healthy p99 of \`alone\` itself spans $(col alone $C_P99 | sort -g | head -n 1)–$(col alone $C_P99 | sort -g | tail -n 1) µs over its runs" \
    "($(col alone $C_P99 | awk -v m="$a_p99" 'NR == 1 { lo = hi = $1 } { if ($1 < lo) lo = $1; if ($1 > hi) hi = $1 } END { if (m > 0) printf "%.2f–%.2f", lo / m, hi / m; else printf "-" }') × its median);" \
    "with a neighbour the spread is wider (see the p99 min–max column)"
  echo "- failed requests to the healthy origin in the clean runs: **$fails** (target 0: $( ((fails == 0)) && echo met || echo '**NOT met**'));" \
    "in the runs disturbed by other jobs: $dfails. (wrk counts a request not answered within its 2 s timeout as a socket timeout.)"
  local m1 m2
  m1=$(awk '/^BenchmarkRequestPath\/p2c[ \t]/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "ns/op") print $i }' "$MICRO_OUT" | head -n 1)
  m2=$(awk '/^BenchmarkRequestPath\/p2c-2[ \t]/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "ns/op") print $i }' "$MICRO_OUT" | head -n 1)
  if [[ -n $m1 ]]; then
    echo "- isolation machinery per request (BenchmarkRequestPath/p2c): **$m1 ns/op** on 1 CPU, $m2 ns/op wall with GOMAXPROCS=2" \
      "(target ≤ 1000 ns: $(verdict_le "$m1" 1000))"
  else
    echo "- isolation machinery per request: not measured (ISO_MICRO=0 or the benchmark failed)"
  fi
  echo
  echo "## What the neighbour's traffic got (Gozer's status causes, all runs of the phase summed)"
  echo
  echo "| phase | origin | requests | by cause | breaker closed→open | bulkhead refusals |"
  echo "|---|---|---:|---|---:|---:|"
  for p in "${PHASES[@]}"; do
    local o
    case $p in *rate | *hammer) ;; *) continue ;; esac
    o=control
    [[ $p == sick-* ]] && o=sick
    local files=("$TMP/$p"-*.causes) bfiles=("$TMP/$p"-*.breaker)
    awk -v o="$o" -v p="$p" 'FILENAME ~ /\.causes$/ && $1 == o { c[$2] += $3; n += $3 }
      FILENAME ~ /\.breaker$/ && $2 == o { b[$1] += $3 }
      END { s = ""; for (k in c) s = s sprintf("%s%s %d (%.1f%%)", (s == "" ? "" : ", "), k, c[k], 100 * c[k] / n)
            printf "| %s | %s | %d | %s | %d | %d |\n", p, o, n, s, b["opens"], b["refused"] }' "${files[@]}" "${bfiles[@]}"
  done
  local sp
  sp=${SICK_PORTS%% *}
  echo
  echo "The sick origin itself, whole run (warm-up and checks included): $(curl -s -m 3 "http://127.0.0.1:$sp/__stats" |
    awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }'). slow_abandoned = slow answers Gozer gave up on (read timeout) before they came."
  echo
  echo "The open-loop neighbour's own view (bench/isolation load; latency from the scheduled send time, medians over runs):"
  echo
  echo "| phase | sent | not sent (all $ISO_NB_INFLIGHT in flight) | status codes | client errors | p50 ms (all) | p99 ms (all) |"
  echo "|---|---:|---:|---|---|---:|---:|"
  for p in ctl-rate sick-rate; do
    local nbf=("$TMP/$p"-*.nb)
    [[ -e ${nbf[0]} ]] || continue
    awk -v p="$p" '
      $1 == "completed" { sent += $2 } $1 == "dropped" { drop += $2 }
      $1 == "status" { st[$2] += $3 } $1 == "error" { er[$2] += $3 }
      $1 == "lat_all_p50_us" { p50[++n50] = $2 } $1 == "lat_all_p99_us" { p99[++n99] = $2 }
      function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n ? (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) : -1 }
      END { s = ""; for (k in st) s = s sprintf("%s%s: %d", (s == "" ? "" : ", "), k, st[k])
            e = ""; for (k in er) e = e sprintf("%s%s: %d", (e == "" ? "" : ", "), k, er[k])
            printf "| %s | %d | %d | %s | %s | %.1f | %.1f |\n", p, sent, drop, s, (e == "" ? "none" : e), med(p50, n50) / 1000, med(p99, n99) / 1000 }' "${nbf[@]}"
  done
  echo
  echo "## Where the CPU went (medians, % of one core over the window)"
  echo
  echo "| phase | Gozer (core $PROXY_CPU) | core $PROXY_CPU busy | nginx healthy | sick origin | control origin | healthy wrk | neighbour generator | core $LOADGEN_CPU busy | other jobs (both cores) | saturated (≥ 95 %) | Gozer process log written |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
  for p in "${PHASES[@]}"; do
    printf '| %s | %s%% | %s%% | %s%% | %s%% | %s%% | %s%% | %s%% | %s%% | %s%% | %s | %s MB |\n' "$p" \
      "$(num %.1f "$(med "$p" $C_GPCT)")" "$(num %.1f "$(med "$p" $C_CORE0)")" "$(num %.1f "$(med "$p" $C_NGX)")" \
      "$(num %.1f "$(med "$p" $C_SICK)")" "$(num %.1f "$(med "$p" $C_CTL)")" "$(num %.1f "$(med "$p" $C_WRK)")" \
      "$(num %.1f "$(med "$p" $C_NB)")" "$(num %.1f "$(med "$p" $C_CORE1)")" "$(num %.1f "$(med "$p" $C_OTHER)")" \
      "$(awk -v a="$(med "$p" $C_CORE0)" -v b="$(med "$p" $C_CORE1)" 'BEGIN {
        if (a >= 95 && b >= 95) print "both cores"; else if (a >= 95) print "Gozer'"'"'s core"
        else if (b >= 95) print "the load side'"'"'s core"; else print "neither" }')" \
      "$(num %.1f "$(med "$p" $C_LOGB | awk '{ print ($1 == "-" ? "-" : $1 / 1e6) }')")"
  done
  echo
  echo "When the load side's core is saturated, the healthy wrk competes for it with the neighbour's generator and origin:"
  echo "a lower healthy req/s (and a higher latency, which wrk measures from that core) is then partly the load side's."
  echo
  echo "## Every run"
  echo
  echo "| phase | round | req/s | p50 µs | p90 µs | p99 µs | requests | wrk errors | Gozer failed (healthy) | client left at the end | Gozer requests | Gozer µs/req | Gozer % | core $PROXY_CPU % | core $LOADGEN_CPU % | other % | disturbed | wrk error detail |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $23, $10, $11, $12, $18, $19, $20, $21, $25 }' "$RUNS"
  echo
  echo "## Isolation machinery per request (go test -run '^\$' -bench BenchmarkRequestPath -benchtime=2s -cpu 1,2 ./gateway/origin/)"
  echo
  if [[ -s $MICRO_OUT ]]; then
    echo '```'
    grep -E '^(Benchmark|cpu:|ok|FAIL)' "$MICRO_OUT" || true
    echo '```'
    echo
    echo "ResolveAt → Admit → Pick → AttemptDone → Finish over 3 servers, plus one time.Now() per op. Without a -N suffix: GOMAXPROCS=1,"
    echo "i.e. CPU per request of one loop; -2: wall time per op with two goroutines on the two cores (CPU ≈ 2 × that when both are busy)."
  else
    echo "not run (ISO_MICRO=0)"
  fi
  echo
  echo "## Caveats"
  echo
  local logmb
  logmb=$(awk -F'\t' -v c=$C_LOGB '{ s += $c } END { printf "%.0f", s / 1e6 }' "$RUNS")
  if ((logmb > 10)); then
    echo "- Gozer's process log (level $ISO_GOZER_LOG_LEVEL) got one \"request failed\" warning per failed request, the neighbour's fast"
    echo "  503s included: $logmb MB over the runs (see the CPU table). It goes through zerolog's diode, whose writer goroutine"
    echo "  runs on Gozer's core (GOMAXPROCS=1) and makes one write(2) per line, so a sick neighbour's failures cost the healthy"
    echo "  traffic that CPU too. ISO_GOZER_LOG_LEVEL=error shows the difference; sampling or rate-limiting that warning per"
    echo "  origin and cause would remove most of it."
  fi
  echo "- Core $LOADGEN_CPU runs both load generators and all origins: when the neighbour's generator, the sick/control origin and"
  echo "  the second wrk take CPU there, the healthy wrk gets less and the healthy req/s can drop (and latency rise) because the"
  echo "  LOAD side is busier, not because Gozer is slower. Compare with the fair control phases (same generator, same rate or"
  echo "  connections, a healthy origin behind the same Gozer config), and look at Gozer's CPU µs/req and core $PROXY_CPU busy."
  echo "- Gozer has one event loop: every request of the neighbour, a fast 503 included, takes its turn on that loop. The"
  echo "  closed-loop hammer re-sends the moment it gets an answer, so once the breaker is open it becomes a flood of cheap"
  echo "  503s that competes with the healthy traffic for the loop. That is CPU sharing in the gateway, which per-origin"
  echo "  isolation does not cover (that would need per-route rate limits or fair queueing on the loop), not the sick origin"
  echo "  leaking through: the healthy flood of ctl-hammer costs the healthy origin too."
  if [[ " ${PHASES[*]} " == *" sick-hammer "* && " ${PHASES[*]} " == *" ctl-hammer "* ]]; then
    echo "  Here the sick flood sent $(ratio "$(med sick-hammer $C_NBREQ)" "$(med ctl-hammer $C_NBREQ)")× the requests of the healthy one (a fast 503 comes back sooner than"
    echo "  a proxied 200) at $(num %.2f "$(med sick-hammer $C_GCPU)") vs $(num %.2f "$(med ctl-hammer $C_GCPU)") Gozer µs/req, and Gozer's core was $(num %.0f "$(med sick-hammer $C_CORE0)") % busy (vs"
    echo "  $(num %.0f "$(med ctl-hammer $C_CORE0)") %, when the load side's core was the limit): that is why sick-hammer is worse than its control."
  fi
  echo "- p99 of a closed-loop wrk on loopback moves from run to run, more so when a neighbour shares the load side's core:"
  echo "  see the p99 min–max column and the spread of the per-round pairs before reading much into a ratio near 1.0."
  echo "  \"other jobs\" is CPU on the two cores not used by our processes: above $ISO_OTHER_CPU_MAX % of a core the run is marked"
  echo "  disturbed, redone once if time allows, and left out of the medians."
  echo "- Gozer CPU µs/req is over all requests in the window (healthy + neighbour); a fast 503 costs less than a proxied"
  echo "  request, so that figure falls when the sick neighbour's share grows."
}

mkdir -p bench/results
RESULT=bench/results/isolation-latest.txt
report | tee "$RESULT"
log "written to $RESULT"
