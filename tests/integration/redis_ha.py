"""Redis as teams run it, on loopback, for the HA tests (test_redis_sentinel.py,
test_redis_cluster.py) and tests/bench/bench_redis_ha.sh: a primary with a
replica watched by three sentinels, or a cluster of three primaries with one
replica each; plus a login driver that sorts every outcome into completed,
a clean "try again", or a failure."""
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

import requests

from conftest import Redis, free_port

UA = "Mozilla/5.0 (iPhone) Mobile/15E148 MicroMessenger/8.0.50"
API_KEY = "api-key-for-tests-0123456789"
PAGE = "https://h5.example.com/page"

CONFIG = '''
return {
  listen = "127.0.0.1:{PORT}", workers = 2,
  public_url = "http://127.0.0.1:{PORT}",
  store = "%(store)s",
  cookie_secret = "cookie-secret-0123456789abcdef",
  ticket_secret = "ticket-secret-0123456789abcdef",
  token_key = "token-key-0123456789abcdef",
  api_keys = { "%(key)s" },
  limits = { auth_per_minute = 1000000 },
  wechat = { open_base = "%(sb)s", api_base = "%(sb)s", timeout_ms = 3000 },
  apps = { demo = { appid = "wx_sandbox_demo", secret = { env = "S_DEMO" } } },
  campaigns = {
    base = { app = "demo", scope = "snsapi_base", allow = { "https://h5.example.com/" } },
  },
}
'''
ENV = {"S_DEMO": "sandbox_demo_secret"}


class Node(Redis):
    """A redis-server (or sentinel) with extra arguments, in its own directory."""

    def __init__(self, extra=(), sentinel_conf=None):
        self.extra = list(extra)
        self.sentinel_conf = sentinel_conf
        super().__init__()

    def start(self):
        if self.sentinel_conf is not None:
            conf = os.path.join(self.dir, "sentinel.conf")
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndir %s\n%s" % (self.port, self.dir,
                                                                self.sentinel_conf))
            args = ["redis-sentinel", conf]
        else:
            args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", self.dir] + self.extra
        self.p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.command("PING").startswith(b"+PONG"):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.p.kill()
        self.p.wait()
        raise AssertionError("redis did not start: %s" % args)

    def kill9(self):
        self.p.kill()
        self.p.wait(timeout=10)


def stop_all(nodes):
    """Terminates every node first, then waits for each: they stop together."""
    for n in nodes:
        if n.p.poll() is None:
            n.p.terminate()
    for n in nodes:
        n.p.wait(timeout=10)


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            v = cond()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


class Sentinel:
    """A primary, a replica, and three sentinels that fail over within about
    a second and a half of the primary going silent."""

    def __init__(self, name="mymaster", down_after_ms=1000):
        self.name = name
        self.nodes = []
        try:
            self._start(down_after_ms)
        except BaseException:
            self.stop()  # nothing started is left running
            raise

    def _start(self, down_after_ms):
        name = self.name
        self.primary = self._node()
        self.replica = self._node(["--replicaof", "127.0.0.1", str(self.primary.port)])
        conf = ("sentinel monitor %s 127.0.0.1 %d 2\n"
                "sentinel down-after-milliseconds %s %d\n"
                "sentinel failover-timeout %s 3000\n"
                "sentinel parallel-syncs %s 1\n" % (name, self.primary.port, name, down_after_ms,
                                                     name, name))
        self.sentinels = [self._node(sentinel_conf=conf) for _ in range(3)]
        wait_for(lambda: b"master_link_status:up" in self.replica.command("INFO", "replication"),
                 15, "the replica to sync")
        # Every sentinel knows the replica and the two other sentinels: a
        # failover can then happen.
        wait_for(lambda: all(s.command("SENTINEL", "REPLICAS", name).count(b"slave") >= 1 and
                             s.command("SENTINEL", "SENTINELS", name).count(b"runid") >= 2
                             for s in self.sentinels), 30, "sentinels to know each other")

    def _node(self, extra=(), sentinel_conf=None):
        n = Node(extra, sentinel_conf)
        self.nodes.append(n)
        return n

    @property
    def url(self):
        return "redis-sentinel://%s/%s/0" % (
            ",".join("127.0.0.1:%d" % s.port for s in self.sentinels), self.name)

    def primary_port(self):
        """The primary's port as the sentinels (a majority) say."""
        ports = []
        for s in self.sentinels:
            try:
                m = re.findall(rb"\$\d+\r\n(\d+)\r\n", s.command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name))
                ports.append(int(m[0]) if m else None)
            except OSError:
                ports.append(None)
        best = max(set(ports), key=ports.count)
        return best if ports.count(best) >= 2 else None

    def stop(self):
        stop_all(self.nodes)


