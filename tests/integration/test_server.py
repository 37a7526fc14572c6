"""The server core (core/server/server.c, core/http/http.c, core/common/config.c, core/common/log.c):
health, limits, config validation, SIGHUP reload under traffic, SIGTERM drain."""
import json
import re
import os
import select
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, ROOT, SLOW, Gateway, Proc, free_port, wait_until

MINIMAL = 'return { listen = "127.0.0.1:{PORT}", workers = 2 }\n'


def test_minimal_config_serves_healthz(gateway):
    g = gateway(MINIMAL)
    r = g.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert len(r.headers["X-Request-Id"]) == 16


def test_unknown_path_is_a_plain_bilingual_404(gateway):
    g = gateway(MINIMAL)
    r = g.get("/nope?<script>=1")
    assert r.status_code == 404
    assert "text/html" in r.headers["Content-Type"]
    assert "页面不存在" in r.text and "Page not found" in r.text
    assert r.headers["X-Request-Id"] in r.text
    assert "<script>" not in r.text


def test_access_log_is_json_and_redacts_secret_params(gateway):
    g = gateway(MINIMAL)
    g.get("/healthz?code=SECRETCODE123&access_token=TOKEN123&x=1")
    g.wait_log(r'"path":"/healthz\?')  # the access log is written in batches
    lines = [json.loads(l) for l in g.log().splitlines() if l.startswith("{")]
    access = [l for l in lines if l.get("path", "").startswith("/healthz")]
    assert access, g.log()
    a = access[-1]
    for key in ("time", "rid", "method", "path", "status", "ms"):
        assert key in a
    assert a["status"] == 200
    assert "SECRETCODE123" not in g.log() and "TOKEN123" not in g.log()
    assert "x=1" in a["path"]


def test_oversized_header_is_refused(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1, '
                'limits = { max_header_size = 2048 } }\n')
    r = g.get("/healthz", headers={"X-Big": "a" * 4000})
    assert r.status_code in (400, 413, 431)
    assert g.get("/healthz").status_code == 200


def test_uri_too_long(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1, '
                'limits = { max_uri_length = 300 } }\n')
    assert g.get("/healthz?x=" + "a" * 400).status_code == 414
    assert g.get("/healthz?x=" + "a" * 100).status_code == 200


def test_body_too_large(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1, '
                'limits = { max_body_size = 1024 } }\n')
    r = g.post("/healthz", data="x" * 5000)
    assert r.status_code == 413


def test_slow_client_is_timed_out_and_worker_keeps_serving(gateway):
    """A client trickling its request head is cut off at header_timeout_ms even
    though it never stays silent long enough for an inactivity timeout."""
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1, '
                'limits = { header_timeout_ms = 800, io_timeout_ms = 5000 } }\n')
    s = socket.create_connection(("127.0.0.1", g.port))
    s.settimeout(0.2)
    start = time.time()
    closed = False
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    for b in head:
        try:
            s.send(bytes([b]))
        except OSError:
            closed = True
            break
        try:
            if s.recv(100) == b"":
                closed = True
                break
        except socket.timeout:
            pass
        except OSError:
            closed = True
            break
        if time.time() - start > 10 * SLOW:
            break
    elapsed = time.time() - start
    s.close()
    assert closed, "slow client was never disconnected"
    assert elapsed < 3 * SLOW
    # The single worker still answers.
    assert g.get("/healthz").status_code == 200


def test_connection_limit_closes_idle_connections_first(gateway):
    """At the cap, the connection idle longest is closed to admit a new client
    (as nginx does); connections in the middle of a request are kept."""
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1, '
                'limits = { max_connections = 4, header_timeout_ms = 1500 } }\n')
    idle = [socket.create_connection(("127.0.0.1", g.port)) for _ in range(4)]
    # The fifth client is served at once, long before any timeout...
    r = requests.get(g.url + "/healthz", timeout=1)
    assert r.status_code == 200
    # ...and the oldest idle connection was closed to make room.
    idle[0].settimeout(5)
    assert idle[0].recv(1) == b""
    for s in idle:
        s.close()


def test_connection_limit_pauses_accept_when_none_is_idle(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1, '
                'limits = { max_connections = 4, read_timeout_ms = 1500 } }\n')
    busy = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", g.port))
        # A request whose body is still to come: the interim 100 reply shows
        # that the worker holds it (it is not idle).
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        s.settimeout(5)
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        busy.append(s)
    # A fifth client is left in the listen backlog while four requests are
    # under way: the worker says it stopped accepting...
    fifth = socket.create_connection(("127.0.0.1", g.port))
    fifth.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    g.wait_log(r"connection limit 4 reached, none idle: accept paused")
    # ...and serves it once their read timeout has closed one of them.
    fifth.settimeout(10 * SLOW)
    assert fifth.recv(100).startswith(b"HTTP/1.1 200")
    closed, _, _ = select.select(busy, [], [], 0)
    assert closed, "the fifth client was served while all four requests were under way"
    for s in busy + [fifth]:
        s.close()


