/* Unit tests for core/handler/handler_callback.c: the callback refuses what
 * is not a state it issued, before any call to WeChat (whose address here,
 * 127.0.0.1:9, would fail the test if it were called). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness_config.h"
#include "worker_harness.h"

static void states_it_did_not_issue_are_expired_logins(void **state)
{
    set_test_secret();
    struct harness *h = harness_start(GATEWAY_CONFIG, handle_callback);
    assert_non_null(h);
    const char *targets[] = {
        "/callback?code=C1&state=unknownstate0123456789abcdefghij",
        "/callback?code=C1",
        "/callback?code=C1&state=bad-chars!",
        "/callback?code=bad%20code&state=abc",
        "/callback?state=unknownstate0123456789abcdefghij", /* denied, unknown state */
    };
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        char raw[512];
        snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 targets[i]);
        const char *out = harness_exchange(h, raw);
        assert_non_null(strstr(out, "HTTP/1.1 400 "));
        assert_non_null(strstr(out, "This login has expired or was already used."));
        assert_non_null(strstr(out, "登录已过期"));
        assert_null(strstr(out, "Location:"));
    }
    harness_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(states_it_did_not_issue_are_expired_logins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
