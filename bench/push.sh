#!/usr/bin/env bash
# Push benchmark (issue 5, item 8): Gozer's websocket push side by side with nginx + nchan.
#
#   bash bench/push.sh          (what `make bench-push` runs; a few minutes at 100,000 connections)
#   PUSH_N=2000 PUSH_DURATION=3 bash bench/push.sh     (a smoke run, well under a minute)
#
# For each target in turn (started fresh, pinned to core 0, one event loop / one worker),
# bench/pushload (pinned to core 1) holds PUSH_N websocket connections from source addresses
# 127.0.0.2.. and measures, in one run:
#   memory     the target's user-space memory per idle connection: RSS of all its processes
#              with the connections open, less before, / N (Gozer: a GC first, via its admin
#              pprof, and GODEBUG=madvdontneed=1; the Go heap figure too)
#   push       PUSH_RATE messages/s for PUSH_DURATION s, each POSTed to the push API for a
#              random connected id, open loop: delivered/s, POST-to-device latency p50/p99/p999
#              (the message carries its send time), lost messages
#   broadcast  PUSH_BROADCASTS times one POST to the broadcast URL: time until all N have it
#              (median over rounds) and how many did
# and prints them with the ratios gozer / nchan and the issue's targets: <= 1 KB per idle
# connection, broadcast to 100,000 in under 1 s, p99 under 5 ms at 10,000 messages/s, and
# each better than nchan. Results: stdout and bench/results/push-latest.txt (+ a timestamped copy).
#
# Both targets serve the same URLs (bench/push/gozer.yaml, bench/push/nchan.conf.tmpl):
# devices on ws://127.0.0.1:PORT/push/ws?id=ID, the API on POST /push/ID and /push/broadcast.
#
# Knobs (environment):
#   PUSH_N=100000            connections (capped, with a warning, to what the open-file limit allows)
#   PUSH_RATE=10000          push phase: messages per second (0 skips the phase)
#   PUSH_DURATION=10         push phase: seconds
#   PUSH_BROADCASTS=3        broadcast rounds (0 skips the phase)
#   PUSH_TARGETS="gozer nchan"
#   PUSH_SIZE=64             message size, bytes
#   PUSH_CONN_RATE=20000     new connections per second
#   PUSH_SENDERS=64          push API connections of the load client (messages in flight at most)
#   PUSH_GOZER_GOMAXPROCS    GOMAXPROCS for Gozer (default: unset; Gozer then takes its
#                            event loops + 1, so 2 with the bench's one loop)
#   PUSH_NCHAN_SHM           nchan_shared_memory_size (default: 256m, or 4 KiB per connection if more)
#   PUSH_OTHER_CPU_MAX=10    a phase during which other jobs took more than this % of a core
#                            on the two cores is flagged as disturbed in the report
#   PUSH_QUIET_WAIT=15       before each target, wait up to this many seconds for other jobs
#                            to use less than PUSH_OTHER_CPU_MAX % of a core on the two cores
#   PUSH_RETRIES=1           a target whose run other jobs disturbed is run again, this many
#                            times at most; the least disturbed run is reported
#   PUSH_STRICT=1            exit non-zero when Gozer could not be measured
#   PUSH_KEEP_TMP=1          keep the temp dir (configs, logs, raw results)
#   PUSH_GOZER_PORT=18580 PUSH_GOZER_ADMIN_PORT=18581   must match bench/push/gozer.yaml
#   PUSH_NCHAN_PORT=18582 PUSH_NCHAN_API_PORT=18583
#   NGINX_MODULES_DIR=/usr/lib/nginx/modules
#
# Exit status: non-zero when the harness failed (a tool missing, nchan not starting or not
# measured, the load client failing against it). Gozer not building, not serving push or
# missing a target is a result (PUSH_STRICT=1 makes the first two fail).
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

