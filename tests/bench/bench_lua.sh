#!/usr/bin/env bash
# Benchmark: what a Lua route costs next to a C handler of the same wxgate
# process, with Debian's nginx as the outside reference, all measured in the
# same run on loopback (timings here are noisy; only ratios are compared).
#
#   wxgate_c      GET /healthz on build/wxgate (C handler)
#   wxgate_lua    GET /lua on the same process: a route returning 200, "ok"
#   nginx_return  nginx, 1 worker: return 200 "ok"
#   nginx_lua     nginx + libnginx-mod-http-lua: content_by_lua_block
#                 { ngx.say("ok") } (the OpenResty equivalent), if it loads
#   auth_plain    GET /auth of a campaign without a script (state, cookie, 302)
#   auth_hook     the same with an empty authorize hook: the cost of a hook call
#
# Rounds are interleaved (every target once per round), each a wrk run of
# BENCH_SECONDS with BENCH_THREADS threads and BENCH_CONNECTIONS connections;
# the median requests/s per target and the ratios (median of the per-round
# ratios, and ratio of the medians) are printed and appended to
# $BENCH_RESULTS (build/bench-results.txt). Access logs are off on both
# servers. Every process started here is stopped on exit.
#
# Adding a target: write a target_NAME function that calls
#   add_target NAME "label" URL
# (starting its own server with start_* / track_pid if it needs one), list it
# in TARGETS, and add ratios with add_ratio "label" NUMERATOR DENOMINATOR.
#
# Called by scripts/bench; runs alone after `scripts/setup bench` and
# `scripts/build --release-only`.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

BIN=${WXGATE_BIN:-$root/build/wxgate}
ROUNDS=${BENCH_ROUNDS:-5}
DURATION=${BENCH_SECONDS:-3}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-1}
WARMUP=${BENCH_WARMUP_SECONDS:-1}
NGINX=${NGINX:-/usr/sbin/nginx}
NGINX_MODULES=${NGINX_MODULES:-/usr/lib/nginx/modules}
if [ -n "${BENCH_RESULTS:-}" ]; then
  RESULTS=$BENCH_RESULTS
else
  RESULTS=$root/build/bench-results.txt
  : >"$RESULTS"
fi
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

