"""The PC website login against the real sandbox (core/handler/handler_auth.c,
core/handler/handler_callback.c, core/wechat/wechat.c, lua/sandbox/qrconnect.lua):
which browsers get connect/qrconnect and its exact URL, the simulated phone's
scan, confirm and decline, the code exchange with the website app's own appid
and secret, a restart that goes back to the QR page, and the sandbox's checks."""
import html
import re
import urllib.parse

import pytest
import requests

API_KEY = "api-key-for-tests-0123456789"
SECRETS = {"demo": "sandbox_demo_secret", "web": "sandbox_web_secret"}
RETURN = "https://h5.example.com/page"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36"
WECHAT = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile/15E148 MicroMessenger/8.0.50"

CONFIG = '''
return {
  listen = "127.0.0.1:{PORT}", workers = 2,
  public_url = "http://127.0.0.1:{PORT}",
  cookie_secret = "cookie-secret-0123456789abcdef",
  ticket_secret = "ticket-secret-0123456789abcdef",
  api_keys = { "%(key)s" },
  wechat = { open_base = "%(sb)s", api_base = "%(sb)s", timeout_ms = 3000 },
  apps = {
    demo = { appid = "wx_sandbox_demo", secret = { env = "S_DEMO" } },
    web = { appid = "wx_sandbox_web", kind = "website", secret = { env = "S_WEB" } },
  },
  campaigns = {
    pc = { app = "demo", website_app = "web", scope = "snsapi_base",
           allow = { "https://h5.example.com/" } },
    h5only = { app = "demo", allow = { "https://h5.example.com/" } },
    inline = { app = "demo", website_app = "web", allow = { "https://h5.example.com/" },
               pc_inline = { style = "white", href = "https://h5.example.com/qr.css" } },
  },
}
'''


class World:
    def __init__(self, gateway, sandbox):
        self.sb = sandbox()
        self.g = gateway(CONFIG % {"sb": self.sb.url, "key": API_KEY},
                         env={"S_DEMO": SECRETS["demo"], "S_WEB": SECRETS["web"]})
        self.desktop = requests.Session()
        self.desktop.headers["User-Agent"] = DESKTOP
        self.phone = requests.Session()  # the simulated phone: its own test-user cookie
        self.seen = []

    def get(self, session, url, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 10)
        r = session.get(url, **kw)
        self.seen.append(r)
        return r

    def start(self, campaign="pc", ua=None):
        s = self.desktop if ua is None else requests.Session()
        if ua:
            s.headers["User-Agent"] = ua
        return self.get(s, self.g.url + "/auth?campaign=%s&return=%s" %
                        (campaign, urllib.parse.quote(RETURN, safe="")))

    def qr_page(self):
        r = self.start()
        assert r.status_code == 302, r.text
        page = self.get(self.desktop, r.headers["Location"])
        assert page.status_code == 200 and "X-Sandbox-Error" not in page.headers, page.text[:500]
        return re.search(r'data-uuid="(\w+)"', page.text).group(1)

    def poll(self, uuid):
        return requests.get(self.sb.url + "/connect/l/qrconnect", params={"uuid": uuid},
                            timeout=5).json()

    def redeem(self, ticket):
        r = requests.post(self.g.url + "/api/ticket", data={"ticket": ticket}, timeout=5,
                          headers={"Authorization": "Bearer " + API_KEY})
        self.seen.append(r)
        return r


@pytest.fixture
def w(gateway, sandbox):
    world = World(gateway, sandbox)
    yield world
    blob = world.g.log() + "".join(r.text + str(r.headers) for r in world.seen)
    for s in SECRETS.values():
        assert s not in blob


