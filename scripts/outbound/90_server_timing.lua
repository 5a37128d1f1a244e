-- Server-Timing: tells the client (and its developer tools) how long the request
-- spent in the gateway, origin included, in milliseconds.
return {
  name = "server_timing",
  type = "outbound",
  order = 90,
  apply = function(ctx)
    local ms = (ctx.now() - ctx.start) * 1000
    ctx.resp.set_header("Server-Timing", string.format("gozer;dur=%.2f", ms))
  end,
}
