-- An endpoint filter answers by itself, no origin involved: inbound routing sends
-- /robots.txt here (see inbound/20_routes.lua).
return {
  name = "robots",
  type = "endpoint",
  order = 0,
  apply = function(ctx)
    ctx.respond(200, "User-agent: *\nDisallow: /api/\n", { ["Content-Type"] = "text/plain" })
  end,
}
