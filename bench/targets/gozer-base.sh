# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# Gozer as it was at BENCH_BASE_REV (a git revision), with the gozer target's config:
# the working tree and an earlier revision side by side in one run, so that a change's
# cost per request and per idle connection is a ratio of the same rounds, not of two
# runs on a shared machine. Not in any suite: name it, e.g.
#   BENCH_BASE_REV=HEAD~1 BENCH_TARGETS="gozer gozer-base nginx" BENCH_IDLE_TARGETS="gozer gozer-base nginx" bash bench/run.sh

GOZER_BASE_PORT=${GOZER_BASE_PORT:-18105} # 18087-18088 are gozer-lua3's
GOZER_BASE_ADMIN_PORT=${GOZER_BASE_ADMIN_PORT:-18106}
BENCH_PORTS+=("$GOZER_BASE_PORT" "$GOZER_BASE_ADMIN_PORT")
BENCH_BASE_REV=${BENCH_BASE_REV:-}
GOZER_BASE_BUILT=""

# gozer_base_build builds BENCH_BASE_REV's gateway into $WORK/gozer-base, from a copy
# of that revision's tree (git archive: no worktree left behind).
gozer_base_build() {
  case $GOZER_BASE_BUILT in
    ok) return 0 ;;
    failed) return 1 ;;
  esac
  GOZER_BASE_BUILT=failed
  if [[ -z $BENCH_BASE_REV ]]; then
    WAIT_FAIL_REASON="set BENCH_BASE_REV to the git revision to compare with"
    return 1
  fi
  local src=$WORK/gozer-base-src
  mkdir -p "$src"
  if ! git -C "$REPO" archive "$BENCH_BASE_REV" | tar -x -C "$src"; then
    WAIT_FAIL_REASON="git archive $BENCH_BASE_REV failed"
    return 1
  fi
  log "building gozer at $BENCH_BASE_REV"
  if ! (cd "$src" && go build -o "$WORK/gozer-base" ./gateway/cmd/gozer) >"$WORK/gozer-base-build.log" 2>&1; then
    WAIT_FAIL_REASON="$BENCH_BASE_REV does not build: $(head -n 3 "$WORK/gozer-base-build.log" | tr '\n' ' ')"
    return 1
  fi
  GOZER_BASE_BUILT=ok
}

target_gozer-base_start() {
  gozer_base_build || return 1
  # A revision from before the per-client-IP caps refuses their keys (and has no caps).
  local per_ip=$GOZER_PER_IP_OFF
  grep -rqs max_connections_per_ip "$WORK/gozer-base-src/gateway/config" || per_ip=""
  GOZER_CONF_PER_IP=$per_ip gozer_start gozer-base "$GOZER_BASE_PORT" "$GOZER_BASE_ADMIN_PORT" "" "$WORK/gozer-base" || return 1
  T_WORK=plain
  T_DESC="Gozer at $(git -C "$REPO" rev-parse --short "$BENCH_BASE_REV"): event_loops 1, GOMAXPROCS=${GOZER_GOMAXPROCS:-unset (Gozer: event loops + 1)}, access_log off, no Lua filters (filters.dir \"\")"
}
