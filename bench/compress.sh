#!/usr/bin/env bash
# The CPU cost of response compression: Gozer (origins.NAME.compression, gzip) against nginx
# (gzip on) at the same level, side by side in one run, on realistic documents.
#
#   bash bench/compress.sh                            (~6 minutes on 2 cores)
#   BENCH_ROUNDS=1 BENCH_DURATION=2 BENCH_WARMUP=1 COMPRESS_PROFILE_SECS=0 bash bench/compress.sh
#                                                     (smoke run, ~1 minute)
#
# Four targets, each pinned to core 0 with one worker / event loop, all forwarding to one
# origin (an nginx of our own serving static files, never compressing) on core 1 with wrk:
#   gozer       the gozer target of run.sh (targets/gozer.sh), no compression
#   gozer-gzip  the same plus compression: { enabled: true, encodings: [gzip], level: 5, min_size: 1KiB,
#               types: ["text/html", "application/json"] } (targets/gozer-gzip.sh)
#   nginx       the nginx target of run.sh (targets/nginx.sh)
#   nginx-gzip  the same plus gzip on; gzip_comp_level 5; gzip_types application/json; ... (targets/nginx-gzip.sh)
# and for each document in COMPRESS_DOCS (gateway/compress/testdata/page.html, a 64 KiB product-listing
# page, and items.json, a 1.9 KiB API answer) wrk fetches it through every target with
# "Accept-Encoding: gzip", in interleaved rounds (doc 1: gozer gozer-gzip nginx nginx-gzip,
# doc 2: ..., then round 2 ...); figures are medians over rounds. Before the runs every target
# must show it does its work: the gzip targets answer Content-Encoding: gzip with a body that
# decodes to the origin's bytes, the plain ones answer the origin's bytes as they are.
#
# What it reports, per document: req/s, CPU µs/req of the proxy (utime+stime of all its
# processes from /proc/PID/stat during the run, / requests completed), bytes per response on the
# wire (wrk's byte count / requests) and the compressed body size; the compression's own cost =
# CPU µs/req with gzip − without, per compressed KiB and per input KiB, for each proxy; and the
# ratios gozer / nginx (the issue's target: ≤ 1.00 per compressed KiB at the same level). Then
# a CPU profile of gozer-gzip under the same load (listeners.admin.pprof), top functions.
# Results: stdout, bench/results/compress-latest.txt (+ a timestamped copy, the runs as TSV and
# the profiles).
#
# Knobs (environment):
#   BENCH_ROUNDS=7           measured rounds
#   BENCH_DURATION=4         seconds per wrk run
#   BENCH_WARMUP=2           seconds of warm-up per target and document (not reported)
#   BENCH_CONNS=64           wrk connections (wrk -t1)
#   GZIP_LEVEL=5             the level of both (1..9; Gozer's level has nginx's meaning)
#   COMPRESS_DOCS="page.html items.json"  documents (files in bench/compress/ or gateway/compress/testdata/; .html, .json)
#   COMPRESS_PROFILE_SECS=10 seconds of Gozer CPU profile per document (0 skips)
#   COMPRESS_PORT_BASE=18280 origin on BASE, gozer BASE+1 (admin +2), gozer-gzip BASE+3 (admin
#                            +4), nginx BASE+5, nginx-gzip BASE+6
#   BENCH_GOZER_GOMAXPROCS   GOMAXPROCS for both Gozer targets (default: unset, Gozer's own)
#   BENCH_OTHER_CPU_MAX=10   a run during which other jobs took more than this % of a core on
#                            the two cores is disturbed: medians are over the clean runs if at
#                            least half the rounds are, else over the least disturbed half
#   BENCH_RETRY_BUDGET=60    seconds of extra runs allowed to redo disturbed runs (once each)
#   BENCH_KEEP_TMP=1         keep configs, logs and raw wrk output
#
# Exit status: non-zero when the harness failed (a tool missing, the origin or a target not
# starting, a target dying, a listener left behind) or a target did not do its work. Gozer
# costing more than nginx is a result, not a failure.
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

BENCH_ROUNDS=${BENCH_ROUNDS:-7}
BENCH_DURATION=${BENCH_DURATION:-4}
BENCH_WARMUP=${BENCH_WARMUP:-2}
BENCH_CONNS=${BENCH_CONNS:-64}
BENCH_THREADS=1
BENCH_KEEP_TMP=${BENCH_KEEP_TMP:-0}
BENCH_OTHER_CPU_MAX=${BENCH_OTHER_CPU_MAX:-10}
BENCH_RETRY_BUDGET=${BENCH_RETRY_BUDGET:-60}
BENCH_GOZER_GOMAXPROCS=${BENCH_GOZER_GOMAXPROCS:-}
GZIP_LEVEL=${GZIP_LEVEL:-5}
COMPRESS_DOCS=${COMPRESS_DOCS:-page.html items.json}
COMPRESS_PROFILE_SECS=${COMPRESS_PROFILE_SECS:-10}
COMPRESS_PORT_BASE=${COMPRESS_PORT_BASE:-18280}
# Ports of our own, away from run.sh's (1808x-1809x), so that the two do not collide.
ORIGIN_PORT=${ORIGIN_PORT:-$COMPRESS_PORT_BASE}
GOZER_PORT=${GOZER_PORT:-$((COMPRESS_PORT_BASE + 1))}
GOZER_ADMIN_PORT=${GOZER_ADMIN_PORT:-$((COMPRESS_PORT_BASE + 2))}
GOZER_GZIP_PORT=${GOZER_GZIP_PORT:-$((COMPRESS_PORT_BASE + 3))}
GOZER_GZIP_ADMIN_PORT=${GOZER_GZIP_ADMIN_PORT:-$((COMPRESS_PORT_BASE + 4))}
NGINX_PORT=${NGINX_PORT:-$((COMPRESS_PORT_BASE + 5))}
NGINX_GZIP_PORT=${NGINX_GZIP_PORT:-$((COMPRESS_PORT_BASE + 6))}
BENCH_PORTS=("$ORIGIN_PORT")
TARGETS=(gozer gozer-gzip nginx nginx-gzip)
GZIP_OF=(gozer-gzip nginx-gzip) # the compressing targets, and their bases:
declare -A BASE_OF=([gozer-gzip]=gozer [nginx-gzip]=nginx)
# A response that grew by more than this factor under load, against one fetched alone, is
# flagged: some responses went out uncompressed (an exhausted encoder pool), or larger.
WIRE_TOLERANCE=1.03

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh
# shellcheck source=bench/lib/measure.sh
source bench/lib/measure.sh
# shellcheck source=bench/lib/work.sh
source bench/lib/work.sh # header_of
# shellcheck source=bench/targets/gozer.sh
source bench/targets/gozer.sh
# shellcheck source=bench/targets/gozer-gzip.sh
source bench/targets/gozer-gzip.sh
# shellcheck source=bench/targets/nginx.sh
source bench/targets/nginx.sh
# shellcheck source=bench/targets/nginx-gzip.sh
source bench/targets/nginx-gzip.sh

