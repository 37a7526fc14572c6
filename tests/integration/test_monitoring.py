"""examples/monitoring/: the Prometheus alert rules pass `promtool check rules`
(and their own `promtool test rules`), and every metric that the Grafana
dashboard and the rules query is one that a real wxgate's /metrics exports
once it has seen logins, errors, hooks, the JS-SDK and a Redis outage."""
import json
import os
import re
import shutil
import subprocess
import urllib.parse

import pytest
import requests
import yaml

from conftest import ROOT, free_port
from test_callback import RETURN, ticket_of
from test_dashboard import FunnelWorld

DIR = os.path.join(ROOT, "examples", "monitoring")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    not PROMTOOL, reason="promtool not installed (Debian package prometheus: scripts/setup)")


@needs_promtool
def test_alert_rules_pass_promtool():
    for args in (["check", "rules", "wxgate-alerts.yml"],
                 ["test", "rules", "wxgate-alerts.test.yml"]):
        p = subprocess.run([PROMTOOL] + args, cwd=DIR, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr


def grafana_exprs():
    with open(os.path.join(DIR, "grafana-dashboard.json"), encoding="utf-8") as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dash["templating"]["list"]]
    assert len(exprs) >= 10
    return exprs


def rule_exprs():
    with open(os.path.join(DIR, "wxgate-alerts.yml"), encoding="utf-8") as f:
        rules = yaml.safe_load(f)
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def families(exprs):
    names = set()
    for e in exprs:
        for m in re.findall(r"\bwxgate_[a-z_]+", e):
            names.add(re.sub(r"_(bucket|count|sum)$", "", m))
    return names


def exported(text):
    return {re.sub(r"_(bucket|count|sum)$", "", line.split("{")[0].split(" ")[0])
            for line in text.splitlines() if line.startswith("wxgate_")}


def test_every_queried_metric_is_exported(gateway, sandbox, redis):
    admin = "127.0.0.1:%d" % free_port()
    w = FunnelWorld(gateway, sandbox, store=redis.url,
                    extra='admin_listen = "%s", limits = { auth_per_minute = 30 },\n'
                          '  routes = { ["/_test/mode"] = "mode.lua" },' % admin)
    t = ticket_of(w.login("base"))[1]
    assert w.redeem(t).status_code == 200
    w.get(w.consent(w.start("info"), "deny"))                      # declined
    w.fault("/sns/oauth2/access_token", type="errcode", errcode="45011", count="1")
    w.login("base")                                                # WeChat error
    w.grant("xiaoming")
    w.mode("raise")
    w.login("hooked")                                              # Lua error
    cb = w.to_callback(w.start("strict"))
    requests.get(cb, allow_redirects=False, timeout=10)             # no cookie: restarted
    r = requests.get(w.g.url + "/jssdk/config", timeout=20,
                     params={"app": "demo", "url": RETURN},
                     headers={"Origin": "https://h5.example.com"})
    assert r.status_code == 200, r.text                            # basic-token quota
    q = urllib.parse.quote(RETURN, safe="")
    codes = {w.get(w.g.url + "/auth?campaign=base&return=" + q).status_code for _ in range(40)}
    assert 429 in codes                                            # rate limited
    redis.stop()
    w.get(w.g.url + "/auth?campaign=base&return=" + q)              # store errors
    stats = requests.get("http://%s/api/campaigns/stats?window=all&campaign=hooked" % admin,
                         timeout=10).json()["campaigns"][0]
    assert stats["hook_errors"] == 1 and stats["completed"] == 1   # the default was used
    text = requests.get("http://%s/metrics" % admin, timeout=10).text
    have = exported(text)
    wanted = families(grafana_exprs()) | families(rule_exprs())
    missing = wanted - have
    assert not missing, "queried but not in /metrics: %s" % sorted(missing)
    assert {"wxgate_logins_completed_total", "wxgate_upstream_seconds",
            "wxgate_basic_token_quota_left", "wxgate_store_errors_total"} <= wanted
