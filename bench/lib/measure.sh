# shellcheck shell=bash
# Measurements: one wrk run against a target (throughput, latency, proxy CPU per request,
# CPU shares of the load-generator core), idle keep-alive memory per connection, and the
# summary tables. Sourced by run.sh, never run.

# Columns of $RUNS_TSV, one line per wrk run.
# Scripts that add columns of their own (compress.sh, tls.sh) append them after these 15.
# With WRK_SPLIT_COLUMNS=1 (run.sh, which adds RUNS_SPLIT_HEADER) wrk_run writes two more:
# kernel_pct, the proxy's stime share of its CPU, and ctxsw_req, its threads' context
# switches per request (a Go proxy's extra ones are its scheduler's: bench/README.md,
# "Thread wake-ups under load"). The run's line on stderr shows both either way.
# shellcheck disable=SC2034 # used by run.sh
RUNS_HEADER=$'kind\ttarget\tround\treq_s\tp50_us\tp99_us\tcpu_us_req\tproxy_cpu_pct\torigin_cpu_pct\twrk_cpu_pct\terrors\trequests\tother_cpu_pct\tdisturbed\terror_detail'
# shellcheck disable=SC2034 # used by run.sh
RUNS_SPLIT_HEADER=$'\tkernel_pct\tctxsw_req'

# to_us converts a wrk latency ("812.00us", "1.23ms", "1.01s") to microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
    else if (v ~ /m$/) print n * 60e6; else if (v ~ /s$/) print n * 1e6; else print "nan" }'
}

