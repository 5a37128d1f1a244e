-- Request header hygiene: headers named X-Internal-* are the origins' private
-- business and a client must not be able to inject them; every request also says
-- which edge handled it.
return {
  name = "request_headers",
  type = "inbound",
  order = 30,
  apply = function(ctx)
    local internal = {}
    for name in ctx.req.headers() do
      if name:lower():sub(1, 11) == "x-internal-" then
        internal[#internal + 1] = name
      end
    end
    for _, name in ipairs(internal) do
      ctx.req.del_header(name)
    end
    ctx.req.set_header("X-Gozer-Edge", "gozer")
  end,
}
