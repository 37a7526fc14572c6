# Shared by the benchmarks in tests/bench (sourced, not run): settings,
# servers pinned to a core, wrk runs, interleaved rounds and the report.
#
# A benchmark script sources this file, starts its servers (start_wxgate,
# start_nginx), declares what it measures (add_target, add_ratio, add_p99),
# checks the answers (check_status or its own curl checks), then calls
# measure and report. See bench_http.sh. Every process started here is
# stopped on exit, by its PID.
#
# Settings (environment):
#   BENCH_ROUNDS (5), BENCH_SECONDS (3)   rounds, and seconds of wrk per target per round
#   BENCH_CONNECTIONS (50), BENCH_THREADS (1), BENCH_WARMUP_SECONDS (1)
#   BENCH_SERVER_CPU (0), BENCH_CLIENT_CPU (1)  servers on one core, wrk on the other
#   BENCH_RESULTS                         file the report is appended to
#                                         (default build/bench-results.txt, truncated)
#   WXGATE_BIN, NGINX, NGINX_MODULES      what to run
set -euo pipefail

BENCH_NAME=${BENCH_NAME:-$(basename "$0" .sh)}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

BIN=${WXGATE_BIN:-$root/build/wxgate}
ROUNDS=${BENCH_ROUNDS:-5}
DURATION=${BENCH_SECONDS:-3}
CONNS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-1}
WARMUP=${BENCH_WARMUP_SECONDS:-1}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
NGINX=${NGINX:-/usr/sbin/nginx}
NGINX_MODULES=${NGINX_MODULES:-/usr/lib/nginx/modules}
if [ -n "${BENCH_RESULTS:-}" ]; then
  RESULTS=$BENCH_RESULTS
else
  RESULTS=$root/build/bench-results.txt
  : >"$RESULTS"
fi
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
note() { echo "$BENCH_NAME: $*" >&2; }
command -v wrk >/dev/null || die "wrk is missing (scripts/setup bench)"
command -v curl >/dev/null || die "curl is missing (scripts/setup)"
[ -x "$BIN" ] || die "$BIN is missing (scripts/build --release-only)"

# Servers run on SERVER_CPU, wrk on CLIENT_CPU, so the load generator never
# takes the server's core. Without two cores or taskset, nothing is pinned.
SERVER_PIN=() CLIENT_PIN=() PINNING="not pinned"
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN=(taskset -c "$SERVER_CPU")
  CLIENT_PIN=(taskset -c "$CLIENT_CPU")
  PINNING="servers on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU"
else
  note "fewer than 2 CPUs or no taskset: servers and wrk are not pinned"
fi

# ---- processes: every one started here is stopped on exit, by PID ----

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

# wait_http URL PID: until URL answers 2xx (10 s), or PID dies.
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

declare -A PORT PID LOG

# start_wxgate NAME CONFIG: runs build/wxgate with CONFIG (the text of a
# config file, in $tmp, where @LISTEN@ becomes a free loopback address,
# e.g. "$(wx_config warn)"), pinned; its stderr (log lines, the access log) goes to
# $tmp/NAME.log. Sets PORT[NAME], PID[NAME], LOG[NAME]. Waits for /healthz.
start_wxgate() {
  local name=$1 config=$2 port
  port=$(free_port)
  printf '%s\n' "${config//@LISTEN@/127.0.0.1:$port}" >"$tmp/$name.lua"
  "${SERVER_PIN[@]}" "$BIN" run -c "$tmp/$name.lua" >"$tmp/$name.out" \
    2>"$tmp/$name.log" </dev/null &
  local pid=$!
  track_pid "$pid"
  PORT[$name]=$port PID[$name]=$pid LOG[$name]=$tmp/$name.log
  wait_http "http://127.0.0.1:$port/healthz" "$pid" ||
    { tail -20 "$tmp/$name.log" >&2; die "wxgate $name did not start"; }
}

