#!/usr/bin/env bash
# One client's long HTTP/1.1 pipeline, Gozer and nginx side by side: what it costs
# the server and what it does to another client of the same event loop (worker).
#
#   bash bench/pipeline.sh                         (~1 minute)
#   PIPE_N=100000 PIPE_ROUNDS=1 bash bench/pipeline.sh   (smoke)
#
# Each round, for each target (a fresh process, pinned to core 0, one event loop or
# worker; the probe, bench/pipeline, on core 1):
#   alone   one connection writes PIPE_N requests for PIPE_PATH in one go and reads every
#           answer: wall time, and the server's CPU time per answer (/proc, utime+stime)
#   other   the same, while a second connection asks one request at a time (1 ms apart):
#           how many answers it got meanwhile, and their p50, p99 and worst latency
# The answers are the servers' own (no origin): Gozer's 404 (no route matches PIPE_PATH),
# nginx's `return 404` — a scanner's random paths, or a filter's refusal, are this.
# Gozer: conf/gozer.yaml with free loopback ports, event_loops 1, access log off, log
# level warn, no Lua filters, routes only for /api (so PIPE_PATH has none).
# nginx: worker_processes 1, access_log off, keepalive_requests unlimited.
# Report: stdout and bench/results/pipeline-latest.txt.
#
# Knobs: PIPE_N=300000 PIPE_ROUNDS=3 PIPE_PATH=/nope PIPE_PORT_BASE=19400 (Gozer on BASE,
# its admin on BASE+1, nginx on BASE+2) PIPE_GOZER_REV (build Gozer from this git revision
# instead of the working tree, e.g. PIPE_GOZER_REV=HEAD~1 to compare).
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source=lib/common.sh
source "$HERE/lib/common.sh"

PIPE_N=${PIPE_N:-300000}
PIPE_ROUNDS=${PIPE_ROUNDS:-3}
PIPE_PATH=${PIPE_PATH:-/nope}
BASE=${PIPE_PORT_BASE:-19400}
GOZER_PORT=$BASE ADMIN_PORT=$((BASE + 1)) NGINX_PORT=$((BASE + 2))

ensure_cmds nginx:nginx-light taskset:util-linux curl:curl
WORK=$(mktemp -d /tmp/gozer-pipeline.XXXXXX)
start_guardian "$WORK/pids"
trap 'stop_all_started; [[ -n ${PIPE_KEEP_TMP:-} ]] || rm -rf "$WORK"' EXIT

log "building gozer and the probe"
if [[ -n ${PIPE_GOZER_REV:-} ]]; then
  mkdir -p "$WORK/src"
  git -C "$ROOT" archive "$PIPE_GOZER_REV" | tar -x -C "$WORK/src"
  (cd "$WORK/src" && go build -o "$WORK/gozer" ./gateway/cmd/gozer)
else
  (cd "$ROOT" && go build -o "$WORK/gozer" ./gateway/cmd/gozer)
fi
(cd "$ROOT" && go build -o "$WORK/probe" ./bench/pipeline)

mkdir -p "$WORK/scripts" # empty: no Lua filters (the Go ones, route CORS, still run)
sed -e "s|addr: \":8080\"|addr: \"127.0.0.1:$GOZER_PORT\"|" \
  -e "s|addr: \":8443\"|addr: \"127.0.0.1:$((BASE + 3))\"|" \
  -e "s|addr: \"127.0.0.1:8081\"|addr: \"127.0.0.1:$ADMIN_PORT\"|" \
  -e "s|^  event_loops: 0|  event_loops: 1|" \
  -e "s|^  level: info|  level: warn|" \
  -e "s|^  access_log: stdout|  access_log: \"off\"|" \
  -e "s|^  dir: scripts|  dir: \"$WORK/scripts\"|" \
  -e "s|^  - path_prefix: \"/\"|  - path_prefix: \"/api\"|" \
  "$ROOT/conf/gozer.yaml" >"$WORK/gozer.yaml"
