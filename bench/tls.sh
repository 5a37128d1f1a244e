#!/usr/bin/env bash
# TLS termination: Gozer (listeners.https) side by side with nginx and HAProxy, same
# certificate (ECDSA P-256), same pinning as the proxy bench (run.sh), in one run.
#
#   bash bench/tls.sh                  (what `make bench-tls` runs; ~7 minutes on 2 cores)
#   BENCH_ROUNDS=1 BENCH_DURATION=2 BENCH_WARMUP=1 TLS_IDLE_CONNS=500 bash bench/tls.sh
#                                      (smoke run, about 75 s; a minute with TLS_IDLE_KINDS=tls)
#
# The script makes one self-signed ECDSA P-256 certificate (CN localhost, SAN localhost and
# 127.0.0.1) with openssl in its temp dir, and every target terminates TLS with it, pinned
# to core 0 with one worker / thread / event loop, forwarding to one origin (an nginx of our
# own, 128-byte body, run.sh's) on core 1 with the load generators:
#   gozer    targets/gozer-tls.sh: the gozer target's config plus listeners.https
#            { addr, certificates: [{ cert, key }], session_tickets: true }
#   nginx    targets/nginx-tls.sh: the nginx target's config plus listen ... ssl,
#            ssl_session_tickets on, ssl_session_cache off
#   haproxy  targets/haproxy-tls.sh: the haproxy target's config plus bind ... ssl crt,
#            tune.ssl.cachesize 0 (tickets on by default)
# TLS 1.2 and 1.3 allowed everywhere; resumption by session tickets only, for all three;
# nginx and HAProxy prefer the suite Go picks (TLS_AES_128_GCM_SHA256, and
# ECDHE-ECDSA-AES128-GCM-SHA256 in TLS 1.2) and X25519, so that all three negotiate the same.
# Each keeps its plain listener too (readiness, and the no-TLS reference row).
#
# Before the runs each target must show that it serves HTTPS with that certificate: curl
# --cacert (status 200, the origin's 128 bytes), openssl s_client -servername localhost in
# TLS 1.3 and 1.2 (verified against the certificate, ECDSA P-256, the same sha256), and
# tlsload -mode check (version, suite, group, tickets, a second connection that resumes);
# after the runs, Gozer's GET /admin/tls counters must cover the handshakes the clients saw.
# Then, in interleaved rounds (per round, per mode: gozer nginx haproxy), medians over rounds:
#   keepalive  wrk -t1 -c64 https://localhost:PORT/ (wrk 4.1.0 with OpenSSL): req/s, latency,
#              the proxy's CPU µs per request (utime+stime of all its processes, /proc)
#   full       bench/tlsload, TLS 1.3 + X25519, a closed loop of TLS_HS_CONNS workers each
#              opening a connection, one full handshake, one GET with Connection: close,
#              the server's close: handshakes/s, the proxy's CPU µs per handshake (schedstat)
#              and handshakes per proxy CPU-second ("per core")
#   resumed    the same, each handshake offering the worker's newest ticket (primed before
#              the clock starts); fails below TLS_MIN_RESUMED actually resumed
#   tcp        the same exchange without TLS, on the plain port: what the connection and the
#              request cost, so that "full − tcp" is the handshake's own cost
#   full12, resumed12  (opt-in) the same in TLS 1.2, ECDHE-ECDSA-AES128-GCM-SHA256
#   plain      (opt-in) wrk keep-alive over plain HTTP on the same process
# Then memory per idle TLS connection: each target restarted fresh (and warmed 1 s), its RSS
# (all processes) before and with TLS_IDLE_CONNS idle TLS connections, each after a full
# handshake and one request (bench/idleconns -tls), less before, per connection; and the
# same with plain keep-alive connections, for what TLS adds. Ratios to nginx throughout,
# and the issue's targets: keep-alive HTTPS CPU/req <= 1.0x nginx, full handshakes per core
# >= 0.9x, resumed >= 1.0x, idle TLS connection <= 2x nginx's bytes.
# Results: stdout, bench/results/tls-latest.txt (+ a timestamped copy and the runs as TSV).
#
# Knobs (environment):
#   BENCH_ROUNDS=5           measured rounds
#   BENCH_DURATION=4         seconds per run (wrk, or tlsload's time opening connections)
#   BENCH_WARMUP=2           seconds of warm-up per target and mode (keepalive, full)
#   BENCH_CONNS=64           wrk connections (wrk -t1), as run.sh
#   TLS_TARGETS="gozer nginx haproxy"
#   TLS_MODES="keepalive full resumed tcp"   add full12 resumed12 for TLS 1.2 rows, plain
#                            for keep-alive without TLS
#   TLS_HS_CONNS=32          tlsload workers (connections in flight)
#   TLS_MIN_RESUMED=0.9      a resumed run below this fraction of resumed handshakes fails
#   TLS_IDLE_CONNS=10000     idle connections for the memory figure (0 skips it); capped,
#                            with a warning, to what the open-file limit allows
#   TLS_IDLE_KINDS="tls plain"  which idle memory figures (tls, plain)
#   TLS_IDLE_ROUNDS=1        idle memory measurements per target and kind (median)
#   TLS_IDLE_SETTLE=1        seconds between "all connections open" and the RSS reading
#   TLS_PORT_BASE=18380      origin on BASE; gozer plain +1, admin +2, TLS +3; nginx plain
#                            +4, TLS +5; haproxy plain +6, TLS +7 (away from run.sh's ports)
#   BENCH_GOZER_GOMAXPROCS   GOMAXPROCS for Gozer (default: unset, Gozer's own: loops + 1)
#   BENCH_OTHER_CPU_MAX=10   a run during which other jobs took more than this % of the
#                            proxy's core is disturbed (redone once while BENCH_RETRY_BUDGET
#                            seconds last; medians over the clean runs when at least half
#                            the rounds have one, else over the least disturbed half)
#   BENCH_RETRY_BUDGET=60
#   BENCH_STRICT=1           exit non-zero when Gozer could not be measured
#   BENCH_KEEP_TMP=1         keep certificate, configs, logs and raw outputs
#
# Exit status: non-zero when the harness failed (a tool missing, the origin, nginx or
# HAProxy not starting or not serving HTTPS with the bench's certificate, a listener left
# behind). Gozer not building, not starting, refusing the TLS keys or not serving HTTPS yet is
# a result: "gozer: not measured: <reason>" in the report (BENCH_STRICT=1 makes it fail).
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

BENCH_ROUNDS=${BENCH_ROUNDS:-5}
BENCH_DURATION=${BENCH_DURATION:-4}
BENCH_WARMUP=${BENCH_WARMUP:-2}
BENCH_CONNS=${BENCH_CONNS:-64}
BENCH_THREADS=1
BENCH_KEEP_TMP=${BENCH_KEEP_TMP:-0}
BENCH_OTHER_CPU_MAX=${BENCH_OTHER_CPU_MAX:-10}
BENCH_RETRY_BUDGET=${BENCH_RETRY_BUDGET:-60}
BENCH_GOZER_GOMAXPROCS=${BENCH_GOZER_GOMAXPROCS:-}
BENCH_STRICT=${BENCH_STRICT:-0}
TLS_TARGETS=${TLS_TARGETS:-gozer nginx haproxy}
TLS_MODES=${TLS_MODES:-keepalive full resumed tcp}
TLS_HS_CONNS=${TLS_HS_CONNS:-32}
TLS_MIN_RESUMED=${TLS_MIN_RESUMED:-0.9}
TLS_IDLE_CONNS=${TLS_IDLE_CONNS:-10000}
TLS_IDLE_KINDS=${TLS_IDLE_KINDS:-tls plain}
TLS_IDLE_ROUNDS=${TLS_IDLE_ROUNDS:-1}
TLS_IDLE_SETTLE=${TLS_IDLE_SETTLE:-1}
TLS_PORT_BASE=${TLS_PORT_BASE:-18380}
TLS_SOURCES=10 # tlsload and idleconns connect from 127.0.0.2 .. 127.0.0.11
# Ports of our own, away from run.sh's (1808x-1810x) and compress.sh's (1828x).
ORIGIN_PORT=${ORIGIN_PORT:-$TLS_PORT_BASE}
GOZER_TLS_PLAIN_PORT=$((TLS_PORT_BASE + 1)) GOZER_TLS_ADMIN_PORT=$((TLS_PORT_BASE + 2)) GOZER_TLS_PORT=$((TLS_PORT_BASE + 3))
NGINX_TLS_PLAIN_PORT=$((TLS_PORT_BASE + 4)) NGINX_TLS_PORT=$((TLS_PORT_BASE + 5))
HAPROXY_TLS_PLAIN_PORT=$((TLS_PORT_BASE + 6)) HAPROXY_TLS_PORT=$((TLS_PORT_BASE + 7))
# The TLS policy of nginx and HAProxy: the server's preference, and the suite Go's
# crypto/tls picks on AES hardware first, so that all three negotiate the same whatever
# the client prefers (wrk's OpenSSL offers TLS_AES_256_GCM_SHA384 first). X25519 first.
TLS_CIPHERSUITES13="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
TLS_CIPHERS12="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
TLS_GROUPS="X25519:P-256"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh
# shellcheck source=bench/lib/measure.sh
source bench/lib/measure.sh
# shellcheck source=bench/lib/work.sh
source bench/lib/work.sh # BENCH_CHECK_PATH (origin.sh), header_of
# shellcheck source=bench/targets/origin.sh
source bench/targets/origin.sh
# shellcheck source=bench/targets/gozer.sh
source bench/targets/gozer.sh
# shellcheck source=bench/targets/gozer-tls.sh
source bench/targets/gozer-tls.sh
# shellcheck source=bench/targets/nginx.sh
source bench/targets/nginx.sh
# shellcheck source=bench/targets/nginx-tls.sh
source bench/targets/nginx-tls.sh
# shellcheck source=bench/targets/haproxy-tls.sh
source bench/targets/haproxy-tls.sh

