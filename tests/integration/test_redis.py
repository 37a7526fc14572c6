"""Several instances on one Redis (core/store/store_redis.c, core/wechat/jssdk.c): logins
and tickets cross instances, one owner of the basic token and jsapi ticket,
and Redis going away and coming back."""
import concurrent.futures
import re
import time
import urllib.parse

import requests

from conftest import SLOW, wait_until

UA = "Mozilla/5.0 (iPhone) Mobile/15E148 MicroMessenger/8.0.50"
API_KEY = "api-key-for-tests-0123456789"
PAGE = "https://h5.example.com/page"

CONFIG = '''
return {
  listen = "127.0.0.1:{PORT}", workers = 2,
  public_url = "http://127.0.0.1:{PORT}",
  store = "%(redis)s",
  cookie_secret = "cookie-secret-0123456789abcdef",
  ticket_secret = "ticket-secret-0123456789abcdef",
  token_key = "token-key-0123456789abcdef",
  api_keys = { "%(key)s" },
  wechat = { open_base = "%(sb)s", api_base = "%(sb)s", timeout_ms = 3000 },
  apps = { demo = { appid = "wx_sandbox_demo", secret = { env = "S_DEMO" } } },
  campaigns = {
    base = { app = "demo", scope = "snsapi_base", allow = { "https://h5.example.com/" } },
    info = { app = "demo", scope = "snsapi_userinfo", allow = { "https://h5.example.com/" } },
  },
}
'''


def instances(gateway, sandbox, redis, n=2):
    sb = sandbox()
    cfg = CONFIG % {"redis": redis.url + "?prefix=t1:", "key": API_KEY, "sb": sb.url}
    gs = [gateway(cfg, env={"S_DEMO": "sandbox_demo_secret"}) for _ in range(n)]
    return sb, gs


def phone(sb, user="xiaoming"):
    s = requests.Session()
    s.headers["User-Agent"] = UA
    assert s.post(sb.url + "/_sandbox/login?user=" + user, timeout=5).status_code == 200
    return s


def start(s, g, campaign="base"):
    r = s.get(g.url + "/auth?campaign=%s&return=%s" % (campaign, urllib.parse.quote(PAGE, safe="")),
              allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:300]
    r = s.get(r.headers["Location"], allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:300]
    return r.headers["Location"]


def redeem(g, ticket):
    return requests.post(g.url + "/api/ticket", data={"ticket": ticket}, timeout=10,
                         headers={"Authorization": "Bearer " + API_KEY})


def stats(sb, endpoint):
    return requests.get(sb.url + "/_sandbox/stats", timeout=5).json()["endpoints"][endpoint]["calls"]


def test_login_started_on_one_instance_completes_on_the_other(gateway, sandbox, redis):
    sb, (a, b) = instances(gateway, sandbox, redis)
    s = phone(sb)
    cb = start(s, a)
    cb_on_b = cb.replace(a.url, b.url)
    r = s.get(cb_on_b, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:300]
    ticket = re.search(r"wx_ticket=(\w+)", r.headers["Location"]).group(1)
    # The ticket issued by B is redeemed once on A, and refused on B after that.
    r1 = redeem(a, ticket)
    assert r1.status_code == 200 and r1.json()["appid"] == "wx_sandbox_demo"
    assert redeem(b, ticket).status_code == 404
    # WeChat calling back on both instances: one exchange.
    cb2 = start(s, a)
    before = stats(sb, "/sns/oauth2/access_token")
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        ra, rb = ex.map(lambda u: s.get(u, allow_redirects=False, timeout=10),
                        [cb2, cb2.replace(a.url, b.url)])
    assert ra.status_code == rb.status_code == 302
    assert ra.headers["Location"] == rb.headers["Location"]
    assert stats(sb, "/sns/oauth2/access_token") == before + 1


def test_tokens_are_encrypted_at_rest(gateway, sandbox, redis):
    sb, (a, b) = instances(gateway, sandbox, redis)
    s = phone(sb)
    requests.post(sb.url + "/_sandbox/grant", params={"user": "xiaoming", "appid": "wx_sandbox_demo"},
                  timeout=5)
    r = s.get(start(s, a, "info"), allow_redirects=False, timeout=10)
    ticket = re.search(r"wx_ticket=(\w+)", r.headers["Location"]).group(1)
    openid = redeem(a, ticket).json()["openid"]
    keys = redis.command("KEYS", "t1:ut:*")
    assert openid.encode() in keys
    key = re.search(rb"t1:ut:[^\r\n]+", keys).group(0)
    raw = redis.command("GET", key)
    assert b"v1." in raw and b"\tv1" not in raw and b"snsapi_userinfo" not in raw
    # And B can use them: fresh userinfo through the stored tokens.
    r = requests.get(b.url + "/api/user", params={"app": "demo", "openid": openid}, timeout=10,
                     headers={"Authorization": "Bearer " + API_KEY})
    assert r.status_code == 200 and r.json()["nickname"] == "小明"


