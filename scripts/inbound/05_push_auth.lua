-- Push auth: a push connection (ctx.push is "ws" or "sse") is accepted only with a
-- valid token: HMAC-SHA256 over the client id and an expiry, signed with
-- push.token_secret from the config or $GOZER_PUSH_SECRET. The device sends it as
-- ?token=... or as "Authorization: Bearer ...". Make one with
--   gozer push-token -client device-42 -ttl 1h
-- Without a filter that calls ctx.push_accept, push connections get 403: push is
-- never open by default. A token may name topics (gozer push-token -topics news,scores:42):
-- the connection is subscribed to them (POST /push/topic/{name} reaches it).
-- Replace this file to plug in your own auth (a session
-- cookie, an API key...): whatever you check, end with ctx.push_accept(id).
local challenge = { ["WWW-Authenticate"] = 'Bearer realm="gozer-push"' }

return {
  name = "push_auth",
  type = "inbound",
  order = 5,
  should_filter = function(ctx)
    return ctx.push ~= nil
  end,
  apply = function(ctx)
    local token = ctx.req.arg("token")
    if token == nil then
      local auth = ctx.req.header("Authorization")
      if auth ~= nil then
        token = auth:match("^[Bb]earer%s+(%S+)$")
      end
    end
    if token == nil then
      ctx.respond(401, "push token missing\n", challenge)
      return
    end
    -- detail: the token's topics when it is valid, else why it is not.
    local id, detail = ctx.push_verify(token)
    if id == nil then
      -- The reason goes to the log, and to the device: "expired" tells it to fetch a
      -- new token rather than retry.
      ctx.log("info", "push token refused: " .. detail)
      ctx.respond(401, "push token " .. detail .. "\n", challenge)
      return
    end
    ctx.push_accept(id, { topics = detail })
  end,
}