die() { echo "bench_lua: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk is missing (scripts/setup bench)"
command -v curl >/dev/null || die "curl is missing (scripts/setup)"
[ -x "$BIN" ] || die "$BIN is missing (scripts/build --release-only)"

# ---- processes: every one started here is stopped on exit ----

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wxgate-bench.XXXXXX")
pids=()
track_pid() { pids+=("$1"); }

cleanup() {
  local pid i
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  /usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL PID: until URL answers 200 (10 s), or PID dies.
wait_http() {
  local url=$1 pid=$2 i
  for ((i = 0; i < 100; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---- servers ----

WX_PORT=""
start_wxgate() {
  WX_PORT=$(free_port)
  cat >"$tmp/ok.lua" <<'EOF'
return function(req) return 200, "ok" end
EOF
  cat >"$tmp/hook.lua" <<'EOF'
return { authorize = function(req, ctx) end }
EOF
  cat >"$tmp/wxgate.lua" <<EOF
return {
  listen = "127.0.0.1:$WX_PORT",
  workers = 1,
  log_level = "warn",            -- no access log line per request
  limits = { drain_timeout_ms = 1000 },
  routes = { ["/lua"] = "ok.lua" },
  store = "memory?max_mb=2048",  -- /auth stores a state per request
  public_url = "https://login.example.com",
  cookie_secret = "bench-cookie-secret-0123456789",
  ticket_secret = "bench-ticket-secret-0123456789",
  require_wechat_browser = false,
  apps = { a = { appid = "wxbench", secret = { env = "BENCH_APP_SECRET" } } },
  campaigns = {
    plain = { app = "a", allow = { "https://h5.example.com/" } },
    hooked = { app = "a", allow = { "https://h5.example.com/" }, script = "hook.lua" },
  },
}
EOF
  BENCH_APP_SECRET=bench-app-secret "$BIN" run -c "$tmp/wxgate.lua" >"$tmp/wxgate.out" \
    2>"$tmp/wxgate.log" </dev/null &
  local pid=$!
  track_pid "$pid"
  wait_http "http://127.0.0.1:$WX_PORT/healthz" "$pid" ||
    { cat "$tmp/wxgate.log" >&2; die "wxgate did not start"; }
}

NGX_PORT=""
NGX_LUA=0
# nginx_conf FILE WITH_LUA
nginx_conf() {
  local lua_modules="" lua_location=""
  if [ "$2" = 1 ]; then
    lua_modules="load_module $NGINX_MODULES/ndk_http_module.so;
load_module $NGINX_MODULES/ngx_http_lua_module.so;"
    lua_location='location = /lua { default_type text/plain; content_by_lua_block { ngx.say("ok") } }'
  fi
  mkdir -p "$tmp/nginx"
  cat >"$1" <<EOF
$lua_modules
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NGX_PORT;
    location = /ok { default_type text/plain; return 200 "ok"; }
    $lua_location
  }
}
EOF
}

start_nginx() {
  if [ ! -x "$NGINX" ]; then
    echo "bench_lua: $NGINX is missing: no nginx reference (scripts/setup bench)" >&2
    return 0
  fi
  NGX_PORT=$(free_port)
  local conf=$tmp/nginx.conf
  nginx_conf "$conf" 1
  if "$NGINX" -t -q -p "$tmp/nginx" -c "$conf" -e "$tmp/nginx/error.log" 2>"$tmp/nginx-t.log"; then
    NGX_LUA=1
  else
    echo "bench_lua: the nginx Lua module does not load; nginx_lua skipped:" >&2
    sed 's/^/  /' "$tmp/nginx-t.log" >&2
    nginx_conf "$conf" 0
  fi
  "$NGINX" -p "$tmp/nginx" -c "$conf" -e "$tmp/nginx/error.log" </dev/null \
    >"$tmp/nginx.out" 2>&1 &
  local pid=$!
  track_pid "$pid"
  if ! wait_http "http://127.0.0.1:$NGX_PORT/ok" "$pid"; then
    cat "$tmp/nginx.out" "$tmp/nginx/error.log" >&2 2>/dev/null || true
    echo "bench_lua: nginx did not start: no nginx reference" >&2
    NGX_PORT=""
    NGX_LUA=0
  fi
}

# ---- targets and ratios ----

T_NAMES=() T_LABELS=() T_URLS=() T_EXPECT=()
# add_target NAME LABEL URL [EXPECT]: EXPECT is "ok" (a 200 with ok in the
# body, the default) or an HTTP status such as 302.
add_target() { T_NAMES+=("$1"); T_LABELS+=("$2"); T_URLS+=("$3"); T_EXPECT+=("${4:-ok}"); }
R_LABELS=() R_NUM=() R_DEN=()
add_ratio() { R_LABELS+=("$1"); R_NUM+=("$2"); R_DEN+=("$3"); }

target_wxgate_c() {
  [ -n "$WX_PORT" ] || start_wxgate
  add_target wxgate_c "wxgate GET /healthz (C handler)" "http://127.0.0.1:$WX_PORT/healthz"
}

target_wxgate_lua() {
  [ -n "$WX_PORT" ] || start_wxgate
  add_target wxgate_lua "wxgate GET /lua (Lua route)" "http://127.0.0.1:$WX_PORT/lua"
}

NGX_TRIED=0
ensure_nginx() { [ "$NGX_TRIED" = 1 ] || { NGX_TRIED=1; start_nginx; }; }

target_nginx_return() {
  ensure_nginx
  [ -n "$NGX_PORT" ] || return 0
  add_target nginx_return "nginx return 200 \"ok\"" "http://127.0.0.1:$NGX_PORT/ok"
}

target_nginx_lua() {
  ensure_nginx
  [ "$NGX_LUA" = 1 ] || return 0
  add_target nginx_lua "nginx content_by_lua_block" "http://127.0.0.1:$NGX_PORT/lua"
}

AUTH_QUERY="return=https%3A%2F%2Fh5.example.com%2Fp"
target_auth_plain() {
  [ -n "$WX_PORT" ] || start_wxgate
  add_target auth_plain "wxgate GET /auth (no hook)" \
    "http://127.0.0.1:$WX_PORT/auth?campaign=plain&$AUTH_QUERY" 302
}

target_auth_hook() {
  [ -n "$WX_PORT" ] || start_wxgate
  add_target auth_hook "wxgate GET /auth (empty authorize hook)" \
    "http://127.0.0.1:$WX_PORT/auth?campaign=hooked&$AUTH_QUERY" 302
}

TARGETS=(target_wxgate_c target_wxgate_lua target_nginx_return target_nginx_lua
         target_auth_plain target_auth_hook)
for t in "${TARGETS[@]}"; do "$t"; done

add_ratio "wxgate Lua route / wxgate C handler" wxgate_lua wxgate_c
add_ratio "wxgate C handler / nginx return 200" wxgate_c nginx_return
add_ratio "wxgate Lua route / nginx Lua" wxgate_lua nginx_lua
add_ratio "/auth with empty hook / /auth without" auth_hook auth_plain

# ---- measuring ----

# Every target must answer 200 with "ok" in its body before it is timed.
for i in "${!T_NAMES[@]}"; do
  if [ "${T_EXPECT[$i]}" = ok ]; then
    body=$(curl -fsS --max-time 2 "${T_URLS[$i]}") || die "${T_URLS[$i]} does not answer 200"
    case "$body" in *ok*) ;; *) die "${T_URLS[$i]} answered \"$body\"" ;; esac
  else
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${T_URLS[$i]}")
    [ "$code" = "${T_EXPECT[$i]}" ] || die "${T_URLS[$i]} answered $code, not ${T_EXPECT[$i]}"
  fi
done

# run_wrk URL SECONDS: prints requests/s; fails on errors or non-2xx answers.
run_wrk() {
  local out
  out=$(timeout $(($2 + 15)) wrk -t"$THREADS" -c"$CONNS" -d"$2"s "$1" 2>&1) || {
    echo "$out" >&2
    return 1
  }
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "bench_lua: errors while loading $1:" >&2
    echo "$out" >&2
    return 1
  fi
  awk '/^Requests\/sec:/ { print $2; found = 1 } END { exit !found }' <<<"$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
                                               else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

n=${#T_NAMES[@]}
echo "bench_lua: $n targets, $ROUNDS rounds of ${DURATION}s, wrk -t$THREADS -c$CONNS," \
     "about $((n * (ROUNDS * DURATION + WARMUP)))s"
for i in "${!T_NAMES[@]}"; do
  run_wrk "${T_URLS[$i]}" "$WARMUP" >/dev/null || die "warm-up of ${T_NAMES[$i]} failed"
  : >"$tmp/rps.${T_NAMES[$i]}"
done
for ((r = 1; r <= ROUNDS; r++)); do
  line="round $r:"
  for i in "${!T_NAMES[@]}"; do
    rps=$(run_wrk "${T_URLS[$i]}" "$DURATION") || die "${T_NAMES[$i]} failed in round $r"
    echo "$rps" >>"$tmp/rps.${T_NAMES[$i]}"
    line+=$(printf ' %s=%.0f' "${T_NAMES[$i]}" "$rps")
  done
  echo "$line"
done

# ---- report ----

declare -A MED
report() {
  echo "## bench_lua: Lua route vs C handler vs nginx ($(date -u +%FT%TZ))"
  echo "# $(nproc) CPUs; $ROUNDS rounds of ${DURATION}s; wrk -t$THREADS -c$CONNS; loopback;" \
       "wxgate workers=1, nginx worker_processes 1; access logs off"
  echo "# $("$BIN" version 2>&1 | head -1); $("$NGINX" -v 2>&1 | head -1)"
  printf '%-14s %-36s %12s %12s %12s\n' target what "median r/s" "min r/s" "max r/s"
  for i in "${!T_NAMES[@]}"; do
    local f=$tmp/rps.${T_NAMES[$i]}
    MED[${T_NAMES[$i]}]=$(median <"$f")
    printf '%-14s %-36s %12.0f %12.0f %12.0f\n' "${T_NAMES[$i]}" "${T_LABELS[$i]}" \
      "${MED[${T_NAMES[$i]}]}" "$(sort -g "$f" | head -1)" "$(sort -g "$f" | tail -1)"
  done
  echo
  # Per round, the two targets ran seconds apart: the median of the per-round
  # ratios is the figure to compare (it cancels slow drift of the machine);
  # the ratio of the medians is shown beside it.
  printf '%-40s %10s %12s %12s\n' ratio "per-round" "(min..max)" "of medians"
  for i in "${!R_LABELS[@]}"; do
    local a=${MED[${R_NUM[$i]}]:-} b=${MED[${R_DEN[$i]}]:-}
    if [ -z "$a" ] || [ -z "$b" ]; then
      printf '%-40s %10s\n' "${R_LABELS[$i]}" "n/a"
      continue
    fi
    local per
    per=$(paste "$tmp/rps.${R_NUM[$i]}" "$tmp/rps.${R_DEN[$i]}" | awk '{ print $1 / $2 }')
    printf '%-40s %10.3f %12s %12.3f\n' "${R_LABELS[$i]}" "$(median <<<"$per")" \
      "$(sort -g <<<"$per" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f..%.2f", lo, hi }')" \
      "$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')"
  done
  echo
}
report >"$tmp/report.txt"
cat "$tmp/report.txt"
cat "$tmp/report.txt" >>"$RESULTS"