COMMAND="BENCH_ROUNDS=$BENCH_ROUNDS BENCH_DURATION=$BENCH_DURATION BENCH_WARMUP=$BENCH_WARMUP BENCH_CONNS=$BENCH_CONNS GZIP_LEVEL=$GZIP_LEVEL COMPRESS_DOCS=\"$COMPRESS_DOCS\" COMPRESS_PROFILE_SECS=$COMPRESS_PROFILE_SECS${BENCH_GOZER_GOMAXPROCS:+ BENCH_GOZER_GOMAXPROCS=$BENCH_GOZER_GOMAXPROCS} bash bench/compress.sh"
RESULTS_DIR=$REPO/bench/results
WORK=$(mktemp -d /tmp/gozer-compress.XXXXXX)
RUNS_TSV=$WORK/runs.tsv
# run.sh's columns, plus the bytes per response wrk read (headers, framing and body), the
# proxy's write syscalls per request (/proc/PID/io syscw) and the CPU other jobs took from the
# proxy's core during the run (% of that core): what decides whether a run was disturbed here.
RUNS_HEADER+=$'\tbytes_per_resp\twrites_per_req\tother_proxy_core_pct'
WRK_LUA=$WORK/bytes.lua
# wrk -s: only done(), so wrk runs no Lua per request; it prints the exact bytes read.
cat >"$WRK_LUA" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("bench-bytes %.0f\nbench-requests %.0f\n", summary.bytes, summary.requests))
end
LUA
WRK_EXTRA_ARGS=(-H "Accept-Encoding: gzip" -s "$WRK_LUA")

bench_exit_setup "$BENCH_KEEP_TMP"
log "command: $COMMAND"

# --- tools, limits, cores ----------------------------------------------------------------

command -v go >/dev/null || die "go is not installed"
ensure_cmds nginx:nginx wrk:wrk curl:curl taskset:util-linux pgrep:procps ss:iproute2 gzip:gzip \
  sha256sum:coreutils
raise_nofile 65536
NOFILE=$(ulimit -n)
NPROC=$(nproc) # before the harness pins itself to one core (below), which nproc would then count
if ((NPROC >= 2)); then
  PROXY_CPU=0 LOADGEN_CPU=1
  BENCH_CORES=(0 1)
else
  PROXY_CPU=0 LOADGEN_CPU=0
  BENCH_CORES=(0)
  warn "one core only: proxies, origin and wrk share it; ratios still mean something, absolute figures do not"
fi
[[ $GZIP_LEVEL =~ ^[1-9]$ ]] || die "GZIP_LEVEL must be 1..9, not '$GZIP_LEVEL'"
for p in "${BENCH_PORTS[@]}"; do
  if port_in_use "$p"; then die "port $p is already in use (a previous run still up? set COMPRESS_PORT_BASE)"; fi
done

# --- documents ---------------------------------------------------------------------------

# doc_path DOC prints where DOC is: bench/compress/ (items.json), or the compression
# package's test data (page.html, shared with its unit tests rather than copied).
doc_path() {
  local dir
  for dir in bench/compress gateway/compress/testdata; do
    [[ -f $dir/$1 ]] && { echo "$dir/$1"; return 0; }
  done
  return 1
}

read -r -a DOCS <<<"$COMPRESS_DOCS"
((${#DOCS[@]})) || die "COMPRESS_DOCS is empty"
declare -A DOC_SIZE DOC_SHA DOC_TYPE DOC_GZIP
mkdir -p "$WORK/origin/docs"
# nginx's worker (user nobody when started as root) must reach the files: mktemp's dir is 0700.
chmod 755 "$WORK" "$WORK/origin" "$WORK/origin/docs"
for d in "${DOCS[@]}"; do
  src=$(doc_path "$d") || die "no document $d in bench/compress/ or gateway/compress/testdata/"
  cp "$src" "$WORK/origin/docs/$d"
  chmod 644 "$WORK/origin/docs/$d"
  case $d in
    *.html) DOC_TYPE[$d]=text/html ;;
    *.json) DOC_TYPE[$d]=application/json ;;
    *) die "document $d: the origin serves .html and .json only" ;;
  esac
  [[ " $GZIP_TYPES " == *" ${DOC_TYPE[$d]} "* ]] || die "document $d is ${DOC_TYPE[$d]}, not in GZIP_TYPES ($GZIP_TYPES)"
  DOC_SIZE[$d]=$(stat -c %s "$src")
  ((${DOC_SIZE[$d]} >= 1024)) || die "document $d is under 1 KiB: neither proxy would compress it"
  DOC_SHA[$d]=$(sha256sum <"$src" | cut -c1-64)
  # For reference only: GNU gzip (zlib's algorithm) at the same level, no HTTP.
  DOC_GZIP[$d]=$(gzip -"$GZIP_LEVEL" -n -c "$src" | wc -c)
done

# --- origin ------------------------------------------------------------------------------

# compress_origin_start: nginx with its own prefix, one worker on the load-generator core,
# serving the documents as static files (never compressed: gzip off), long keep-alive.
compress_origin_start() {
  local dir=$WORK/origin
  cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections $NOFILE; }