def test_desktop_gets_qrconnect_in_wechats_order(w):
    r = w.start()
    assert r.status_code == 302 and "wxgate_state=" in r.headers["Set-Cookie"]
    loc = r.headers["Location"]
    m = re.fullmatch(re.escape(
        w.sb.url + "/connect/qrconnect?appid=wx_sandbox_web&redirect_uri=" +
        urllib.parse.quote(w.g.url + "/callback", safe="") +
        "&response_type=code&scope=snsapi_login&state=") + r"([A-Za-z0-9]{32})#wechat_redirect",
        loc)
    assert m, loc
    # inside WeChat: the official account's web authorization, as before
    r = w.start(ua=WECHAT)
    assert "/connect/oauth2/authorize?appid=wx_sandbox_demo&" in r.headers["Location"]
    # a phone's browser outside WeChat cannot scan its own screen
    r = w.start(ua=ANDROID)
    assert r.status_code == 403 and "请在微信中打开" in r.text
    # a campaign without a website app keeps the "open in WeChat" page on desktops
    r = w.start("h5only")
    assert r.status_code == 403 and "请在微信中打开" in r.text


def test_phone_scans_and_confirms_then_the_user_lands_with_a_ticket(w):
    uuid = w.qr_page()
    assert w.poll(uuid)["wx_errcode"] == 408
    w.phone.post(w.sb.url + "/_sandbox/login?user=meimei", timeout=5)
    page = w.get(w.phone, w.sb.url + "/connect/confirm", params={"uuid": uuid})
    assert page.status_code == 200 and "确认登录" in page.text and "韩梅梅" in page.text
    assert w.poll(uuid)["wx_errcode"] == 404
    r = w.phone.post(w.sb.url + "/connect/confirm_reply", timeout=5,
                     data={"uuid": uuid, "user": "meimei", "action": "allow"})
    assert "已确认登录" in r.text
    p = w.poll(uuid)
    assert p["wx_errcode"] == 405 and p["wx_code"]
    assert p["redirect"].startswith(w.g.url + "/callback?code=" + p["wx_code"] + "&state=")
    r = w.get(w.desktop, p["redirect"])
    assert r.status_code == 302 and r.headers["Location"].startswith(RETURN + "?wx_ticket=")
    u = w.redeem(re.search(r"wx_ticket=(\w+)", r.headers["Location"]).group(1)).json()
    assert u["kind"] == "pc" and u["app"] == "web" and u["appid"] == "wx_sandbox_web"
    assert u["scope"] == "snsapi_login" and u["nickname"] == "韩梅梅" and u["unionid"]
    users = requests.get(w.sb.url + "/_sandbox/apps", timeout=5).json()["users"]
    meimei = [x for x in users if x["id"] == "meimei"][0]
    assert u["openid"] == meimei["openids"]["wx_sandbox_web"]
    assert u["openid"] != meimei["openids"]["wx_sandbox_demo"]
    # the backend can read the PC user's profile again later (website app's tokens)
    r = requests.get(w.g.url + "/api/user", params={"app": "web", "openid": u["openid"]},
                     headers={"Authorization": "Bearer " + API_KEY}, timeout=5)
    assert r.status_code == 200 and r.json()["nickname"] == "韩梅梅", r.text
    # the QR code is spent
    r = requests.post(w.sb.url + "/_sandbox/qrscan", params={"uuid": uuid}, timeout=5)
    assert r.status_code == 409


def test_decline_goes_back_with_wx_denied(w):
    uuid = w.qr_page()
    r = requests.post(w.sb.url + "/_sandbox/qrscan", timeout=5,
                      params={"uuid": uuid, "action": "decline"})
    assert r.json()["status"] == "declined"
    p = w.poll(uuid)
    assert p["wx_errcode"] == 403 and "code=" not in p["redirect"]
    r = w.get(w.desktop, p["redirect"])
    assert r.status_code == 302 and r.headers["Location"] == RETURN + "?wx_denied=1"


