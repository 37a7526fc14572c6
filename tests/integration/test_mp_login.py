"""Mini Program and Mini Game logins against the real sandbox
(core/handler/handler_mp.c, core/wechat/wechat.c, core/wechat/jssdk.c,
lua/sandbox/api.lua): POST /api/mp/login with codes minted by
/_sandbox/wxlogin (ticket redeemed by the backend, reuse refused, WeChat's
errors answered clearly, -1 retried once), POST /api/mp/phone with codes
minted by /_sandbox/phonecode, `wxgate check` refusing apps of the wrong kind,
and no session_key or phone number in any response, redirect or log."""
import json
import re
import subprocess
import time

import pytest
import requests

from conftest import BIN

API_KEY = "api-key-for-tests-0123456789"
SECRETS = {"demo": "sandbox_demo_secret", "mp": "sandbox_mp_secret",
           "game": "sandbox_minigame_secret"}
MP, GAME = "wx_sandbox_mp", "wx_sandbox_minigame"

CONFIG = '''
return {
  listen = "127.0.0.1:{PORT}", workers = 2,
  public_url = "http://127.0.0.1:{PORT}",
  cookie_secret = "cookie-secret-0123456789abcdef",
  ticket_secret = "ticket-secret-0123456789abcdef",
  token_key = "token-key-0123456789abcdef",
  api_keys = { "%(key)s" },
  wechat = { open_base = "%(sb)s", api_base = "%(sb)s", timeout_ms = 3000 },
  apps = {
    demo = { appid = "wx_sandbox_demo", secret = { env = "S_DEMO" } },
    mp = { appid = "wx_sandbox_mp", kind = "miniprogram", secret = { env = "S_MP" } },
    game = { appid = "wx_sandbox_minigame", kind = "minigame", secret = { env = "S_GAME" } },
  },
  campaigns = {
    spring = { app = "demo", allow = { "https://h5.example.com/" }, script = "hooks.lua",
               miniprogram_apps = { "mp", "game" } },
  },
}
'''

HOOKS = r'''
local wx = require "wx"
return {
  login = function(req, user, ctx)
    wx.store.set("last_user", wx.json.encode(user))
    wx.store.set("last_ctx", wx.json.encode(ctx))
    if user.app == "game" then
      -- a signed session token instead of a ticket
      return { ticket = false, params = { token = wx.sign.jwt_encode(
        { sub = user.unionid, kind = user.kind }, "game-key-0123456789", { exp_in = 600 }),
        player = "p-" .. user.openid:sub(1, 6) } }
    end
  end,
}
'''

PEEK = '''
local wx = require "wx"
return function(req) return 200, wx.store.get(req.query.k) or "" end
'''