# The wxgate the benchmarks run: one worker, a memory store, a campaign
# "plain" without script and "hooked" with an empty authorize hook (both
# allow ALLOW), and a Lua route /hello answering "hello".
COOKIE_SECRET=bench-cookie-secret-0123456789
PUBLIC_URL=https://login.example.com
APPID=wxbench
ALLOW=https://h5.example.com/
AUTH_QUERY="return=https%3A%2F%2Fh5.example.com%2Fp"
export BENCH_APP_SECRET=bench-app-secret

# wx_config LOG_LEVEL: the config text for start_wxgate. "warn" writes no
# access log line; "info" (wxgate's default) writes one per request.
wx_config() {
  cat >"$tmp/hello.lua" <<'LUA'
return function(req) return 200, "hello" end
LUA
  cat >"$tmp/hook.lua" <<'LUA'
return { authorize = function(req, ctx) end }
LUA
  cat <<LUA
return {
  listen = "@LISTEN@",
  workers = 1,
  log_level = "$1",
  -- wrk is one client: the per-client /auth limit stays on but never refuses.
  limits = { drain_timeout_ms = 1000, auth_per_minute = 1000000000 },
  routes = { ["/hello"] = "hello.lua" },
  store = "memory?max_mb=2048",  -- /auth stores a state per request
  public_url = "$PUBLIC_URL",
  cookie_secret = "$COOKIE_SECRET",
  ticket_secret = "bench-ticket-secret-0123456789",
  require_wechat_browser = false,
  apps = { a = { appid = "$APPID", secret = { env = "BENCH_APP_SECRET" } } },
  campaigns = {
    plain = { app = "a", allow = { "$ALLOW" } },
    hooked = { app = "a", allow = { "$ALLOW" }, script = "hook.lua" },
  },
}
LUA
}

# start_nginx NAME HTTP [MAIN] [PROBE]: runs nginx, one worker, pinned, with
# HTTP added inside http { } (server blocks; @LISTEN@ becomes a free
# loopback address) and MAIN at the top level (load_module lines). Access
# log off, keep-alive unlimited. Waits until PROBE (a path, default /)
# answers 2xx. Sets PORT[NAME], PID[NAME], LOG[NAME] (the error log).
start_nginx() {
  local name=$1 http=$2 main=${3:-} probe=${4:-/}
  [ -x "$NGINX" ] || die "$NGINX is missing (scripts/setup bench)"
  local port dir=$tmp/$name
  port=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
$main
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
${http//@LISTEN@/127.0.0.1:$port}
}
EOF
  "$NGINX" -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/test.log" 2>&1 ||
    { cat "$dir/test.log" >&2; die "nginx $name: the config does not load"; }
  "${SERVER_PIN[@]}" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
    </dev/null >"$dir/out.log" 2>&1 &
  local pid=$!
  track_pid "$pid"
  PORT[$name]=$port PID[$name]=$pid LOG[$name]=$dir/error.log
  wait_http "http://127.0.0.1:$port$probe" "$pid" ||
    { cat "$dir/out.log" "$dir/error.log" >&2 2>/dev/null; die "nginx $name did not start"; }
}

# nginx_errors NAME: fails if nginx NAME logged an error (a Lua error, a
# full shared dict) or is gone.
nginx_errors() {
  kill -0 "${PID[$1]}" 2>/dev/null || die "nginx $1 is gone"
  if grep -E '\[(error|crit|alert|emerg)\]' "${LOG[$1]}" >&2; then
    die "nginx $1 logged errors (${LOG[$1]})"
  fi
}

# ---- answers ----

# fetch URL: the status line and headers of a GET in $tmp/head, the body in
# $tmp/body; prints the status code.
fetch() {
  curl -sS --max-time 5 -D "$tmp/head" -o "$tmp/body" -w '%{http_code}' "$1" ||
    die "$1: no answer"
}

# header NAME: the value of header NAME in $tmp/head (the last one).
header() {
  tr -d '\r' <"$tmp/head" | awk -v n="$(tr 'A-Z' 'a-z' <<<"$1")" '
    { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^ +/, "", v) } }
    END { print v }'
}

