/* Unit tests for core/handler/handler_jssdk.c: the app, the page URL (on a
 * campaign's allow-list) and CORS for the campaigns' origins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness_config.h"
#include "worker_harness.h"

static void unknown_apps_foreign_pages_and_origins_are_refused(void **state)
{
    set_test_secret();
    struct harness *h = harness_start(GATEWAY_CONFIG, handle_jssdk);
    assert_non_null(h);
    const char *out = harness_exchange(h, "GET /jssdk/config?app=nope&url=x HTTP/1.1\r\nHost: x"
                                          "\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 404 "));
    assert_non_null(strstr(out, "\"error\":\"unknown_app\""));
    /* A page off the allow-list; an allowed origin still gets CORS. */
    out = harness_exchange(h, "GET /jssdk/config?app=main&url=https%3A%2F%2Fevil.example.com%2F"
                              " HTTP/1.1\r\nHost: x\r\nOrigin: https://h5.example.com\r\n"
                              "Connection: close\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 400 "));
    assert_non_null(strstr(out, "\"error\":\"bad_url\""));
    assert_non_null(strstr(out, "Access-Control-Allow-Origin: https://h5.example.com\r\n"));
    /* Origins that only look like an allowed one get no CORS header. */
    const char *origins[] = {"https://h5.example.com.evil.com", "http://h5.example.com",
                             "https://h5.example.com:8443", "https://h5.example.com/x",
                             "https://x@h5.example.com"};
    for (size_t i = 0; i < sizeof(origins) / sizeof(origins[0]); i++) {
        char raw[512];
        snprintf(raw, sizeof(raw),
                 "GET /jssdk/config?app=main&url=x HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\n"
                 "Connection: close\r\n\r\n",
                 origins[i]);
        out = harness_exchange(h, raw);
        assert_non_null(strstr(out, "HTTP/1.1 400 "));
        assert_null(strstr(out, "Access-Control-Allow-Origin"));
    }
    harness_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_apps_foreign_pages_and_origins_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
