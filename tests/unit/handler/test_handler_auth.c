/* Unit tests for core/handler/handler_auth.c: GET /auth checks the campaign,
 * the return URL and the scope, stores a state and answers 302 to WeChat
 * with the state cookie. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness_config.h"
#include "worker_harness.h"

static struct harness *h;

static int setup(void **state)
{
    set_test_secret();
    h = harness_start(GATEWAY_CONFIG, handle_auth);
    return h ? 0 : -1;
}

static int teardown(void **state)
{
    harness_stop(h);
    return 0;
}

static const char *get(const char *target)
{
    static char raw[2048];
    snprintf(raw, sizeof(raw),
             "GET %s HTTP/1.1\r\nHost: login.example.com\r\n"
             "Connection: close\r\n\r\n",
             target);
    return harness_exchange(h, raw);
}

static void a_good_request_redirects_to_wechat_with_a_state_cookie(void **state)
{
    const char *out = get("/auth?campaign=spring&return=https%3A%2F%2Fh5.example.com%2Fspring%2Fp");
    assert_non_null(strstr(out, "HTTP/1.1 302 "));
    assert_non_null(strstr(out, "Location: http://127.0.0.1:9/connect/oauth2/authorize?appid="
                                "wx_unit&redirect_uri=https%3A%2F%2Flogin.example.com%2Fcallback"
                                "&response_type=code&scope=snsapi_base&state="));
    assert_non_null(strstr(out, "#wechat_redirect\r\n"));
    assert_non_null(strstr(out, "Set-Cookie: wxgate_state="));
    assert_non_null(strstr(out, "; HttpOnly; SameSite=Lax; Secure\r\n"));
    assert_null(strstr(out, "unit-app-secret")); /* never in a redirect */
}

static void bad_campaigns_return_urls_and_scopes_are_refused(void **state)
{
    assert_non_null(
        strstr(get("/auth?campaign=nope&return=https://h5.example.com/spring/"), "HTTP/1.1 404 "));
    const char *bad[] = {
        "/auth?campaign=spring&return=https://evil.example.com/spring/",
        "/auth?campaign=spring&return=https://h5.example.com/other/",
        "/auth?campaign=spring&return=https://h5.example.com/spring/../x",
        "/auth?campaign=spring",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *out = get(bad[i]);
        assert_non_null(strstr(out, "HTTP/1.1 400 "));
        assert_null(strstr(out, "Location:"));
    }
    const char *out = get("/auth?campaign=spring&scope=snsapi_userinfo&return="
                          "https://h5.example.com/spring/");
    assert_non_null(strstr(out, "HTTP/1.1 400 ")); /* scope_override is off */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_good_request_redirects_to_wechat_with_a_state_cookie),
        cmocka_unit_test(bad_campaigns_return_urls_and_scopes_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
