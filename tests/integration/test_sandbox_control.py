"""The sandbox's control API (issue 4): stats, reset, the clock, injected
faults, HTTPS with the sandbox's own CA, and the control token on a
listener beyond loopback."""
import concurrent.futures
import json
import os
import re
import shutil
import socket
import tempfile
import urllib.parse
import time

import pytest
import requests

from conftest import SLOW, Proc, free_port
from test_sandbox import (DEMO, GAME, SECRETS, WX, assert_err, callback_args, page_error,
                          sandbox_proc, wx)  # noqa: F401  (fixtures)

EXCHANGE = "/sns/oauth2/access_token"


def cut_off(url):
    """GET url over a raw socket; asserts the reply is cut short of its
    Content-Length and the connection closed. Returns the head."""
    u = urllib.parse.urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=10 * SLOW) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (u.path + "?" + u.query, u.netloc))
                  .encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    assert head.startswith(b"HTTP/1.1 200")
    assert 0 < len(body) < length, (len(body), length)
    return head


# ---------------------------------------------------------------- stats

def test_stats_count_every_call_failed_ones_too(wx):
    s = wx.stats()
    assert set(s["endpoints"]) == {
        "/connect/oauth2/authorize", "/connect/oauth2/authorize_reply", EXCHANGE,
        "/sns/oauth2/refresh_token", "/sns/userinfo", "/sns/auth", "/cgi-bin/token",
        "/cgi-bin/ticket/getticket", "/connect/qrconnect", "/sns/jscode2session",
        "/wxa/business/getuserphonenumber"}
    assert all(v == {"calls": 0, "errors": 0, "faults": 0} for v in s["endpoints"].values())
    tok = wx.login()                   # grant (control), authorize, exchange
    assert_err(wx.exchange("bogus"), 40029)
    assert_err(wx.exchange("bogus"), 40029)
    wx.userinfo(tok)
    assert page_error(wx.authorize(appid="nobody")) == "40013"
    wx.api("/sns/auth")                # 41001
    e = wx.stats()["endpoints"]
    assert e[EXCHANGE] == {"calls": 3, "errors": 2, "faults": 0}
    assert e["/sns/userinfo"] == {"calls": 1, "errors": 0, "faults": 0}
    assert e["/connect/oauth2/authorize"] == {"calls": 2, "errors": 1, "faults": 0}
    assert e["/sns/auth"] == {"calls": 1, "errors": 1, "faults": 0}
    assert e["/cgi-bin/token"]["calls"] == 0


def test_stats_under_concurrency(wx):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: wx.api("/sns/userinfo", access_token="x", openid="y"),
                      range(100)))
    assert wx.stats()["endpoints"]["/sns/userinfo"] == {"calls": 100, "errors": 100, "faults": 0}


# ---------------------------------------------------------------- reset, clock

def test_reset_clears_state_and_keeps_apps(wx):
    code = wx.code()
    tok = wx.login(user="meimei")
    wx.advance(100)
    wx.fault(EXCHANGE, type="500")
    wx.control("post", "snapshot", on="1")
    wx.control("post", "quota", limit=1)
    gen = wx.stats()["generation"]
    r = wx.reset()
    assert r["ok"] is True and r["generation"] > gen
    s = wx.stats()
    assert s["clock_offset"] == 0 and s["generation"] == r["generation"]
    assert all(v["calls"] == 0 for v in s["endpoints"].values())
    assert wx.control("get", "faults")["faults"] == {}
    assert wx.control("get", "snapshot")["snapshot"] is False
    assert wx.control("get", "quota")["limit"] == 2000
    assert_err(wx.exchange(code), 40029)                     # codes gone
    assert_err(wx.userinfo(tok), 40001)                       # tokens gone
    assert wx.authorize(scope="snsapi_userinfo", user="meimei").status_code == 200  # grants gone
    assert [a["appid"] for a in wx.control("get", "apps")["apps"]][0] == DEMO
    assert wx.get("/_sandbox/reset").status_code == 405


