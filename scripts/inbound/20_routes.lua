-- Routing: the first entry whose host (optional) and path prefix match chooses the
-- origin; `path` optionally rewrites the prefix. Requests no entry matches fall back
-- to the `routes:` table of conf/gozer.yaml. Edit this file while Gozer runs: the new
-- table serves new requests within a second.
local routes = {
  -- { host = "api.example.com", prefix = "/", origin = "api" },
  { prefix = "/robots.txt", endpoint = "robots" },
  { prefix = "/api/v1/", origin = "demo", rewrite = "/v1/" },
  { prefix = "/api/", origin = "demo" },
}

local function host_matches(want, host)
  if want == nil then return true end
  if want:sub(1, 2) == "*." then
    local suffix = want:sub(2)
    return #host > #suffix and host:sub(-#suffix) == suffix
  end
  return host == want
end

return {
  name = "routes",
  type = "inbound",
  order = 20,
  should_filter = function(ctx)
    return ctx.vars.routed_by == nil -- a debug route already decided
  end,
  apply = function(ctx)
    local path, host = ctx.req.path, ctx.req.host:lower()
    for _, r in ipairs(routes) do
      if host_matches(r.host, host) and path:sub(1, #r.prefix) == r.prefix then
        if r.endpoint then
          ctx.route{ endpoint = r.endpoint }
        elseif r.rewrite then
          local rest = path:sub(#r.prefix + 1)
          local q = ctx.req.query
          ctx.route{ origin = r.origin, path = r.rewrite .. rest .. ((q ~= "" and q ~= nil) and ("?" .. q) or "") }
        else
          ctx.route{ origin = r.origin }
        end
        ctx.vars.routed_by = "routes"
        return
      end
    end
  end,
}
