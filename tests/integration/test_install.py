"""`cmake --install` (CMakeLists.txt): the GNU layout under any prefix, and an
installed binary that finds its files there: `wxgate demo` serves the
installed examples from any working directory, the commented config passes
`wxgate check` once its secrets file exists, and the unit names the
installed paths. The Debian package is tested by `scripts/package --test`."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest
import requests

from conftest import BIN, ROOT, SLOW, Proc, free_port

BUILD = os.path.dirname(BIN)


@pytest.fixture(scope="module")
def prefix():
    d = tempfile.mkdtemp(prefix="wxgate-install-")
    p = subprocess.run(["cmake", "--install", BUILD, "--prefix", d], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    yield d
    shutil.rmtree(d)


def test_layout(prefix):
    for path in ("bin/wxgate", "share/man/man8/wxgate.8", "etc/wxgate/wxgate.lua",
                 "share/wxgate/examples/demo/app.lua", "share/wxgate/examples/demo/index.html",
                 "share/wxgate/examples/campaigns.lua", "share/doc/wxgate/README.md",
                 "lib/systemd/system/wxgate.service"):
        assert os.path.isfile(os.path.join(prefix, path)), path
    assert os.access(os.path.join(prefix, "bin/wxgate"), os.X_OK)


def test_unit_names_the_installed_paths(prefix):
    with open(os.path.join(prefix, "lib/systemd/system/wxgate.service")) as f:
        unit = f.read()
    assert "ExecStart=%s/bin/wxgate run -c %s/etc/wxgate/wxgate.lua" % (prefix, prefix) in unit
    assert re.search(r"^Type=notify$", unit, re.M)
    assert "@" not in unit.replace("man:", "")  # every @VAR@ was filled in


def test_installed_demo_finds_its_examples_from_anywhere(prefix):
    exe = os.path.join(prefix, "bin", "wxgate")
    h = subprocess.run([exe, "demo", "--help"], capture_output=True, text=True, cwd="/")
    assert h.returncode == 0
    # not the source tree: an installed binary looks beside itself first
    assert "%s/bin/../share/wxgate/examples" % prefix in h.stdout
    assert os.path.join(ROOT, "examples") not in h.stdout
    port = free_port()
    d = Proc(["demo", "-l", "127.0.0.1:%d" % port,
              "--dashboard", "127.0.0.1:%d" % free_port(), "--workers", "1"], cwd="/", exe=exe)
    try:
        d.wait_out(r"campaign: http://127\.0\.0\.1:%d/demo/" % port, timeout=20)
        r = requests.get("http://127.0.0.1:%d/demo/" % port, timeout=10 * SLOW)
        assert r.status_code == 200 and "<html" in r.text.lower()
    finally:
        d.stop()
    d.check_sanitizers()


def test_installed_config_passes_check_with_its_secrets_file(prefix):
    exe = os.path.join(prefix, "bin", "wxgate")
    cfg = os.path.join(prefix, "etc/wxgate/wxgate.lua")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXGATE_")}
    p = subprocess.run([exe, "check", "-c", cfg], capture_output=True, text=True, env=env)
    assert p.returncode == 1
    assert "config: env_file: cannot read %s/etc/wxgate/secrets.env" % prefix in p.stderr
    secrets = os.path.join(prefix, "etc/wxgate/secrets.env")
    with open(secrets, "w") as f:
        for name in ("COOKIE_SECRET", "TICKET_SECRET", "TOKEN_KEY", "API_KEY", "APP_SECRET"):
            f.write("WXGATE_%s=%s-0123456789abcdef\n" % (name, name.lower()))
    os.chmod(secrets, 0o640)
    try:
        p = subprocess.run([exe, "check", "-c", cfg], capture_output=True, text=True, env=env)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == "%s: ok (1 apps, 1 campaigns, 0 routes)" % cfg
        assert "0123456789abcdef" not in p.stdout + p.stderr
    finally:
        os.unlink(secrets)
