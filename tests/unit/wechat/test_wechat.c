/* core/wechat/wechat.c: the authorize URL and the JS-SDK signature. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "wechat.h"

static void signature_matches_the_blueprint_vector(void **state)
{
    char sig[41];
    wechat_jssdk_signature(
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
        "Wm3WZYTPz0wzccnW", "1414587457", "http://mp.weixin.qq.com?params=value", sig);
    assert_string_equal(sig, "0f9de62fce790f9a083d5c99e95740ceb90c27ed");
}

static void signature_cuts_the_url_at_the_fragment(void **state)
{
    char a[41], b[41];
    wechat_jssdk_signature("T", "N", "1", "http://mp.weixin.qq.com?params=value", a);
    wechat_jssdk_signature("T", "N", "1", "http://mp.weixin.qq.com?params=value#/spa/x", b);
    assert_string_equal(a, b);
}

static void authorize_url_order_and_single_encoding(void **state)
{
    char url[1024];
    assert_int_equal(wechat_authorize_url(url, sizeof(url), "https://open.weixin.qq.com", "wxA",
                                          "https://l.example.com/callback?x=1&y=a b", "snsapi_base",
                                          "abcXYZ123", 0, 0),
                     0);
    assert_string_equal(url,
                        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wxA"
                        "&redirect_uri=https%3A%2F%2Fl.example.com%2Fcallback%3Fx%3D1%26y%3Da%20b"
                        "&response_type=code&scope=snsapi_base&state=abcXYZ123"
                        "&connect_redirect=1#wechat_redirect");
    assert_int_equal(wechat_authorize_url(url, sizeof(url), "https://o", "wxA", "https://c/cb",
                                          "snsapi_userinfo", "s1", 1, 1),
                     0);
    assert_non_null(strstr(url, "&state=s1&forcePopup=true&forceSnapShot=true&connect_redirect=1"
                                "#wechat_redirect"));
}

static void authorize_url_refuses_bad_states(void **state)
{
    char url[1024], big[200];
    memset(big, 'a', 129);
    big[129] = '\0';
    assert_int_equal(
        wechat_authorize_url(url, sizeof(url), "o", "a", "r", "snsapi_base", "a-b", 0, 0), -1);
    assert_int_equal(wechat_authorize_url(url, sizeof(url), "o", "a", "r", "snsapi_base", "", 0, 0),
                     -1);
    assert_int_equal(
        wechat_authorize_url(url, sizeof(url), "o", "a", "r", "snsapi_base", big, 0, 0), -1);
    big[128] = '\0';
    assert_int_equal(
        wechat_authorize_url(url, sizeof(url), "o", "a", "r", "snsapi_base", big, 0, 0), 0);
    assert_int_equal(wechat_authorize_url(url, 20, "o", "a", "r", "snsapi_base", "s", 0, 0), -1);
}

static void error_names_are_stable(void **state)
{
    assert_string_equal(wechat_err_name(WECHAT_CODE_USED), "code_used");
    assert_string_equal(wechat_err_name(WECHAT_REFRESH_EXPIRED), "refresh_expired");
    assert_string_equal(wechat_err_name(WECHAT_UNKNOWN), "unknown");
    assert_string_equal(wechat_err_name(WECHAT_BLOCKED), "blocked");
}

/* The PC login's link: WeChat's order, redirect_uri encoded once, scope
 * snsapi_login, no optional parameters, #wechat_redirect last. */
static void qrconnect_url_in_wechats_order(void **state)
{
    (void)state;
    char url[1024];
    assert_int_equal(wechat_qrconnect_url(url, sizeof(url), "https://open.weixin.qq.com", "wxW",
                                          "https://login.example.com/callback", "abc123"),
                     0);
    assert_string_equal(url, "https://open.weixin.qq.com/connect/qrconnect?appid=wxW&redirect_uri="
                             "https%3A%2F%2Flogin.example.com%2Fcallback&response_type=code&"
                             "scope=snsapi_login&state=abc123#wechat_redirect");
    assert_int_equal(wechat_qrconnect_url(url, sizeof(url), "o", "a", "r", "a-b"), -1);
    assert_int_equal(wechat_qrconnect_url(url, 30, "o", "a", "r", "s"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signature_matches_the_blueprint_vector),
        cmocka_unit_test(qrconnect_url_in_wechats_order),
        cmocka_unit_test(signature_cuts_the_url_at_the_fragment),
        cmocka_unit_test(authorize_url_order_and_single_encoding),
        cmocka_unit_test(authorize_url_refuses_bad_states),
        cmocka_unit_test(error_names_are_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
