#!/usr/bin/env bash
# Slow-client attacks at full scale: what ordinary traffic gets from Gozer while
# SLOW_CONNS connections (4,000) from 16 source addresses attack it slowly.
#
#   bash bench/slowclients.sh                                      (~4.5 minutes + quiet waits, all three attacks)
#   SLOW_CONNS=200 ATTACK_SECS=10 BASE_SECS=5 bash bench/slowclients.sh   (smoke, ~1 minute + quiet waits)
#
# Attacks (bench/slowclients, one goroutine per connection, pinned to the load core):
#   slowbody  R.U.D.Y. / slowhttptest -B: POST /sink announcing Content-Length: 8192, then
#             4 bytes every 10 s, forever
#   slowread  slowhttptest -X: GET /bytes?n=1048576 with SO_RCVBUF 4096, reading 4 bytes a second
#   slowhead  slowloris, slowhttptest -H: GET / HTTP/1.1 and Host, then 4 bytes of further
#             header lines (X-a: b) a second, never the empty line that ends the head;
#             Gozer ends it after server.header_read_timeout (10 s), so it reconnects often
# Each connection the server ends is recorded (status, X-Gozer-Status, close or reset, time
# alive) and replaced, so that SLOW_CONNS stay attacking.
#
# For each attack (SLOW_KINDS), with a fresh Gozer each time so that they do not mix:
#   1. the ordinary client alone for BASE_SECS: closed-loop keep-alive GET / (SLOW_CONC
#      clients from 127.0.0.1) -> the baseline
#   2. the attacker starts; we wait until it holds SLOW_CONNS connections (at most RAMP_SECS)
#   3. the ordinary client again for ATTACK_SECS, while every second we read Gozer's RSS
#      (VmRSS), its open files (/proc/PID/fd), its established connections to the origins
#      (ss, by destination port: nothing else connects to them) and its CPU time
#   4. the attacker stops and prints its summary (connections opened, closed by the server
#      and how, time alive, its own CPU time)
# Then one table per attack and one at a glance: stdout and bench/results/slowclients-latest.txt.
#
# Layout: Gozer pinned to core 0 (SLOW_EVENT_LOOPS event loops, 1 by default; GOMAXPROCS
# unset), everything else (two demo-origin servers, the attacker, the ordinary client, this
# script's sampling) pinned to core 1. Gozer's config is conf/gozer.yaml's (what `make run`
# uses) with: listeners on free loopback ports, origin "demo" = both demo-origin servers,
# access log off, log level warn, no Lua filters, event_loops SLOW_EVENT_LOOPS, drain_timeout
# 2s. It uses only keys conf/gozer.yaml has; newer ones go in EXTRA_SERVER_YAML.
#
# Knobs (environment):
#   SLOW_KINDS="slowbody slowread slowhead"  attacks to run, in this order
#   SLOW_CONNS=4000         attacking connections
#   BASE_SECS=15            ordinary client alone
#   ATTACK_SECS=60          ordinary client under attack
#   RAMP_SECS=20            longest wait for the attacker to hold SLOW_CONNS connections
#   WARM_SECS=2             ordinary warm-up after each Gozer start (not reported)
#   SLOW_CONC=16            ordinary clients (keep-alive connections)
#   SLOW_ORDINARY_RATE=0    0: the ordinary clients run a closed loop (each sends its next
#                           request when the last is answered: the most the layout serves).
#                           N: an open loop at N requests/s in all, on a fixed schedule, the
#                           latency timed from when each was due. On this 2-core layout the
#                           ordinary client shares core 1 with the attacker, so a closed loop's
#                           rate under attack is partly the client's lost share of that core;
#                           an open loop below the baseline's capacity measures Gozer instead.
#   SLOW_PATH=/             ordinary request path
#   SLOW_SRC=127.0.0.2-127.0.0.17   attack source addresses (round-robin)
#   SLOW_RATE=1000          attack: new connections per second at most (first ones and reconnects)
#   SLOW_BODY_EVERY=10s SLOW_READ_EVERY=1s SLOW_HEAD_EVERY=1s SLOW_BYTES=4   attack pace
#   SLOW_BODY_PATH=/sink SLOW_READ_PATH=/bytes?n=1048576   what the attacks ask for
#   SLOW_EVENT_LOOPS=1      Gozer's server.event_loops
#   SLOW_GOZER_REV          build Gozer from this git revision (git archive) instead of the
#                           working tree, e.g. SLOW_GOZER_REV=HEAD for the committed state
#   SLOW_GOZER_LOG_LEVEL=warn
#   EXTRA_SERVER_YAML       lines appended under server: in Gozer's config, separated by
#                           newlines or ";" (a key given here replaces the script's own), e.g.
#                           EXTRA_SERVER_YAML='max_connections_per_ip: 64; min_body_rate: 1KiB'
#                           (nested values in flow style: 'status_headers: { expose: all }')
#   SLOW_PORT_BASE=19000    Gozer on BASE, origins on BASE+1 and BASE+2, admin on BASE+3 (the
#                           next free block of 10 if one is taken)
#   SLOW_NOFILE=65536       open-file limit to ask for; the run needs 2 x SLOW_CONNS + 1000
#   SLOW_ORDINARY_NICE=-10  niceness of the ordinary client on the shared load core (see ordinary())
#   SLOW_QUIET_WAIT=30      before each attack, wait up to this many seconds for other jobs on
#                           the two cores to calm down to SLOW_OTHER_CPU_MAX (10) % of a core;
#                           the report marks a phase they disturbed anyway
#   SLOW_KEEP_TMP=1         keep the temp dir (configs, logs, samples, raw JSON)
#
# Exit status: non-zero when the harness failed (a build, an origin or Gozer not starting,
# the open-file limit too low, a listener left behind). Gozer doing badly, or dying under
# attack, is a result: the report says so.
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

