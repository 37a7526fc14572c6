"""The demo in a real browser: the campaign page, WeChat's (sandbox) consent
page, Allow or Deny, and back on the campaign page."""
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def open_consent(browser, demo):
    browser.get(demo.url + "/demo/")
    WebDriverWait(browser, 20).until(EC.element_to_be_clickable((By.ID, "login-link"))).click()
    WebDriverWait(browser, 20).until(EC.presence_of_element_located((By.ID, "allow")))
    assert "申请获取你的信息" in browser.title or "获取" in browser.page_source
    assert "小明" in browser.page_source  # the test user holding the phone


def test_allow_lands_on_campaign_page_with_nickname(browser, demo):
    open_consent(browser, demo)
    browser.find_element(By.ID, "allow").click()
    WebDriverWait(browser, 20).until(EC.visibility_of_element_located((By.ID, "nickname")))
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.ID, "nickname").text == "小明")
    assert browser.current_url == demo.url + "/demo/"  # the used ticket is dropped
    avatar = browser.find_element(By.ID, "avatar").get_attribute("src")
    assert avatar.endswith("/_sandbox/avatar/xiaoming.svg")
    assert browser.execute_script("return arguments[0].naturalWidth", browser.find_element(
        By.ID, "avatar")) > 0
    # The session survives a reload; the ticket is not needed again.
    browser.refresh()
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.ID, "nickname").text == "小明")


def test_deny_shows_the_declined_message(browser, demo):
    open_consent(browser, demo)
    browser.find_element(By.ID, "deny").click()
    WebDriverWait(browser, 20).until(EC.visibility_of_element_located((By.ID, "denied")))
    assert "wx_denied=1" in browser.current_url
    assert not browser.find_element(By.ID, "user").is_displayed()
