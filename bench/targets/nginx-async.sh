# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# nginx + lua-nginx-module making ONE side call per request: access_by_lua asks the bench
# origin's $BENCH_SIDE_PATH through an internal location (ngx.location.capture, a
# subrequest proxied over the same upstream keep-alive pool: lua-nginx-module's cheapest
# non-blocking call; resty.http's cosocket is not packaged by Debian), then sets X-Route
# from the answer and the path. Compare with gozer-async.

NGINX_ASYNC_PORT=${NGINX_ASYNC_PORT:-18104}
BENCH_PORTS+=("$NGINX_ASYNC_PORT")

target_nginx-async_prepare() { nginx_lua_prepare; }

target_nginx-async_start() {
  nginx_start nginx-async "$NGINX_ASYNC_PORT" "$NGINX_LUA_MODULES" "$NGINX_LUA_ASYNC"
  T_WORK=async
  T_DESC+=", $(nginx_lua_version) (LuaJIT): access_by_lua_block with ngx.location.capture to an internal location proxying $BENCH_SIDE_PATH"
}

NGINX_LUA_ASYNC='    location = /__side {
      internal;
      proxy_pass http://origin'"$BENCH_SIDE_PATH"';
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    access_by_lua_block {
      local r = ngx.location.capture("/__side")
      if r.status ~= 200 then return ngx.exit(502) end
      ngx.req.set_header("X-Route", "side-" .. r.body .. ":" .. ngx.var.uri)
    }'
