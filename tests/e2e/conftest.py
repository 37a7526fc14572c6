"""Real-browser fixtures: headless Debian Chromium driven by Selenium, with a
WeChat user agent, against `wxgate demo` on a free loopback port."""
import importlib.util
import os
import tempfile

import pytest

_spec = importlib.util.spec_from_file_location(
    "integration_conftest",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration",
                 "conftest.py"))
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
Proc, free_port = _shared.Proc, _shared.free_port
Gateway, Sandbox, BIN, SLOW = _shared.Gateway, _shared.Sandbox, _shared.BIN, _shared.SLOW

WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) "
             "NetType/WIFI Language/zh_CN")
DESKTOP_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36")


@pytest.fixture
def demo():
    port = free_port()
    p = Proc(["demo", "-l", "127.0.0.1:%d" % port, "--dashboard", "127.0.0.1:%d" % free_port()])
    p.dashboard = p.wait_out(r"dashboard: (\S+)").group(1)
    p.url = "http://127.0.0.1:%d" % port
    yield p
    p.stop()
    p.check_sanitizers()


def _chromium(user_agent, window):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=" + window,
                 "--user-agent=" + user_agent,
                 "--user-data-dir=" + tempfile.mkdtemp(prefix="wxgate-chromium-")):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture
def browser():
    """A phone's WeChat browser."""
    driver = _chromium(WECHAT_UA, "390,844")
    yield driver
    driver.quit()


@pytest.fixture
def desktop_browser():
    """A desktop browser (no WeChat): the PC QR login."""
    driver = _chromium(DESKTOP_UA, "1280,900")
    yield driver
    driver.quit()
