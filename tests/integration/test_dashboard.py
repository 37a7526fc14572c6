"""The campaign funnel (core/login/funnel.c, funnel_sync.c) and its two faces,
GET /api/campaigns/stats and GET /dashboard (core/handler/handler_stats.c,
handler_dashboard.c): logins through the real sandbox, then the JSON, the page
and /metrics must tell the same numbers; two instances on one Redis show the
fleet's totals, and a restarted instance keeps its counts."""
import base64
import html
import re
import signal
import time

import pytest
import requests

from conftest import SLOW, Gateway, wait_until
from test_callback import (API_KEY, CONFIG, HOOKS, MODE_ROUTE, RETURN, SECRETS, UA, World,
                           ticket_of)

ENV = {"S_DEMO": SECRETS["demo"], "S_SOLO": SECRETS["solo"]}
PASSWORD = "dash-password-0123"


class FunnelWorld(World):
    """World (test_callback.py) with extra top-level config lines."""

    def __init__(self, gateway, sandbox, extra="", store=None, sb=None):
        self.sb = sb or sandbox()
        cfg = CONFIG % {"sb": self.sb.url, "key": API_KEY, "timeout": 3000}
        if store:
            cfg = cfg.replace("workers = 2,", 'workers = 2, store = "%s",' % store)
        cfg = cfg.replace("campaigns = {", extra + "\n  campaigns = {", 1)
        self.g = gateway(cfg, env=ENV, files={"hooks.lua": HOOKS, "mode.lua": MODE_ROUTE})
        self.phone = requests.Session()
        self.phone.headers["User-Agent"] = UA
        self.seen = []
        self.login_as("xiaoming")


def admin_url(g):
    port = int(re.search(r'admin_listen = "127.0.0.1:(\d+)"', open(g.config).read()).group(1))
    return "http://127.0.0.1:%d" % port


def page_counts(text):
    """{campaign: {key: int}} from the page's data-campaign rows."""
    out = {}
    for m in re.finditer(r'<tr data-campaign="([^"]*)">(.*?)</tr>', text, re.S):
        cells = dict(re.findall(r'data-k="([^"]+)">(\d+)<', m.group(2)))
        out[html.unescape(m.group(1))] = {k: int(v) for k, v in cells.items()}
    return out