PUSH_N=${PUSH_N:-100000}
PUSH_RATE=${PUSH_RATE:-10000}
PUSH_DURATION=${PUSH_DURATION:-10}
PUSH_BROADCASTS=${PUSH_BROADCASTS:-3}
PUSH_TARGETS=${PUSH_TARGETS:-gozer nchan}
PUSH_SIZE=${PUSH_SIZE:-64}
PUSH_CONN_RATE=${PUSH_CONN_RATE:-20000}
PUSH_SENDERS=${PUSH_SENDERS:-64}
PUSH_GOZER_GOMAXPROCS=${PUSH_GOZER_GOMAXPROCS:-}
PUSH_NCHAN_SHM=${PUSH_NCHAN_SHM:-}
PUSH_OTHER_CPU_MAX=${PUSH_OTHER_CPU_MAX:-10}
PUSH_QUIET_WAIT=${PUSH_QUIET_WAIT:-15}
PUSH_RETRIES=${PUSH_RETRIES:-1}
PUSH_STRICT=${PUSH_STRICT:-0}
PUSH_KEEP_TMP=${PUSH_KEEP_TMP:-0}
PUSH_GOZER_PORT=${PUSH_GOZER_PORT:-18580}
PUSH_GOZER_ADMIN_PORT=${PUSH_GOZER_ADMIN_PORT:-18581}
PUSH_NCHAN_PORT=${PUSH_NCHAN_PORT:-18582}
PUSH_NCHAN_API_PORT=${PUSH_NCHAN_API_PORT:-18583}
NGINX_MODULES_DIR=${NGINX_MODULES_DIR:-/usr/lib/nginx/modules}
PUSH_N_ASKED=$PUSH_N

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh

RESULTS_DIR=$REPO/bench/results
WORK=$(mktemp -d /tmp/gozer-push-bench.XXXXXX)
COMMAND="PUSH_N=$PUSH_N PUSH_RATE=$PUSH_RATE PUSH_DURATION=$PUSH_DURATION PUSH_BROADCASTS=$PUSH_BROADCASTS PUSH_TARGETS=\"$PUSH_TARGETS\" bash bench/push.sh"

bench_exit_setup "$PUSH_KEEP_TMP"

read -r -a TARGETS <<<"$PUSH_TARGETS"
for t in "${TARGETS[@]}"; do
  [[ $t == gozer || $t == nchan ]] || die "unknown target '$t' (PUSH_TARGETS: gozer, nchan)"
done

# --- 1. tools, kernel settings, limits, cores --------------------------------------------

command -v go >/dev/null || die "go is not installed"
ensure_cmds curl:curl taskset:util-linux pgrep:procps ss:iproute2
if [[ " ${TARGETS[*]} " == *" nchan "* ]]; then
  ensure_cmds nginx:nginx
  [[ -e $NGINX_MODULES_DIR/ngx_nchan_module.so ]] || ensure_pkgs libnginx-mod-nchan
  [[ -e $NGINX_MODULES_DIR/ngx_nchan_module.so ]] ||
    die "libnginx-mod-nchan is installed but $NGINX_MODULES_DIR/ngx_nchan_module.so is not there (set NGINX_MODULES_DIR)"
fi

