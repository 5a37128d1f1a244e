-- Request header hygiene, before any filter vouches for a header: a client must
-- not be able to send what origins trust the gateway to set. X-Internal-* are the
-- origins' private business; X-User is the user 15_auth.lua names after asking
-- the auth service, so a client's own X-User goes whether or not it sent a token.
-- Names compare with "_" read as "-": an origin behind CGI, WSGI, Rack or PHP
-- sees X_User and X-User as one variable. Every request also says which edge
-- handled it.
local function gateway_only(name)
  local n = (name:lower():gsub("_", "-"))
  return n == "x-user" or n:sub(1, 11) == "x-internal-"
end

return {
  name = "request_headers",
  type = "inbound",
  order = 12,
  apply = function(ctx)
    local drop = {}
    for name in ctx.req.headers() do
      if gateway_only(name) then
        drop[#drop + 1] = name
      end
    end
    for _, name in ipairs(drop) do
      ctx.req.del_header(name)
    end
    -- Always, even when the head has none: a deleted name is kept out of the
    -- request's trailer fields too, which some origins merge into headers.
    ctx.req.del_header("X-User")
    ctx.req.set_header("X-Gozer-Edge", "gozer")
  end,
}
