# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by run.sh / compress.sh
# Gozer compressing responses: the gozer target's config (gozer.sh) plus, under
# origins.bench, compression with gzip only at GZIP_LEVEL, for GZIP_TYPES, from 1 KiB;
# and listeners.admin.pprof, so that compress.sh can take a CPU profile. Compare with
# nginx-gzip (nginx-gzip.sh): bench/compress.sh runs both, with their bases gozer and
# nginx, on a realistic document. (In run.sh it runs too, but run.sh's origin answers
# 128 bytes of text/plain: nothing is compressed there.)

GOZER_GZIP_PORT=${GOZER_GZIP_PORT:-18092}
GOZER_GZIP_ADMIN_PORT=${GOZER_GZIP_ADMIN_PORT:-18093}
BENCH_PORTS+=("$GOZER_GZIP_PORT" "$GOZER_GZIP_ADMIN_PORT")
# Shared with nginx-gzip.sh: the level (1..9, nginx's gzip_comp_level scale, which is
# Gozer's too) and the media types compressed.
GZIP_LEVEL=${GZIP_LEVEL:-5}
GZIP_TYPES=${GZIP_TYPES:-text/html application/json}

# gozer_gzip_types prints GZIP_TYPES as a YAML flow list: ["text/html", "application/json"].
gozer_gzip_types() {
  local t out="" list
  read -r -a list <<<"$GZIP_TYPES"
  for t in "${list[@]}"; do out+="${out:+, }\"$t\""; done
  printf '[%s]' "$out"
}

target_gozer-gzip_start() {
  local extra
  extra=$'\n'"    compression: { enabled: true, encodings: [gzip], level: $GZIP_LEVEL, min_size: 1KiB, types: $(gozer_gzip_types) }"
  GOZER_CONF_ORIGIN_EXTRA=$extra GOZER_CONF_ADMIN_EXTRA="pprof: true" \
    gozer_start gozer-gzip "$GOZER_GZIP_PORT" "$GOZER_GZIP_ADMIN_PORT" "" || return 1
  T_WORK=plain
  T_PPROF_URL="http://127.0.0.1:$GOZER_GZIP_ADMIN_PORT/debug/pprof"
  T_DESC+=", no Lua filters (filters.dir \"\"); origins.bench.compression: { enabled: true, encodings: [gzip], level: $GZIP_LEVEL, min_size: 1KiB, types: $(gozer_gzip_types) }; listeners.admin.pprof: true"
}