# sysctl_at_least KEY VALUE raises a numeric sysctl to VALUE if it is lower and writable;
# what it did or could not do goes to the report.
SYSCTL_NOTES=()
sysctl_at_least() {
  local key=$1 want=$2 file=/proc/sys/${1//.//} cur
  cur=$(cat "$file" 2>/dev/null) || { SYSCTL_NOTES+=("$key: not readable"); return 0; }
  ((cur >= want)) && return 0
  if echo "$want" >"$file" 2>/dev/null; then
    SYSCTL_NOTES+=("$key $cur -> $want")
  else
    SYSCTL_NOTES+=("$key is $cur, could not raise it to $want")
    warn "could not raise $key from $cur to $want"
  fi
}
# Up to 100,000 connections towards one port: the client spreads them over source
# addresses (25,000 each), and each needs that many ephemeral ports.
read -r PORT_LO PORT_HI </proc/sys/net/ipv4/ip_local_port_range
if ((PORT_LO > 1024 || PORT_HI < 65535)); then
  if echo "1024 65535" >/proc/sys/net/ipv4/ip_local_port_range 2>/dev/null; then
    SYSCTL_NOTES+=("net.ipv4.ip_local_port_range $PORT_LO-$PORT_HI -> 1024-65535")
  else
    SYSCTL_NOTES+=("net.ipv4.ip_local_port_range is $PORT_LO-$PORT_HI (not writable)")
  fi
fi
sysctl_at_least net.core.somaxconn 4096
sysctl_at_least net.ipv4.tcp_max_syn_backlog 4096
sysctl_at_least fs.nr_open $((PUSH_N + 10000))
sysctl_at_least fs.file-max $((3 * PUSH_N + 100000))

# Each side holds one descriptor per connection (and nchan's nginx a few more of its own).
raise_nofile $((PUSH_N + 5000))
NOFILE=$(ulimit -n)
N_NOTE=""
if ((PUSH_N > NOFILE - 1500)); then
  PUSH_N=$((NOFILE - 1500))
  N_NOTE="PUSH_N=$PUSH_N_ASKED asked for, **capped to $PUSH_N**: the open-file limit is $NOFILE (hard limit $(ulimit -Hn)) and could not be raised (raising it needs CAP_SYS_RESOURCE or a higher hard limit from the container)"
  warn "$N_NOTE"
fi
((PUSH_N > 0)) || die "no room for any connection in $NOFILE open files"

if (($(nproc) >= 2)); then
  PROXY_CPU=0 LOADGEN_CPU=1 BENCH_CORES=0,1
else
  PROXY_CPU=0 LOADGEN_CPU=0 BENCH_CORES=0
  warn "one core only: target and load client share it; ratios still mean something, absolute figures do not"
fi

for p in "$PUSH_GOZER_PORT" "$PUSH_GOZER_ADMIN_PORT" "$PUSH_NCHAN_PORT" "$PUSH_NCHAN_API_PORT"; do
  if port_in_use "$p"; then die "port $p is already in use (a previous run still up?)"; fi
done

log "building bench/pushload"
go build -o "$WORK/pushload" ./bench/pushload || die "bench/pushload does not build"

# --- 2. targets ------------------------------------------------------------------------

GOZER_PROBLEM=""
HARNESS_FAILED=0
PROBLEMS=()
declare -A R DESC # R[target.key] = value from pushload's "result" lines; DESC[target]

# Each target_X_start starts X pinned to core $PROXY_CPU and sets T_PID, T_WS (host:port of
# the websocket listener), T_API (push API base URL), T_READY (200 when up), T_HEAP (Go
# pprof heap URL, or ""), T_LOG, T_DESC. Non-zero with T_FAIL set when it cannot.
# shellcheck disable=SC2317 # called as target_${name}_start
target_gozer_start() {
  T_FAIL=""
  if ! go build -o "$WORK/gozer" ./gateway/cmd/gozer >"$WORK/gozer-build.log" 2>&1; then
    T_FAIL="does not build: $(head -n 3 "$WORK/gozer-build.log" | tr '\n' ' ')"
    return 1
  fi
  if ! grep -q "127.0.0.1:$PUSH_GOZER_PORT\"" bench/push/gozer.yaml || ! grep -q "127.0.0.1:$PUSH_GOZER_ADMIN_PORT\"" bench/push/gozer.yaml; then
    die "bench/push/gozer.yaml does not listen on PUSH_GOZER_PORT=$PUSH_GOZER_PORT / PUSH_GOZER_ADMIN_PORT=$PUSH_GOZER_ADMIN_PORT"
  fi
  local -a envs=(GODEBUG=madvdontneed=1)
  [[ -n $PUSH_GOZER_GOMAXPROCS ]] && envs+=("GOMAXPROCS=$PUSH_GOZER_GOMAXPROCS")
  T_LOG=$WORK/gozer.log
  bg_start "$T_LOG" env "${envs[@]}" taskset -c "$PROXY_CPU" "$WORK/gozer" -config bench/push/gozer.yaml
  T_PID=$BG_PID
  T_WS=127.0.0.1:$PUSH_GOZER_PORT
  T_API=http://127.0.0.1:$PUSH_GOZER_ADMIN_PORT
  T_READY=$T_API/healthcheck
  T_HEAP="$T_API/debug/pprof/heap?gc=1&debug=1"
  T_DESC="Gozer ($(git describe --always --dirty 2>/dev/null || echo 'no git')): bench/push/gozer.yaml (event_loops 1, access log off, push.ping_interval 1h, rate limit out of the way, bench/push/scripts accepts every id), GODEBUG=madvdontneed=1, GOMAXPROCS=${PUSH_GOZER_GOMAXPROCS:-unset (Gozer: event loops + 1)}"
}

# shellcheck disable=SC2317 # called as target_${name}_start
target_nchan_start() {
  T_FAIL=""
  local dir=$WORK/nchan shm=$PUSH_NCHAN_SHM
  mkdir -p "$dir/body"
  if [[ -z $shm ]]; then
    shm=$((PUSH_N * 4 / 1024 > 256 ? PUSH_N * 4 / 1024 : 256))m
  fi
  # nchan held fewer websocket subscribers than worker_connections (19,000 slots held ~17,600
  # on nginx 1.22 / nchan 1.3.6, then "worker_connections are not enough"): give it twice N.
  sed -e "s|@MODULES_DIR@|$NGINX_MODULES_DIR|g; s|@CPU_MASK@|$(cpu_mask "$PROXY_CPU")|g; s|@NOFILE@|$NOFILE|g" \
    -e "s|@WORKER_CONNECTIONS@|$((2 * PUSH_N + 1000))|g; s|@SHM@|$shm|g; s|@DIR@|$dir|g" \
    -e "s|@WS_PORT@|$PUSH_NCHAN_PORT|g; s|@API_PORT@|$PUSH_NCHAN_API_PORT|g" bench/push/nchan.conf.tmpl >"$dir/nginx.conf"
  T_LOG=$dir/error.log
  bg_start "$dir/stdout.log" taskset -c "$PROXY_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
  T_PID=$BG_PID
  T_WS=127.0.0.1:$PUSH_NCHAN_PORT
  T_API=http://127.0.0.1:$PUSH_NCHAN_API_PORT
  T_READY=$T_API/ready
  T_HEAP=""
  local v
  v=$(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null | sed 's/^[0-9]*://; s/-.*//')
  T_DESC="nginx $(nginx -v 2>&1 | sed 's|.*/||') + nchan ${v:-?} (Debian libnginx-mod-nchan): bench/push/nchan.conf.tmpl (worker_processes 1, worker_connections $((2 * PUSH_N + 1000)), memory store, nchan_shared_memory_size $shm, nchan_message_buffer_length 0, each subscriber multiplexed on its own channel + \"broadcast\"), access log off"
}

# cpu_mask N prints nginx's worker_cpu_affinity mask for core N (e.g. 100 for core 2).
# shellcheck disable=SC2317 # called by target_nchan_start
cpu_mask() {
  local n=$1 m="1" i
  for ((i = 0; i < n; i++)); do m="${m}0"; done
  echo "$m"
}

# wait_quiet: other jobs on the bench cores (nothing of ours runs between targets), sampled
# over one second, until they use at most PUSH_OTHER_CPU_MAX % of a core or PUSH_QUIET_WAIT ends.
QUIET_NOTES=()
wait_quiet() {
  local end=$((SECONDS + PUSH_QUIET_WAIT)) start=$SECONDS b0 b1 other
  while :; do
    b0=$(cores_busy_ticks "${BENCH_CORES//,/ }")
    sleep 1
    b1=$(cores_busy_ticks "${BENCH_CORES//,/ }")
    other=$(((b1 - b0) * 100 / CLK_TCK))
    if ((other <= PUSH_OTHER_CPU_MAX)); then
      ((SECONDS - start <= 1)) || QUIET_NOTES+=("$1: waited $((SECONDS - start)) s for other jobs to calm down")
      return 0
    fi
    if ((SECONDS >= end)); then
      warn "other jobs still use ${other}% of a core on cores $BENCH_CORES after ${PUSH_QUIET_WAIT}s: measuring anyway"
      QUIET_NOTES+=("$1: other jobs still used ~${other}% of a core after waiting ${PUSH_QUIET_WAIT} s")
      return 0
    fi
    log "other jobs use ${other}% of a core on cores $BENCH_CORES: waiting (up to ${PUSH_QUIET_WAIT}s in all)"
  done
}

# run_once NAME TRY: start the target fresh, check its push endpoint, run pushload against
# it into $WORK/NAME.TRY.results, stop it. Non-zero (and the problem recorded) when the
# target could not be measured.
run_once() {
  local name=$1 try=$2 code out=$WORK/$1.$2.results log=$WORK/$1.$2.pushload.log rc=0
  T_PID="" T_FAIL=""
  wait_quiet "$name"
  log "starting $name on core $PROXY_CPU"
  if ! "target_${name}_start"; then
    target_problem "$name" "${T_FAIL:-does not start}"
    return 1
  fi
  DESC[$name]=$T_DESC
  if ! wait_http "$name" "$T_PID" "$T_READY" 30 "$T_LOG"; then
    target_problem "$name" "does not start: $WAIT_FAIL_REASON"
    stop_pid "$T_PID"
    return 1
  fi
  # One handshake by hand first, so that a target without push says so at once.
  code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
    "http://$T_WS/push/ws?id=bench-check" || true)
  if [[ $code != 101 ]]; then
    target_problem "$name" "GET /push/ws?id=bench-check answered $code, not 101: push is not served"
    stop_pid "$T_PID"
    return 1
  fi
  log "$name: $PUSH_N connections, then $PUSH_RATE msg/s for ${PUSH_DURATION}s, then $PUSH_BROADCASTS broadcasts (load client on core $LOADGEN_CPU)"
  taskset -c "$LOADGEN_CPU" "$WORK/pushload" -ws "$T_WS" -api "$T_API" -n "$PUSH_N" -pid "$T_PID" \
    -go-heap-url "$T_HEAP" -rate "$PUSH_RATE" -duration "${PUSH_DURATION}s" -broadcasts "$PUSH_BROADCASTS" \
    -size "$PUSH_SIZE" -conn-rate "$PUSH_CONN_RATE" -senders "$PUSH_SENDERS" -clk-tck "$CLK_TCK" \
    -cores "$BENCH_CORES" >"$out" 2> >(tee "$log" >&2) || rc=$?
  if ((rc != 0)); then
    target_problem "$name" "the load client failed (exit $rc): $(tail -n 1 "$log")"
  elif ! alive "$T_PID"; then
    target_problem "$name" "died during the run: $(tail -n 1 "$T_LOG" 2>/dev/null)"
    rc=1
  fi
  stop_pid "$T_PID"
  return "$rc"
}