SLOW_KINDS=${SLOW_KINDS:-slowbody slowread slowhead}
SLOW_CONNS=${SLOW_CONNS:-4000}
BASE_SECS=${BASE_SECS:-15}
ATTACK_SECS=${ATTACK_SECS:-60}
RAMP_SECS=${RAMP_SECS:-20}
WARM_SECS=${WARM_SECS:-2}
SLOW_CONC=${SLOW_CONC:-16}
SLOW_ORDINARY_RATE=${SLOW_ORDINARY_RATE:-0}
SLOW_PATH=${SLOW_PATH:-/}
SLOW_SRC=${SLOW_SRC:-127.0.0.2-127.0.0.17}
SLOW_RATE=${SLOW_RATE:-1000}
SLOW_BODY_EVERY=${SLOW_BODY_EVERY:-10s}
SLOW_READ_EVERY=${SLOW_READ_EVERY:-1s}
SLOW_HEAD_EVERY=${SLOW_HEAD_EVERY:-1s}
SLOW_BYTES=${SLOW_BYTES:-4}
SLOW_EVENT_LOOPS=${SLOW_EVENT_LOOPS:-1}
SLOW_GOZER_REV=${SLOW_GOZER_REV:-}
SLOW_GOZER_LOG_LEVEL=${SLOW_GOZER_LOG_LEVEL:-warn}
EXTRA_SERVER_YAML=${EXTRA_SERVER_YAML:-}
SLOW_PORT_BASE=${SLOW_PORT_BASE:-19000}
SLOW_NOFILE=${SLOW_NOFILE:-65536}
SLOW_KEEP_TMP=${SLOW_KEEP_TMP:-0}
SLOW_QUIET_WAIT=${SLOW_QUIET_WAIT:-30}
SLOW_OTHER_CPU_MAX=${SLOW_OTHER_CPU_MAX:-10}
SLOW_ORDINARY_NICE=${SLOW_ORDINARY_NICE:--10}
SLOW_BODY_PATH=${SLOW_BODY_PATH:-/sink}              # demo-origin reads the whole body, then answers
SLOW_READ_PATH=${SLOW_READ_PATH:-/bytes?n=1048576} # demo-origin sends 1 MiB
BODY_CONTENT_LENGTH=8192
READ_RCVBUF=4096

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh
for f in log warn die ensure_cmds bg_start stop_pid stop_all_started bench_exit_setup alive \
  cpu_ticks wait_http port_in_use check_ports_released; do
  declare -F "$f" >/dev/null || { echo "bench/lib/common.sh no longer defines $f, which bench/slowclients.sh uses" >&2; exit 1; }
done