def test_check_accepts_minimal_config(tmp_path):
    cfg = tmp_path / "c.lua"
    cfg.write_text('return { listen = "127.0.0.1:8080" }\n')
    p = subprocess.run([BIN, "check", "-c", str(cfg)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "ok" in p.stdout


@pytest.mark.parametrize("text,expected", [
    ('return { listne = "127.0.0.1:1" }', "config: listne: unknown key"),
    ('return { listen = 8080 }', "config: listen: must be a string"),
    ('return { listen = "nohostport" }', "config: listen: bad listen address"),
    ('return { listen = "127.0.0.1:99999" }', "config: listen: bad listen address"),
    ('return { workers = "two" }', "config: workers: must be a number"),
    ('return { workers = 0 }', "config: workers: must be a whole number from 1"),
    ('return { limits = { max_header_size = "big" } }', "config: limits.max_header_size:"),
    ('return { limits = { bogus = 1 } }', "config: limits.bogus: unknown key"),
    ('return { apps = { demo = { appid = "wx1" } } }', "config: apps.demo.secret: missing app secret"),
    ('return { apps = { demo = { appid = "wx1", secret = "literal" } } }',
     "config: apps.demo.secret: must be { env"),
    ('return { apps = { demo = { appid = "wx1", secret = { env = "WX_NOPE_UNSET" } } } }',
     "environment variable WX_NOPE_UNSET is not set"),
    ('return { routes = { ["/x"] = "missing.lua" } }', 'routes["/x"]: cannot read script'),
    ('return { store = "mysql://x" }', "config: store: must be"),
    ('return "nope"', "must return a table"),
    ('return {', "config:"),
    ('return { cookie_secret = "short" }', "config: cookie_secret: too short"),
    ('return { workers = 0/0 }', "config: workers: must be a whole number"),
    ('return { workers = math.huge }', "config: workers: must be a whole number"),
    ('return { listen = "::1" }', "config: listen: bad listen address"),
    ('return { listen = "host:+80" }', "config: listen: bad listen address"),
    ('return { listen = "a:1:2" }', "config: listen: bad listen address"),
    ('error({})', "the error object is not a string"),
    ('return { apps = { a = { appid = "wx1", secret = { env = "HOME" } } },'
     ' campaigns = { ["bad name"] = { allow = { "https://x.com/" } } } }',
     "config: campaigns: campaign names are 1-64 letters"),
    ('return { store = "redis://127.0.0.1:6379/0" }', "config: token_key: required with a Redis"),
])
def test_bad_configs_are_refused_with_key_path(tmp_path, text, expected):
    cfg = tmp_path / "c.lua"
    cfg.write_text(text + "\n")
    for cmd in ("check", "run"):
        p = subprocess.run([BIN, cmd, "-c", str(cfg)], capture_output=True, text=True,
                           timeout=20)
        assert p.returncode == 1, (cmd, p.stdout, p.stderr)
        assert expected in p.stderr, p.stderr


@pytest.mark.parametrize("args,expected", [
    (["demo", "--bogus", "x"], "usage: wxgate demo [-l ADDR]"),
    (["demo", "-l"], "usage: wxgate demo [-l ADDR]"),
    (["sandbox", "--tls"], "usage: wxgate sandbox [-l ADDR]"),
    (["sandbox", "-l", "127.0.0.1:1", "stray"], "usage: wxgate sandbox [-l ADDR]"),
    (["run"], "wxgate run: missing -c FILE"),
    (["check", "-c"], "wxgate check: missing -c FILE"),
    (["check", "--config"], "wxgate check: missing -c FILE"),
    (["check", "-c", "x.lua", "--bogus"], "usage: wxgate run -c FILE"),
])
def test_command_line_errors_print_the_usage(args, expected):
    p = subprocess.run([BIN] + args, capture_output=True, text=True, timeout=20)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert expected in p.stderr, p.stderr


@pytest.mark.parametrize("args,expected", [
    (["--help"], "usage: wxgate run -c FILE"),
    (["run", "--help"], "usage: wxgate run -c FILE"),
    (["check", "-h"], "usage: wxgate run -c FILE"),
    (["sandbox", "--help"], "usage: wxgate sandbox [-l ADDR]"),
    (["demo", "-l", "127.0.0.1:1", "--help"], "usage: wxgate demo [-l ADDR]"),
])
def test_help_goes_to_stdout_and_exits_0(args, expected):
    p = subprocess.run([BIN] + args, capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert p.stdout.startswith(expected) and not p.stderr, (p.stdout, p.stderr)


def test_version_names_the_revision_and_the_libraries():
    p = subprocess.run([BIN, "version"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert re.fullmatch(r"wxgate \d+\.\d+\.\d+", lines[0]), lines
    fields = dict(l.split(": ", 1) for l in lines[1:])
    assert set(fields) == {"git revision", "libevent", "LuaJIT", "libcurl", "OpenSSL", "hiredis"}
    assert re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?|unknown", fields["git revision"]), fields
    rev = fields["git revision"].split("-")[0]
    if rev != "unknown" and os.path.exists(os.path.join(ROOT, ".git")):
        # a commit of this repository (not necessarily HEAD: one may commit after building)
        known = subprocess.run(["git", "-C", ROOT, "cat-file", "-e", rev + "^{commit}"],
                               capture_output=True)
        assert known.returncode == 0, "%s is no commit of %s" % (rev, ROOT)
    assert fields["LuaJIT"].startswith("LuaJIT 2.")
    assert fields["OpenSSL"].startswith("OpenSSL 3.")
    assert re.match(r"\d+\.\d+\.\d+", fields["libcurl"]), fields
    assert re.match(r"\d+\.\d+\.\d+", fields["libevent"]), fields
    assert re.fullmatch(r"\d+\.\d+\.\d+", fields["hiredis"]), fields
    assert p.stdout == subprocess.run([BIN, "--version"], capture_output=True, text=True,
                                      timeout=20).stdout


def test_long_options_take_their_value_after_an_equals_sign(tmp_path):
    cfg = tmp_path / "c.lua"
    cfg.write_text('return { listen = "127.0.0.1:8080" }\n')
    p = subprocess.run([BIN, "check", "--config=%s" % cfg], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 0, p.stderr
    port = free_port()
    s = Proc(["sandbox", "--listen=127.0.0.1:%d" % port, "--workers=1"])
    try:
        s.wait_out(r"sandbox: http://127\.0\.0\.1:%d" % port)
        r = requests.get("http://127.0.0.1:%d/_sandbox/apps" % port, timeout=10 * SLOW)
        assert r.status_code == 200
    finally:
        s.stop()
    s.check_sanitizers()


def test_config_errors_never_print_secrets(tmp_path):
    cfg = tmp_path / "c.lua"
    cfg.write_text('return { apps = { demo = { appid = "wx1", secret = { env = "WXS" }, '
                   'bogus = 1 } }, cookie_secret = { env = "WXS" } }\n')
    p = subprocess.run([BIN, "check", "-c", str(cfg)], capture_output=True, text=True,
                       env=dict(os.environ, WXS="s3cr3t-value-0123456789"))
    assert p.returncode == 1
    assert "apps.demo.bogus: unknown key" in p.stderr
    assert "s3cr3t" not in p.stderr + p.stdout


def test_listen_failure_exits_1_with_reason(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cfg = tmp_path / "c.lua"
        cfg.write_text('return { listen = "127.0.0.1:%d", workers = 1 }\n' % port)
        p = subprocess.run([BIN, "run", "-c", str(cfg)], capture_output=True, text=True,
                           timeout=20)
    assert p.returncode == 1
    assert "cannot listen" in p.stderr


def _hammer(g, stop, failures, count, path="/healthz"):
    s = requests.Session()
    while not stop.is_set():
        try:
            r = s.get(g.url + path, timeout=10 * SLOW)
            if r.status_code != 200:
                failures.append(r.status_code)
            count.append(1)
        except requests.RequestException as e:
            failures.append(repr(e))


def test_sighup_swaps_config_under_traffic_without_failures(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 2, '
                'routes = { ["/v"] = "v1.lua" } }\n',
                files={"v1.lua": 'return function() return 200, "one" end\n',
                       "v2.lua": 'return function() return 200, "two" end\n'})
    assert g.get("/v").text == "one"
    stop, failures, count = threading.Event(), [], []
    threads = [threading.Thread(target=_hammer, args=(g, stop, failures, count, "/v"))
               for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(count) >= 20, what="traffic before the reload")
    g.write("wxgate.lua", 'return { listen = "127.0.0.1:%d", workers = 2, '
                          'routes = { ["/v"] = "v2.lua" } }\n' % g.port)
    g.signal(signal.SIGHUP)
    g.wait_log(r"worker 1: reloaded")
    g.wait_log(r"worker 0: reloaded")
    after = len(count)
    wait_until(lambda: len(count) >= after + 20, what="traffic after the reload")
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert len(count) > 20
    for _ in range(10):
        assert g.get("/v").text == "two"


def test_sighup_with_bad_config_keeps_old_one(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1, '
                'routes = { ["/v"] = "v1.lua" } }\n',
                files={"v1.lua": 'return function() return 200, "one" end\n'})
    g.write("wxgate.lua", 'return { listen = "127.0.0.1:%d", wrkers = 1 }\n' % g.port)
    g.signal(signal.SIGHUP)
    g.wait_log(r"reload refused.*wrkers: unknown key")
    assert g.get("/v").text == "one"


def test_sigterm_drains_in_flight_requests_and_exits_0(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1, '
                'routes = { ["/slow"] = "slow.lua" } }\n',
                files={"slow.lua": 'local wx = require "wx"\n'
                                   'return function(req)\n'
                                   '  if req.query.arrived then return 200, wx.store.get("in") or "no" end\n'
                                   '  wx.store.set("in", "yes")\n'
                                   '  wx.sleep(%.2f) return 200, "done" end\n'
                                   % (0.8 * SLOW)})
    result = {}

    def slow():
        result["r"] = requests.get(g.url + "/slow", timeout=10 * SLOW)

    t = threading.Thread(target=slow)
    t.start()
    # SIGTERM only once the request is being served (a connection still in
    # the listen backlog is reset when the listener closes, as with nginx).
    wait_until(lambda: requests.get(g.url + "/slow?arrived=1", timeout=5).text == "yes",
               timeout=5, what="the slow request to arrive")
    g.signal(signal.SIGTERM)

    # New connections are refused once draining began, while the slow
    # request is still being served.
    def refused():
        try:
            requests.get(g.url + "/healthz", timeout=1)
            return False
        except requests.RequestException:
            return True
    wait_until(refused, timeout=5, what="new connections to be refused")
    assert "r" not in result, "the listener closed only after the drain"
    t.join()
    assert result["r"].status_code == 200 and result["r"].text == "done"
    assert g.p.wait(timeout=10 * SLOW) == 0
    assert "stopped" in g.log()


def test_hostile_request_lines_are_logged_safely(gateway):
    """Control bytes in the URI grow 6x when escaped into the JSON log line."""
    g = gateway(MINIMAL)
    for payload in (b"\x01" * 2000, b"\"\\" * 1500, b"\x7f" * 3000, "微信".encode() * 500):
        s = socket.create_connection(("127.0.0.1", g.port))
        s.sendall(b"GET /healthz?a=" + payload + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.settimeout(5 * SLOW)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        s.close()
        assert data.startswith(b"HTTP/1.1 "), data[:100]
    assert g.get("/healthz").status_code == 200
    for line in g.log().splitlines():
        if line.startswith("{"):
            json.loads(line)  # every line is still one valid JSON object


def _slow_read(port, path, tls_ca=None, pause=0.05):
    """Reads a reply slowly enough that the connection sweeps run mid-write."""
    import ssl
    raw = socket.create_connection(("127.0.0.1", port), timeout=20 * SLOW)
    # A small window keeps the reply in the server's buffers while we pause.
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s = raw
    if tls_ca:
        s = ssl.create_default_context(cafile=tls_ca).wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
    data = bytearray()
    t0 = time.time()
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        data += chunk
        if time.time() - t0 < 0.5:
            time.sleep(pause)
    s.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def test_big_replies_to_slow_readers_arrive_whole_over_http_and_https(gateway, sandbox, tmp_path):
    sb = sandbox(extra_args=["--tls", "127.0.0.1:%d" % free_port(), "--ca-dir", str(tmp_path)])
    sb.wait_out(r"ca: ")
    tls_port = free_port()
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1,'
                ' tls = { listen = "127.0.0.1:%d", cert = "%s/server.pem", key = "%s/server-key.pem" },'
                ' routes = { ["/big"] = "big.lua" } }\n' % (tls_port, tmp_path, tmp_path),
                files={"big.lua": 'local body = ("0123456789abcdef"):rep(262144)\n'
                                  'return function() return 200, body end\n'})
    for port, ca in ((g.port, None), (tls_port, str(tmp_path / "ca.pem"))):
        head, body = _slow_read(port, "/big", tls_ca=ca)
        assert head.startswith(b"HTTP/1.1 200")
        assert len(body) == 16 * 262144 and body[:16] == b"0123456789abcdef"
    assert g.get("/healthz").status_code == 200