http {
  access_log off;
  keepalive_timeout 600s;
  keepalive_requests 1000000000;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=64 inactive=600s;
  open_file_cache_valid 600s;
  types { text/html html; application/json json; }
  default_type application/octet-stream;
  gzip off;
  server {
    listen 127.0.0.1:$ORIGIN_PORT backlog=4096;
    root $dir/docs;
    location = / {
      default_type text/plain;
      return 200 "ok\n";
    }
  }
}
CONF
  bg_start "$dir/stdout.log" taskset -c "$LOADGEN_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
  ORIGIN_PID=$BG_PID
  wait_http origin "$ORIGIN_PID" "http://127.0.0.1:$ORIGIN_PORT/" 15 "$dir/error.log"
}

log "starting the origin (nginx, static files) on 127.0.0.1:$ORIGIN_PORT, core $LOADGEN_CPU"
compress_origin_start || die "the origin did not start"

# --- work checks -------------------------------------------------------------------------

declare -A TARGET_PID TARGET_URL TARGET_DESC TARGET_PPROF CHECK_NOTE HEAD_BYTES BODY_BYTES
PROBLEMS=()
FAILED=0         # a target died: exit non-zero after the report
HARNESS_FAILED=0 # set by check_ports_released

# fetch NAME URL DOC: one GET with Accept-Encoding: gzip, body as it came (curl undoes the
# chunked framing, not the coding); sets F_STATUS F_HEAD_BYTES F_CE F_VARY F_TE F_RAW.
fetch() {
  local name=$1 url=$2 doc=$3 w
  F_RAW=$WORK/check-$name-$doc.raw
  local hdr=$WORK/check-$name-$doc.head
  w=$(curl -s -m 5 -H "Accept-Encoding: gzip" -D "$hdr" -o "$F_RAW" -w '%{http_code} %{size_header}' "$url") || w="000 0"
  read -r F_STATUS F_HEAD_BYTES <<<"$w"
  local h
  h=$(cat "$hdr" 2>/dev/null || true)
  F_CE=$(header_of "$h" Content-Encoding)
  F_VARY=$(header_of "$h" Vary)
  F_TE=$(header_of "$h" Transfer-Encoding)
}

