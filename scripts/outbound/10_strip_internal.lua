-- Response hygiene: what origins say about themselves stays inside. X-Internal-*
-- headers, X-Powered-By and the origin's Server header never reach a client.
return {
  name = "strip_internal",
  type = "outbound",
  order = 10,
  apply = function(ctx)
    local drop = {}
    for name in ctx.resp.headers and ctx.resp.headers() or function() end do
      if name:lower():sub(1, 11) == "x-internal-" then
        drop[#drop + 1] = name
      end
    end
    for _, name in ipairs(drop) do
      ctx.resp.del_header(name)
    end
    ctx.resp.del_header("X-Powered-By")
    ctx.resp.del_header("Server")
  end,
}
