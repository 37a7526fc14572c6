"""The shipped examples work: every example config passes `wxgate check`, and
the three example campaign scripts do what their comments say, against the
sandbox (examples/campaigns/*.lua)."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse

import pytest
import requests

from conftest import BIN, ROOT, SLOW

UA = "Mozilla/5.0 (iPhone) Mobile/15E148 MicroMessenger/8.0.50"
EX = os.path.join(ROOT, "examples")
ENV = {"WX_DEMO_SECRET": "sandbox_demo_secret", "WX_WEB_SECRET": "sandbox_web_secret",
       "WX_MP_SECRET": "sandbox_mp_secret", "WXGATE_COOKIE_SECRET": "c" * 32,
       "WXGATE_TICKET_SECRET": "t" * 32, "WXGATE_API_KEY": "k" * 32,
       "STATIC_PAGE_KEY": "static-key-0123456789", "GAME_BACKEND_KEY": "game-key"}


@pytest.mark.parametrize("name", ["wxgate.lua", "campaigns.lua"])
def test_example_configs_pass_check(name):
    p = subprocess.run([BIN, "check", "-c", os.path.join(EX, name)], capture_output=True,
                       text=True, env=dict(os.environ, **ENV))
    assert p.returncode == 0, p.stderr
    for v in ENV.values():
        assert v not in p.stdout + p.stderr


class Backend(http.server.BaseHTTPRequestHandler):
    calls = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Backend.calls.append((self.headers.get("Authorization"), body))
        out = json.dumps({"player_id": 4242}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


@pytest.fixture
def world(gateway, sandbox):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sb = sandbox()
    with open(os.path.join(EX, "campaigns.lua"), encoding="utf-8") as f:
        cfg = f.read()
    cfg = (cfg.replace("127.0.0.1:8080", "127.0.0.1:{PORT}")
              .replace("http://127.0.0.1:9000", sb.url)
              .replace('"campaigns/', '"%s/campaigns/' % EX))
    env = dict(ENV, GAME_BACKEND="http://127.0.0.1:%d" % srv.server_address[1])
    g = gateway(cfg, env=env)
    s = requests.Session()
    s.headers["User-Agent"] = UA
    s.post(sb.url + "/_sandbox/login?user=xiaoming", timeout=5)
    for user in ("xiaoming", "meimei"):
        requests.post(sb.url + "/_sandbox/grant", params={"user": user, "appid": "wx_sandbox_demo"},
                      timeout=5)
    yield g, sb, s, srv
    srv.shutdown()


def login(g, s, campaign, ret, extra=""):
    r = s.get(g.url + "/auth?campaign=%s&return=%s%s" % (campaign, urllib.parse.quote(ret, safe=""),
                                                        extra), allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:300]
    r = s.get(r.headers["Location"], allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:300]
    r = s.get(r.headers["Location"], allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:300]
    return r.headers["Location"]


def test_ab_redirect_is_stable_per_user_and_keeps_the_query(world):
    g, sb, s, _ = world
    first = login(g, s, "spring", "https://h5.example.com/spring/?share=abc")
    m = re.match(r"https://h5\.example\.com/spring/(a|b)\.html\?share=abc&wx_ticket=\w+$", first)
    assert m, first
    again = login(g, s, "spring", "https://h5.example.com/spring/?share=abc")
    assert again.startswith(first.split("&wx_ticket=")[0])


def test_game_account_mapping_through_the_backend(world):
    g, sb, s, srv = world
    loc = login(g, s, "game", "https://game.example.com/play")
    assert re.match(r"https://game\.example\.com/play\?player=4242&wx_ticket=\w+$", loc), loc
    auth, body = Backend.calls[-1]
    assert auth == "Bearer game-key" and body["nickname"] == "小明" and body["unionid"]
    # The mapping is cached: a second login makes no backend call.
    n = len(Backend.calls)
    login(g, s, "game", "https://game.example.com/play")
    assert len(Backend.calls) == n


def test_signed_static_params_verify_with_the_shared_key(world):
    g, sb, s, _ = world
    loc = login(g, s, "static", "https://static.example.com/p")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query, keep_blank_values=True))
    assert set(q) == {"openid", "nick", "ts", "sig"} and "wx_ticket" not in loc
    canonical = "&".join("%s=%s" % (k, urllib.parse.quote(q[k], safe="-._~"))
                         for k in sorted(q) if k != "sig")
    mac = hmac.new(b"static-key-0123456789", canonical.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == q["sig"]
    loc = login(g, s, "static", "https://static.example.com/p?auth=jwt")
    jwt = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))["jwt"]
    head, payload, sig = jwt.split(".")
    mac = hmac.new(b"static-key-0123456789", (head + "." + payload).encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == sig
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] and claims["exp"] > claims["iat"]


def test_readme_config_example_passes_check(tmp_path):
    """The config shown in the README is valid as written."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## Configuration"):]
    block = re.search(r"```lua\n(.*?)```", section, re.S).group(1)
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "spring.lua").write_text("return {}\n")
    (tmp_path / "hello.lua").write_text("return function() return 200, 'hi' end\n")
    (tmp_path / "wxgate.lua").write_text(block)
    # env_file: the app secret comes from the file, the rest from the environment
    (tmp_path / "secrets.env").write_text("WX_MAIN_SECRET=%s\nWX_SITE_SECRET=%s\n"
                                          "WX_GAME_SECRET=%s\n" % ("s" * 32, "w" * 32, "g" * 32))
    (tmp_path / "secrets.env").chmod(0o600)
    env = dict(os.environ, WXGATE_COOKIE_SECRET="c" * 32, WXGATE_TICKET_SECRET="t" * 32,
               WXGATE_TOKEN_KEY="k" * 32, WXGATE_API_KEY="a" * 32)
    env.pop("WX_MAIN_SECRET", None)
    p = subprocess.run([BIN, "check", "-c", str(tmp_path / "wxgate.lua")], capture_output=True,
                       text=True, env=env)
    assert p.returncode == 0, p.stderr


