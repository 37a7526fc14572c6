/* Unit tests for core/handler/handler_api.c: the bearer key, the method and
 * the arguments of POST /api/ticket and GET /api/user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness_config.h"
#include "worker_harness.h"

static void ticket_needs_the_key_post_and_a_known_ticket(void **state)
{
    set_test_secret();
    struct harness *h = harness_start(GATEWAY_CONFIG, handle_api_ticket);
    assert_non_null(h);
    const char *out = harness_exchange(h, "POST /api/ticket HTTP/1.1\r\nHost: x\r\nConnection: "
                                          "close\r\nContent-Length: 8\r\n\r\nticket=T");
    assert_non_null(strstr(out, "HTTP/1.1 401 "));
    assert_non_null(strstr(out, "\"error\":\"unauthorized\""));
    out = harness_exchange(h, "GET /api/ticket?ticket=T HTTP/1.1\r\nHost: x\r\nConnection: "
                              "close\r\nAuthorization: Bearer " TEST_API_KEY "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 405 "));
    out = harness_exchange(h, "POST /api/ticket HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              "Authorization: Bearer " TEST_API_KEY "\r\nContent-Type: "
                              "application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 400 "));
    out = harness_exchange(h, "POST /api/ticket HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              "Authorization: Bearer " TEST_API_KEY "\r\nContent-Type: "
                              "application/x-www-form-urlencoded\r\nContent-Length: 13\r\n\r\n"
                              "ticket=nope12");
    assert_non_null(strstr(out, "HTTP/1.1 404 "));
    assert_non_null(strstr(out, "\"error\":\"invalid_ticket\""));
    harness_stop(h);
}

static void user_needs_the_key_an_app_and_an_openid(void **state)
{
    set_test_secret();
    struct harness *h = harness_start(GATEWAY_CONFIG, handle_api_user);
    assert_non_null(h);
    const char *out = harness_exchange(h, "GET /api/user?app=main&openid=o1 HTTP/1.1\r\nHost: x"
                                          "\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 401 "));
    out =
        harness_exchange(h, "GET /api/user?app=nope&openid=o1 HTTP/1.1\r\nHost: x\r\n"
                            "Connection: close\r\nAuthorization: Bearer " TEST_API_KEY "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 400 "));
    out =
        harness_exchange(h, "GET /api/user?app=main&openid=o%2F1 HTTP/1.1\r\nHost: x\r\n"
                            "Connection: close\r\nAuthorization: Bearer " TEST_API_KEY "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 400 "));
    out =
        harness_exchange(h, "GET /api/user?app=wx_unit&openid=o1 HTTP/1.1\r\nHost: x\r\n"
                            "Connection: close\r\nAuthorization: Bearer " TEST_API_KEY "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 404 "));
    assert_non_null(strstr(out, "\"error\":\"unknown_user\""));
    harness_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ticket_needs_the_key_post_and_a_known_ticket),
        cmocka_unit_test(user_needs_the_key_an_app_and_an_openid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
