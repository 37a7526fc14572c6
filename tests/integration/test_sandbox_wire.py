"""Wire shapes: every reply of the sandbox's WeChat API, field by field and
type by type, against the facts in the blueprint ("The protocol it
implements"), in the order WeChat writes the fields."""
import json

from test_sandbox import DEMO, RID, SECRETS, SOLO, callback_args, sandbox_proc, wx  # noqa: F401

S, I, L = "str", "int", "list"


def fields(r):
    """[(name, type name)] of a JSON object reply, in wire order."""
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; encoding=utf-8"
    pairs = json.loads(r.text, object_pairs_hook=list)
    out = []
    for k, v in pairs:
        t = type(v)
        out.append((k, {str: S, int: I, list: L}.get(t, t.__name__)))  # bool is not int here
    return out


def get(wx, path, **params):
    return wx.get(path, params=params)


def check_error(r):
    assert fields(r) == [("errcode", I), ("errmsg", S)]
    assert RID.search(r.json()["errmsg"])


TOKEN = [("access_token", S), ("expires_in", I), ("refresh_token", S), ("openid", S),
         ("scope", S)]
USERINFO = [("openid", S), ("nickname", S), ("sex", I), ("language", S), ("city", S),
            ("province", S), ("country", S), ("headimgurl", S), ("privilege", L)]


def exchange_raw(wx, code, appid=DEMO):
    return get(wx, "/sns/oauth2/access_token", appid=appid, secret=SECRETS[appid], code=code,
               grant_type="authorization_code")


def test_oauth_replies(wx):
    # exchange: bound app (unionid), unbound app (none), snapshot (is_snapshotuser, no unionid)
    r = exchange_raw(wx, wx.code(DEMO, "snsapi_userinfo"))
    assert fields(r) == TOKEN + [("unionid", S)]
    tok = r.json()
    assert tok["expires_in"] == 7200 and tok["scope"] == "snsapi_userinfo"
    solo = exchange_raw(wx, wx.code(SOLO, "snsapi_base"), SOLO)
    assert fields(solo) == TOKEN
    snap = wx.authorize(scope="snsapi_userinfo", extra=[("forceSnapShot", "true")])
    r = exchange_raw(wx, callback_args(snap)["code"])
    assert fields(r) == TOKEN + [("is_snapshotuser", I)]
    assert r.json()["is_snapshotuser"] == 1

    # refresh: the same shape, never is_snapshotuser
    r = get(wx, "/sns/oauth2/refresh_token", appid=DEMO, grant_type="refresh_token",
            refresh_token=tok["refresh_token"])
    assert fields(r) == TOKEN + [("unionid", S)]

    # userinfo
    r = get(wx, "/sns/userinfo", access_token=tok["access_token"], openid=tok["openid"],
            lang="zh_CN")
    assert fields(r) == USERINFO + [("unionid", S)]
    u = r.json()
    assert u["sex"] in (0, 1, 2) and u["privilege"] == [] and '"privilege":[]' in r.text
    assert u["province"] == u["city"] == u["country"] == ""
    solo_tok = exchange_raw(wx, wx.code(SOLO, "snsapi_userinfo"), SOLO).json()
    r = get(wx, "/sns/userinfo", access_token=solo_tok["access_token"],
            openid=solo_tok["openid"])
    assert fields(r) == USERINFO

    # sns/auth
    r = get(wx, "/sns/auth", access_token=tok["access_token"], openid=tok["openid"])
    assert fields(r) == [("errcode", I), ("errmsg", S)]
    assert r.text == '{"errcode":0,"errmsg":"ok"}'


def test_jssdk_replies(wx):
    r = get(wx, "/cgi-bin/token", grant_type="client_credential", appid=DEMO,
            secret=SECRETS[DEMO])
    assert fields(r) == [("access_token", S), ("expires_in", I)]
    assert r.json()["expires_in"] == 7200
    r = get(wx, "/cgi-bin/ticket/getticket", access_token=r.json()["access_token"], type="jsapi")
    assert fields(r) == [("errcode", I), ("errmsg", S), ("ticket", S), ("expires_in", I)]
    assert r.json()["errcode"] == 0 and r.json()["errmsg"] == "ok"


def test_error_replies_of_every_endpoint(wx):
    for path in ["/sns/oauth2/access_token", "/sns/oauth2/refresh_token", "/sns/userinfo",
                 "/sns/auth", "/cgi-bin/token", "/cgi-bin/ticket/getticket"]:
        r = get(wx, path)
        check_error(r)
        assert r.json()["errcode"] in (41001, 41002, 41003, 40002), (path, r.text)
    wx.fault("/sns/auth", type="errcode", errcode="-1")
    check_error(get(wx, "/sns/auth"))
    assert get(wx, "/sns/auth").json()["errcode"] == -1
