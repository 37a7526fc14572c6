"""One whole login through the installed gateway and a sandbox, as a user in
WeChat would do it, then the backend's ticket redemption with the API key.
Used by tests/package/test_deb.sh:

    login.py GATEWAY_URL SANDBOX_URL API_KEY

Prints the user the backend got; exits non-zero on anything unexpected."""
import json
import sys
import urllib.parse

import requests

UA = "Mozilla/5.0 (iPhone) Mobile/15E148 MicroMessenger/8.0.50"


def main(gateway, sandbox, api_key):
    s = requests.Session()
    s.headers["User-Agent"] = UA
    s.post(sandbox + "/_sandbox/login?user=xiaoming", timeout=10).raise_for_status()
    requests.post(sandbox + "/_sandbox/grant", params={"user": "xiaoming",
                                                     "appid": "wx_sandbox_demo"},
                  timeout=10).raise_for_status()
    ret = gateway + "/welcome"
    r = s.get(gateway + "/auth?campaign=example&return=" + urllib.parse.quote(ret, safe=""),
              allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"].startswith(sandbox), (r.status_code,
                                                                             r.text[:300])
    r = s.get(r.headers["Location"], allow_redirects=False, timeout=10)  # WeChat's page
    assert r.status_code == 302 and "/callback?code=" in r.headers["Location"], r.text[:300]
    r = s.get(r.headers["Location"], allow_redirects=False, timeout=10)  # back to the gateway
    assert r.status_code == 302, r.text[:300]
    final = urllib.parse.urlsplit(r.headers["Location"])
    assert final.geturl().startswith(ret + "?wx_ticket="), final.geturl()
    ticket = urllib.parse.parse_qs(final.query)["wx_ticket"][0]
    r = requests.post(gateway + "/api/ticket", data={"ticket": ticket}, timeout=10,
                      headers={"Authorization": "Bearer " + api_key})
    assert r.status_code == 200, r.text[:300]
    user = r.json()
    assert user["openid"] and user["nickname"] == "小明", user
    again = requests.post(gateway + "/api/ticket", data={"ticket": ticket}, timeout=10,
                          headers={"Authorization": "Bearer " + api_key})
    assert again.status_code != 200, "a ticket is redeemed once"
    print(json.dumps(user, ensure_ascii=False))


if __name__ == "__main__":
    main(*sys.argv[1:4])
