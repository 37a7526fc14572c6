/* Unit tests for core/handler/handler_metrics.c: GET /metrics in the
 * Prometheus text format, with the catalogue's help lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "metrics.h"
#include "worker_harness.h"

static void metrics_are_prometheus_text(void **state)
{
    metrics_describe_catalog();
    metrics_inc("wxgate_logins_started_total", "campaign", "a\"b", NULL);
    struct harness *h = harness_start("return { listen = \"127.0.0.1:1\" }", handle_metrics);
    assert_non_null(h);
    const char *out = harness_exchange(h, "GET /metrics HTTP/1.1\r\nHost: x\r\n"
                                          "Connection: close\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    assert_non_null(strstr(out, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(out, "# TYPE wxgate_logins_started_total counter"));
    assert_non_null(strstr(out, "wxgate_logins_started_total{campaign=\"a\\\"b\"} 1"));
    harness_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metrics_are_prometheus_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