class Cluster:
    """Three primaries with one replica each, made by redis-cli --cluster
    create; cluster-node-timeout is short so that a failover is quick."""

    def __init__(self, node_timeout_ms=1000):
        self.nodes = []
        try:
            self._start(node_timeout_ms)
        except BaseException:
            self.stop()  # nothing started is left running
            raise

    def _start(self, node_timeout_ms):
        # The bus port is given: port + 10000 may be beyond 65535.
        for _ in range(6):
            self.nodes.append(Node(["--cluster-enabled", "yes", "--cluster-node-timeout",
                                    str(node_timeout_ms), "--cluster-config-file", "nodes.conf",
                                    "--cluster-port", str(free_port())]))
        subprocess.run(["redis-cli", "--cluster", "create"] +
                       ["127.0.0.1:%d" % n.port for n in self.nodes] +
                       ["--cluster-replicas", "1", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        wait_for(lambda: all(b"cluster_state:ok" in n.command("CLUSTER", "INFO")
                             for n in self.nodes), 30, "the cluster to be ok")

    @property
    def url(self):
        return "redis-cluster://%s/" % ",".join("127.0.0.1:%d" % n.port for n in self.nodes[:2])

    def node(self, port):
        return next(n for n in self.nodes if n.port == port)

    def live(self):
        return next(n for n in self.nodes if n.p.poll() is None)

    def primaries(self):
        """{port: (node id, [(first slot, last slot)...])} of the primaries
        that own slots and are not failed, as a live node sees them."""
        out = {}
        for line in self.live().command("CLUSTER", "NODES").decode().splitlines():
            f = line.split()
            if len(f) > 8 and "master" in f[2] and "fail" not in f[2]:
                ranges = [tuple(int(x) for x in r.split("-")) if "-" in r else (int(r), int(r))
                          for r in f[8:] if not r.startswith("[")]
                out[int(f[1].split("@")[0].split(":")[1])] = (f[0], ranges)
        return out

    def keyslot(self, key):
        return int(self.live().command("CLUSTER", "KEYSLOT", key)[1:-2])

    def owner(self, slot):
        return next(p for p, (_, ranges) in self.primaries().items()
                    if any(a <= slot <= b for a, b in ranges))

    def migrate(self, src, dst, slots, hold_s, during=None):
        """Moves slots from primary port src to dst as redis-cli --cluster
        reshard does, but holds them half-moved (MIGRATING/IMPORTING) for
        hold_s first, so that new keys meet ASK; every node learns the new
        owner at the end (clients still on the old map meet MOVED)."""
        ids = {p: i for p, (i, _) in self.primaries().items()}
        s, d = self.node(src), self.node(dst)
        for slot in slots:
            d.command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src])
            s.command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[dst])
        time.sleep(hold_s)
        if during:
            during()
        for slot in slots:
            while True:
                keys = re.findall(rb"\$\d+\r\n([^\r\n]*)\r\n",
                                  s.command("CLUSTER", "GETKEYSINSLOT", slot, 1000))
                if not keys:
                    break
                r = s.command("MIGRATE", "127.0.0.1", dst, "", 0, 5000, "REPLACE", "KEYS", *keys)
                assert r.startswith(b"+OK"), r
        for slot in slots:
            for n in (d, s):
                n.command("CLUSTER", "SETSLOT", slot, "NODE", ids[dst])
        for p in ids:
            if p not in (src, dst):
                for slot in slots:
                    self.node(p).command("CLUSTER", "SETSLOT", slot, "NODE", ids[dst])

    def stop(self):
        stop_all(self.nodes)


