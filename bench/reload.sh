#!/usr/bin/env bash
# The cost of a live configuration reload under load (issue 14): how long a reload takes
# to apply, how many requests fail across reloads (the target: none), and what reloading
# does to throughput.
#
#   bash bench/reload.sh              (part of `make bench`; ~1 minute on 2 cores)
#
# One Gozer, built from the working tree, pinned to core 0 with server.event_loops 1,
# proxies to origin "bench" (run.sh's nginx, targets/origin.sh) and keeps an origin
# "static" that no reload touches. On core 1: the origins (the nginx, and a demo-origin as
# static's server in one of the two configurations), wrk -t1 -cRELOAD_CONNS on GET /, and
# the reloader.
#
# Per round (BENCH_ROUNDS, interleaved): a baseline wrk run of BENCH_DURATION seconds with
# no reload, then the same run while a reloader, every RELOAD_EVERY_MS, rewrites the file
# (a rename, as deployment tools do) between two configurations and POSTs
# /admin/config/reload: config B changes bench's read_timeout (bench is rebuilt, its nginx
# server and the pooled connections to it stay), moves static to the demo-origin and adds a
# route; config A takes all three back. Each answer must say "applied".
# Reported: reloads applied, the time Gozer took to validate, build and swap (took_ms of
# the answers: median, max) and the admin round trip (curl's time_total), the requests
# wrk counted as failed (non-2xx answers + socket errors: must be 0), req/s and Gozer's CPU
# per request (utime+stime from /proc / requests) with reloads / without.
# Results: stdout and bench/results/reload-latest.txt (the command at the top).
#
# Knobs (environment):
#   BENCH_ROUNDS=3          rounds
#   BENCH_DURATION=8        seconds per wrk run
#   RELOAD_EVERY_MS=500     time between reloads during a loaded run
#   RELOAD_CONNS=32         wrk connections
#   RELOAD_PORT_BASE=18780  nginx origin BASE, Gozer BASE+1, admin BASE+2, demo-origin BASE+3
#   BENCH_KEEP_TMP=1        keep configs, logs and raw outputs
#
# Exit status: non-zero when the harness failed (a build, an origin or Gozer not starting,
# a reload that was not applied). Failed requests are a result (the verdict says it).
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_DURATION=${BENCH_DURATION:-8}
RELOAD_EVERY_MS=${RELOAD_EVERY_MS:-500}
RELOAD_CONNS=${RELOAD_CONNS:-32}
RELOAD_PORT_BASE=${RELOAD_PORT_BASE:-18780}
BENCH_KEEP_TMP=${BENCH_KEEP_TMP:-0}
for v in BENCH_ROUNDS BENCH_DURATION RELOAD_EVERY_MS RELOAD_CONNS RELOAD_PORT_BASE; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a whole number, not '${!v}'" >&2; exit 2; }
done

ORIGIN_PORT=$RELOAD_PORT_BASE
GOZER_PORT=$((RELOAD_PORT_BASE + 1))
ADMIN_PORT=$((RELOAD_PORT_BASE + 2))
DEMO_PORT=$((RELOAD_PORT_BASE + 3))
BENCH_PORTS=("$GOZER_PORT" "$ADMIN_PORT" "$DEMO_PORT")
ORIGIN_BODY_BYTES=${ORIGIN_BODY_BYTES:-128}
PROXY_CPU=0
LOADGEN_CPU=1

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

COMMAND="BENCH_ROUNDS=$BENCH_ROUNDS BENCH_DURATION=$BENCH_DURATION RELOAD_EVERY_MS=$RELOAD_EVERY_MS RELOAD_CONNS=$RELOAD_CONNS bash bench/reload.sh"
ensure_cmds wrk nginx curl taskset
WORK=$(mktemp -d /tmp/gozer-reload.XXXXXX)
bench_exit_setup "$BENCH_KEEP_TMP"
raise_nofile 65536
NOFILE=$(ulimit -n)
for p in "$ORIGIN_PORT" "${BENCH_PORTS[@]}"; do
  port_in_use "$p" && die "port $p is in use (another bench running?)"
done

