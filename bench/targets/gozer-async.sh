# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# Gozer with ONE async Lua filter that makes ONE side call per request: inbound
# 10_async.lua asks origin "side" (the bench origin's $BENCH_SIDE_PATH, a 2-byte "ok")
# with ctx.http, then sets X-Route from the answer and the path. The config is the gozer
# target's plus filters.dir and the "side" origin; compare with nginx-async.

GOZER_ASYNC_PORT=${GOZER_ASYNC_PORT:-18102}
GOZER_ASYNC_ADMIN_PORT=${GOZER_ASYNC_ADMIN_PORT:-18103}
BENCH_PORTS+=("$GOZER_ASYNC_PORT" "$GOZER_ASYNC_ADMIN_PORT")

target_gozer-async_start() {
  local scripts=$WORK/gozer-async-run/scripts
  gozer_write_script "$scripts" inbound 10_async.lua "$GOZER_LUA_ASYNC"
  GOZER_CONF_ORIGINS_EXTRA="
  side:
    servers: [\"127.0.0.1:$ORIGIN_PORT\"]
    max_idle_per_server: 256
    max_connections_per_server: 1024" \
    gozer_start gozer-async "$GOZER_ASYNC_PORT" "$GOZER_ASYNC_ADMIN_PORT" "$scripts" || return 1
  T_WORK=async
  T_DESC+=", 1 async Lua filter (inbound 10_async.lua: ctx.http to origin side $BENCH_SIDE_PATH, then X-Route), budget 5ms"
}

# The logic of the async targets, in Gozer's filter contract (nginx-async.sh holds it for
# lua-nginx-module).
GOZER_LUA_ASYNC='return { name = "async", type = "inbound", order = 10, async = true, apply = function(ctx)
  local res, err = ctx.http{ origin = "side", path = "'"$BENCH_SIDE_PATH"'" }
  if res == nil then ctx.respond(502, err) return end
  ctx.req.set_header("X-Route", "side-" .. res.body .. ":" .. ctx.req.path)
end }'
