#!/usr/bin/env bash
# TLS handshake floods at full scale (listeners.https.max_handshakes and
# evict_handshakes_after), from many addresses, while ordinary clients make full TLS
# handshakes: what the ordinary clients get, against the same clients with no flood.
# Three attacks, from bench/slowclients:
#   silent     connections that send nothing
#   halfhello  connections that send a ClientHello's 5-byte record header and stall
#              (both take no handshake slot: a slot is taken once the client's ClientHello
#              is all in; they cost memory until handshake_timeout)
#   hello      connections that send a whole ClientHello and stall: each holds a slot (its
#              handshake goroutine); run with eviction off (evict_handshakes_after 0s) and
#              on (1s, the default)
# TestTLSMaxHandshakes, TestTLSHandshakeEviction and TestTLSHandshakeEvictionBusyAddress are
# the same attacks at CI's scale.
#
#   bash bench/tlsflood.sh                          (~1.5 minutes)
#   TLSF_DURATION=4 bash bench/tlsflood.sh          (shorter phases)
#
# Gozer (built from the tree) pinned to core 0 with one event loop, its HTTPS listener on a
# self-signed ECDSA P-256 certificate (openssl), max_handshakes TLSF_MAX (1024),
# handshake_timeout 10s, server.max_connections_per_ip 0; gateway/cmd/demo-origin behind
# it on core 1. Per phase a fresh Gozer; for a flood phase, the attacker keeps TLSF_FLOOD
# (2048) connections open from TLSF_SOURCES addresses 127.0.1.1.. (each under
# server.max_requests_per_ip, as a botnet's would be), replacing each one Gozer closes, and
# the phase waits until /admin/tls shows the flood in place (every slot taken, or
# TLSF_MAX connections awaiting their hello). The ordinary clients are bench/tlsload
# -mode full (TLS 1.3, one GET per connection, the certificate verified, 2 s timeout)
# with TLSF_CLIENTS workers for TLSF_DURATION seconds, on core 1 with the attacker.
# Reported per phase: handshakes completed per second, failed connections, and Gozer's
# /admin/tls counters at the end (in progress, awaiting hello, refused, evicted: all, and those
# evicted for their address's share; timed out); and per flood phase Gozer's RSS before the
# flood and 2 s after it is in place, over the flood connections it holds then (approximate:
# RSS, with the GC's headroom, and connections refused and re-dialled meanwhile).
#
# Knobs: TLSF_MAX (1024), TLSF_FLOOD (2048), TLSF_SOURCES (32), TLSF_CLIENTS (8),
# TLSF_DURATION (10), TLSF_PORT_BASE (18780: origin, Gozer plain, HTTPS, admin).
set -euo pipefail
cd "$(dirname "$0")/.."
MAX=${TLSF_MAX:-1024}
FLOOD=${TLSF_FLOOD:-2048}
SOURCES=${TLSF_SOURCES:-32}
CLIENTS=${TLSF_CLIENTS:-8}
DUR=${TLSF_DURATION:-10}
BASE=${TLSF_PORT_BASE:-18780}
ORIGIN=127.0.0.1:$BASE PROXY=127.0.0.1:$((BASE + 1)) HTTPS=127.0.0.1:$((BASE + 2)) ADMIN=127.0.0.1:$((BASE + 3))
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
for c in openssl taskset curl; do command -v "$c" >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl util-linux curl; }; done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
go build -o "$WORK/" ./gateway/cmd/gozer ./gateway/cmd/demo-origin ./bench/tlsload ./bench/slowclients
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/key.pem" 2>/dev/null
openssl req -x509 -new -key "$WORK/key.pem" -sha256 -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -out "$WORK/cert.pem" 2>/dev/null
taskset -c 1 "$WORK/demo-origin" -addr "$ORIGIN" >/dev/null 2>&1 & pids+=($!)

