# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# Gozer with its metrics off (listeners.admin.metrics: false): the gozer target's config
# otherwise, so that gozer (metrics on, the default) vs gozer-nometrics in the same rounds
# is the metrics' cost per request (issue 14: <= 0.3 µs CPU/req). run.sh prints it in
# "Metrics: CPU per request, on vs off".

GOZER_NOMETRICS_PORT=${GOZER_NOMETRICS_PORT:-18107}
GOZER_NOMETRICS_ADMIN_PORT=${GOZER_NOMETRICS_ADMIN_PORT:-18108}
BENCH_PORTS+=("$GOZER_NOMETRICS_PORT" "$GOZER_NOMETRICS_ADMIN_PORT")

target_gozer-nometrics_start() {
  GOZER_CONF_ADMIN_EXTRA="metrics: false" gozer_start gozer-nometrics "$GOZER_NOMETRICS_PORT" "$GOZER_NOMETRICS_ADMIN_PORT" "" || return 1
  T_WORK=plain
  T_DESC+=", no Lua filters (filters.dir \"\"), **metrics off** (listeners.admin.metrics: false; the gozer target has them on, the default)"
}