# wrk_run KIND TARGET ROUND URL PID: one wrk run of WRK_DURATION (default BENCH_DURATION)
# seconds (plus the array WRK_EXTRA_ARGS on its command line, if set: compress.sh's -H and -s),
# pinned to the load-generator core, while reading the CPU time that the proxy
# (PID and its children; PID "none" when no proxy is in the path), the origin, wrk and the
# two cores as a whole spend. Appends a line to $RUNS_TSV; returns non-zero if wrk could
# not run or completed nothing.
wrk_run() {
  local kind=$1 name=$2 round=$3 url=$4 pid=$5
  local out=$WORK/wrk-$kind-$name-$round.txt
  local c0 c1 o0 o1 t0 t1 b0 b1 u0 u1 s0 s1 x0 x1

  # Readings closest to the run first, so that the harness's own forks stay out of the window.
  read -r u0 s0 x0 <<<"$(proc_split "$pid")"; c0=$((u0 + s0)); o0=$(cpu_ticks "$ORIGIN_PID")
  b0=$(cores_busy_ticks "${BENCH_CORES[@]}"); t0=$(date +%s%N)
  # The subshell's "times" prints the CPU time of its children, i.e. of wrk: that is how we
  # know wrk's share of the load-generator core without another tool. It runs in the
  # background so that "wait" returns at once on Ctrl-C (a foreground child would delay
  # the trap until wrk ends); the EXIT trap stops WRK_PID.
  (
    rc=0
    taskset -c "$LOADGEN_CPU" wrk -t"$BENCH_THREADS" -c"$BENCH_CONNS" -d"${WRK_DURATION:-$BENCH_DURATION}s" --latency \
      ${WRK_EXTRA_ARGS[@]+"${WRK_EXTRA_ARGS[@]}"} "$url" >"$out" 2>&1 || rc=$?
    times >"$out.times"
    exit "$rc"
  ) &
  WRK_PID=$!
  wait "$WRK_PID" || warn "wrk exited non-zero against $name (see below)"
  WRK_PID=""
  t1=$(date +%s%N); b1=$(cores_busy_ticks "${BENCH_CORES[@]}")
  read -r u1 s1 x1 <<<"$(proc_split "$pid")"; c1=$((u1 + s1)); o1=$(cpu_ticks "$ORIGIN_PID")

  local requests rps p50 p99 errors detail wall wrk_s
  requests=$(awk '/ requests in / {print $1; exit}' "$out")
  rps=$(awk '/^Requests\/sec:/ {print $2; exit}' "$out")
  p50=$(awk '$1 == "50%" {print $2; exit}' "$out")
  p99=$(awk '$1 == "99%" {print $2; exit}' "$out")
  # Socket errors (connect/read/write/timeout) plus non-2xx/3xx answers.
  errors=$(awk '/Socket errors:/ {gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) s += $i}
                /Non-2xx or 3xx responses:/ {s += $NF} END {print s + 0}' "$out")
  # ...and which kinds, e.g. "connect 0, read 0, write 0, timeout 64; non-2xx 0".
  detail=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); se = $0 }
                /Non-2xx or 3xx responses:/ { nx = $NF }
                END { if (se != "" || nx != "") printf "%s; non-2xx %d", (se == "" ? "no socket errors" : se), nx }' "$out")
  if [[ -z $requests || -z $rps || $requests -eq 0 ]]; then
    warn "wrk against $name produced no result:"
    sed 's/^/    /' "$out" >&2
    return 1
  fi
  wall=$(((t1 - t0) / 1000)) # µs
  wrk_s=$(awk 'NR == 2 {
    split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$out.times")

  local line
  line=$(awk -v kind="$kind" -v name="$name" -v round="$round" -v req="$requests" -v rps="$rps" \
    -v p50="$(to_us "$p50")" -v p99="$(to_us "$p99")" -v dc=$((c1 - c0)) -v dor=$((o1 - o0)) \
    -v tck="$CLK_TCK" -v wall="$wall" -v wrk_s="$wrk_s" -v err="$errors" -v busy=$((b1 - b0)) \
    -v max_other="$BENCH_OTHER_CPU_MAX" -v detail="${detail:--}" -v ds=$((s1 - s0)) -v dx=$((x1 - x0)) 'BEGIN {
      cpu_us = dc * 1e6 / tck
      # What the measured cores did beyond the proxy, the origin and wrk, in % of one core.
      other = 100 * (busy * 1e6 / tck - cpu_us - dor * 1e6 / tck - wrk_s * 1e6) / wall
      printf "%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.2f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%.1f\t%s\t%s\t%.1f\t%.3f\n", kind, name, round, rps, p50, p99,
        cpu_us / req, 100 * cpu_us / wall, 100 * (dor * 1e6 / tck) / wall, 100 * wrk_s * 1e6 / wall, err, req,
        other, (other > max_other ? "yes" : "no"), detail, (dc > 0 ? 100 * ds / dc : 0), dx / req }')
  if [[ ${WRK_SPLIT_COLUMNS:-0} == 1 ]]; then
    printf '%s\n' "$line" >>"$RUNS_TSV"
  else
    cut -f1-15 <<<"$line" >>"$RUNS_TSV"
  fi
  # The same, readable, on stderr as the bench goes.
  awk -F'\t' '{ printf "    %-8s %-8s r%-2s %8s req/s  p50 %6sus  p99 %6sus  %6s us/req (kernel %4s%%, %s switches/req)  proxy %5s%%  origin %5s%%  wrk %5s%%  other %5s%%%s  errors %s\n",
    $1, $2, $3, $4, $5, $6, $7, $16, $17, $8, $9, $10, $13, ($14 == "yes" ? " (DISTURBED)" : ""), $11 ($11 > 0 ? " (" $15 ")" : "") }' <<<"$line" >&2
}

