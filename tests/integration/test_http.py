"""The HTTP/1.1 server (core/http/http.c, core/http/http_parse.c) against a real
wxgate process, over raw sockets: request smuggling, strict framing,
pipelining, deadlines, slow readers, the connection cap, the listen address,
and the heap allocations of one /auth."""
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, SANITIZED, SLOW, Proc, free_port

MINIMAL = 'return { listen = "127.0.0.1:{PORT}", workers = 1 }\n'

ECHO_ROUTE = ('return function(req)\n'
              '  return 200, (req.query.i or "") .. ":" .. #(req.body or "")\n'
              'end\n')

AUTH_CONFIG = '''return {
  listen = "127.0.0.1:{PORT}", workers = 1,
  public_url = "https://login.example.com",
  cookie_secret = "test-cookie-secret-0123456789",
  ticket_secret = "test-ticket-secret-0123456789",
  require_wechat_browser = false,
  apps = { a = { appid = "wxtest", secret = { env = "TEST_APP_SECRET" } } },
  campaigns = { plain = { app = "a", allow = { "https://h5.example.com/" } } },
  -- The per-client limit stays on (its path is measured) but never refuses.
  limits = { auth_per_minute = 1000000000 },
}
'''


def exchange(port, data, timeout=2.0, half_close=False):
    """Sends raw bytes, returns everything received until the server closes
    (or the timeout passes) and whether the server closed."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    s.settimeout(timeout * SLOW)
    out = b""
    closed = False
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            out += chunk
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed


def statuses(raw):
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) [A-Z]", raw)]


def access_paths(g):
    g_lines = [l for l in g.log().splitlines() if '"path"' in l]
    return [re.search(r'"path":"([^"]*)"', l).group(1) for l in g_lines]


# ---- request smuggling: the three requests the old server got wrong ----

def test_two_content_lengths_are_refused_and_nothing_runs_after(gateway):
    g = gateway(MINIMAL)
    raw, closed = exchange(g.port, b"POST /api/ticket HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                   b"Content-Length: 37\r\n\r\nabcGET /metrics HTTP/1.1\r\n"
                                   b"Host: x\r\n\r\n")
    assert statuses(raw) == [400] and closed
    assert b"X-Request-Id: " in raw and b"Content-Length" in raw
    assert "/metrics" not in access_paths(g)


def test_transfer_encoding_other_than_chunked_is_refused(gateway):
    g = gateway(MINIMAL)
    raw, closed = exchange(g.port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
                                   b"\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(raw) == [400] and closed
    assert "/metrics" not in access_paths(g)


def test_head_with_content_length_has_its_body_read_as_a_body(gateway):
    g = gateway(MINIMAL)
    inner = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    raw, _ = exchange(g.port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                              % len(inner) + inner, timeout=1.0)
    assert statuses(raw) == [200]
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == b"" and b"Content-Length: " in head  # HEAD: the length, no body
    assert "/metrics" not in access_paths(g)


# ---- strict parsing: each hostile head gets 400 (or its status) and a close ----

HOSTILE = [
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\nHost: x\n\n", 400),
    (b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    (b"GET /healthz\r\n", 400),
    (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
     b"\r\n0\r\n\r\n", 400),
    (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400),
    (b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    (b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
     400),
    (b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n",
     400),
    (b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
     400),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", 417),
    (b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501),
]


@pytest.mark.parametrize("head,status", HOSTILE)
def test_hostile_heads_are_refused_with_a_request_id_and_closed(gateway, head, status):
    g = gateway(MINIMAL)
    raw, closed = exchange(g.port, head)
    assert statuses(raw) == [status], raw
    assert closed
    assert re.search(rb"X-Request-Id: [0-9a-f]{16}\r\n", raw)
    body = raw.partition(b"\r\n\r\n")[2].decode()
    assert "request id" in body and "请求" in body  # bilingual, with the id
    assert g.get("/healthz").status_code == 200


def test_limits_answer_431_414_413(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1, limits = {'
                ' max_headers = 10, max_uri_length = 300, max_body_size = 100 } }\n')
    many = b"".join(b"X-%d: v\r\n" % i for i in range(11))
    raw, closed = exchange(g.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert statuses(raw) == [431] and closed
    raw, closed = exchange(g.port, b"GET /healthz?" + b"a" * 400 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(raw) == [414] and closed
    # A long target is refused before its head is even complete.
    raw, closed = exchange(g.port, b"GET /healthz?" + b"a" * 400)
    assert statuses(raw) == [414] and closed
    raw, closed = exchange(g.port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n")
    assert statuses(raw) == [413] and closed
    chunks = b"10\r\n" + b"x" * 16 + b"\r\n"
    raw, closed = exchange(g.port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                                   b"\r\n\r\n" + chunks * 7 + b"0\r\n\r\n")
    assert statuses(raw) == [413] and closed


# ---- framing that must work ----

def test_bodies_with_length_chunked_and_expect_continue(gateway):
    g = gateway(MINIMAL.replace("workers = 1", 'workers = 1, routes = { ["/echo"] = "echo.lua" }'),
                files={"echo.lua": ECHO_ROUTE})
    raw, _ = exchange(g.port, b"POST /echo?i=a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                              b"POST /echo?i=b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                              b"\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
                              b"GET /echo?i=c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert statuses(raw) == [200, 200, 200]
    assert re.findall(rb"\r\n\r\n([abc]:\d+)", raw) == [b"a:5", b"b:13", b"c:0"]
    # Expect: 100-continue gets the interim reply before the body is sent.
    s = socket.create_connection(("127.0.0.1", g.port))
    s.settimeout(5 * SLOW)
    s.sendall(b"POST /echo?i=d HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(b"body")
    reply = b""
    while b"d:4" not in reply:
        reply += s.recv(1000)
    assert reply.startswith(b"HTTP/1.1 200 ")
    s.close()


def test_http10_and_keep_alive_rules(gateway):
    g = gateway(MINIMAL)
    raw, closed = exchange(g.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert statuses(raw) == [200] and closed and b"Connection: close" in raw
    raw, closed = exchange(g.port, b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                           timeout=0.5)
    assert statuses(raw) == [200] and not closed and b"Connection: keep-alive" in raw
    raw, closed = exchange(g.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=0.5)
    assert statuses(raw) == [200] and not closed and b"Connection" not in raw


def test_200_pipelined_requests_in_one_write_are_answered_in_order(gateway):
    g = gateway(MINIMAL.replace("workers = 1", 'workers = 1, routes = { ["/echo"] = "echo.lua" }'),
                files={"echo.lua": ECHO_ROUTE})
    reqs = b"".join(b"GET /echo?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(199))
    reqs += b"GET /echo?i=199 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    raw, closed = exchange(g.port, reqs, timeout=10)
    assert closed
    assert statuses(raw) == [200] * 200
    got = [int(x) for x in re.findall(rb"\r\n\r\n(\d+):0", raw)]
    assert got == list(range(200))


# ---- deadlines ----

def test_head_trickled_one_byte_per_100ms_is_cut_at_the_deadline(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1, '
                'limits = { header_timeout_ms = 1000, read_timeout_ms = 5000 } }\n')
    s = socket.create_connection(("127.0.0.1", g.port))
    s.settimeout(0.1)
    start = time.time()
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    got = b""
    for b in head:
        try:
            s.send(bytes([b]))
        except OSError:
            break
        try:
            chunk = s.recv(1000)
            got += chunk
            if not chunk:
                break
        except socket.timeout:
            pass
        except OSError:
            break
        if time.time() - start > 10 * SLOW:
            break
    elapsed = time.time() - start
    s.close()
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert 0.9 <= elapsed < 1.0 + 1.0 * SLOW, elapsed
    assert g.get("/healthz").status_code == 200


def test_slow_reader_is_cut_by_the_write_timeout_while_others_are_served(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1,'
                ' limits = { write_timeout_ms = 1000, read_timeout_ms = 30000 },'
                ' routes = { ["/big"] = "big.lua" } }\n',
                files={"big.lua": 'local body = ("0123456789abcdef"):rep(524288)\n'
                                  'return function() return 200, body end\n'})
    s = socket.create_connection(("127.0.0.1", g.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    start = time.time()
    # Others are served while the reader stalls.
    while time.time() - start < 1.5 * SLOW:
        assert g.get("/healthz", timeout=1 * SLOW).status_code == 200
    s.settimeout(5 * SLOW)
    total = 0
    closed = False
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                closed = True
                break
            total += len(chunk)
    except (socket.timeout, ConnectionResetError):
        closed = True
    s.close()
    assert closed and total < 8 * 1048576, total  # cut short, not sent whole


def test_idle_keep_alive_connections_are_closed_after_their_timeout(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1, '
                'limits = { keepalive_timeout_ms = 500 } }\n')
    start = time.time()
    raw, closed = exchange(g.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert statuses(raw) == [200] and closed
    assert 0.4 < time.time() - start < 0.5 + 1.5 * SLOW


# ---- the connection cap ----

def test_10000_idle_connections_are_held_within_the_cap_and_new_clients_served(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1, '
                'limits = { max_connections = 2000 } }\n')
    idle = []
    try:
        for i in range(10000):
            idle.append(socket.create_connection(("127.0.0.1", g.port)))
        # A new client is served at once...
        t0 = time.time()
        r = requests.get(g.url + "/healthz", timeout=5 * SLOW)
        assert r.status_code == 200 and time.time() - t0 < 1.0 * SLOW
        # ...and the worker held no more connections than its cap.
        assert r.json()["connections"] <= 2000
    finally:
        for s in idle:
            s.close()
    assert g.get("/healthz").status_code == 200


# ---- the listen address ----

def test_a_second_process_on_a_served_address_refuses_to_start(gateway, tmp_path):
    g = gateway(MINIMAL)
    cfg = tmp_path / "second.lua"
    cfg.write_text('return { listen = "127.0.0.1:%d", workers = 2 }\n' % g.port)
    p = subprocess.run([BIN, "run", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=30 * SLOW)
    assert p.returncode == 1
    assert "127.0.0.1:%d" % g.port in p.stderr and "address already in use" in p.stderr
    # The first one still has all the traffic.
    for _ in range(20):
        assert g.get("/healthz").status_code == 200


# ---- the access log ----

def test_access_log_lines_survive_sigterm(gateway):
    g = gateway(MINIMAL)
    s = requests.Session()
    for i in range(300):
        assert s.get(g.url + "/healthz?n=%d" % i, timeout=5).status_code == 200
    s.close()
    g.stop()
    seen = set(re.findall(r'"path":"/healthz\?n=(\d+)"', g.log()))
    assert seen == {str(i) for i in range(300)}


# ---- memory: heap allocations per /auth ----

@pytest.mark.skipif(SANITIZED, reason="the sanitizers bring their own allocator")
def test_auth_costs_at_most_3_heap_allocations(gateway):
    shim = os.path.join(os.path.dirname(BIN), "libwxgate_alloc_count.so")
    assert os.path.exists(shim), shim
    g = gateway(AUTH_CONFIG, env={"LD_PRELOAD": shim, "TEST_APP_SECRET": "app-secret"})
    s = socket.create_connection(("127.0.0.1", g.port))
    req = (b"GET /auth?campaign=plain&return=https%3A%2F%2Fh5.example.com%2Fp HTTP/1.1\r\n"
           b"Host: login.example.com\r\nUser-Agent: Mozilla/5.0 MicroMessenger/8.0\r\n"
           b"Cookie: a=1\r\n\r\n")

    def run(n):
        for _ in range(n):
            s.sendall(req)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            assert buf.startswith(b"HTTP/1.1 302 "), buf

    def count():
        seen = len(re.findall(r"alloc_count=", g.log()))
        g.signal(signal.SIGUSR2)
        deadline = time.time() + 5
        while len(re.findall(r"alloc_count=", g.log())) == seen and time.time() < deadline:
            time.sleep(0.01)
        return int(re.findall(r"alloc_count=(\d+)", g.log())[-1])

    run(500)  # warm the caches (arena blocks, read buffers, the store's table)
    before = count()
    run(2000)
    after = count()
    s.close()
    assert (after - before) / 2000 <= 3, (after - before) / 2000
