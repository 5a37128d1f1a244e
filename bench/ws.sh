#!/usr/bin/env bash
# Websocket proxying (issue 15): messages per second through Gozer's tunnels vs through
# nginx's websocket proxying, with each proxy's CPU µs per relayed message and the ratio
# (target: Gozer <= 1.0x nginx's CPU per message).
#
#   bash bench/ws.sh                                      (what `make bench-ws` runs, ~1 minute)
#   WS_ROUNDS=1 WS_DURATION=2 bash bench/ws.sh            (smoke, ~15 s)
#
# One origin (gateway/cmd/demo-origin's /ws: a gorilla/websocket echo) and the load client
# (bench/wsload: WS_CONNS connections, each echoing a WS_SIZE-byte binary message as soon
# as the last came back) on core 1; each proxy pinned to core 0 with one event loop / one
# worker:
#   gozer  server.event_loops 1, origins.bench.websocket.enabled, access log off
#   nginx  worker_processes 1, proxy_http_version 1.1; proxy_set_header Upgrade
#          $http_upgrade; proxy_set_header Connection "upgrade"; access_log off
# Before measuring, each must echo byte for byte (wsload -check). Rounds interleave the
# proxies; per run: messages/s (an echo is two relayed messages, one each way) and the
# proxy's CPU (utime+stime from /proc/PID/stat, nginx's master and worker) per relayed
# message. Medians over the rounds.
#
# GOMAXPROCS: as bench/run.sh does, Gozer is first tried with GOMAXPROCS unset (Gozer then
# takes its event loops + 1, so 2) and with GOMAXPROCS=1, one run each, and the rounds use
# the one with the lower CPU per message (printed). WS_GOZER_GOMAXPROCS ("default" or a
# number) skips the trial. Why it matters here: with a spare P, each time the loop finds no
# event (gnet's poller then calls runtime.Gosched) Go wakes an idle thread to look for work
# and puts it back to sleep, two context switches on the proxy's one core (bench/README.md).
#
# A/B: WS_ALT_GOZER=/path/to/gozer adds a third target, "alt": that binary, same config and
# GOMAXPROCS as "gozer", started under WS_ALT_WRAPPER (a command prefix, e.g. one that sets a
# process setting before exec) when given, in the same interleaved rounds. For trying a change
# to a dependency or to how Gozer is started against the tree's own build.
set -euo pipefail
ALT=${WS_ALT_GOZER:+$(realpath "$WS_ALT_GOZER")} # before the cd: a relative path is the caller's
cd "$(dirname "$0")/.."
ROUNDS=${WS_ROUNDS:-3}
DURATION=${WS_DURATION:-5}
CONNS=${WS_CONNS:-64}
SIZE=${WS_SIZE:-128}
BASE=${WS_PORT_BASE:-18580}
ORIGIN_PORT=$BASE GOZER_PORT=$((BASE + 1)) ADMIN_PORT=$((BASE + 2)) NGINX_PORT=$((BASE + 3))
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [[ -n ${WS_KEEP_TMP:-} ]] || rm -rf "$WORK"; }
trap cleanup EXIT
for c in nginx taskset; do command -v "$c" >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx util-linux; }; done
go build -o "$WORK/" ./gateway/cmd/gozer ./gateway/cmd/demo-origin ./bench/wsload
targets=(gozer ${ALT:+alt} nginx)
mkdir -p "$WORK/scripts" "$WORK/nginx"
cat >"$WORK/gozer.yaml" <<YAML
listeners:
  proxy: {addr: "127.0.0.1:$GOZER_PORT"}
  admin: {addr: "127.0.0.1:$ADMIN_PORT"}
server: {event_loops: 1, max_connections_per_ip: 0, max_requests_per_ip: 0}
log: {level: warn, access_log: "off"}
filters: {dir: "$WORK/scripts"}
origins:
  bench: {servers: ["127.0.0.1:$ORIGIN_PORT"], websocket: {enabled: true}}
routes:
  - {path_prefix: /, origin: bench}
