# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# Gozer with one rate limit on every request (issue 16, point 7): the gozer target's config
# plus limits.rules [{key: ip, rate high enough never to refuse}], so that gozer vs
# gozer-ratelimit in the same rounds is a limit's cost per request (target <= +0.3 µs CPU/req).
# gozer-ratelimit-cluster marks the same limit cluster: true with limits.redis on a
# redis-server of its own: the request path is the same (Redis is the reconciler's, every
# sync_interval), so its cost must be the same. run.sh prints both in "Rate limits".

GOZER_RATELIMIT_PORT=${GOZER_RATELIMIT_PORT:-18109}
GOZER_RATELIMIT_ADMIN_PORT=${GOZER_RATELIMIT_ADMIN_PORT:-18110}
GOZER_RLCLUSTER_PORT=${GOZER_RLCLUSTER_PORT:-18111}
GOZER_RLCLUSTER_ADMIN_PORT=${GOZER_RLCLUSTER_ADMIN_PORT:-18112}
GOZER_RLCLUSTER_REDIS_PORT=${GOZER_RLCLUSTER_REDIS_PORT:-18113}
BENCH_PORTS+=("$GOZER_RATELIMIT_PORT" "$GOZER_RATELIMIT_ADMIN_PORT" "$GOZER_RLCLUSTER_PORT" "$GOZER_RLCLUSTER_ADMIN_PORT" "$GOZER_RLCLUSTER_REDIS_PORT")
GOZER_RLCLUSTER_REDIS_PID=""

# gozer_ratelimit_conf CLUSTER: the limits: section (one limit per client address, a billion
# requests per second: it takes a token on every request and never refuses).
gozer_ratelimit_conf() {
  local cluster=$1
  printf 'limits:\n'
  if [[ $cluster == true ]]; then
    printf '  redis: "127.0.0.1:%s"\n' "$GOZER_RLCLUSTER_REDIS_PORT"
  fi
  printf '  rules:\n    - { name: bench, key: ip, rate: 1000000000, per: 1s, burst: 1000000, cluster: %s }\n' "$cluster"
}

target_gozer-ratelimit_start() {
  GOZER_CONF_TOP_EXTRA=$(gozer_ratelimit_conf false) gozer_start gozer-ratelimit "$GOZER_RATELIMIT_PORT" "$GOZER_RATELIMIT_ADMIN_PORT" "" || return 1
  T_WORK=plain
  T_DESC+=", no Lua filters, **one rate limit on every request** (limits.rules: key ip, never refusing)"
}

target_gozer-ratelimit-cluster_start() {
  if [[ -z $GOZER_RLCLUSTER_REDIS_PID ]] || ! kill -0 "$GOZER_RLCLUSTER_REDIS_PID" 2>/dev/null; then
    if ! command -v redis-server >/dev/null; then
      WAIT_FAIL_REASON="redis-server is not installed"
      return 1
    fi
    # On the load-generator core: Redis is the reconciler's, not the proxy's.
    bg_start "$WORK/redis-ratelimit.log" taskset -c "$LOADGEN_CPU" redis-server --save "" --appendonly no \
      --bind 127.0.0.1 --port "$GOZER_RLCLUSTER_REDIS_PORT"
    GOZER_RLCLUSTER_REDIS_PID=$BG_PID
  fi
  GOZER_CONF_TOP_EXTRA=$(gozer_ratelimit_conf true) gozer_start gozer-ratelimit-cluster "$GOZER_RLCLUSTER_PORT" "$GOZER_RLCLUSTER_ADMIN_PORT" "" || return 1
  T_WORK=plain
  T_DESC+=", no Lua filters, **one cluster rate limit on every request** (cluster: true, limits.redis on a redis-server of its own, sync_interval 100ms)"
}

# print_ratelimit_table TARGET...: gozer-ratelimit and gozer-ratelimit-cluster against
# gozer in the same rounds. The issue's target: <= +0.3 µs CPU/req.
print_ratelimit_table() {
  local t base cpu d pd pmed pmin pmax verdict
  base=$(column_of run gozer 7 | median)
  if [[ -z $base ]]; then
    printf 'gozer was not measured.\n'
    return 0
  fi
  printf '| target | CPU µs/req | gozer CPU µs/req | **added by the limit, µs/req** | the same from per-round pairs: median (min–max), pairs | issue target ≤ 0.3 µs/req |\n'
  printf '|---|---:|---:|---:|---:|---|\n'
  for t in "$@"; do
    [[ $t == gozer-ratelimit* ]] || continue
    cpu=$(column_of run "$t" 7 | median)
    [[ -n $cpu ]] || continue
    d=$(awk -v a="$cpu" -v b="$base" 'BEGIN { printf "%.3f", a - b }')
    pd=$(paired_deltas "$t" gozer)
    pmed=$(median <<<"$pd") pmin=$(sort -g <<<"$pd" | head -n 1) pmax=$(sort -g <<<"$pd" | tail -n 1)
    verdict=$(awk -v p="$d" -v q="${pmed:--}" 'BEGIN {
      if (q == "-") q = p
      if (p <= 0.3 && q <= 0.3) print "met"; else if (p > 0.3 && q > 0.3) print "**NOT met**"; else print "borderline (the two estimates straddle 0.3)" }')
    printf '| %s | %s | %s | **%s** | %s (%s–%s), %s | %s |\n' "$t" "$(num %.2f "$cpu")" "$(num %.2f "$base")" "$(num %+.2f "$d")" \
      "$(num %.2f "$pmed")" "$(num %.2f "$pmin")" "$(num %.2f "$pmax")" "$(grep -c . <<<"$pd" || true)" "$verdict"
  done
  printf '\nThe same binary and config but limits.rules: one token bucket (GCRA, one shard lock) per request. A difference of medians is noisier than either median: at ~%s µs/req, 1%% run-to-run noise is already ~%s µs/req; the per-round pairs cancel slow drift.\n\n' \
    "$(num %.0f "$base")" "$(awk -v c="$base" 'BEGIN { printf "%.2f", c / 100 }')"
}
