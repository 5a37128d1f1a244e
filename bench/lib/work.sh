# shellcheck shell=bash
# What each target must do on every request, and the checks that it does it. A Lua target
# that quietly did nothing (scripts not loaded, a module not in the config) would measure
# as cheap as its base: the harness refuses to measure a target that fails these checks.
# Sourced by run.sh, never run.
#
# Work kinds (T_WORK, set by target_NAME_start):
#   plain  forward only: the origin sees no X-Route, the client no X-Gateway
#   lua1   + one Lua step, inbound/access: request header X-Route = the path
#   lua3   + outbound/header_filter: X-Gateway: gozer and no Server header in the response,
#          + a clock read at the end (Gozer outbound 90_timing.lua / nginx log_by_lua)
#   async  one Lua step that makes one side call (Gozer ctx.http / nginx
#          ngx.location.capture) to the origin's $BENCH_SIDE_PATH, then X-Route =
#          "side-<its body>:<path>" 
# Gozer targets also set T_FILTERS_URL (GET /admin/filters): the loaded filters must be
# exactly those of the work kind (none for plain), and after the runs each one must have
# been called at least once per request wrk completed, without errors.

# shellcheck disable=SC2034 # used by targets/origin.sh
BENCH_CHECK_PATH=/__bench/echo # the origin echoes X-Route there as X-Bench-Saw-Route
BENCH_SIDE_PATH=/__bench/side  # the async targets' side call: the origin answers "ok"

declare -A WORK_OF WORK_NOTE # per target: its work kind; what the checks saw

# work_filters KIND prints the Gozer filter names a work kind needs, sorted.
work_filters() {
  case $1 in
    plain) echo "" ;;
    lua1) echo "route" ;;
    lua3) echo "gw route timing" ;;
    async) echo "async" ;;
  esac
}

# work_nfilters KIND prints how many Lua steps a work kind runs per request.
work_nfilters() {
  case $1 in
    plain) echo 0 ;;
    lua1) echo 1 ;;
    lua3) echo 3 ;;
    async) echo 1 ;;
  esac
}

# header_of HEADERS NAME prints the value of header NAME in a curl -D dump ("" if absent).
header_of() {
  awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$2")" 'BEGIN { RS = "\r?\n" }
    { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit } }' <<<"$1"
}

# has_header HEADERS NAME: is header NAME in the dump at all?
has_header() {
  awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$2")" 'BEGIN { RS = "\r?\n"; f = 1 }
    { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { f = 0; exit } } END { exit f }' <<<"$1"
}

# gozer_filter_stats URL prints "name calls errors timeouts disabled last_error" per loaded
# filter, from GET /admin/filters (indented JSON, one field a line: no jq needed).
gozer_filter_stats() {
  curl -s -m 2 "$1" | awk '
    function val(s) { sub(/^[^:]*:[ \t]*/, "", s); sub(/,[ \t]*$/, "", s); gsub(/^"|"$/, "", s); return s }
    /"name":/ { name = val($0); calls = errors = timeouts = 0; dis = "false"; lerr = "" }
    /"calls_total":/ { calls = val($0) }
    /"errors_total":/ { errors = val($0) }
    /"timeouts_total":/ { timeouts = val($0) }
    /"last_error":/ { lerr = val($0); gsub(/[ \t]/, "_", lerr) }
    /"disabled":/ { dis = val($0); printf "%s %s %s %s %s %s\n", name, calls, errors, timeouts, dis, (lerr == "" ? "-" : lerr) }'
}

