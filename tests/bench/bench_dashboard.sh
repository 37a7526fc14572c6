#!/usr/bin/env bash
# Benchmark of issue 14: what the campaign dashboard's counters cost /auth.
#
#   wx_on   wxgate GET /auth, funnel counters on (the default)
#   wx_off  the same wxgate config with dashboard = { counters = false }
#
# Both run lib.sh's bench config (one worker, memory store, access log off),
# pinned to the same core, loaded in interleaved rounds with wrk.
# figure: /auth with counters on / off >= 0.97 (within 3%).
# About 2 x (BENCH_ROUNDS x BENCH_SECONDS + 1) s; lib.sh's settings apply.
source "$(dirname "$0")/lib.sh"

KEY=bench-api-key-0123456789
config=$(wx_config warn)
config=${config/campaigns = \{/api_keys = \{ \"$KEY\" \},
  campaigns = \{}
start_wxgate wx_on "$config"
start_wxgate wx_off "${config/campaigns = \{/dashboard = \{ counters = false \},
  campaigns = \{}"
on="http://127.0.0.1:${PORT[wx_on]}" off="http://127.0.0.1:${PORT[wx_off]}"
check_status "$on/auth?campaign=plain&$AUTH_QUERY" 302
check_status "$off/auth?campaign=plain&$AUTH_QUERY" 302

add_target wx_on "wxgate GET /auth (funnel counters on)" "$on/auth?campaign=plain&$AUTH_QUERY"
add_target wx_off "wxgate GET /auth (dashboard.counters = false)" \
  "$off/auth?campaign=plain&$AUTH_QUERY"
add_ratio "/auth with the dashboard's counters on / off" wx_on wx_off 0.97

measure

# The counters counted on one and not on the other.
started() {
  curl -fsS --max-time 5 "$1/api/campaigns/stats?window=all&campaign=plain" \
    -H "Authorization: Bearer $KEY" |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["campaigns"][0]["started"])'
}
n_on=$(started "$on") n_off=$(started "$off")
note "funnel: started = $n_on (counters on), $n_off (off)"
[ "$n_on" -gt 1000 ] || die "the counters on wx_on counted $n_on /auth"
[ "$n_off" = 0 ] || die "the counters on wx_off counted $n_off /auth"

report "issue 14: the campaign dashboard's counters on the /auth path"