read -r -a TARGETS <<<"$TLS_TARGETS"
read -r -a MODES <<<"$TLS_MODES"
read -r -a IDLE_KINDS <<<"$TLS_IDLE_KINDS"
ALL_TARGETS=("${TARGETS[@]}")
# The ports this run uses (the sourced target files add run.sh's defaults to BENCH_PORTS).
BENCH_PORTS=("$ORIGIN_PORT")
for t in "${TARGETS[@]}"; do
  case $t in
    gozer) BENCH_PORTS+=("$GOZER_TLS_PLAIN_PORT" "$GOZER_TLS_ADMIN_PORT" "$GOZER_TLS_PORT") ;;
    nginx) BENCH_PORTS+=("$NGINX_TLS_PLAIN_PORT" "$NGINX_TLS_PORT") ;;
    haproxy) BENCH_PORTS+=("$HAPROXY_TLS_PLAIN_PORT" "$HAPROXY_TLS_PORT") ;;
    *) echo "TLS_TARGETS: unknown target '$t' (gozer nginx haproxy)" >&2; exit 2 ;;
  esac
done
for m in "${MODES[@]}"; do
  case $m in
    keepalive | plain | full | resumed | tcp | full12 | resumed12) ;;
    *) echo "TLS_MODES: unknown mode '$m' (keepalive plain full resumed tcp full12 resumed12)" >&2; exit 2 ;;
  esac
done
for k in "${IDLE_KINDS[@]}"; do
  [[ $k == tls || $k == plain ]] || { echo "TLS_IDLE_KINDS: unknown kind '$k' (tls plain)" >&2; exit 2; }
done

COMMAND="BENCH_ROUNDS=$BENCH_ROUNDS BENCH_DURATION=$BENCH_DURATION BENCH_WARMUP=$BENCH_WARMUP BENCH_CONNS=$BENCH_CONNS TLS_TARGETS=\"$TLS_TARGETS\" TLS_MODES=\"$TLS_MODES\" TLS_HS_CONNS=$TLS_HS_CONNS TLS_IDLE_CONNS=$TLS_IDLE_CONNS TLS_IDLE_KINDS=\"$TLS_IDLE_KINDS\""
# Knobs left at their defaults are not repeated.
for v in TLS_MIN_RESUMED=0.9 TLS_IDLE_ROUNDS=1 TLS_IDLE_SETTLE=1 TLS_PORT_BASE=18380 BENCH_GOZER_GOMAXPROCS= BENCH_OTHER_CPU_MAX=10 BENCH_RETRY_BUDGET=60; do
  name=${v%%=*}
  if [[ ${!name} != "${v#*=}" ]]; then COMMAND+=" $name=${!name}"; fi
done
COMMAND+=" bash bench/tls.sh"
RESULTS_DIR=$REPO/bench/results
WORK=$(mktemp -d /tmp/gozer-tls.XXXXXX)
RUNS_TSV=$WORK/runs.tsv
MEM_TSV=$WORK/mem.tsv
# run.sh's columns (for handshake runs: req_s = handshakes/s, cpu_us_req = CPU µs per
# handshake, wrk_cpu_pct = tlsload's CPU, requests = handshakes), plus the % of handshakes
# that resumed, the session tickets the client received per connection, and the CPU other
# jobs took from the proxy's core during the run (% of that core): what decides whether a
# run was disturbed here.
RUNS_HEADER+=$'\tresumed_pct\ttickets_per_conn\tother_proxy_core_pct'

bench_exit_setup "$BENCH_KEEP_TMP"
log "command: $COMMAND"

# --- tools, limits, cores ----------------------------------------------------------------

command -v go >/dev/null || die "go is not installed"
ensure_cmds nginx:nginx haproxy:haproxy wrk:wrk curl:curl openssl:openssl taskset:util-linux \
  pgrep:procps ss:iproute2 sha256sum:coreutils
raise_nofile 200000
NOFILE=$(ulimit -n)
# The idle client and the proxy each need one descriptor per connection (each process has
# its own limit), plus the proxy's listeners and origin connections.
TLS_IDLE_CONNS_ASKED=$TLS_IDLE_CONNS
if ((TLS_IDLE_CONNS > NOFILE - 1000)); then
  warn "TLS_IDLE_CONNS=$TLS_IDLE_CONNS does not fit in $NOFILE open files; using $((NOFILE - 1000))"
  TLS_IDLE_CONNS=$((NOFILE - 1000))
fi
NPROC=$(nproc) # before the harness pins itself to one core (below)
if ((NPROC >= 2)); then
  PROXY_CPU=0 LOADGEN_CPU=1
  BENCH_CORES=(0 1)
else
  PROXY_CPU=0 LOADGEN_CPU=0
  BENCH_CORES=(0)
  warn "one core only: proxies, origin and load generators share it; ratios still mean something, absolute figures do not"
fi
for p in "${BENCH_PORTS[@]}"; do
  if port_in_use "$p"; then die "port $p is already in use (a previous run still up? set TLS_PORT_BASE)"; fi
done
[[ $(getent ahostsv4 localhost | awk 'NR == 1 { print $1 }') == 127.0.0.1 ]] ||
  die "localhost does not resolve to 127.0.0.1 (wrk and the checks use https://localhost:PORT/)"

# --- certificate -------------------------------------------------------------------------

# One self-signed ECDSA P-256 certificate for all three (PKCS#8 key), valid for localhost and
# 127.0.0.1; HAProxy wants certificate and key in one file. 0644: the nginx worker (user
# nobody when started as root) reads nothing here (the master loads them), but be plain.
TLS_DIR=$WORK/tls
mkdir -p "$TLS_DIR"
chmod 755 "$WORK" "$TLS_DIR"
TLS_CERT=$TLS_DIR/cert.pem TLS_KEY=$TLS_DIR/key.pem TLS_CERT_KEY=$TLS_DIR/cert+key.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TLS_KEY" 2>"$TLS_DIR/openssl.log" ||
  die "openssl genpkey failed: $(cat "$TLS_DIR/openssl.log")"
openssl req -x509 -new -key "$TLS_KEY" -sha256 -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=serverAuth" \
  -out "$TLS_CERT" 2>>"$TLS_DIR/openssl.log" || die "openssl req failed: $(cat "$TLS_DIR/openssl.log")"
cat "$TLS_CERT" "$TLS_KEY" >"$TLS_CERT_KEY"
chmod 644 "$TLS_CERT" "$TLS_KEY" "$TLS_CERT_KEY"
CERT_FP=$(openssl x509 -in "$TLS_CERT" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
CERT_DESC="CN=localhost, SAN DNS:localhost IP:127.0.0.1, $(openssl x509 -in "$TLS_CERT" -noout -text |
  awk '/Public Key Algorithm/ { a = $NF } /NIST CURVE/ { c = $NF } /Signature Algorithm/ { s = $NF } END { printf "%s %s, signed %s", a, c, s }'), self-signed, valid until $(openssl x509 -in "$TLS_CERT" -noout -enddate | sed 's/.*=//'); sha256 ${CERT_FP:0:16}…"
log "certificate: $CERT_DESC"

log "building bench/tlsload and bench/idleconns"
go build -o "$WORK/tlsload" ./bench/tlsload || die "bench/tlsload does not build"
go build -o "$WORK/idleconns" ./bench/idleconns || die "bench/idleconns does not build"

# --- origin, targets, checks -------------------------------------------------------------

log "starting origin (nginx) on 127.0.0.1:$ORIGIN_PORT, core $LOADGEN_CPU"
origin_start || die "origin did not start"
ORIGIN_SHA=$(curl -s -m 5 "http://127.0.0.1:$ORIGIN_PORT/" | sha256sum | cut -c1-64)

declare -A TARGET_PID TARGET_LOG TARGET_DESC TARGET_TLS_DESC TARGET_TLS_ADDR TARGET_PLAIN_ADDR CHECK_NOTE NOT_MEASURED MODE_FAILED
PROBLEMS=()
HARNESS_FAILED=0
GOZER_PROBLEM=""
# shellcheck disable=SC2034 # read by targets/gozer.sh
GOZER_GOMAXPROCS=${BENCH_GOZER_GOMAXPROCS/default/}