# check_status URL STATUS [BODY]: the answer has STATUS (and BODY, exactly).
check_status() {
  local code
  code=$(fetch "$1")
  [ "$code" = "$2" ] || die "$1 answered $code, not $2"
  if [ $# -ge 3 ] && [ "$(cat "$tmp/body")" != "$3" ]; then
    die "$1 answered \"$(head -c 200 "$tmp/body")\", not \"$3\""
  fi
}

# ---- targets and figures ----

T_NAMES=() T_URLS=()
declare -A T_LABEL
# add_target NAME LABEL URL: one URL loaded with wrk in every round.
add_target() { T_NAMES+=("$1"); T_LABEL[$1]=$2; T_URLS+=("$3"); }

F_KIND=() F_LABEL=() F_NUM=() F_DEN=() F_GOAL=()
# add_ratio LABEL NUM DEN [MIN]: requests/s of NUM over DEN, the median of
# the per-round ratios; PASS when at least MIN ("-": shown, no target).
add_ratio() { F_KIND+=(ratio); F_LABEL+=("$1"); F_NUM+=("$2"); F_DEN+=("$3"); F_GOAL+=("${4:--}"); }
# add_p99 LABEL NUM DEN [MAX_MS]: p99 latency of NUM minus that of DEN in ms,
# the median of the per-round differences; PASS when at most MAX_MS.
add_p99() { F_KIND+=(p99); F_LABEL+=("$1"); F_NUM+=("$2"); F_DEN+=("$3"); F_GOAL+=("${4:--}"); }

# ---- measuring ----

# to_ms VALUE: a wrk latency (850.00us, 1.20ms, 2.00s, 1.00m) in ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = u == "us" ? 0.001 : u == "ms" ? 1 : u == "s" ? 1000 : u == "m" ? 60000 : -1
    if (f < 0) exit 1
    printf "%.3f\n", n * f }'
}

