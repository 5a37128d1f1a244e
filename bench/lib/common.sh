# shellcheck shell=bash
# Helpers shared by bench/run.sh and the target files: logging, installing tools,
# starting/stopping background processes, and reading CPU time and RSS from /proc.
# Sourced, never run.

log()  { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
warn() { log "WARNING: $*"; }
die()  { log "FATAL: $*"; exit 1; }

# ensure_cmds CMD:PKG... installs the Debian packages of the commands that are missing.
ensure_cmds() {
  local spec cmd pkg missing=()
  for spec in "$@"; do
    cmd=${spec%%:*} pkg=${spec#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  apt_install "${missing[@]}"
}

# ensure_pkgs PKG... installs the Debian packages that are not installed yet.
ensure_pkgs() {
  local pkg missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  apt_install "${missing[@]}"
}

# apt_install PKG... installs them; apt-get update runs at most once, and only if needed.
APT_UPDATED=0
apt_install() {
  local missing=("$@")
  [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]} and not root: install them first"
  if ((APT_UPDATED == 0)); then
    log "apt-get update (to install ${missing[*]})"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  log "apt-get install -y ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
  # The packages may start their system services (nginx on :80 ...): we leave them alone,
  # they are not ours to stop, they sit idle, and our own instances use their own ports.
}

# raise_nofile N raises the open-file limit towards N; sandboxes often forbid raising the
# hard limit, so fall back to the hard limit and say what we got.
raise_nofile() {
  local want=$1
  if ! ulimit -n "$want" 2>/dev/null; then
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    warn "could not raise open files to $want; using $(ulimit -n) (hard limit)"
  fi
}

# --- processes ---------------------------------------------------------------------------

# Every process we start is recorded here so that the EXIT trap can stop it, and in
# $PIDS_FILE for the guardian (start_guardian) in case the harness dies without its trap.
STARTED_PIDS=()
PIDS_FILE=""

# bg_start LOGFILE CMD... starts CMD in the background with output to LOGFILE and sets BG_PID.
# CMD is usually "taskset -c N prog ...": taskset execs prog, so BG_PID is prog's pid.
bg_start() {
  local logfile=$1; shift
  "$@" >"$logfile" 2>&1 </dev/null &
  BG_PID=$!
  STARTED_PIDS+=("$BG_PID")
  if [[ -n $PIDS_FILE ]]; then echo "$BG_PID" >>"$PIDS_FILE"; fi
}

# start_guardian PIDS_FILE: a watcher that outlives the harness only to stop what it started,
# should the harness be killed in a way its EXIT trap cannot catch (SIGKILL, a signal that
# lands while bash is not ready for it). The trap empties PIDS_FILE once it has done the job.
start_guardian() {
  PIDS_FILE=$1
  : >"$PIDS_FILE"
  local main=$$
  (
    trap '' INT TERM HUP
    while kill -0 "$main" 2>/dev/null; do sleep 0.5; done
    [[ -s $PIDS_FILE ]] || exit 0
    while read -r p; do kill -TERM "$p" 2>/dev/null || true; done <"$PIDS_FILE"
    sleep 2
    while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$PIDS_FILE"
    : >"$PIDS_FILE"
  ) </dev/null >/dev/null 2>&1 &
}

# proc_tree PID prints PID and all its descendants (nginx master + workers, etc.).
# /proc/PID/task/*/children is not always compiled in, so walk with pgrep -P.
proc_tree() {
  local pid=$1 child
  [[ -d /proc/$pid ]] || return 0
  echo "$pid"
  for child in $(pgrep -P "$pid" 2>/dev/null); do proc_tree "$child"; done
}

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# stop_pid PID: TERM the process tree, wait up to 5 s, then KILL whatever is left.
stop_pid() {
  local pid=$1 pids p i
  alive "$pid" || return 0
  mapfile -t pids < <(proc_tree "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}

stop_all_started() {
  local i
  for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${STARTED_PIDS[i]}"; done
  STARTED_PIDS=()
  if [[ -n $PIDS_FILE && -e $PIDS_FILE ]]; then : >"$PIDS_FILE"; fi
}

# --- /proc accounting --------------------------------------------------------------------

# shellcheck disable=SC2034 # used by measure.sh
CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks PID prints utime+stime (clock ticks) summed over PID and its descendants.
cpu_ticks() { proc_split "$1" ticks; }

# proc_split PID prints "utime stime switches" summed over PID and its descendants: CPU
# ticks in user and in kernel mode, and context switches (voluntary + involuntary) of every
# thread (a process's own status line counts only its main thread's); with a second
# argument "ticks", only utime+stime, no thread read. /proc/PID/stat of a process already
# sums all of its threads' ticks. Fields 14 and 15 count from the start of the line; the
# command name (field 2) may hold spaces, so the line is cut after its closing parenthesis
# first: then utime and stime are fields 12 and 13. Read without forks but the process
# tree's, so that the harness stays out of the measured window.
proc_split() {
  local u=0 s=0 n=0 p t k v rest
  local -a f
  for p in $(proc_tree "$1"); do
    read -r rest 2>/dev/null <"/proc/$p/stat" || continue # (a process may end meanwhile)
    rest=${rest##*) }
    read -r -a f <<<"$rest"
    u=$((u + f[11])) s=$((s + f[12]))
    [[ ${2:-} == ticks ]] && continue
    for t in /proc/"$p"/task/*/status; do
      while read -r k v _; do
        case $k in voluntary_ctxt_switches: | nonvoluntary_ctxt_switches:) n=$((n + v)) ;; esac
      done 2>/dev/null <"$t" || true # (a thread may end meanwhile)
    done
  done
  if [[ ${2:-} == ticks ]]; then echo "$((u + s))"; else echo "$u $s $n"; fi
}

# cores_busy_ticks CPU... prints the busy ticks (user nice system irq softirq steal) of
# those cores from /proc/stat: compared with our processes' own ticks it shows CPU time that
# something else (another job on a shared machine) took from the measured cores. softirq
# stays in: a tick that lands in softirq is also charged to the interrupted task's stime.
cores_busy_ticks() {
  local want=" $* "
  awk -v want="$want" '$1 ~ /^cpu[0-9]+$/ && index(want, " " substr($1, 4) " ") {
      s += $2 + $3 + $4 + $7 + $8 + $9 } END { print s + 0 }' /proc/stat
}

# rss_kib PID prints VmRSS (KiB) summed over PID and its descendants.
rss_kib() {
  local total=0 p kb
  for p in $(proc_tree "$1"); do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

# --- readiness ---------------------------------------------------------------------------

# wait_http NAME PID URL DEADLINE_SECONDS [LOG] polls URL until it answers 200. Fails early
# if the process died, and after the deadline; prints the tail of its log either way and
# leaves a one-line reason in WAIT_FAIL_REASON.
WAIT_FAIL_REASON=""
wait_http() {
  local name=$1 pid=$2 url=$3 secs=$4 logfile=${5:-} rc last=""
  local end=$((SECONDS + secs))
  while ((SECONDS < end)); do
    if ! alive "$pid"; then
      rc=0
      wait "$pid" 2>/dev/null || rc=$?
      if [[ -n $logfile ]]; then
        tail -n 20 "$logfile" >&2
        last=$(tail -n 1 "$logfile" | cut -c1-200)
      fi
      WAIT_FAIL_REASON="exited with status $rc before it was ready${last:+; last log line: $last}"
      warn "$name $WAIT_FAIL_REASON"
      return 1
    fi
    if [[ $(curl -s -o /dev/null -m 1 -w '%{http_code}' "$url" 2>/dev/null) == 200 ]]; then
      return 0
    fi
    sleep 0.1
  done
  WAIT_FAIL_REASON="not ready at $url after ${secs}s"
  warn "$name $WAIT_FAIL_REASON"
  if [[ -n $logfile ]]; then tail -n 20 "$logfile" >&2; fi
  return 1
}

# port_in_use PORT: is anything listening on 127.0.0.1:PORT (or the wildcard)?
port_in_use() {
  ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# bench_exit_setup KEEP: what both benches do once $WORK exists. On exit (or Ctrl-C)
# stop wrk if a run is under way and every process started, then remove $WORK unless
# the run failed or KEEP is 1; record the load average at the start; start the guardian
# that stops our processes should this shell be killed.
bench_exit_setup() {
  BENCH_EXIT_KEEP=$1
  trap bench_exit EXIT
  trap 'exit 130' INT TERM
  # shellcheck disable=SC2034 # read by the scripts' reports
  LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
  start_guardian "$WORK/pids"
}

# shellcheck disable=SC2317 # called by the EXIT trap
bench_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n ${WRK_PID:-} ]]; then stop_pid "$WRK_PID"; fi
  stop_all_started
  if ((rc == 0)) && [[ $BENCH_EXIT_KEEP != 1 ]]; then
    rm -rf "$WORK"
  else
    log "configs, logs and raw results kept in $WORK"
  fi
  exit "$rc"
}

# check_ports_released PORT...: after stop_all_started, every port the bench used must
# be free again; one that still has a listener is a harness failure (HARNESS_FAILED=1).
check_ports_released() {
  local p
  for p in "$@"; do
    if port_in_use "$p"; then
      warn "port $p still has a listener after cleanup"
      # shellcheck disable=SC2034 # read by the calling script
      HARNESS_FAILED=1
    fi
  done
}

# pick_by_other reads "VALUE OTHER" lines (a figure of a run, and the % of the proxy's core
# other jobs took during it) and prints the VALUEs that count: those of the runs under
# BENCH_OTHER_CPU_MAX when there are at least NEED_RUNS of them (or all were), else those of
# the NEED_RUNS least disturbed runs. The caller sets both variables.
pick_by_other() {
  awk -v max="$BENCH_OTHER_CPU_MAX" -v need="$NEED_RUNS" '
    { v[NR] = $1; o[NR] = $2 + 0; if (o[NR] <= max) clean++ }
    END {
      if (clean >= need || clean == NR) {
        for (i = 1; i <= NR; i++) if (o[i] <= max) print v[i]
        exit
      }
      for (i = 1; i <= NR; i++) idx[i] = i
      for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++) if (o[idx[j]] < o[idx[i]]) { t = idx[i]; idx[i] = idx[j]; idx[j] = t }
      for (i = 1; i <= need && i <= NR; i++) print v[idx[i]]
    }'
}
