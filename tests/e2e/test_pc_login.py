"""The PC website login in a real desktop browser (no WeChat in the user
agent): the demo campaign's login link leads to the sandbox's desktop QR page
(connect/qrconnect with the website app), a simulated phone scans it through
the control API and confirms or declines, and the browser lands back on the
campaign page with the user, or with the declined message."""
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def open_qr_page(browser, demo):
    browser.get(demo.url + "/demo/")
    WebDriverWait(browser, 20).until(EC.element_to_be_clickable((By.ID, "login-link"))).click()
    box = WebDriverWait(browser, 20).until(EC.presence_of_element_located((By.ID, "qrconnect")))
    url = browser.current_url
    assert url.startswith(demo.url + "/connect/qrconnect?appid=wx_sandbox_web&redirect_uri=")
    assert "&response_type=code&scope=snsapi_login&state=" in url
    assert browser.find_element(By.CSS_SELECTOR, "#qrcode svg").is_displayed()
    return box.get_attribute("data-uuid")


def scan(demo, uuid, action, user="meimei"):
    r = requests.post(demo.url + "/_sandbox/qrscan", timeout=10,
                      params={"uuid": uuid, "user": user, "action": action})
    assert r.status_code == 200, r.text


def test_pc_scan_and_confirm_lands_on_campaign_page(desktop_browser, demo):
    uuid = open_qr_page(desktop_browser, demo)
    scan(demo, uuid, "scan")
    WebDriverWait(desktop_browser, 20).until(
        lambda d: "扫描成功" in d.find_element(By.ID, "status").text)
    scan(demo, uuid, "confirm")
    WebDriverWait(desktop_browser, 20).until(
        lambda d: d.current_url.startswith(demo.url + "/demo/") and
        d.find_element(By.ID, "nickname").text == "韩梅梅")
    assert desktop_browser.current_url == demo.url + "/demo/"  # the used ticket is dropped
    assert "login: pc" in desktop_browser.find_element(By.ID, "kind").text
    # the website app's openid, the Open Platform account's unionid
    users = requests.get(demo.url + "/_sandbox/apps", timeout=10).json()["users"]
    meimei = [u for u in users if u["id"] == "meimei"][0]
    assert meimei["openids"]["wx_sandbox_web"] in desktop_browser.find_element(
        By.ID, "openid").text
    assert meimei["unionids"]["wxgate-open"] in desktop_browser.find_element(By.ID, "kind").text


def test_pc_decline_shows_the_declined_message(desktop_browser, demo):
    uuid = open_qr_page(desktop_browser, demo)
    scan(demo, uuid, "decline")
    WebDriverWait(desktop_browser, 20).until(EC.visibility_of_element_located((By.ID, "denied")))
    assert "wx_denied=1" in desktop_browser.current_url
    assert not desktop_browser.find_element(By.ID, "user").is_displayed()