# run_wrk URL SECONDS: prints "requests/s p99_ms". Fails when wrk does, when
# it reports socket errors (connect, read, write, timeout), or any answer of
# 400 or more ("Non-2xx or 3xx responses" counts only those: a 302 is fine).
run_wrk() {
  local out p99
  out=$(timeout $(($2 + 15)) "${CLIENT_PIN[@]}" wrk --latency -t"$THREADS" -c"$CONNS" \
          -d"$2"s "$1" 2>&1) || { echo "$out" >&2; return 1; }
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    note "errors while loading $1:"
    echo "$out" >&2
    return 1
  fi
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  p99=$(to_ms "$p99") || { echo "$out" >&2; note "no p99 in wrk's output"; return 1; }
  awk -v p="$p99" '/^Requests\/sec:/ { print $2, p; found = 1 } END { exit !found }' <<<"$out" ||
    { echo "$out" >&2; return 1; }
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
                                               else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# measure: a warm-up run per target, then ROUNDS rounds in which every target
# runs once, one at a time (only one server is loaded at any moment). Odd
# rounds go in the order of add_target, even rounds backwards: the targets
# compared stay next to each other (add them so), and neither always goes
# first. Line r of $tmp/rps.NAME and $tmp/p99.NAME is round r.
measure() {
  local n=${#T_NAMES[@]} r k i out line
  note "$n targets, $ROUNDS rounds of ${DURATION}s, wrk -t$THREADS -c$CONNS, $PINNING," \
       "about $((n * (ROUNDS * DURATION + WARMUP)))s"
  for i in "${!T_NAMES[@]}"; do
    run_wrk "${T_URLS[$i]}" "$WARMUP" >/dev/null || die "warm-up of ${T_NAMES[$i]} failed"
    : >"$tmp/rps.${T_NAMES[$i]}"
    : >"$tmp/p99.${T_NAMES[$i]}"
  done
  for ((r = 1; r <= ROUNDS; r++)); do
    line="round $r:"
    for ((k = 0; k < n; k++)); do
      i=$((r % 2 ? k : n - 1 - k))
      out=$(run_wrk "${T_URLS[$i]}" "$DURATION") || die "${T_NAMES[$i]} failed in round $r"
      echo "${out% *}" >>"$tmp/rps.${T_NAMES[$i]}"
      echo "${out#* }" >>"$tmp/p99.${T_NAMES[$i]}"
      line+=$(printf ' %s=%.0f' "${T_NAMES[$i]}" "${out% *}")
    done
    echo "$line"
  done
}

# ---- report ----

# range: "min..max" of the numbers on stdin.
range() { sort -g | awk -v f="$1" 'NR == 1 { lo = $1 } { hi = $1 }
                                   END { printf "%" f ".." "%" f, lo, hi }'; }

# report TITLE: per target, the median, min and max requests/s and the
# median p99; then each figure with its target and PASS or FAIL. Printed,
# and appended to $RESULTS. A FAIL does not fail the script: timings on a
# shared machine are noisy.
report() {
  local i f name per value goal verdict
  {
    echo "## $BENCH_NAME: $1 ($(date -u +%FT%TZ))"
    echo "# $(nproc) CPUs, $PINNING; $ROUNDS interleaved rounds of ${DURATION}s;" \
         "wrk -t$THREADS -c$CONNS; loopback; one worker per server"
    echo "# $("$BIN" version 2>&1 | head -1); $("$NGINX" -v 2>&1 | head -1)"
    printf '%-13s %-48s %10s %16s %9s\n' target what "r/s median" "(min..max)" "p99 ms"
    for name in "${T_NAMES[@]}"; do
      printf '%-13s %-48s %10.0f %16s %9.2f\n' "$name" "${T_LABEL[$name]}" \
        "$(median <"$tmp/rps.$name")" "$(range .0f <"$tmp/rps.$name")" \
        "$(median <"$tmp/p99.$name")"
    done
    # A target whose rounds differ by more than a third: the machine was busy.
    for name in "${T_NAMES[@]}"; do
      sort -g "$tmp/rps.$name" | awk -v n="$name" 'NR == 1 { lo = $1 } { hi = $1 }
        END { if (lo > 0 && hi / lo > 1.33) printf " %s %.1fx", n, hi / lo }'
    done >"$tmp/noisy"
    if [ -s "$tmp/noisy" ]; then
      echo "# noisy run, max/min over the rounds:$(cat "$tmp/noisy");" \
           "rerun (more BENCH_ROUNDS) before trusting a close figure"
    fi
    echo
    printf '%-3s %-60s %9s %13s %9s  %s\n' "#" figure measured "(rounds)" target result
    for i in "${!F_KIND[@]}"; do
      f=${F_KIND[$i]} goal=${F_GOAL[$i]}
      if [ "$f" = ratio ]; then
        per=$(paste "$tmp/rps.${F_NUM[$i]}" "$tmp/rps.${F_DEN[$i]}" | awk '{ print $1 / $2 }')
        value=$(median <<<"$per")
        verdict=$(awk -v v="$value" -v g="$goal" 'BEGIN { print (g == "-" ? "" : v >= g + 0 ? "PASS" : "FAIL") }')
        [ "$goal" = - ] || goal=">= $goal"
        printf '%-3s %-60s %8.2fx %13s %9s  %s\n' "$((i + 1))" "${F_LABEL[$i]}" "$value" \
          "$(range .2f <<<"$per")" "$goal" "$verdict"
      else
        per=$(paste "$tmp/p99.${F_NUM[$i]}" "$tmp/p99.${F_DEN[$i]}" | awk '{ print $1 - $2 }')
        value=$(median <<<"$per")
        verdict=$(awk -v v="$value" -v g="$goal" 'BEGIN { print (g == "-" ? "" : v <= g + 0 ? "PASS" : "FAIL") }')
        [ "$goal" = - ] || goal="<= $goal ms"
        printf '%-3s %-60s %+6.2f ms %13s %9s  %s\n' "$((i + 1))" "${F_LABEL[$i]}" "$value" \
          "$(range +.2f <<<"$per")" "$goal" "$verdict"
      fi
    done
    echo
  } >"$tmp/report.txt"
  cat "$tmp/report.txt"
  cat "$tmp/report.txt" >>"$RESULTS"
}

API_KEY=bench-api-key-0123456789abcdef
USERS=xiaoming,meimei,lilei,panda
RET=https://h5.example.com/page
export BENCH_SB_DEMO_SECRET=sandbox_demo_secret

# ---- whole logins: the sandbox and the gateway (bench_login.sh, bench_chaos.sh) ----

# start_login_sandbox: `wxgate sandbox` with SB_WORKERS (default 4) workers on
# the client CPU; sets SB and sb_pid.
start_login_sandbox() {
  local sb_port
  sb_port=$(free_port)
  # Each sandbox worker holds at most 4096 connections (its default limits),
  # and every in-flight login holds one from the gateway: 4 workers for 10,000.
  "${CLIENT_PIN[@]}" "$BIN" sandbox -l "127.0.0.1:$sb_port" --workers "${SB_WORKERS:-4}" \
    >"$tmp/sandbox.out" 2>"$tmp/sandbox.log" </dev/null &
  sb_pid=$!
  track_pid "$sb_pid"
  SB=http://127.0.0.1:$sb_port
  wait_http "$SB/_sandbox/stats" "$sb_pid" ||
    { tail -20 "$tmp/sandbox.log" >&2; die "the sandbox did not start"; }
}

sbctl() {   # sbctl METHOD PATH?QUERY
  curl -fsS --max-time 5 -X "$1" "$SB$2" >/dev/null || die "sandbox control $1 $2 failed"
}
# grant_login_users: consent given ahead for every user the browsers log in as.
grant_login_users() {
  local u
  for u in ${USERS//,/ }; do
    sbctl POST "/_sandbox/grant?user=$u&appid=wx_sandbox_demo&scope=snsapi_userinfo"
  done
}
# latency SECONDS_FOR_ACCESS_TOKEN SECONDS_FOR_USERINFO ("0": none)
latency() {
  sbctl DELETE "/_sandbox/fault"
  [ "$1" = 0 ] || sbctl POST "/_sandbox/fault?endpoint=/sns/oauth2/access_token&type=latency&delay=$1"
  [ "$2" = 0 ] || sbctl POST "/_sandbox/fault?endpoint=/sns/userinfo&type=latency&delay=$2"
}

# ---- the gateway ----

login_config() {
  cat <<LUA
return {
  listen = "@LISTEN@",
  public_url = "http://@LISTEN@",
  workers = 1,
  log_level = "warn",
  store = "${LOGIN_STORE:-memory?max_mb=1024}",
  -- One load generator is one client: the per-client /auth limit stays on but never refuses.
  limits = { drain_timeout_ms = 1000, max_connections = 16384, auth_per_minute = 1000000000 },
  cookie_secret = "bench-cookie-secret-0123456789",
  ticket_secret = "bench-ticket-secret-0123456789",
  token_key = "bench-token-key-0123456789abcdef",
  api_keys = { "$API_KEY" },
  require_wechat_browser = false,
  wechat = { open_base = "$SB", api_base = "$SB", timeout_ms = 10000 },
  apps = { demo = { appid = "wx_sandbox_demo", secret = { env = "BENCH_SB_DEMO_SECRET" } } },
  campaigns = {
    info = { app = "demo", scope = "snsapi_userinfo", allow = { "https://h5.example.com/" } },
  },
}
LUA
}

# loadgen NAME GATEWAY ARGS...: one run, pinned with the sandbox; its output
# in $tmp/NAME.out, its JSON line in $tmp/NAME.json.
loadgen() {
  local name=$1 gw=$2
  shift 2
  timeout 100 "${CLIENT_PIN[@]}" "${LOADGEN:-$root/build/wxgate_loadgen}" -g "$gw" -s "$SB" -C info -r "$RET" -k "$API_KEY" \
    -u "$USERS" -L "$name" "$@" >"$tmp/$name.out" 2>&1 || { cat "$tmp/$name.out" >&2; die "loadgen $name failed"; }
  sed 's/^/  /' "$tmp/$name.out" | grep -v '^  {' >&2 || true
  tail -1 "$tmp/$name.out" >"$tmp/$name.json"
}
jget() { /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/$1.json" "$2"; }