# idle_mem TARGET ADDR PID: RSS of the target with BENCH_IDLE_CONNS idle keep-alive client
# connections, less its RSS before; appends "target rss_before_kib rss_after_kib bytes_per_conn dropped" to $MEM_TSV.
idle_mem() {
  local name=$1 addr=$2 pid=$3 n=$BENCH_IDLE_CONNS
  local out=$WORK/idle-$name.txt rss0 rss1 ipid
  rss0=$(rss_kib "$pid")
  bg_start "$out" "$WORK/idleconns" -addr "$addr" -n "$n" -sources "$IDLE_SOURCES" -hold 300s
  ipid=$BG_PID
  # Wait for "ready" (all connections open, each has had its response): with a deadline.
  local end=$((SECONDS + 120))
  while ! grep -qs '^ready ' "$out"; do
    if ! alive "$ipid" || ((SECONDS >= end)); then
      warn "idleconns against $name did not get ready: $(tail -n 3 "$out" | tr '\n' ' ')"
      stop_pid "$ipid"
      return 1
    fi
    sleep 0.1
  done
  rss1=$(rss_kib "$pid")
  kill -TERM "$ipid" 2>/dev/null || true
  end=$((SECONDS + 30))
  while alive "$ipid" && ((SECONDS < end)); do sleep 0.1; done
  stop_pid "$ipid"
  local dropped
  dropped=$(awk '/^closed / {print $3}' "$out")
  [[ ${dropped:-0} -eq 0 ]] || warn "$name closed $dropped idle connections while they were held"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rss0" "$rss1" "$(((rss1 - rss0) * 1024 / n))" "${dropped:-?}" >>"$MEM_TSV"
  log "  $name: RSS ${rss0} KiB -> ${rss1} KiB with $n idle connections: $(((rss1 - rss0) * 1024 / n)) B/conn"
}

# last_run_disturbed: was the run wrk_run just recorded disturbed by other load?
last_run_disturbed() {
  [[ $(tail -n 1 "$RUNS_TSV" | cut -f14) == yes ]]
}

# median reads numbers, one a line, and prints their median ("-" if none).
median() {
  sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# column_of KIND TARGET COL prints one column of $RUNS_TSV for a target's runs of a kind,
# leaving out the runs that other load on the machine disturbed (unless all of them were).
column_of() {
  awk -F'\t' -v k="$1" -v t="$2" -v c="$3" '
    NR == FNR { if ($1 == k && $2 == t && $14 == "no") clean++; next }
    $1 == k && $2 == t && (!clean || $14 == "no") { print $c }' "$RUNS_TSV" "$RUNS_TSV"
}

# runs_used KIND TARGET prints "used/all": how many runs the medians are taken over.
runs_used() {
  awk -F'\t' -v k="$1" -v t="$2" '$1 == k && $2 == t { n++; if ($14 == "no") clean++ }
    END { printf "%d/%d", (clean ? clean : n), n }' "$RUNS_TSV"
}

# ratio A B prints A/B with two decimals, or "-".
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

# num FORMAT VALUE prints VALUE with a printf FORMAT, or "-" when there is no value.
num() {
  awk -v f="$1" -v v="$2" 'BEGIN { if (v == "" || v == "-") print "-"; else printf f, v }'
}

# print_throughput_table TARGET...: medians over the measured rounds, and ratios to nginx.
print_throughput_table() {
  local t base=nginx
  declare -A RPS P50 P99 CPU PCT ERR MIN MAX KER CSW
  for t in "$@"; do
    KER[$t]=$(column_of run "$t" 16 | median)
    CSW[$t]=$(column_of run "$t" 17 | median)
    RPS[$t]=$(column_of run "$t" 4 | median)
    P50[$t]=$(column_of run "$t" 5 | median)
    P99[$t]=$(column_of run "$t" 6 | median)
    CPU[$t]=$(column_of run "$t" 7 | median)
    PCT[$t]=$(column_of run "$t" 8 | median)
    ERR[$t]=$(column_of run "$t" 11 | awk '{ s += $1 } END { print s + 0 }')
    MIN[$t]=$(column_of run "$t" 4 | sort -g | head -n 1)
    MAX[$t]=$(column_of run "$t" 4 | sort -g | tail -n 1)
  done
  printf '| target | runs used | req/s | req/s min–max | p50 µs | p99 µs | CPU µs/req | kernel share | switches/req | proxy core busy | errors | req/s vs nginx | p99 vs nginx | CPU/req vs nginx |\n'
  printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
  for t in "$@"; do
    printf '| %s | %s | %s | %s–%s | %s | %s | %s | %s%% | %s | %s%% | %s | %s | %s | %s |\n' "$t" "$(runs_used run "$t")" "$(num %.0f "${RPS[$t]}")" \
      "${MIN[$t]}" "${MAX[$t]}" "$(num %.0f "${P50[$t]}")" "$(num %.0f "${P99[$t]}")" "$(num %.2f "${CPU[$t]}")" \
      "$(num %.0f "${KER[$t]}")" "$(num %.3f "${CSW[$t]}")" \
      "$(num %.1f "${PCT[$t]}")" "${ERR[$t]}" \
      "$(ratio "${RPS[$t]}" "${RPS[$base]:--}")" "$(ratio "${P99[$t]}" "${P99[$base]:--}")" \
      "$(ratio "${CPU[$t]}" "${CPU[$base]:--}")"
  done
}

# print_loadgen_table TARGET...: how busy the load-generator core was (origin + wrk), and
# which side limited the throughput: an event-loop proxy that is ~100% busy was the limit.
print_loadgen_table() {
  local t o w p x r ceil total verdict
  printf '| target | origin CPU (core %s) | wrk CPU (core %s) | core %s total | proxy core %s | other load | req/s / load-side ceiling | limited by |\n' \
    "$LOADGEN_CPU" "$LOADGEN_CPU" "$LOADGEN_CPU" "$PROXY_CPU"
  printf '|---|---:|---:|---:|---:|---:|---:|---|\n'
  for t in "$@"; do
    o=$(column_of run "$t" 9 | median)
    w=$(column_of run "$t" 10 | median)
    p=$(column_of run "$t" 8 | median)
    x=$(column_of run "$t" 13 | median)
    r=$(column_of run "$t" 4 | median)
    ceil=$(awk -v r="$r" -v c="${CEILING_RPS:-0}" 'BEGIN { if (c > 0) printf "%.0f", 100 * r / c; else print "-" }')
    total=$(awk -v a="$o" -v b="$w" 'BEGIN { printf "%.1f", a + b }')
    verdict=$(awk -v p="$p" -v c="$ceil" -v x="$x" -v max="$BENCH_OTHER_CPU_MAX" 'BEGIN {
      if (x > max) print "other jobs on the machine (every run disturbed): do not trust req/s";
      else if (p >= 95 && c != "-" && c >= 90) print "the proxy, and the load side nearly: compare CPU µs/req";
      else if (p >= 95) print "the proxy (its core is saturated)";
      else if (c != "-" && c >= 90) print "the load side: compare CPU µs/req, not req/s";
      else print "neither core is saturated: latency-bound" }')
    printf '| %s | %s%% | %s%% | %s%% | %s%% | %s%% | %s%% | %s |\n' "$t" "$(num %.1f "$o")" "$(num %.1f "$w")" "$total" \
      "$(num %.1f "$p")" "$(num %.1f "$x")" "$ceil" "$verdict"
  done
}

# print_runs_table: every run, in the order it ran.
print_runs_table() {
  printf '| kind | target | round | req/s | p50 µs | p99 µs | CPU µs/req | proxy core | origin | wrk | other load | disturbed | errors | requests |\n'
  printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n'
  awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s%% | %s%% | %s%% | %s%% | %s | %s | %s |\n",
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $13, $14, $11 ($11 > 0 ? " (" $15 ")" : ""), $12 }' "$RUNS_TSV"
}

