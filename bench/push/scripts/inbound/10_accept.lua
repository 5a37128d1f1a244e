-- Bench only (bench/push.sh, bench/pushhist.sh): accept every push connection (websocket
-- at /push/ws, SSE at /push/sse) under the id it
-- asks for in ?id=, with no token, so that the bench measures push itself and not the
-- token check (nchan, its peer in the bench, checks nothing either). Never ship this:
-- the gateway's own scripts/inbound/05_push_auth.lua is what production runs.
return {
  name = "accept",
  type = "inbound",
  order = 10,
  should_filter = function(ctx)
    return (ctx.push == "ws" and ctx.req.path == "/push/ws") or (ctx.push == "sse" and ctx.req.path == "/push/sse")
  end,
  apply = function(ctx)
    local ok, why = ctx.push_accept(ctx.req.arg("id") or "")
    if not ok then
      ctx.respond(400, "push id refused: " .. tostring(why) .. "\n")
    end
  end,
}