def metric(text, name, **labels):
    total = 0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all('%s="%s"' % (k, v) in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def run_logins(w):
    """base: 3 completed (2 redeemed), 1 WeChat error (errcode 45011);
    info: 2 declined. Returns nothing: the expected numbers are below."""
    tickets = [ticket_of(w.login("base", RETURN + "?n=%d" % i))[1] for i in range(3)]
    for t in tickets[:2]:
        assert w.redeem(t).status_code == 200
    w.fault("/sns/oauth2/access_token", type="errcode", errcode="45011", count="1")
    r = w.login("base")
    assert r.status_code == 502 or r.status_code >= 400, r.status_code
    for _ in range(2):
        cb = w.consent(w.start("info"), "deny")
        assert w.get(cb).headers["Location"] == RETURN + "?wx_denied=1"


EXPECTED = {
    "base": dict(started=4, sent_to_wechat=4, returned_with_code=4, completed=3, redeemed=2,
                 declined=0, failed=1, wechat_errors=1),
    "info": dict(started=2, sent_to_wechat=2, returned_with_code=0, completed=0, redeemed=0,
                 declined=2, failed=0, wechat_errors=0),
}


def check_json(stats):
    got = {c["campaign"]: c for c in stats["campaigns"]}
    for name, want in EXPECTED.items():
        for k, v in want.items():
            assert got[name][k] == v, (name, k, got[name])
    assert got["base"]["wechat_errors_by_errcode"] == {"45011": 1}
    assert got["base"]["median_seconds"] is not None
    assert got["base"]["top_return_pages"] == [{"page": RETURN, "count": 3}]
    return got


def test_json_page_and_metrics_agree(gateway, sandbox):
    admin = "127.0.0.1:%d" % __import__("conftest").free_port()
    w = FunnelWorld(gateway, sandbox, extra='admin_listen = "%s",' % admin)
    run_logins(w)
    a = "http://" + admin
    # the JSON: open on the admin listener, the API key on the public one
    stats = requests.get(a + "/api/campaigns/stats?window=15m", timeout=5).json()
    got = check_json(stats)
    assert requests.get(w.g.url + "/api/campaigns/stats", timeout=5).status_code == 401
    pub = requests.get(w.g.url + "/api/campaigns/stats?window=all&campaign=base", timeout=5,
                       headers={"Authorization": "Bearer " + API_KEY}).json()
    assert [c["campaign"] for c in pub["campaigns"]] == ["base"]
    assert pub["campaigns"][0]["completed"] == 3
    # the page shows the same counts
    page = requests.get(a + "/dashboard?window=15m", timeout=5)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "<script" not in page.text and "http://" not in page.text.split("</style>")[1].replace(
        'href="?', "")
    counts = page_counts(page.text)
    for name in EXPECTED:
        for k in ("started", "sent_to_wechat", "returned_with_code", "completed", "redeemed",
                  "declined", "failed"):
            assert counts[name][k] == got[name][k], (name, k)
    detail = requests.get(a + "/dashboard?campaign=base&window=1h", timeout=5).text
    assert 'data-k="errcode-45011">1<' in detail and "<svg" in detail
    assert 'data-k="wechat_errors">1<' in detail
    # and /metrics agrees
    m = requests.get(a + "/metrics", timeout=5).text
    assert metric(m, "wxgate_logins_started_total", campaign="base") == got["base"]["sent_to_wechat"]
    assert metric(m, "wxgate_logins_completed_total", campaign="base") == 3
    assert metric(m, "wxgate_tickets_redeemed_total", campaign="base") == 2
    assert metric(m, "wxgate_logins_failed_total", campaign="base") == 1
    assert metric(m, "wxgate_logins_denied_total", campaign="info") == 2
    # no user data on the page or in the JSON
    for text in (page.text, detail, str(stats)):
        assert "openid" not in text and "小明" not in text and "?n=" not in text
    # the public listener has no dashboard without a password
    assert w.get(w.g.url + "/dashboard").status_code == 404
    # a reload keeps the counts
    w.g.signal(signal.SIGHUP)
    w.g.wait_log(r"reload")
    again = requests.get(a + "/api/campaigns/stats?window=all", timeout=5).json()
    check_json(again)


def test_bad_window_and_unknown_campaign(gateway, sandbox):
    admin = "127.0.0.1:%d" % __import__("conftest").free_port()
    w = FunnelWorld(gateway, sandbox, extra='admin_listen = "%s",' % admin)
    a = "http://" + admin
    r = requests.get(a + "/api/campaigns/stats?window=2w", timeout=5)
    assert r.status_code == 400 and "15m, 1h, 1d or all" in r.json()["message"]
    r = requests.get(a + "/api/campaigns/stats?campaign=nope", timeout=5)
    assert r.status_code == 404 and r.json()["error"] == "no_such_campaign"
    r = requests.get(a + "/dashboard?window=<x>", timeout=5)
    assert r.status_code == 400 and "<x>" not in r.text
    # configured campaigns are listed before their first login, at zero
    s = requests.get(a + "/api/campaigns/stats", timeout=5).json()
    assert {c["campaign"] for c in s["campaigns"]} >= {"base", "info", "solo"}
    assert all(c["started"] == 0 for c in s["campaigns"])


def test_password_protects_the_public_dashboard(gateway, sandbox):
    w = FunnelWorld(gateway, sandbox, extra='dashboard = { password = "%s" },' % PASSWORD)
    ticket_of(w.login("base"))
    r = requests.get(w.g.url + "/dashboard", timeout=5)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    bad = base64.b64encode(b"ops:wrong-password").decode()
    assert requests.get(w.g.url + "/dashboard", timeout=5,
                        headers={"Authorization": "Basic " + bad}).status_code == 401
    good = base64.b64encode(("ops:" + PASSWORD).encode()).decode()
    r = requests.get(w.g.url + "/dashboard", timeout=5, headers={"Authorization": "Basic " + good})
    assert r.status_code == 200 and page_counts(r.text)["base"]["completed"] == 1
    assert PASSWORD not in w.g.log()


def test_two_instances_on_one_redis_and_a_restart(gateway, sandbox, redis):
    admins = ["127.0.0.1:%d" % __import__("conftest").free_port() for _ in range(2)]
    a = FunnelWorld(gateway, sandbox, extra='admin_listen = "%s",' % admins[0], store=redis.url)
    b = FunnelWorld(gateway, sandbox, extra='admin_listen = "%s",' % admins[1], store=redis.url,
                    sb=a.sb)
    for _ in range(2):
        ticket_of(a.login("base"))
    ticket_of(b.login("base"))
    cb = b.consent(b.start("info"), "deny")
    b.get(cb)

    def totals(admin):
        s = requests.get("http://%s/api/campaigns/stats?window=all" % admin, timeout=5).json()
        c = {x["campaign"]: x for x in s["campaigns"]}
        return s["instances"], c["base"]["completed"], c["info"]["declined"]

    def pages_agree():
        pa = page_counts(requests.get("http://%s/dashboard" % admins[0], timeout=5).text)
        pb = page_counts(requests.get("http://%s/dashboard" % admins[1], timeout=5).text)
        return pa == pb and pa["base"]["completed"] == 3 and pa["info"]["declined"] == 1

    wait_until(lambda: totals(admins[0]) == (2, 3, 1) and totals(admins[1]) == (2, 3, 1),
               timeout=10 * SLOW, what="both instances to show the fleet's totals")
    wait_until(pages_agree, timeout=10 * SLOW, what="both dashboards to show the same totals")
    # a restarted instance (same host and port) takes its counts back: the
    # written config names its port literally, so the new process binds it
    config = open(a.g.config).read()
    a.g.stop()
    assert totals(admins[1]) == (2, 3, 1)
    gateway(config, env=ENV, files={"hooks.lua": HOOKS, "mode.lua": MODE_ROUTE})
    wait_until(lambda: totals(admins[0]) == (2, 3, 1), timeout=10 * SLOW,
               what="the restarted instance to show its earlier counts")
    time.sleep(1.5)  # past a tick: its record is written back, not doubled
    assert totals(admins[0]) == (2, 3, 1) and totals(admins[1]) == (2, 3, 1)