# print_mem_table TARGET...: bytes per idle keep-alive connection, and the ratio to nginx.
print_mem_table() {
  local t base row
  base=$(awk -F'\t' '$1 == "nginx" { print $4 }' "$MEM_TSV")
  printf '| target | RSS before (KiB) | RSS with %s idle conns (KiB) | bytes/conn | vs nginx | closed by server while held |\n' "$BENCH_IDLE_CONNS"
  printf '|---|---:|---:|---:|---:|---:|\n'
  for t in "$@"; do
    row=$(awk -F'\t' -v t="$t" '$1 == t' "$MEM_TSV")
    if [[ -z $row ]]; then
      printf '| %s | - | - | not measured | - | - |\n' "$t"
      continue
    fi
    awk -F'\t' -v r="$(ratio "$(cut -f4 <<<"$row")" "${base:--}")" \
      '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, r, $5 }' <<<"$row"
  done
}

# round_values KIND TARGET COL prints "round value clean" per round of a target: the last
# clean run of each round (a disturbed run is redone under the same round number), else its
# last run with clean = 0.
round_values() {
  awk -F'\t' -v k="$1" -v t="$2" -v c="$3" '$1 == k && $2 == t {
      if (!($3 in any)) order[++n] = $3
      any[$3] = $c; if ($14 == "no") clean[$3] = $c }
    END { for (i = 1; i <= n; i++) { r = order[i]; print r, (r in clean ? clean[r] " 1" : any[r] " 0") } }' "$RUNS_TSV"
}