log "building gozer and demo-origin"
go build -o "$WORK/gozer" ./gateway/cmd/gozer
go build -o "$WORK/demo-origin" ./gateway/cmd/demo-origin
origin_start
bg_start "$WORK/demo-origin.log" taskset -c "$LOADGEN_CPU" "$WORK/demo-origin" -addr "127.0.0.1:$DEMO_PORT" -name second
wait_http demo-origin "$BG_PID" "http://127.0.0.1:$DEMO_PORT/" 10 "$WORK/demo-origin.log" || die "demo-origin did not start"

# config A|B: B changes bench's settings (bench is rebuilt; its server and the pooled
# connections to it stay), moves origin static to the demo-origin and adds a route /second;
# A takes them back. The served traffic goes to the same nginx either way, so that the
# throughput compares like with like.
write_config() {
  local read_timeout=15s static=$ORIGIN_PORT extra_route=""
  if [[ $1 == B ]]; then
    read_timeout=16s
    static=$DEMO_PORT
    extra_route="  - { path_prefix: \"/second\", origin: bench }"
  fi
  cat >"$WORK/gozer.yaml.new" <<CONF
listeners:
  proxy: { addr: "127.0.0.1:$GOZER_PORT" }
  admin: { addr: "127.0.0.1:$ADMIN_PORT" }
server:
  event_loops: 1
  idle_timeout: 300s
  max_connections_per_ip: 0
  max_requests_per_ip: 0
log: { level: warn, access_log: "off" }
filters: { dir: "" }
origins:
  bench:
    servers: ["127.0.0.1:$ORIGIN_PORT"]
    read_timeout: $read_timeout
    max_idle_per_server: 256
    max_connections_per_server: 1024
  static:
    servers: ["127.0.0.1:$static"]
routes:
$extra_route
  - { path_prefix: "/", origin: bench }
CONF
  mv "$WORK/gozer.yaml.new" "$WORK/gozer.yaml"
}

write_config A
# -watch=false: the POSTs are the reloads measured (the watch would race them).
bg_start "$WORK/gozer.log" taskset -c "$PROXY_CPU" "$WORK/gozer" -config "$WORK/gozer.yaml" -watch=false
GOZER_PID=$BG_PID
wait_http gozer "$GOZER_PID" "http://127.0.0.1:$ADMIN_PORT/healthcheck" 10 "$WORK/gozer.log" || die "gozer did not start"

# reloader FILE: reload every RELOAD_EVERY_MS until killed; one line per reload:
# result took_ms round_trip_ms. It runs on the load core, not Gozer's.
reloader() {
  local out=$1 cfg=B rt answer result took
  local pause
  # The other configuration than the one in service (a round's reloader stops anywhere).
  if grep -q 'read_timeout: 16s' "$WORK/gozer.yaml"; then cfg=A; fi
  pause=$(awk "BEGIN{print $RELOAD_EVERY_MS/1000}")
  while :; do
    write_config "$cfg"
    rt=$(curl -s -o "$WORK/answer.json" -w '%{time_total}' -X POST "http://127.0.0.1:$ADMIN_PORT/admin/config/reload") || rt=0
    answer=$(tr -d '\n ' <"$WORK/answer.json" 2>/dev/null || true)
    result=$(sed -n 's/.*"result":"\([a-z]*\)".*/\1/p' <<<"$answer")
    took=$(sed -n 's/.*"took_ms":\([0-9.]*\).*/\1/p' <<<"$answer")
    echo "${result:-broken} ${took:-0} $(awk -v t="$rt" 'BEGIN{print t*1000}')" >>"$out"
    [[ $cfg == B ]] && cfg=A || cfg=B
    sleep "$pause"
  done
}