read -r -a KINDS <<<"$SLOW_KINDS"
((${#KINDS[@]})) || { echo "SLOW_KINDS is empty" >&2; exit 2; }
for k in "${KINDS[@]}"; do
  case $k in slowbody | slowread | slowhead) ;; *) echo "unknown attack '$k' in SLOW_KINDS (slowbody, slowread, slowhead)" >&2; exit 2 ;; esac
done
for v in SLOW_CONNS BASE_SECS ATTACK_SECS RAMP_SECS WARM_SECS SLOW_CONC SLOW_EVENT_LOOPS SLOW_QUIET_WAIT SLOW_OTHER_CPU_MAX; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a whole number, not '${!v}'" >&2; exit 2; }
done

# A revision is named by its commit in the report and its command: HEAD moves.
SLOW_GOZER_REV_ASKED=$SLOW_GOZER_REV
if [[ -n $SLOW_GOZER_REV ]]; then
  SLOW_GOZER_REV=$(git rev-parse --short "$SLOW_GOZER_REV^{commit}" 2>/dev/null) ||
    { echo "SLOW_GOZER_REV=$SLOW_GOZER_REV_ASKED is not a git revision" >&2; exit 2; }
fi

# The command that reproduces this run: the main knobs always, the others when changed.
COMMAND="SLOW_KINDS=\"$SLOW_KINDS\" SLOW_CONNS=$SLOW_CONNS BASE_SECS=$BASE_SECS ATTACK_SECS=$ATTACK_SECS"
for kv in "SLOW_CONC 16" "SLOW_EVENT_LOOPS 1" "RAMP_SECS 20" "WARM_SECS 2" "SLOW_PATH /" \
  "SLOW_SRC 127.0.0.2-127.0.0.17" "SLOW_RATE 1000" "SLOW_BODY_EVERY 10s" "SLOW_READ_EVERY 1s" "SLOW_HEAD_EVERY 1s" "SLOW_BYTES 4" \
  "SLOW_BODY_PATH /sink" "SLOW_READ_PATH /bytes?n=1048576" "SLOW_GOZER_LOG_LEVEL warn" "SLOW_ORDINARY_NICE -10" "SLOW_GOZER_REV " "EXTRA_SERVER_YAML "; do
  name=${kv%% *}
  [[ ${!name} == "${kv#* }" ]] || COMMAND+=" $name='${!name}'"
done
COMMAND+=" bash bench/slowclients.sh"

# --- machine, limits, temp dir, cleanup --------------------------------------------------

command -v go >/dev/null || die "go is not on PATH"
ensure_cmds curl:curl taskset:util-linux ss:iproute2 pgrep:procps awk:gawk

# Gozer holds one descriptor per attacking connection and, while a request is being
# proxied, one more towards the origin; the attacker one per connection.
NEED_NOFILE=$((2 * SLOW_CONNS + 1000))
if ! ulimit -n "$SLOW_NOFILE" 2>/dev/null; then
  HARD=$(ulimit -Hn)
  if [[ $HARD == unlimited ]] || ((HARD >= NEED_NOFILE)); then
    ulimit -n "$HARD"
    warn "could not raise the open-file limit to $SLOW_NOFILE (hard limit $HARD, no CAP_SYS_RESOURCE?): using $(ulimit -n), enough for SLOW_CONNS=$SLOW_CONNS"
  else
    die "the open-file limit cannot be raised to $SLOW_NOFILE, and its hard limit $HARD is below the $NEED_NOFILE that SLOW_CONNS=$SLOW_CONNS needs (2 per attacking connection + 1000): raise the hard limit (as root: ulimit -Hn; in a container: --ulimit nofile=65536) or lower SLOW_CONNS"
  fi
fi
NOFILE=$(ulimit -n)
if [[ $NOFILE != unlimited ]] && ((NOFILE < NEED_NOFILE)); then die "open-file limit $NOFILE < $NEED_NOFILE needed"; fi

NCPU=$(nproc) # before this shell pins itself to one core, which nproc would then count
if ((NCPU >= 2)); then
  PROXY_CPU=0 LOADGEN_CPU=1
else
  PROXY_CPU=0 LOADGEN_CPU=0
  warn "one core only: Gozer and the load side share it; ratios still mean something, absolute figures do not"
fi

WORK=$(mktemp -d /tmp/gozer-slowclients.XXXXXX)
bench_exit_setup "$SLOW_KEEP_TMP" # EXIT/INT/TERM trap: stop everything started, guardian

# forget_pid PID: a process we waited for is gone; drop it so that the cleanup never
# signals a later process that happens to get the same pid.
forget_pid() {
  local p=$1 x keep=()
  for x in "${STARTED_PIDS[@]}"; do [[ $x == "$p" ]] || keep+=("$x"); done
  STARTED_PIDS=("${keep[@]}")
  printf '%s\n' "${STARTED_PIDS[@]}" >"$PIDS_FILE"
}

# Ports: 4 in a block of 10 nobody listens on.
pick_ports() {
  local base=$SLOW_PORT_BASE i p busy
  for ((i = 0; i < 20; i++, base += 10)); do
    busy=0
    for ((p = base; p < base + 4; p++)); do
      if port_in_use "$p"; then busy=1; break; fi
    done
    ((busy)) || { PORT_BASE=$base; return 0; }
  done
  die "no free block of 4 ports from $SLOW_PORT_BASE"
}
pick_ports
GOZER_PORT=$PORT_BASE
ORIGIN1_PORT=$((PORT_BASE + 1))
ORIGIN2_PORT=$((PORT_BASE + 2))
ADMIN_PORT=$((PORT_BASE + 3))
PORTS=("$GOZER_PORT" "$ORIGIN1_PORT" "$ORIGIN2_PORT" "$ADMIN_PORT")

# --- build -------------------------------------------------------------------------------

if [[ -n $SLOW_GOZER_REV ]]; then
  src=$WORK/gozer-src
  mkdir -p "$src"
  git archive "$SLOW_GOZER_REV" | tar -x -C "$src" || die "git archive $SLOW_GOZER_REV failed"
  log "building gozer at $SLOW_GOZER_REV"
  (cd "$src" && go build -o "$WORK/gozer" ./gateway/cmd/gozer) >"$WORK/build.log" 2>&1 ||
    { cat "$WORK/build.log" >&2; die "gozer at $SLOW_GOZER_REV does not build"; }
  GOZER_REV="$SLOW_GOZER_REV (SLOW_GOZER_REV=$SLOW_GOZER_REV_ASKED, committed tree only)"
else
  log "building gozer (working tree)"
  go build -o "$WORK/gozer" ./gateway/cmd/gozer >"$WORK/build.log" 2>&1 ||
    { cat "$WORK/build.log" >&2; die "gozer does not build"; }
  GOZER_REV="$(git describe --always --dirty 2>/dev/null || echo 'no git') (working tree)"
fi
log "building demo-origin and bench/slowclients"
go build -o "$WORK/demo-origin" ./gateway/cmd/demo-origin >>"$WORK/build.log" 2>&1 ||
  { cat "$WORK/build.log" >&2; die "demo-origin does not build"; }
go build -o "$WORK/slowclients" ./bench/slowclients >>"$WORK/build.log" 2>&1 ||
  { cat "$WORK/build.log" >&2; die "bench/slowclients does not build"; }

# From here on this shell and all it starts run on the load core; Gozer alone is moved
# to its own. The sampling's forks then never take Gozer's core.
taskset -cp "$LOADGEN_CPU" $$ >/dev/null

# --- origins, Gozer's config -------------------------------------------------------------

ORIGIN_PIDS=()
for p in "$ORIGIN1_PORT" "$ORIGIN2_PORT"; do
  bg_start "$WORK/origin-$p.log" "$WORK/demo-origin" -addr "127.0.0.1:$p" -name "o$p"
  ORIGIN_PIDS+=("$BG_PID")
  wait_http "demo-origin :$p" "$BG_PID" "http://127.0.0.1:$p/status?code=200" 15 "$WORK/origin-$p.log" ||
    die "demo-origin on :$p did not start"
done

# server_yaml: the server section: Gozer's defaults (the values conf/gozer.yaml spells out,
# `make run`'s, including the slow-client and per-client settings of the Gozer being run: a
# build from SLOW_GOZER_REV gets its own revision's defaults), one event loop, a quick drain;
# less any key EXTRA_SERVER_YAML sets, then EXTRA_SERVER_YAML's lines.
server_yaml() {
  local -a own=(
    "event_loops: $SLOW_EVENT_LOOPS"
    "drain_timeout: 2s" # conf: 15s; only makes the stop between attacks quicker
  )
  local -a extra=()
  local line key
  if [[ -n $EXTRA_SERVER_YAML ]]; then
    while IFS= read -r line; do
      line=${line#"${line%%[![:space:]]*}"}
      [[ -n $line ]] && extra+=("$line")
    done < <(tr ';' '\n' <<<"$EXTRA_SERVER_YAML")
  fi
  local -A overridden=()
  for line in "${extra[@]}"; do overridden[${line%%:*}]=1; done
  for line in "${own[@]}"; do
    key=${line%%:*}
    [[ -n ${overridden[$key]:-} ]] || printf '  %s\n' "$line"
  done
  for line in "${extra[@]}"; do printf '  %s  # EXTRA_SERVER_YAML\n' "$line"; done
}

GOZER_YAML=$WORK/gozer.yaml
cat >"$GOZER_YAML" <<CONF
# Written by bench/slowclients.sh: conf/gozer.yaml (make run's config) on loopback ports,
# with the origin demo on both demo-origin servers, access log off and no Lua filters.
listeners:
  proxy: { addr: "127.0.0.1:$GOZER_PORT" }
  admin: { addr: "127.0.0.1:$ADMIN_PORT" }
server:
$(server_yaml)
log:
  level: $SLOW_GOZER_LOG_LEVEL
  access_log: "off"
# conf/gozer.yaml loads scripts/ (push auth, robots.txt): none of it is on this path.
filters: { dir: "" }
origins:
  demo:
    servers: ["127.0.0.1:$ORIGIN1_PORT", "127.0.0.1:$ORIGIN2_PORT"]
    connect_timeout: 1s
    read_timeout: 15s
    retries: 1
    max_connections_per_server: 1024
    max_idle_per_server: 64
    idle_timeout: 60s
routes:
  - path_prefix: "/"
    origin: demo
CONF
if ! "$WORK/gozer" -check -config "$GOZER_YAML" >"$WORK/check.log" 2>&1; then
  cat "$WORK/check.log" >&2
  die "Gozer refuses the config $GOZER_YAML (EXTRA_SERVER_YAML='$EXTRA_SERVER_YAML')"
fi

# --- one attack --------------------------------------------------------------------------

# start_gozer DIR: a fresh Gozer on its own core; sets GOZER_PID.
start_gozer() {
  bg_start "$1/gozer.log" taskset -c "$PROXY_CPU" "$WORK/gozer" -config "$GOZER_YAML"
  GOZER_PID=$BG_PID
  wait_http gozer "$GOZER_PID" "http://127.0.0.1:$ADMIN_PORT/healthcheck" 20 "$1/gozer.log" || die "gozer did not start"
  local code
  code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H 'X-Gozer-Debug: 1' "http://127.0.0.1:$GOZER_PORT$SLOW_PATH") || true
  [[ $code == 200 ]] || die "GET $SLOW_PATH through Gozer answered '$code', not 200"
}

# read_counters GOZER_PID: CPU counters, read with bash builtins only (forks on a load
# core that the ordinary client keeps busy would stretch the sampler's second), into
#   C_T       the time of the reading (s, EPOCHREALTIME)
#   C_BUSY0/1 busy ticks of Gozer's core and of the load core (user nice system irq
#             softirq steal, as bench/lib's cores_busy_ticks)
#   C_GOZER   Gozer's utime + stime ("" when GOZER_PID is "" or gone)
#   C_ORIGINS the demo-origin servers' utime + stime (ORIGIN_PIDS)
#   C_OURS    ticks of this shell and all its descendants, with what their children that
#             already ended used (cutime, cstime), so that it does not drop when a short
#             process (ss, a finished client) is reaped: every process of this run. The
#             cores' busy time beyond it is other jobs on the machine.
read_counters() {
  local gpid=$1 d line rest pid k v changed
  local -a f
  local -A parent=() ticks=() mine=()
  C_BUSY0="" C_BUSY1="" C_GOZER="" C_ORIGINS=0
  while read -r k rest; do
    case $k in
      "cpu$PROXY_CPU" | "cpu$LOADGEN_CPU")
        read -r -a f <<<"$rest"
        v=$((f[0] + f[1] + f[2] + f[5] + f[6] + f[7]))
        if [[ $k == "cpu$PROXY_CPU" ]]; then C_BUSY0=$v; fi
        if [[ $k == "cpu$LOADGEN_CPU" ]]; then C_BUSY1=$v; fi
        ;;
      cpu*) ;;
      *) break ;; # the per-core lines come first
    esac
  done </proc/stat
  C_T=$EPOCHREALTIME
  # Fields after the ") " that ends the command name: ppid is the 2nd, utime stime
  # cutime cstime the 12th to 15th.
  for d in /proc/[0-9]*; do
    { read -r line <"$d/stat"; } 2>/dev/null || continue
    pid=${d#/proc/}
    rest=${line##*) }
    read -r -a f <<<"$rest"
    parent[$pid]=${f[1]}
    ticks[$pid]=$((f[11] + f[12] + f[13] + f[14]))
    if [[ $pid == "$gpid" ]]; then C_GOZER=$((f[11] + f[12])); fi
    if [[ " ${ORIGIN_PIDS[*]} " == *" $pid "* ]]; then C_ORIGINS=$((C_ORIGINS + f[11] + f[12])); fi
  done
  mine[$$]=1
  C_OURS=${ticks[$$]:-0}
  changed=1
  while ((changed)); do # the tree is a few levels deep: a few passes
    changed=0
    for pid in "${!parent[@]}"; do
      if [[ -z ${mine[$pid]:-} && -n ${mine[${parent[$pid]}]:-} ]]; then
        mine[$pid]=1
        C_OURS=$((C_OURS + ticks[$pid]))
        changed=1
      fi
    done
  done
}

# sampler PID OUT PHASEFILE: one line a second until PID exits (read by
# bench/slowclients/report.go).
sampler() {
  local pid=$1 out=$2 phasefile=$3 k v rest rss fds oc mem now next phase
  local -a f fdlist
  printf 't\tphase\trss_kib\tfds\torigin_conns\tgozer_ticks\ttcp_mem_pages\tcore%s_busy_ticks\tcore%s_busy_ticks\tour_ticks\torigin_ticks\n' \
    "$PROXY_CPU" "$LOADGEN_CPU" >"$out"
  next=${EPOCHREALTIME%.*}
  while alive "$pid"; do
    read_counters "$pid"
    rss="" mem=""
    { while read -r k v _; do if [[ $k == VmRSS: ]]; then rss=$v; fi; done <"/proc/$pid/status"; } 2>/dev/null || true
    fdlist=("/proc/$pid/fd/"*)
    fds=${#fdlist[@]}
    # Gozer's connections to the origins: nothing else connects to their ports (the
    # readiness checks are over), so no per-pid matching is needed.
    oc=$(ss -Htn state established "( dport = :$ORIGIN1_PORT or dport = :$ORIGIN2_PORT )" 2>/dev/null | wc -l) || oc=""
    while read -r k rest; do
      [[ $k == TCP: ]] || continue
      read -r -a f <<<"$rest"
      for ((v = 0; v < ${#f[@]} - 1; v++)); do if [[ ${f[v]} == mem ]]; then mem=${f[v + 1]}; fi; done
    done </proc/net/sockstat
    read -r phase <"$phasefile" || phase=""
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$C_T" "$phase" "$rss" "$fds" "$oc" \
      "$C_GOZER" "$mem" "$C_BUSY0" "$C_BUSY1" "$C_OURS" "$C_ORIGINS" >>"$out"
    # The next whole second, so that a slow sample does not stretch the period.
    next=$((next + 1))
    now=$EPOCHREALTIME
    ((${now%.*} < next)) || next=$((${now%.*} + 1))
    rest=$(((next - ${now%.*}) * 1000000 - 10#${now#*.}))
    printf -v rest '%d.%06d' $((rest / 1000000)) $((rest % 1000000))
    sleep "$rest"
  done
}

# wait_quiet: before an attack, wait up to SLOW_QUIET_WAIT seconds for other jobs on the
# two cores to use at most SLOW_OTHER_CPU_MAX % of a core (sampled over a second each).
wait_quiet() {
  local end=$((SECONDS + SLOW_QUIET_WAIT)) start=$SECONDS t0 b0 o0 other
  while :; do
    read_counters ""
    t0=$C_T b0=$((C_BUSY0 + C_BUSY1)) o0=$C_OURS
    sleep 1
    read_counters ""
    # % of a core = other ticks * 100 / CLK_TCK / seconds; EPOCHREALTIME has 6 decimals.
    other=$(((C_BUSY0 + C_BUSY1 - b0 - C_OURS + o0) * 100000000 / CLK_TCK / (10#${C_T/./} - 10#${t0/./})))
    if ((other <= SLOW_OTHER_CPU_MAX)); then
      if ((SECONDS - start > 1)); then log "  other jobs calmed down after $((SECONDS - start)) s"; fi
      return 0
    fi
    if ((SECONDS >= end)); then
      warn "other jobs still use ${other}% of a core on cores $PROXY_CPU,$LOADGEN_CPU after ${SLOW_QUIET_WAIT}s: measuring anyway (the report says so)"
      return 0
    fi
    log "  other jobs use ${other}% of a core on cores $PROXY_CPU,$LOADGEN_CPU: waiting (up to ${SLOW_QUIET_WAIT}s)"
  done
}

# admin_origins OUT: Gozer's own view (requests ended per origin, by status cause); the
# report shows what changed over the attack window. Best effort: "" when it does not answer.
admin_origins() {
  curl -s -m 5 "http://127.0.0.1:$ADMIN_PORT/admin/origins" >"$1" 2>/dev/null || : >"$1"
}

# ordinary SECS OUT: the ordinary client in the background (so that Ctrl-C is handled at
# once), waited for. It runs at nice SLOW_ORDINARY_NICE (-10): on the shared load core the
# attacker and the origins' work for the attack must not starve the client that measures,
# or its drop would be the load generator's; the origins still serve the attack (as real
# ones would), so a request waiting behind attack work at the origin still counts.
ordinary() {
  local secs=$1 out=$2 pid rc=0
  bg_start "$out" nice -n "$SLOW_ORDINARY_NICE" "$WORK/slowclients" -mode ordinary -target "127.0.0.1:$GOZER_PORT" \
    -path "$SLOW_PATH" -c "$SLOW_CONC" -ordinary-rate "$SLOW_ORDINARY_RATE" -d "${secs}s"
  pid=$BG_PID
  wait "$pid" || rc=$?
  forget_pid "$pid"
  ((rc == 0)) || die "the ordinary client failed (status $rc): $(tail -n 3 "$out")"
  log "  ordinary ${secs}s: $(grep '^{' "$out" | tail -n 1)"
}

run_kind() {
  local kind=$1 dir=$WORK/$1 apid spid end
  mkdir -p "$dir"
  echo base >"$dir/phase"
  wait_quiet
  log "== $kind: fresh gozer on core $PROXY_CPU"
  start_gozer "$dir"
  bg_start "$dir/sampler.log" sampler "$GOZER_PID" "$dir/samples.tsv" "$dir/phase"
  spid=$BG_PID
  echo warm >"$dir/phase"
  ordinary "$WARM_SECS" "$dir/warm.json"
  echo base >"$dir/phase"
  log "  baseline: ordinary client alone for ${BASE_SECS}s"
  ordinary "$BASE_SECS" "$dir/base.json"

  local -a args=(-mode "$kind" -target "127.0.0.1:$GOZER_PORT" -n "$SLOW_CONNS" -src "$SLOW_SRC"
    -rate "$SLOW_RATE" -bytes "$SLOW_BYTES")
  case $kind in
    slowbody) args+=(-path "$SLOW_BODY_PATH" -every "$SLOW_BODY_EVERY" -content-length "$BODY_CONTENT_LENGTH") ;;
    slowread) args+=(-path "$SLOW_READ_PATH" -every "$SLOW_READ_EVERY" -rcvbuf "$READ_RCVBUF") ;;
    slowhead) args+=(-every "$SLOW_HEAD_EVERY") ;; # GET /: the head never ends, so no route is reached
  esac
  echo ramp >"$dir/phase"
  log "  attacker: ${args[*]}"
  bg_start "$dir/attacker.log" "$WORK/slowclients" "${args[@]}"
  apid=$BG_PID
  end=$((SECONDS + RAMP_SECS))
  while ! grep -qs '^ready ' "$dir/attacker.log"; do
    alive "$apid" || die "the attacker exited: $(tail -n 3 "$dir/attacker.log")"
    if ((SECONDS >= end)); then
      warn "the attacker does not hold $SLOW_CONNS connections after ${RAMP_SECS}s: $(grep '^t=' "$dir/attacker.log" | tail -n 1); measuring anyway"
      break
    fi
    sleep 0.2
  done
  log "  attacker: $(grep -E '^(ready|t=)' "$dir/attacker.log" | tail -n 1) (ramp: $(grep '^ready ' "$dir/attacker.log" || echo 'not all open'))"

  echo attack >"$dir/phase"
  admin_origins "$dir/origins-0.json"
  log "  under attack: ordinary client for ${ATTACK_SECS}s"
  ordinary "$ATTACK_SECS" "$dir/attack.json"
  admin_origins "$dir/origins-1.json"
  echo stop >"$dir/phase"

  local survived=yes exit_note=""
  if ! alive "$GOZER_PID"; then
    local rc=0
    wait "$GOZER_PID" 2>/dev/null || rc=$?
    survived=no exit_note="exit status $rc; last log line: $(tail -n 1 "$dir/gozer.log" | cut -c1-200)"
    warn "gozer exited during the $kind attack: $exit_note"
  fi
  # The attacker prints its summary on SIGTERM, with its connections still open.
  kill -TERM "$apid" 2>/dev/null || true
  end=$((SECONDS + 15))
  while alive "$apid" && ((SECONDS < end)); do sleep 0.1; done
  stop_pid "$apid"
  forget_pid "$apid"
  log "  attacker summary: $(grep '^{' "$dir/attacker.log" | tail -n 1)"
  cp "$dir/attacker.log" "$dir/attacker.json"

  stop_pid "$spid"
  forget_pid "$spid"
  stop_pid "$GOZER_PID"
  forget_pid "$GOZER_PID"
  {
    printf 'conns\t%s\n' "$SLOW_CONNS"
    printf 'base_secs\t%s\n' "$BASE_SECS"
    printf 'attack_secs\t%s\n' "$ATTACK_SECS"
    printf 'content_length\t%s\n' "$BODY_CONTENT_LENGTH"
    printf 'rcvbuf\t%s\n' "$READ_RCVBUF"
    printf 'origin_ports\t:%s, :%s\n' "$ORIGIN1_PORT" "$ORIGIN2_PORT"
    printf 'gozer_survived\t%s\n' "$survived"
    printf 'gozer_exit\t%s\n' "$exit_note"
    printf 'proxy_cpu\t%s\n' "$PROXY_CPU"
    printf 'load_cpu\t%s\n' "$LOADGEN_CPU"
    printf 'other_cpu_max\t%s\n' "$SLOW_OTHER_CPU_MAX"
    printf 'tcp_mem\t%s\n' "$(tr -s '\t ' '  ' </proc/sys/net/ipv4/tcp_mem)"
  } >"$dir/meta.tsv"
}

LOADAVG0=$(cut -d' ' -f1-3 /proc/loadavg)
for k in "${KINDS[@]}"; do run_kind "$k"; done

# --- report ------------------------------------------------------------------------------

report() {
  echo "# Gozer under slow-client attacks"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), gozer $GOZER_REV, $NCPU × $(lscpu 2>/dev/null | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print $2; exit }'), Linux $(uname -r), load average at the start $LOADAVG0."
  echo
  echo "Command: \`$COMMAND\`"
  echo
  echo "Layout: Gozer pinned to core $PROXY_CPU (event_loops $SLOW_EVENT_LOOPS); on core $LOADGEN_CPU: two demo-origin servers (origin \`demo\`),"
  echo "the attacker (bench/slowclients, from $SLOW_SRC, at most $SLOW_RATE new connections/s), the ordinary client ($SLOW_CONC $( ((SLOW_ORDINARY_RATE > 0)) && echo "open-loop (${SLOW_ORDINARY_RATE} requests/s in all, latency from when each was due)" || echo closed-loop)"
  echo "keep-alive clients, GET $SLOW_PATH from 127.0.0.1, at nice $SLOW_ORDINARY_NICE so that the attack's load on that core does not starve it) and the sampling. Open-file limit $NOFILE. Each attack ran against a fresh Gozer:"
  echo "baseline ${BASE_SECS} s alone, then the attacker (up to ${RAMP_SECS} s to hold its connections), then ${ATTACK_SECS} s of ordinary traffic under attack."
  echo "\"peak under attack\" is over the ramp and the attack; RSS growth per attacking connection divides by the most held at once."
  echo
  "$WORK/slowclients" -mode report -kind "${KINDS[*]}" -dir "$WORK" -clk-tck "$CLK_TCK"
  echo "Gozer's config (written by the script, accepted by \`gozer -check\`):"
  echo
  echo '```yaml'
  cat "$GOZER_YAML"
  echo '```'
}

stop_all_started
HARNESS_FAILED=0
check_ports_released "${PORTS[@]}"
mkdir -p bench/results
RESULT=bench/results/slowclients-latest.txt
report | tee "$RESULT"
cp "$RESULT" "bench/results/slowclients-$(date +%Y%m%d-%H%M%S).txt"
log "written to $RESULT"
((HARNESS_FAILED == 0)) || die "a listener was left behind"