def test_idle_rss_of_the_example_config_stays_under_20_mib(gateway):
    """`wxgate run` with examples/wxgate.lua (a worker per core, its Lua
    route): the resident memory of the whole process, idle after a request,
    stays under 20 MiB (issue 11). Only the release build: the sanitizers
    multiply memory by design."""
    with open(os.path.join(EX, "wxgate.lua"), encoding="utf-8") as f:
        cfg = f.read().replace("127.0.0.1:8080", "127.0.0.1:{PORT}")
    with open(os.path.join(EX, "hello.lua"), encoding="utf-8") as f:
        hello = f.read()
    g = gateway(cfg, files={"hello.lua": hello})
    assert g.get("/hello").status_code == 200
    assert g.get("/healthz").status_code == 200
    time.sleep(0.5)
    with open("/proc/%d/status" % g.p.pid) as f:
        rss_kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    if SLOW == 1:
        assert rss_kb < 20 * 1024, "idle RSS %d KiB" % rss_kb


DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def test_one_user_across_web_pc_and_mini_program(world):
    """examples/campaigns/one_user.lua: the same test user logs in through the
    H5 page in WeChat, the desktop QR login and the Mini Program; the hook
    gives all three the same account (joined by unionid), and the tickets
    carry the three kinds with three openids and one unionid."""
    g, sb, s, _ = world
    api = {"Authorization": "Bearer " + "k" * 32}

    def account_and_user(loc):
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        r = requests.post(g.url + "/api/ticket", data={"ticket": q["wx_ticket"]}, headers=api,
                          timeout=10)
        return q["account"], r.json()

    def web(user):
        s.post(sb.url + "/_sandbox/login?user=" + user, timeout=5)
        return account_and_user(login(g, s, "oneuser", "https://event.example.com/"))

    def pc(user):
        d = requests.Session()
        d.headers["User-Agent"] = DESKTOP_UA
        r = d.get(g.url + "/auth?campaign=oneuser&return=" +
                  urllib.parse.quote("https://event.example.com/", safe=""),
                  allow_redirects=False, timeout=10)
        assert "/connect/qrconnect?appid=wx_sandbox_web&" in r.headers["Location"]
        page = d.get(r.headers["Location"], timeout=10).text
        uuid = re.search(r'data-uuid="(\w+)"', page).group(1)
        requests.post(sb.url + "/_sandbox/qrscan", timeout=5,
                      params={"uuid": uuid, "user": user, "action": "confirm"})
        poll = requests.get(sb.url + "/connect/l/qrconnect", params={"uuid": uuid},
                            timeout=5).json()
        assert poll["wx_errcode"] == 405
        r = d.get(poll["redirect"], allow_redirects=False, timeout=10)
        assert r.status_code == 302, r.text[:300]
        return account_and_user(r.headers["Location"])

    def mini(user):
        code = requests.post(sb.url + "/_sandbox/wxlogin", timeout=5,
                             params={"appid": "wx_sandbox_mp", "user": user}).json()["code"]
        r = requests.post(g.url + "/api/mp/login", json={"app": "mp", "code": code}, timeout=10)
        assert r.status_code == 200, r.text
        u = requests.post(g.url + "/api/ticket", data={"ticket": r.json()["ticket"]},
                          headers=api, timeout=10).json()
        return r.json()["account"], u

    for user in ("xiaoming", "meimei"):
        requests.post(sb.url + "/_sandbox/grant", params={"user": user, "appid": "wx_sandbox_demo"},
                      timeout=5)
    seen = {}
    for user in ("xiaoming", "meimei"):
        results = [web(user), pc(user), mini(user)]
        accounts = {a for a, _ in results}
        assert len(accounts) == 1, results
        kinds = [u["kind"] for _, u in results]
        assert kinds == ["web", "pc", "miniprogram"]
        assert len({u["unionid"] for _, u in results}) == 1
        assert len({u["openid"] for _, u in results}) == 3
        assert [u["appid"] for _, u in results] == ["wx_sandbox_demo", "wx_sandbox_web",
                                                    "wx_sandbox_mp"]
        seen[user] = accounts.pop()
    assert seen["xiaoming"] != seen["meimei"]
    # the same again later: the account is kept
    assert web("xiaoming")[0] == seen["xiaoming"]
