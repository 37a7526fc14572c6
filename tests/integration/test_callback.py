"""The login flow end to end against the real sandbox (core/handler/handler_callback.c,
core/handler/handler_api.c, core/wechat/wechat.c): every branch of /callback, tickets,
/api/user, hooks, upstream failures, and no secret in any output."""
import concurrent.futures
import html
import json
import re
import time
import urllib.parse

import pytest
import requests

from conftest import SLOW, wait_until

UA = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile/15E148 MicroMessenger/8.0.50"
API_KEY = "api-key-for-tests-0123456789"
SECRETS = {"demo": "sandbox_demo_secret", "solo": "sandbox_solo_secret"}
RETURN = "https://h5.example.com/page"

CONFIG = '''
return {
  listen = "127.0.0.1:{PORT}", workers = 2,
  public_url = "http://127.0.0.1:{PORT}",
  cookie_secret = "cookie-secret-0123456789abcdef",
  ticket_secret = "ticket-secret-0123456789abcdef",
  token_key = "token-key-0123456789abcdef",
  api_keys = { "%(key)s" },
  wechat = { open_base = "%(sb)s", api_base = "%(sb)s", timeout_ms = %(timeout)d },
  apps = {
    demo = { appid = "wx_sandbox_demo", secret = { env = "S_DEMO" } },
    solo = { appid = "wx_sandbox_solo", secret = { env = "S_SOLO" } },
  },
  campaigns = {
    base = { app = "demo", scope = "snsapi_base", allow = { "https://h5.example.com/" } },
    info = { app = "demo", scope = "snsapi_userinfo", allow = { "https://h5.example.com/" } },
    solo = { app = "solo", scope = "snsapi_userinfo", allow = { "https://h5.example.com/" } },
    hooked = { app = "demo", scope = "snsapi_userinfo", allow = { "https://h5.example.com/" },
               script = "hooks.lua" },
    strict = { app = "demo", scope = "snsapi_base", allow = { "https://h5.example.com/" },
               require_state_cookie = true },
  },
}
'''

HOOKS = r'''
local wx = require "wx"
return {
  login = function(req, user, ctx)
    local mode = wx.store.get("mode")
    if mode == "raise" then error("login hook exploded") end
    if mode == "spin" then while true do end end
    if mode == "evil" then return "https://evil.com/steal" end
    if mode == "jwt" then
      return { url = "https://h5.example.com/jwt", ticket = false,
               params = { jwt = wx.sign.jwt_encode({ sub = user.openid, nick = user.nickname },
                                                   "k-0123456789abcdef", { exp_in = 60 }) } }
    end
    if mode == "ab" then return "https://h5.example.com/b?nick=" .. wx.url.escape(user.nickname) end
    if mode == "refuse" then return false, "closed" end
    if mode == "ctx" then
      return wx.url.add_query("https://h5.example.com/ctx", { campaign = ctx.campaign,
        app = ctx.app, appid = ctx.appid, scope = ctx.scope, ret = ctx.return_url })
    end
    if mode == "slowrefuse" then
      wx.store.set("hook", "running")
      wx.sleep(1)
      return false, "closed"
    end
  end,
  denied = function(req, ctx)
    if wx.store.get("mode") == "denied" then return "https://h5.example.com/sorry" end
  end,
  error = function(req, err, ctx)
    if wx.store.get("mode") == "error" then
      return "https://h5.example.com/oops?e=" .. err.error
    end
  end,
}
'''

MODE_ROUTE = '''
local wx = require "wx"
return function(req)
  if req.query.get then return 200, wx.store.get(req.query.get) or "" end
  wx.store.set("mode", req.query.m or "")
  return 200, "ok"
end
'''


