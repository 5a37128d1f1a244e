#!/usr/bin/env bash
# HTTP/2 over TLS: Gozer (listeners.https, ALPN h2) side by side with nginx (listen ... ssl
# http2), same certificate (ECDSA P-256, made here with openssl), same origin (run.sh's
# nginx, 128-byte body, HTTP/1.1 keep-alive upstream, up to 1024 idle upstream
# connections kept by both: -m 10 puts 640 requests in flight), same pinning: the proxy on core 0
# with one worker / event loop, the origin and h2load on core 1.
#
#   bash bench/h2.sh                   (what `make bench-h2` runs; about a minute)
#   BENCH_ROUNDS=1 BENCH_DURATION=2 bash bench/h2.sh     (smoke run)
#
# Each round, for each target (interleaved): h2load -c BENCH_CONNS -m BENCH_STREAMS
# -t 1 -D BENCH_DURATION (after BENCH_WARMUP s of the same), and the proxy's CPU
# (utime+stime of all its processes from /proc/PID/stat) over the run. Printed: req/s, CPU
# µs per request (medians over rounds) and Gozer's ratio to nginx.
# Knobs: BENCH_ROUNDS=3 BENCH_DURATION=5 BENCH_WARMUP=2 BENCH_CONNS=64 BENCH_STREAMS=10
#        H2_PORT_BASE=18580 BENCH_KEEP_TMP=1 (keep configs and logs)
#        BENCH_PROFILE=1: after the rounds, one more Gozer run of BENCH_PROFILE_SECS (10) under
#        the same load, with a CPU profile (bench/results/h2-profile.pprof, its top printed) and
#        Go heap allocations per request (runtime MemStats.Mallocs before and after: unlike CPU
#        time, a count that a busy machine does not disturb)
#        BENCH_STRACE=1: after the rounds, syscalls per request of each proxy (strace -c -f over
#        a 3 s h2load run: strace slows the proxy, the counts per request stay)
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_DURATION=${BENCH_DURATION:-5}
BENCH_WARMUP=${BENCH_WARMUP:-2}
BENCH_CONNS=${BENCH_CONNS:-64}
BENCH_STREAMS=${BENCH_STREAMS:-10}
BENCH_KEEP_TMP=${BENCH_KEEP_TMP:-0}
H2_PORT_BASE=${H2_PORT_BASE:-18580}
BENCH_PROFILE=${BENCH_PROFILE:-}
BENCH_PROFILE_SECS=${BENCH_PROFILE_SECS:-10}
BENCH_STRACE=${BENCH_STRACE:-}
ORIGIN_PORT=$H2_PORT_BASE
GOZER_PLAIN=$((H2_PORT_BASE + 1)) GOZER_ADMIN=$((H2_PORT_BASE + 2)) GOZER_TLS=$((H2_PORT_BASE + 3))
NGINX_TLS=$((H2_PORT_BASE + 4))
BENCH_PORTS=()

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh
# shellcheck source=bench/lib/work.sh
source bench/lib/work.sh
# shellcheck source=bench/targets/origin.sh
source bench/targets/origin.sh
# shellcheck source=bench/targets/gozer.sh
source bench/targets/gozer.sh # GOZER_GO_FILTERS: the Go filters, off as in run.sh's plain target

COMMAND="BENCH_ROUNDS=$BENCH_ROUNDS BENCH_DURATION=$BENCH_DURATION BENCH_CONNS=$BENCH_CONNS BENCH_STREAMS=$BENCH_STREAMS bash bench/h2.sh"
WORK=$(mktemp -d /tmp/gozer-h2.XXXXXX)
bench_exit_setup "$BENCH_KEEP_TMP"
log "command: $COMMAND"
ensure_cmds nginx:nginx h2load:nghttp2-client curl:curl openssl:openssl taskset:util-linux pgrep:procps
command -v go >/dev/null || die "go is not installed"
raise_nofile 65536
NOFILE=$(ulimit -n)
if (($(nproc) >= 2)); then PROXY_CPU=0 LOADGEN_CPU=1; else PROXY_CPU=0 LOADGEN_CPU=0; fi

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
log "building gozer"
go build -o "$WORK/gozer" ./gateway/cmd/gozer
origin_start

