#!/usr/bin/env bash
# Each thread of a running process: CPU ticks and context switches over an interval, the
# count bench/README.md reads to see where a proxy's switches come from (Go's sysmon, a
# loop's thread, a spinning thread woken by the scheduler).
#
#   bash bench/threads.sh PID [SECONDS]     (SECONDS: 4)
#
# Per thread: its id, name, CPU ticks (utime+stime, CLK_TCK a second) and voluntary /
# involuntary context switches over the interval, then the same per second. Threads that did
# nothing in the interval are left out. Read with the load running; thread ids are stable
# for a Go process, and the second-lowest is usually sysmon (runtime.main starts it first).
set -euo pipefail
pid=${1:?usage: bench/threads.sh PID [SECONDS]}
secs=${2:-4}
snap() {
  local t
  for t in /proc/"$pid"/task/*; do
    [[ -r $t/stat ]] || continue
    printf '%s %s %s %s\n' "${t##*/}" \
      "$(awk '{sub(/.*\) /, ""); print $12 + $13}' "$t/stat")" \
      "$(awk '/^voluntary_ctxt/ {print $2}' "$t/status")" \
      "$(awk '/^nonvoluntary_ctxt/ {print $2}' "$t/status")"
  done | sort
}
a=$(snap); sleep "$secs"; b=$(snap)
printf '%-8s %-16s %8s %10s %10s %10s %10s\n' tid name ticks vol invol "vol/s" "invol/s"
join <(echo "$a") <(echo "$b") | while read -r tid c0 v0 i0 c1 v1 i1; do
  [[ $((c1 - c0 + v1 - v0 + i1 - i0)) -gt 0 ]] || continue
  printf '%-8s %-16s %8d %10d %10d %10.0f %10.0f\n' "$tid" "$(cat "/proc/$pid/task/$tid/comm" 2>/dev/null || echo gone)" \
    $((c1 - c0)) $((v1 - v0)) $((i1 - i0)) "$(echo "($v1 - $v0) / $secs" | bc -l)" "$(echo "($i1 - $i0) / $secs" | bc -l)"
done
