-- Auth: a request that carries "Authorization: Bearer TOKEN" is judged by the
-- "auth" origin (GET /auth with the same header) before it goes anywhere: the
-- filter is async, so the event loop serves other requests while the auth
-- service thinks. Its decision is cached for a few seconds in the shared
-- dictionary "auth" (filters.shared_dicts), so most requests cost no call.
--   allowed    the request goes on, with X-User: the user the service named
--   refused    401 or 403, the service's own answer
--   no answer  503 (fail closed: a timeout, an open breaker, no server)
-- Requests without a bearer token, and push connections (push_auth checks
-- those), pass on without an X-User (12_request_headers.lua drops a client's
-- own first). With `make run`, try:
--   curl -i -H 'Authorization: Bearer allow:alice' localhost:8080/headers
--   curl -i -H 'Authorization: Bearer nope' localhost:8080/
local CACHE_SECONDS = 5

return {
  name = "auth",
  type = "inbound",
  order = 15,
  async = true,
  -- A misconfigured gateway (no "auth" origin or dictionary) must not let
  -- requests through unchecked: any error of this filter fails the request.
  fatal = true,
  should_filter = function(ctx)
    if ctx.push ~= nil then return false end
    local auth = ctx.req.header("Authorization")
    return auth ~= nil and auth:find("^[Bb]earer ") ~= nil
  end,
  apply = function(ctx)
    local token = ctx.req.header("Authorization")
    local cache = ctx.shared("auth")
    local user = cache:get(token)
    if user == nil then
      local res, err = ctx.http{ origin = "auth", path = "/auth", headers = { Authorization = token } }
      if res == nil then
        ctx.log("warn", "auth service unavailable: " .. err)
        ctx.respond(503, "authorization service unavailable\n")
        return
      end
      if res.status == 200 then
        user = res.header("X-Auth-User") or ""
      elseif res.status == 401 or res.status == 403 then
        user = false -- refused: cached too, so a bad token cannot flood the service
      else
        ctx.respond(503, "authorization service answered " .. res.status .. "\n")
        return
      end
      cache:set(token, user, CACHE_SECONDS)
    end
    if user == false then
      ctx.respond(403, "forbidden\n")
      return
    end
    ctx.req.set_header("X-User", user)
  end,
}
