"""Running as a service (core/server/server.c, core/server/service_notify.c):
the admin listener (admin_listen) takes the operators' endpoints off the
public listener, and the readiness protocol of systemd (sd_notify) is spoken
on NOTIFY_SOCKET, here a datagram socket standing in for systemd."""
import os
import signal
import socket
import subprocess
import tempfile
import time

import requests

from conftest import BIN, SLOW, Proc, free_port, wait_until


def admin_config(admin_port, workers=2):
    return ('return { listen = "127.0.0.1:{PORT}", workers = %d, '
            'admin_listen = "127.0.0.1:%d" }\n' % (workers, admin_port))


def test_admin_listener_takes_metrics_off_the_public_one(gateway):
    admin = free_port()
    g = gateway(admin_config(admin))
    assert "(admin 127.0.0.1:%d)" % admin in g.log()
    a = "http://127.0.0.1:%d" % admin
    # several requests each: SO_REUSEPORT spreads them over both workers
    for _ in range(6):
        r = g.get("/metrics")
        assert r.status_code == 404 and "Page not found" in r.text
        r = requests.get(a + "/metrics", timeout=5 * SLOW)
        assert r.status_code == 200
        assert "text/plain" in r.headers["Content-Type"]
        assert "# TYPE wxgate_" in r.text
        # /healthz stays public for load balancers, and answers on admin too
        assert g.get("/healthz").json()["status"] == "ok"
        assert requests.get(a + "/healthz", timeout=5 * SLOW).json()["status"] == "ok"
    # the admin listener serves nothing but the operators' endpoints
    for path in ("/auth?campaign=x", "/callback", "/api/ticket", "/nope"):
        r = requests.get(a + path, timeout=5 * SLOW, allow_redirects=False)
        assert r.status_code == 404, path


def test_admin_listen_changes_at_restart_not_on_reload(gateway):
    admin = free_port()
    g = gateway(admin_config(admin, workers=1))
    g.write("wxgate.lua", admin_config(free_port(), workers=1).replace("{PORT}", str(g.port)))
    g.signal(signal.SIGHUP)
    g.wait_log(r"worker 0: reloaded")
    assert "admin_listen, workers and store take effect only after a restart" in g.log()
    r = requests.get("http://127.0.0.1:%d/metrics" % admin, timeout=5 * SLOW)
    assert r.status_code == 200
    assert g.get("/metrics").status_code == 404


def test_without_admin_listen_metrics_stay_on_the_public_listener(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1 }\n')
    r = g.get("/metrics")
    assert r.status_code == 200 and "# TYPE wxgate_" in r.text


def test_admin_address_in_use_refuses_to_start():
    admin = free_port()
    taken = socket.socket()
    taken.bind(("127.0.0.1", admin))
    taken.listen(1)
    d = tempfile.mkdtemp(prefix="wxgate-test-")
    cfg = os.path.join(d, "wxgate.lua")
    with open(cfg, "w") as f:
        f.write(admin_config(admin).replace("{PORT}", str(free_port())))
    try:
        p = subprocess.run([BIN, "run", "-c", cfg], capture_output=True, text=True,
                           timeout=30 * SLOW)
    finally:
        taken.close()
    assert p.returncode == 1
    assert "127.0.0.1:%d: address already in use" % admin in p.stderr


class NotifySocket:
    """What systemd listens on for a Type=notify service: an AF_UNIX
    datagram socket whose path the service finds in NOTIFY_SOCKET."""

    def __init__(self):
        self.path = os.path.join(tempfile.mkdtemp(prefix="wxgate-notify-"), "notify")
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(self.path)

    def next(self, timeout=10):
        self.s.settimeout(timeout * SLOW)
        return dict(line.split("=", 1) for line in self.s.recv(4096).decode().splitlines())

    def close(self):
        self.s.close()
        os.unlink(self.path)