class World:
    """A sandbox, a gateway pointed at it, and a phone (a cookie jar)."""

    def __init__(self, gateway, sandbox, timeout_ms=3000):
        self.sb = sandbox()
        cfg = CONFIG % {"sb": self.sb.url, "key": API_KEY, "timeout": timeout_ms}
        cfg = cfg.replace("campaigns = {", 'routes = { ["/_test/mode"] = "mode.lua" },\n  campaigns = {')
        self.g = gateway(cfg, files={"hooks.lua": HOOKS, "mode.lua": MODE_ROUTE},
                         env={"S_DEMO": SECRETS["demo"], "S_SOLO": SECRETS["solo"]})
        self.phone = requests.Session()
        self.phone.headers["User-Agent"] = UA
        self.seen = []          # every response, to search for secrets

    def get(self, url, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 15 * SLOW)
        r = self.phone.get(url, **kw)
        self.seen.append(r)
        return r

    def login_as(self, user):
        r = self.phone.post(self.sb.url + "/_sandbox/login?user=" + user, timeout=5)
        assert r.status_code == 200, r.text

    def grant(self, user, appid="wx_sandbox_demo", scope="snsapi_userinfo"):
        r = requests.post(self.sb.url + "/_sandbox/grant", timeout=5,
                          params={"user": user, "appid": appid, "scope": scope})
        assert r.status_code == 200, r.text

    def mode(self, m):
        assert requests.get(self.g.url + "/_test/mode?m=" + m, timeout=5).status_code == 200

    def stored(self, key):
        """A value in the gateway's store, as its scripts see it."""
        return requests.get(self.g.url + "/_test/mode", params={"get": key}, timeout=5).text

    def metrics(self):
        return requests.get(self.g.url + "/metrics", timeout=5).text

    def stats(self, endpoint):
        return requests.get(self.sb.url + "/_sandbox/stats", timeout=5).json()["endpoints"][endpoint]["calls"]

    def fault(self, endpoint, **kw):
        r = requests.post(self.sb.url + "/_sandbox/fault", params=dict(endpoint=endpoint, **kw),
                          timeout=5)
        assert r.status_code == 200, r.text

    def start(self, campaign="base", ret=RETURN, extra=""):
        r = self.get(self.g.url + "/auth?campaign=%s&return=%s%s" %
                     (campaign, urllib.parse.quote(ret, safe=""), extra))
        assert r.status_code == 302, r.text
        return r.headers["Location"]

    def to_callback(self, authorize_url):
        """The sandbox side: answers 302 to the callback (silent or granted)."""
        r = self.get(authorize_url)
        assert r.status_code == 302, r.text[:500]
        cb = r.headers["Location"]
        assert cb.startswith(self.g.url + "/callback?")
        return cb

    def consent(self, authorize_url, action):
        r = self.get(authorize_url)
        assert r.status_code == 200 and "<form" in r.text
        q = html.unescape(re.search(r'name="q" value="([^"]*)"', r.text).group(1))
        user = re.search(r'name="user" value="([^"]*)"', r.text).group(1)
        r = self.phone.post(self.sb.url + "/connect/oauth2/authorize_reply",
                            data={"q": q, "user": user, "action": action},
                            allow_redirects=False, timeout=5)
        assert r.status_code == 302, r.text[:300]
        return r.headers["Location"]

    def login(self, campaign="base", ret=RETURN):
        return self.get(self.to_callback(self.start(campaign, ret)))

    def redeem(self, ticket):
        r = requests.post(self.g.url + "/api/ticket", data={"ticket": ticket}, timeout=5,
                          headers={"Authorization": "Bearer " + API_KEY})
        self.seen.append(r)
        return r

    def assert_no_secrets(self):
        texts = [self.g.log()]
        for r in self.seen:
            texts.append(r.text)
            texts.append(str(r.headers))
        blob = "\n".join(texts)
        for s in SECRETS.values():
            assert s not in blob
        # The sandbox's access and refresh tokens are 64+ base62 characters;
        # nothing the gateway shows legitimately is that long.
        # (A JWT that a hook put in a redirect is meant to be seen.)
        blob = re.sub(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", "", blob)
        assert not re.search(r"(?<![A-Za-z0-9])[A-Za-z0-9]{60,}(?![A-Za-z0-9])", blob)


@pytest.fixture
def w(gateway, sandbox):
    world = World(gateway, sandbox)
    world.login_as("xiaoming")
    yield world
    world.assert_no_secrets()


def ticket_of(r):
    assert r.status_code == 302, r.text[:500]
    loc = r.headers["Location"]
    m = re.search(r"[?&]wx_ticket=(\w+)", loc)
    assert m, loc
    return loc, m.group(1)


def test_base_login_ticket_redeemed_once(w):
    loc, t = ticket_of(w.login("base", RETURN + "?x=1#/spa/route"))
    assert loc.startswith(RETURN + "?x=1&wx_ticket=")
    assert loc.endswith("#/spa/route")
    r = w.redeem(t)
    assert r.status_code == 200
    u = r.json()
    assert u["openid"] and u["appid"] == "wx_sandbox_demo" and u["scope"] == "snsapi_base"
    assert "nickname" not in u and u["is_snapshotuser"] is False and u["kind"] == "web"
    again = w.redeem(t)
    assert again.status_code == 404 and again.json()["error"] == "invalid_ticket"
    assert w.redeem("nope").status_code == 404


def test_userinfo_login_with_consent_allow_and_unionid(w):
    cb = w.consent(w.start("info"), "allow")
    loc, t = ticket_of(w.get(cb))
    raw = w.redeem(t).text
    u = json.loads(raw)
    assert u["nickname"] == "小明" and isinstance(u["sex"], int)
    assert isinstance(u["privilege"], list) and '"privilege":[]' in raw
    # WeChat's userinfo fields in WeChat's order, then the gateway's own.
    keys = [k for k, _ in json.loads(raw, object_pairs_hook=lambda pairs: pairs)]
    assert keys == ["openid", "nickname", "sex", "language", "city", "province", "country",
                    "headimgurl", "privilege", "unionid",
                    "appid", "app", "campaign", "scope", "is_snapshotuser", "kind"], keys
    assert u["unionid"]
    # Another app of the same open-platform account: same unionid, other openid.
    w.grant("xiaoming", "wx_sandbox_solo")
    r = w.get(w.to_callback(w.start("solo")))
    u2 = w.redeem(ticket_of(r)[1]).json()
    assert u2["openid"] != u["openid"]


def test_deny_goes_back_with_wx_denied(w):
    cb = w.consent(w.start("info"), "deny")
    assert "code=" not in cb
    r = w.get(cb)
    assert r.status_code == 302 and r.headers["Location"] == RETURN + "?wx_denied=1"
    w.mode("denied")
    cb = w.consent(w.start("hooked"), "deny")
    assert w.get(cb).headers["Location"] == "https://h5.example.com/sorry"


def test_api_user_fresh_userinfo_and_refresh(w):
    w.grant("xiaoming")
    loc, t = ticket_of(w.login("info"))
    u = w.redeem(t).json()
    h = {"Authorization": "Bearer " + API_KEY}
    r = requests.get(w.g.url + "/api/user", params={"app": "demo", "openid": u["openid"]},
                     headers=h, timeout=5)
    w.seen.append(r)
    assert r.status_code == 200 and r.json()["nickname"] == "小明"
    # Expire the access token: the gateway refreshes through the refresh_token.
    requests.post(w.sb.url + "/_sandbox/clock?advance=7300", timeout=5)
    refreshes = w.stats("/sns/oauth2/refresh_token")
    r = requests.get(w.g.url + "/api/user", params={"app": "wx_sandbox_demo", "openid": u["openid"]},
                     headers=h, timeout=5)
    assert r.status_code == 200 and r.json()["nickname"] == "小明"
    assert w.stats("/sns/oauth2/refresh_token") == refreshes + 1
    # Past the refresh_token's 30 days: the user must log in again.
    requests.post(w.sb.url + "/_sandbox/clock?advance=%d" % (31 * 86400), timeout=5)
    r = requests.get(w.g.url + "/api/user", params={"app": "demo", "openid": u["openid"]},
                     headers=h, timeout=5)
    assert r.status_code == 409 and r.json()["error"] == "login_required"
    # Bad key, unknown user, base-scope user.
    assert requests.get(w.g.url + "/api/user", params={"app": "demo", "openid": u["openid"]},
                        headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
    assert requests.get(w.g.url + "/api/user", params={"app": "demo", "openid": "nobody"},
                        headers=h, timeout=5).status_code == 404


def test_double_callback_makes_one_exchange(w):
    cb = w.to_callback(w.start("base"))
    before = w.stats("/sns/oauth2/access_token")
    w.fault("/sns/oauth2/access_token", type="latency", delay="0.3", count="1")
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        a, b = ex.map(lambda _: w.get(cb), range(2))
    assert a.status_code == b.status_code == 302
    assert a.headers["Location"] == b.headers["Location"]
    assert w.stats("/sns/oauth2/access_token") == before + 1
    # A third call moments later still gets the same outcome, no exchange.
    assert w.get(cb).headers["Location"] == a.headers["Location"]
    assert w.stats("/sns/oauth2/access_token") == before + 1


def test_code_used_elsewhere_gives_silent_reauthorization(w):
    cb = w.to_callback(w.start("base"))
    code = re.search(r"code=(\w+)", cb).group(1)
    # Spend the code first, as a reload after WeChat consumed it would find.
    r = requests.get(w.sb.url + "/sns/oauth2/access_token", timeout=5, params={
        "appid": "wx_sandbox_demo", "secret": SECRETS["demo"], "code": code,
        "grant_type": "authorization_code"})
    assert "access_token" in r.json()
    r = w.get(cb)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(w.sb.url + "/connect/oauth2/authorize?")
    # The fresh authorization completes; a second failure would show a page.
    loc, t = ticket_of(w.get(w.to_callback(r.headers["Location"])))
    assert w.redeem(t).status_code == 200


def test_unknown_state_and_reused_state(w):
    r = w.get(w.g.url + "/callback?code=abc&state=doesnotexist")
    assert r.status_code == 400 and "登录已过期" in r.text and r.headers["X-Request-Id"] in r.text
    r = w.get(w.g.url + "/callback?code=abc&state=bad-state!")
    assert r.status_code == 400
    cb = w.to_callback(w.start("base"))
    ticket_of(w.get(cb))
    # The same state with another code: the state is used, so the login restarts once.
    other = re.sub(r"code=\w+", "code=othercode123", cb)
    r = w.get(other)
    assert r.status_code == 302 and "/connect/oauth2/authorize?" in r.headers["Location"]


def test_loop_guard_stops_a_second_restart(w):
    # Every exchange fails with "code been used": one restart, then a page.
    w.fault("/sns/oauth2/access_token", type="errcode", errcode="40163")
    r = w.get(w.to_callback(w.start("base")))
    assert r.status_code == 302 and "/connect/oauth2/authorize?" in r.headers["Location"]
    r = w.get(w.to_callback(r.headers["Location"]))
    assert r.status_code == 400 and "登录已过期" in r.text


def test_csrf_cookie_mismatch_refused_and_missing_cookie_accepted(w):
    cb = w.to_callback(w.start("base"))
    attacker = requests.Session()
    attacker.headers["User-Agent"] = UA
    # The victim has a login of their own in progress: their cookie does not match.
    victim_auth = attacker.get(w.g.url + "/auth?campaign=base&return=" +
                               urllib.parse.quote(RETURN, safe=""), allow_redirects=False)
    assert victim_auth.status_code == 302
    r = attacker.get(cb, allow_redirects=False)
    assert r.status_code == 403 and "登录请求无效" in r.text
    # No cookie at all (WeChat's webview dropped it): accepted, and counted.
    r = requests.get(cb, allow_redirects=False, headers={"User-Agent": UA})
    assert r.status_code == 302 and "wx_ticket=" in r.headers["Location"]
    assert "wxgate_state_cookie_absent_total 1" in requests.get(w.g.url + "/metrics").text


def test_snapshot_user_is_passed_on_never_stored(w):
    requests.post(w.sb.url + "/_sandbox/snapshot?on=1", timeout=5)
    r = w.login("info")
    assert r.status_code == 302
    assert r.headers["Location"] == RETURN + "?wx_snapshot=1"
    requests.post(w.sb.url + "/_sandbox/snapshot?on=0", timeout=5)


def test_login_hook_outcomes(w):
    w.grant("xiaoming")
    w.mode("ab")
    loc, t = ticket_of(w.login("hooked"))
    assert loc.startswith("https://h5.example.com/b?nick=%E5%B0%8F%E6%98%8E&wx_ticket=")
    w.mode("jwt")
    r = w.login("hooked")
    loc = r.headers["Location"]
    assert loc.startswith("https://h5.example.com/jwt?jwt=") and "wx_ticket" not in loc
    w.mode("evil")
    loc, _ = ticket_of(w.login("hooked"))
    assert loc.startswith(RETURN + "?wx_ticket=")
    assert "outside the allow-list" in w.g.log()
    w.mode("refuse")
    assert w.login("hooked").status_code == 403
    w.mode("ctx")  # the ctx every hook gets, the same as authorize's
    loc, _ = ticket_of(w.login("hooked"))
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
    assert {k: v[0] for k, v in q.items() if k != "wx_ticket"} == {
        "campaign": "hooked", "app": "demo", "appid": "wx_sandbox_demo",
        "scope": "snsapi_userinfo", "ret": RETURN}


def test_disconnect_during_login_hook_never_yields_a_ticket(w):
    """A client that leaves while the hook decides must not find, on reload,
    a ticket the hook may have refused."""
    import socket
    w.grant("xiaoming")
    w.mode("slowrefuse")
    cb = w.to_callback(w.start("hooked"))
    path = cb[len(w.g.url):]
    s = socket.create_connection(("127.0.0.1", w.g.port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: %s\r\n\r\n" % (path, UA)).encode())
    wait_until(lambda: w.stored("hook") == "running", what="the login hook to start")
    s.close()
    wait_until(lambda: 'wxgate_logins_failed_total{campaign="hooked",error="upstream"' in
               w.metrics(), what="the abandoned login to end")
    r = w.get(cb)
    assert "wx_ticket" not in r.headers.get("Location", "")
    assert r.status_code in (403, 502)


@pytest.mark.parametrize("mode", ["raise", "spin"])
def test_hook_failure_falls_back_to_default(w, mode):
    w.grant("xiaoming")
    w.mode(mode)
    loc, t = ticket_of(w.login("hooked"))
    assert loc.startswith(RETURN + "?wx_ticket=")
    assert w.redeem(t).json()["nickname"] == "小明"


@pytest.mark.parametrize("fault", [
    {"type": "500"}, {"type": "502"}, {"type": "nonjson"}, {"type": "close"},
    {"type": "errcode", "errcode": "-1"}, {"type": "errcode", "errcode": "40125"},
])
def test_upstream_failures_give_a_clear_page(w, fault):
    w.fault("/sns/oauth2/access_token", count="1", **fault)
    r = w.login("base")
    assert r.status_code == 502
    assert "微信暂时无法完成登录" in r.text and "Try again" in r.text
    assert "/auth?campaign=base&amp;return=" in r.text
    assert w.g.get("/healthz").status_code == 200


def test_upstream_timeout_is_not_retried(gateway, sandbox):
    world = World(gateway, sandbox, timeout_ms=500)
    world.login_as("xiaoming")
    world.fault("/sns/oauth2/access_token", type="latency", delay="1.5", count="1")
    before = world.stats("/sns/oauth2/access_token")
    t0 = time.time()
    r = world.login("base")
    assert r.status_code == 502
    assert time.time() - t0 < 1.4 * SLOW
    assert world.stats("/sns/oauth2/access_token") == before + 1
    assert "timeout" in world.g.log()
    world.assert_no_secrets()


def test_error_hook_may_redirect(w):
    w.grant("xiaoming")
    w.mode("error")
    w.fault("/sns/oauth2/access_token", type="500", count="1")
    r = w.login("hooked")
    assert r.status_code == 302 and r.headers["Location"] == "https://h5.example.com/oops?e=http"


def test_ticket_api_requires_key_and_post(w):
    loc, t = ticket_of(w.login("base"))
    assert requests.post(w.g.url + "/api/ticket", data={"ticket": t}, timeout=5).status_code == 401
    assert requests.post(w.g.url + "/api/ticket", data={"ticket": t}, timeout=5,
                         headers={"Authorization": "Bearer " + API_KEY + "x"}).status_code == 401
    assert requests.get(w.g.url + "/api/ticket?ticket=" + t, timeout=5).status_code == 405
    assert w.redeem(t).status_code == 200


def test_metrics_count_the_flow(w):
    ticket_of(w.login("base"))
    text = requests.get(w.g.url + "/metrics", timeout=5).text
    assert 'wxgate_logins_started_total{campaign="base"} 1' in text
    assert 'wxgate_logins_completed_total{campaign="base"} 1' in text
    assert 'wxgate_upstream_seconds_count{endpoint="/sns/oauth2/access_token"} 1' in text


def test_gateway_verifies_the_sandbox_over_https(gateway, sandbox, tmp_path):
    """The exchange over HTTPS works with the sandbox's CA and fails (clear
    page, no crash) without it: TLS to WeChat is always verified."""
    from conftest import free_port
    tls_port = free_port()
    sb = sandbox(extra_args=["--tls", "127.0.0.1:%d" % tls_port, "--ca-dir", str(tmp_path)])
    ca = sb.wait_out(r"ca: (\S+)").group(1)
    https = "https://127.0.0.1:%d" % tls_port
    results = {}
    for label, ca_line in (("with_ca", 'ca_file = "%s",' % ca), ("without_ca", "")):
        cfg = CONFIG % {"sb": https, "key": API_KEY, "timeout": 3000}
        cfg = cfg.replace('wechat = { open_base', 'wechat = { %s open_base' % ca_line)
        g = gateway(cfg, files={"hooks.lua": HOOKS},
                    env={"S_DEMO": SECRETS["demo"], "S_SOLO": SECRETS["solo"]})
        s = requests.Session()
        s.headers["User-Agent"] = UA
        s.post(sb.url + "/_sandbox/login?user=xiaoming", timeout=5)
        r = s.get(g.url + "/auth?campaign=base&return=" + urllib.parse.quote(RETURN, safe=""),
                  allow_redirects=False, timeout=10)
        authorize = r.headers["Location"].replace(https, sb.url)  # the browser side, plain HTTP
        r = s.get(authorize, allow_redirects=False, timeout=10)
        r = s.get(r.headers["Location"], allow_redirects=False, timeout=10)
        results[label] = r
    assert results["with_ca"].status_code == 302
    assert "wx_ticket=" in results["with_ca"].headers["Location"]
    assert results["without_ca"].status_code == 502
    assert "微信暂时无法完成登录" in results["without_ca"].text


def test_api_user_for_a_base_scope_user_checks_the_token(w):
    loc, t = ticket_of(w.login("base"))
    openid = w.redeem(t).json()["openid"]
    h = {"Authorization": "Bearer " + API_KEY}
    checks = w.stats("/sns/auth")
    r = requests.get(w.g.url + "/api/user", params={"app": "demo", "openid": openid}, headers=h,
                     timeout=5)
    w.seen.append(r)
    assert r.status_code == 200
    assert r.json() == {"openid": openid, "scope": "snsapi_base", "appid": "wx_sandbox_demo",
                        "app": "demo"}
    assert w.stats("/sns/auth") == checks + 1
    # WeChat says the token expired (42001): refreshed, then checked again.
    refreshes = w.stats("/sns/oauth2/refresh_token")
    requests.post(w.sb.url + "/_sandbox/clock?advance=7300", timeout=5)
    r = requests.get(w.g.url + "/api/user", params={"app": "demo", "openid": openid}, headers=h,
                     timeout=5)
    assert r.status_code == 200 and r.json()["openid"] == openid
    assert w.stats("/sns/oauth2/refresh_token") == refreshes + 1
    assert w.stats("/sns/auth") == checks + 3


def test_failed_logins_are_counted_by_campaign_error_and_errcode(w):
    w.fault("/sns/oauth2/access_token", type="errcode", errcode="-1", count="1")
    assert w.login("base").status_code == 502
    text = requests.get(w.g.url + "/metrics", timeout=5).text
    assert ('wxgate_logins_failed_total{campaign="base",error="busy",errcode="-1"} 1' in text), text
    assert 'wxgate_upstream_errors_total{endpoint="/sns/oauth2/access_token",error="busy"} 1' in text


def test_campaign_requiring_the_state_cookie_restarts_cookieless_callbacks(w):
    cb = w.to_callback(w.start("strict"))
    # An attacker's callback URL opened in a browser without the cookie: no
    # login as the attacker, a fresh authorization for the browser's own user.
    r = requests.get(cb, allow_redirects=False, headers={"User-Agent": UA}, timeout=10)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(w.sb.url + "/connect/oauth2/authorize?")
    assert "wxgate_state=" in r.headers["Set-Cookie"]
    # With its cookie, the same kind of callback completes.
    loc, t = ticket_of(w.get(w.to_callback(w.start("strict"))))
    assert w.redeem(t).status_code == 200
