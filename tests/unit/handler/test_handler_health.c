/* Unit tests for core/handler/handler_health.c: GET /healthz on a worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "worker_harness.h"

static void healthz_reports_the_worker_and_its_store(void **state)
{
    struct harness *h = harness_start("return { listen = \"127.0.0.1:1\" }", handle_health);
    assert_non_null(h);
    const char *out = harness_exchange(h, "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                          "Connection: close\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    assert_non_null(strstr(out, "Cache-Control: no-store"));
    assert_non_null(
        strstr(out, "{\"status\":\"ok\",\"worker\":0,\"store\":\"ok\",\"connections\":1}"));
    harness_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(healthz_reports_the_worker_and_its_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
