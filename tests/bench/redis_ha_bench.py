"""The long version of the Redis HA tests (tests/integration/test_redis_sentinel.py
and test_redis_cluster.py), run by bench_redis_ha.sh: logins from two instances
run the whole time while the Sentinel primary is killed (kill -9) BENCH_HA_ROUNDS
times in a row (the dead node comes back as a replica each time), then a
cluster primary is killed once. Prints one line per failover and exits 1 if any
login failed other than with a clean "try again", hung (> 5 s), or if an
instance did not follow within the failover time plus 2 s."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from conftest import Gateway, Sandbox  # noqa: E402
from redis_ha import (API_KEY, CONFIG, ENV, Cluster, Logins, Sentinel, health,  # noqa: E402
                      redeem, wait_for)

ROUNDS = int(os.environ.get("BENCH_HA_ROUNDS", "3"))
SETTLE = float(os.environ.get("BENCH_HA_SETTLE_SECONDS", "5"))
problems = []
rows = []


def instances(sb, store):
    cfg = CONFIG % {"store": store + "?prefix=bench:&timeout_ms=500", "key": API_KEY,
                    "sb": sb.url}
    return [Gateway(cfg, env=ENV) for _ in range(2)]


def check(logins, what):
    if logins.failed:
        problems.append("%s: %d failed logins, e.g. %s" % (what, len(logins.failed),
                                                           logins.failed[0]))
    if logins.slowest > 5:
        problems.append("%s: a login took %.1f s" % (what, logins.slowest))


def sentinel_rounds(sb):
    ha = Sentinel()
    gs = instances(sb, ha.url)
    try:
        logins = Logins(sb)
        logins.run(gs, threads=4)
        for rnd in range(1, ROUNDS + 1):
            time.sleep(SETTLE)
            port = ha.primary_port()
            dead = next(n for n in ha.nodes[:2] if n.port == port)
            alive = next(n for n in ha.nodes[:2] if n.port != port)
            assert dead.command("WAIT", "1", "2000") == b":1\r\n"
            kept = logins.tickets_before(time.time())
            t_kill = time.time()
            dead.kill9()
            wait_for(lambda: ha.primary_port() == alive.port, 60, "promotion")
            t_switch = time.time()
            new = "127.0.0.1:%d" % alive.port
            wait_for(lambda: all(health(g)[0] == 200 and health(g)[1].get("store_node") == new
                                 for g in gs), 10, "instances to follow")
            t_follow = time.time()
            if t_follow - t_switch > 2:
                problems.append("round %d: followed %.1f s after the switch" %
                                (rnd, t_follow - t_switch))
            lost = sum(redeem(gs[i % 2], t).status_code != 200
                       for i, (_, t) in enumerate(kept[-50:]))
            if lost:
                problems.append("round %d: %d of the last 50 tickets lost" % (rnd, lost))
            rows.append("sentinel round %d: promoted in %.2f s, followed %.2f s later, "
                        "logins so far ok %d, try-again %d, failed %d, slowest %.2f s" %
                        (rnd, t_switch - t_kill, t_follow - t_switch, logins.ok, logins.retry,
                         len(logins.failed), logins.slowest))
            print(rows[-1], flush=True)
            # The dead primary comes back as a replica of the new one.
            dead.extra = ["--replicaof", "127.0.0.1", str(alive.port)]
            dead.start()
            wait_for(lambda: b"master_link_status:up" in dead.command("INFO", "replication"),
                     30, "the old primary to resync")
            wait_for(lambda: all(s.command("SENTINEL", "REPLICAS", ha.name).count(b"slave") >= 1
                                 for s in ha.sentinels), 30, "sentinels to see the replica")
        time.sleep(SETTLE)
        logins.halt()
        check(logins, "sentinel")
    finally:
        for g in gs:
            g.stop()
        ha.stop()


def cluster_round(sb):
    cl = Cluster()
    gs = instances(sb, cl.url)
    try:
        wait_for(lambda: all(health(g)[0] == 200 for g in gs), 10, "instances on the cluster")
        logins = Logins(sb)
        logins.run(gs, threads=4)
        time.sleep(SETTLE)
        victim = cl.owner(cl.keyslot("{wx_sandbox_demo}"))
        assert cl.node(victim).command("WAIT", "1", "2000") == b":1\r\n"
        t_kill = time.time()
        cl.node(victim).kill9()
        wait_for(lambda: len(cl.primaries()) == 3 and victim not in cl.primaries(), 60,
                 "promotion")
        t_switch = time.time()
        wait_for(lambda: all(health(g)[0] == 200 for g in gs), 10, "instances on the new map")
        t_follow = time.time()
        time.sleep(SETTLE)
        logins.halt()
        check(logins, "cluster")
        rows.append("cluster: promoted in %.2f s, followed %.2f s later, logins ok %d, "
                    "try-again %d, failed %d, slowest %.2f s" %
                    (t_switch - t_kill, t_follow - t_switch, logins.ok, logins.retry,
                     len(logins.failed), logins.slowest))
        print(rows[-1], flush=True)
    finally:
        for g in gs:
            g.stop()
        cl.stop()


def main():
    sb = Sandbox()
    try:
        sentinel_rounds(sb)
        cluster_round(sb)
    finally:
        sb.stop()
    results = os.environ.get("BENCH_RESULTS")
    if results:
        with open(results, "a") as f:
            f.write("## Redis HA (bench_redis_ha.sh)\n\n" + "\n".join(rows) + "\n" +
                    ("FAIL: " + "; ".join(problems) if problems else "PASS") + "\n\n")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
