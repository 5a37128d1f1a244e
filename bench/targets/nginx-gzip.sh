# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh / compress.sh
# nginx compressing proxied responses: the nginx target's config (nginx.sh) plus gzip at
# GZIP_LEVEL (gozer-gzip.sh sets it and GZIP_TYPES) for GZIP_TYPES, from 1024 bytes, on
# proxied requests too. proxy_buffering stays on (nginx's default, as in the nginx target).
# Compare with gozer-gzip: bench/compress.sh runs both.

NGINX_GZIP_PORT=${NGINX_GZIP_PORT:-18094}
BENCH_PORTS+=("$NGINX_GZIP_PORT")
GZIP_LEVEL=${GZIP_LEVEL:-5}
GZIP_TYPES=${GZIP_TYPES:-text/html application/json}

# nginx_gzip_conf prints the gzip directives (server level). text/html is always in
# gzip_types (naming it again only draws a warning), so it is left out of the list.
# gzip_buffers 16 8k: 128 KiB, room for a 64 KiB page's compressed output several times
# over, so that deflate never waits for a buffer to be sent.
nginx_gzip_conf() {
  local t types="" list
  read -r -a list <<<"$GZIP_TYPES"
  for t in "${list[@]}"; do
    [[ $t == text/html ]] || types+=" $t"
  done
  printf '    gzip on;\n    gzip_comp_level %s;\n' "$GZIP_LEVEL"
  if [[ -n $types ]]; then printf '    gzip_types%s;\n' "$types"; fi
  cat <<CONF
    gzip_proxied any;
    gzip_min_length 1024;
    gzip_buffers 16 8k;
    gzip_vary on;
CONF
}

target_nginx-gzip_start() {
  nginx_start nginx-gzip "$NGINX_GZIP_PORT" "" "$(nginx_gzip_conf)"
  T_WORK=plain
  T_DESC+="; $(nginx_gzip_conf | sed 's/^ *//; s/;$//' | paste -sd, - | sed 's/,/, /g') (text/html is always in gzip_types), proxy_buffering on (nginx's default)"
}
