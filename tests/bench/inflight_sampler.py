#!/usr/bin/python3
"""Samples, every 20 ms for SECONDS, the gateway's RSS (/proc/PID/status
VmRSS) and its calls to WeChat in progress (wxgate_upstream_in_flight on
/metrics): what a login waiting on WeChat costs the gateway, counted on the
gateway's side (the load generator cannot tell a request the gateway holds
from one still in a socket buffer).

    inflight_sampler.py GATEWAY_PID GATEWAY_URL SECONDS

Prints one JSON line: the sample with the most calls in flight, its RSS and
the RSS before the run: {"in_flight", "rss_kb", "rss_start_kb",
"kib_per_in_flight"}. Used by bench_login.sh (issue 11)."""
import json
import re
import sys
import time
import urllib.request

pid, gateway, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
GAUGE = re.compile(r"^wxgate_upstream_in_flight (\S+)$", re.M)


def rss_kb():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def in_flight():
    try:
        with urllib.request.urlopen(gateway + "/metrics", timeout=2) as r:
            m = GAUGE.search(r.read().decode())
            return int(float(m.group(1))) if m else 0
    except OSError:
        return 0


rss_start = rss_kb()
best = {"in_flight": 0, "rss_kb": rss_start}
end = time.monotonic() + seconds
while time.monotonic() < end:
    r0 = rss_kb()
    n = in_flight()
    r = max(r0, rss_kb())
    if n > best["in_flight"] or (n == best["in_flight"] and r > best["rss_kb"]):
        best = {"in_flight": n, "rss_kb": r}
    time.sleep(0.02)
best["rss_start_kb"] = rss_start
best["kib_per_in_flight"] = ((best["rss_kb"] - rss_start) / best["in_flight"]
                             if best["in_flight"] else -1)
print(json.dumps(best))