# work_check NAME BASE_URL KIND [FILTERS_URL]: one request through the target to the origin's
# echo path, and (Gozer) its filter list. Returns non-zero with WORK_FAIL_REASON set.
WORK_FAIL_REASON=""
work_check() {
  local name=$1 url=${2%/}$BENCH_CHECK_PATH kind=$3 furl=${4:-} hdrs status saw gw problems=() want got
  WORK_FAIL_REASON=""
  if ! hdrs=$(curl -s -m 2 -D - -o /dev/null "$url"); then
    WORK_FAIL_REASON="no answer from $url"
    return 1
  fi
  status=$(awk 'NR == 1 { print $2 }' <<<"$hdrs")
  saw=$(header_of "$hdrs" X-Bench-Saw-Route)
  gw=$(header_of "$hdrs" X-Gateway)
  [[ $status == 200 ]] || problems+=("status $status, not 200")
  case $kind in
    plain)
      [[ -z $saw ]] || problems+=("the origin got X-Route: $saw (no Lua step should set it)")
      [[ -z $gw ]] || problems+=("the response has X-Gateway: $gw (no Lua step should set it)")
      ;;
    lua1 | lua3)
      [[ $saw == "$BENCH_CHECK_PATH" ]] || problems+=("the origin got X-Route '${saw}', want '$BENCH_CHECK_PATH' (inbound/access step not run)")
      if [[ $kind == lua1 ]]; then
        [[ -z $gw ]] || problems+=("the response has X-Gateway: $gw (lua1 runs no outbound step)")
      else
        [[ $gw == gozer ]] || problems+=("the response has X-Gateway '${gw}', want 'gozer' (outbound/header_filter step not run)")
        if has_header "$hdrs" Server; then
          problems+=("the response still has Server: $(header_of "$hdrs" Server) (outbound/header_filter step not run)")
        fi
      fi
      ;;
    async)
      [[ $saw == "side-ok:$BENCH_CHECK_PATH" ]] || problems+=("the origin got X-Route '${saw}', want 'side-ok:$BENCH_CHECK_PATH' (the side call did not run)")
      [[ -z $gw ]] || problems+=("the response has X-Gateway: $gw (async runs no outbound step)")
      ;;
    *) problems+=("unknown work kind '$kind' (T_WORK)") ;;
  esac
  if [[ -n $furl ]]; then
    want=$(work_filters "$kind")
    got=$(gozer_filter_stats "$furl" | awk '$5 == "false" { print $1 }' | sort | tr '\n' ' ' | sed 's/ $//')
    [[ $got == "$want" ]] || problems+=("GET /admin/filters lists [${got}], want [${want}]")
  fi
  if ((${#problems[@]})); then
    WORK_FAIL_REASON=$(printf '%s; ' "${problems[@]}")
    WORK_FAIL_REASON=${WORK_FAIL_REASON%; }
    return 1
  fi
  case $kind in
    plain) WORK_NOTE[$name]="forwards only: origin got no X-Route, no X-Gateway" ;;
    lua1) WORK_NOTE[$name]="origin got X-Route: $saw" ;;
    lua3) WORK_NOTE[$name]="origin got X-Route: $saw; response has X-Gateway: $gw and no Server" ;;
    async) WORK_NOTE[$name]="origin got X-Route: $saw (after a side call to $BENCH_SIDE_PATH)" ;;
  esac
  if [[ -n $furl ]]; then WORK_NOTE[$name]+="; /admin/filters: [${want:-none}]"; fi
  return 0
}

# work_counters_check NAME FILTERS_URL REQUESTS: after the runs, every filter of a Gozer
# target must have run at least once per request wrk completed through it. Appends what it
# saw to WORK_NOTE; returns non-zero with WORK_FAIL_REASON set. Filter errors and budget
# timeouts are not a failure to do the work (the request got a 500, which wrk counts as an
# error): they go to WORK_WARNING.
WORK_WARNING=""
work_counters_check() {
  local name=$1 furl=$2 requests=$3 stats line f calls errors timeouts problems=() seen=() warns=()
  WORK_FAIL_REASON="" WORK_WARNING=""
  stats=$(gozer_filter_stats "$furl")
  while read -r f calls errors timeouts _; do
    [[ -n $f ]] || continue
    seen+=("$f $calls calls, $errors errors ($timeouts past the budget)")
    ((calls >= requests)) || problems+=("filter $f ran $calls times for $requests requests")
    ((errors == 0 && timeouts == 0)) || warns+=("filter $f: $errors errors, $timeouts of them past the budget")
  done <<<"$stats"
  ((${#seen[@]})) || problems+=("GET /admin/filters lists no filters after the runs")
  line=$(printf '%s; ' "${seen[@]}")
  WORK_NOTE[$name]+="; after the runs: ${line%; } (wrk completed $requests requests through it)"
  if ((${#warns[@]})); then
    WORK_WARNING=$(printf '%s; ' "${warns[@]}")
    WORK_WARNING=${WORK_WARNING%; }
  fi
  if ((${#problems[@]})); then
    WORK_FAIL_REASON=$(printf '%s; ' "${problems[@]}")
    WORK_FAIL_REASON=${WORK_FAIL_REASON%; }
    return 1
  fi
}
