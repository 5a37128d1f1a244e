# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh
# Caddy's reverse_proxy, pinned to the proxy core with GOMAXPROCS=1, no access log
# (Caddy logs requests only with a "log" directive).

CADDY_PORT=${CADDY_PORT:-18084}
BENCH_PORTS+=("$CADDY_PORT")

target_caddy_start() {
  local dir=$WORK/caddy
  mkdir -p "$dir"
  cat >"$dir/Caddyfile" <<CONF
{
  admin off
  auto_https off
  servers {
    timeouts {
      idle 5m
    }
  }
}

http://:$CADDY_PORT {
  bind 127.0.0.1
  reverse_proxy 127.0.0.1:$ORIGIN_PORT {
    transport http {
      keepalive 5m
      keepalive_idle_conns 256
      keepalive_idle_conns_per_host 256
    }
  }
}
CONF
  # Caddy wants a home for its data and config even with admin and TLS off.
  bg_start "$dir/caddy.log" env HOME="$dir" XDG_DATA_HOME="$dir/data" XDG_CONFIG_HOME="$dir/config" \
    GOMAXPROCS=1 taskset -c "$PROXY_CPU" caddy run --config "$dir/Caddyfile" --adapter caddyfile
  T_PID=$BG_PID
  T_LOG=$dir/caddy.log
  T_URL="http://127.0.0.1:$CADDY_PORT/"
  T_READY_URL=$T_URL
  T_DESC="Caddy $(caddy version | awk '{print $1}'): reverse_proxy, GOMAXPROCS=1, keepalive_idle_conns_per_host 256, no access log"
}
