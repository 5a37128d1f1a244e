# shellcheck shell=bash
# How Gozer is built: the one place that says it. Sourced by bench/lib/common.sh and the
# bench scripts that build Gozer, and read by the Makefile (so `make run`, `make test` and
# every bench build the same way). Sourced, never run.
#
# -tags=poll_opt       gnet's poll_opt poller: it finds a connection from the epoll
#                      event's data (a pointer) instead of looking its fd up in a map, and
#                      makes its non-blocking epoll_wait as a raw syscall.
#                      gateway/loop/epolldata_opt.go keeps Gozer's own epoll changes in
#                      step with it; bench/README.md ("Websocket proxying") has the A/B.
# -gcflags=...=-d=checkptr=0
#                      that poller reads its pointer from the packed epoll_event at a
#                      4-byte offset, which -race's pointer checks reject (the CPU does
#                      not mind); the check is off for that one gnet package only.
# GOZER_GOFLAGS set (even empty) in the environment replaces these: GOZER_GOFLAGS= builds
# with gnet's default poller, to compare.
GOZER_GOFLAGS=${GOZER_GOFLAGS-"-tags=poll_opt -gcflags=github.com/panjf2000/gnet/v2/pkg/netpoll=-d=checkptr=0"}
[[ -z $GOZER_GOFLAGS || " ${GOFLAGS:-} " == *" $GOZER_GOFLAGS "* ]] || export GOFLAGS="${GOFLAGS:+$GOFLAGS }$GOZER_GOFLAGS"
