-- Debug routing: a request carrying "X-Gozer-Route-To: <origin>" goes to that origin,
-- but only when the origin is listed in `allowed` below: a client must never be able
-- to pick any origin it likes. The header is removed before the request goes on.
local allowed = {
  demo = true,
}

return {
  name = "debug_route",
  type = "inbound",
  order = 10,
  should_filter = function(ctx)
    return ctx.req.header("X-Gozer-Route-To") ~= nil
  end,
  apply = function(ctx)
    local target = ctx.req.header("X-Gozer-Route-To")
    ctx.req.del_header("X-Gozer-Route-To")
    if allowed[target] then
      ctx.route{ origin = target }
      ctx.vars.routed_by = "debug_route"
    else
      ctx.log("warn", "X-Gozer-Route-To names an origin that is not allowed: " .. target)
    end
  end,
}