def test_sd_notify_ready_reloading_stopping(gateway):
    n = NotifySocket()
    port = free_port()
    d = tempfile.mkdtemp(prefix="wxgate-test-")
    cfg = os.path.join(d, "wxgate.lua")
    with open(cfg, "w") as f:
        f.write('return { listen = "127.0.0.1:%d", workers = 2 }\n' % port)
    p = Proc(["run", "-c", cfg], env={"NOTIFY_SOCKET": n.path})
    try:
        ready = n.next()
        # READY=1 comes once every worker listens: a request answers at once
        assert ready["READY"] == "1", ready
        assert ready["STATUS"] == "serving with 2 workers"
        for _ in range(4):
            r = requests.get("http://127.0.0.1:%d/healthz" % port, timeout=5 * SLOW)
            assert r.status_code == 200
        p.signal(signal.SIGHUP)
        assert n.next().get("RELOADING") == "1"
        assert n.next().get("READY") == "1"
        p.wait_log("worker 1: reloaded")
        p.signal(signal.SIGTERM)
        assert n.next().get("STOPPING") == "1"
        assert p.p.wait(timeout=15 * SLOW) == 0
    finally:
        p.stop()
        n.close()
    p.check_sanitizers()


def test_notify_socket_that_is_gone_is_logged_not_fatal(gateway):
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1 }\n',
                env={"NOTIFY_SOCKET": "/nonexistent/wxgate-notify"})
    assert g.get("/healthz").status_code == 200
    g.wait_log(r'sd_notify: cannot tell the service manager \\"READY=1')


def test_no_notify_socket_no_message(gateway):
    """Without NOTIFY_SOCKET nothing is sent and nothing is said about it."""
    g = gateway('return { listen = "127.0.0.1:{PORT}", workers = 1 }\n',
                env={"NOTIFY_SOCKET": ""})
    assert g.get("/healthz").status_code == 200
    assert "sd_notify" not in g.log()


def deny_write_execute():
    """The kernel's W^X policy for this process and its children
    (prctl PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN): what the unit's
    MemoryDenyWriteExecute=yes enforces, without systemd."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:
        os._exit(99)


HOT = "local s = 0\nfor i = 1, 200000 do s = s + i % 7 end\n"


def test_runs_without_writable_executable_memory():
    """LuaJIT's JIT compiler needs memory that becomes executable; the
    config, the scripts and the demo run with it off, so the service works
    under MemoryDenyWriteExecute (a hot loop in the config and in a route)."""
    d = tempfile.mkdtemp(prefix="wxgate-test-")
    port = free_port()
    with open(os.path.join(d, "hot.lua"), "w") as f:
        f.write(HOT + "return function(req)\n" + HOT + "return 200, tostring(s) end\n")
    cfg = os.path.join(d, "wxgate.lua")
    with open(cfg, "w") as f:
        f.write(HOT + 'return { listen = "127.0.0.1:%d", workers = 1, '
                'routes = { ["/hot"] = "hot.lua" } }\n' % port)
    p = subprocess.run([BIN, "check", "-c", cfg], capture_output=True, text=True,
                       preexec_fn=deny_write_execute, timeout=60 * SLOW)
    if p.returncode == 99:
        import pytest
        pytest.skip("this kernel has no PR_SET_MDWE")
    assert p.returncode == 0, p.stderr
    log = open(os.path.join(d, "log"), "w+")
    g = subprocess.Popen([BIN, "run", "-c", cfg], stderr=log, stdin=subprocess.DEVNULL,
                         preexec_fn=deny_write_execute)
    try:
        url = "http://127.0.0.1:%d" % port

        def up():
            try:
                return requests.get(url + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                assert g.poll() is None, open(log.name).read()
                return False
        wait_until(up, what="the gateway")
        r = requests.get(url + "/hot", timeout=10 * SLOW)
        assert r.status_code == 200 and r.text == "599997", r.text
    finally:
        g.terminate()
        assert g.wait(timeout=15 * SLOW) == 0, open(log.name).read()
        log.close()
