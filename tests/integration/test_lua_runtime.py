"""The Lua runtime (core/lua/lua_runtime.c, core/lua/lua_http.c, core/lua/lua_store.c,
lua/wx.lua): routes, async wx.http on one worker, wx.store across workers,
budgets, yield errors, globals, reloads."""
import concurrent.futures
import http.server
import json
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, SLOW, wait_until

DELAY = 0.2 * SLOW


class Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True


ARRIVED = threading.Event()  # set when the upstream receives a GET


class SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ARRIVED.set()
        time.sleep(DELAY)  # the upstream's latency: what the test is about
        body = json.dumps({"path": self.path, "ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(n)
        self.send_response(201)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def upstream():
    srv = Upstream(("127.0.0.1", 0), SlowHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()


ROUTES = r'''
local wx = require "wx"
local routes = {}
function routes.hello(req)
  return 200, "hello " .. (req.query.name or "world"), { ["Content-Type"] = "text/plain; charset=utf-8" }
end
function routes.echo(req)
  return 200, wx.json.encode({ method = req.method, path = req.path, body = req.body,
    ua = req.headers["user-agent"], cookie = req.cookies.a, q = req.query.q }),
    { ["Content-Type"] = "application/json", ["Set-Cookie"] = { "a=1; Path=/", "b=2; Path=/" } }
end
function routes.redirect(req) return wx.redirect("https://example.com/x?y=1#frag") end
function routes.two(req)
  local a, err = wx.http.get(req.query.up .. "/one")
  if not a then return 502, err end
  local b = wx.http.get(req.query.up .. "/two")
  return 200, a.json.path .. "," .. b.json.path
end
function routes.post(req)
  local res = wx.http.post(req.query.up .. "/p", { k = "v" })
  return 200, res.status .. ":" .. res.body
end
function routes.refused(req)
  local res, err = wx.http.get("http://127.0.0.1:1/")
  return 200, tostring(res) .. ":" .. tostring(err)
end
function routes.set(req)
  assert(wx.store.set(req.query.k, req.query.v, tonumber(req.query.ttl)))
  return 200, "ok"
end
function routes.get(req) return 200, tostring(wx.store.get(req.query.k)) end
function routes.add(req) return 200, tostring(wx.store.add(req.query.k, "v", 10)) end
function routes.incr(req) return 200, tostring(wx.store.incr(req.query.k, 5)) end
function routes.spin() while true do end end
function routes.pspin() while true do pcall(function() while true do end end) end end
function routes.bomb()
  local t = {}
  for i = 1, 1e9 do t[i] = ("x"):rep(1000) .. i end
end
function routes.sort()
  local t = { 3, 1, 2 }
  table.sort(t, function(a, b) wx.sleep(0) return a < b end)
  return 200, "sorted"
end
function routes.gsub()
  local s = ("abc"):gsub("b", function() wx.store.get("x") return "B" end)
  return 200, s
end
function routes.cowrap()
  local co = coroutine.wrap(function() return wx.sleep(0.01) end)
  return 200, tostring(co())
end
function routes.yield() coroutine.yield() return 200, "after" end
local kept
function routes.keep(req) kept = req return 200, req.method end
function routes.stale() return 200, tostring(kept.headers) end
function routes.global() leaked = 1 return 200, "no" end
function routes.raise() error("boom") end
function routes.badret() return "nope" end
function routes.crlf() return 200, "x", { ["X-Bad"] = "a\r\nInjected: 1" } end
function routes.sleep(req) wx.sleep(tonumber(req.query.s)) return 200, "slept" end
function routes.random() return 200, wx.random(16, "base62") .. " " .. wx.random(8) end
function routes.close() return 0, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf" end
return function(req)
  local name = req.path:match("^/lua/(%w+)")
  local f = routes[name]
  if not f then return 404, "no such test route" end
  return f(req)
end
'''

CONFIG = ('return { listen = "127.0.0.1:{PORT}", workers = %d, routes = { ["/lua"] = "r.lua" },'
          ' lua = { cpu_budget_ms = %d, memory_mb = 32 } }\n')


def start(gateway, workers=1, budget=100):
    return gateway(CONFIG % (workers, int(budget * SLOW)), files={"r.lua": ROUTES})


def test_route_answers_with_status_body_and_headers(gateway):
    g = start(gateway)
    r = g.get("/lua/hello?name=%E5%BE%AE%E4%BF%A1")
    assert r.status_code == 200 and r.text == "hello 微信"
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    r = g.post("/lua/echo?q=1", data="payload", headers={"User-Agent": "MicroMessenger",
                                                         "Cookie": "a=v1; c=3"})
    j = r.json()
    assert j == {"method": "POST", "path": "/lua/echo", "body": "payload",
                 "ua": "MicroMessenger", "cookie": "v1", "q": "1"}
    assert r.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    r = g.get("/lua/redirect")
    assert r.status_code == 302 and r.headers["Location"] == "https://example.com/x?y=1#frag"
    assert g.get("/lua/none").status_code == 404


def test_two_http_calls_wait_while_200_requests_are_served(gateway, upstream):
    """One worker: a route waiting on two 200 ms upstream calls does not block it."""
    g = start(gateway, workers=1)
    result = {}

    def slow():
        t0 = time.time()
        result["r"] = requests.get(g.url + "/lua/two?up=" + upstream, timeout=10 * SLOW)
        result["t"] = time.time() - t0
        result["end"] = time.time()

    ARRIVED.clear()
    t = threading.Thread(target=slow)
    t.start()
    assert ARRIVED.wait(5 * SLOW)  # the slow request is waiting on its upstream
    ends = []

    def fast(_):
        s = requests.Session()
        out = []
        for _ in range(20):
            r = s.get(g.url + "/lua/hello", timeout=5 * SLOW)
            assert r.status_code == 200
            out.append(time.time())
        return out

    with concurrent.futures.ThreadPoolExecutor(10) as ex:
        for out in ex.map(fast, range(10)):
            ends.extend(out)
    t.join()
    assert result["r"].status_code == 200
    assert result["r"].text == "/one,/two"
    assert result["t"] >= 2 * DELAY
    assert len(ends) == 200
    assert max(ends) < result["end"], "fast requests waited for the slow one"


def test_http_post_and_errors(gateway, upstream):
    g = start(gateway)
    assert g.get("/lua/post?up=" + upstream).text == '201:{"k":"v"}'
    assert g.get("/lua/refused").text == "nil:connect"


def test_store_is_shared_across_workers_and_expires(gateway):
    g = start(gateway, workers=2)
    assert g.get("/lua/set?k=a&v=hello&ttl=1").text == "ok"
    # Many fresh connections land on both workers (SO_REUSEPORT).
    seen = {requests.get(g.url + "/lua/get?k=a", timeout=5).text for _ in range(30)}
    assert seen == {"hello"}
    workers = {requests.get(g.url + "/healthz", timeout=5).json()["worker"] for _ in range(40)}
    assert workers == {0, 1}
    wait_until(lambda: g.get("/lua/get?k=a").text == "nil", timeout=3, what="the TTL")
    assert g.get("/lua/add?k=b").text == "true"
    assert g.get("/lua/add?k=b").text == "false"
    assert g.get("/lua/incr?k=n").text == "5"
    assert g.get("/lua/incr?k=n").text == "10"


def test_infinite_loop_is_stopped_within_budget_and_worker_lives(gateway):
    g = start(gateway, workers=1, budget=100)
    for path in ("/lua/spin", "/lua/pspin"):
        t0 = time.time()
        r = g.get(path)
        assert r.status_code == 500
        assert "服务器内部错误" in r.text and "Internal server error" in r.text
        assert time.time() - t0 < 1.0 * SLOW
        assert g.get("/lua/hello").status_code == 200
    assert "cpu budget exceeded" in g.log()
    assert "stack traceback" in g.log()


def test_memory_bomb_is_stopped_and_memory_returned(gateway):
    g = start(gateway, workers=1)
    for _ in range(3):
        assert g.get("/lua/bomb").status_code == 500
        assert g.get("/lua/hello").status_code == 200
    assert "memory budget exceeded" in g.log()


def test_yield_where_impossible_gives_clear_error(gateway):
    g = start(gateway, workers=1)
    assert g.get("/lua/sort").status_code == 500
    assert "wx.sleep cannot wait here" in g.log()
    assert g.get("/lua/gsub").status_code == 500
    assert "wx.store.get cannot wait here" in g.log()
    assert g.get("/lua/cowrap").status_code == 500
    assert "cannot wait inside a coroutine the script created" in g.log()
    assert g.get("/lua/yield").status_code == 500
    assert "coroutine.yield() at the top of a request is not allowed" in g.log()
    assert g.get("/lua/hello").status_code == 200


def test_errors_globals_and_bad_returns_are_500(gateway):
    g = start(gateway, workers=1)
    assert g.get("/lua/global").status_code == 500
    assert "assignment to global variable 'leaked' refused" in g.log()
    assert g.get("/lua/raise").status_code == 500
    assert "r.lua:" in g.log() and "boom" in g.log()
    assert g.get("/lua/badret").status_code == 500
    r = g.get("/lua/crlf")
    assert r.status_code == 500 and "Injected" not in r.headers


def test_random_formats(gateway):
    g = start(gateway)
    a, b = g.get("/lua/random").text.split(" ")
    assert len(a) == 16 and a.isalnum()
    assert len(b) == 16 and all(c in "0123456789abcdef" for c in b)


def test_client_disconnect_releases_waiting_coroutine(gateway):
    g = start(gateway, workers=1)
    import socket
    s = socket.create_connection(("127.0.0.1", g.port))
    s.sendall(b"GET /lua/sleep?s=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_until(lambda: re.search(r"^wxgate_lua_runs_total [1-9]", g.get("/metrics").text, re.M),
               what="the route to start")  # its coroutine now waits in wx.sleep
    s.close()
    g.wait_log(r'"path":"/lua/sleep\?s=1","status":499', timeout=3)
    assert g.get("/lua/hello").status_code == 200


def test_raw_close_mid_reply(gateway):
    import socket
    g = start(gateway)
    s = socket.create_connection(("127.0.0.1", g.port))
    s.sendall(b"GET /lua/close HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(5 * SLOW)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data == b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf"
    assert g.get("/lua/hello").status_code == 200


def test_reload_swaps_scripts_and_broken_reload_is_refused(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 2, routes = { ["/v"] = "v.lua" } }\n',
                files={"v.lua": 'return function() return 200, "v1" end\n'})
    assert g.get("/v").text == "v1"
    g.write("v.lua", 'return function() return 200, "v2" end\n')
    g.signal(signal.SIGHUP)
    g.wait_log(r"worker 0: reloaded")
    g.wait_log(r"worker 1: reloaded")
    assert {requests.get(g.url + "/v", timeout=5).text for _ in range(10)} == {"v2"}
    g.write("v.lua", 'return function() return 200, "v3" \n')  # syntax error
    g.signal(signal.SIGHUP)
    g.wait_log(r"reload refused.*v.lua:2:")
    assert {requests.get(g.url + "/v", timeout=5).text for _ in range(10)} == {"v2"}


def test_check_reports_script_syntax_error_with_file_and_line(tmp_path):
    (tmp_path / "c.lua").write_text('return { routes = { ["/x"] = "x.lua" } }\n')
    (tmp_path / "x.lua").write_text('local a = 1\nreturn function( return 200 end\n')
    p = subprocess.run([BIN, "check", "-c", str(tmp_path / "c.lua")], capture_output=True,
                       text=True)
    assert p.returncode == 1
    assert "x.lua:2:" in p.stderr


def test_check_refuses_route_not_returning_function_and_bad_hooks(tmp_path):
    (tmp_path / "c.lua").write_text('return { routes = { ["/x"] = "x.lua" } }\n')
    (tmp_path / "x.lua").write_text('return 42\n')
    p = subprocess.run([BIN, "check", "-c", str(tmp_path / "c.lua")], capture_output=True,
                       text=True)
    assert p.returncode == 1 and "must return a function" in p.stderr
    (tmp_path / "c.lua").write_text(
        'return { apps = { a = { appid = "wx1", secret = { env = "S" } } },'
        ' public_url = "https://l.example.com", cookie_secret = "0123456789abcdef0",'
        ' ticket_secret = "0123456789abcdef0",'
        ' campaigns = { c = { allow = { "https://h5.example.com/" }, script = "h.lua" } } }\n')
    (tmp_path / "h.lua").write_text('return { login = function() end, logn = function() end }\n')
    p = subprocess.run([BIN, "check", "-c", str(tmp_path / "c.lua")], capture_output=True,
                       text=True, env={"S": "secret-value-123456"})
    assert p.returncode == 1 and "'logn'" in p.stderr and "unknown hook" in p.stderr


def test_request_object_of_an_ended_request_is_refused(gateway):
    g = start(gateway)
    assert g.get("/lua/keep").text == "GET"  # fields are read on first use
    r = g.get("/lua/stale")
    assert r.status_code == 500
    g.wait_log(r"req.headers: this request object belongs to a request that has ended")
    assert g.get("/lua/hello").text == "hello world"
