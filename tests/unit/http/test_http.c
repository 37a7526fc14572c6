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
static struct http_req *held; /* a request on /later, answered by the test */

/* Echoes what the request looks like from a handler. */
static void reply_echo(struct http_req *r)
{
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

static void echo(struct worker *w, struct http_req *r)
{
    handled++;
    if (strcmp(http_req_path(r), "/later") == 0)
        held = r; /* like a handler waiting on WeChat */
    else
        reply_echo(r);
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

/* A request waiting in its handler gives its read buffer back (its head
 * moves into its arena): another connection reuses that buffer meanwhile,
 * and the waiting request still reads its own method, path, query and
 * headers when it replies. */
static void a_waiting_request_keeps_its_head_when_the_buffer_is_reused(void **state)
{
    const char *a = "GET /later?a=1 HTTP/1.1\r\nHost: x\r\nX-Test: alpha\r\n"
                    "Connection: close\r\n\r\n";
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(c, a, strlen(a)), (ssize_t)strlen(a));
    held = NULL;
    for (int turns = 0; turns < 5000 && !held; turns++) {
        event_base_loop(h->w.base, EVLOOP_NONBLOCK);
        usleep(200);
    }
    assert_non_null(held);

    const char *out = harness_exchange(h, "GET /now?a=2222222222 HTTP/1.1\r\nHost: yyyyyyyy\r\n"
                                          "X-Test: bravo-bravo-bravo-bravo\r\n"
                                          "Connection: close\r\n\r\n");
    assert_non_null(strstr(out, "GET|/now|a=2222222222|2222222222|bravo-bravo-bravo-bravo|"));

    reply_echo(held);
    char got[4096];
    size_t len = 0;
    for (int turns = 0; turns < 20000; turns++) {
        event_base_loop(h->w.base, EVLOOP_NONBLOCK);
        ssize_t n = recv(c, got + len, sizeof(got) - 1 - len, MSG_DONTWAIT);
        if (n > 0)
            len += (size_t)n;
        else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        else
            usleep(200);
    }
    close(c);
    got[len] = '\0';
    assert_non_null(strstr(got, "\r\n\r\nGET|/later|a=1|1|alpha|"));
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
        cmocka_unit_test(a_waiting_request_keeps_its_head_when_the_buffer_is_reused),
        cmocka_unit_test(malformed_requests_never_reach_the_handler),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
