#!/usr/bin/env bash
# Benchmark of issue 9's "Must show": wxgate's own HTTP/1.1 server against
# nginx and OpenResty (nginx + libnginx-mod-http-lua), all measured in one
# run: every server on CPU 0 (taskset), wrk -t1 -c50 on CPU 1, interleaved
# rounds (default 5 x 3 s, one server loaded at a time), median of the
# per-round ratios. Timings on a shared machine are noisy: a FAIL is
# reported, not an error. The script fails only when a server does not start
# or answers wrong, or wrk sees errors. See tests/bench/README.
#
# targets (servers)
#   wx_healthz   wxgate GET /healthz, a C handler       (wxgate "wx", log_level warn)
#   wx_auth      wxgate GET /auth, campaign without script, access log off (wx)
#   wx_auth_hook the same campaign with an empty authorize hook (wx)
#   wx_lua       wxgate Lua route answering "hello" (wx)
#   wx_auth_log  wxgate GET /auth with the access log on: a second wxgate
#                ("wxlog", the default log_level "info", stderr to a file)
#   ngx_200      nginx return 200 "ok"                  (plain nginx "ngx")
#   ngx_302      nginx return 302 with wxgate's Location (ngx)
#   or_auth      OpenResty doing /auth's work in content_by_lua_block
#                (tests/bench/openresty/wx_auth.lua)    (nginx + Lua "or")
#   or_lua       OpenResty content_by_lua_block { ngx.print("hello") } (or)
#
# figures (targets from issue 9)
#   1 wx_healthz / ngx_200  >= 0.9     2 wx_auth / or_auth  >= 1.3
#   3 wx_auth / ngx_302     >= 0.6     4 wx_lua / or_lua    >= 1.0
#   5 wx_auth_log / wx_auth >= 0.9 (the access log costs at most 10%)
#   6 p99 of wx_healthz minus ngx_200, and of wx_auth minus ngx_302: <= 1 ms
#   and, without a target: wx_lua / wx_healthz, wx_auth_hook / wx_auth.
#
# Called by scripts/bench; runs alone after `scripts/setup bench` and
# `scripts/build --release-only`. Settings: see tests/bench/lib.sh.
source "$(dirname "$0")/lib.sh"

# ---- the servers ----

start_wxgate wx "$(wx_config warn)"
start_wxgate wxlog "$(wx_config info)"
wx=http://127.0.0.1:${PORT[wx]}
wxlog=http://127.0.0.1:${PORT[wxlog]}