# check_doc NAME URL DOC gzip|plain: does the target answer DOC as it must? Sets CHECK_FAIL.
check_doc() {
  local name=$1 url=$2 doc=$3 want=$4 problems=() sha size dsha csha
  fetch "$name" "$url" "$doc"
  [[ $F_STATUS == 200 ]] || problems+=("status $F_STATUS, not 200")
  size=$(stat -c %s "$F_RAW" 2>/dev/null || echo 0)
  if [[ $want == gzip ]]; then
    [[ $F_CE == gzip ]] || problems+=("Content-Encoding '${F_CE}', want gzip")
    gzip -t <"$F_RAW" 2>/dev/null || problems+=("the body is not a complete gzip stream")
    dsha=$(gzip -dc <"$F_RAW" 2>/dev/null | sha256sum | cut -c1-64)
    [[ $dsha == "${DOC_SHA[$doc]}" ]] || problems+=("the body does not decode (gzip -dc) to the origin's bytes")
    csha=$(curl -s -m 5 --compressed "$url" | sha256sum | cut -c1-64)
    [[ $csha == "${DOC_SHA[$doc]}" ]] || problems+=("curl --compressed does not give the origin's bytes")
  else
    [[ -z $F_CE ]] || problems+=("Content-Encoding '${F_CE}': this target must not compress")
    sha=$(sha256sum <"$F_RAW" | cut -c1-64)
    [[ $sha == "${DOC_SHA[$doc]}" ]] || problems+=("the body is not the origin's bytes")
  fi
  HEAD_BYTES[$name@$doc]=$F_HEAD_BYTES
  BODY_BYTES[$name@$doc]=$size
  if ((${#problems[@]})); then
    CHECK_FAIL=$(printf '%s; ' "${problems[@]}")
    CHECK_FAIL=${CHECK_FAIL%; }
    return 1
  fi
  if [[ $want == gzip ]]; then
    CHECK_NOTE[$name@$doc]="Content-Encoding: gzip, $size bytes (ratio $(awk -v a="${DOC_SIZE[$doc]}" -v b="$size" 'BEGIN { printf "%.2f", a / b }')), decodes to the origin's bytes (gzip -dc and curl --compressed: sha256 equal)"
  else
    CHECK_NOTE[$name@$doc]="no Content-Encoding, $size bytes, the origin's bytes (sha256 equal)"
  fi
  CHECK_NOTE[$name@$doc]+="; Vary: ${F_VARY:-none}; Transfer-Encoding: ${F_TE:-none}; head $F_HEAD_BYTES bytes"
  return 0
}

# The origin itself must not compress, even when asked.
for d in "${DOCS[@]}"; do
  check_doc origin "http://127.0.0.1:$ORIGIN_PORT/$d" "$d" plain ||
    die "the origin does not serve $d as it is: $CHECK_FAIL"
done

# --- targets -----------------------------------------------------------------------------

# shellcheck disable=SC2034 # read by targets/gozer.sh
GOZER_GOMAXPROCS=${BENCH_GOZER_GOMAXPROCS/default/}
if ! gozer_build; then
  PROBLEMS+=("gozer: $GOZER_BUILD_PROBLEM")
  die "Gozer $GOZER_BUILD_PROBLEM"
fi
# From here on the harness itself (curl, awk, the /proc readings) runs on the load core, with
# wrk and the origin: the proxy's core holds the proxy, and what else runs there is other jobs.
taskset -pc "$LOADGEN_CPU" $$ >/dev/null || warn "could not pin the harness to core $LOADGEN_CPU"

# start_one NAME: start target NAME, wait until it is ready and reaches the origin, check
# that it answers every document as it must; records it, or dies (no comparison without it).
start_one() {
  local name=$1 want=plain d url
  [[ -n ${BASE_OF[$name]:-} ]] && want=gzip
  T_PID="" T_URL="" T_READY_URL="" T_LOG="" T_DESC="" T_PPROF_URL=""
  WAIT_FAIL_REASON="target_${name}_start failed"
  log "starting $name on core $PROXY_CPU"
  "target_${name}_start" || die "$name does not start: $WAIT_FAIL_REASON"
  wait_http "$name" "$T_PID" "$T_READY_URL" 30 "$T_LOG" || die "$name does not start: $WAIT_FAIL_REASON"
  wait_http "$name (through to the origin)" "$T_PID" "${T_URL%/}/${DOCS[0]}" 10 "$T_LOG" ||
    die "$name does not reach the origin: $WAIT_FAIL_REASON"
  for d in "${DOCS[@]}"; do
    url="${T_URL%/}/$d"
    if ! check_doc "$name" "$url" "$d" "$want"; then
      die "$name DOES NOT DO ITS WORK ($want) on $d: $CHECK_FAIL"
    fi
    log "  $name $d: ${CHECK_NOTE[$name@$d]}"
  done
  TARGET_PID[$name]=$T_PID TARGET_URL[$name]=$T_URL TARGET_DESC[$name]=$T_DESC TARGET_PPROF[$name]=$T_PPROF_URL
}

for t in "${TARGETS[@]}"; do start_one "$t"; done

# --- rounds ------------------------------------------------------------------------------

printf '%s\n' "$RUNS_HEADER" >"$RUNS_TSV"

# syscw PID prints the write syscalls (write, writev; not send/sendto) of PID and its
# descendants so far, from /proc/PID/io.
syscw() {
  local total=0 p n
  for p in $(proc_tree "$1"); do
    n=$(awk '$1 == "syscw:" { print $2 }' "/proc/$p/io" 2>/dev/null) || continue
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

# add_columns OUT W0 W1 B0 B1: appends to the last line of $RUNS_TSV (wrk_run just wrote it)
# the bytes per response of the wrk run whose output is OUT, the write syscalls per request
# (W0, W1: syscw before and after) and the other load on the proxy's core (B0, B1: its busy
# ticks before and after, less the proxy's own CPU time; the wall time is wrk_run's, from the
# proxy's CPU time and its share of the core). On one core the origin and wrk are there too.
# Sets LAST_OTHER0.
add_columns() {
  local per writes
  per=$(awk '$1 == "bench-bytes" { b = $2 } $1 == "bench-requests" { n = $2 }
    END { if (n > 0) printf "%.1f", b / n; else print "-" }' "$1")
  writes=$(tail -n 1 "$RUNS_TSV" | awk -F'\t' -v d="$(($3 - $2))" '{ if ($12 > 0) printf "%.2f", d / $12; else print "-" }')
  LAST_OTHER0=$(tail -n 1 "$RUNS_TSV" | awk -F'\t' -v busy="$(($5 - $4))" -v tck="$CLK_TCK" -v one="$((PROXY_CPU == LOADGEN_CPU))" '{
    if ($8 <= 0) { print "-"; exit }
    wall = $7 * $12 * 100 / $8
    o = 100 * busy * 1e6 / tck / wall - $8 - (one ? $9 + $10 : 0)
    printf "%.1f", o }')
  sed -i "\$ s/\$/\t$per\t$writes\t$LAST_OTHER0/" "$RUNS_TSV"
}

# measure_one KIND NAME DOC ROUND: one wrk run of DOC through NAME; a run during which other
# jobs took more than BENCH_OTHER_CPU_MAX % of the proxy's core is done once more while the
# retry budget lasts (both stay in the runs table; see "which runs count").
RETRY_LEFT=$BENCH_RETRY_BUDGET
measure_one() {
  local kind=$1 name=$2 doc=$3 round=$4 key="$2@$3" try secs=${WRK_DURATION:-$BENCH_DURATION} w0 b0
  for try in 1 2; do
    w0=$(syscw "${TARGET_PID[$name]}")
    b0=$(cores_busy_ticks "$PROXY_CPU")
    if ! wrk_run "$kind" "$key" "$round" "${TARGET_URL[$name]%/}/$doc" "${TARGET_PID[$name]}" ||
      ! alive "${TARGET_PID[$name]}"; then
      alive "${TARGET_PID[$name]}" || tail -n 20 "$WORK/$name"*/*.log >&2 2>/dev/null || true
      die "$name failed in $kind round $round on $doc (died or gave no result)"
    fi
    add_columns "$WORK/wrk-$kind-$key-$round.txt" "$w0" "$(syscw "${TARGET_PID[$name]}")" \
      "$b0" "$(cores_busy_ticks "$PROXY_CPU")"
    if ((try == 1)) && [[ $kind == run ]] && ((RETRY_LEFT >= secs)) &&
      awk -v o="$LAST_OTHER0" -v max="$BENCH_OTHER_CPU_MAX" 'BEGIN { exit !(o != "-" && o > max) }'; then
      RETRY_LEFT=$((RETRY_LEFT - secs))
      log "  other jobs took ${LAST_OTHER0}% of the proxy's core during that run; running it again (${RETRY_LEFT}s of retry budget left)"
      continue
    fi
    return 0
  done
}

log "warm-up: ${BENCH_WARMUP}s per target and document"
for d in "${DOCS[@]}"; do
  for t in "${TARGETS[@]}"; do WRK_DURATION=$BENCH_WARMUP measure_one warm "$t" "$d" 0; done
done
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
  for d in "${DOCS[@]}"; do
    log "round $r/$BENCH_ROUNDS, $d: ${TARGETS[*]}"
    for t in "${TARGETS[@]}"; do measure_one run "$t" "$d" "$r"; done
  done
done

# --- Gozer CPU profile -------------------------------------------------------------------

declare -A PROFILE_TOP PROFILE_CUM
if ((COMPRESS_PROFILE_SECS > 0)); then
  for d in "${DOCS[@]}"; do
    prof=$WORK/gozer-gzip-$d.pprof
    log "CPU profile of gozer-gzip, $d: ${COMPRESS_PROFILE_SECS}s under the same wrk load"
    bg_start "$WORK/pprof-$d.log" curl -s -m $((COMPRESS_PROFILE_SECS + 30)) -o "$prof" \
      "${TARGET_PPROF[gozer-gzip]}/profile?seconds=$COMPRESS_PROFILE_SECS"
    pprof_pid=$BG_PID
    sleep 0.2
    WRK_DURATION=$((COMPRESS_PROFILE_SECS + 1)) measure_one profile gozer-gzip "$d" 0
    wait "$pprof_pid" 2>/dev/null || true
    if [[ -s $prof ]] && go tool pprof -top -nodecount=25 "$prof" >"$WORK/pprof-top-$d.txt" 2>/dev/null; then
      PROFILE_TOP[$d]=$(cat "$WORK/pprof-top-$d.txt")
      PROFILE_CUM[$d]=$(go tool pprof -top -cum -nodecount=25 "$prof" 2>/dev/null | sed -n '/flat%/,$p')
      mkdir -p "$RESULTS_DIR"
      cp "$prof" "$RESULTS_DIR/compress-gozer-gzip-${d%.*}.pprof"
    else
      warn "no CPU profile of gozer-gzip for $d"
      PROBLEMS+=("gozer-gzip: no CPU profile for $d (see $WORK/pprof-$d.log)")
    fi
  done
fi

# --- which runs count ---------------------------------------------------------------------

# The machine is shared: other jobs take CPU during some runs. What disturbs a proxy's CPU per
# request is other work on its own core (time slices, caches), so a run is disturbed when other
# jobs took more than BENCH_OTHER_CPU_MAX % of the proxy's core (column 18; measure.sh's
# "other load" sums both cores, and other jobs readily fill the load core that a compressing
# proxy leaves idle, without touching the proxy's). A
# figure is the median over the clean runs when there are at least NEED_RUNS of them (half the
# rounds, rounded up), else over the NEED_RUNS least disturbed runs: never a median of one
# lucky run when most were disturbed, never the worst runs when some were clean.
NEED_RUNS=$(((BENCH_ROUNDS + 1) / 2))

# pick_by_other (bench/lib/common.sh) applies the rule above.

# sel KEY COL prints column COL of the measured runs of KEY (target@document) that count.
sel() {
  awk -F'\t' -v k="$1" -v c="$2" '$1 == "run" && $2 == k { print $c, $18 }' "$RUNS_TSV" | pick_by_other
}

# runs_counted KEY prints "counted/all".
runs_counted() {
  printf '%s/%s' "$(sel "$1" 7 | grep -c . || true)" "$(awk -F'\t' -v k="$1" '$1 == "run" && $2 == k { n++ } END { print n + 0 }' "$RUNS_TSV")"
}

# round_best KEYS... prints, per round, for the least disturbed run of each KEY in that round,
# "ROUND KEY CPU OTHER WIRE" (a disturbed run redone has two runs in its round).
round_best() {
  awk -F'\t' -v keys=" $* " '$1 == "run" && index(keys, " " $2 " ") {
      r = $3; k = $2
      if (!((r, k) in o) || $18 + 0 < o[r, k]) { o[r, k] = $18 + 0; c[r, k] = $7; w[r, k] = $16 }
    }
    END { for (rk in o) { split(rk, p, SUBSEP); print p[1], p[2], c[rk], o[rk], w[rk] } }' "$RUNS_TSV"
}

# pair_deltas GZIP BASE prints, for the rounds that count (a pair counts as its more disturbed
# run), CPU µs/req of GZIP less BASE's in the same round: the two ran back to back, so slow
# drift of the machine cancels.
pair_deltas() {
  round_best "$1" "$2" | awk -v g="$1" -v b="$2" '
    { c[$1, $2] = $3; o[$1, $2] = $4; if ($2 == g) r[$1] = 1 }
    END { for (x in r) if ((x, b) in c) print c[x, g] - c[x, b], (o[x, g] > o[x, b] ? o[x, g] : o[x, b]) }' | pick_by_other
}

# round_ratios DOC prints, per round that counts (as its most disturbed run of the four), the
# ratio gozer / nginx of the compression's cost per compressed KiB within that round: each
# proxy's (gzip − base) CPU µs/req / its compressed body bytes. Rounds where nginx's
# difference is not positive (noise) are left out.
round_ratios() {
  local d=$1
  round_best "gozer@$d" "gozer-gzip@$d" "nginx@$d" "nginx-gzip@$d" |
    awk -v d="$d" -v hg="${HEAD_BYTES[gozer-gzip@$d]}" -v hn="${HEAD_BYTES[nginx-gzip@$d]}" '
      { c[$1, $2] = $3; o[$1, $2] = $4; w[$1, $2] = $5; r[$1] = 1 }
      END {
        G = "gozer@" d; GG = "gozer-gzip@" d; N = "nginx@" d; NG = "nginx-gzip@" d
        for (x in r) {
          if (!((x, G) in c) || !((x, GG) in c) || !((x, N) in c) || !((x, NG) in c)) continue
          dn = (c[x, NG] - c[x, N]) / (w[x, NG] - hn)
          if (dn <= 0) continue
          m = o[x, G]; if (o[x, GG] > m) m = o[x, GG]; if (o[x, N] > m) m = o[x, N]; if (o[x, NG] > m) m = o[x, NG]
          printf "%.4f %s\n", ((c[x, GG] - c[x, G]) / (w[x, GG] - hg)) / dn, m
        }
      }' | pick_by_other
}

# --- after the runs ----------------------------------------------------------------------

# Every response under load must be what the check saw: wire bytes per response (median)
# against head + body of the checked one. Errors (socket or non-2xx) are problems too.
declare -A WIRE WIRE_BODY
for d in "${DOCS[@]}"; do
  for t in "${TARGETS[@]}"; do
    k="$t@$d"
    WIRE[$k]=$(sel "$k" 16 | median)
    WIRE_BODY[$k]=$(awk -v w="${WIRE[$k]}" -v h="${HEAD_BYTES[$k]}" 'BEGIN { printf "%.0f", w - h }')
    grow=$(awk -v w="${WIRE[$k]}" -v h="${HEAD_BYTES[$k]}" -v b="${BODY_BYTES[$k]}" 'BEGIN { printf "%.3f", w / (h + b) }')
    if awk -v g="$grow" -v tol="$WIRE_TOLERANCE" 'BEGIN { exit !(g > tol) }'; then
      PROBLEMS+=("$t, $d: responses under load were ${grow}× the size of one fetched alone (${WIRE[$k]} bytes on the wire vs ${HEAD_BYTES[$k]} head + ${BODY_BYTES[$k]} body): some went out uncompressed or larger; its CPU per response is not comparable")
    fi
    errs=$(awk -F'\t' -v k="$k" '$2 == k && $1 != "warm" { s += $11 } END { print s + 0 }' "$RUNS_TSV")
    if ((errs > 0)); then PROBLEMS+=("$t, $d: $errs errors during the runs (see the runs table)"); fi
  done
done
# nginx spools a proxied response to a temporary file when its proxy buffers are full and the
# client is slower: that would be disk work in its CPU figure. Count it.
for t in nginx nginx-gzip; do
  n=$(grep -c 'buffered to a temporary file' "$WORK/$t/error.log" 2>/dev/null || true)
  if ((${n:-0} > 0)); then PROBLEMS+=("$t: $n responses spooled to a temporary file (proxy_buffering; in its CPU figure)"); fi
done
for t in "${TARGETS[@]}"; do
  alive "${TARGET_PID[$t]}" || { PROBLEMS+=("$t died during the runs"); FAILED=1; }
done

# --- report ------------------------------------------------------------------------------

# kb BYTES prints BYTES / 1024.
kb() { awk -v b="$1" 'BEGIN { if (b == "" || b == "-") print "-"; else printf "%.3f", b / 1024 }'; }
# div A B [FORMAT] prints A / B, or "-".
div() {
  awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN {
    if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else printf f, a / b }'
}

declare -A CPU RPS P50 P99 BUSY ORIG WRKC OTHER OTHER0 WRITES USED COST PAIRMED PAIRMIN PAIRMAX NPAIR
declare -A RRMED RRMIN RRMAX NRR
for d in "${DOCS[@]}"; do
  for t in "${TARGETS[@]}"; do
    k="$t@$d"
    CPU[$k]=$(sel "$k" 7 | median)
    RPS[$k]=$(sel "$k" 4 | median)
    P50[$k]=$(sel "$k" 5 | median)
    P99[$k]=$(sel "$k" 6 | median)
    BUSY[$k]=$(sel "$k" 8 | median)
    ORIG[$k]=$(sel "$k" 9 | median)
    WRKC[$k]=$(sel "$k" 10 | median)
    OTHER[$k]=$(sel "$k" 13 | median)
    OTHER0[$k]=$(sel "$k" 18 | median)
    WRITES[$k]=$(sel "$k" 17 | median)
    USED[$k]=$(runs_counted "$k")
  done
  for g in "${GZIP_OF[@]}"; do
    k="$g@$d" b="${BASE_OF[$g]}@$d"
    COST[$k]=$(awk -v a="${CPU[$k]}" -v b="${CPU[$b]}" 'BEGIN { printf "%.3f", a - b }')
    pd=$(pair_deltas "$k" "$b")
    PAIRMED[$k]=$(median <<<"$pd")
    PAIRMIN[$k]=$(sort -g <<<"$pd" | head -n 1)
    PAIRMAX[$k]=$(sort -g <<<"$pd" | tail -n 1)
    NPAIR[$k]=$(grep -c . <<<"$pd" || true)
  done
  rr=$(round_ratios "$d")
  RRMED[$d]=$(median <<<"$rr")
  RRMIN[$d]=$(sort -g <<<"$rr" | head -n 1)
  RRMAX[$d]=$(sort -g <<<"$rr" | tail -n 1)
  NRR[$d]=$(grep -c . <<<"$rr" || true)
done

# verdict A B: both estimates of a gozer / nginx ratio against 1.00.
verdict() {
  awk -v p="$1" -v q="$2" 'BEGIN {
    if (p == "-") { print "-"; exit }
    if (q == "-") q = p
    if (p <= 1 && q <= 1) print "met"; else if (p > 1 && q > 1) print "**NOT met**"; else print "borderline (the two estimates straddle 1.00)" }'
}

report() {
  local d t k g b
  printf '# Response compression: Gozer vs nginx, gzip level %s, %s\n\n' "$GZIP_LEVEL" "$(date -u '+%Y-%m-%d %H:%M UTC')"
  # shellcheck disable=SC2016 # the backticks are Markdown
  printf 'Command: `%s`\n\n' "$COMMAND"
  printf 'Machine: %s cores, %s, kernel %s, %s; load average when the bench started: %s\n\n' "$NPROC" \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(uname -r)" \
    "$(. /etc/os-release && echo "$PRETTY_NAME")" "$LOADAVG_START"
  # shellcheck disable=SC2016 # the backticks are Markdown
  printf 'Setup: each proxy pinned to core %s with one worker / event loop; wrk (`wrk -t%s -c%s -d%ss --latency -H "Accept-Encoding: gzip"`) and the origin (nginx, one worker, the documents as static files, never compressed, keep-alive) pinned to core %s. The harness itself (curl, awk, the /proc readings) runs on core %s too. Access logs off everywhere. ' \
    "$PROXY_CPU" "$BENCH_THREADS" "$BENCH_CONNS" "$BENCH_DURATION" "$LOADGEN_CPU" "$LOADGEN_CPU"
  printf 'A %ss warm-up per target and document, then %s interleaved rounds (per round, per document: %s); figures are medians over rounds. ' \
    "$BENCH_WARMUP" "$BENCH_ROUNDS" "${TARGETS[*]}"
  printf 'CPU µs/req = the proxy'"'"'s utime+stime (all its processes, /proc/PID/stat, %s ticks/s) during the run / requests wrk completed. Bytes/response on the wire = wrk'"'"'s bytes read (head, chunk framing, body) / requests.\n\n' "$CLK_TCK"
  printf 'Documents (bench/compress/, served by the origin as is):\n'
  for d in "${DOCS[@]}"; do
    printf -- '- %s: %s bytes, %s, sha256 %s…; GNU gzip -%s of it, for reference: %s bytes (ratio %s)\n' "$d" "${DOC_SIZE[$d]}" "${DOC_TYPE[$d]}" \
      "${DOC_SHA[$d]:0:16}" "$GZIP_LEVEL" "${DOC_GZIP[$d]}" "$(div "${DOC_SIZE[$d]}" "${DOC_GZIP[$d]}")"
  done
  printf '\nTargets:\n'
  for t in "${TARGETS[@]}"; do printf -- '- %s — %s\n' "$t" "${TARGET_DESC[$t]}"; done
  for t in "${PROBLEMS[@]}"; do printf -- '- **PROBLEM** %s\n' "$t"; done
  printf '\nWork checks (one GET with Accept-Encoding: gzip per target and document before the runs):\n'
  for d in "${DOCS[@]}"; do
    printf -- '- origin %s: %s\n' "$d" "${CHECK_NOTE[origin@$d]:-}"
    for t in "${TARGETS[@]}"; do printf -- '- %s %s: %s\n' "$t" "$d" "${CHECK_NOTE[$t@$d]}"; done
  done

  for d in "${DOCS[@]}"; do
    printf '\n## %s (%s bytes, %s): throughput and CPU, median of %s rounds\n\n' "$d" "${DOC_SIZE[$d]}" "${DOC_TYPE[$d]}" "$BENCH_ROUNDS"
    printf '| target | runs used | req/s | p50 µs | p99 µs | **CPU µs/req** | proxy core busy | write syscalls/req | bytes/response on the wire | body bytes (one request) | wire / (head + body) of one request |\n'
    printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
    for t in "${TARGETS[@]}"; do
      k="$t@$d"
      printf '| %s | %s | %s | %s | %s | **%s** | %s%% | %s | %s | %s | %s |\n' "$t" "${USED[$k]}" "$(num %.0f "${RPS[$k]}")" \
        "$(num %.0f "${P50[$k]}")" "$(num %.0f "${P99[$k]}")" "$(num %.2f "${CPU[$k]}")" "$(num %.1f "${BUSY[$k]}")" \
        "$(num %.2f "${WRITES[$k]}")" "$(num %.0f "${WIRE[$k]}")" "${BODY_BYTES[$k]}" \
        "$(div "${WIRE[$k]}" "$((${HEAD_BYTES[$k]} + ${BODY_BYTES[$k]}))" %.3f)"
    done
  done

  printf '\n## The compression'"'"'s own cost: CPU with gzip − CPU without\n\n'
  printf '| document | proxy | CPU µs/req with gzip | without | **compression µs/req** | the same from per-round pairs: median (min–max), pairs | compressed body bytes under load | ratio | **µs per compressed KiB** | µs per input KiB | total CPU µs per compressed KiB (with gzip) |\n'
  printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
  for d in "${DOCS[@]}"; do
    for g in "${GZIP_OF[@]}"; do
      k="$g@$d" b="${BASE_OF[$g]}@$d"
      printf '| %s | %s | %s | %s | **%s** | %s (%s–%s), %s | %s | %s | **%s** | %s | %s |\n' "$d" "${BASE_OF[$g]}" \
        "$(num %.2f "${CPU[$k]}")" "$(num %.2f "${CPU[$b]}")" "$(num %.2f "${COST[$k]}")" \
        "$(num %.2f "${PAIRMED[$k]}")" "$(num %.2f "${PAIRMIN[$k]}")" "$(num %.2f "${PAIRMAX[$k]}")" "${NPAIR[$k]}" \
        "${WIRE_BODY[$k]}" "$(div "${DOC_SIZE[$d]}" "${WIRE_BODY[$k]}")" \
        "$(div "${COST[$k]}" "$(kb "${WIRE_BODY[$k]}")")" "$(div "${COST[$k]}" "$(kb "${DOC_SIZE[$d]}")")" \
        "$(div "${CPU[$k]}" "$(kb "${WIRE_BODY[$k]}")")"
    done
  done
  printf '\n"compressed body bytes under load" = bytes/response on the wire less the head of the checked response (so chunk framing is in it). The per-round column takes gzip − base within each round (the two ran back to back), which cancels slow drift of the machine; the spread shows how far one round can be off. A difference is noisier than either figure: at ~%s µs/req, 1%% noise is ~%s µs/req.\n' \
    "$(num %.0f "${CPU[gozer@${DOCS[0]}]}")" "$(awk -v c="${CPU[gozer@${DOCS[0]}]}" 'BEGIN { printf "%.2f", c / 100 }')"

  printf '\n## Gozer / nginx (the issue'"'"'s target: ≤ 1.00 per compressed KiB at the same level)\n\n'
  printf '| document | **compression µs per compressed KiB** (from the medians above) | the same within each round: median (min–max), rounds | compression µs per input KiB | total CPU µs/req with gzip | total CPU µs per compressed KiB | compressed size gozer / nginx | verdict (compression per compressed KiB ≤ 1.00) |\n'
  printf '|---|---:|---:|---:|---:|---:|---:|---|\n'
  local rk ri rt rtk rs v gk nk
  for d in "${DOCS[@]}"; do
    gk="gozer-gzip@$d" nk="nginx-gzip@$d"
    rk=$(div "$(div "${COST[$gk]}" "${WIRE_BODY[$gk]}" %.9f)" "$(div "${COST[$nk]}" "${WIRE_BODY[$nk]}" %.9f)")
    ri=$(div "${COST[$gk]}" "${COST[$nk]}")
    rt=$(div "${CPU[$gk]}" "${CPU[$nk]}")
    rtk=$(div "$(div "${CPU[$gk]}" "${WIRE_BODY[$gk]}" %.9f)" "$(div "${CPU[$nk]}" "${WIRE_BODY[$nk]}" %.9f)")
    rs=$(div "${WIRE_BODY[$gk]}" "${WIRE_BODY[$nk]}" %.3f)
    v=$(verdict "$rk" "${RRMED[$d]}")
    printf '| %s | **%s** | %s (%s–%s), %s | %s | %s | %s | %s | %s |\n' "$d" "$rk" "$(num %.2f "${RRMED[$d]}")" \
      "$(num %.2f "${RRMIN[$d]}")" "$(num %.2f "${RRMAX[$d]}")" "${NRR[$d]}" "$ri" "$rt" "$rtk" "$rs" "$v"
  done
  printf '\nPer compressed KiB, a proxy that compresses less (more output) looks cheaper; per input KiB (the same input for both) it does not: read the two together. '
  for d in "${DOCS[@]}"; do
    rs=$(div "${WIRE_BODY[gozer-gzip@$d]}" "${WIRE_BODY[nginx-gzip@$d]}" %.3f)
    if awk -v r="$rs" 'BEGIN { exit !(r != "-" && (r > 1.05 || r < 0.95)) }'; then
      printf '**%s: Gozer'"'"'s output is %s× nginx'"'"'s: the ratios differ by more than 5%%, and the per-KiB comparison is only fair at similar ratios.** ' "$d" "$rs"
    else
      printf '%s: compressed sizes within 5%% of each other (gozer / nginx = %s). ' "$d" "$rs"
    fi
  done
  printf '\n'

  printf '\n## Load-generator core (origin + wrk) and other load, median per target run\n\n'
  printf '| document | target | origin CPU (core %s) | wrk CPU (core %s) | proxy core %s busy | other jobs on the proxy core | other jobs, both cores | limited by |\n' "$LOADGEN_CPU" "$LOADGEN_CPU" "$PROXY_CPU"
  printf '|---|---|---:|---:|---:|---:|---:|---|\n'
  for d in "${DOCS[@]}"; do
    for t in "${TARGETS[@]}"; do
      k="$t@$d"
      printf '| %s | %s | %s%% | %s%% | %s%% | %s%% | %s%% | %s |\n' "$d" "$t" "$(num %.1f "${ORIG[$k]}")" "$(num %.1f "${WRKC[$k]}")" \
        "$(num %.1f "${BUSY[$k]}")" "$(num %.1f "${OTHER0[$k]}")" "$(num %.1f "${OTHER[$k]}")" \
        "$(awk -v p="${BUSY[$k]}" -v l="$(awk -v a="${ORIG[$k]}" -v b="${WRKC[$k]}" 'BEGIN { print a + b }')" 'BEGIN {
          if (p >= 95) print "the proxy (its core is saturated)"; else if (l >= 90) print "the load side (origin + wrk): compare CPU µs/req, not req/s"; else print "neither core saturated" }')"
    done
  done
  printf '\nCPU µs/req of an event-loop proxy falls a little as its load rises (more requests per wakeup and per syscall). The gzip targets run with their core saturated and the bases often below it, so "gzip − base" holds that difference too, for both proxies alike.\n'

  if ((COMPRESS_PROFILE_SECS > 0)); then
    for d in "${DOCS[@]}"; do
      printf '\n## Gozer CPU profile: gozer-gzip, %s, %ss under the same wrk load\n\n' "$d" "$COMPRESS_PROFILE_SECS"
      if [[ -n ${PROFILE_TOP[$d]:-} ]]; then
        # shellcheck disable=SC2016 # the backticks are Markdown
        printf 'From `listeners.admin.pprof` (`/debug/pprof/profile`); saved as bench/results/compress-gozer-gzip-%s.pprof (`go tool pprof -top -cum FILE`). Flat:\n\n```\n%s\n```\n\nCumulative:\n\n```\n%s\n```\n' \
          "${d%.*}" "${PROFILE_TOP[$d]}" "${PROFILE_CUM[$d]}"
      else
        printf 'not taken (see PROBLEM above)\n'
      fi
    done
  fi

  printf '\n## Every run\n\n'
  printf '| kind | target@document | round | req/s | p50 µs | p99 µs | CPU µs/req | proxy core | origin | wrk | other jobs, proxy core | disturbed | other jobs, both cores | errors | requests | bytes/response | writes/req |\n'
  printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n'
  awk -F'\t' -v max="$BENCH_OTHER_CPU_MAX" 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s%% | %s%% | %s%% | %s%% | %s | %s%% | %s | %s | %s | %s |\n",
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $18, ($18 != "-" && $18 + 0 > max ? "yes" : "no"), $13, $11 ($11 > 0 ? " (" $15 ")" : ""), $12, $16, $17 }' "$RUNS_TSV"
  printf '\n"other jobs, proxy core": CPU time other jobs took from core %s during the run (its busy time in /proc/stat less the proxy'"'"'s), in %% of that core; above %s%% a run is disturbed ("other jobs, both cores": the same over cores %s, less the proxy, the origin and wrk, as run.sh shows it; other jobs readily fill the load core that a saturated proxy leaves idle). Each figure is the median over the clean runs when there are at least %s of them, else over the %s least disturbed runs ("runs used"); a redone run keeps its round number. "writes/req": the proxy'"'"'s write and writev syscalls per request (/proc/PID/io syscw; send/sendto are not counted there, so compare Gozer with Gozer and nginx with nginx).\n' \
    "$PROXY_CPU" "$BENCH_OTHER_CPU_MAX" "${BENCH_CORES[*]}" "$NEED_RUNS" "$NEED_RUNS"
  printf '\nHarness runtime: %ss.\n' "$SECONDS"
}

mkdir -p "$RESULTS_DIR"
report >"$WORK/report.md"
stamp=$(date -u +%Y%m%d-%H%M%S)
cp "$WORK/report.md" "$RESULTS_DIR/compress-latest.txt"
cp "$WORK/report.md" "$RESULTS_DIR/compress-$stamp.txt"
cp "$RUNS_TSV" "$RESULTS_DIR/compress-latest-runs.tsv"
echo
cat "$WORK/report.md"
echo
log "written to bench/results/compress-latest.txt"

stop_all_started
check_ports_released "${BENCH_PORTS[@]}"
if ((HARNESS_FAILED || FAILED)); then
  log "FAILED: ${PROBLEMS[*]}"
  exit 1
fi
exit 0