# wrk_once: one wrk run; prints "req/s requests failed gozer_cpu_us_per_request".
wrk_once() {
  local out t0 t1
  t0=$(cpu_ticks "$GOZER_PID")
  out=$(taskset -c "$LOADGEN_CPU" wrk -t1 -c"$RELOAD_CONNS" -d"${BENCH_DURATION}s" "http://127.0.0.1:$GOZER_PORT/" 2>&1)
  local rps reqs non2xx sock
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  sock=$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' <<<"$out")
  t1=$(cpu_ticks "$GOZER_PID")
  echo "${rps:-0} ${reqs:-0} $((${non2xx:-0} + ${sock:-0})) $(awk -v t=$((t1 - t0)) -v n="${reqs:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", n ? t * 1e6 / hz / n : 0}')"
}

log "warm-up"
wrk_once >/dev/null
: >"$WORK/reloads.txt"
base_rps=() load_rps=() base_cpu=() load_cpu=() failed=0 requests=0
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
  read -r rps reqs fail cpu < <(wrk_once)
  base_rps+=("$rps")
  base_cpu+=("$cpu")
  failed=$((failed + fail))
  taskset -c "$LOADGEN_CPU" bash -c "$(declare -f reloader write_config); $(declare -p WORK ORIGIN_PORT DEMO_PORT GOZER_PORT ADMIN_PORT RELOAD_EVERY_MS); reloader '$WORK/reloads.txt'" &
  RPID=$!
  read -r rps reqs fail cpu < <(wrk_once)
  kill "$RPID" 2>/dev/null || true
  wait "$RPID" 2>/dev/null || true
  load_rps+=("$rps")
  load_cpu+=("$cpu")
  requests=$((requests + reqs))
  failed=$((failed + fail))
  log "round $r: without reloads ${base_rps[-1]} req/s ${base_cpu[-1]} µs/req, with reloads $rps req/s $cpu µs/req, failed so far $failed"
done
alive "$GOZER_PID" || die "gozer exited: $(tail -5 "$WORK/gozer.log")"

applied=$(awk '$1=="applied"' "$WORK/reloads.txt" | wc -l)
total=$(wc -l <"$WORK/reloads.txt")
took_med=$(awk '$1=="applied" {print $2}' "$WORK/reloads.txt" | sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}')
took_max=$(awk '$1=="applied" {print $2}' "$WORK/reloads.txt" | sort -n | tail -1)
rt_med=$(awk '{print $3}' "$WORK/reloads.txt" | sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}')
rt_max=$(awk '{print $3}' "$WORK/reloads.txt" | sort -n | tail -1)
rps_base=$(printf '%s\n' "${base_rps[@]}" | median)
rps_load=$(printf '%s\n' "${load_rps[@]}" | median)
cpu_base=$(printf '%s\n' "${base_cpu[@]}" | median)
cpu_load=$(printf '%s\n' "${load_cpu[@]}" | median)

mkdir -p bench/results
{
  echo "# $COMMAND"
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores; Gozer $(git describe --always --dirty 2>/dev/null || echo '?') pinned to core $PROXY_CPU, wrk and origins on core $LOADGEN_CPU"
  printf 'reloads applied           %s of %s (every %s ms during %s loaded runs of %s s)\n' "$applied" "$total" "$RELOAD_EVERY_MS" "$BENCH_ROUNDS" "$BENCH_DURATION"
  printf 'time to apply (took_ms)   median %s ms, max %s ms\n' "$took_med" "${took_max:-0}"
  printf 'admin round trip          median %.2f ms, max %.2f ms\n' "$rt_med" "${rt_max:-0}"
  printf 'requests during reloads   %s, failed %s (non-2xx + socket errors, all runs)\n' "$requests" "$failed"
  printf 'req/s with / without      %s / %s = %s (the reloader shares the load core with wrk)\n' "$rps_load" "$rps_base" "$(ratio "$rps_load" "$rps_base")"
  printf 'Gozer CPU µs/req with / without  %s / %s = %s\n' "$cpu_load" "$cpu_base" "$(ratio "$cpu_load" "$cpu_base")"
  if ((failed == 0)) && awk "BEGIN{exit !(${took_max:-0} < 1000)}"; then
    echo "verdict: MET (0 failed requests, every reload applied in < 1 s)"
  else
    echo "verdict: NOT MET"
  fi
} | tee bench/results/reload-latest.txt
((applied == total && total > 0)) || die "$((total - applied)) reload(s) were not applied: $(grep -v applied "$WORK/reloads.txt" | head -3)"
