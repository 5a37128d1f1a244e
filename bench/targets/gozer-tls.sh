# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by tls.sh
# Gozer terminating TLS: the gozer target's config (gozer.sh: event_loops 1, access log
# off, per-IP caps 0, no Lua filters, the same origin settings), whose plain listener
# stays (readiness, and tls.sh's no-TLS reference runs), plus listeners.https with the
# bench's certificate (tls.sh: TLS_CERT, TLS_KEY):
#
#   https:
#     addr: "127.0.0.1:$GOZER_TLS_PORT"
#     certificates:
#       - { cert: "$TLS_CERT", key: "$TLS_KEY" }
#     session_tickets: true
#
# and Gozer's defaults for the rest (min_version "1.2": TLS 1.2 and 1.3). gozer_start
# writes the config and starts Gozer in one go, with no hook for another listener, so it
# starts a small wrapper instead of the binary: the wrapper adds the https block under
# "listeners:" of the file it is given and execs Gozer (same pid, same pinning). The
# config on disk ($WORK/gozer-tls-run/gozer.yaml) is the one Gozer ran with.
# Go's crypto/tls chooses the suite itself (AES-128-GCM first on AES hardware) and sends
# one ticket per handshake. For bench/tls.sh.

GOZER_TLS_PLAIN_PORT=${GOZER_TLS_PLAIN_PORT:-18095}
GOZER_TLS_ADMIN_PORT=${GOZER_TLS_ADMIN_PORT:-18096}
GOZER_TLS_PORT=${GOZER_TLS_PORT:-18097}
BENCH_PORTS+=("$GOZER_TLS_PLAIN_PORT" "$GOZER_TLS_ADMIN_PORT" "$GOZER_TLS_PORT")

# gozer_https_yaml prints the listeners.https block (indented for under "listeners:").
gozer_https_yaml() {
  cat <<CONF
  https:
    addr: "127.0.0.1:$GOZER_TLS_PORT"
    certificates:
      - { cert: "$TLS_CERT", key: "$TLS_KEY" }
    session_tickets: true
CONF
}

target_gozer-tls_start() {
  local dir=$WORK/gozer-tls-run wrapper
  tls_target_prereqs || return 1
  if ! gozer_build; then
    WAIT_FAIL_REASON=$GOZER_BUILD_PROBLEM
    return 1
  fi
  mkdir -p "$dir"
  gozer_https_yaml >"$dir/https.yaml"
  wrapper=$dir/gozer-with-https
  cat >"$wrapper" <<SH
#!/bin/sh
# Written by bench/targets/gozer-tls.sh: add listeners.https to the config gozer_start
# wrote, then run Gozer on it.
set -e
if [ "\$1" != -config ] || [ ! -f "\$2" ]; then echo "gozer-with-https: want -config FILE" >&2; exit 2; fi
grep -q '^listeners:\$' "\$2" || { echo "gozer-with-https: no 'listeners:' line in \$2" >&2; exit 2; }
sed -i '/^listeners:\$/r $dir/https.yaml' "\$2"
exec "$WORK/gozer" "\$@"
SH
  chmod +x "$wrapper"
  gozer_start gozer-tls "$GOZER_TLS_PLAIN_PORT" "$GOZER_TLS_ADMIN_PORT" "" "$wrapper" || return 1
  T_WORK=plain
  T_TLS_ADDR=127.0.0.1:$GOZER_TLS_PORT
  T_PLAIN_ADDR=127.0.0.1:$GOZER_TLS_PLAIN_PORT
  T_DESC+=", no Lua filters (filters.dir \"\")"
  T_TLS_DESC="listeners.https: { addr: \"127.0.0.1:$GOZER_TLS_PORT\", certificates: [{ cert, key }], session_tickets: true }, other keys Gozer's defaults; resumption: session tickets (crypto/tls, stateless); $(go version | awk '{ print $3 }') crypto/tls"
}
