"""The PC login's inline form in a real desktop browser: the gateway's own
page embeds the sandbox's QR page in an iframe (login_type=jssdk,
self_redirect=false); once the phone confirms, the iframe moves the whole
page on to the callback and the browser lands on the return URL."""
import os
import tempfile
import urllib.parse

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import Proc, free_port

CONFIG = '''
return {
  listen = "127.0.0.1:%(port)d", workers = 1, public_url = "http://127.0.0.1:%(port)d",
  cookie_secret = "cookie-secret-0123456789abcdef", ticket_secret = "ticket-secret-0123456789abcdef",
  wechat = { open_base = "%(sb)s", api_base = "%(sb)s" },
  apps = {
    demo = { appid = "wx_sandbox_demo", secret = { env = "S_DEMO" } },
    web = { appid = "wx_sandbox_web", kind = "website", secret = { env = "S_WEB" } },
  },
  campaigns = {
    inline = { app = "demo", website_app = "web", pc_inline = { style = "black" },
               allow = { "%(sb)s/_sandbox/callback" } },
  },
}
'''


@pytest.fixture
def world():
    sb_port, g_port = free_port(), free_port()
    sb = Proc(["sandbox", "-l", "127.0.0.1:%d" % sb_port])
    sb.url = "http://127.0.0.1:%d" % sb_port
    sb.wait_log("listening on")
    d = tempfile.mkdtemp(prefix="wxgate-e2e-")
    cfg = os.path.join(d, "wxgate.lua")
    with open(cfg, "w", encoding="utf-8") as f:
        f.write(CONFIG % {"port": g_port, "sb": sb.url})
    g = Proc(["run", "-c", cfg], env={"S_DEMO": "sandbox_demo_secret",
                                      "S_WEB": "sandbox_web_secret"})
    g.url = "http://127.0.0.1:%d" % g_port
    g.wait_log("listening on")
    yield g, sb
    g.stop()
    sb.stop()
    g.check_sanitizers()
    sb.check_sanitizers()


def test_inline_qr_confirm_moves_the_whole_page_on(desktop_browser, world):
    g, sb = world
    ret = sb.url + "/_sandbox/callback"
    desktop_browser.get(g.url + "/auth?campaign=inline&return=" + urllib.parse.quote(ret, safe=""))
    frame = WebDriverWait(desktop_browser, 20).until(
        EC.presence_of_element_located((By.ID, "wx-qr")))
    assert desktop_browser.current_url.startswith(g.url + "/auth?")
    desktop_browser.switch_to.frame(frame)
    uuid = WebDriverWait(desktop_browser, 20).until(
        EC.presence_of_element_located((By.ID, "qrconnect"))).get_attribute("data-uuid")
    desktop_browser.switch_to.default_content()
    r = requests.post(sb.url + "/_sandbox/qrscan", params={"uuid": uuid, "user": "lilei"},
                      timeout=10)
    assert r.status_code == 200, r.text
    WebDriverWait(desktop_browser, 20).until(lambda d: d.current_url.startswith(ret + "?wx_ticket="))
