/* Unit tests for core/http/http.c through a real server on loopback: what a
 * handler sees of a request, how replies are framed, pipelining, HEAD, and
 * refusals that never reach the handler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "worker_harness.h"

static int handled;

/* Echoes what the request looks like from a handler. */
static void echo(struct worker *w, struct http_req *r)
{
    handled++;
    char body[1024];
    size_t blen = 0;
    const char *b = http_req_body(r, &blen);
    snprintf(body, sizeof(body), "%s|%s|%s|%s|%s|%.*s", http_req_method(r), http_req_path(r),
             http_req_query_string(r), http_req_arg(r, "a") ? http_req_arg(r, "a") : "-",
             http_req_header(r, "X-Test") ? http_req_header(r, "X-Test") : "-", (int)blen,
             b ? b : "");
    http_req_add_header(r, "X-Echo", "1");
    http_reply(r, 200, "text/plain", body, strlen(body));
}

static struct harness *h;

static int setup(void **state)
{
    h = harness_start("return { listen = \"127.0.0.1:1\" }", echo);
    return h ? 0 : -1;
}

static int teardown(void **state)
{
    harness_stop(h);
    return 0;
}

static void a_handler_sees_the_request_and_its_reply_is_framed(void **state)
{
    const char *out = harness_exchange(h, "POST /p%20q/r?a=%E4%B8%AD&b HTTP/1.1\r\nHost: x\r\n"
                                          "X-Test: v\r\nContent-Length: 4\r\n"
                                          "Connection: close\r\n\r\nbody");
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    const char *cl = strstr(out, "\r\nContent-Length: ");
    const char *body = strstr(out, "\r\n\r\n");
    assert_non_null(cl);
    assert_non_null(body);
    assert_int_equal(strtol(cl + 18, NULL, 10), (long)strlen(body + 4));
    assert_non_null(strstr(out, "\r\nX-Echo: 1\r\n"));
    assert_non_null(strstr(out, "\r\nX-Request-Id: "));
    assert_non_null(strstr(out, "\r\nDate: "));
    assert_non_null(strstr(out, "\r\n\r\nPOST|/p q/r|a=%E4%B8%AD&b|\xe4\xb8\xad|v|body"));
}

static void pipelined_requests_are_answered_in_order(void **state)
{
    const char *out =
        harness_exchange(h, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
                            "HEAD /2 HTTP/1.1\r\nHost: x\r\n\r\n"
                            "GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const char *one = strstr(out, "GET|/1|");
    const char *three = strstr(out, "GET|/3|");
    assert_non_null(one);
    assert_non_null(three);
    assert_true(one < three);
    assert_null(strstr(out, "HEAD|/2|")); /* a HEAD reply has no body */
    int replies = 0;
    for (const char *p = out; (p = strstr(p, "HTTP/1.1 200 OK")); p++)
        replies++;
    assert_int_equal(replies, 3);
}

static void malformed_requests_never_reach_the_handler(void **state)
{
    const char *bad[] = {
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.2\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        handled = 0;
        const char *out = harness_exchange(h, bad[i]);
        assert_true(strstr(out, "HTTP/1.1 400 ") || strstr(out, "HTTP/1.1 501 ") ||
                    strstr(out, "HTTP/1.1 505 "));
        assert_non_null(strstr(out, "X-Request-Id: "));
        assert_int_equal(handled, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_handler_sees_the_request_and_its_reply_is_framed),
        cmocka_unit_test(pipelined_requests_are_answered_in_order),
        cmocka_unit_test(malformed_requests_never_reach_the_handler),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