# paired_deltas TARGET BASE prints, per round both ran, TARGET's CPU µs/req less BASE's:
# interleaved rounds put the two side by side in time, so drift of the machine cancels.
# Only rounds where both runs were clean count, unless there is no such round.
paired_deltas() {
  awk 'NR == FNR { b[$1] = $2; bc[$1] = $3; next }
    ($1 in b) { d[++n] = $2 - b[$1]; ok[n] = $3 && bc[$1]; if (ok[n]) clean++ }
    END { for (i = 1; i <= n; i++) if (!clean || ok[i]) printf "%.3f\n", d[i] }' \
    <(round_values run "$2" 7) <(round_values run "$1" 7)
}

# round_ratios A B prints, per round both ran, A's CPU µs/req / B's: the runs of a round are
# seconds apart, so contention the guest cannot see (which here moved every target's CPU per
# request by 1.5x for a few rounds) cancels. Only rounds where both runs were clean count,
# unless there is no such round.
round_ratios() {
  awk 'NR == FNR { b[$1] = $2; bc[$1] = $3; next }
    ($1 in b) && b[$1] > 0 { r[++n] = $2 / b[$1]; ok[n] = $3 && bc[$1]; if (ok[n]) clean++ }
    END { for (i = 1; i <= n; i++) if (!clean || ok[i]) printf "%.4f\n", r[i] }' \
    <(round_values run "$2" 7) <(round_values run "$1" 7)
}

# ratio_line A B [TARGET]: "**A / B CPU µs/req = R** (a / b); within rounds: median (min–max), n"
# and, with TARGET, the verdict against it: met when the ratio of medians and the median of the
# within-round ratios both are at most TARGET, NOT met when both are above, else borderline.
ratio_line() {
  local a=$1 b=$2 target=${3:-} ca cb rr rmed
  ca=$(column_of run "$a" 7 | median) cb=$(column_of run "$b" 7 | median)
  rr=$(round_ratios "$a" "$b")
  rmed=$(median <<<"$rr")
  printf -- '- **%s / %s CPU µs/req = %s** (%s / %s); within each round: median **%s** (%s–%s), %s rounds' "$a" "$b" \
    "$(ratio "$ca" "$cb")" "$(num %.2f "$ca")" "$(num %.2f "$cb")" "$(num %.2f "$rmed")" \
    "$(num %.2f "$(sort -g <<<"$rr" | head -n 1)")" "$(num %.2f "$(sort -g <<<"$rr" | tail -n 1)")" "$(grep -c . <<<"$rr" || true)"
  if [[ -n $target ]]; then
    awk -v a="$(ratio "$ca" "$cb")" -v b="${rmed:--}" -v t="$target" 'BEGIN {
      if (b == "-") b = a
      if (a <= t && b <= t) v = "met"; else if (a > t && b > t) v = "**NOT met**"; else v = "borderline (the two estimates straddle " t ")"
      printf " — issue target (≤ %.2f) %s", t, v }'
  fi
  printf '\n'
}

