"""Shared fixtures: start the real wxgate binary (and the sandbox, Redis)
on free loopback ports, capture their logs, and stop them afterwards.

WXGATE_BIN selects the binary (scripts/test runs the suite once with the
release build and once with the sanitizer build)."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("WXGATE_BIN", os.path.join(ROOT, "build", "wxgate"))
SANITIZED = os.environ.get("WXGATE_SANITIZED") == "1"
# Sanitizer builds run slower: scale time bounds, never the assertions.
SLOW = 3.0 if SANITIZED else 1.0


def wait_until(cond, timeout=10, what="the condition"):
    """Polls cond() until it returns a true value, which is returned; fails
    after timeout seconds (scaled for sanitizer builds). Tests wait on a
    condition like this, never on a fixed sleep."""
    deadline = time.time() + timeout * SLOW
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.02)


_handed_out = set()


def free_port():
    """A free loopback port, never the same one twice in a session: wxgate
    listens with SO_REUSEPORT, so two of our processes given one port would
    silently share it instead of failing."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


class Proc:
    """A running wxgate process (BIN, or exe) with its stderr captured to a file."""

    def __init__(self, args, env=None, cwd=None, exe=None):
        self.logfile = tempfile.NamedTemporaryFile(prefix="wxgate-", suffix=".log", delete=False)
        self.outfile = tempfile.NamedTemporaryFile(prefix="wxgate-", suffix=".out", delete=False)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.p = subprocess.Popen([exe or BIN] + args, stdout=self.outfile, stderr=self.logfile,
                                  env=full_env, cwd=cwd, stdin=subprocess.DEVNULL)

    def log(self):
        with open(self.logfile.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def out(self):
        with open(self.outfile.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=10):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            m = re.search(pattern, self.log())
            if m:
                return m
            if self.p.poll() is not None:
                raise AssertionError("wxgate exited (%s):\n%s" % (self.p.returncode, self.log()))
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %r in:\n%s" % (pattern, self.log()))

    def wait_out(self, pattern, timeout=10):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            m = re.search(pattern, self.out())
            if m:
                return m
            if self.p.poll() is not None:
                raise AssertionError("wxgate exited (%s):\n%s\n%s" %
                                     (self.p.returncode, self.out(), self.log()))
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %r in:\n%s" % (pattern, self.out()))

    def signal(self, sig):
        self.p.send_signal(sig)

    def stop(self, timeout=15):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode

    def check_sanitizers(self):
        """No sanitizer report, and no death by a signal (a crash: stop()'s
        SIGTERM is handled and exits 0)."""
        log = self.log()
        assert self.p.returncode is None or self.p.returncode >= 0, \
            "killed by signal %d:\n%s" % (-self.p.returncode, log[-4000:])
        assert "ERROR: AddressSanitizer" not in log, log
        assert "runtime error:" not in log, log
        assert "ERROR: LeakSanitizer" not in log, log


class Gateway(Proc):
    """wxgate run -c CONFIG, ready once it logs its listening line."""

    def __init__(self, config_text, files=None, env=None, workers=None):
        self.dir = tempfile.mkdtemp(prefix="wxgate-test-")
        for name, text in (files or {}).items():
            path = os.path.join(self.dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        self.port = free_port()
        self.config = os.path.join(self.dir, "wxgate.lua")
        with open(self.config, "w", encoding="utf-8") as f:
            f.write(config_text.replace("{PORT}", str(self.port)).replace("{DIR}", self.dir))
        super().__init__(["run", "-c", self.config], env=env, cwd=self.dir)
        self.wait_log(r"listening on")
        self.url = "http://127.0.0.1:%d" % self.port

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w", encoding="utf-8") as f:
            f.write(text)

    def get(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 10 * SLOW)
        return requests.get(self.url + path, **kw)

    def post(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 10 * SLOW)
        return requests.post(self.url + path, **kw)


@pytest.fixture
def gateway():
    """Factory: gateway(config_text, files={...}) -> a started Gateway."""
    started = []

    def start(config_text, **kw):
        g = Gateway(config_text, **kw)
        started.append(g)
        return g

    yield start
    for g in started:  # stop every one before any check can raise
        g.stop()
    for g in started:
        g.check_sanitizers()


class Sandbox(Proc):
    """wxgate sandbox -l 127.0.0.1:PORT, ready once /_sandbox/apps answers."""

    def __init__(self, extra_args=None, env=None):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        super().__init__(["sandbox", "-l", "127.0.0.1:%d" % self.port] + (extra_args or []),
                         env=env)
        deadline = time.time() + 15 * SLOW
        while True:
            try:
                if requests.get(self.url + "/_sandbox/apps", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.p.poll() is not None or time.time() > deadline:
                raise AssertionError("sandbox did not start:\n%s\n%s" % (self.out(), self.log()))
            time.sleep(0.05)


@pytest.fixture
def sandbox():
    """Factory: sandbox(extra_args=[...]) -> a started Sandbox."""
    started = []

    def start(**kw):
        s = Sandbox(**kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
    for s in started:
        s.check_sanitizers()


def _resp_end(buf, i=0):
    """Where the RESP reply starting at buf[i] ends, or None if it is not
    all there yet."""
    nl = buf.find(b"\r\n", i)
    if nl < 0:
        return None
    kind = buf[i:i + 1]
    if kind in (b"+", b"-", b":"):
        return nl + 2
    n = int(buf[i + 1:nl])
    if kind == b"$":
        end = nl + 2 + n + 2 if n >= 0 else nl + 2
        return end if len(buf) >= end else None
    j = nl + 2  # an array of n replies
    for _ in range(max(n, 0)):
        j = _resp_end(buf, j)
        if j is None:
            return None
    return j


class Redis:
    """A real redis-server on a free loopback port, in a temporary directory."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="wxgate-redis-")
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.start()

    def start(self):
        self.p = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def command(self, *args):
        """One command over a raw connection; returns the raw reply bytes,
        once the whole reply has arrived."""
        payload = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            payload += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(payload)
            reply = b""
            while _resp_end(reply) is None:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise AssertionError("redis closed the connection mid-reply: %r" % reply)
                reply += chunk
            return reply

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(timeout=10)


@pytest.fixture
def redis():
    r = Redis()
    yield r
    r.stop()