def test_clock(wx):
    c = wx.control("get", "clock")
    assert c["offset"] == 0 and abs(c["now"] - time.time()) < 5 and abs(c["real"] - time.time()) < 5
    c = wx.advance(3600)
    assert c["offset"] == 3600 and abs(c["now"] - time.time() - 3600) < 5
    assert wx.advance(1.5)["offset"] == 3601.5
    assert wx.control("post", "clock", offset=10)["offset"] == 10
    assert wx.post("/_sandbox/clock", params={"advance": "soon"}).status_code == 400
    assert wx.post("/_sandbox/clock").status_code == 400
    # the rid's first part is the sandbox time, like WeChat's
    wx.control("post", "clock", offset=86400)
    rid = wx.exchange("x")["errmsg"].rsplit("rid: ", 1)[1]
    assert abs(int(rid[:8], 16) - (time.time() + 86400) % 2 ** 32) < 10


def test_form_body_parameters(wx):
    r = wx.post("/_sandbox/clock", data={"advance": "60"})
    assert r.status_code == 200 and r.json()["offset"] == 60


# ---------------------------------------------------------------- faults

def test_fault_http_statuses(wx):
    for status in ["500", "502", "503"]:
        wx.fault(EXCHANGE, type=status)
        r = wx.get(EXCHANGE, params={"appid": DEMO})
        assert r.status_code == int(status) and "text/html" in r.headers["Content-Type"]
    wx.control("delete", "fault", endpoint=EXCHANGE)
    assert_err(wx.exchange("x"), 40029)


def test_fault_non_json_body(wx):
    wx.fault("sns/userinfo", type="nonjson")
    r = wx.get("/sns/userinfo", params={"access_token": "x", "openid": "y"})
    assert r.status_code == 200
    with pytest.raises(ValueError):
        json.loads(r.text)


def test_fault_connection_closed_mid_reply(wx):
    wx.fault(EXCHANGE, type="close", count=1)
    head = cut_off(wx.url + EXCHANGE + "?appid=" + DEMO)
    assert b"application/json" in head
    assert_err(wx.exchange("x"), 40029)                        # the next call is normal
    e = wx.stats()["endpoints"][EXCHANGE]
    assert e == {"calls": 2, "errors": 2, "faults": 1}


def test_fault_errcode(wx):
    wx.fault("/cgi-bin/token", type="errcode", errcode="45011")
    r = wx.basic_token()
    assert_err(r, 45011)
    assert r["errmsg"].startswith("api minute-quota reach limit")
    wx.fault("/cgi-bin/token", type="errcode", errcode="-1", errmsg="system busy")
    r = wx.basic_token()
    assert_err(r, -1)
    assert r["errmsg"].startswith("system busy, rid: ")
    assert wx.post("/_sandbox/fault", params={"endpoint": "/cgi-bin/token",
                                              "type": "errcode"}).status_code == 400


def test_fault_latency(wx):
    wx.fault("/sns/auth", type="latency", delay="1")
    t = time.time()
    assert_err(wx.api("/sns/auth"), 41001)                     # then answers normally
    assert time.time() - t >= 0.98
    # other endpoints are not held up
    t = time.time()
    wx.api("/sns/userinfo")
    assert time.time() - t < 0.9


def test_fault_latency_runs_concurrently(wx):
    wx.fault("/sns/auth", type="latency", delay="0.5")
    t = time.time()
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda _: wx.api("/sns/auth"), range(10)))
    assert time.time() - t < 3.5                               # not 10 x 0.5 s in a row


def test_fault_next_n_calls(wx):
    r = wx.fault(EXCHANGE, type="502", count=2)
    assert r["endpoint"] == EXCHANGE and r["fault"]["count"] == 2
    statuses = [wx.get(EXCHANGE, params={"appid": DEMO}).status_code for _ in range(4)]
    assert statuses == [502, 502, 200, 200]
    f = wx.control("get", "faults")["faults"][EXCHANGE]
    assert f["fired"] == 2 and f["type"] == "502"
    # a new fault starts its own count
    wx.fault(EXCHANGE, type="500", count=1)
    statuses = [wx.get(EXCHANGE, params={"appid": DEMO}).status_code for _ in range(2)]
    assert statuses == [500, 200]


