"""/auth floods (core/store/store_memory.c eviction, core/handler/handler_auth.c
rate limit): a flood of /auth can no longer take the login down for
everyone. States nobody calls back for give way to new ones, oldest first,
and each client's /auth is limited per minute (limits.auth_per_minute)."""
import re
import socket
import threading
import time

import requests

import test_callback
from test_callback import RETURN, World, ticket_of

AUTH = (b"GET /auth?campaign=base&return=https%3A%2F%2Fh5.example.com%2Fpage HTTP/1.1\r\n"
        b"Host: x\r\nUser-Agent: MicroMessenger\r\n\r\n")


class ConfiguredWorld(World):
    """A World whose gateway config gets extra top-level keys."""

    def __init__(self, gateway, sandbox, extra):
        saved = test_callback.CONFIG
        test_callback.CONFIG = saved.replace("listen = ", extra + "\n  listen = ", 1)
        try:
            super().__init__(gateway, sandbox)
        finally:
            test_callback.CONFIG = saved


def metric(w, name):
    m = re.search(r"^%s (\d+)" % name, requests.get(w.g.url + "/metrics", timeout=5).text, re.M)
    return int(m.group(1)) if m else 0


def flood(port, n, source="127.0.0.1", batch=40):
    """n pipelined /auth requests; returns the status codes seen."""
    codes = {}
    s = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    s.settimeout(10)
    buf = b""
    for start in range(0, n, batch):
        k = min(batch, n - start)
        s.sendall(AUTH * k)
        got = 0
        while got < k:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise AssertionError("connection closed")
            buf += chunk
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end].decode("latin-1")
                clen = int(re.search(r"Content-Length: (\d+)", head).group(1))
                if len(buf) < end + 4 + clen:
                    break
                code = int(head.split(" ", 2)[1])
                codes[code] = codes.get(code, 0) + 1
                buf = buf[end + 4 + clen:]
                got += 1
    s.close()
    return codes


def start_flood(port, n, source):
    results, done = {}, threading.Event()

    def flooder():
        try:
            results["codes"] = flood(port, n, source=source)
        finally:
            done.set()

    t = threading.Thread(target=flooder, daemon=True)
    t.start()
    return t, done, results


def test_a_flood_of_ten_times_the_store_leaves_real_users_logging_in(gateway, sandbox):
    # 1 MiB holds about 3,000 states; one client floods ten times that while
    # real users log in from another address, throughout.
    w = ConfiguredWorld(gateway, sandbox, 'store = "memory?max_mb=1",\n'
                                          '  limits = { auth_per_minute = 600 },')
    w.login_as("xiaoming")
    t, done, results = start_flood(w.g.port, 40000, "127.0.0.2")
    logins = 0
    while not done.is_set() or logins < 3:
        loc, ticket = ticket_of(w.login("base", RETURN))
        r = w.redeem(ticket)
        assert r.status_code == 200 and r.json()["openid"]
        logins += 1
    t.join(60)
    codes = results["codes"]
    assert sum(codes.values()) == 40000 and set(codes) <= {302, 429}, codes
    # 600 a minute: the flood may span a minute boundary or two (sanitizer build).
    assert codes.get(302, 0) <= 3 * 600, codes
    assert metric(w, "wxgate_auth_rate_limited_total") == codes[429]


def test_old_states_give_way_instead_of_refusing_logins(gateway, sandbox):
    # The same flood from many clients (here: the limit off): the store fills
    # ten times over, and every /auth is still answered with a login, by
    # evicting the oldest states nobody called back for; nothing else goes.
    w = ConfiguredWorld(gateway, sandbox, 'store = "memory?max_mb=1",\n'
                                          '  limits = { auth_per_minute = 0 },')
    w.login_as("xiaoming")
    loc, ticket = ticket_of(w.login("base", RETURN))  # a ticket, kept across the flood
    codes = flood(w.g.port, 40000, "127.0.0.2")
    assert codes == {302: 40000}, codes  # not one 503
    assert metric(w, "wxgate_store_evictions_total") > 30000
    r = w.redeem(ticket)
    assert r.status_code == 200 and r.json()["openid"]
    loc, ticket = ticket_of(w.login("base", RETURN))
    assert w.redeem(ticket).status_code == 200
    assert w.g.p.poll() is None


def test_each_client_is_limited_per_minute(gateway, sandbox):
    w = ConfiguredWorld(gateway, sandbox, 'limits = { auth_per_minute = 5,'
                                          ' trusted_proxies = { "127.0.0.3" } },')
    first = flood(w.g.port, 5)
    assert first == {302: 5}
    r = requests.get(w.g.url + "/auth?campaign=base&return=" + RETURN, timeout=5,
                     allow_redirects=False, headers={"User-Agent": "MicroMessenger"})
    if r.status_code != 429:  # the minute turned between the two: count again
        flood(w.g.port, 5)
        r = requests.get(w.g.url + "/auth?campaign=base&return=" + RETURN, timeout=5,
                         allow_redirects=False, headers={"User-Agent": "MicroMessenger"})
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "请求过于频繁" in r.text and "Too many login attempts" in r.text
    assert r.headers["X-Request-Id"] in r.text
    # Another client is not affected.
    assert flood(w.g.port, 3, source="127.0.0.2") == {302: 3}
    # Behind a trusted proxy the client is the address it forwards; anyone
    # else's X-Forwarded-For is ignored.
    def via(source, xff):
        s = socket.create_connection(("127.0.0.1", w.g.port), source_address=(source, 0))
        s.sendall(b"GET /auth?campaign=base&return=https%3A%2F%2Fh5.example.com%2Fpage "
                  b"HTTP/1.1\r\nHost: x\r\nUser-Agent: MicroMessenger\r\nX-Forwarded-For: " + xff.encode() +
                  b"\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        return int(data.split(b" ", 2)[1])
    assert [via("127.0.0.3", "203.0.113.9, 10.0.0.7") for _ in range(6)] == [302] * 5 + [429]
    assert via("127.0.0.3", "198.51.100.1") == 302  # another forwarded client
    assert [via("127.0.0.4", "198.51.100.2") for _ in range(6)] == [302] * 5 + [429]
    assert via("127.0.0.4", "198.51.100.3") == 429  # an untrusted peer's header is ignored
    assert metric(w, "wxgate_auth_rate_limited_total") >= 3
