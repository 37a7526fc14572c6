"""The WeChat sandbox (issue 4), driven with plain HTTP clients: the
authorize page and its checks, consent, codes, OAuth tokens, userinfo,
sns/auth, snapshot mode, the basic token and jsapi ticket, and configs.
Control-API behaviour (faults, stats, reset, clock, HTTPS, the control token)
is in test_sandbox_control.py; reply shapes in test_sandbox_wire.py.

One sandbox process serves a whole module; every test starts from
POST /_sandbox/reset, which is itself under test here."""
import hashlib
import os
import re
import tempfile
import urllib.parse

import pytest
import requests

from conftest import SLOW, Proc, Sandbox, free_port

DEMO, GAME, SOLO, BASE = "wx_sandbox_demo", "wx_sandbox_game", "wx_sandbox_solo", "wx_sandbox_base"
SECRETS = {DEMO: "sandbox_demo_secret", GAME: "sandbox_game_secret",
           SOLO: "sandbox_solo_secret", BASE: "sandbox_base_secret"}
CB = "http://127.0.0.1:8080/cb"
RID = re.compile(r", rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$")
TIMEOUT = 10 * SLOW


def q(v):
    return urllib.parse.quote(str(v), safe="")


class WX:
    """A plain HTTP client for one sandbox."""

    def __init__(self, url, verify=True):
        self.url = url
        self.verify = verify
        self._apps = None

    def get(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", TIMEOUT)
        kw.setdefault("verify", self.verify)
        return requests.get(self.url + path, **kw)

    def post(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", TIMEOUT)
        kw.setdefault("verify", self.verify)
        return requests.post(self.url + path, **kw)

    def delete(self, path, **kw):
        kw.setdefault("timeout", TIMEOUT)
        kw.setdefault("verify", self.verify)
        return requests.delete(self.url + path, **kw)

    # -- control --
    def control(self, method, path, **params):
        r = getattr(self, method)("/_sandbox/" + path, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def reset(self):
        return self.control("post", "reset")

    def advance(self, seconds):
        return self.control("post", "clock", advance=seconds)

    def stats(self):
        return self.control("get", "stats")

    def apps(self):
        if self._apps is None:
            self._apps = self.control("get", "apps")
        return self._apps

    def user(self, uid):
        return next(u for u in self.apps()["users"] if u["id"] == uid)

    def fault(self, endpoint, **kw):
        return self.control("post", "fault", endpoint=endpoint, **kw)

    # -- open.weixin.qq.com --
    def authorize_query(self, appid=DEMO, redirect=CB, scope="snsapi_base", state="xyz",
                        extra=()):
        parts = [("appid", appid), ("redirect_uri", redirect), ("response_type", "code"),
                 ("scope", scope), ("state", state)] + list(extra)
        return "&".join("%s=%s" % (k, q(v)) for k, v in parts if v is not None)

    def authorize(self, user=None, query=None, **kw):
        query = query if query is not None else self.authorize_query(**kw)
        cookies = {"wxsbx_user": user} if user else None
        return self.get("/connect/oauth2/authorize?" + query + "#wechat_redirect",
                        cookies=cookies)

    def reply(self, query, action, user="xiaoming"):
        return self.post("/connect/oauth2/authorize_reply",
                         data={"q": query, "user": user, "action": action})

    def code(self, appid=DEMO, scope="snsapi_base", user=None, **kw):
        """A fresh code for user (granting snsapi_userinfo ahead when needed)."""
        if scope == "snsapi_userinfo":
            self.control("post", "grant", user=user or "xiaoming", appid=appid, scope=scope)
        r = self.authorize(appid=appid, scope=scope, user=user, **kw)
        assert r.status_code == 302, r.text
        args = callback_args(r)
        assert "code" in args, r.headers["Location"]
        return args["code"]

    # -- api.weixin.qq.com --
    def api(self, path, **params):
        r = self.get(path, params=params)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("application/json"), r.headers
        return r.json()

    def exchange(self, code, appid=DEMO, secret=None):
        return self.api("/sns/oauth2/access_token", appid=appid,
                        secret=secret or SECRETS.get(appid, "x"), code=code,
                        grant_type="authorization_code")

    def login(self, appid=DEMO, scope="snsapi_userinfo", user=None, **kw):
        tok = self.exchange(self.code(appid, scope, user, **kw), appid)
        assert "access_token" in tok, tok
        return tok

    def userinfo(self, tok, **kw):
        params = {"access_token": tok["access_token"], "openid": tok["openid"], "lang": "zh_CN"}
        params.update(kw)
        return self.api("/sns/userinfo", **{k: v for k, v in params.items() if v is not None})

    def basic_token(self, appid=DEMO):
        return self.api("/cgi-bin/token", grant_type="client_credential", appid=appid,
                        secret=SECRETS[appid])


def callback_args(r):
    loc = r.headers["Location"]
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query, keep_blank_values=True))


def assert_err(reply, code):
    assert reply.get("errcode") == code, reply
    assert isinstance(reply["errmsg"], str) and RID.search(reply["errmsg"]), reply
    assert set(reply) == {"errcode", "errmsg"}, reply


def page_error(r):
    """The errcode an authorize error page shows (None when it is no error page)."""
    assert r.status_code == 200, r.status_code
    assert "Location" not in r.headers
    return r.headers.get("X-Sandbox-Error")


@pytest.fixture(scope="module")
def sandbox_proc():
    s = Sandbox(extra_args=["--workers", "2"])
    yield s
    s.stop()
    s.check_sanitizers()


@pytest.fixture
def wx(sandbox_proc):
    c = WX(sandbox_proc.url)
    c.reset()
    return c


# ---------------------------------------------------------------- apps, users

def test_default_apps_and_users(wx):
    a = wx.apps()
    kinds = {x["appid"]: x["kind"] for x in a["apps"]}
    assert kinds == {DEMO: "official_account", GAME: "official_account",
                     SOLO: "official_account", BASE: "official_account",
                     "wx_sandbox_web": "website", "wx_sandbox_mp": "miniprogram",
                     "wx_sandbox_minigame": "minigame"}
    apps = {x["appid"]: x for x in a["apps"] if x["kind"] == "official_account"}
    for appid, app in apps.items():
        assert app["secret"] == SECRETS[appid]
        assert app["domains"] == ["127.0.0.1", "localhost"]
    assert apps[DEMO]["open_account"] == apps[GAME]["open_account"]
    assert apps[DEMO]["unionid"] and not apps[SOLO]["unionid"] and "open_account" not in apps[SOLO]
    assert apps[BASE]["scopes"] == ["snsapi_base"]
    assert a["quota"] == 2000
    users = a["users"]
    assert len(users) >= 3 and users[0]["id"] == "xiaoming"
    assert any(re.search("[\u4e00-\u9fff]", u["nickname"]) for u in users)
    # openid per (app, user), distinct across apps and users; unionid shared
    all_openids = [o for u in users for o in u["openids"].values()]
    assert len(set(all_openids)) == len(all_openids)
    for u in users:
        assert all(re.fullmatch(r"o[A-Za-z0-9_-]{27}", o) for o in u["openids"].values())
    # avatars and icons are served by the sandbox itself
    r = requests.get(users[0]["headimgurl"], timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("image/svg+xml")
    assert r.text.startswith("<svg") and "小" in r.text
    r = requests.get(apps[DEMO]["icon"], timeout=TIMEOUT)
    assert r.status_code == 200 and r.text.startswith("<svg")
    # a nickname with markup is escaped in its SVG
    r = wx.get("/_sandbox/avatar/panda.svg")
    assert "<Tom" not in r.text
    assert wx.get("/_sandbox/avatar/nobody.svg").status_code == 404


def test_index_page(wx):
    r = wx.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["Content-Type"]
    assert DEMO in r.text and "/connect/oauth2/authorize?" in r.text
    assert "/connect/qrconnect?appid=wx_sandbox_web&amp;" in r.text and "miniprogram" in r.text


# ---------------------------------------------------------------- authorize

def test_snsapi_base_redirects_at_once_with_code_and_state(wx):
    r = wx.authorize(redirect="http://127.0.0.1:8080/cb?x=1&y=%E4%B8%AD#/spa/page",
                     state="Abc123")
    assert r.status_code == 302
    loc = r.headers["Location"]
    m = re.fullmatch(r"http://127\.0\.0\.1:8080/cb\?x=1&y=%E4%B8%AD&code=([A-Za-z0-9]{32})"
                     r"&state=Abc123#/spa/page", loc)
    assert m, loc
    # codes are unique
    assert wx.code() != wx.code()


def test_optional_parameters_in_order(wx):
    extra = [("forcePopup", "true"), ("forceSnapShot", "false"), ("connect_redirect", "1")]
    r = wx.authorize(extra=extra)
    assert r.status_code == 302 and "code" in callback_args(r)
    # unknown parameters are ignored wherever they are
    r = wx.authorize(query="appid=%s&foo=1&redirect_uri=%s&response_type=code&scope=snsapi_base"
                           "&state=s&bar=2" % (DEMO, q(CB)))
    assert r.status_code == 302


@pytest.mark.parametrize("order", [
    ["redirect_uri", "appid", "response_type", "scope", "state"],
    ["appid", "redirect_uri", "scope", "response_type", "state"],
    ["appid", "redirect_uri", "response_type", "state", "scope"],
    ["appid", "redirect_uri", "response_type", "scope", "state", "connect_redirect", "forcePopup"],
    ["appid", "redirect_uri", "response_type", "scope", "forcePopup", "state"],
])
def test_parameters_out_of_order_show_an_error_page(wx, order):
    vals = {"appid": DEMO, "redirect_uri": q(CB), "response_type": "code",
            "scope": "snsapi_base", "state": "s", "forcePopup": "true", "connect_redirect": "1"}
    r = wx.authorize(query="&".join("%s=%s" % (k, vals[k]) for k in order))
    assert page_error(r) == "param_order"
    assert "Oops! Something went wrong" in r.text
    r = wx.authorize(query="appid=%s&appid=%s&redirect_uri=%s&response_type=code"
                           "&scope=snsapi_base&state=s" % (DEMO, DEMO, q(CB)))
    assert page_error(r) == "param_duplicate"


def test_appid_checks(wx):
    assert page_error(wx.authorize(appid="wx_nobody")) == "40013"
    assert page_error(wx.authorize(appid=None)) == "10012"
    assert page_error(wx.authorize(appid="")) == "10012"


@pytest.mark.parametrize("redirect,err", [
    ("http://evil.example.com/cb", "10003"),
    ("http://sub.localhost/cb", "10003"),
    ("http://127.0.0.2/cb", "10003"),
    ("javascript:alert(1)", "10003"),
    ("ftp://127.0.0.1/cb", "10003"),
    ("", "10011"),
    (None, "10011"),
])
def test_redirect_uri_checks(wx, redirect, err):
    r = wx.authorize(redirect=redirect)
    assert page_error(r) == err
    if redirect:
        assert "evil" not in r.headers.get("Location", "")


def test_redirect_uri_host_matches_without_port_and_must_be_encoded_once(wx):
    for cb in ["http://localhost:3000/x", "https://127.0.0.1/y", "http://LOCALHOST:1/z"]:
        assert wx.authorize(redirect=cb).status_code == 302, cb
    # not encoded at all
    r = wx.authorize(query="appid=%s&redirect_uri=http://127.0.0.1/cb&response_type=code"
                           "&scope=snsapi_base&state=s" % DEMO)
    assert page_error(r) == "10003"
    # encoded twice
    r = wx.authorize(query="appid=%s&redirect_uri=%s&response_type=code&scope=snsapi_base"
                           "&state=s" % (DEMO, q(q(CB))))
    assert page_error(r) == "10003" and "twice" in r.text


def test_scope_checks(wx):
    assert page_error(wx.authorize(scope="snsapi_login")) == "10005"
    assert page_error(wx.authorize(scope="snsapi_base,snsapi_userinfo")) == "10005"
    assert page_error(wx.authorize(appid=BASE, scope="snsapi_userinfo")) == "10005"
    assert wx.authorize(appid=BASE, scope="snsapi_base").status_code == 302
    assert page_error(wx.authorize(scope="")) == "10010"
    r = wx.authorize(query="appid=%s&redirect_uri=%s&response_type=token&scope=snsapi_base"
                           "&state=s" % (DEMO, q(CB)))
    assert page_error(r) == "response_type"


def test_state_rules(wx):
    assert wx.authorize(state="a" * 128).status_code == 302
    assert callback_args(wx.authorize(state="Z9" * 64))["state"] == "Z9" * 64
    for bad in ["a" * 129, "a-b", "a_b", "a b", "中文", "a%b", "a/b"]:
        assert page_error(wx.authorize(state=bad)) == "state", bad
    assert page_error(wx.authorize(state=None)) == "10013"
    assert page_error(wx.authorize(state="")) == "10013"


def test_error_page_escapes_what_it_echoes(wx):
    r = wx.authorize(redirect="http://<script>x</script>.com/")
    assert page_error(r) == "10003"
    assert "<script>" not in r.text
    r = wx.authorize(appid="<b>x</b>")
    assert page_error(r) == "40013" and "<b>x" not in r.text and "&lt;b&gt;x" in r.text


# ---------------------------------------------------------------- consent

def test_consent_page(wx):
    r = wx.authorize(scope="snsapi_userinfo", user="meimei")
    assert r.status_code == 200 and page_error(r) is None
    t = r.text
    assert 'name="viewport"' in t and "max-width:420px" in t
    assert "沙箱演示号" in t and "韩梅梅" in t
    assert "/_sandbox/icon/wx_sandbox_demo.svg" in t and "/_sandbox/avatar/meimei.svg" in t
    assert 'id="allow"' in t and 'id="deny"' in t
    assert 'data-user="xiaoming"' in t and 'data-user="lilei"' in t  # the user picker


def test_consent_page_escapes_names(wx):
    r = wx.authorize(scope="snsapi_userinfo", user="panda")
    assert r.status_code == 200
    assert "<Tom" not in r.text and "&lt;Tom &amp; &quot;Jerry&quot;&gt;" in r.text
    # the carried query is escaped too
    r = wx.authorize(query=wx.authorize_query(scope="snsapi_userinfo") + "&x=%22%3E%3Cscript%3E")
    assert r.status_code == 200 and '"><script>' not in r.text


def test_consent_allow_then_remembered_and_force_popup(wx):
    query = wx.authorize_query(scope="snsapi_userinfo", state="allow1")
    assert wx.authorize(query=query, user="lilei").status_code == 200
    r = wx.reply(query, "allow", user="lilei")
    assert r.status_code == 302
    args = callback_args(r)
    assert re.fullmatch(r"[A-Za-z0-9]{32}", args["code"]) and args["state"] == "allow1"
    assert "wxsbx_user=lilei" in r.headers["Set-Cookie"]
    tok = wx.exchange(args["code"])
    assert tok["openid"] == wx.user("lilei")["openids"][DEMO]
    assert tok["scope"] == "snsapi_userinfo"
    # asked once: the next authorization redirects at once
    r = wx.authorize(scope="snsapi_userinfo", user="lilei")
    assert r.status_code == 302 and "code" in callback_args(r)
    # ... but not for another app or another user
    assert wx.authorize(appid=GAME, scope="snsapi_userinfo", user="lilei").status_code == 200
    assert wx.authorize(scope="snsapi_userinfo", user="meimei").status_code == 200
    # forcePopup=true always asks
    r = wx.authorize(scope="snsapi_userinfo", user="lilei", extra=[("forcePopup", "true")])
    assert r.status_code == 200 and 'id="allow"' in r.text
    r = wx.authorize(scope="snsapi_userinfo", user="lilei", extra=[("forcePopup", "false")])
    assert r.status_code == 302


def test_consent_deny(wx):
    query = wx.authorize_query(redirect=CB + "?keep=1#/h", scope="snsapi_userinfo", state="no1")
    r = wx.reply(query, "deny")
    assert r.status_code == 302
    assert r.headers["Location"] == "http://127.0.0.1:8080/cb?keep=1&state=no1#/h"
    # nothing was granted
    assert wx.authorize(query=query).status_code == 200


def test_consent_reply_rechecks_the_query(wx):
    bad = wx.authorize_query(redirect="http://evil.example.com/", scope="snsapi_userinfo")
    r = wx.reply(bad, "allow")
    assert page_error(r) == "10003"
    r = wx.reply(wx.authorize_query(scope="snsapi_userinfo"), "allow", user="nobody")
    assert page_error(r) == "user"
    r = wx.reply(wx.authorize_query(scope="snsapi_userinfo"), "explode")
    assert page_error(r) == "action"
    assert wx.get("/connect/oauth2/authorize_reply").status_code == 200  # GET: error page


def test_user_picker_switches_the_phone(wx):
    query = wx.authorize_query(scope="snsapi_userinfo")
    r = wx.reply(query, "switch", user="meimei")
    assert r.status_code == 303
    assert r.headers["Location"] == "/connect/oauth2/authorize?" + query + "#wechat_redirect"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("wxsbx_user=meimei;") and "HttpOnly" in cookie
    r = wx.get(r.headers["Location"], cookies={"wxsbx_user": "meimei"})
    assert 'id="current-user" data-user="meimei"' in r.text


def test_login_cookie_chooses_who_holds_the_phone(wx):
    r = wx.post("/_sandbox/login", params={"user": "lilei"})
    assert r.status_code == 200 and r.json()["user"]["id"] == "lilei"
    assert r.cookies.get("wxsbx_user") == "lilei"
    code = callback_args(wx.authorize(user=r.cookies.get("wxsbx_user")))["code"]
    assert wx.exchange(code)["openid"] == wx.user("lilei")["openids"][DEMO]
    # no cookie (or an unknown one): the first test user
    for user in [None, "nobody"]:
        code = callback_args(wx.authorize(user=user))["code"]
        assert wx.exchange(code)["openid"] == wx.user("xiaoming")["openids"][DEMO]
    r = wx.get("/_sandbox/login", cookies={"wxsbx_user": "meimei"})
    assert r.json()["user"]["id"] == "meimei"
    assert wx.post("/_sandbox/login", params={"user": "nobody"}).status_code == 404


def test_grant_ahead_and_revoke(wx):
    wx.control("post", "grant", user="meimei", appid=GAME, scope="snsapi_userinfo")
    r = wx.authorize(appid=GAME, scope="snsapi_userinfo", user="meimei")
    assert r.status_code == 302
    tok = wx.exchange(callback_args(r)["code"], GAME)
    assert wx.userinfo(tok)["nickname"] == "韩梅梅"
    r = wx.delete("/_sandbox/grant", params={"user": "meimei", "appid": GAME})
    assert r.status_code == 200
    assert wx.authorize(appid=GAME, scope="snsapi_userinfo", user="meimei").status_code == 200
    # a base grant does not allow userinfo; a scope the app lacks is refused
    wx.control("post", "grant", user="meimei", appid=GAME, scope="snsapi_base")
    assert wx.authorize(appid=GAME, scope="snsapi_userinfo", user="meimei").status_code == 200
    r = wx.post("/_sandbox/grant", params={"user": "meimei", "appid": BASE,
                                           "scope": "snsapi_userinfo"})
    assert r.status_code == 400
    assert wx.post("/_sandbox/grant", params={"user": "x", "appid": GAME}).status_code == 404
    assert wx.post("/_sandbox/grant", params={"user": "meimei", "appid": "x"}).status_code == 404


# ---------------------------------------------------------------- identities

def test_openid_and_unionid(wx):
    demo = wx.login(DEMO, user="meimei")
    game = wx.login(GAME, user="meimei")
    solo = wx.login(SOLO, user="meimei")
    again = wx.login(DEMO, user="meimei")
    other = wx.login(DEMO, user="lilei")
    assert demo["openid"] == again["openid"]                    # stable
    assert len({demo["openid"], game["openid"], solo["openid"], other["openid"]}) == 4
    assert demo["unionid"] == game["unionid"] == wx.user("meimei")["unionids"]["wxgate-open"]
    assert other["unionid"] != demo["unionid"]
    assert "unionid" not in solo                               # unbound app
    assert "unionid" not in wx.userinfo(solo)
    assert wx.userinfo(game)["unionid"] == demo["unionid"]
    base = wx.exchange(wx.code(DEMO, "snsapi_base", "meimei"))
    assert base["openid"] == demo["openid"] and base["scope"] == "snsapi_base"
    assert base["unionid"] == demo["unionid"]
    assert "is_snapshotuser" not in demo


# ---------------------------------------------------------------- code exchange

def test_exchange_parameter_errors(wx):
    code = wx.code()
    ex = lambda **p: wx.api("/sns/oauth2/access_token", **p)
    full = {"appid": DEMO, "secret": SECRETS[DEMO], "code": code,
            "grant_type": "authorization_code"}
    without = lambda k: {x: v for x, v in full.items() if x != k}
    assert_err(ex(**without("appid")), 41002)
    assert_err(ex(**without("secret")), 41004)
    assert_err(ex(**without("code")), 41008)
    assert_err(ex(**dict(full, code="")), 41008)
    assert_err(ex(**without("grant_type")), 40002)
    assert_err(ex(**dict(full, grant_type="client_credential")), 40002)
    assert_err(ex(**dict(full, appid="wx_nobody")), 40013)
    assert_err(ex(**dict(full, secret="wrong")), 40125)
    assert_err(ex(**dict(full, code="x" * 32)), 40029)
    # none of that spent the code
    assert "access_token" in ex(**full)


def test_code_is_single_use(wx):
    code = wx.code()
    assert "access_token" in wx.exchange(code)
    assert_err(wx.exchange(code), 40163)
    assert_err(wx.exchange(code), 40163)


def test_code_belongs_to_one_app(wx):
    code = wx.code(DEMO)
    assert_err(wx.exchange(code, GAME), 40029)
    assert "access_token" in wx.exchange(code, DEMO)


def test_code_expires_after_five_minutes(wx):
    early, late = wx.code(), wx.code()
    wx.advance(290)
    assert "access_token" in wx.exchange(early)
    wx.advance(11)
    assert_err(wx.exchange(late), 42003)


def test_code_single_use_across_workers(wx):
    import concurrent.futures
    code = wx.code()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda _: wx.exchange(code), range(16)))
    ok = [r for r in replies if "access_token" in r]
    assert len(ok) == 1, replies
    assert all(r.get("errcode") == 40163 for r in replies if r not in ok)


