"""wxgate on Redis Cluster (core/store/store_redis_cluster.c): three
primaries with one replica each, two instances, logins and /jssdk/config
spread over both while slots that hold login keys are resharded (MOVED and
ASK both followed) and then a primary is killed and its replica promoted.
Nothing is lost but logins whose own write met the dead node, and those got
a clean "try again"; exactly one cgi-bin/token fetch for the app in the
whole run; tickets issued before the kill redeem."""
import threading
import time

import pytest
import requests

from conftest import SLOW
from redis_ha import API_KEY, CONFIG, ENV, PAGE, Cluster, Logins, health, metric, redeem, wait_for


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.stop()


def calls(sb, endpoint):
    stats = requests.get(sb.url + "/_sandbox/stats", timeout=5).json()["endpoints"]
    return stats.get(endpoint, {}).get("calls", 0)


class JssdkLoad:
    """/jssdk/config on every instance in turn: 200, or a clean 503."""

    def __init__(self, gs):
        self.gs, self.ok, self.busy, self.failed = gs, 0, 0, []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        k = 0
        while not self.stop.is_set():
            g = self.gs[k % len(self.gs)]
            k += 1
            try:
                r = requests.get(g.url + "/jssdk/config", params={"app": "demo", "url": PAGE},
                                 timeout=15)
                if r.status_code == 200 and "signature" in r.json():
                    self.ok += 1
                elif r.status_code == 503:
                    self.busy += 1
                else:
                    self.failed.append((r.status_code, r.text[:200]))
            except requests.RequestException as e:
                self.failed.append(repr(e))
            time.sleep(0.01)

    def halt(self):
        self.stop.set()
        self.t.join(timeout=60)


def test_reshard_and_failover_under_load(gateway, sandbox, cluster):
    sb = sandbox()
    cfg = CONFIG % {"store": cluster.url + "?prefix=rc:&timeout_ms=500", "key": API_KEY,
                    "sb": sb.url}
    gs = [gateway(cfg, env=ENV) for _ in range(2)]
    primaries = cluster.primaries()
    assert len(primaries) == 3
    wait_for(lambda: all(health(g)[0] == 200 and
                         len(health(g)[1].get("store_node", "").split(",")) == 3 for g in gs),
             10 * SLOW, "both instances on the cluster")

    logins = Logins(sb)
    s = logins.phone()
    assert [logins.one(s, gs[i % 2])[0] for i in range(10)] == ["ok"] * 10
    jssdk = JssdkLoad(gs)
    logins.run(gs, threads=4)
    wait_for(lambda: jssdk.ok >= 4, 10 * SLOW, "JS-SDK configs")

    # Resharding: 300 slots of one primary to another, while logins run.
    app_slot = cluster.keyslot("{wx_sandbox_demo}")
    src = cluster.owner(app_slot)
    dst = next(p for p in primaries if p != src)
    first = primaries[src][1][0][0]
    cluster.migrate(src, dst, list(range(first, first + 300)), hold_s=2)
    wait_for(lambda: sum(metric(g, r'^wxgate_store_redirects_total\{kind="moved"\}')
                         for g in gs) >= 1, 10 * SLOW, "a MOVED followed")
    asks = sum(metric(g, r'^wxgate_store_redirects_total\{kind="ask"\}') for g in gs)
    assert asks >= 1

    # A primary dies (the one that holds the app's JS-SDK records): its
    # replica is promoted.
    victim = cluster.owner(app_slot)
    t_wait = time.time()
    assert cluster.node(victim).command("WAIT", "1", "2000") == b":1\r\n"
    cluster.node(victim).kill9()
    wait_for(lambda: len(cluster.primaries()) == 3 and victim not in cluster.primaries(),
             30, "a replica to be promoted")
    wait_for(lambda: all(health(g)[0] == 200 and
                         "127.0.0.1:%d" % victim not in health(g)[1].get("store_node", "")
                         for g in gs), 10 * SLOW, "both instances on the new map")
    time.sleep(1)
    logins.halt()
    jssdk.halt()

    assert logins.failed == [], logins.failed[:5]
    assert jssdk.failed == [], jssdk.failed[:5]
    assert logins.slowest < 5 * SLOW, logins.slowest
    assert jssdk.ok > 10
    # Every ticket issued before the dead primary's writes were known to be
    # on its replica redeems (through the other instance).
    kept = logins.tickets_before(t_wait)
    assert len(kept) > 10
    lost = [t for g, t in kept if redeem(gs[0] if g is gs[1] else gs[1], t).status_code != 200]
    assert lost == []
    after = [logins.one(s, gs[i % 2])[0] for i in range(10)]
    assert after == ["ok"] * 10
    assert calls(sb, "/cgi-bin/token") == 1
    for g in gs:
        assert metric(g, r"^wxgate_store_failovers_total") >= 1


def test_demo_takes_a_cluster_store(sandbox, cluster):
    from conftest import Proc, free_port
    sb = sandbox()
    port = free_port()
    p = Proc(["demo", "-l", "127.0.0.1:%d" % port,
              "--dashboard", "127.0.0.1:%d" % free_port(), "--store", cluster.url, "--sandbox", sb.url])
    try:
        p.wait_out(r"api_key: ")
        p.url = "http://127.0.0.1:%d" % port
        wait_for(lambda: health(p)[0] == 200 and
                 sorted(health(p)[1].get("store_node", "").split(",")) ==
                 sorted("127.0.0.1:%d" % q for q in cluster.primaries()),
                 10 * SLOW, "the demo on the cluster's primaries")
        r = requests.get(p.url + "/jssdk/config", params={"app": "demo", "url": p.url + "/demo/"},
                         timeout=10 * SLOW)
        assert r.status_code == 200, r.text
        slot = cluster.keyslot("{wx_sandbox_demo}")
        owner = cluster.node(cluster.owner(slot))
        assert b"jt:{wx_sandbox_demo}" in owner.command("KEYS", "*")
    finally:
        p.stop()
        p.check_sanitizers()
