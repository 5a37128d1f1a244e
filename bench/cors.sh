#!/usr/bin/env bash
# The cost of CORS (issue 18): what a preflight answered by the gateway costs Gozer per
# request, next to a plain proxied request and to the same request with an allowed Origin.
#
#   bash bench/cors.sh                                      (~1.5 minutes on 2 cores)
#   CORS_ROUNDS=1 CORS_DURATION=3 bash bench/cors.sh        (smoke, ~20 s)
#
# One Gozer (server.event_loops 1, pinned to core 0; an empty scripts directory: no Lua
# filters, the built-in Go filters on) in front of gateway/cmd/demo-origin's "/" (core 1), with one route
# whose CORS policy allows http://localhost:3000. wrk (-t1 -c32, core 1) runs, interleaved
# per round:
#   plain      GET /                 no Origin: proxied, the CORS filters' should_filter only
#   cors-get   GET / + Origin        proxied, Access-Control-* and Vary added on the way out
#   preflight  OPTIONS / + Origin + Access-Control-Request-Method/-Headers: answered 204 by
#              the gateway (the cors filter), no origin call
# and prints req/s and Gozer's CPU µs per request (utime+stime from /proc / requests) of
# each, medians over the rounds. The Go side alone (no sockets):
#   go test -run XXX -bench CORS -benchmem ./filters/builtin/
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${CORS_ROUNDS:-3}
DURATION=${CORS_DURATION:-8}
PORT=${CORS_PORT:-18480}
ADMIN=${CORS_ADMIN_PORT:-18481}
ORIGIN_PORT=${CORS_ORIGIN_PORT:-18490}
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
go build -o "$WORK/" ./gateway/cmd/gozer ./gateway/cmd/demo-origin
mkdir -p "$WORK/scripts"
cat >"$WORK/gozer.yaml" <<YAML
listeners:
  proxy: {addr: "127.0.0.1:$PORT"}
  admin: {addr: "127.0.0.1:$ADMIN"}
server: {event_loops: 1, max_connections_per_ip: 0, max_requests_per_ip: 0}
log: {level: warn, access_log: "off"}
filters: {dir: "$WORK/scripts"}
origins:
  bench: {servers: ["127.0.0.1:$ORIGIN_PORT"]}
cors:
  web: {allow_origins: ["http://localhost:3000"], allow_methods: [GET, PUT], allow_headers: [X-Demo],
        expose_headers: [X-Request-Id], allow_credentials: true, max_age: 10m}
routes:
  - {path_prefix: /, origin: bench, cors: web}
YAML
taskset -c 1 "$WORK/demo-origin" -addr "127.0.0.1:$ORIGIN_PORT" >/dev/null 2>&1 & pids+=($!)
GOZER_PUSH_SECRET=bench-secret-0123456789 taskset -c 0 "$WORK/gozer" -config "$WORK/gozer.yaml" >"$WORK/gozer.log" 2>&1 & gozer=$!; pids+=($gozer)
for _ in $(seq 100); do curl -sf -o /dev/null "127.0.0.1:$PORT/" && break; sleep 0.1; done || { cat "$WORK/gozer.log"; exit 1; }
cat >"$WORK/cors-get.lua" <<'LUA'
wrk.headers["Origin"] = "http://localhost:3000"
LUA
cat >"$WORK/preflight.lua" <<'LUA'
wrk.method = "OPTIONS"
wrk.headers["Origin"] = "http://localhost:3000"
wrk.headers["Access-Control-Request-Method"] = "PUT"
wrk.headers["Access-Control-Request-Headers"] = "x-demo"
LUA
: >"$WORK/plain.lua"
# Check each case answers as it should before measuring.
curl -sf -o /dev/null -H "Origin: http://localhost:3000" "127.0.0.1:$PORT/" || { echo "cors.sh: gozer does not answer 200 on 127.0.0.1:$PORT/"; cat "$WORK/gozer.log"; exit 1; }
test "$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: http://localhost:3000' \
  -H 'Access-Control-Request-Method: PUT' "127.0.0.1:$PORT/")" = 204
ticks() { awk '{print $14+$15}' "/proc/$gozer/stat"; }
hz=$(getconf CLK_TCK)
run() { # case -> "reqs/s us/req"
  local t0 t1 out n
  t0=$(ticks)
  out=$(taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" -s "$WORK/$1.lua" "http://127.0.0.1:$PORT/")
  t1=$(ticks)
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  awk -v n="$n" -v d="$DURATION" -v t="$((t1 - t0))" -v hz="$hz" 'BEGIN {printf "%.0f %.2f\n", n/d, t/hz*1e6/n}'
}
run plain >/dev/null # warm-up
declare -A rps us
for r in $(seq "$ROUNDS"); do
  for c in plain cors-get preflight; do
    read -r a b < <(run "$c")
    rps[$c]+="$a "; us[$c]+="$b "
    echo "round $r $c: $a req/s, $b µs CPU/req" >&2
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "cors.sh: $ROUNDS rounds of ${DURATION}s, wrk -t1 -c32, gozer event_loops 1 on core 0 (medians)"
printf '%-10s %10s %14s %8s\n' case req/s "µs CPU/req" "vs plain"
base=$(median <<<"${us[plain]}")
for c in plain cors-get preflight; do
  u=$(median <<<"${us[$c]}")
  printf '%-10s %10s %14s %8s\n' "$c" "$(median <<<"${rps[$c]}")" "$u" "$(awk -v u="$u" -v b="$base" 'BEGIN {printf "%.2f", u/b}')"
done