# ---------------------------------------------------------------- tokens

def test_userinfo(wx):
    tok = wx.login(user="xiaoming")
    assert tok["expires_in"] == 7200 and tok["scope"] == "snsapi_userinfo"
    info = wx.userinfo(tok)
    assert info["openid"] == tok["openid"] and info["nickname"] == "小明"
    assert info["sex"] == 0 and info["privilege"] == []
    assert info["province"] == info["city"] == info["country"] == ""
    assert info["language"] == "zh_CN"
    assert info["headimgurl"] == wx.user("xiaoming")["headimgurl"]
    assert info["unionid"] == tok["unionid"]
    assert wx.userinfo(tok, lang="en")["language"] == "en"
    assert wx.userinfo(tok, lang="zh_TW")["language"] == "zh_TW"
    assert wx.userinfo(tok, lang=None)["language"] == "zh_CN"


def test_userinfo_errors_in_wechats_order(wx):
    tok = wx.login()
    ui = lambda **p: wx.api("/sns/userinfo", **p)
    assert_err(ui(openid=tok["openid"]), 41001)
    assert_err(ui(access_token="bogus"), 40001)            # the token wins over the openid
    assert_err(ui(access_token="bogus", openid=tok["openid"]), 40001)
    assert_err(ui(access_token=tok["access_token"]), 41009)
    assert_err(ui(access_token=tok["access_token"], openid=wx.user("meimei")["openids"][DEMO]),
               40003)
    base = wx.exchange(wx.code(scope="snsapi_base"))
    assert_err(wx.userinfo(base), 48001)
    # a basic (cgi-bin) token is no OAuth token
    assert_err(ui(access_token=wx.basic_token()["access_token"], openid=tok["openid"]), 40001)
    wx.advance(7201)
    assert_err(wx.userinfo(tok), 42001)
    assert_err(ui(access_token=tok["access_token"]), 42001)