grep -q "127.0.0.1:$GOZER_PORT" "$WORK/gozer.yaml" && grep -q 'path_prefix: "/api"' "$WORK/gozer.yaml" ||
  die "conf/gozer.yaml changed shape: the sed above no longer applies"

mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 1000000000;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /api { return 200; }
    location / { return 404; }
  }
}
CONF

# start NAME: starts the target on core 0, waits until it answers; sets PID and ADDR.
start() {
  case $1 in
  gozer)
    bg_start "$WORK/gozer.log" taskset -c 0 "$WORK/gozer" -config "$WORK/gozer.yaml"
    ADDR=127.0.0.1:$GOZER_PORT
    ;;
  nginx)
    bg_start "$WORK/nginx.log" taskset -c 0 nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
    ADDR=127.0.0.1:$NGINX_PORT
    ;;
  esac
  PID=$BG_PID
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://$ADDR$PIPE_PATH") == 404 ]] && return 0
    alive "$PID" || die "$1 exited at start (see $WORK/$1.log)"
    sleep 0.1
  done
  die "$1 does not answer 404 at $ADDR$PIPE_PATH"
}

# measure NAME MODE: one probe run against a fresh target; prints "NAME MODE json cpu_us".
measure() {
  start "$1"
  local t0 t1 out
  t0=$(cpu_ticks "$PID")
  out=$(taskset -c 1 "$WORK/probe" -addr "$ADDR" -n "$PIPE_N" -path "$PIPE_PATH" ${2:+-other})
  t1=$(cpu_ticks "$PID")
  stop_pid "$PID"
  echo "$1 ${2:-alone} $out $(((t1 - t0) * 1000000 / CLK_TCK))"
}

RESULTS=$WORK/results
: >"$RESULTS"
for ((r = 1; r <= PIPE_ROUNDS; r++)); do
  for t in gozer nginx; do
    log "round $r: $t alone"
    measure "$t" "" >>"$RESULTS"
    log "round $r: $t with another client"
    measure "$t" other >>"$RESULTS"
  done
done

mkdir -p "$HERE/results"
{
  echo "# bench/pipeline.sh $(date -u +%FT%TZ): $PIPE_N pipelined GET $PIPE_PATH, $PIPE_ROUNDS rounds, medians"
  echo "# gozer $(git -C "$ROOT" describe --always --dirty 2>/dev/null)${PIPE_GOZER_REV:+ (built from $PIPE_GOZER_REV)}; $(nginx -v 2>&1 | sed 's|.*/|nginx/|')"
  python3 - "$RESULTS" "$PIPE_N" <<'PY'
import json, statistics, sys
rows = {}
n = int(sys.argv[2])
for line in open(sys.argv[1]):
    name, mode, js, cpu = line.split(" ", 2)[0], line.split(" ", 2)[1], line.split(" ", 2)[2].rsplit(" ", 1)[0], line.rsplit(" ", 1)[1]
    rows.setdefault((name, mode), []).append((json.loads(js), int(cpu)))
def med(xs): return statistics.median(xs)
print(f"{'target':8} {'alone: s':>9} {'CPU us/answer':>14} | {'with another: s':>15} {'its answers':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
for name in ("gozer", "nginx"):
    a, o = rows.get((name, "alone"), []), rows.get((name, "other"), [])
    if not a or not o: continue
    print(f"{name:8} {med([j['secs'] for j, _ in a]):9.2f} {med([c / n for _, c in a]):14.2f} | "
          f"{med([j['secs'] for j, _ in o]):15.2f} {med([j['other_answers'] for j, _ in o]):11.0f} "
          f"{med([j['other_p50_ms'] for j, _ in o]):8.2f} {med([j['other_p99_ms'] for j, _ in o]):8.2f} {med([j['other_max_ms'] for j, _ in o]):8.2f}")
PY
} | tee "$HERE/results/pipeline-latest.txt"