# max_other FILE: the most CPU (% of a core) other jobs took during any phase of a run.
max_other() {
  awk '$1 == "result" && $2 ~ /_other_cpu_pct$/ && $3 + 0 > m { m = $3 + 0 } END { print m + 0 }' "$1"
}

# measure NAME: run_once, and again (PUSH_RETRIES times at most) while other jobs on the
# machine disturbed the run; the least disturbed run is the one reported.
RUN_NOTES=()
measure() {
  local name=$1 try best="" best_other="" other tries=""
  for ((try = 1; try <= PUSH_RETRIES + 1; try++)); do
    if ! run_once "$name" "$try"; then
      if [[ -z $best && -e $WORK/$name.$try.results ]]; then best=$try; fi
      break
    fi
    other=$(max_other "$WORK/$name.$try.results")
    tries+="${tries:+, }run $try: ${other}%"
    if [[ -z $best ]] || ((other < best_other)); then best=$try best_other=$other; fi
    ((other > PUSH_OTHER_CPU_MAX)) || break
    if ((try <= PUSH_RETRIES)); then
      log "$name: other jobs took up to ${other}% of a core during a phase: measuring it again"
    fi
  done
  if [[ $tries == *", "* ]]; then
    RUN_NOTES+=("$name measured again because other jobs disturbed it (most CPU they took in a phase, % of a core: $tries); the report shows run $best")
  fi
  [[ -n $best ]] || return 0
  while read -r _ key val; do R[$name.$key]=$val; done < <(grep '^result ' "$WORK/$name.$best.results")
}

