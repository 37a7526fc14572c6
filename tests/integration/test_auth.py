"""GET /auth (core/handler/handler_auth.c, core/login/login.c): campaign and return URL
checks, the authorize hook, the state, the cookie and the redirect to WeChat."""
import re
import urllib.parse

import pytest
import requests

from conftest import SLOW

WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI")

CONFIG = '''
return {
  listen = "127.0.0.1:{PORT}", workers = 1,
  public_url = "https://login.example.com",
  cookie_secret = "cookie-secret-0123456789abcdef",
  ticket_secret = "ticket-secret-0123456789abcdef",
  wechat = { open_base = "https://open.weixin.qq.com", api_base = "http://127.0.0.1:1" },
  apps = { main = { appid = "wx1234567890abcdef", secret = { env = "WX_SECRET" } } },
  default_campaign = "spring",
  campaigns = {
    spring = { app = "main", scope = "snsapi_base", scope_override = true,
               allow = { "https://h5.example.com/spring/", "http://127.0.0.1:8000" } },
    locked = { app = "main", scope = "snsapi_userinfo", force_popup = true,
               allow = { "https://game.example.com:8443/play" }, script = "hooks.lua" },
  },
}
'''

HOOKS = '''
return {
  authorize = function(req, ctx)
    if req.query.closed then return false, "the campaign <ended>" end
    if req.query.upgrade then return { scope = "snsapi_base" } end
    if req.query.boom then error("hook failed") end
  end,
}
'''

SECRET = "app-secret-must-never-leak-123456"


@pytest.fixture
def g(gateway):
    return gateway(CONFIG, files={"hooks.lua": HOOKS}, env={"WX_SECRET": SECRET})


def auth(g, query, ua=WECHAT_UA, **kw):
    return g.get("/auth?" + query, headers={"User-Agent": ua}, **kw)


