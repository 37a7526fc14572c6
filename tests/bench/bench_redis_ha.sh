#!/usr/bin/env bash
# The long version of the Redis HA tests (issue 12): two instances run logins
# the whole time while the Sentinel primary is killed BENCH_HA_ROUNDS (3) times
# in a row, the dead node coming back as a replica after each, then a cluster
# primary is killed once. Real redis-server, redis-sentinel and a cluster made
# by redis-cli on loopback (tests/integration/redis_ha.py). Fails on any login
# that failed other than with a clean "try again", hung, or an instance that
# did not follow within the failover time plus 2 s. About a minute and a half.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export WXGATE_BIN=${WXGATE_BIN:-$root/build/wxgate}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
exec /usr/bin/python3 "$root/tests/bench/redis_ha_bench.py"