# print_lua_table TARGET...: the Lua targets against their bases (gozer-luaN vs gozer,
# nginx-luaN vs nginx): CPU µs/req added per Lua step, and Gozer vs nginx + Lua. The
# issue's targets: each Lua filter adds <= 2 µs/req; gozer-lua3 <= nginx-lua3.
print_lua_table() {
  local t base n cpu bcpu d per pd pmed pmin pmax verdict
  declare -A CPU
  for t in "$@"; do CPU[$t]=$(column_of run "$t" 7 | median); done
  printf '| target | Lua steps | CPU µs/req | base | base CPU µs/req | added µs/req | **µs per Lua step** | per step, from per-round pairs: median (min–max), pairs | issue target ≤ 2 µs/step |\n'
  printf '|---|---:|---:|---|---:|---:|---:|---:|---|\n'
  for t in "$@"; do
    [[ $t == *-lua* ]] || continue
    base=${t%%-lua*}
    n=$(work_nfilters "${WORK_OF[$t]:-plain}")
    cpu=${CPU[$t]} bcpu=${CPU[$base]:--}
    if [[ $bcpu == - || $n == 0 ]]; then
      printf '| %s | %s | %s | %s | not measured | - | - | - | - |\n' "$t" "$n" "$(num %.2f "$cpu")" "$base"
      continue
    fi
    d=$(awk -v a="$cpu" -v b="$bcpu" 'BEGIN { printf "%.2f", a - b }')
    per=$(awk -v d="$d" -v n="$n" 'BEGIN { printf "%.2f", d / n }')
    pd=$(paired_deltas "$t" "$base" | awk -v n="$n" '{ printf "%.3f\n", $1 / n }')
    pmed=$(median <<<"$pd") pmin=$(sort -g <<<"$pd" | head -n 1) pmax=$(sort -g <<<"$pd" | tail -n 1)
    verdict="- (reference)"
    if [[ $base == gozer ]]; then
      # Both estimates must agree for a clear verdict; when they straddle 2 µs, say so.
      verdict=$(awk -v p="$per" -v q="${pmed:--}" 'BEGIN {
        if (q == "-") q = p
        if (p <= 2 && q <= 2) print "met"; else if (p > 2 && q > 2) print "**NOT met**"; else print "borderline (the two estimates straddle 2)" }')
    fi
    printf '| %s | %s | %s | %s | %s | %s | **%s** | %s (%s–%s), %s | %s |\n' "$t" "$n" "$(num %.2f "$cpu")" "$base" "$(num %.2f "$bcpu")" "$(num %+.2f "$d")" "$(num %.2f "$per")" \
      "$(num %.2f "$pmed")" "$(num %.2f "$pmin")" "$(num %.2f "$pmax")" "$(grep -c . <<<"$pd")" "$verdict"
  done
  printf '\n"added" = the target'"'"'s median CPU µs/req less its base'"'"'s (gozer for gozer-luaN, nginx for nginx-luaN); "per Lua step" = added / steps. The per-round column takes the difference within each round (the two ran back to back) before the median, which cancels slow drift of the machine, over the rounds where neither run was disturbed ("pairs"); the spread shows how far one round can be off. '
  printf 'A difference of medians is noisier than either median: at ~%s µs/req, 1%% run-to-run noise is already ~%s µs/req.\n\n' \
    "$(num %.0f "${CPU[gozer]:-${CPU[nginx]:-}}")" "$(awk -v c="${CPU[gozer]:-${CPU[nginx]:-0}}" 'BEGIN { printf "%.2f", c / 100 }')"
  local n1
  for n1 in 1 3; do
    [[ -n ${CPU[gozer-lua$n1]:-} && -n ${CPU[nginx-lua$n1]:-} ]] || continue
    if ((n1 == 3)); then ratio_line gozer-lua3 nginx-lua3 1.00; else ratio_line gozer-lua1 nginx-lua1; fi
  done
  # gozer-lua3-base (BENCH_BASE_REV with the same scripts): the change, in the same rounds.
  [[ -n ${CPU[gozer-lua3]:-} && -n ${CPU[gozer-lua3-base]:-} ]] && ratio_line gozer-lua3 gozer-lua3-base
  printf '\n"within each round": the ratio of the two runs of the same round (seconds apart), whose median cancels contention that the guest cannot see and that moves every target alike for a while; when it and the ratio of medians disagree, trust it, or run more rounds.\n'
}