def test_redirects_to_wechat_with_exact_parameters(g):
    ret = "https://h5.example.com/spring/index.html?x=1#/home"
    r = auth(g, "campaign=spring&return=" + urllib.parse.quote(ret, safe=""))
    assert r.status_code == 302
    loc = r.headers["Location"]
    m = re.fullmatch(r"https://open\.weixin\.qq\.com/connect/oauth2/authorize\?appid=wx1234567890abcdef"
                     r"&redirect_uri=https%3A%2F%2Flogin\.example\.com%2Fcallback&response_type=code"
                     r"&scope=snsapi_base&state=([A-Za-z0-9]{32})&connect_redirect=1#wechat_redirect",
                     loc)
    assert m, loc
    state = m.group(1)
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("wxgate_state=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert "Path=/;" in cookie
    assert state not in cookie  # the cookie holds a MAC, not the state
    assert r.headers["Cache-Control"] == "no-store"
    assert SECRET not in r.text + str(r.headers)


def test_states_are_unique_and_cookie_keeps_recent_ones(g):
    states, cookie = set(), ""
    for _ in range(5):
        r = g.get("/auth?return=http%3A%2F%2F127.0.0.1%3A8000%2F",
                  headers={"User-Agent": WECHAT_UA, "Cookie": "wxgate_state=" + cookie})
        states.add(re.search(r"state=(\w+)", r.headers["Location"]).group(1))
        new = re.match(r"wxgate_state=([^;]+);", r.headers["Set-Cookie"]).group(1)
        if cookie:
            assert new.split(".")[1] == cookie.split(".")[0]
        cookie = new
    assert len(states) == 5
    assert len(cookie.split(".")) == 4


def test_url_alias_default_campaign_and_scope_override(g):
    r = auth(g, "url=https%3A%2F%2Fh5.example.com%2Fspring%2F&scope=snsapi_userinfo")
    assert r.status_code == 302
    assert "&scope=snsapi_userinfo&" in r.headers["Location"]
    r = auth(g, "campaign=spring&url=https%3A%2F%2Fh5.example.com%2Fspring%2F&scope=snsapi_login")
    assert r.status_code == 400


def test_scope_override_refused_where_not_allowed_and_force_popup(g):
    r = auth(g, "campaign=locked&return=https%3A%2F%2Fgame.example.com%3A8443%2Fplay%2Fa&scope=snsapi_base")
    assert r.status_code == 400
    r = auth(g, "campaign=locked&return=https%3A%2F%2Fgame.example.com%3A8443%2Fplay%2Fa")
    loc = r.headers["Location"]
    assert "&scope=snsapi_userinfo&" in loc
    assert re.search(r"&state=\w+&forcePopup=true&connect_redirect=1#wechat_redirect$", loc)


def test_unknown_campaign_is_404(g):
    r = auth(g, "campaign=nope&return=https%3A%2F%2Fh5.example.com%2Fspring%2F")
    assert r.status_code == 404
    assert "活动不存在" in r.text and "no such campaign" in r.text


@pytest.mark.parametrize("ret", [
    "https://evil.com/spring/",
    "//evil.com/spring/",
    "https://h5.example.com.evil.com/spring/",
    "https://h5.example.com@evil.com/spring/",
    "https://user:pw@h5.example.com/spring/",
    "https://h5.example.com/spring/%0d%0aSet-Cookie:x=1",
    "https://h5.example.com/spring/\r\nLocation: https://evil.com",
    "javascript:alert(1)//h5.example.com/spring/",
    "JAVASCRIPT:alert(1)",
    "http://h5.example.com/spring/",            # wrong scheme
    "https://h5.example.com:444/spring/",       # wrong port
    "https://h5.example.com/summer/",           # outside the path prefix
    "https://h5.example.com/spring/../admin",
    "https://h5.example.com/spring/%2e%2e/admin",
    "https://h5.example.com\\@evil.com/spring/",
    "/spring/",
    "https:/h5.example.com/spring/",
    "",
    "https://127.0.0.1:8000.evil.com/",
    "http://127.0.0.1:80/",
    "https://h5.example.com/springtime",
])
def test_open_redirect_attempts_are_refused(g, ret):
    r = auth(g, "campaign=spring&return=" + urllib.parse.quote(ret, safe=""))
    assert r.status_code == 400, (ret, r.headers.get("Location"))
    assert "Location" not in r.headers
    assert "返回地址无效" in r.text
    assert "evil.com" not in r.text


@pytest.mark.parametrize("ret", [
    "https://h5.example.com/spring/",
    "https://H5.Example.com/spring/a/b?c=d#/e",
    "https://h5.example.com:443/spring/x",
    "http://127.0.0.1:8000",
    "http://127.0.0.1:8000/any/path?q=1",
])
def test_allowed_return_urls(g, ret):
    r = auth(g, "campaign=spring&return=" + urllib.parse.quote(ret, safe=""))
    assert r.status_code == 302, ret


def test_authorize_hook_refuses_changes_scope_and_failure_is_safe(g):
    base = "campaign=locked&return=https%3A%2F%2Fgame.example.com%3A8443%2Fplay%2F"
    r = auth(g, base + "&closed=1")
    assert r.status_code == 403
    assert "the campaign &lt;ended&gt;" in r.text
    r = auth(g, base + "&upgrade=1")
    assert r.status_code == 302 and "&scope=snsapi_base&" in r.headers["Location"]
    r = auth(g, base + "&boom=1")
    assert r.status_code == 302 and "&scope=snsapi_userinfo&" in r.headers["Location"]
    assert "hook failed" in g.log() and "stack traceback" in g.log()


def test_browser_outside_wechat_gets_open_in_wechat_page_with_qr(g):
    r = auth(g, "campaign=spring&return=https%3A%2F%2Fh5.example.com%2Fspring%2F",
             ua="Mozilla/5.0 (X11; Linux x86_64) Chrome/120")
    assert r.status_code == 403
    assert "请在微信中打开" in r.text and "open this link in WeChat" in r.text
    assert "<svg" in r.text and r.text.count("M") > 50
    assert "https://login.example.com/auth?campaign=spring&amp;return=" in r.text


def test_campaign_config_requires_keys(tmp_path):
    import subprocess
    from conftest import BIN
    cfg = tmp_path / "c.lua"
    cfg.write_text('return { apps = { a = { appid = "wx1", secret = { env = "S" } } }, '
                   'campaigns = { c = { allow = { "https://x.com/" } } } }\n')
    p = subprocess.run([BIN, "check", "-c", str(cfg)], capture_output=True, text=True,
                       env={"S": "secret-value-123456"})
    assert p.returncode == 1
    for key in ("public_url", "cookie_secret", "ticket_secret"):
        assert "config: %s: required with campaigns" % key in p.stderr


def test_reload_swaps_campaigns_and_allow_lists(g):
    import signal
    ret = urllib.parse.quote("https://new.example.com/x", safe="")
    assert auth(g, "campaign=spring&return=" + ret).status_code == 400
    assert auth(g, "campaign=autumn&return=" + ret).status_code == 404
    with open(g.config, encoding="utf-8") as f:
        text = f.read()
    text = text.replace('"http://127.0.0.1:8000" } },',
                        '"http://127.0.0.1:8000", "https://new.example.com/" } },\n'
                        '    autumn = { app = "main", allow = { "https://new.example.com/" } },')
    g.write("wxgate.lua", text)
    g.signal(signal.SIGHUP)
    g.wait_log(r"worker 0: reloaded")
    assert auth(g, "campaign=spring&return=" + ret).status_code == 302
    assert auth(g, "campaign=autumn&return=" + ret).status_code == 302
