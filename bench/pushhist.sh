#!/usr/bin/env bash
# Push history bench (`make bench-push` runs it after bench/push.sh): recovery of many
# devices reconnecting at once to another node, and the push API's CPU per message with
# the history on and off. See bench/pushhist/main.go for what each figure means.
#
#   bash bench/pushhist.sh                                  (10,000 devices; about a minute)
#   HIST_N=300 HIST_CONNS=100 HIST_MSGS=3000 bash bench/pushhist.sh   (a smoke run, seconds)
#
# Knobs (environment):
#   HIST_N=10000        recovery: devices (each 2 sockets on this machine: mind ulimit -n)
#   HIST_MISSED=10      recovery: messages each device misses
#   HIST_CONNS=1000     throughput: connected devices
#   HIST_MSGS=50000     throughput: messages per mode (4 modes)
#   HIST_SENDERS=64     push API requests in flight
#   HIST_PHASES=recovery,throughput
#   HIST_TARGETS="gozer gozer-sse nchan nchan-redis"  recovery: gozer (websocket devices, single
#                       node then two nodes), gozer-sse (the same with EventSource devices), nchan (nginx + nchan,
#                       single node), nchan-redis (two nginx sharing their channels in Redis)
#
# Needs redis-server (`make deps`). Results: stdout and bench/results/pushhist-latest.txt.
# Exit status non-zero when a device lost, duplicated or reordered a message.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
command -v redis-server >/dev/null || { echo "redis-server is missing: make deps" >&2; exit 2; }
if [[ " ${HIST_TARGETS:-gozer gozer-sse nchan nchan-redis} " == *" nchan"* ]]; then
  command -v nginx >/dev/null && [[ -e ${NGINX_MODULES_DIR:-/usr/lib/nginx/modules}/ngx_nchan_module.so ]] ||
    { echo "nginx + nchan are missing (apt-get install nginx libnginx-mod-nchan), or set HIST_TARGETS=gozer" >&2; exit 2; }
fi
go build -o "$WORK/gozer" ./gateway/cmd/gozer
go build -o "$WORK/pushhist" ./bench/pushhist
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p bench/results
out=bench/results/pushhist-latest.txt
{
  echo "# bash bench/pushhist.sh on $(date -u +%FT%TZ), $(nproc) cores, $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
  "$WORK/pushhist" -gozer "$WORK/gozer" -repo . -nchan-modules "${NGINX_MODULES_DIR:-/usr/lib/nginx/modules}" \
    -n "${HIST_N:-10000}" -missed "${HIST_MISSED:-10}" -conns "${HIST_CONNS:-1000}" \
    -msgs "${HIST_MSGS:-50000}" -senders "${HIST_SENDERS:-64}" -phases "${HIST_PHASES:-recovery,throughput}" \
    -targets "${HIST_TARGETS:-gozer gozer-sse nchan nchan-redis}"
} 2>&1 | tee "$out"
exit "${PIPESTATUS[0]}"