def test_a_spent_code_restarts_at_the_qr_page(w):
    uuid = w.qr_page()
    requests.post(w.sb.url + "/_sandbox/qrscan", params={"uuid": uuid}, timeout=5)
    p = w.poll(uuid)
    # someone else exchanged the code first (with the website app's own secret)
    r = requests.get(w.sb.url + "/sns/oauth2/access_token", timeout=5, params={
        "appid": "wx_sandbox_web", "secret": SECRETS["web"], "code": p["wx_code"],
        "grant_type": "authorization_code"})
    assert r.json()["scope"] == "snsapi_login"
    r = w.get(w.desktop, p["redirect"])
    assert r.status_code == 302
    assert "/connect/qrconnect?appid=wx_sandbox_web&" in r.headers["Location"]


def test_inline_form_embeds_the_qr_in_the_gateways_page(w):
    r = w.start("inline")
    assert r.status_code == 200 and "wxgate_state=" in r.headers["Set-Cookie"]
    src = html.unescape(re.search(r'<iframe id="wx-qr"[^>]* src="([^"]+)"', r.text).group(1))
    m = re.fullmatch(re.escape(
        w.sb.url + "/connect/qrconnect?appid=wx_sandbox_web&redirect_uri=" +
        urllib.parse.quote(w.g.url + "/callback", safe="") +
        "&response_type=code&scope=snsapi_login&state=") +
        r"[A-Za-z0-9]{32}" + re.escape("&login_type=jssdk&self_redirect=false&style=white&href=" +
                                       urllib.parse.quote("https://h5.example.com/qr.css",
                                                          safe="")), src)
    assert m, src
    frame = w.get(w.desktop, src)
    assert frame.status_code == 200 and "selfRedirect=false" in frame.text
    uuid = re.search(r'data-uuid="(\w+)"', frame.text).group(1)
    requests.post(w.sb.url + "/_sandbox/qrscan", params={"uuid": uuid}, timeout=5)
    r = w.get(w.desktop, w.poll(uuid)["redirect"])
    assert r.status_code == 302 and "wx_ticket=" in r.headers["Location"]


def test_sandbox_keeps_the_two_web_logins_apart(w):
    cb = urllib.parse.quote(w.g.url + "/callback", safe="")
    q = "?appid=%s&redirect_uri=" + cb.replace("%", "%%") + "&response_type=code&scope=%s&state=abc"
    r = requests.get(w.sb.url + "/connect/oauth2/authorize" + q % ("wx_sandbox_web", "snsapi_login"),
                     timeout=5)
    assert r.headers["X-Sandbox-Error"] == "10005"
    r = requests.get(w.sb.url + "/connect/qrconnect" + q % ("wx_sandbox_demo", "snsapi_login"),
                     timeout=5)
    assert r.headers["X-Sandbox-Error"] == "10005"
    r = requests.get(w.sb.url + "/connect/qrconnect?redirect_uri=" + cb +
                     "&appid=wx_sandbox_web&response_type=code&scope=snsapi_login&state=abc",
                     timeout=5)
    assert r.headers["X-Sandbox-Error"] == "param_order"
    # WeChat's inline form: its parameters follow state and are accepted
    r = requests.get(w.sb.url + "/connect/qrconnect" + q % ("wx_sandbox_web", "snsapi_login") +
                     "&login_type=jssdk&self_redirect=true&style=white&href=", timeout=5)
    assert r.status_code == 200 and "X-Sandbox-Error" not in r.headers
    assert "selfRedirect=true" in r.text
    # a QR code lives 5 minutes on the sandbox clock
    uuid = re.search(r'data-uuid="(\w+)"', r.text).group(1)
    requests.post(w.sb.url + "/_sandbox/clock", params={"advance": 301}, timeout=5)
    assert w.poll(uuid)["wx_errcode"] == 402
    r = requests.post(w.sb.url + "/_sandbox/qrscan", params={"uuid": uuid}, timeout=5)
    assert r.status_code == 409 and "expired" in r.json()["error"]