target_problem() {
  warn "$1: $2"
  PROBLEMS+=("$1: $2")
  if [[ $1 == gozer ]]; then
    GOZER_PROBLEM+="${GOZER_PROBLEM:+; }$2"
  else
    HARNESS_FAILED=1
  fi
}

for t in "${TARGETS[@]}"; do measure "$t"; done

# --- 3. report -------------------------------------------------------------------------

# v T KEY prints R[T.KEY] or "-".
v() { echo "${R[$1.$2]:--}"; }

# ratio A B prints A/B with two decimals, or "-" unless both are numbers and B > 0.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 <= 0) print "-"; else printf "%.2f", a / b }'
}

# us_to_ms US prints microseconds as milliseconds, or "-".
us_to_ms() { awk -v v="$1" 'BEGIN { if (v == "-" || v < 0) print "-"; else printf "%.2f", v / 1000 }'; }

# median_of T SUFFIX prints the median over broadcast rounds of R[T.bcastN_SUFFIX].
median_of() {
  local r vals=()
  for ((r = 1; r <= PUSH_BROADCASTS; r++)); do
    [[ -n ${R[$1.bcast${r}_$2]:-} ]] && vals+=("${R[$1.bcast${r}_$2]}")
  done
  ((${#vals[@]})) || { echo "-"; return; }
  printf '%s\n' "${vals[@]}" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}

# lt A B: is A < B (both numbers)?
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && b != "-" && a + 0 < b + 0) }'; }

# vs_nchan G N: how Gozer's G compares with nchan's N (lower is better).
vs_nchan() {
  if [[ $2 == - ]]; then echo "nchan not measured"; elif lt "$1" "$2"; then echo "better than nchan"; else echo "**not better than nchan**"; fi
}

verdict_mem() {
  local g n
  g=$(v gozer rss_bytes_per_conn) n=$(v nchan rss_bytes_per_conn)
  [[ $g == - ]] && { echo "not measured"; return; }
  if ((g <= 1024)); then echo "≤ 1 KB: met; $(vs_nchan "$g" "$n")"; else echo "≤ 1 KB: **NOT met**; $(vs_nchan "$g" "$n")"; fi
}

verdict_p99() {
  local g n lost
  g=$(v gozer tput_p99_us) n=$(v nchan tput_p99_us) lost=$(v gozer tput_lost)
  [[ $g == - ]] && { echo "not measured"; return; }
  local s
  if lt "$g" 5000; then s="< 5 ms: met"; else s="< 5 ms: **NOT met**"; fi
  ((PUSH_RATE >= 10000)) || s+=" (but at $PUSH_RATE msg/s, not 10,000)"
  [[ $lost == 0 ]] || s+=", **$lost lost**"
  echo "$s; $(vs_nchan "$g" "$n")"
}

verdict_bcast() {
  local g n est
  g=$(v gozer bcast_all_ms_median) n=$(v nchan bcast_all_ms_median)
  [[ $g == - ]] && { echo "not measured (or no round reached every connection)"; return; }
  if ((PUSH_N >= 100000)); then
    if lt "$g" 1000; then echo "< 1 s: met; $(vs_nchan "$g" "$n")"; else echo "< 1 s: **NOT met**; $(vs_nchan "$g" "$n")"; fi
    return
  fi
  est=$(awk -v g="$g" -v n="$PUSH_N" 'BEGIN { printf "%.0f", g * 100000 / n }')
  if lt "$est" 1000; then est+=" ms, under 1 s"; else est+=" ms, **over 1 s**"; fi
  echo "N = $PUSH_N, not 100,000: linear estimate for 100,000 $est; $(vs_nchan "$g" "$n")"
}

# row LABEL GOZER NCHAN TARGET VERDICT: a line of the summary table, with the ratio;
# rown: the same without one (counts, where a ratio means nothing).
row() {
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$4" "$5"
}
rown() {
  printf '| %s | %s | %s | - | %s | %s |\n' "$1" "$2" "$3" "$4" "$5"
}

push_report() {
  local t r
  printf '# Gozer push bench, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  # shellcheck disable=SC2016 # the backticks are Markdown
  printf 'Command: `%s`\n\n' "$COMMAND"
  printf 'Machine: %s cores, %s, kernel %s, %s; load average when the bench started: %s\n\n' "$(nproc)" \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(uname -r)" \
    "$(. /etc/os-release && echo "$PRETTY_NAME")" "$LOADAVG_START"
  printf 'Setup: each target started fresh, pinned to core %s (one event loop / one nginx worker); the load client (bench/pushload: one epoll loop, fasthttp for the push API) pinned to core %s. ' "$PROXY_CPU" "$LOADGEN_CPU"
  printf '%s websocket connections from %s source addresses (127.0.0.2..), %s new a second at most; ids d0..d%s. ' \
    "$PUSH_N" "$(v "${TARGETS[0]}" sources)" "$PUSH_CONN_RATE" "$((PUSH_N - 1))"
  printf 'Push phase: %s messages/s of %s bytes for %ss, each POSTed (keep-alive, %s connections) to a random connected id, open loop. ' \
    "$PUSH_RATE" "$PUSH_SIZE" "$PUSH_DURATION" "$PUSH_SENDERS"
  printf 'Broadcast: %s rounds, 1 s apart. Open files: %s.\n\n' "$PUSH_BROADCASTS" "$NOFILE"
  if [[ -n $N_NOTE ]]; then printf -- '- %s\n' "$N_NOTE"; fi
  if ((${#SYSCTL_NOTES[@]})); then
    local notes
    notes=$(printf '%s; ' "${SYSCTL_NOTES[@]}")
    printf -- '- kernel settings: %s\n' "${notes%; }"
  fi
  for t in "${TARGETS[@]}"; do
    if [[ -n ${DESC[$t]:-} ]]; then printf -- '- %s — %s\n' "$t" "${DESC[$t]}"; fi
  done
  for t in "${QUIET_NOTES[@]}"; do printf -- '- other jobs: %s\n' "$t"; done
  for t in "${RUN_NOTES[@]}"; do printf -- '- other jobs: %s\n' "$t"; done
  for t in "${PROBLEMS[@]}"; do printf -- '- **PROBLEM** %s\n' "$t"; done

  printf '\n## Gozer and nchan, side by side\n\n'
  printf '| figure | gozer | nchan | gozer / nchan | issue target | gozer |\n|---|---:|---:|---:|---|---|\n'
  rown "connections held (of $PUSH_N)" "$(v gozer connected)" "$(v nchan connected)" "" ""
  row "**user-space memory per idle connection**, bytes (RSS delta / N)" "$(v gozer rss_bytes_per_conn)" "$(v nchan rss_bytes_per_conn)" "≤ 1 KB, < nchan" "$(verdict_mem)"
  row "the same from PSS (shared pages counted once), bytes" "$(v gozer pss_bytes_per_conn)" "$(v nchan pss_bytes_per_conn)" "" ""
  row "RSS with N connections / N (baseline included), bytes" "$(v gozer rss_total_bytes_per_conn)" "$(v nchan rss_total_bytes_per_conn)" "" ""
  row "Go heap in use per connection (HeapInuse delta / N), bytes" "$(v gozer go_heap_bytes_per_conn)" "-" "" ""
  row "connect: connections/s" "$(v gozer connect_per_sec)" "$(v nchan connect_per_sec)" "" ""
  row "connect: target CPU µs per connection" "$(v gozer connect_cpu_us_per_conn)" "$(v nchan connect_cpu_us_per_conn)" "" ""
  row "push: delivered messages/s (POSTed $PUSH_RATE/s)" "$(v gozer tput_delivered_per_sec)" "$(v nchan tput_delivered_per_sec)" "" ""
  row "push: POST-to-device p50, ms" "$(us_to_ms "$(v gozer tput_p50_us)")" "$(us_to_ms "$(v nchan tput_p50_us)")" "" ""
  row "**push: POST-to-device p99, ms**" "$(us_to_ms "$(v gozer tput_p99_us)")" "$(us_to_ms "$(v nchan tput_p99_us)")" "< 5 ms at 10,000/s, < nchan" "$(verdict_p99)"
  row "push: POST-to-device p99.9, ms" "$(us_to_ms "$(v gozer tput_p999_us)")" "$(us_to_ms "$(v nchan tput_p999_us)")" "" ""
  row "push: POST-to-device max, ms" "$(us_to_ms "$(v gozer tput_max_us)")" "$(us_to_ms "$(v nchan tput_max_us)")" "" ""
  rown "push: lost (answered as reached, never arrived)" "$(v gozer tput_lost)" "$(v nchan tput_lost)" "0" ""
  rown "push: duplicates / misdelivered (on a connection it was not for)" "$(v gozer tput_dups) / $(v gozer tput_misdelivered)" "$(v nchan tput_dups) / $(v nchan tput_misdelivered)" "0 / 0" ""
  rown "push: POSTs failed / reached no connection" "$(v gozer tput_failed) / $(v gozer tput_not_reached)" "$(v nchan tput_failed) / $(v nchan tput_not_reached)" "" ""
  row "push: target CPU µs per message (API request + delivery)" "$(v gozer tput_cpu_us_per_msg)" "$(v nchan tput_cpu_us_per_msg)" "" ""
  row "**broadcast to all N: time until the last connection has it**, ms (median of rounds)" "$(v gozer bcast_all_ms_median)" "$(v nchan bcast_all_ms_median)" "< 1 s at 100,000, < nchan" "$(verdict_bcast)"
  row "broadcast: half the connections have it, ms (median)" "$(median_of gozer p50_ms)" "$(median_of nchan p50_ms)" "" ""
  row "broadcast: POST answered after, ms (median)" "$(median_of gozer post_ms)" "$(median_of nchan post_ms)" "" ""
  rown "broadcast: rounds where all N got it (of $PUSH_BROADCASTS); fewest received" "$(v gozer bcast_rounds_complete); $(v gozer bcast_min_received)" "$(v nchan bcast_rounds_complete); $(v nchan bcast_min_received)" "" ""
  row "broadcast: target CPU ms per broadcast (median)" "$(median_of gozer target_cpu_ms)" "$(median_of nchan target_cpu_ms)" "" ""
  rown "connections closed by the server during the run" "$(v gozer server_closed)" "$(v nchan server_closed)" "0" ""
  rown "pings from the server (answered)" "$(v gozer pings)" "$(v nchan pings)" "" ""
  printf '\nRatios are gozer / nchan: below 1.00 Gozer uses less memory or time. Memory is user space only (RSS: kernel socket buffers are not in it); '
  printf 'nginx allocates its connection and event arrays for worker_connections at start, so they are in its baseline, not in its delta. '
  printf '"lost" counts messages the target answered as delivered to a connection (Gozer: reached >= 1; nchan: 201) that never arrived; the latency is from just before the POST is written to the frame being read by the client, both on the client'"'"'s monotonic clock.\n'

  printf '\n## Broadcast rounds\n\n'
  printf '| target | round | connections | received | all, ms | half, ms | 99%%, ms | POST answered, ms | target CPU ms | client CPU ms | limited by |\n'
  printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n'
  for t in "${TARGETS[@]}"; do
    for ((r = 1; r <= PUSH_BROADCASTS; r++)); do
      [[ -n ${R[$t.bcast${r}_expected]:-} ]] || continue
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$r" "$(v "$t" "bcast${r}_expected")" \
        "$(v "$t" "bcast${r}_received")" "$(v "$t" "bcast${r}_all_ms")" "$(v "$t" "bcast${r}_p50_ms")" "$(v "$t" "bcast${r}_p99_ms")" \
        "$(v "$t" "bcast${r}_post_ms")" "$(v "$t" "bcast${r}_target_cpu_ms")" "$(v "$t" "bcast${r}_client_cpu_ms")" \
        "$(limited_by "$(v "$t" "bcast${r}_all_ms")" "$(v "$t" "bcast${r}_target_cpu_ms")" "$(v "$t" "bcast${r}_client_cpu_ms")")"
    done
  done
  printf '\n"all, ms" is -1 when the round timed out before every connection had the message. "limited by": the side whose CPU time during the round came to at least 80%% of "all, ms" (target and client run on different cores); a client-limited round understates how fast the target is.\n'

  printf '\n## How busy each side was (%% of one core)\n\n'
  printf '| target | phase | target (core %s) | load client (core %s) | other jobs on the two cores |\n|---|---|---:|---:|---:|\n' "$PROXY_CPU" "$LOADGEN_CPU"
  for t in "${TARGETS[@]}"; do
    for r in connect tput bcast; do
      [[ -n ${R[$t.${r}_target_cpu_pct]:-} ]] || continue
      printf '| %s | %s | %s%% | %s%% | %s%%%s |\n' "$t" "$(phase_name "$r")" "$(v "$t" "${r}_target_cpu_pct")" \
        "$(v "$t" "${r}_client_cpu_pct")" "$(v "$t" "${r}_other_cpu_pct")" "$(disturbed "$(v "$t" "${r}_other_cpu_pct")")"
    done
  done
  printf '\nA phase during which other jobs took more than %s%% of a core is marked DISTURBED: its figures are not to be trusted; run again on a quiet machine. ' "$PUSH_OTHER_CPU_MAX"
  printf 'A load client near 100%% means the client, not the target, set the pace.\n'
  printf '\nHarness runtime: %ss.\n' "$SECONDS"
}

# limited_by ALL_MS TARGET_MS CLIENT_MS: which side's core set the pace of a broadcast.
limited_by() {
  awk -v a="$1" -v t="$2" -v c="$3" 'BEGIN {
    if (a == "-" || a <= 0) { print "-"; exit }
    s = (t >= 0.8 * a ? "target" : "")
    if (c >= 0.8 * a) s = s (s == "" ? "" : " and ") "**client**"
    print (s == "" ? "neither (waiting)" : s) }'
}

phase_name() {
  case $1 in
    connect) echo "connect (all N)" ;;
    tput) echo "push ($PUSH_RATE msg/s)" ;;
    bcast) echo "broadcasts (the rounds and the 1 s between them)" ;;
  esac
}

# disturbed PCT prints " (DISTURBED)" when other jobs took more than PUSH_OTHER_CPU_MAX %.
disturbed() { if lt "$PUSH_OTHER_CPU_MAX" "$1"; then echo " (DISTURBED)"; fi; }

mkdir -p "$RESULTS_DIR"
push_report >"$WORK/report.md"
cp "$WORK/report.md" "$RESULTS_DIR/push-latest.txt"
cp "$WORK/report.md" "$RESULTS_DIR/push-$(date -u +%Y%m%d-%H%M%S).txt"
echo
cat "$WORK/report.md"
echo
log "written to bench/results/push-latest.txt"

stop_all_started
check_ports_released "$PUSH_GOZER_PORT" "$PUSH_GOZER_ADMIN_PORT" "$PUSH_NCHAN_PORT" "$PUSH_NCHAN_API_PORT"
if ((HARNESS_FAILED)); then
  log "harness failure: ${PROBLEMS[*]}"
  exit 1
fi
if [[ -n $GOZER_PROBLEM && $PUSH_STRICT == 1 ]]; then
  log "PUSH_STRICT=1 and Gozer was not measured: $GOZER_PROBLEM"
  exit 1
fi
exit 0