# target_failed NAME REASON: NAME is not measured (any more). A peer failing is the
# harness's failure; Gozer failing is a result (BENCH_STRICT=1 makes it fail).
target_failed() {
  local name=$1 reason=$2 t keep=()
  warn "$name: not measured: $reason"
  NOT_MEASURED[$name]=$reason
  if [[ $name == gozer ]]; then
    GOZER_PROBLEM=$reason
  else
    PROBLEMS+=("$name: not measured: $reason")
    HARNESS_FAILED=1
  fi
  for t in "${TARGETS[@]}"; do
    if [[ $t != "$name" ]]; then keep+=("$t"); fi
  done
  TARGETS=(${keep[@]+"${keep[@]}"})
  if [[ -n ${TARGET_PID[$name]:-} ]]; then stop_pid "${TARGET_PID[$name]}"; fi
  unset "TARGET_PID[$name]"
}

# https_get ADDR: one GET over HTTPS with curl, trusting only the bench's certificate, for
# the name localhost; prints "STATUS SHA256-OF-BODY VERIFY-RESULT".
https_get() {
  local port=${1##*:} body=$WORK/https-body w
  w=$(curl -s -m 5 --cacert "$TLS_CERT" --resolve "localhost:$port:127.0.0.1" -o "$body" \
    -w '%{http_code} %{ssl_verify_result}' "https://localhost:$port/" 2>/dev/null) || w="000 -"
  printf '%s %s %s\n' "${w%% *}" "$(sha256sum <"$body" 2>/dev/null | cut -c1-64)" "${w##* }"
}

# wait_https NAME PID ADDR SECS: until the TLS listener answers 200 (a listener opened a
# moment after the plain one, or not at all).
wait_https() {
  local end=$((SECONDS + $4))
  while ((SECONDS < end)); do
    alive "$2" || return 1
    [[ $(https_get "$3" | cut -d' ' -f1) == 200 ]] && return 0
    sleep 0.2
  done
  return 1
}

# s_client_check ADDR VERSION (tls1_3 | tls1_2): openssl s_client with SNI localhost,
# verifying against the bench's certificate; sets S_NOTE, or S_FAIL with the reasons.
s_client_check() {
  local addr=$1 v=$2 out fp problems=() proto cipher temp peer bits verify
  out=$(timeout 10 openssl s_client -connect "$addr" -servername localhost -CAfile "$TLS_CERT" \
    -verify_hostname localhost "-$v" </dev/null 2>&1) || true
  fp=$(openssl x509 -noout -fingerprint -sha256 2>/dev/null <<<"$out" | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
  proto=$(awk '/^(New|Reused), / { sub(/,$/, "", $2); print $2; exit }' <<<"$out")
  cipher=$(awk '/^(New|Reused), .*Cipher is/ { print $NF; exit }' <<<"$out")
  temp=$(awk -F': ' '/^Server Temp Key:/ { print $2; exit }' <<<"$out")
  peer=$(awk -F': ' '/^Peer signature type:/ { print $2; exit }' <<<"$out")
  bits=$(awk '/^Server public key is/ { print $5; exit }' <<<"$out")
  verify=$(awk -F': ' '/Verify return code:/ { print $2; exit }' <<<"$out")
  [[ $fp == "$CERT_FP" ]] || problems+=("served certificate sha256 ${fp:-none}, not the bench's")
  [[ $verify == "0 (ok)" ]] || problems+=("verification: ${verify:-no result}")
  [[ $peer == ECDSA ]] || problems+=("peer signature type '${peer}', want ECDSA")
  [[ $bits == 256 ]] || problems+=("server public key ${bits:-?} bit, want 256 (P-256)")
  S_NOTE="${proto:-?}, ${cipher:-?}, key exchange ${temp:-?}, signature ${peer:-?}, ${bits:-?}-bit key, verify ${verify:-?}"
  S_FAIL=""
  if ((${#problems[@]})); then
    S_FAIL=$(printf '%s; ' "${problems[@]}")
    S_FAIL=${S_FAIL%; }
  fi
  [[ -z $S_FAIL ]]
}

# start_target NAME: start NAME (targets/NAME-tls.sh), wait until it is ready, reaches the
# origin and answers HTTPS; records it. Sets START_FAIL_REASON on failure. A port of ours
# can be held for a moment by another job's outgoing connection (net.ipv4.ip_local_port_range
# may start at 1024: it does on the bench machine), which the free-port check at the start
# cannot see coming: a start that failed with "address already
# in use" is tried again, up to 4 more times, 2 s apart.
START_FAIL_REASON=""
start_target() {
  local name=$1 try
  for try in 1 2 3 4 5; do
    start_target_once "$name" && return 0
    [[ -n $T_LOG ]] && grep -qis 'address already in use' "$(dirname "$T_LOG")"/*.log || return 1
    ((try < 5)) || return 1
    warn "$name: $START_FAIL_REASON; a port was taken by another socket: trying again in 2 s"
    sleep 2
  done
}

start_target_once() {
  local name=$1
  T_PID="" T_URL="" T_READY_URL="" T_LOG="" T_DESC="" T_TLS_DESC="" T_TLS_ADDR="" T_PLAIN_ADDR=""
  WAIT_FAIL_REASON="target_$name-tls_start failed"
  if ! "target_$name-tls_start"; then
    START_FAIL_REASON="does not start: $WAIT_FAIL_REASON"
    return 1
  fi
  if ! wait_http "$name" "$T_PID" "$T_READY_URL" 30 "$T_LOG" ||
    ! wait_http "$name (plain, through to the origin)" "$T_PID" "$T_URL" 10 "$T_LOG"; then
    START_FAIL_REASON="does not start: $WAIT_FAIL_REASON"
    stop_pid "$T_PID"
    return 1
  fi
  if ! wait_https "$name" "$T_PID" "$T_TLS_ADDR" 10; then
    if alive "$T_PID"; then
      START_FAIL_REASON="no HTTPS answer (200) on $T_TLS_ADDR within 10 s (plain listener fine)$(
        port_in_use "${T_TLS_ADDR##*:}" || echo ": nothing listens there")"
    else
      START_FAIL_REASON="exited; last log line: $(tail -n 1 "$T_LOG" 2>/dev/null | cut -c1-200)"
    fi
    tail -n 5 "$T_LOG" >&2 2>/dev/null || true
    stop_pid "$T_PID"
    return 1
  fi
  TARGET_PID[$name]=$T_PID TARGET_LOG[$name]=$T_LOG TARGET_DESC[$name]=$T_DESC TARGET_TLS_DESC[$name]=$T_TLS_DESC
  TARGET_TLS_ADDR[$name]=$T_TLS_ADDR TARGET_PLAIN_ADDR[$name]=$T_PLAIN_ADDR
}

# tls_checks NAME: does NAME serve HTTPS with the bench's certificate, in TLS 1.3 and 1.2,
# with tickets that resume? TLS 1.3 failing: not measured. TLS 1.2 failing: its rows only.
tls_checks() {
  local name=$1 addr=${TARGET_TLS_ADDR[$1]} get status sha verify line problems=() notes=()
  get=$(https_get "$addr")
  read -r status sha verify <<<"$get"
  [[ $status == 200 ]] || problems+=("curl --cacert: status $status")
  [[ $sha == "$ORIGIN_SHA" ]] || problems+=("curl --cacert: the body is not the origin's")
  [[ $verify == 0 ]] || problems+=("curl --cacert: certificate verification result $verify")
  notes+=("curl --cacert https://localhost:${addr##*:}/: $status, the origin's $ORIGIN_BODY_BYTES bytes, verified")
  if s_client_check "$addr" tls1_3; then notes+=("openssl s_client -tls1_3: $S_NOTE"); else problems+=("openssl s_client -tls1_3: $S_FAIL ($S_NOTE)"); fi
  if s_client_check "$addr" tls1_2; then
    notes+=("openssl s_client -tls1_2: $S_NOTE")
  else
    PROBLEMS+=("$name: TLS 1.2 check failed (its TLS 1.2 rows are not measured): openssl s_client -tls1_2: $S_FAIL")
    MODE_FAILED[$name@full12]="TLS 1.2 check failed" MODE_FAILED[$name@resumed12]="TLS 1.2 check failed"
  fi
  "$WORK/tlsload" -mode check -addr "$addr" -servername localhost -ca "$TLS_CERT" -host localhost \
    -body-bytes "$ORIGIN_BODY_BYTES" -sources 0 >"$WORK/check-$name.txt" 2>&1 || true
  line=$(awk '$1 == "check" && $2 == "tls1.3"' "$WORK/check-$name.txt")
  if [[ $line == "check tls1.3 ok "* ]]; then
    notes+=("tlsload TLS 1.3: ${line#check tls1.3 ok }")
  else
    problems+=("tlsload TLS 1.3: ${line#check tls1.3 }${line:-$(tail -n 2 "$WORK/check-$name.txt" | tr '\n' ' ')}")
  fi
  line=$(awk '$1 == "check" && $2 == "tls1.2"' "$WORK/check-$name.txt")
  if [[ $line == "check tls1.2 ok "* ]]; then
    notes+=("tlsload TLS 1.2: ${line#check tls1.2 ok }")
  else
    PROBLEMS+=("$name: tlsload TLS 1.2 check: ${line#check tls1.2 }")
    MODE_FAILED[$name@full12]="TLS 1.2 check failed" MODE_FAILED[$name@resumed12]="TLS 1.2 check failed"
  fi
  CHECK_NOTE[$name]=$(printf '%s; ' "${notes[@]}")
  CHECK_NOTE[$name]=${CHECK_NOTE[$name]%; }
  if ((${#problems[@]})); then
    CHECK_FAIL=$(printf '%s; ' "${problems[@]}")
    CHECK_FAIL="does not serve HTTPS as it must: ${CHECK_FAIL%; }"
    return 1
  fi
}

# From here on the harness itself (curl, awk, the /proc readings) runs on the load core, with
# the load generators and the origin: what else runs on the proxy's core is other jobs.
# Gozer is built first, on both cores (a failed build is reported when gozer starts).
if [[ " ${TARGETS[*]} " == *" gozer "* ]]; then gozer_build || true; fi
taskset -pc "$LOADGEN_CPU" $$ >/dev/null || warn "could not pin the harness to core $LOADGEN_CPU"

for t in "${ALL_TARGETS[@]}"; do
  log "starting $t (TLS) on core $PROXY_CPU"
  if ! start_target "$t"; then
    target_failed "$t" "$START_FAIL_REASON"
    continue
  fi
  if ! tls_checks "$t"; then
    target_failed "$t" "$CHECK_FAIL"
    continue
  fi
  log "  $t: ${CHECK_NOTE[$t]}"
done
((${#TARGETS[@]})) || die "no target could be measured: ${PROBLEMS[*]} ${GOZER_PROBLEM}"

# --- runs --------------------------------------------------------------------------------

printf '%s\n' "$RUNS_HEADER" >"$RUNS_TSV"

# wall_ns: now, in ns.
wall_ns() { date +%s%N; }

# ka_run KIND NAME MODE ROUND: one wrk run (keepalive: HTTPS; plain: HTTP) through NAME,
# then the extra columns: no resumption or ticket figures, and the CPU other jobs took from
# the proxy's core (its busy ticks in /proc/stat less the proxy's own CPU time).
ka_run() {
  local kind=$1 name=$2 mode=$3 round=$4 url b0 b1 t0 t1
  if [[ $mode == plain ]]; then url="http://${TARGET_PLAIN_ADDR[$name]}/"; else url="https://localhost:${TARGET_TLS_ADDR[$name]##*:}/"; fi
  b0=$(cores_busy_ticks "$PROXY_CPU"); t0=$(wall_ns)
  wrk_run "$kind" "$name@$mode" "$round" "$url" "${TARGET_PID[$name]}" || return 1
  t1=$(wall_ns); b1=$(cores_busy_ticks "$PROXY_CPU")
  # Over this window (a little longer than wrk's), less the proxy's CPU time in it (its CPU
  # µs/req × requests: it is idle outside wrk's run).
  LAST_OTHER0=$(tail -n 1 "$RUNS_TSV" | awk -F'\t' -v busy="$((b1 - b0))" -v tck="$CLK_TCK" -v wall="$(((t1 - t0) / 1000))" \
    -v one="$((PROXY_CPU == LOADGEN_CPU))" '{ printf "%.1f", 100 * (busy * 1e6 / tck - $7 * $12) / wall - (one ? $9 + $10 : 0) }')
  sed -i "\$ s/\$/\t-\t-\t$LAST_OTHER0/" "$RUNS_TSV"
}

# hs_run KIND NAME MODE ROUND: one tlsload run (full, resumed, full12, resumed12: TLS
# handshakes; tcp: the same exchange without TLS) through NAME; appends its line to
# $RUNS_TSV. Returns 1 when it gave no result, 3 when tlsload's verdict was a failure
# (too few resumed, ...: HS_VERDICT says it).
hs_run() {
  local kind=$1 name=$2 mode=$3 round=$4 out=$WORK/hs-$1-$2-$3-$4.txt args=() rc=0 secs=${WRK_DURATION:-$BENCH_DURATION}
  case $mode in
    full) args=(-mode full -tls 1.3) ;;
    resumed) args=(-mode resumed -tls 1.3) ;;
    full12) args=(-mode full -tls 1.2) ;;
    resumed12) args=(-mode resumed -tls 1.2) ;;
    tcp) args=(-mode tcp) ;;
  esac
  if [[ $mode == tcp ]]; then args+=(-addr "${TARGET_PLAIN_ADDR[$name]}"); else args+=(-addr "${TARGET_TLS_ADDR[$name]}"); fi
  (
    rc=0
    taskset -c "$LOADGEN_CPU" "$WORK/tlsload" "${args[@]}" -servername localhost -ca "$TLS_CERT" -host localhost \
      -c "$TLS_HS_CONNS" -d "${secs}s" -sources "$TLS_SOURCES" -body-bytes "$ORIGIN_BODY_BYTES" \
      -min-resumed "$TLS_MIN_RESUMED" -pid "${TARGET_PID[$name]}" -origin-pid "$ORIGIN_PID" \
      -cores "$(IFS=,; echo "${BENCH_CORES[*]}")" -clk-tck "$CLK_TCK" >"$out" 2>&1 || rc=$?
    exit "$rc"
  ) &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=""
  HS_VERDICT=$(awk '$1 == "result" && $2 == "verdict" { $1 = $2 = ""; sub(/^ +/, ""); print }' "$out")
  local line
  line=$(awk -v kind="$kind" -v key="$name@$mode" -v round="$round" -v max="$BENCH_OTHER_CPU_MAX" \
    -v pc="$PROXY_CPU" -v one="$((PROXY_CPU == LOADGEN_CPU))" '
    $1 == "result" { v[$2] = $3 }
    END {
      n = v["handshakes"] + 0; s = v["seconds"] + 0
      if (n <= 0 || s <= 0) exit 1
      p = v["proxy_cpu_s"]; o = v["origin_cpu_s"]; c = v["self_cpu_s"]
      other = 100 * (v["busy_cores_s"] - p - o - c) / s
      other0 = 100 * (v["busy_core" pc "_s"] - p - (one ? o + c : 0)) / s
      printf "%s\t%s\t%s\t%.0f\t%d\t%d\t%.2f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%.1f\t%s\t%s\t%.1f\t%.2f\t%.1f\n",
        kind, key, round, n / s, v["p50_us"], v["p99_us"], p * 1e6 / n, 100 * p / s, 100 * o / s, 100 * c / s,
        v["errors"], n, other, (other > max ? "yes" : "no"), (v["errors"] > 0 ? v["errors_by_stage"] : "-"),
        100 * v["resumed"] / n, v["tickets"] / n, other0
    }' "$out") || line=""
  if [[ -z $line ]]; then
    if ((rc == 3)); then return 3; fi
    warn "tlsload ($mode) against $name produced no result (exit $rc): $(tail -n 3 "$out" | tr '\n' ' ')"
    return 1
  fi
  # A run that failed its own check (too few resumed) is kept in the table, as kind "failed".
  if ((rc == 3)); then line="failed${line#"$kind"}"; fi
  printf '%s\n' "$line" >>"$RUNS_TSV"
  LAST_OTHER0=$(cut -f18 <<<"$line")
  awk -F'\t' '{ printf "    %-6s %-18s r%-2s %8s hs/s  p50 %6sus  p99 %6sus  %7s us/hs  proxy %5s%%  origin %5s%%  tlsload %5s%%  resumed %5s%%  tickets %s  other on proxy core %5s%%  errors %s\n",
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $16, $17, $18, $11 ($11 > 0 ? " (" $15 ")" : "") }' <<<"$line" >&2
  if ((rc == 3)); then return 3; fi
  return 0
}

# measure_one KIND NAME MODE ROUND: one run; a run during which other jobs took more than
# BENCH_OTHER_CPU_MAX % of the proxy's core is done once more while the retry budget lasts
# (both stay in the runs table). A target that dies or gives no result is dropped; a mode
# whose run failed its own check (resumed too rarely) is dropped for that target.
RETRY_LEFT=$BENCH_RETRY_BUDGET
measure_one() {
  local kind=$1 name=$2 mode=$3 round=$4 try rc secs=${WRK_DURATION:-$BENCH_DURATION}
  [[ -z ${MODE_FAILED[$name@$mode]:-} ]] || return 0
  for try in 1 2; do
    rc=0
    case $mode in
      keepalive | plain) ka_run "$kind" "$name" "$mode" "$round" || rc=$? ;;
      *) hs_run "$kind" "$name" "$mode" "$round" || rc=$? ;;
    esac
    if ((rc == 3)); then
      MODE_FAILED[$name@$mode]="$HS_VERDICT (round $round)"
      PROBLEMS+=("$name, $mode: not measured: $HS_VERDICT")
      [[ $name == gozer ]] || HARNESS_FAILED=1
      return 0
    fi
    if ((rc != 0)) || ! alive "${TARGET_PID[$name]}"; then
      alive "${TARGET_PID[$name]}" || tail -n 20 "${TARGET_LOG[$name]}" >&2 2>/dev/null || true
      target_failed "$name" "failed in $kind round $round, $mode (died or gave no result)"
      return 1
    fi
    if ((try == 1)) && [[ $kind == run ]] && ((RETRY_LEFT >= secs)) &&
      awk -v o="$LAST_OTHER0" -v max="$BENCH_OTHER_CPU_MAX" 'BEGIN { exit !(o > max) }'; then
      RETRY_LEFT=$((RETRY_LEFT - secs))
      log "  other jobs took ${LAST_OTHER0}% of the proxy's core during that run; running it again (${RETRY_LEFT}s of retry budget left)"
      continue
    fi
    return 0
  done
}

# wrk must speak TLS: one second against the first target before anything is measured.
first=${TARGETS[0]}
if ! taskset -c "$LOADGEN_CPU" wrk -t1 -c1 -d1s "https://localhost:${TARGET_TLS_ADDR[$first]##*:}/" >"$WORK/wrk-tls-check.txt" 2>&1 ||
  ! grep -q 'requests in' "$WORK/wrk-tls-check.txt" || grep -q 'Socket errors' "$WORK/wrk-tls-check.txt"; then
  die "wrk over https against $first failed: $(tr '\n' ' ' <"$WORK/wrk-tls-check.txt")"
fi
WRK_VERSION="$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }') with $(ldd "$(command -v wrk)" | awk '/libssl/ { print $1; exit }')"

log "warm-up: ${BENCH_WARMUP}s per target, keep-alive HTTPS and full handshakes"
for t in "${TARGETS[@]}"; do
  for m in keepalive full; do WRK_DURATION=$BENCH_WARMUP measure_one warm "$t" "$m" 0 || true; done
done
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
  for m in "${MODES[@]}"; do
    log "round $r/$BENCH_ROUNDS, $m: ${TARGETS[*]}"
    for t in "${TARGETS[@]}"; do measure_one run "$t" "$m" "$r" || true; done
  done
done

# Gozer's own count (GET /admin/tls) must cover what the clients saw: at least one handshake
# per TLS connection tlsload completed and per wrk connection, at least as many resumed ones
# as tlsload saw resume (a lower bound: checks, priming and reconnects add to it).
GOZER_COUNTERS=""
if [[ -n ${TARGET_PID[gozer]:-} ]] && alive "${TARGET_PID[gozer]}"; then
  tls_json=$(curl -s -m 2 "http://127.0.0.1:$GOZER_TLS_ADMIN_PORT/admin/tls" || true)
  jnum() { grep -o "\"$1\": *[0-9]*" <<<"$tls_json" | head -n 1 | grep -o '[0-9]*$' || true; }
  g_hs=$(jnum handshakes_total) g_res=$(jnum resumed_total) g_ref=$(jnum refused_too_many_handshakes_total)
  read -r c_hs c_res < <(awk -F'\t' -v conns="$BENCH_CONNS" '$2 ~ /^gozer@(full|resumed)/ { h += $12; if ($2 ~ /resumed/) r += $12 * $16 / 100 }
    $2 == "gozer@keepalive" { h += conns } END { printf "%d %d\n", h, r }' "$RUNS_TSV")
  g_fail=$(tr -d '\n ' <<<"$tls_json" | grep -o '"handshake_failures_by_reason":{[^}]*}' | sed 's/^"handshake_failures_by_reason"://; s/[{}"]//g' || true)
  if [[ -z $g_hs || -z $g_res ]]; then
    PROBLEMS+=("gozer: GET /admin/tls gave no handshake counters (${tls_json:0:120})")
  else
    GOZER_COUNTERS="GET /admin/tls after the runs: handshakes_total $g_hs (the clients completed at least $c_hs), resumed_total $g_res (tlsload saw $c_res resume), refused_too_many_handshakes_total ${g_ref:-?}, failures by reason: ${g_fail:-none}"
    if ((g_hs < c_hs || g_res < c_res)); then
      PROBLEMS+=("gozer: its counters are below what the clients saw: $GOZER_COUNTERS")
    fi
    log "  gozer $GOZER_COUNTERS"
  fi
fi

# --- idle connections --------------------------------------------------------------------

: >"$MEM_TSV"
# idle_one NAME KIND ROUND: NAME restarted fresh and warmed (1 s of keep-alive HTTPS), then
# its RSS before and with TLS_IDLE_CONNS idle connections of KIND (tls: a full TLS 1.3
# handshake and one request each; plain: one request each); appends
# "name kind round rss_before rss_with bytes_per_conn dropped" to $MEM_TSV.
idle_one() {
  local name=$1 kind=$2 round=$3 n=$TLS_IDLE_CONNS out=$WORK/idle-$1-$2-$3.txt rss0 rss1 ipid end dropped args=()
  stop_pid "${TARGET_PID[$name]}"
  if ! start_target "$name"; then
    # Its runs above stand; only this figure is missing.
    warn "$name: idle $kind memory not measured: did not start again: $START_FAIL_REASON"
    PROBLEMS+=("$name: idle $kind memory not measured: did not start again: $START_FAIL_REASON")
    [[ $name == gozer ]] || HARNESS_FAILED=1
    return 1
  fi
  WRK_DURATION=1 ka_run idlewarm "$name" keepalive "$round" || true
  if [[ $kind == tls ]]; then
    args=(-addr "${TARGET_TLS_ADDR[$name]}" -tls -tls-version 1.3 -servername localhost -ca "$TLS_CERT" -host localhost)
  else
    args=(-addr "${TARGET_PLAIN_ADDR[$name]}")
  fi
  sleep 0.5
  rss0=$(rss_kib "${TARGET_PID[$name]}")
  bg_start "$out" taskset -c "$LOADGEN_CPU" "$WORK/idleconns" "${args[@]}" -n "$n" -sources "$TLS_SOURCES" -hold 300s
  ipid=$BG_PID
  end=$((SECONDS + 180))
  while ! grep -qs '^ready ' "$out"; do
    if ! alive "$ipid" || ((SECONDS >= end)); then
      warn "idleconns ($kind) against $name did not get ready: $(tail -n 3 "$out" | tr '\n' ' ')"
      PROBLEMS+=("$name: idle $kind memory not measured: $(tail -n 1 "$out")")
      [[ $name == gozer ]] || HARNESS_FAILED=1
      stop_pid "$ipid"
      return 0
    fi
    sleep 0.1
  done
  sleep "$TLS_IDLE_SETTLE"
  rss1=$(rss_kib "${TARGET_PID[$name]}")
  kill -TERM "$ipid" 2>/dev/null || true
  end=$((SECONDS + 30))
  while alive "$ipid" && ((SECONDS < end)); do sleep 0.1; done
  stop_pid "$ipid"
  dropped=$(awk '/^closed / { print $3 }' "$out")
  [[ ${dropped:-0} -eq 0 ]] || warn "$name closed $dropped idle connections while they were held"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$round" "$rss0" "$rss1" "$(((rss1 - rss0) * 1024 / n))" "${dropped:-?}" >>"$MEM_TSV"
  log "  $name, $kind: RSS $rss0 KiB -> $rss1 KiB with $n idle connections: $(((rss1 - rss0) * 1024 / n)) B/conn"
  if ! alive "${TARGET_PID[$name]}"; then
    PROBLEMS+=("$name: died while holding $n idle $kind connections (its memory figure was read before)")
    [[ $name == gozer ]] || HARNESS_FAILED=1
  fi
}

if ((TLS_IDLE_CONNS > 0 && ${#IDLE_KINDS[@]})); then
  for ((r = 1; r <= TLS_IDLE_ROUNDS; r++)); do
    for k in "${IDLE_KINDS[@]}"; do
      log "idle $k connections, round $r/$TLS_IDLE_ROUNDS: $TLS_IDLE_CONNS per target (${TARGETS[*]}), each target restarted fresh"
      for t in "${TARGETS[@]}"; do idle_one "$t" "$k" "$r" || true; done
    done
  done
fi

# --- which runs count --------------------------------------------------------------------

# As compress.sh: a run is disturbed when other jobs took more than BENCH_OTHER_CPU_MAX % of
# the proxy's core (column 18). A figure is the median over the clean runs when there are
# at least NEED_RUNS of them (half the rounds, rounded up), else over the NEED_RUNS least
# disturbed runs.
NEED_RUNS=$(((BENCH_ROUNDS + 1) / 2))

# pick_by_other (bench/lib/common.sh) applies the rule above.

# key_stats KEY prints, for the measured runs of KEY (target@mode) that count (the rule
# above, as pick_by_other), "COL MEDIAN" for columns 4-13 and 16-18 ("-" when none has a
# value), "used COUNTED/ALL", and "errors SUM" over all its measured runs. One awk for all
# columns: the report reads a dozen figures for each of a few dozen keys.
key_stats() {
  awk -F'\t' -v k="$1" -v max="$BENCH_OTHER_CPU_MAX" -v need="$NEED_RUNS" '
    function med(c,   i, j, n, t, a) {
      n = 0
      for (i = 1; i <= nr; i++) if (use[i] && row[i, c] != "-" && row[i, c] != "") a[++n] = row[i, c] + 0
      if (!n) return "-"
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    $1 == "run" && $2 == k {
      nr++; for (c = 1; c <= NF; c++) row[nr, c] = $c
      o[nr] = $18 + 0; if (o[nr] <= max) clean++; errs += $11
    }
    END {
      if (clean >= need || clean == nr) {
        for (i = 1; i <= nr; i++) use[i] = (o[i] <= max)
      } else {
        for (i = 1; i <= nr; i++) idx[i] = i
        for (i = 1; i <= nr; i++) for (j = i + 1; j <= nr; j++) if (o[idx[j]] < o[idx[i]]) { t = idx[i]; idx[i] = idx[j]; idx[j] = t }
        for (i = 1; i <= need && i <= nr; i++) use[idx[i]] = 1
      }
      nu = 0; for (i = 1; i <= nr; i++) nu += use[i]
      printf "used %d/%d\nerrors %d\n", nu, nr, errs
      for (c = 4; c <= 18; c++) if (c != 14 && c != 15) print c, med(c)
    }' "$RUNS_TSV"
}

# round_pairs KEY BASE prints, per round both ran, "CPU(KEY) CPU(BASE) OTHER" for the least
# disturbed run of each in that round, OTHER being the more disturbed of the two.
round_pairs() {
  awk -F'\t' -v a="$1" -v b="$2" '$1 == "run" && ($2 == a || $2 == b) {
      r = $3; k = $2
      if (!((r, k) in o) || $18 + 0 < o[r, k]) { o[r, k] = $18 + 0; c[r, k] = $7 }
      rs[r] = 1 }
    END { for (r in rs) if ((r, a) in c && (r, b) in c) print c[r, a], c[r, b], (o[r, a] > o[r, b] ? o[r, a] : o[r, b]) }' "$RUNS_TSV"
}

# round_ratios KEY BASE prints, per round that counts, CPU(KEY) / CPU(BASE) within it: the
# two ran seconds apart, so slow drift of the machine cancels.
round_ratios() {
  [[ -z ${MODE_FAILED[$1]:-} && -z ${MODE_FAILED[$2]:-} ]] || return 0
  round_pairs "$1" "$2" | awk '$2 > 0 { printf "%.4f %s\n", $1 / $2, $3 }' | pick_by_other
}

# --- report ------------------------------------------------------------------------------

# div A B [FORMAT] prints A / B, or "-".
div() {
  awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN {
    if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else printf f, a / b }'
}
# spread VALUES: "median (min–max), n" of the lines read, or "-".
spread() {
  local v
  v=$(cat)
  if [[ -z $v ]]; then echo "-"; return; fi
  printf '%s (%s–%s), %s' "$(num %.2f "$(median <<<"$v")")" "$(num %.2f "$(sort -g <<<"$v" | head -n 1)")" \
    "$(num %.2f "$(sort -g <<<"$v" | tail -n 1)")" "$(grep -c . <<<"$v")"
}

declare -A CPU RPS P50 P99 BUSY ORIG LOADC OTHER OTHER0 ERRS RESPCT TICKETS USED
for t in "${ALL_TARGETS[@]}"; do
  for m in "${MODES[@]}"; do
    k="$t@$m"
    # Not measured: a mode that failed its own check, or a target that failed (died, gave no
    # result) during the runs; the runs before the failure do not count either.
    if [[ -n ${MODE_FAILED[$k]:-} || -n ${NOT_MEASURED[$t]:-} ]]; then
      CPU[$k]=- RPS[$k]=- P50[$k]=- P99[$k]=- BUSY[$k]=- ORIG[$k]=- LOADC[$k]=- OTHER[$k]=- OTHER0[$k]=- RESPCT[$k]=- TICKETS[$k]=- ERRS[$k]=- USED[$k]=-
      continue
    fi
    while read -r c v; do
      case $c in
        used) USED[$k]=$v ;;
        errors) ERRS[$k]=$v ;;
        4) RPS[$k]=$v ;;
        5) P50[$k]=$v ;;
        6) P99[$k]=$v ;;
        7) CPU[$k]=$v ;;
        8) BUSY[$k]=$v ;;
        9) ORIG[$k]=$v ;;
        10) LOADC[$k]=$v ;;
        13) OTHER[$k]=$v ;;
        16) RESPCT[$k]=$v ;;
        17) TICKETS[$k]=$v ;;
        18) OTHER0[$k]=$v ;;
      esac
    done < <(key_stats "$k")
  done
done
declare -A MEMB MEM0 MEM1 MEMDROP
if [[ -s $MEM_TSV ]]; then
  for t in "${ALL_TARGETS[@]}"; do
    for k in "${IDLE_KINDS[@]}"; do
      MEMB[$t@$k]=$(awk -F'\t' -v t="$t" -v k="$k" '$1 == t && $2 == k { print $6 }' "$MEM_TSV" | median)
      MEM0[$t@$k]=$(awk -F'\t' -v t="$t" -v k="$k" '$1 == t && $2 == k { print $4 }' "$MEM_TSV" | median)
      MEM1[$t@$k]=$(awk -F'\t' -v t="$t" -v k="$k" '$1 == t && $2 == k { print $5 }' "$MEM_TSV" | median)
      MEMDROP[$t@$k]=$(awk -F'\t' -v t="$t" -v k="$k" '$1 == t && $2 == k { s += $7 } END { print s + 0 }' "$MEM_TSV")
    done
  done
fi

# has_mode MODE: was MODE run?
has_mode() { [[ " ${MODES[*]} " == *" $1 "* ]]; }

# verdict A B OP LIMIT: both estimates A (of the medians) and B (within rounds) against
# LIMIT with OP (le: ≤, ge: ≥); "met" when both are, "NOT met" when neither, else borderline.
verdict() {
  awk -v p="$1" -v q="$2" -v op="$3" -v lim="$4" 'BEGIN {
    if (p == "-" || p == "") { print "-"; exit }
    if (q == "-" || q == "") q = p
    okp = (op == "le" ? p <= lim : p >= lim); okq = (op == "le" ? q <= lim : q >= lim)
    if (okp && okq) print "met"; else if (!okp && !okq) print "**NOT met**"; else print "borderline (the two estimates straddle " lim ")" }'
}

# per_core CPU_US: handshakes per proxy CPU-second.
per_core() { div 1000000 "$1" %.0f; }

mode_title() {
  case $1 in
    keepalive) echo "keep-alive HTTPS (TLS 1.3)" ;;
    plain) echo "keep-alive plain HTTP (reference)" ;;
    full) echo "full handshakes, TLS 1.3, X25519" ;;
    resumed) echo "resumed handshakes, TLS 1.3 (PSK + X25519)" ;;
    full12) echo "full handshakes, TLS 1.2, ECDHE-ECDSA-AES128-GCM-SHA256, X25519" ;;
    resumed12) echo "resumed handshakes, TLS 1.2 (session ticket)" ;;
    tcp) echo "new connection + request without TLS (reference)" ;;
  esac
}

# tls_only MODE VALUE: VALUE, or "-" for the tcp mode (no TLS: no resumption, no tickets).
tls_only() {
  if [[ $1 == tcp ]]; then echo -; else echo "$2"; fi
}

# status_of NAME@MODE: why a row has no figures.
status_of() {
  local t=${1%@*}
  if [[ -n ${NOT_MEASURED[$t]:-} ]]; then echo "not measured: ${NOT_MEASURED[$t]}"; return; fi
  if [[ -n ${MODE_FAILED[$1]:-} ]]; then echo "not measured: ${MODE_FAILED[$1]}"; return; fi
  echo "no runs"
}

report() {
  local t m k n base rr v
  printf '# TLS termination: Gozer vs nginx and HAProxy, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  # shellcheck disable=SC2016 # the backticks are Markdown
  printf 'Command: `%s`\n\n' "$COMMAND"
  printf 'Machine: %s cores, %s, kernel %s, %s; load average when the bench started: %s\n\n' "$NPROC" \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(uname -r)" \
    "$(. /etc/os-release && echo "$PRETTY_NAME")" "$LOADAVG_START"
  # shellcheck disable=SC2016 # the backticks are Markdown
  printf 'Setup: each proxy pinned to core %s with one worker / thread / event loop, terminating TLS and forwarding over plain HTTP with upstream keep-alive to the origin (nginx, one worker, %s-byte body), which runs on core %s with the load generators: wrk %s (`wrk -t%s -c%s -d%ss --latency https://localhost:PORT/`) and bench/tlsload (Go %s crypto/tls, %s workers, closed loop). The harness itself (curl, awk, the /proc readings) runs on core %s too. Access logs off everywhere. ' \
    "$PROXY_CPU" "$ORIGIN_BODY_BYTES" "$LOADGEN_CPU" "$WRK_VERSION" "$BENCH_THREADS" "$BENCH_CONNS" "$BENCH_DURATION" \
    "$(go version | awk '{ print $3 }')" "$TLS_HS_CONNS" "$LOADGEN_CPU"
  printf 'A %ss warm-up per target (keep-alive HTTPS, full handshakes), then %s interleaved rounds (per round, per mode: %s); figures are medians over rounds. ' \
    "$BENCH_WARMUP" "$BENCH_ROUNDS" "${ALL_TARGETS[*]}"
  # shellcheck disable=SC2016 # the backticks are Markdown
  printf 'Keep-alive: CPU µs/req = the proxy'"'"'s utime+stime (all its processes, /proc/PID/stat, %s ticks/s) during the wrk run / requests completed (the 64 connections'"'"' handshakes at the start are in it: < 0.1%%). Handshakes: each tlsload connection is connect + handshake + one GET with Connection: close + the server'"'"'s close; CPU µs per handshake = the proxy'"'"'s CPU time (all its threads, /proc/PID/task/*/schedstat, ns) from when the clock starts (after priming) to when the last connection has ended / connections completed, so the TCP connection and the one proxied request are in it (the `tcp` row is that alone, without TLS); **per core** = handshakes per proxy CPU-second = 10⁶ / CPU µs per handshake: what one core could do if the proxy had it to itself, whatever the load side could offer. TLS 1.3 with X25519 only (the client offers nothing else), no ALPN (HTTP/1.1), the client verifying the certificate against the bench'"'"'s for the name localhost; resumed = a PSK from the worker'"'"'s newest session ticket, with an X25519 exchange (psk_dhe_ke, what Go'"'"'s client offers), no certificate and no signature.\n\n' "$CLK_TCK"
  printf 'Certificate (one, made by the script with openssl, used by all three): %s.\n\n' "$CERT_DESC"
  printf 'Targets:\n'
  for t in "${ALL_TARGETS[@]}"; do
    if [[ -n ${TARGET_DESC[$t]:-} ]]; then
      printf -- '- %s — %s; TLS: %s\n' "$t" "${TARGET_DESC[$t]}" "${TARGET_TLS_DESC[$t]}"
    fi
    if [[ -n ${NOT_MEASURED[$t]:-} ]]; then printf -- '- **%s: not measured**: %s\n' "$t" "${NOT_MEASURED[$t]}"; fi
  done
  for t in "${PROBLEMS[@]}"; do printf -- '- **PROBLEM** %s\n' "$t"; done
  printf '\nChecks (before the runs: each target must serve HTTPS with the bench'"'"'s certificate):\n'
  for t in "${ALL_TARGETS[@]}"; do
    if [[ -n ${CHECK_NOTE[$t]:-} ]]; then printf -- '- %s: %s\n' "$t" "${CHECK_NOTE[$t]}"; fi
  done
  if [[ -n $GOZER_COUNTERS ]]; then printf -- '- gozer, %s\n' "$GOZER_COUNTERS"; fi

  # The issue's targets, Gozer against nginx.
  printf '\n## The issue'"'"'s targets: gozer / nginx\n\n'
  if [[ -n ${NOT_MEASURED[gozer]:-} || " ${ALL_TARGETS[*]} " != *" gozer "* ]]; then
    printf '**Gozer not measured: %s.** The other targets are measured below.\n\n' "${NOT_MEASURED[gozer]:-not in TLS_TARGETS}"
  fi
  printf '| measure | gozer | nginx | haproxy | **gozer / nginx** | the same within rounds: median (min–max), rounds | haproxy / nginx | issue target | verdict |\n'
  printf '|---|---:|---:|---:|---:|---:|---:|---|---|\n'
  if has_mode keepalive; then
    k=keepalive
    rr=$(round_ratios "gozer@$k" "nginx@$k")
    v=$(verdict "$(div "${CPU[gozer@$k]:--}" "${CPU[nginx@$k]:--}")" "$(num %.2f "$(median <<<"$rr")")" le 1.00)
    printf '| keep-alive HTTPS: CPU µs per request | %s | %s | %s | **%s** | %s | %s | ≤ 1.00 | %s |\n' \
      "$(num %.2f "${CPU[gozer@$k]:--}")" "$(num %.2f "${CPU[nginx@$k]:--}")" "$(num %.2f "${CPU[haproxy@$k]:--}")" \
      "$(div "${CPU[gozer@$k]:--}" "${CPU[nginx@$k]:--}")" "$(spread <<<"$rr")" "$(div "${CPU[haproxy@$k]:--}" "${CPU[nginx@$k]:--}")" "$v"
  fi
  for m in full resumed full12 resumed12; do
    has_mode "$m" || continue
    local lim=0.90
    [[ $m == resumed* ]] && lim=1.00
    # per core ratio = nginx's CPU per handshake / gozer's
    rr=$(round_ratios "nginx@$m" "gozer@$m")
    v=$(verdict "$(div "${CPU[nginx@$m]:--}" "${CPU[gozer@$m]:--}")" "$(num %.2f "$(median <<<"$rr")")" ge "$lim")
    [[ $m == *12 ]] && v="$v (TLS 1.2: no issue target; shown against $lim)"
    printf '| %s: per core (handshakes per proxy CPU-second) | %s | %s | %s | **%s** | %s | %s | ≥ %s | %s |\n' \
      "$(mode_title "$m")" "$(per_core "${CPU[gozer@$m]:--}")" "$(per_core "${CPU[nginx@$m]:--}")" "$(per_core "${CPU[haproxy@$m]:--}")" \
      "$(div "${CPU[nginx@$m]:--}" "${CPU[gozer@$m]:--}")" "$(spread <<<"$rr")" "$(div "${CPU[nginx@$m]:--}" "${CPU[haproxy@$m]:--}")" "$lim" "$v"
  done
  if [[ -n ${MEMB[nginx@tls]:-} ]]; then
    v=$(verdict "$(div "${MEMB[gozer@tls]:--}" "${MEMB[nginx@tls]:--}")" "" le 2.00)
    printf '| idle TLS connection: bytes of RSS each (%s connections) | %s | %s | %s | **%s** | - | %s | ≤ 2.00 | %s |\n' "$TLS_IDLE_CONNS" \
      "${MEMB[gozer@tls]:--}" "${MEMB[nginx@tls]:--}" "${MEMB[haproxy@tls]:--}" \
      "$(div "${MEMB[gozer@tls]:--}" "${MEMB[nginx@tls]:--}")" "$(div "${MEMB[haproxy@tls]:--}" "${MEMB[nginx@tls]:--}")" "$v"
  fi
  printf '\n"within rounds": the ratio taken in each round (the runs of a round are seconds apart, so slow drift of the machine cancels), median and spread over the rounds that count; the verdict is "met" when both estimates are, "NOT met" when neither, else borderline. Per core, higher is better: gozer / nginx = nginx'"'"'s CPU per handshake / Gozer'"'"'s.\n'
  if ((TLS_IDLE_CONNS != TLS_IDLE_CONNS_ASKED)); then
    printf '\n**Idle connections: %s asked, %s measured**: the open-file limit is %s per process (each side needs one descriptor per connection).\n' \
      "$TLS_IDLE_CONNS_ASKED" "$TLS_IDLE_CONNS" "$NOFILE"
  fi

  if has_mode keepalive || has_mode plain; then
    printf '\n## (a) Keep-alive requests (wrk -t%s -c%s, GET of the origin'"'"'s %s bytes), median of %s rounds\n\n' "$BENCH_THREADS" "$BENCH_CONNS" "$ORIGIN_BODY_BYTES" "$BENCH_ROUNDS"
    printf '| mode | target | runs used | req/s | p50 µs | p99 µs | **CPU µs/req** | proxy core busy | errors | req/s vs nginx | CPU/req vs nginx |\n'
    printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
    for m in keepalive plain; do
      has_mode "$m" || continue
      for t in "${ALL_TARGETS[@]}"; do
        k="$t@$m"
        if [[ ${CPU[$k]} == - ]]; then printf '| %s | %s | %s | | | | | | | | |\n' "$m" "$t" "$(status_of "$k")"; continue; fi
        printf '| %s | %s | %s | %s | %s | %s | **%s** | %s%% | %s | %s | %s |\n' "$m" "$t" "${USED[$k]}" "$(num %.0f "${RPS[$k]}")" \
          "$(num %.0f "${P50[$k]}")" "$(num %.0f "${P99[$k]}")" "$(num %.2f "${CPU[$k]}")" "$(num %.1f "${BUSY[$k]}")" "${ERRS[$k]}" \
          "$(div "${RPS[$k]}" "${RPS[nginx@$m]:--}")" "$(div "${CPU[$k]}" "${CPU[nginx@$m]:--}")"
      done
    done
    if has_mode keepalive && has_mode plain; then
      printf '\nWhat TLS adds per keep-alive request (CPU µs/req HTTPS − plain HTTP, same process): '
      for t in "${ALL_TARGETS[@]}"; do
        printf '%s %s; ' "$t" "$(awk -v a="${CPU[$t@keepalive]}" -v b="${CPU[$t@plain]}" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%+.2f", a - b }')"
      done
      printf '\n'
    fi
  fi

  local hs=()
  for m in full resumed full12 resumed12 tcp; do has_mode "$m" && hs+=("$m"); done
  if ((${#hs[@]})); then
    printf '\n## (b) New connections: handshakes (tlsload, %s workers), median of %s rounds\n\n' "$TLS_HS_CONNS" "$BENCH_ROUNDS"
    printf '| mode | target | runs used | connections/s | p50 µs | p99 µs | **CPU µs per connection** | **per core** (connections per proxy CPU-second) | per core vs nginx | resumed | tickets received per connection | proxy core busy | tlsload CPU (core %s) | origin CPU | errors |\n' "$LOADGEN_CPU"
    printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
    for m in "${hs[@]}"; do
      for t in "${ALL_TARGETS[@]}"; do
        k="$t@$m"
        if [[ ${CPU[$k]} == - ]]; then printf '| %s | %s | %s | | | | | | | | | | | | |\n' "$(mode_title "$m")" "$t" "$(status_of "$k")"; continue; fi
        printf '| %s | %s | %s | %s | %s | %s | **%s** | **%s** | %s | %s | %s | %s%% | %s%% | %s%% | %s |\n' "$(mode_title "$m")" "$t" "${USED[$k]}" \
          "$(num %.0f "${RPS[$k]}")" "$(num %.0f "${P50[$k]}")" "$(num %.0f "${P99[$k]}")" "$(num %.1f "${CPU[$k]}")" \
          "$(per_core "${CPU[$k]}")" "$(div "${CPU[nginx@$m]:--}" "${CPU[$k]}")" \
          "$(tls_only "$m" "$(num %.1f "${RESPCT[$k]}")%")" "$(tls_only "$m" "$(num %.2f "${TICKETS[$k]}")")" \
          "$(num %.1f "${BUSY[$k]}")" "$(num %.1f "${LOADC[$k]}")" "$(num %.1f "${ORIG[$k]}")" "${ERRS[$k]}"
      done
    done
    printf '\nLatency = connect to the last byte of the response, as the client saw it (the load core is shared with the origin: compare, do not quote). "tickets received": session tickets the client got per connection (OpenSSL sends 2 after a full TLS 1.3 handshake by default and 1 after a resumed one, Go 1): each costs the server an encryption.'
    if has_mode tcp; then
      # shellcheck disable=SC2016 # the backticks are Markdown
      printf '\n\n**The handshake'"'"'s own cost** (CPU µs per connection less the `tcp` row of the same target: connection and request taken out):\n\n'
      printf '| mode | target | CPU µs per handshake, alone | handshakes per proxy CPU-second, alone | vs nginx |\n|---|---|---:|---:|---:|\n'
      for m in "${hs[@]}"; do
        [[ $m == tcp ]] && continue
        for t in "${ALL_TARGETS[@]}"; do
          local d dn
          d=$(awk -v a="${CPU[$t@$m]}" -v b="${CPU[$t@tcp]}" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.1f", a - b }')
          dn=$(awk -v a="${CPU[nginx@$m]:--}" -v b="${CPU[nginx@tcp]:--}" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.1f", a - b }')
          printf '| %s | %s | %s | %s | %s |\n' "$m" "$t" "$d" "$(per_core "$d")" "$(div "$dn" "$d")"
        done
      done
    fi
    printf '\n'
  fi

  if [[ -s $MEM_TSV ]]; then
    printf '\n## (c) Memory of %s idle connections (RSS, all processes of the target), median of %s measurement(s)\n\n' "$TLS_IDLE_CONNS" "$TLS_IDLE_ROUNDS"
    printf 'Each target restarted fresh and warmed (1 s of keep-alive HTTPS), then its RSS before and %ss after all %s connections were open (bench/idleconns from core %s; tls: a full TLS 1.3 handshake, X25519, and one GET each; plain: one GET each, on the plain port), less before, per connection. Kernel socket memory is not in RSS.\n\n' \
      "$TLS_IDLE_SETTLE" "$TLS_IDLE_CONNS" "$LOADGEN_CPU"
    printf '| target | kind | RSS before (KiB) | RSS with the connections (KiB) | **bytes per connection** | vs nginx | closed by the server while held |\n|---|---|---:|---:|---:|---:|---:|\n'
    for k in "${IDLE_KINDS[@]}"; do
      for t in "${ALL_TARGETS[@]}"; do
        if [[ ${MEMB[$t@$k]:--} == - ]]; then printf '| %s | %s | not measured | | | | |\n' "$t" "$k"; continue; fi
        printf '| %s | %s | %s | %s | **%s** | %s | %s |\n' "$t" "$k" "${MEM0[$t@$k]}" "${MEM1[$t@$k]}" "${MEMB[$t@$k]}" \
          "$(div "${MEMB[$t@$k]}" "${MEMB[nginx@$k]:--}")" "${MEMDROP[$t@$k]}"
      done
    done
    if [[ " ${IDLE_KINDS[*]} " == *" tls "* && " ${IDLE_KINDS[*]} " == *" plain "* ]]; then
      printf '\nWhat TLS adds per idle connection (tls − plain): '
      for t in "${ALL_TARGETS[@]}"; do
        printf '%s %s bytes; ' "$t" "$(awk -v a="${MEMB[$t@tls]:--}" -v b="${MEMB[$t@plain]:--}" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%+d", a - b }')"
      done
      printf '\n'
    fi
  fi

  printf '\n## Load side and other load, median per target and mode\n\n'
  printf '| mode | target | proxy core %s busy | load generator CPU (core %s) | origin CPU (core %s) | other jobs, proxy core | other jobs, both cores | limited by |\n' "$PROXY_CPU" "$LOADGEN_CPU" "$LOADGEN_CPU"
  printf '|---|---|---:|---:|---:|---:|---:|---|\n'
  for m in "${MODES[@]}"; do
    for t in "${ALL_TARGETS[@]}"; do
      k="$t@$m"
      [[ ${CPU[$k]} == - ]] && continue
      printf '| %s | %s | %s%% | %s%% | %s%% | %s%% | %s%% | %s |\n' "$m" "$t" "$(num %.1f "${BUSY[$k]}")" "$(num %.1f "${LOADC[$k]}")" \
        "$(num %.1f "${ORIG[$k]}")" "$(num %.1f "${OTHER0[$k]}")" "$(num %.1f "${OTHER[$k]}")" \
        "$(awk -v p="${BUSY[$k]}" -v l="$(awk -v a="${LOADC[$k]}" -v b="${ORIG[$k]}" 'BEGIN { print a + b }')" 'BEGIN {
          if (p >= 95) print "the proxy (its core is saturated)"; else if (l >= 90) print "the load side (its core is saturated): compare CPU per request / per connection, not rates"; else print "neither core saturated" }')"
    done
  done
  printf '\nA full handshake costs the client about as much as the server (an ECDSA verification and an X25519 exchange against a signature and an exchange), so tlsload on one core cannot saturate the proxy'"'"'s core: the rates are the load side'"'"'s, the CPU per connection and per core figures are the proxy'"'"'s.\n'

  printf '\n## Every run\n\n'
  printf '| kind | target@mode | round | req/s or conn/s | p50 µs | p99 µs | CPU µs/req or /conn | proxy core | origin | load gen | other jobs, proxy core | disturbed | other jobs, both cores | errors | requests / connections | resumed %% | tickets/conn |\n'
  printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n'
  awk -F'\t' -v max="$BENCH_OTHER_CPU_MAX" 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s%% | %s%% | %s%% | %s%% | %s | %s%% | %s | %s | %s | %s |\n",
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $18, ($18 + 0 > max ? "yes" : "no"), $13, $11 ($11 > 0 ? " (" $15 ")" : ""), $12, $16, $17 }' "$RUNS_TSV"
  printf '\n"other jobs, proxy core": CPU time other jobs took from core %s during the run (its busy time in /proc/stat less the proxy'"'"'s), in %% of that core; above %s%% a run is disturbed. Each figure is the median over the clean runs when there are at least %s of them, else over the %s least disturbed runs ("runs used"); a redone run keeps its round number. Kinds: warm (not counted), run, failed (a run that failed its own check, e.g. too few resumed: that target and mode are not measured), idlewarm (before an idle-memory measurement, not counted).\n' \
    "$PROXY_CPU" "$BENCH_OTHER_CPU_MAX" "$NEED_RUNS" "$NEED_RUNS"
  printf '\nHarness runtime: %ss.\n' "$SECONDS"
}

mkdir -p "$RESULTS_DIR"
report >"$WORK/report.md"
stamp=$(date -u +%Y%m%d-%H%M%S)
cp "$WORK/report.md" "$RESULTS_DIR/tls-latest.txt"
cp "$WORK/report.md" "$RESULTS_DIR/tls-$stamp.txt"
cp "$RUNS_TSV" "$RESULTS_DIR/tls-latest-runs.tsv"
echo
cat "$WORK/report.md"
echo
log "written to bench/results/tls-latest.txt"

stop_all_started
check_ports_released "${BENCH_PORTS[@]}"
if ((HARNESS_FAILED)); then
  log "FAILED: ${PROBLEMS[*]}"
  exit 1
fi
if [[ -n $GOZER_PROBLEM && $BENCH_STRICT == 1 ]]; then
  log "BENCH_STRICT=1 and Gozer was not measured: $GOZER_PROBLEM"
  exit 1
fi
exit 0