def test_refresh_token(wx):
    tok = wx.login(GAME, user="meimei")
    ref = lambda **p: wx.api("/sns/oauth2/refresh_token", **p)
    good = {"appid": GAME, "grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}
    new = ref(**good)
    assert new["access_token"] != tok["access_token"]
    assert new["expires_in"] == 7200 and new["refresh_token"] == tok["refresh_token"]
    assert new["openid"] == tok["openid"] and new["scope"] == "snsapi_userinfo"
    assert new["unionid"] == tok["unionid"] and "is_snapshotuser" not in new
    assert wx.userinfo(new)["nickname"] == "韩梅梅"
    # after the access token expired, refreshing still works for 30 days
    wx.advance(7201)
    assert_err(wx.userinfo(tok), 42001)
    newer = ref(**good)
    assert wx.userinfo(newer)["openid"] == tok["openid"]
    wx.advance(30 * 86400 - 7201 - 60)
    assert "access_token" in ref(**good)
    wx.advance(120)
    assert_err(ref(**good), 42002)


def test_refresh_token_errors(wx):
    tok = wx.login()
    ref = lambda **p: wx.api("/sns/oauth2/refresh_token", **p)
    assert_err(ref(), 41003)                                  # refresh_token wins over appid
    assert_err(ref(appid=DEMO, grant_type="refresh_token"), 41003)
    assert_err(ref(grant_type="refresh_token", refresh_token=tok["refresh_token"]), 41002)
    assert_err(ref(appid=DEMO, grant_type="x", refresh_token=tok["refresh_token"]), 40002)
    assert_err(ref(appid="wx_no", grant_type="refresh_token", refresh_token=tok["refresh_token"]),
               40013)
    assert_err(ref(appid=DEMO, grant_type="refresh_token", refresh_token="bogus"), 40030)
    assert_err(ref(appid=GAME, grant_type="refresh_token", refresh_token=tok["refresh_token"]),
               40030)
    # an access token is not a refresh token
    assert_err(ref(appid=DEMO, grant_type="refresh_token", refresh_token=tok["access_token"]),
               40030)


def test_sns_auth(wx):
    tok = wx.login(user="lilei")
    auth = lambda **p: wx.api("/sns/auth", **p)
    assert auth(access_token=tok["access_token"], openid=tok["openid"]) == \
        {"errcode": 0, "errmsg": "ok"}
    assert_err(auth(access_token=tok["access_token"], openid=wx.user("meimei")["openids"][DEMO]),
               40003)
    assert_err(auth(access_token="bogus", openid=tok["openid"]), 40001)
    assert_err(auth(openid=tok["openid"]), 41001)
    assert_err(auth(access_token=tok["access_token"]), 41009)
    base = wx.exchange(wx.code(scope="snsapi_base"))
    assert auth(access_token=base["access_token"], openid=base["openid"])["errcode"] == 0
    wx.advance(7201)
    assert_err(auth(access_token=tok["access_token"], openid=tok["openid"]), 42001)


# ---------------------------------------------------------------- snapshot mode

def check_snapshot(wx, tok, user):
    assert tok["is_snapshotuser"] == 1
    assert "unionid" not in tok
    real = wx.user(user)["openids"][DEMO]
    assert tok["openid"] != real and re.fullmatch(r"o[A-Za-z0-9_-]{27}", tok["openid"])
    info = wx.userinfo(tok)
    assert info["openid"] == tok["openid"] and info["nickname"] == "微信用户"
    assert "unionid" not in info and "snapshot" in info["headimgurl"]


def test_force_snapshot(wx):
    r = wx.authorize(scope="snsapi_userinfo", user="meimei",
                     extra=[("forceSnapShot", "true"), ("connect_redirect", "1")])
    assert r.status_code == 302                               # no consent page
    check_snapshot(wx, wx.exchange(callback_args(r)["code"]), "meimei")
    # snsapi_base is never a snapshot
    r = wx.authorize(scope="snsapi_base", extra=[("forceSnapShot", "true")])
    assert "is_snapshotuser" not in wx.exchange(callback_args(r)["code"])


def test_snapshot_switch(wx):
    assert wx.control("get", "snapshot") == {"snapshot": False}
    assert wx.control("post", "snapshot", on="1") == {"snapshot": True}
    r = wx.authorize(scope="snsapi_userinfo", user="lilei")
    assert r.status_code == 302
    tok = wx.exchange(callback_args(r)["code"])
    check_snapshot(wx, tok, "lilei")
    # snapshot tokens refresh into snapshot tokens, without is_snapshotuser
    new = wx.api("/sns/oauth2/refresh_token", appid=DEMO, grant_type="refresh_token",
                 refresh_token=tok["refresh_token"])
    assert new["openid"] == tok["openid"] and "is_snapshotuser" not in new
    assert "unionid" not in new
    wx.control("post", "snapshot", on="0")
    assert wx.authorize(scope="snsapi_userinfo", user="lilei").status_code == 200
    assert wx.post("/_sandbox/snapshot", params={"on": "maybe"}).status_code == 400


# ---------------------------------------------------------------- basic token, ticket

def test_cgi_token_errors(wx):
    tk = lambda **p: wx.api("/cgi-bin/token", **p)
    good = {"grant_type": "client_credential", "appid": DEMO, "secret": SECRETS[DEMO]}
    assert_err(tk(**dict(good, grant_type="authorization_code")), 40002)
    assert_err(tk(appid=DEMO, secret=SECRETS[DEMO]), 40002)
    assert_err(tk(grant_type="client_credential", secret=SECRETS[DEMO]), 41002)
    assert_err(tk(grant_type="client_credential", appid=DEMO), 41004)
    assert_err(tk(**dict(good, appid="wx_nobody")), 40013)
    assert_err(tk(**dict(good, secret="wrong")), 40125)
    t = tk(**good)
    assert set(t) == {"access_token", "expires_in"} and t["expires_in"] == 7200


def getticket(wx, token, **kw):
    params = {"access_token": token, "type": "jsapi"}
    params.update(kw)
    return wx.api("/cgi-bin/ticket/getticket", **{k: v for k, v in params.items() if v})


def test_basic_token_overlap_of_five_minutes(wx):
    t1 = wx.basic_token()["access_token"]
    assert getticket(wx, t1)["errcode"] == 0
    t2 = wx.basic_token()["access_token"]
    assert t2 != t1
    assert getticket(wx, t1)["errcode"] == 0                  # the old one still works
    wx.advance(290)
    assert getticket(wx, t1)["errcode"] == 0
    wx.advance(20)
    r = getticket(wx, t1)
    assert_err(r, 40001)
    assert "not latest" in r["errmsg"]
    assert getticket(wx, t2)["errcode"] == 0
    # other apps are independent
    t3 = wx.basic_token(GAME)["access_token"]
    assert getticket(wx, t3)["errcode"] == 0
    assert getticket(wx, t2)["errcode"] == 0
    wx.advance(7200)
    assert_err(getticket(wx, t2), 42001)


def test_daily_quota(wx):
    assert wx.control("post", "quota", limit=3)["limit"] == 3
    for _ in range(3):
        assert "access_token" in wx.basic_token()
    assert_err(wx.basic_token(), 45009)
    assert "access_token" in wx.basic_token(GAME)              # per app
    q = wx.control("get", "quota")
    assert q["used"][DEMO] == 4 and q["used"][GAME] == 1
    assert wx.stats()["quota"]["limit"] == 3
    wx.advance(86400)                                         # a new day
    assert "access_token" in wx.basic_token()
    wx.reset()                                                # back to the configured 2,000
    assert wx.control("get", "quota")["limit"] == 2000


def test_getticket(wx):
    tok = wx.basic_token()["access_token"]
    t = getticket(wx, tok)
    assert t["errcode"] == 0 and t["errmsg"] == "ok"
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", t["ticket"])
    assert isinstance(t["expires_in"], int) and 7000 < t["expires_in"] <= 7200
    assert getticket(wx, tok)["ticket"] == t["ticket"]        # one ticket while valid
    assert getticket(wx, tok, type=None)["ticket"] == t["ticket"]   # jsapi by default
    assert "ticket" in getticket(wx, tok, type="wx_card")
    assert_err(getticket(wx, tok, type="bogus"), 40097)
    assert_err(getticket(wx, None), 41001)
    assert_err(getticket(wx, "bogus"), 40001)
    assert_err(getticket(wx, wx.login()["access_token"]), 40001)   # an OAuth token
    wx.advance(7000)
    later = getticket(wx, wx.basic_token()["access_token"])
    assert later["ticket"] == t["ticket"] and later["expires_in"] <= 200
    wx.advance(300)
    assert getticket(wx, wx.basic_token()["access_token"])["ticket"] != t["ticket"]


def test_jssdk_signature_check(wx):
    tok = wx.basic_token()["access_token"]
    ticket = getticket(wx, tok)["ticket"]
    url = "http://127.0.0.1:8080/page?a=1"
    sig = hashlib.sha1(("jsapi_ticket=%s&noncestr=N0nce&timestamp=1414587457&url=%s"
                        % (ticket, url)).encode()).hexdigest()
    v = wx.control("get", "jssdk/verify", appid=DEMO, url=url + "#frag", noncestr="N0nce",
                   timestamp="1414587457", signature=sig)
    assert v["ok"] is True and v["signature"] == sig
    v = wx.control("get", "jssdk/verify", appid=DEMO, url=url, noncestr="other",
                   timestamp="1414587457", signature=sig)
    assert v["ok"] is False


# ---------------------------------------------------------------- configs

CUSTOM = """
return {
  quota = 2,
  seed = "another-seed",
  apps = {
    { appid = "wxabc0000000000001", secret = os.getenv("SBX_TEST_SECRET") or "s1",
      name = "My <App>", domains = { "h5.example.com", "::1" }, open_account = "acct" },
  },
  users = {
    { id = "u1", nickname = "测试一号", sex = 1, province = "广东", city = "深圳", country = "中国" },
    { id = "u2", nickname = "测试二号", avatar = "https://cdn.example.com/u2.png" },
  },
}
"""


def write_config(text):
    fd, path = tempfile.mkstemp(prefix="wxgate-sandbox-", suffix=".lua")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def test_custom_config(sandbox):
    path = write_config(CUSTOM)
    try:
        s = sandbox(extra_args=["-c", path], env={"SBX_TEST_SECRET": "from-env"})
        c = WX(s.url)
        a = c.apps()
        assert [x["appid"] for x in a["apps"]] == ["wxabc0000000000001"]
        assert a["apps"][0]["secret"] == "from-env" and a["quota"] == 2
        assert a["apps"][0]["domains"] == ["h5.example.com", "[::1]"]
        app = "wxabc0000000000001"
        SECRETS[app] = "from-env"
        assert c.authorize(appid=app).status_code == 200          # 127.0.0.1 not registered
        r = c.authorize(appid=app, redirect="https://h5.example.com/x", user="u1")
        code = callback_args(r)["code"]
        tok = c.exchange(code, app)
        # another seed: other openids than the default set's
        assert tok["openid"] == a["users"][0]["openids"][app]
        assert c.authorize(appid=app, redirect="http://[::1]:9/cb").status_code == 302
        c.control("post", "grant", user="u2", appid=app)
        tok = c.exchange(c.code(app, "snsapi_userinfo", "u2", redirect="https://h5.example.com/"),
                         app)
        info = c.userinfo(tok)
        assert info["headimgurl"] == "https://cdn.example.com/u2.png"
        c.control("post", "grant", user="u1", appid=app)
        tok = c.exchange(c.code(app, "snsapi_userinfo", "u1", redirect="https://h5.example.com/"),
                         app)
        info = c.userinfo(tok)
        assert (info["sex"], info["province"], info["city"], info["country"]) == \
            (1, "广东", "深圳", "中国")
        # the consent page escapes the app's name
        r = c.authorize(appid=app, redirect="https://h5.example.com/", scope="snsapi_userinfo",
                        user="u2", extra=[("forcePopup", "true")])
        assert "My &lt;App&gt;" in r.text and "My <App>" not in r.text
        # quota from the config
        assert "access_token" in c.basic_token(app)
        assert "access_token" in c.basic_token(app)
        assert_err(c.basic_token(app), 45009)
    finally:
        SECRETS.pop("wxabc0000000000001", None)
        os.unlink(path)


@pytest.mark.parametrize("text,message", [
    ("return { apps = { { appid = 'a', secret = 's', domains = { 'a.com', 'b.com', 'c.com' } } },"
     " users = { { id = 'u', nickname = 'n' } } }", "at most two"),
    ("return { apps = { { appid = 'a', secret = 's', domains = { 'a.com:8080' } } },"
     " users = { { id = 'u', nickname = 'n' } } }", "without a port"),
    ("return { apps = { { appid = 'a', secret = 's', domains = { 'a.com' } } }, users = {} }",
     "at least one user"),
    ("return { apps = { { appid = 'a', secret = 's', domains = { 'a.com' }, scopes = { 'x' } } },"
     " users = { { id = 'u', nickname = 'n' } } }", "snsapi_base or snsapi_userinfo"),
    ("return { apps = {}, users = {}, qouta = 1 }", "unknown key qouta"),
    ("return { apps = { { appid = 'a', secret = 's', kind = 'bot' } },"
     " users = { { id = 'u', nickname = 'n' } } }",
     "must be official_account, website, miniprogram or minigame"),
    ("return { apps = { { appid = 'a', secret = 's', kind = 'website' } },"
     " users = { { id = 'u', nickname = 'n' } } }", "must list one or two callback domains"),
    ("return { apps = { { appid = 'a', secret = 's', kind = 'miniprogram', scopes = {} } },"
     " users = { { id = 'u', nickname = 'n' } } }", "a Mini Program has no web scopes"),
    ("return { apps = { { appid = 'a', secret = 's', kind = 'minigame' } },"
     " users = { { id = 'u', nickname = 'n', phone = '12a' } } }", "digits"),
    ("return {", "expected"),
])
def test_bad_config_is_refused_at_startup(text, message):
    path = write_config(text)
    try:
        p = Proc(["sandbox", "-l", "127.0.0.1:%d" % free_port(), "-c", path])
        try:
            p.p.wait(timeout=15 * SLOW)
        except Exception:
            p.stop()
            raise
        assert p.p.returncode != 0
        assert message in p.log() + p.out(), p.log()
        p.check_sanitizers()
    finally:
        os.unlink(path)