# wxgate's answer to /auth is the model for the references: the Location up
# to "state=" and after the 32-character state, and the Set-Cookie with its
# value blanked.
[ "$(fetch "$wx/auth?campaign=plain&$AUTH_QUERY")" = 302 ] || die "wxgate /auth is not a 302"
LOCATION=$(header Location)
LOC_PREFIX=${LOCATION%%state=*}state=
LOC_SUFFIX=${LOCATION#"$LOC_PREFIX"}
[[ $LOC_SUFFIX =~ ^[A-Za-z0-9]{32} ]] || die "wxgate's Location has no state: $LOCATION"
LOC_SUFFIX=${LOC_SUFFIX:32}
COOKIE_SHAPE=$(header Set-Cookie | sed 's/^wxgate_state=[^;]*;/wxgate_state=MAC;/')
echo "wxgate /auth: Location: $LOCATION"
echo "wxgate /auth: Set-Cookie: $(header Set-Cookie)"

start_nginx ngx "  server {
    listen @LISTEN@;
    location = /ok { default_type text/plain; return 200 \"ok\"; }
    location = /302 { return 302 \"$LOCATION\"; }
  }" "" /ok

start_nginx or "  lua_package_path \"$root/tests/bench/openresty/?.lua;;\";
  lua_shared_dict wx_states 512m;
  lua_shared_dict wx_metrics 1m;
  init_by_lua_block {
    require(\"wx_auth\").configure{
      public_url = \"$PUBLIC_URL\",
      cookie_secret = \"$COOKIE_SECRET\",
      apps = { a = { appid = \"$APPID\" } },
      campaigns = { plain = { app = \"a\", allow = { \"$ALLOW\" } } },
    }
  }
  server {
    listen @LISTEN@;
    location = /auth { content_by_lua_block { require(\"wx_auth\").auth() } }
    location = /bench-state { content_by_lua_block { require(\"wx_auth\").state() } }
    location = /hello { default_type text/plain; content_by_lua_block { ngx.print(\"hello\") } }
  }" "load_module $NGINX_MODULES/ndk_http_module.so;
load_module $NGINX_MODULES/ngx_http_lua_module.so;" /hello
ngx=http://127.0.0.1:${PORT[ngx]}
or=http://127.0.0.1:${PORT[or]}

# ---- the checks: same answers before (and after) the timing ----

# check_auth URL [STATE_URL]: a 302 whose Location has wxgate's shape, and a
# Set-Cookie of the same shape whose value is HMAC-SHA256(cookie_secret,
# state), 16 bytes in base64url. With STATE_URL (OpenResty), also that the
# state was stored, with the state TTL.
check_auth() {
  local code loc state cookie mac want stored
  code=$(fetch "$1")
  [ "$code" = 302 ] || die "$1 answered $code, not 302"
  loc=$(header Location)
  [[ $loc == "$LOC_PREFIX"* && $loc == *"$LOC_SUFFIX" ]] ||
    die "$1: Location $loc is not shaped like wxgate's $LOCATION"
  state=${loc#"$LOC_PREFIX"}
  state=${state%"$LOC_SUFFIX"}
  [[ $state =~ ^[A-Za-z0-9]{32}$ ]] || die "$1: state \"$state\" is not 32 base62 characters"
  cookie=$(header Set-Cookie)
  [ "$(sed 's/^wxgate_state=[^;]*;/wxgate_state=MAC;/' <<<"$cookie")" = "$COOKIE_SHAPE" ] ||
    die "$1: Set-Cookie $cookie is not shaped like wxgate's $COOKIE_SHAPE"
  mac=${cookie#wxgate_state=}
  mac=${mac%%;*}
  want=$(/usr/bin/python3 -c 'import base64, hashlib, hmac, sys
print(base64.urlsafe_b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(),
      hashlib.sha256).digest()[:16]).decode().rstrip("="))' "$COOKIE_SECRET" "$state")
  [ "$mac" = "$want" ] || die "$1: the cookie $mac is not the state's HMAC-SHA256 $want"
  [ -n "$(header X-Request-Id)" ] || die "$1: no X-Request-Id"
  if [ $# -ge 2 ]; then
    [ "$(fetch "$2?state=$state")" = 200 ] || die "$1: state $state was not stored"
    stored=$(cat "$tmp/body")
    [[ $stored =~ ^17[89][0-9]$'\t'v1$'\t'[0-9]+$'\t'0$'\t'snsapi_base$'\t'plain$'\t'https://h5.example.com/p$ ]] ||
      die "$1: stored state is \"$stored\" (want TTL ~1800 and the record)"
  fi
}

check_answers() {
  check_status "$wx/healthz" 200
  check_status "$ngx/ok" 200 ok
  check_auth "$wx/auth?campaign=plain&$AUTH_QUERY"
  check_auth "$wx/auth?campaign=hooked&$AUTH_QUERY"
  check_auth "$wxlog/auth?campaign=plain&$AUTH_QUERY"
  check_auth "$or/auth?campaign=plain&$AUTH_QUERY" "$or/bench-state"
  [ "$(fetch "$ngx/302")" = 302 ] || die "nginx /302 is not a 302"
  [ "$(header Location)" = "$LOCATION" ] || die "nginx /302: Location is $(header Location)"
  check_status "$wx/hello" 200 hello
  check_status "$or/hello" 200 hello
  # The refusals answer the same way on both /auth implementations.
  check_status "$wx/auth?campaign=plain&return=https%3A%2F%2Fevil.example.com%2F" 400
  check_status "$or/auth?campaign=plain&return=https%3A%2F%2Fevil.example.com%2F" 400
}
check_answers

# ---- measuring ----

# In this order, each comparison is between neighbours (or one apart).
add_target or_lua "OpenResty content_by_lua \"hello\"" "$or/hello"
add_target wx_lua "wxgate Lua route \"hello\"" "$wx/hello"
add_target wx_healthz "wxgate GET /healthz (C handler)" "$wx/healthz"
add_target ngx_200 "nginx return 200" "$ngx/ok"
add_target ngx_302 "nginx return 302 (same Location)" "$ngx/302"
add_target or_auth "OpenResty /auth (content_by_lua_block)" "$or/auth?campaign=plain&$AUTH_QUERY"
add_target wx_auth "wxgate GET /auth (access log off)" "$wx/auth?campaign=plain&$AUTH_QUERY"
add_target wx_auth_log "wxgate GET /auth (access log on, to a file)" \
  "$wxlog/auth?campaign=plain&$AUTH_QUERY"
add_target wx_auth_hook "wxgate GET /auth (empty authorize hook)" \
  "$wx/auth?campaign=hooked&$AUTH_QUERY"

add_ratio "C handler /healthz / nginx return 200" wx_healthz ngx_200 0.9
add_ratio "/auth / OpenResty doing the same work" wx_auth or_auth 1.3
add_ratio "/auth / nginx bare return 302" wx_auth ngx_302 0.6
add_ratio "Lua route \"hello\" / OpenResty content_by_lua" wx_lua or_lua 1.0
add_ratio "/auth access log on / off" wx_auth_log wx_auth 0.9
add_p99 "p99 at -c$CONNS: /healthz minus nginx return 200" wx_healthz ngx_200 1
add_p99 "p99 at -c$CONNS: /auth minus nginx return 302" wx_auth ngx_302 1
add_ratio "Lua route / C handler (same wxgate)" wx_lua wx_healthz
add_ratio "/auth with empty authorize hook / without" wx_auth_hook wx_auth

measure

# ---- after: nothing went wrong while loaded ----

check_answers
for s in wx wxlog; do
  kill -0 "${PID[$s]}" 2>/dev/null || die "wxgate $s is gone"
  bad=$(curl -fsS --max-time 5 "http://127.0.0.1:${PORT[$s]}/metrics" |
        awk '/^wxgate_requests_total\{code="(4xx|5xx|other)"\}/ { n += $2 } END { print n + 0 }')
  # The two refusals of check_answers (twice) are the only 4xx expected.
  [ "$s" = wx ] && bad=$((bad - 2))
  [ "$bad" = 0 ] || die "wxgate $s answered $bad requests with 4xx/5xx under load"
done
for s in ngx or; do nginx_errors "$s"; done
grep -q '"path":"/auth' "${LOG[wxlog]}" || die "wxgate wxlog wrote no access log"
! grep -q '"path":"/auth' "${LOG[wx]}" || die "wxgate wx wrote an access log at log_level warn"

report "issue 9: wxgate's HTTP server vs nginx and OpenResty"