gozer= # start_gozer EVICT: a fresh Gozer with evict_handshakes_after EVICT
start_gozer() {
  cat >"$WORK/gozer.yaml" <<YAML
listeners:
  proxy: {addr: "$PROXY"}
  admin: {addr: "$ADMIN"}
  https:
    addr: "$HTTPS"
    certificates: [{cert: "$WORK/cert.pem", key: "$WORK/key.pem"}]
    handshake_timeout: 10s
    max_handshakes: $MAX
    evict_handshakes_after: $1
server: {event_loops: 1, max_connections_per_ip: 0}
log: {level: warn, access_log: "off"}
filters: {dir: "$WORK/scripts"}
origins:
  demo: {servers: ["$ORIGIN"]}
routes:
  - {path_prefix: /, origin: demo}
YAML
  GOZER_PUSH_SECRET=bench-secret-0123456789 taskset -c 0 "$WORK/gozer" -config "$WORK/gozer.yaml" >"$WORK/gozer.log" 2>&1 &
  gozer=$!; pids+=("$gozer")
  for _ in $(seq 100); do curl -sf "http://$ADMIN/admin/tls" >/dev/null && return; sleep 0.1; done
  echo "tlsflood.sh: gozer did not start"; cat "$WORK/gozer.log"; exit 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; } # KiB
stat() { curl -sf "http://$ADMIN/admin/tls" | python3 -c "import json,sys; h=json.load(sys.stdin)['handshakes']; print(h['$1'] if '$1' in h else h['handshake_failures_by_reason'].get('${1#f:}', 0))"; }

rows=() mem=()
phase() { # NAME EVICT ATTACK (none, silent, halfhello)
  start_gozer "$2"
  local atk= rss0
  rss0=$(rss "$gozer")
  if [[ $3 != none ]]; then
    taskset -c 1 "$WORK/slowclients" -mode "$3" -target "$HTTPS" -n "$FLOOD" -src "127.0.1.1-127.0.1.$SOURCES" \
      -rate 2000 >"$WORK/attack.json" 2>"$WORK/attack.log" & atk=$!; pids+=("$atk")
    local ok= key=handshakes_in_progress
    [[ $3 == hello ]] || key=connections_awaiting_hello
    for _ in $(seq 300); do [[ $(stat $key) -ge $MAX ]] && { ok=1; break; }; sleep 0.1; done
    [[ -n $ok ]] || { echo "tlsflood.sh: the $3 flood never got in place ($key $(stat $key), want $MAX)"; tail -3 "$WORK/attack.log"; exit 1; }
    # Gozer's memory per flood connection: its RSS once the flood is in place (all of it
    # open), less what it had before, over the connections it holds.
    sleep 2
    local held=$(($(stat connections_awaiting_hello) + $(stat handshakes_in_progress))) rss1
    rss1=$(rss "$gozer")
    mem+=("$(printf '%-30s RSS %6d -> %6d KiB with %4d flood connections held: %5.1f KiB each' "$1" "$rss0" "$rss1" "$held" \
      "$(awk -v a="$rss0" -v b="$rss1" -v n="$held" 'BEGIN { print (b - a) / n }')")")
  fi
  local out
  out=$(taskset -c 1 "$WORK/tlsload" -mode full -addr "$HTTPS" -servername localhost -ca "$WORK/cert.pem" \
    -c "$CLIENTS" -d "${DUR}s" -timeout 2s -sources 10 2>&1 || true) # exit 3: nothing got through
  r() { awk -v k="$1" '$1 == "result" && $2 == k { $1 = $2 = ""; sub(/^ +/, ""); print; exit }' <<<"$out"; }
  rows+=("$(printf '%-30s %9s %8s %9s %9s %9s %9s %9s %9s' "$1" "$(r rate)" "$(r errors)" "$(stat handshakes_in_progress)" \
    "$(stat connections_awaiting_hello)" "$(stat refused_too_many_handshakes_total)" "$(stat evicted_handshakes_total)" \
    "$(stat evicted_from_busy_addresses_total)" "$(stat f:timeout)")")
  echo "$1: $(r handshakes) handshakes, $(r errors) errors ($(r errors_by_stage)), first error: $(r first_error)" >&2
  [[ -n $atk ]] && stop "$atk"
  stop "$gozer"
}
phase "no flood" 1s none
phase "silent flood" 1s silent
phase "halfhello flood" 1s halfhello
phase "hello flood, eviction off" 0s hello
phase "hello flood, eviction 1s" 1s hello
echo "tlsflood.sh: floods of $FLOOD connections from $SOURCES addresses against max_handshakes $MAX (handshake_timeout 10s); $CLIENTS tlsload workers, full TLS 1.3 handshakes, ${DUR}s per phase"
printf '%-30s %9s %8s %9s %9s %9s %9s %9s %9s\n' phase "hs/s" errors "in prog." awaiting refused evicted "for share" "timed out"
printf '%s\n' "${rows[@]}"
printf '%s\n' "${mem[@]}"