cat >"$WORK/gozer.yaml" <<CONF
listeners:
  proxy: { addr: "127.0.0.1:$GOZER_PLAIN" }
  admin: { addr: "127.0.0.1:$GOZER_ADMIN", metrics: true, pprof: $([[ -n $BENCH_PROFILE ]] && echo true || echo false) }
  https: { addr: "127.0.0.1:$GOZER_TLS", certificates: [{ cert: "$WORK/cert.pem", key: "$WORK/key.pem" }] }
server: { event_loops: 1, max_connections_per_ip: 0, max_requests_per_ip: 0 }
log: { level: warn, access_log: "off" }
filters: { dir: "$WORK/no-scripts", disabled: [$GOZER_GO_FILTERS] }
http2: { max_concurrent_streams: 100 }
origins:
  o: { servers: ["127.0.0.1:$ORIGIN_PORT"], max_connections_per_server: 1024, max_idle_per_server: 1024 }
routes:
  - { path_prefix: "/", origin: o }
CONF
mkdir -p "$WORK/no-scripts/inbound" "$WORK/no-scripts/endpoint" "$WORK/no-scripts/outbound"
bg_start "$WORK/gozer.log" taskset -c "$PROXY_CPU" "$WORK/gozer" -config "$WORK/gozer.yaml"
GOZER_PID=$BG_PID
wait_http gozer "$GOZER_PID" "http://127.0.0.1:$GOZER_ADMIN/healthcheck" 20 "$WORK/gozer.log"

mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream o { server 127.0.0.1:$ORIGIN_PORT; keepalive 1024; }
  server {
    listen 127.0.0.1:$NGINX_TLS ssl http2;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    http2_max_concurrent_streams 100;
    keepalive_requests 1000000000;
    location / { proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
bg_start "$WORK/nginx/stdout.log" taskset -c "$PROXY_CPU" nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
NGINX_PID=$BG_PID

declare -A PID=([gozer]=$GOZER_PID [nginx]=$NGINX_PID) PORT=([gozer]=$GOZER_TLS [nginx]=$NGINX_TLS)
for t in gozer nginx; do
  v=$(curl -sS --http2 --cacert "$WORK/cert.pem" -o /dev/null -w '%{http_version} %{http_code}' "https://localhost:${PORT[$t]}/") ||
    die "$t does not serve HTTPS"
  [[ $v == "2 200" ]] || die "$t: HTTP/2 check got '$v', want '2 200'"
done

# run TARGET SECONDS: one h2load run; prints "req/s cpu_us_per_request".
run() {
  local t=$1 secs=$2 c0 c1 out done_
  c0=$(cpu_ticks "${PID[$t]}")
  # (timeout: h2load 1.52 was once seen still sending 10 minutes into a -D 2 run.)
  out=$(taskset -c "$LOADGEN_CPU" timeout -k 5 $((secs + 60)) h2load -t 1 -c "$BENCH_CONNS" -m "$BENCH_STREAMS" -D "$secs" "https://localhost:${PORT[$t]}/" 2>&1) ||
    die "$t: h2load did not end within $((secs + 60)) s: $(tail -n 5 <<<"$out")"
  c1=$(cpu_ticks "${PID[$t]}")
  done_=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
  [[ -n $done_ && $done_ -gt 0 ]] || die "$t: h2load failed: $(tail -n 5 <<<"$out")"
  awk -v n="$done_" -v s="$secs" -v d=$((c1 - c0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.0f %.2f\n", n / s, d / hz * 1e6 / n }'
}

# mallocs prints the Go runtime's count of heap allocations so far (MemStats.Mallocs, at
# the end of /debug/pprof/allocs?debug=1).
mallocs() {
  curl -sS -f "http://127.0.0.1:$GOZER_ADMIN/debug/pprof/allocs?debug=1" | sed -n 's/^# Mallocs = //p'
}

# profile_gozer: BENCH_PROFILE's run (not in the medians): a CPU profile of Gozer over
# BENCH_PROFILE_SECS of the same h2load load, and its heap allocations per request.
profile_gozer() {
  local prof=$REPO/bench/results/h2-profile.pprof m0 m1 out done_ pp
  m0=$(mallocs)
  bg_start "$WORK/pprof.log" curl -sS -f -m $((BENCH_PROFILE_SECS + 30)) -o "$prof" \
    "http://127.0.0.1:$GOZER_ADMIN/debug/pprof/profile?seconds=$BENCH_PROFILE_SECS"
  pp=$BG_PID
  out=$(taskset -c "$LOADGEN_CPU" timeout -k 5 $((BENCH_PROFILE_SECS + 60)) h2load -t 1 -c "$BENCH_CONNS" -m "$BENCH_STREAMS" -D "$BENCH_PROFILE_SECS" "https://localhost:$GOZER_TLS/" 2>&1) ||
    die "gozer: h2load did not end within $((BENCH_PROFILE_SECS + 60)) s"
  m1=$(mallocs)
  wait "$pp" || warn "no CPU profile (see $WORK/pprof.log)"
  done_=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
  awk -v n="$done_" -v m=$((m1 - m0)) 'BEGIN { printf "gozer: %.2f heap allocations per request (MemStats.Mallocs over %d requests)\n", m / n, n }'
  if [[ -s $prof ]]; then
    echo "gozer CPU profile: $prof"
    go tool pprof -top -nodecount=30 "$prof" 2>/dev/null | sed -n '/flat%/,$p'
  fi
}

# strace_one TARGET: BENCH_STRACE's run (not in the medians): the proxy's syscalls per request.
strace_one() {
  local t=$1 out done_ sc p
  p=$(pgrep -P "${PID[$t]}" | head -n 1 || true) # nginx: its one worker; gozer: none, itself
  [[ -n $p ]] || p=${PID[$t]}
  ensure_cmds strace:strace
  bg_start "$WORK/strace-$t.txt" strace -c -f -p "$p"
  sc=$BG_PID
  sleep 1
  out=$(taskset -c "$LOADGEN_CPU" timeout -k 5 60 h2load -t 1 -c "$BENCH_CONNS" -m "$BENCH_STREAMS" -D 3 "https://localhost:${PORT[$t]}/" 2>&1) ||
    die "$t: h2load did not end under strace"
  kill -INT "$sc"
  wait "$sc" 2>/dev/null || true
  done_=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
  awk -v n="$done_" -v t="$t" '$NF == "total" { printf "%s: %.2f syscalls per request over %d requests (strace -c):", t, $4 / n, n }
    $1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { top = top sprintf(" %s %.2f", $NF, $4 / n) } END { print top }' "$WORK/strace-$t.txt"
}

declare -A RPS CPU
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
  for t in gozer nginx; do
    run "$t" "$BENCH_WARMUP" >/dev/null
    read -r rps cpu < <(run "$t" "$BENCH_DURATION")
    log "round $r $t: $rps req/s, $cpu CPU µs/request"
    RPS[$t]+="$rps "
    CPU[$t]+="$cpu "
  done
done
med() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
{
  echo "# HTTP/2 over TLS: h2load -c $BENCH_CONNS -m $BENCH_STREAMS, medians of $BENCH_ROUNDS rounds"
  echo "# command: $COMMAND"
  printf '%-8s %12s %16s\n' target req/s cpu_us/req
  for t in gozer nginx; do
    printf '%-8s %12s %16s\n' "$t" "$(med <<<"${RPS[$t]}")" "$(med <<<"${CPU[$t]}")"
  done
  awk -v gc="$(med <<<"${CPU[gozer]}")" -v nc="$(med <<<"${CPU[nginx]}")" -v gr="$(med <<<"${RPS[gozer]}")" -v nr="$(med <<<"${RPS[nginx]}")" \
    'BEGIN { printf "gozer/nginx: CPU per request %.2fx, req/s %.2fx\n", gc / nc, gr / nr }'
  if [[ -n $BENCH_PROFILE ]]; then profile_gozer; fi
  if [[ -n $BENCH_STRACE ]]; then for t in gozer nginx; do strace_one "$t"; done; fi
} | { mkdir -p "$REPO/bench/results"; tee "$REPO/bench/results/h2-latest.txt"; }
