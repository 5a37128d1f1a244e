# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# Gozer: one event loop, pinned to the proxy core. GOZER_GOMAXPROCS empty leaves Go's
# runtime default (which follows the taskset affinity); run.sh tries both it and 1.

GOZER_PORT=${GOZER_PORT:-18080}
GOZER_ADMIN_PORT=${GOZER_ADMIN_PORT:-18081}
BENCH_PORTS+=("$GOZER_PORT" "$GOZER_ADMIN_PORT")
GOZER_GOMAXPROCS=${GOZER_GOMAXPROCS:-}

# gozer_build builds the gateway into $WORK/gozer; the gateway is under active work, so
# a failed build is reported as a result (Gozer not measured), not a harness failure.
gozer_build() {
  log "building gozer"
  if ! go build -o "$WORK/gozer" ./gateway/cmd/gozer >"$WORK/gozer-build.log" 2>&1; then
    GOZER_PROBLEM="does not build: $(head -n 3 "$WORK/gozer-build.log" | tr '\n' ' ')"
    return 1
  fi
}

target_gozer_start() {
  local dir=$WORK/gozer-run
  mkdir -p "$dir"
  cat >"$dir/gozer.yaml" <<CONF
listeners:
  proxy: { addr: "127.0.0.1:$GOZER_PORT" }
  admin: { addr: "127.0.0.1:$GOZER_ADMIN_PORT" }
server:
  event_loops: 1
  max_connections: 200000
  idle_timeout: 300s
log:
  level: warn
  access_log: "off"
origins:
  bench:
    servers: ["127.0.0.1:$ORIGIN_PORT"]
    max_idle_per_server: 256
    max_connections_per_server: 1024
routes:
  - path_prefix: "/"
    origin: bench
CONF
  local -a envs=()
  [[ -n $GOZER_GOMAXPROCS ]] && envs=("GOMAXPROCS=$GOZER_GOMAXPROCS")
  bg_start "$dir/gozer.log" env "${envs[@]}" taskset -c "$PROXY_CPU" "$WORK/gozer" -config "$dir/gozer.yaml"
  T_PID=$BG_PID
  T_LOG=$dir/gozer.log
  T_URL="http://127.0.0.1:$GOZER_PORT/"
  T_READY_URL="http://127.0.0.1:$GOZER_ADMIN_PORT/healthcheck"
  T_DESC="Gozer ($(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'no git')): event_loops 1, GOMAXPROCS=${GOZER_GOMAXPROCS:-unset (Go default)}, access_log off"
}