class World:
    """A sandbox and a gateway with a Mini Program and a Mini Game."""

    def __init__(self, gateway, sandbox, store=None, limits=None):
        self.sb = sandbox()
        cfg = CONFIG % {"sb": self.sb.url, "key": API_KEY}
        if limits:
            cfg = cfg.replace("workers = 2,", "workers = 2, limits = %s," % limits)
        cfg = cfg.replace("campaigns = {", 'routes = { ["/_peek"] = "peek.lua" },\n  campaigns = {')
        if store:
            cfg = cfg.replace("workers = 2,", 'workers = 2, store = "%s",' % store)
        self.g = gateway(cfg, files={"hooks.lua": HOOKS, "peek.lua": PEEK},
                         env={"S_DEMO": SECRETS["demo"], "S_MP": SECRETS["mp"],
                              "S_GAME": SECRETS["game"]})
        self.seen = []

    def wxlogin(self, appid=MP, user="xiaoming"):
        r = requests.post(self.sb.url + "/_sandbox/wxlogin", params={"appid": appid, "user": user},
                          timeout=5)
        assert r.status_code == 200, r.text
        return r.json()["code"]

    def phonecode(self, appid=MP, user="xiaoming"):
        r = requests.post(self.sb.url + "/_sandbox/phonecode",
                          params={"appid": appid, "user": user}, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()["code"]

    def session_key(self, appid=MP, user="xiaoming"):
        """What WeChat holds as the user's session_key (the sandbox keeps one
        per app and user): learnt here directly, to look for it elsewhere."""
        app = "mp" if appid == MP else "game"
        r = requests.get(self.sb.url + "/sns/jscode2session", timeout=5, params={
            "appid": appid, "secret": SECRETS[app], "js_code": self.wxlogin(appid, user),
            "grant_type": "authorization_code"})
        return r.json()["session_key"]

    def login(self, **kw):
        r = self.g.post("/api/mp/login", **kw)
        self.seen.append(r)
        return r

    def redeem(self, ticket):
        r = self.g.post("/api/ticket", data={"ticket": ticket},
                        headers={"Authorization": "Bearer " + API_KEY})
        self.seen.append(r)
        return r

    def phone(self, key=API_KEY, **kw):
        r = self.g.post("/api/mp/phone", headers={"Authorization": "Bearer " + key}, **kw)
        self.seen.append(r)
        return r

    def fault(self, endpoint, **kw):
        r = requests.post(self.sb.url + "/_sandbox/fault", params=dict(endpoint=endpoint, **kw),
                          timeout=5)
        assert r.status_code == 200, r.text

    def peek(self, k):
        return self.g.get("/_peek", params={"k": k}).text

    def blob(self):
        texts = [self.g.log(), self.g.out()]
        for r in self.seen:
            texts += [r.text, str(r.headers)]
        return "\n".join(texts)


@pytest.fixture
def mp(gateway, sandbox):
    m = World(gateway, sandbox)
    yield m
    blob = m.blob()
    for s in SECRETS.values():
        assert s not in blob


def test_mp_login_json_and_form_ticket_redeemed_once(mp):
    # JSON body with the app's name
    r = mp.login(json={"app": "mp", "code": mp.wxlogin(user="meimei")})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert set(r.json()) == {"ticket"}
    u = mp.redeem(r.json()["ticket"]).json()
    assert u["kind"] == "miniprogram" and u["app"] == "mp" and u["appid"] == MP
    assert u["campaign"] == "spring" and u["openid"] and u["unionid"]
    assert "session_key" not in u
    assert mp.redeem(r.json()["ticket"]).status_code == 404
    # a form with the appid; the same user has the same unionid, the openid is per app
    sandbox_user = requests.get(mp.sb.url + "/_sandbox/apps", timeout=5).json()["users"]
    meimei = [x for x in sandbox_user if x["id"] == "meimei"][0]
    assert u["openid"] == meimei["openids"][MP]
    assert u["unionid"] == meimei["unionids"]["wxgate-open"]
    r = mp.login(data={"app": MP, "code": mp.wxlogin(user="meimei")})
    assert r.status_code == 200, r.text
    assert mp.redeem(r.json()["ticket"]).json()["openid"] == u["openid"]
    # the hook saw the user and ctx
    seen = json.loads(mp.peek("last_user"))
    assert seen["kind"] == "miniprogram" and seen["unionid"] == u["unionid"]
    ctx = json.loads(mp.peek("last_ctx"))
    assert ctx["campaign"] == "spring" and ctx["app"] == "mp" and ctx["appid"] == MP


def test_mini_game_hook_answers_a_signed_token(mp):
    r = mp.login(json={"app": "game", "code": mp.wxlogin(GAME, "lilei")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "ticket" not in body and body["player"].startswith("p-")
    import base64
    payload = body["token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["kind"] == "miniprogram" and claims["sub"]
    assert json.loads(mp.peek("last_user")).get("minigame") is True


def test_code_reuse_and_bad_codes_are_answered_clearly(mp):
    code = mp.wxlogin()
    assert mp.login(data={"app": "mp", "code": code}).status_code == 200
    r = mp.login(data={"app": "mp", "code": code})
    assert r.status_code == 400 and r.json()["error"] == "code_used"
    assert r.json()["request_id"]
    r = mp.login(data={"app": "mp", "code": "nosuchcode"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_code"
    # a code minted for another Mini Program is invalid here
    r = mp.login(data={"app": "mp", "code": mp.wxlogin(GAME)})
    assert r.status_code == 400 and r.json()["error"] == "invalid_code"
    # expired: 5 minutes on the sandbox clock
    code = mp.wxlogin()
    requests.post(mp.sb.url + "/_sandbox/clock", params={"advance": 301}, timeout=5)
    r = mp.login(data={"app": "mp", "code": code})
    assert r.status_code == 400 and r.json()["error"] == "invalid_code"
    # the gateway's own checks
    assert mp.login(data={"app": "demo", "code": "x"}).json()["error"] == "unknown_app"
    assert mp.login(data={"app": "nope", "code": "x"}).status_code == 400
    assert mp.login(data={"app": "mp"}).json()["error"] == "bad_request"
    assert mp.login(data={"app": "mp", "code": "a b"}).json()["error"] == "bad_request"
    assert mp.login(data={"app": "mp", "code": "x", "campaign": "nope"}).status_code == 404
    r = mp.g.get("/api/mp/login")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    r = mp.login(data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


@pytest.mark.parametrize("errcode,status,error", [
    (45011, 429, "rate_limited"), (40226, 403, "user_blocked")])
def test_wechat_refusals_are_answered_clearly(mp, errcode, status, error):
    mp.fault("/sns/jscode2session", type="errcode", errcode=errcode, count=1)
    r = mp.login(data={"app": "mp", "code": mp.wxlogin()})
    assert r.status_code == status and r.json()["error"] == error, r.text
    if errcode == 45011:
        assert r.headers["Retry-After"] == "60"


def test_busy_is_retried_once(mp):
    stats = lambda: requests.get(mp.sb.url + "/_sandbox/stats", timeout=5).json()[
        "endpoints"]["/sns/jscode2session"]["calls"]
    mp.fault("/sns/jscode2session", type="errcode", errcode=-1, count=1)
    before = stats()
    r = mp.login(data={"app": "mp", "code": mp.wxlogin()})
    assert r.status_code == 200 and "ticket" in r.json(), r.text
    assert stats() - before == 2
    mp.fault("/sns/jscode2session", type="errcode", errcode=-1, count=2)
    before = stats()
    r = mp.login(data={"app": "mp", "code": mp.wxlogin()})
    assert r.status_code == 503 and r.json()["error"] == "busy"
    assert stats() - before == 2


def test_phone_number_for_the_backend_only(mp):
    r = mp.phone(data={"app": "mp", "code": mp.phonecode(user="xiaoming")})
    assert r.status_code == 200, r.text
    info = r.json()["phone_info"]
    assert info["purePhoneNumber"] == "13800138000" and info["countryCode"] == "86"
    assert info["watermark"]["appid"] == MP
    # single use; JSON body; a foreign number keeps its country code
    code = mp.phonecode(user="panda")
    r = mp.phone(json={"app": MP, "code": code})
    assert r.json()["phone_info"]["phoneNumber"] == "+852 61234567"
    r = mp.phone(json={"app": MP, "code": code})
    assert r.status_code == 400 and r.json()["error"] == "invalid_code"
    # the backend's key is required
    r = mp.phone(key="wrong-key-0123456789", data={"app": "mp", "code": mp.phonecode()})
    assert r.status_code == 401
    # one basic token serves many calls; a refused one (40001) is replaced once
    calls = lambda: requests.get(mp.sb.url + "/_sandbox/stats", timeout=5).json()[
        "endpoints"]["/cgi-bin/token"]["calls"]
    before = calls()
    for _ in range(3):
        assert mp.phone(data={"app": "mp", "code": mp.phonecode()}).status_code == 200
    assert calls() == before
    mp.fault("/wxa/business/getuserphonenumber", type="errcode", errcode=40001, count=1)
    assert mp.phone(data={"app": "mp", "code": mp.phonecode()}).status_code == 200
    assert calls() == before + 1
    # the number reached the backend, and nothing else
    numbers = ["13800138000", "61234567"]
    log = mp.g.log() + mp.g.out()
    assert not any(n in log for n in numbers)


def test_login_with_a_phone_code_hands_the_number_to_hook_and_backend(mp):
    r = mp.login(json={"app": "mp", "code": mp.wxlogin(user="meimei"),
                       "phone_code": mp.phonecode(user="meimei")})
    assert r.status_code == 200 and set(r.json()) == {"ticket"}, r.text
    assert "13900139000" not in r.text
    u = mp.redeem(r.json()["ticket"]).json()
    assert u["phone"] == {"phoneNumber": "13900139000", "purePhoneNumber": "13900139000",
                          "countryCode": "86"}
    assert json.loads(mp.peek("last_user"))["phone"]["purePhoneNumber"] == "13900139000"
    # a bad phone code: the login goes on without the number
    r = mp.login(data={"app": "mp", "code": mp.wxlogin(), "phone_code": "spent"})
    assert r.status_code == 200
    assert "phone" not in mp.redeem(r.json()["ticket"]).json()
    assert mp.login(data={"app": "mp", "code": mp.wxlogin(), "phone_code": "a b"}).status_code == 400
    log = mp.g.log() + mp.g.out()
    assert "13900139000" not in log and "phone number not given: code_invalid" in log


def test_session_key_never_leaves_the_server(gateway, sandbox, redis):
    m = World(gateway, sandbox, store=redis.url)
    for app, appid in (("mp", MP), ("game", GAME)):
        for user in ("xiaoming", "meimei"):
            r = m.login(json={"app": app, "code": m.wxlogin(appid, user)})
            assert r.status_code == 200
            if "ticket" in r.json():
                m.redeem(r.json()["ticket"])
    keys = [m.session_key(appid, user) for appid in (MP, GAME) for user in ("xiaoming", "meimei")]
    assert len(set(keys)) == 4 and all(len(k) == 24 for k in keys)
    blob = m.blob()
    for k in keys:
        assert k not in blob
    # sealed in the store: one record per user and app, none holding the key in clear
    dump = redis.command("KEYS", "*").decode()
    sk = re.findall(r"wxgate:sk:\{[^}]+\}:[\w-]+", dump)
    assert len(sk) == 4, dump
    for name in sk:
        value = redis.command("GET", name)
        assert not any(k.encode() in value for k in keys)


def test_check_refuses_apps_of_the_wrong_kind(tmp_path):
    cfg = tmp_path / "wxgate.lua"
    cfg.write_text('''return {
      public_url = "https://login.example.com",
      cookie_secret = "cookie-secret-0123456789", ticket_secret = "ticket-secret-0123456789",
      apps = { oa = { appid = "wx1", secret = "x" and { env = "S" } },
               mp = { appid = "wx2", kind = "miniprogram", secret = { env = "S" } } },
      campaigns = { spring = { app = "oa", website_app = "mp", miniprogram_apps = { "oa" },
                               allow = { "https://h5.example.com/" } } } }''')
    r = subprocess.run([BIN, "check", "-c", str(cfg)], capture_output=True, text=True,
                       env={"S": "secret-value-0123456789"}, timeout=30)
    assert r.returncode == 1
    assert ('campaigns.spring.website_app: app "mp" is of kind miniprogram: PC QR login '
            '(website_app) needs an app of kind website') in r.stderr, r.stderr
    assert ('campaigns.spring.miniprogram_apps[1]: app "oa" is of kind official_account'
            in r.stderr)
    assert "secret-value" not in r.stderr + r.stdout


def test_each_client_is_limited_per_minute(gateway, sandbox):
    """limits.mp_login_per_minute: past it a client gets 429 with Retry-After
    and WeChat is not called; /auth's own limit is counted apart."""
    w = World(gateway, sandbox, limits="{ mp_login_per_minute = 3, auth_per_minute = 100 }")
    calls = lambda: requests.get(w.sb.url + "/_sandbox/stats", timeout=5).json()[
        "endpoints"].get("/sns/jscode2session", {}).get("calls", 0)
    before = calls()
    answers = [w.login(data={"app": "mp", "code": w.wxlogin()}) for _ in range(5)]
    statuses = [r.status_code for r in answers]
    # A minute may turn during the five calls: at most one more gets through.
    assert statuses[:3] == [200, 200, 200], statuses
    refused = [r for r in answers if r.status_code == 429]
    assert len(refused) >= 1, statuses
    for r in refused:
        assert r.json()["error"] == "rate_limited" and r.json()["request_id"]
        assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert calls() - before == 5 - len(refused)  # a refused call costs WeChat nothing
    assert "wxgate_mp_login_rate_limited_total" in w.g.get("/metrics").text
    # /auth has its own count
    assert w.g.get("/auth", params={"campaign": "spring",
                                    "return": "https://h5.example.com/"}).status_code != 429


def test_mini_program_logins_count_in_the_campaign_funnel(mp):
    """A Mini Program login is a started (with its code) and completed login
    of its campaign in the funnel (issue 14's stats); WeChat's refusal is a
    failed one, with its errcode."""
    assert mp.login(data={"app": "mp", "code": mp.wxlogin()}).status_code == 200
    mp.fault("/sns/jscode2session", type="errcode", errcode=40226, count=1)
    assert mp.login(data={"app": "mp", "code": mp.wxlogin()}).status_code == 403
    auth = {"Authorization": "Bearer " + API_KEY}
    deadline = time.time() + 10
    while True:  # worker 0 folds the workers' counts once a second
        r = mp.g.get("/api/campaigns/stats", params={"window": "15m", "campaign": "spring"},
                     headers=auth)
        assert r.status_code == 200, r.text
        c = r.json()["campaigns"][0]
        if c["started"] >= 2 and c["completed"] + c["failed"] >= 2 or time.time() > deadline:
            break
        time.sleep(0.3)
    assert (c["started"], c["returned_with_code"], c["completed"], c["failed"]) == (2, 2, 1, 1), c