def test_one_basic_token_and_one_ticket_for_200_concurrent_requests(gateway, sandbox, redis):
    sb, gs = instances(gateway, sandbox, redis)
    assert stats(sb, "/cgi-bin/token") == 0

    def config(i):
        g = gs[i % 2]
        return requests.get(g.url + "/jssdk/config", timeout=20 * SLOW,
                            params={"app": "demo", "url": PAGE + "?x=1#frag"},
                            headers={"Origin": "https://h5.example.com"})

    with concurrent.futures.ThreadPoolExecutor(40) as ex:
        replies = list(ex.map(config, range(200)))
    assert [r.status_code for r in replies] == [200] * 200
    assert stats(sb, "/cgi-bin/token") == 1
    assert stats(sb, "/cgi-bin/ticket/getticket") == 1
    r = replies[-1]
    assert r.headers["Access-Control-Allow-Origin"] == "https://h5.example.com"
    j = r.json()
    assert set(j) == {"appId", "timestamp", "nonceStr", "signature"}
    assert j["appId"] == "wx_sandbox_demo" and isinstance(j["timestamp"], int)
    v = requests.get(sb.url + "/_sandbox/jssdk/verify", timeout=5, params={
        "appid": "wx_sandbox_demo", "url": PAGE + "?x=1", "noncestr": j["nonceStr"],
        "timestamp": j["timestamp"], "signature": j["signature"]}).json()
    assert v["ok"] is True
    # Not CORS for other origins, and only pages on an allow-list are signed.
    r = requests.get(gs[0].url + "/jssdk/config", params={"app": "demo", "url": PAGE},
                     headers={"Origin": "https://evil.com"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in r.headers
    r = requests.get(gs[0].url + "/jssdk/config", params={"app": "demo", "url": "https://evil.com/"},
                     timeout=10)
    assert r.status_code == 400
    # The instance that fetched the basic token reports the quota left today.
    text = "".join(requests.get(g.url + "/metrics", timeout=5).text for g in gs)
    assert 'wxgate_basic_token_quota_left{app="demo"} 1999' in text
    assert 'wxgate_basic_token_refreshes_total{app="demo"} 1' in text


def test_redis_down_gives_quick_clear_errors_and_recovers(gateway, sandbox, redis):
    sb, (a, b) = instances(gateway, sandbox, redis)
    s = phone(sb)
    r = s.get(start(s, a), allow_redirects=False, timeout=10)
    kept = re.search(r"wx_ticket=(\w+)", r.headers["Location"]).group(1)
    redis.command("SAVE")
    redis.stop()

    def health(g):
        return requests.get(g.url + "/healthz", timeout=5).status_code

    wait_until(lambda: all(health(g) == 503 for g in (a, b)), what="both to see Redis gone")
    for g in (a, b):
        t0 = time.time()
        h = requests.get(g.url + "/healthz", timeout=10)
        assert h.status_code == 503 and h.json()["store"] == "unavailable"
        r = requests.get(g.url + "/auth?campaign=base&return=" + urllib.parse.quote(PAGE, safe=""),
                         headers={"User-Agent": UA}, allow_redirects=False, timeout=10)
        assert r.status_code == 503 and "请稍后再试" in r.text and "try again" in r.text
        assert "Location" not in r.headers
        assert redeem(g, kept).status_code == 503
        assert time.time() - t0 < 2 * SLOW
    redis.start()
    wait_until(lambda: all(health(g) == 200 for g in (a, b)), timeout=15,
               what="recovery after Redis came back")
    # Nothing completed before the outage is lost, and new logins work.
    assert redeem(b, kept).status_code == 200
    r = s.get(start(s, b), allow_redirects=False, timeout=10)
    assert "wx_ticket=" in r.headers["Location"]


def test_invalid_basic_token_is_refetched_at_once(gateway, sandbox, redis):
    sb, (a, _) = instances(gateway, sandbox, redis)
    # getticket answers 40001 once, as when another server replaced the token.
    r = requests.post(sb.url + "/_sandbox/fault", timeout=5, params={
        "endpoint": "/cgi-bin/ticket/getticket", "type": "errcode", "errcode": "40001",
        "count": "1"})
    assert r.status_code == 200
    r = requests.get(a.url + "/jssdk/config", params={"app": "demo", "url": PAGE}, timeout=20)
    assert r.status_code == 200, r.text
    assert stats(sb, "/cgi-bin/token") == 2
    assert stats(sb, "/cgi-bin/ticket/getticket") == 2


def test_wx_jssdk_from_lua(gateway, sandbox, redis):
    sb = sandbox()
    cfg = CONFIG % {"redis": redis.url + "?prefix=t2:", "key": API_KEY, "sb": sb.url}
    cfg = cfg.replace("campaigns = {", 'routes = { ["/sig"] = "sig.lua" },\n  campaigns = {')
    g = gateway(cfg, env={"S_DEMO": "sandbox_demo_secret"}, files={"sig.lua": '''
local wx = require "wx"
return function(req)
  local c, err = wx.jssdk(req.query.app, req.query.url)
  if not c then return 502, tostring(err) end
  return 200, wx.json.encode(c), { ["Content-Type"] = "application/json" }
end
'''})
    r = requests.get(g.url + "/sig", params={"app": "wx_sandbox_demo", "url": PAGE + "#x"}, timeout=20)
    assert r.status_code == 200, r.text
    j = r.json()
    v = requests.get(sb.url + "/_sandbox/jssdk/verify", timeout=5, params={
        "appid": "wx_sandbox_demo", "url": PAGE, "noncestr": j["nonceStr"],
        "timestamp": j["timestamp"], "signature": j["signature"]}).json()
    assert v["ok"] is True
    r = requests.get(g.url + "/sig", params={"app": "nope", "url": PAGE}, timeout=20)
    assert r.status_code == 502 and r.text == "unknown app"


def test_two_demos_on_one_redis_share_logins(sandbox, redis):
    from conftest import Proc, free_port
    sb = sandbox()
    demos = []
    try:
        ports = [free_port(), free_port()]
        # Both behind one "load balancer": the public URL is the first one's.
        for port in ports:
            p = Proc(["demo", "-l", "127.0.0.1:%d" % port,
                      "--dashboard", "127.0.0.1:%d" % free_port(), "--store", redis.url,
                      "--sandbox", sb.url, "--public-url", "http://127.0.0.1:%d" % ports[0]])
            p.wait_out(r"api_key: ")
            p.url = "http://127.0.0.1:%d" % port
            demos.append(p)
        a, b = demos
        assert "sandbox: " + sb.url in a.out()
        s = phone(sb)
        requests.post(sb.url + "/_sandbox/grant", params={"user": "xiaoming",
                      "appid": "wx_sandbox_demo"}, timeout=5)
        page = a.url + "/demo/"
        r = s.get(a.url + "/auth?campaign=demo&return=" + urllib.parse.quote(page, safe=""),
                  allow_redirects=False, timeout=10)
        r = s.get(r.headers["Location"], allow_redirects=False, timeout=10)
        cb = r.headers["Location"].replace(a.url, b.url)
        r = s.get(cb, allow_redirects=False, timeout=10)
        ticket = re.search(r"wx_ticket=(\w+)", r.headers["Location"]).group(1)
        # The ticket issued by B is redeemed through A's example backend.
        r = s.post(a.url + "/demo/api/session?ticket=" + ticket, timeout=10)
        assert r.status_code == 200 and r.json()["nickname"] == "小明"
    finally:
        for p in demos:
            p.stop()
            p.check_sanitizers()


def test_healthz_warns_while_redis_refuses_writes(gateway, sandbox, redis):
    """Redis at maxmemory with noeviction refuses writes: /auth answers
    busy, /healthz says why, and both recover when Redis has room again."""
    sb, (g,) = instances(gateway, sandbox, redis, n=1)
    assert "warning" not in requests.get(g.url + "/healthz", timeout=5).json()
    used = int(re.search(rb"used_memory:(\d+)", redis.command("INFO", "memory")).group(1))
    redis.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
    redis.command("CONFIG", "SET", "maxmemory", str(used))  # full already
    try:
        s = phone(sb)
        r = s.get(g.url + "/auth?campaign=base&return=" + urllib.parse.quote(PAGE, safe=""),
                  allow_redirects=False, timeout=10)
        assert r.status_code == 503
        health = wait_until(lambda: [h for h in (requests.get(g.url + "/healthz", timeout=5)
                                                 .json() for _ in range(4)) if "warning" in h],
                            what="the warning on /healthz")[0]
        assert "maxmemory" in health["warning"] and health["status"] == "ok"
    finally:
        redis.command("CONFIG", "SET", "maxmemory", "0")
    for _ in range(4):  # both workers write again
        start(s, g)
    wait_until(lambda: all("warning" not in requests.get(g.url + "/healthz", timeout=5).json()
                           for _ in range(6)), what="the warning to clear")
