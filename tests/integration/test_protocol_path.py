"""The protocol path runs no Lua: /auth, /callback (code exchange, profile,
ticket), /api/ticket and /api/user of campaigns without a script never
resume a Lua coroutine (wxgate_lua_runs_total stays 0), although the same
gateway has Lua routes and hooked campaigns configured."""
import re

import requests

from test_callback import RETURN, World, ticket_of


def lua_runs(w):
    text = requests.get(w.g.url + "/metrics", timeout=5).text
    m = re.search(r"^wxgate_lua_runs_total (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def test_logins_without_a_script_never_run_lua(gateway, sandbox):
    w = World(gateway, sandbox)
    w.login_as("xiaoming")
    for campaign in ("base", "info"):
        w.grant("xiaoming")
        loc, ticket = ticket_of(w.login(campaign, RETURN))
        r = w.redeem(ticket)
        assert r.status_code == 200 and r.json()["openid"]
    openid = r.json()["openid"]
    r = requests.get(w.g.url + "/api/user", params={"app": "demo", "openid": openid},
                     headers={"Authorization": "Bearer " + "api-key-for-tests-0123456789"},
                     timeout=5)
    assert r.status_code == 200 and r.json()["openid"] == openid
    assert lua_runs(w) == 0
    # The counter is live: a Lua route (here the test's mode switch) counts.
    w.mode("")
    assert lua_runs(w) >= 1
    w.assert_no_secrets()
