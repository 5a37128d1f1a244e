#!/usr/bin/env bash
# The wake-ups a running process makes of its own threads, and why: the count
# bench/README.md ("Thread wake-ups under load") reads to find a proxy's extra context
# switches.
#
#   bash bench/wakeups.sh PID [SECONDS]     (SECONDS: 4; needs perf and root)
#
# Records sched:sched_wakeup (with the waker's stack) and futex syscalls while PID's threads
# run, over the interval, then prints, per woken thread of PID, how many wake-ups came from a
# futex wake (Go: one of its threads readied work, wakep → startm), a timer (hrtimer: a sleep
# ending, Go's sysmon), or epoll, per second; then the callers behind the futex wakes (the
# first frame that is not the runtime's), which name the code that readied a goroutine.
# perf records an event in the context it happens in: a thread woken by another process
# (data it wrote to a socket this process waits on) or from another core is not counted here;
# bench/threads.sh counts every switch. Read with the load running.
set -euo pipefail
pid=${1:?usage: bench/wakeups.sh PID [SECONDS]}
secs=${2:-4}
data=$(mktemp /tmp/wakeups.XXXXXX)
trap 'rm -f "$data"' EXIT
if ! perf record -q -e sched:sched_wakeup -e syscalls:sys_enter_futex -g -p "$pid" -o "$data" -- sleep "$secs" >"$data.log" 2>&1; then
  echo "wakeups.sh: perf record failed (perf installed? root? tracepoints readable?):" >&2
  cat "$data.log" >&2
  rm -f "$data.log"
  exit 1
fi
rm -f "$data.log"
tids=" $(ls "/proc/$pid/task" | tr '\n' ' ')" # the process's threads: what counts as woken
perf script -i "$data" 2>/dev/null | awk -v tids="$tids" -v secs="$secs" '
  function flush() {
    if (rec && index(tids, " " tid " ")) { n[target " " cause]++; if (cause == "futex") who[waker]++ }
    rec = 0
  }
  /sched:sched_wakeup/ { flush(); rec = 1; target = $0; sub(/.*comm=/, "", target); sub(/ prio.*/, "", target)
                         tid = target; sub(/.*pid=/, "", tid); cause = "other"; waker = ""; seen = 0; next }
  /sys_enter_futex/ { flush(); next }
  rec && /futex_wake/ { if (cause == "other") cause = "futex" }
  rec && /hrtimer_wakeup/ { if (cause == "other") cause = "timer" }
  rec && /ep_poll_callback|ep_autoremove/ { if (cause == "other") cause = "epoll" }
  # The first frame that is neither the runtime nor the kernel: what readied the goroutine.
  rec && cause == "futex" && !seen && NF >= 2 && $2 !~ /^(runtime\.|internal\/runtime|\[|[0-9a-f]+$)/ && $0 !~ /kernel/ { waker = $2; seen = 1 }
  /^$/ { flush() }
  END {
    flush()
    printf "%-34s %-6s %10s %10s\n", "woken thread", "cause", "wakes", "per s"
    cmd = "sort -k4 -rn"
    for (k in n) { split(k, a, " "); printf "%-34s %-6s %10d %10.0f\n", a[1] " " a[2], a[3], n[k], n[k] / secs | cmd }
    close(cmd)
    printf "\nfutex wakes by the first non-runtime frame of the waker (empty: the runtime itself):\n"
    cmd = "sort -rn"
    for (w in who) printf "%8d  %s\n", who[w], w | cmd
    close(cmd)
  }'