def test_fault_fraction(wx):
    wx.fault("/sns/userinfo", type="500", fraction="0.5")
    statuses = [wx.get("/sns/userinfo").status_code for _ in range(200)]
    n = statuses.count(500)
    assert 50 <= n <= 150 and statuses.count(200) == 200 - n
    assert wx.stats()["endpoints"]["/sns/userinfo"]["faults"] == n
    # fraction and count together: a fraction of calls until N have fired
    wx.fault("/sns/auth", type="500", fraction="0.5", count=5)
    statuses = [wx.get("/sns/auth").status_code for _ in range(100)]
    assert statuses.count(500) == 5


def test_fault_on_every_endpoint_and_on_the_authorize_page(wx):
    wx.fault("*", type="503")
    assert wx.get("/cgi-bin/token").status_code == 503
    assert wx.authorize().status_code == 503
    wx.fault("/connect/oauth2/authorize", type="close")         # the specific one wins
    cut_off(wx.url + "/connect/oauth2/authorize?" + wx.authorize_query())
    wx.control("delete", "fault")                                # clears all
    assert wx.control("get", "faults")["faults"] == {}
    assert wx.authorize().status_code == 302
    wx.fault("/connect/oauth2/authorize", type="errcode", errcode="10009")
    assert page_error(wx.authorize()) == "10009"


def test_fault_validation(wx):
    bad = [{"endpoint": "/nowhere", "type": "500"}, {"endpoint": EXCHANGE},
           {"endpoint": EXCHANGE, "type": "explode"}, {"endpoint": EXCHANGE, "type": "200"},
           {"endpoint": EXCHANGE, "type": "500", "count": "0"},
           {"endpoint": EXCHANGE, "type": "500", "fraction": "2"},
           {"endpoint": EXCHANGE, "type": "latency"},
           {"endpoint": EXCHANGE, "type": "latency", "delay": "61"}]
    for p in bad:
        r = wx.post("/_sandbox/fault", params=p)
        assert r.status_code == 400 and r.json()["error"], p
    assert wx.control("get", "faults")["faults"] == {}
    wx.fault(EXCHANGE, type="500")
    wx.control("post", "fault", endpoint=EXCHANGE, type="none")
    assert wx.control("get", "faults")["faults"] == {}


def test_unknown_control_endpoint(wx):
    r = wx.get("/_sandbox/nothing")
    assert r.status_code == 404 and "error" in r.json()
    r = requests.put(wx.url + "/_sandbox/stats", timeout=10 * SLOW)
    assert r.status_code == 405 and r.headers["Allow"] == "GET"


# ---------------------------------------------------------------- HTTPS

@pytest.fixture
def tls_sandbox():
    ca_dir = tempfile.mkdtemp(prefix="wxgate-sandbox-ca-")
    port, tls_port = free_port(), free_port()
    p = Proc(["sandbox", "-l", "127.0.0.1:%d" % port, "--tls", "127.0.0.1:%d" % tls_port,
              "--ca-dir", ca_dir])
    try:
        p.wait_out(r"ca: (\S+)")
        yield p, port, tls_port, ca_dir
    finally:
        p.stop()
        p.check_sanitizers()
        shutil.rmtree(ca_dir, ignore_errors=True)


def test_https_with_the_sandbox_ca(tls_sandbox):
    p, port, tls_port, ca_dir = tls_sandbox
    out = p.out()
    assert "sandbox: http://127.0.0.1:%d" % port in out
    assert "sandbox_tls: https://127.0.0.1:%d" % tls_port in out
    ca = re.search(r"ca: (\S+)", out).group(1)
    assert ca == os.path.join(ca_dir, "ca.pem") and os.path.exists(ca)
    https = WX("https://127.0.0.1:%d" % tls_port, verify=ca)
    # the whole flow over HTTPS, verified against the sandbox's CA
    https.reset()
    tok = https.login(user="meimei")
    info = https.userinfo(tok)
    assert info["nickname"] == "韩梅梅"
    assert info["headimgurl"].startswith("https://127.0.0.1:%d/" % tls_port)
    assert requests.get(info["headimgurl"], verify=ca, timeout=10 * SLOW).status_code == 200
    https2 = WX("https://localhost:%d" % tls_port, verify=ca)
    assert_err(https2.api("/sns/userinfo"), 41001)
    # the same request without the sandbox's CA is refused
    with pytest.raises(requests.exceptions.SSLError):
        requests.get("https://127.0.0.1:%d/sns/userinfo" % tls_port, timeout=10 * SLOW)
    # state is shared between the HTTP and HTTPS listeners
    plain = WX("http://127.0.0.1:%d" % port)
    assert plain.userinfo(tok)["openid"] == tok["openid"]
    assert plain.userinfo(tok)["headimgurl"].startswith("http://127.0.0.1:%d/" % port)


