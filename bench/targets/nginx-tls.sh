# shellcheck shell=bash disable=SC2034 # T_* and other variables are read by tls.sh
# nginx terminating TLS: the nginx target's config (nginx.sh), whose plain listener stays
# (readiness, and tls.sh's no-TLS reference runs), plus a TLS listener in the same server
# block with the bench's certificate (ECDSA P-256, made by tls.sh: TLS_CERT, TLS_KEY).
# TLS 1.2 and 1.3; the server's preference for the cipher suite (TLS_CIPHERSUITES13,
# TLS_CIPHERS12) and X25519 first (TLS_GROUPS), so that every proxy negotiates the same
# suite whatever the client prefers (wrk's OpenSSL puts AES-256 first, Go AES-128);
# resumption by session tickets only: ssl_session_tickets on (stateless tickets, keys
# made at start) and ssl_session_cache off (no session-ID cache: nothing to look up,
# like the other two). OpenSSL issues 2 tickets per full TLS 1.3 handshake by default,
# 1 per resumed one; tls.sh counts them. For bench/tls.sh; in run.sh it has no cert.

NGINX_TLS_PLAIN_PORT=${NGINX_TLS_PLAIN_PORT:-18098}
NGINX_TLS_PORT=${NGINX_TLS_PORT:-18099}
BENCH_PORTS+=("$NGINX_TLS_PLAIN_PORT" "$NGINX_TLS_PORT")

# nginx_tls_conf prints the server-block directives of the TLS listener.
nginx_tls_conf() {
  cat <<CONF
    listen 127.0.0.1:$NGINX_TLS_PORT ssl backlog=4096;
    ssl_certificate $TLS_CERT;
    ssl_certificate_key $TLS_KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers $TLS_CIPHERS12;
    ssl_conf_command Ciphersuites $TLS_CIPHERSUITES13;
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve $TLS_GROUPS;
    ssl_session_tickets on;
    ssl_session_cache off;
    ssl_session_timeout 1h;
CONF
}

target_nginx-tls_start() {
  tls_target_prereqs || return 1
  nginx_start nginx-tls "$NGINX_TLS_PLAIN_PORT" "" "$(nginx_tls_conf)"
  T_WORK=plain
  T_TLS_ADDR=127.0.0.1:$NGINX_TLS_PORT
  T_PLAIN_ADDR=127.0.0.1:$NGINX_TLS_PLAIN_PORT
  T_TLS_DESC="listen ssl; ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers $TLS_CIPHERS12; ssl_conf_command Ciphersuites $TLS_CIPHERSUITES13; ssl_prefer_server_ciphers on; ssl_ecdh_curve $TLS_GROUPS; resumption: ssl_session_tickets on, ssl_session_cache off (stateless tickets only), ssl_session_timeout 1h; OpenSSL $(openssl version | awk '{ print $2 }')"
}

# tls_target_prereqs: the TLS targets need the bench's certificate, which tls.sh makes.
tls_target_prereqs() {
  if [[ -z ${TLS_CERT:-} || ! -r ${TLS_CERT:-} || ! -r ${TLS_KEY:-} || ! -r ${TLS_CERT_KEY:-} || -z ${TLS_GROUPS:-} ]]; then
    WAIT_FAIL_REASON="no certificate: the *-tls targets run from bench/tls.sh, which makes one (TLS_CERT, TLS_KEY, TLS_CERT_KEY, TLS_GROUPS ...)"
    return 1
  fi
}