YAML
cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://127.0.0.1:$ORIGIN_PORT;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 300s;
    }
  }
}
CONF
taskset -c 1 "$WORK/demo-origin" -addr "127.0.0.1:$ORIGIN_PORT" >/dev/null 2>&1 & pids+=($!)
start_gozer() { # GOMAXPROCS value ("default": unset) -> sets pid[gozer]
  local env=()
  [[ $1 == default ]] || env=(GOMAXPROCS="$1")
  GOZER_PUSH_SECRET=bench-secret-0123456789 env "${env[@]}" taskset -c 0 "$WORK/gozer" -config "$WORK/gozer.yaml" >"$WORK/gozer.log" 2>&1 &
  gozer=$!; pids+=("$gozer"); pid[gozer]=$gozer
}
declare -A pid
start_gozer "${WS_GOZER_GOMAXPROCS:-default}"
start_alt() { # GOMAXPROCS value -> sets pid[alt]; its own ports
  local env=()
  [[ $1 == default ]] || env=(GOMAXPROCS="$1")
  sed -e "s/127.0.0.1:$GOZER_PORT/127.0.0.1:$((BASE + 4))/" -e "s/127.0.0.1:$ADMIN_PORT/127.0.0.1:$((BASE + 5))/" "$WORK/gozer.yaml" >"$WORK/alt.yaml"
  # shellcheck disable=SC2086 # the wrapper is a command prefix, split on purpose
  GOZER_PUSH_SECRET=bench-secret-0123456789 env "${env[@]}" taskset -c 0 ${WS_ALT_WRAPPER:-} "$ALT" -config "$WORK/alt.yaml" >"$WORK/alt.log" 2>&1 &
  pid[alt]=$!; pids+=("${pid[alt]}")
}
taskset -c 0 nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" >"$WORK/nginx.log" 2>&1 & nginx=$!; pids+=("$nginx")
declare -A url=([gozer]="ws://127.0.0.1:$GOZER_PORT/ws" [alt]="ws://127.0.0.1:$((BASE + 4))/ws" [nginx]="ws://127.0.0.1:$NGINX_PORT/ws")
pid[nginx]=$nginx
ready() { # target: echoes byte for byte, or the bench ends
  local ok=
  for _ in $(seq 100); do
    if "$WORK/wsload" -url "${url[$1]}" -conns 2 -check >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  [[ -n $ok ]] || { echo "ws.sh: $1 does not echo at ${url[$1]}"; cat "$WORK/$1.log" "$WORK/nginx/error.log" 2>/dev/null; exit 1; }
}
ready gozer; ready nginx
ticks() { # a process and its children: utime+stime
  local p s=0
  for p in "$1" $(pgrep -P "$1" || true); do s=$((s + $(awk '{print $14+$15}' "/proc/$p/stat"))); done
  echo "$s"
}
hz=$(getconf CLK_TCK)
run() { # target -> "msgs/s us/msg"
  local t0 t1 out
  t0=$(ticks "${pid[$1]}")
  out=$(taskset -c 1 "$WORK/wsload" -url "${url[$1]}" -conns "$CONNS" -size "$SIZE" -duration "${DURATION}s")
  t1=$(ticks "${pid[$1]}")
  awk -v t="$((t1 - t0))" -v hz="$hz" '{n=$2*2; printf "%.0f %.2f\n", $6, t/hz*1e6/n}' <<<"$out"
}
gmp=${WS_GOZER_GOMAXPROCS:-}
if [[ -z $gmp ]]; then # the GOMAXPROCS trial: one warm-up and one run each, keep the lower CPU/msg
  best=
  for v in default 1; do
    if [[ $v != default ]]; then kill "${pid[gozer]}"; wait "${pid[gozer]}" 2>/dev/null || true; start_gozer "$v"; ready gozer; fi
    run gozer >/dev/null
    read -r a b < <(run gozer)
    echo "trial gozer GOMAXPROCS=$v: $a msgs/s, $b µs CPU/msg" >&2
    if [[ -z $best ]] || awk -v x="$b" -v y="$best" 'BEGIN { exit !(x < y) }'; then best=$b gmp=$v; fi
  done
  if [[ $gmp != 1 ]]; then kill "${pid[gozer]}"; wait "${pid[gozer]}" 2>/dev/null || true; start_gozer "$gmp"; ready gozer; fi
fi
if [[ -n $ALT ]]; then start_alt "$gmp"; ready alt; fi
for t in "${targets[@]}"; do run "$t" >/dev/null; done # warm-up
declare -A rate us
for r in $(seq "$ROUNDS"); do
  order=("${targets[@]}")
  if [[ -n $ALT && $((r % 2)) == 0 ]]; then order=(alt gozer nginx); fi # neither build always first
  for t in "${order[@]}"; do
    read -r a b < <(run "$t")
    rate[$t]+="$a "; us[$t]+="$b "
    echo "round $r $t: $a msgs/s, $b µs CPU/msg" >&2
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "ws.sh: $ROUNDS rounds of ${DURATION}s, $CONNS connections echoing $SIZE-byte messages, proxy on core 0 (medians); gozer GOMAXPROCS=$gmp"
printf '%-6s %12s %14s %10s\n' proxy msgs/s "µs CPU/msg" "CPU vs nginx"
base=$(median <<<"${us[nginx]}")
for t in "${targets[@]}"; do
  u=$(median <<<"${us[$t]}")
  printf '%-6s %12s %14s %10s\n' "$t" "$(median <<<"${rate[$t]}")" "$u" "$(awk -v u="$u" -v b="$base" 'BEGIN {printf "%.2fx", u/b}')"
done
if [[ -n $ALT ]]; then # the A/B figure: alt over gozer within each round, then their median
  within=$(paste -d' ' <(tr ' ' '\n' <<<"${us[alt]}" | grep -v '^$') <(tr ' ' '\n' <<<"${us[gozer]}" | grep -v '^$') | awk '{printf "%.3f ", $1/$2}')
  echo "alt / gozer CPU per message within each round: median $(median <<<"$within") ($within)"
fi