# print_metrics_table: gozer (metrics on, the default) against gozer-nometrics
# (listeners.admin.metrics: false) in the same rounds: what the metrics cost per request.
# The issue's target: <= 0.3 µs CPU/req.
print_metrics_table() {
  local on off d pd pmed pmin pmax verdict
  on=$(column_of run gozer 7 | median) off=$(column_of run gozer-nometrics 7 | median)
  if [[ -z $on || -z $off ]]; then
    printf 'gozer or gozer-nometrics was not measured.\n'
    return 0
  fi
  d=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a - b }')
  pd=$(paired_deltas gozer gozer-nometrics)
  pmed=$(median <<<"$pd") pmin=$(sort -g <<<"$pd" | head -n 1) pmax=$(sort -g <<<"$pd" | tail -n 1)
  verdict=$(awk -v p="$d" -v q="${pmed:--}" 'BEGIN {
    if (q == "-") q = p
    if (p <= 0.3 && q <= 0.3) print "met"; else if (p > 0.3 && q > 0.3) print "**NOT met**"; else print "borderline (the two estimates straddle 0.3)" }')
  printf '| metrics on (gozer) CPU µs/req | metrics off (gozer-nometrics) CPU µs/req | on / off | **added by the metrics, µs/req** | the same from per-round pairs: median (min–max), pairs | issue target ≤ 0.3 µs/req |\n'
  printf '|---:|---:|---:|---:|---:|---|\n'
  printf '| %s | %s | %s | **%s** | %s (%s–%s), %s | %s |\n' "$(num %.2f "$on")" "$(num %.2f "$off")" "$(ratio "$on" "$off")" \
    "$(num %+.2f "$d")" "$(num %.2f "$pmed")" "$(num %.2f "$pmin")" "$(num %.2f "$pmax")" "$(grep -c . <<<"$pd" || true)" "$verdict"
  printf '\nThe same binary and config but listeners.admin.metrics; on, each request records its origin, status cause and class, two latency histograms and its attempts into its loop'"'"'s shard, and the loop times its callbacks (busy share). A difference of medians is noisier than either median: at ~%s µs/req, 1%% run-to-run noise is already ~%s µs/req; the per-round pairs cancel slow drift.\n\n' \
    "$(num %.0f "$on")" "$(awk -v c="$on" 'BEGIN { printf "%.2f", c / 100 }')"
  ratio_line gozer gozer-nometrics
  printf '\n'
}

# print_async_table TARGET...: the async targets against their bases (gozer-async vs
# gozer, nginx-async vs nginx): what a Lua step with one side call adds per request, and
# Gozer vs nginx + Lua doing the same call. The issue's target: gozer-async <= nginx-async.
print_async_table() {
  local t base cpu bcpu d pd pmed pmin pmax
  declare -A CPU
  for t in "$@"; do CPU[$t]=$(column_of run "$t" 7 | median); done
  printf '| target | CPU µs/req | base | base CPU µs/req | **added by the Lua step and its side call, µs/req** | the same from per-round pairs: median (min–max), pairs |\n'
  printf '|---|---:|---|---:|---:|---:|\n'
  for t in "$@"; do
    [[ $t == *-async ]] || continue
    base=${t%-async}
    cpu=${CPU[$t]} bcpu=${CPU[$base]:--}
    if [[ $bcpu == - ]]; then
      printf '| %s | %s | %s | not measured | - | - |\n' "$t" "$(num %.2f "$cpu")" "$base"
      continue
    fi
    d=$(awk -v a="$cpu" -v b="$bcpu" 'BEGIN { printf "%.2f", a - b }')
    pd=$(paired_deltas "$t" "$base")
    pmed=$(median <<<"$pd") pmin=$(sort -g <<<"$pd" | head -n 1) pmax=$(sort -g <<<"$pd" | tail -n 1)
    printf '| %s | %s | %s | %s | **%s** | %s (%s–%s), %s |\n' "$t" "$(num %.2f "$cpu")" "$base" "$(num %.2f "$bcpu")" "$(num %+.2f "$d")" \
      "$(num %.2f "$pmed")" "$(num %.2f "$pmin")" "$(num %.2f "$pmax")" "$(grep -c . <<<"$pd")"
  done
  printf '\nThe side call goes to the same origin as the proxied request (its %s: a 2-byte answer), over each proxy'"'"'s own upstream keep-alive pool, so the proxy does two upstream exchanges per client request.\n\n' "$BENCH_SIDE_PATH"
  if [[ -n ${CPU[gozer-async]:-} && -n ${CPU[nginx-async]:-} ]]; then
    ratio_line gozer-async nginx-async 1.00
  fi
}