def test_ca_is_reused_by_the_next_start(tls_sandbox):
    p, port, tls_port, ca_dir = tls_sandbox
    with open(os.path.join(ca_dir, "ca.pem")) as f:
        first = f.read()
    p2 = Proc(["sandbox", "-l", "127.0.0.1:%d" % free_port(), "--tls",
               "127.0.0.1:%d" % free_port(), "--ca-dir", ca_dir])
    try:
        p2.wait_out(r"ca: ")
        with open(os.path.join(ca_dir, "ca.pem")) as f:
            assert f.read() == first
    finally:
        p2.stop()
        p2.check_sanitizers()


# ---------------------------------------------------------------- control token

def start_public(args):
    port = free_port()
    p = Proc(["sandbox", "-l", "0.0.0.0:%d" % port] + args)
    p.wait_out(r"sandbox: ")
    url = "http://127.0.0.1:%d" % port
    deadline = time.time() + 10 * SLOW
    while True:
        try:
            requests.get(url + "/", timeout=2)
            break
        except requests.RequestException:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    return p, url


def test_control_api_needs_the_token_beyond_loopback():
    p, url = start_public(["--control-token", "s3cret-token"])
    try:
        get = lambda path, **kw: requests.get(url + path, timeout=10 * SLOW, **kw)
        r = get("/_sandbox/apps")
        assert r.status_code == 403 and "token" in r.json()["error"]
        assert "sandbox_demo_secret" not in r.text
        assert get("/_sandbox/apps", headers={"X-Sandbox-Token": "wrong"}).status_code == 403
        assert get("/_sandbox/apps", params={"token": "s3cret-toke"}).status_code == 403
        r = get("/_sandbox/apps", headers={"X-Sandbox-Token": "s3cret-token"})
        assert r.status_code == 200 and r.json()["apps"][0]["appid"] == DEMO
        assert get("/_sandbox/stats", params={"token": "s3cret-token"}).status_code == 200
        r = requests.post(url + "/_sandbox/reset", timeout=10 * SLOW)
        assert r.status_code == 403
        r = requests.post(url + "/_sandbox/reset", headers={"X-Sandbox-Token": "s3cret-token"},
                          timeout=10 * SLOW)
        assert r.status_code == 200
        # WeChat's own endpoints and the public images need no token
        assert get("/_sandbox/avatar/xiaoming.svg").status_code == 200
        c = WX(url)
        assert_err(c.exchange("x"), 40029)
        assert c.authorize().status_code == 302
    finally:
        p.stop()
        p.check_sanitizers()


def test_control_api_refused_beyond_loopback_without_a_configured_token():
    p, url = start_public([])
    try:
        for path in ["/_sandbox/apps", "/_sandbox/stats?token=", "/_sandbox/clock"]:
            r = requests.get(url + path, headers={"X-Sandbox-Token": ""}, timeout=10 * SLOW)
            assert r.status_code == 403, path
    finally:
        p.stop()
        p.check_sanitizers()


def test_close_fault_over_https_cuts_the_reply(tls_sandbox):
    """The connection is closed mid-reply through TLS: the client reads a
    valid status line and a short body, not a TLS error."""
    import socket
    import ssl
    p, port, tls_port, ca_dir = tls_sandbox
    plain = "http://127.0.0.1:%d" % port
    r = requests.post(plain + "/_sandbox/fault", timeout=5,
                      params={"endpoint": "/sns/userinfo", "type": "close", "count": "1"})
    assert r.status_code == 200
    ctx = ssl.create_default_context(cafile=os.path.join(ca_dir, "ca.pem"))
    with socket.create_connection(("127.0.0.1", tls_port), timeout=10 * SLOW) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"GET /sns/userinfo?access_token=a&openid=b HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (ssl.SSLError, OSError):
                pass
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))
    assert 0 < len(body) < length
