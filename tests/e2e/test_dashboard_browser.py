"""The campaign dashboard in a real browser (core/handler/handler_dashboard.c):
logins for two campaigns through the sandbox's pages (completed, declined,
one injected WeChat error), then the counts are read off the page as a phone
shows it, and must be exactly what the browser did. A screenshot of the
page is kept in the build folder (dashboard.png, dashboard-detail.png)."""
import os
import urllib.parse

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import BIN, Gateway, Sandbox, free_port

API_KEY = "e2e-api-key-0123456789abcdef"

CONFIG = '''
return {
  listen = "127.0.0.1:{PORT}", workers = 2,
  admin_listen = "%(admin)s",
  public_url = "http://127.0.0.1:{PORT}",
  cookie_secret = "cookie-secret-0123456789abcdef",
  ticket_secret = "ticket-secret-0123456789abcdef",
  token_key = "token-key-0123456789abcdef",
  api_keys = { "%(key)s" },
  wechat = { open_base = "%(sb)s", api_base = "%(sb)s" },
  apps = { demo = { appid = "wx_sandbox_demo", secret = { env = "S_DEMO" } } },
  campaigns = {
    spring = { app = "demo", scope = "snsapi_userinfo",
               allow = { "http://127.0.0.1:{PORT}/landing" } },
    summer = { app = "demo", scope = "snsapi_base",
               allow = { "http://127.0.0.1:{PORT}/landing" } },
  },
  routes = { ["/landing"] = "landing.lua" },
}
'''

LANDING = '''
return function(req)
  return 200, "<!doctype html><title>landing</title><p id=landed>landed</p>",
         { ["Content-Type"] = "text/html; charset=utf-8" }
end
'''

# Every count on the overview, read in one go (the page refreshes itself).
READ_COUNTS = '''
const out = {};
for (const tr of document.querySelectorAll("tr[data-campaign]")) {
  const c = out[tr.dataset.campaign] = {};
  for (const td of tr.querySelectorAll("td[data-k]")) c[td.dataset.k] = Number(td.textContent);
}
return out;
'''


def start_login(browser, g, campaign):
    ret = urllib.parse.quote(g.url + "/landing", safe="")
    browser.get("%s/auth?campaign=%s&return=%s" % (g.url, campaign, ret))


def landed(browser):
    WebDriverWait(browser, 20).until(EC.presence_of_element_located((By.ID, "landed")))
    return urllib.parse.parse_qs(urllib.parse.urlparse(browser.current_url).query)


def test_dashboard_counts_what_the_browser_did(browser):
    sb = Sandbox()
    admin = "127.0.0.1:%d" % free_port()
    g = None
    try:
        g = Gateway(CONFIG % {"admin": admin, "key": API_KEY, "sb": sb.url},
                    files={"landing.lua": LANDING}, env={"S_DEMO": "sandbox_demo_secret"})
        # spring (userinfo): one declined on the consent page, then two allowed
        start_login(browser, g, "spring")
        WebDriverWait(browser, 20).until(EC.element_to_be_clickable((By.ID, "deny"))).click()
        assert landed(browser)["wx_denied"] == ["1"]
        start_login(browser, g, "spring")
        WebDriverWait(browser, 20).until(EC.element_to_be_clickable((By.ID, "allow"))).click()
        ticket = landed(browser)["wx_ticket"][0]
        start_login(browser, g, "spring")  # consent given: silent this time
        assert "wx_ticket" in landed(browser)
        r = requests.post(g.url + "/api/ticket", data={"ticket": ticket}, timeout=5,
                          headers={"Authorization": "Bearer " + API_KEY})
        assert r.status_code == 200
        # summer (base): two silent logins and one WeChat error (errcode 45011)
        for _ in range(2):
            start_login(browser, g, "summer")
            assert "wx_ticket" in landed(browser)
        requests.post(sb.url + "/_sandbox/fault", timeout=5,
                      params={"endpoint": "/sns/oauth2/access_token", "type": "errcode",
                              "errcode": "45011", "count": "1"}).raise_for_status()
        start_login(browser, g, "summer")
        WebDriverWait(browser, 20).until(lambda d: "/callback" in d.current_url)

        browser.get("http://%s/dashboard?window=15m" % admin)
        WebDriverWait(browser, 20).until(
            EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-campaign="summer"]')))
        counts = browser.execute_script(READ_COUNTS)
        assert counts["spring"] == dict(started=3, sent_to_wechat=3, returned_with_code=2,
                                        completed=2, redeemed=1, declined=1, failed=0), counts
        assert counts["summer"] == dict(started=3, sent_to_wechat=3, returned_with_code=3,
                                        completed=2, redeemed=0, declined=0, failed=1), counts
        # it fits a phone's width: wide tables scroll inside their box
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1")
        out = os.path.dirname(BIN)
        browser.save_screenshot(os.path.join(out, "dashboard.png"))
        # the row opens the campaign's page: the chart and the exits
        browser.find_element(By.CSS_SELECTOR, 'tr[data-campaign="summer"] a').click()
        WebDriverWait(browser, 20).until(
            EC.presence_of_element_located((By.CSS_SELECTOR, 'td[data-k="errcode-45011"]')))
        assert browser.find_element(By.CSS_SELECTOR, 'td[data-k="errcode-45011"]').text == "1"
        assert browser.find_element(By.CSS_SELECTOR, 'td[data-k="wechat_errors"]').text == "1"
        assert browser.find_elements(By.CSS_SELECTOR, "svg polyline")
        browser.set_window_size(390, 1900)  # the whole page, at a phone's width
        browser.save_screenshot(os.path.join(out, "dashboard-detail.png"))
        # nothing was fetched from anywhere but the gateway
        urls = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(u.startswith("http://" + admin) for u in urls), urls
    finally:
        if g:
            g.stop()
        sb.stop()
    g.check_sanitizers()


def test_demo_prints_its_dashboard(browser, demo):
    assert demo.dashboard.endswith("/dashboard")
    browser.get(demo.dashboard)
    WebDriverWait(browser, 20).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-campaign="demo"]')))
    assert "Campaign dashboard" in browser.title
