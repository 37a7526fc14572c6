/* Unit tests for core/lua/lua_route.c (with the task scheduler and the
 * request object under it): a route script answers through the HTTP server,
 * bad answers become a 500, and a failed run leaves the worker serving. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "worker_harness.h"

static void route_or_404(struct worker *w, struct http_req *r)
{
    if (!wxlua_vm_route(w->vm, r))
        http_reply(r, 404, "text/plain", "none", 4);
}

static const char ROUTE[] =
    "return function(req)\n"
    "  if req.path == '/r/bad' then return 'nope' end\n"
    "  if req.path == '/r/error' then error('boom') end\n"
    "  return 201, req.method .. ' ' .. req.query.q .. ' ' .. req.headers['x-a'],\n"
    "    { ['X-Multi'] = { 'a', 'b' }, ['Content-Type'] = 'text/plain' }\n"
    "end\n";

static void a_route_answers_with_status_body_and_headers(void **state)
{
    FILE *f = fopen("/tmp/wxgate-test-route.lua", "w");
    fputs(ROUTE, f);
    fclose(f);
    struct harness *h = harness_start(
        "return { listen = '127.0.0.1:1', routes = { ['/r'] = '/tmp/wxgate-test-route.lua' } }",
        route_or_404);
    assert_non_null(h);
    const char *out = harness_exchange(h, "GET /r/x?q=1 HTTP/1.1\r\nHost: x\r\nX-A: v\r\n"
                                          "Connection: close\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 201 "));
    assert_non_null(strstr(out, "X-Multi: a\r\nX-Multi: b\r\n"));
    assert_non_null(strstr(out, "Content-Type: text/plain\r\n"));
    assert_non_null(strstr(out, "\r\n\r\nGET 1 v"));
    out = harness_exchange(h, "GET /r/bad HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 500 "));
    out = harness_exchange(h, "GET /r/error HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 500 "));
    assert_null(strstr(out, "boom")); /* errors are logged, never shown */
    out = harness_exchange(h, "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 404 "));
    out = harness_exchange(h, "GET /r?q=2 HTTP/1.1\r\nHost: x\r\nX-A: w\r\n"
                              "Connection: close\r\n\r\n");
    assert_non_null(strstr(out, "\r\n\r\nGET 2 w")); /* a reused coroutine serves on */
    harness_stop(h);
    unlink("/tmp/wxgate-test-route.lua");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_route_answers_with_status_body_and_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