class Logins:
    """Logins driven through one or more gateways, every outcome recorded:
    ok (a ticket), retry (a clean "try again" page: 502/503 saying so),
    expired (the clean "login expired, open the page again" page: its state
    was written on one side of a failover and read on the other), or failed
    (anything else, with what it was), and the slowest one."""

    def __init__(self, sb):
        self.sb = sb
        self.ok, self.retry, self.expired, self.failed, self.tickets = 0, 0, 0, [], []
        self.slowest = 0.0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = []

    def phone(self, user="xiaoming"):
        s = requests.Session()
        s.headers["User-Agent"] = UA
        assert s.post(self.sb.url + "/_sandbox/login?user=" + user, timeout=5).status_code == 200
        return s

    def one(self, s, g):
        """One whole login on g: (outcome, ticket or detail)."""
        t0 = time.time()
        try:
            r = s.get(g.url + "/auth?campaign=base&return=" + urllib.parse.quote(PAGE, safe=""),
                      allow_redirects=False, timeout=15)
            if r.status_code == 302:
                r = s.get(r.headers["Location"], allow_redirects=False, timeout=15)
                if r.status_code == 302 and "/callback" in r.headers.get("Location", ""):
                    r = s.get(r.headers["Location"], allow_redirects=False, timeout=15)
            loc = r.headers.get("Location", "")
            m = re.search(r"wx_ticket=(\w+)", loc) if r.status_code == 302 else None
            if m:
                out = ("ok", m.group(1))
            elif r.status_code in (502, 503) and "try again" in r.text.lower():
                out = ("retry", r.status_code)
            elif r.status_code == 400 and "登录已过期" in r.text:
                out = ("expired", r.status_code)
            else:
                out = ("failed", "%d %s %s" % (r.status_code, loc, r.text[:200]))
        except requests.RequestException as e:
            out = ("failed", repr(e))
        with self.lock:
            self.slowest = max(self.slowest, time.time() - t0)
            if out[0] == "ok":
                self.ok += 1
                self.tickets.append((g, out[1], time.time()))
            elif out[0] == "retry":
                self.retry += 1
            elif out[0] == "expired":
                self.expired += 1
            else:
                self.failed.append(out[1])
        return out

    def tickets_before(self, t):
        """(gateway, ticket) of the logins completed before time t."""
        with self.lock:
            return [(g, k) for g, k, done in self.tickets if done < t]

    def run(self, gateways, threads=4):
        """Logins in the background, round robin over gateways, until halt()."""
        def loop(i):
            s = self.phone()
            k = i
            while not self.stop.is_set():
                # A user who is told to try again does so a little later.
                if self.one(s, gateways[k % len(gateways)])[0] == "retry":
                    time.sleep(0.05)
                k += 1
        self.threads = [threading.Thread(target=loop, args=(i,), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def halt(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def redeem(g, ticket):
    return requests.post(g.url + "/api/ticket", data={"ticket": ticket}, timeout=10,
                         headers={"Authorization": "Bearer " + API_KEY})


def health(g):
    try:
        r = requests.get(g.url + "/healthz", timeout=5)
        return r.status_code, r.json()
    except (requests.RequestException, ValueError):
        return 0, {}


def metric(g, text_re):
    """Sum of every series of /metrics matching text_re (a regex over the line's name part)."""
    total = 0.0
    for line in requests.get(g.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if re.search(text_re, name):
            total += float(value)
    return total
