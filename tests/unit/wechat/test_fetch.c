/* Tests for core/wechat/fetch.c against a real libevent evhttp server bound to
 * 127.0.0.1 on the same event_base as the fetch_loop under test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "config.h"
#include "dev_ca.h"
#include "fetch.h"
#include "http.h"
#include "metrics.h"
#include "tls.h"

#define BIG_SIZE    (5u << 20)
#define SAFETY_MS   5000
#define MAX_RESULTS 32

struct server {
    struct event_base *base;
    struct evhttp *http;
    int port;
    int accepted; /* TCP connections accepted */
    int pending;  /* /slow replies not yet sent */
};

struct result {
    struct env *env;
    int called;
    int ok;
    long status;
    char *error, *detail, *body;
    size_t body_len;
    size_t n_headers;
    char **names, **values;
    double total_ms;
};

struct env {
    struct event_base *base;
    struct server srv;
    struct fetch_loop *fl;
    int expected, got;
    int timed_out;
    struct result res[MAX_RESULTS];
    struct fetch *victims[MAX_RESULTS]; /* for the cancel tests */
    size_t n_victims;
    struct evconnlistener *raw; /* raw_start: one canned reply per connection */
    const char *raw_reply;
};

/* ---- the server ------------------------------------------------------- */

static void hello_cb(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, "hi", 2);
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Test", "  spaced value  ");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

struct slow_ctx {
    struct server *srv;
    struct evhttp_request *req;
};

static void slow_reply(evutil_socket_t fd, short what, void *arg)
{
    struct slow_ctx *c = arg;
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, "slow", 4);
    evhttp_send_reply(c->req, 200, "OK", out);
    evbuffer_free(out);
    c->srv->pending--;
    free(c);
}

static void slow_cb(struct evhttp_request *req, void *arg)
{
    struct server *srv = arg;
    struct slow_ctx *c = malloc(sizeof *c);
    struct timeval tv = {0, 300 * 1000};
    c->srv = srv;
    c->req = req;
    srv->pending++;
    event_base_once(srv->base, -1, EV_TIMEOUT, slow_reply, c, &tv);
}

static void big_cb(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evbuffer_new();
    char *data = malloc(BIG_SIZE);
    for (size_t i = 0; i < BIG_SIZE; i++)
        data[i] = (char)('a' + i % 26);
    evbuffer_add(out, data, BIG_SIZE);
    free(data);
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_HEAD: return "HEAD";
    default: return "OTHER";
    }
}

/* Replies "METHOD\nBODY" and reflects two request headers. */
static void echo_cb(struct evhttp_request *req, void *arg)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyvalq *out_h = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evbuffer_new();
    const char *v;

    evbuffer_add_printf(out, "%s\n", method_name(evhttp_request_get_command(req)));
    evbuffer_add_buffer(out, evhttp_request_get_input_buffer(req));
    if ((v = evhttp_find_header(in, "Accept-Encoding")))
        evhttp_add_header(out_h, "X-Accept-Encoding", v);
    if ((v = evhttp_find_header(in, "X-In")))
        evhttp_add_header(out_h, "X-In", v);
    if ((v = evhttp_find_header(in, "Expect")))
        evhttp_add_header(out_h, "X-Expect", v);
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

/* Dropping the connection from inside the request callback would pull the
 * request out from under evhttp, so it is done on the next loop turn. */
static void close_conn(evutil_socket_t fd, short what, void *arg) { evhttp_connection_free(arg); }

static void close_cb(struct evhttp_request *req, void *arg)
{
    struct server *srv = arg;
    struct timeval tv = {0, 0};
    event_base_once(srv->base, -1, EV_TIMEOUT, close_conn, evhttp_request_get_connection(req), &tv);
}

static struct bufferevent *count_bev(struct event_base *base, void *arg)
{
    struct server *srv = arg;
    srv->accepted++;
    return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static int bound_port(evutil_socket_t fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    return ntohs(sa.sin_port);
}

static void server_start(struct server *srv, struct event_base *base)
{
    srv->base = base;
    srv->http = evhttp_new(base);
    assert_non_null(srv->http);
    evhttp_set_bevcb(srv->http, count_bev, srv);
    evhttp_set_cb(srv->http, "/hello", hello_cb, srv);
    evhttp_set_cb(srv->http, "/slow", slow_cb, srv);
    evhttp_set_cb(srv->http, "/big", big_cb, srv);
    evhttp_set_cb(srv->http, "/echo", echo_cb, srv);
    evhttp_set_cb(srv->http, "/close", close_cb, srv);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(srv->http, "127.0.0.1", 0);
    assert_non_null(bs);
    /* Room for a burst of connects before the loop accepts them (libevent
     * listens with 128): a SYN dropped on a loaded machine would wait out
     * a retransmission and the burst test's connect timeout. */
    assert_int_equal(listen(evhttp_bound_socket_get_fd(bs), 1024), 0);
    srv->port = bound_port(evhttp_bound_socket_get_fd(bs));
}

/* ---- a raw server, for replies evhttp cannot write ------------------- */

static void raw_sent(struct bufferevent *bev, void *arg)
{
    bufferevent_free(bev); /* all written: close */
}

static void raw_gone(struct bufferevent *bev, short what, void *arg) { bufferevent_free(bev); }

/* Once the request's head is in, answers with the canned reply. */
static void raw_read(struct bufferevent *bev, void *arg)
{
    struct env *e = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (evbuffer_search(in, "\r\n\r\n", 4, NULL).pos < 0)
        return;
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_setcb(bev, NULL, raw_sent, raw_gone, e);
    bufferevent_write(bev, e->raw_reply, strlen(e->raw_reply));
}

static void raw_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                       void *arg)
{
    struct env *e = arg;
    struct bufferevent *bev = bufferevent_socket_new(e->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, raw_read, NULL, raw_gone, e);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* Listens on a fresh loopback port; returns it. */
static int raw_start(struct env *e, const char *reply)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    e->raw_reply = reply;
    e->raw =
        evconnlistener_new_bind(e->base, raw_accept, e, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                -1, (struct sockaddr *)&sa, sizeof sa);
    assert_non_null(e->raw);
    return bound_port(evconnlistener_get_fd(e->raw));
}

/* ---- harness ---------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static char *dup_opt(const char *s) { return s ? strdup(s) : NULL; }

/* Copies what the response shows, since it dies with the callback. */
static void record(const struct fetch_response *res, struct result *r)
{
    r->called++;
    r->ok = res->ok;
    r->status = res->status;
    r->error = dup_opt(res->error);
    r->detail = dup_opt(res->detail);
    assert_non_null(res->body);
    r->body = dup_n(res->body, res->body_len);
    r->body_len = res->body_len;
    r->n_headers = res->n_headers;
    r->names = calloc(res->n_headers + 1, sizeof *r->names);
    r->values = calloc(res->n_headers + 1, sizeof *r->values);
    for (size_t i = 0; i < res->n_headers; i++) {
        r->names[i] = strdup(res->headers[i].name);
        r->values[i] = strdup(res->headers[i].value);
    }
    r->total_ms = res->total_ms;
    r->env->got++;
    if (r->env->got == r->env->expected)
        event_base_loopexit(r->env->base, NULL);
}

static void record_cb(const struct fetch_response *res, void *arg) { record(res, arg); }

static void result_clear(struct result *r)
{
    free(r->error);
    free(r->detail);
    free(r->body);
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
}

static const char *hdr(const struct result *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

static void safety_cb(evutil_socket_t fd, short what, void *arg)
{
    struct env *e = arg;
    e->timed_out = 1;
    event_base_loopbreak(e->base);
}

/* Runs the loop until `expected` callbacks in total have arrived, or for
 * ms milliseconds when expected is 0. */
static void run(struct env *e, int expected, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    struct event *t = evtimer_new(e->base, safety_cb, e);

    e->expected = expected;
    e->timed_out = 0;
    evtimer_add(t, &tv);
    event_base_dispatch(e->base);
    event_free(t);
    if (expected)
        assert_false(e->timed_out);
}

static struct result *start(struct env *e, int i, const struct fetch_request *req)
{
    struct result *r = &e->res[i];
    r->env = e;
    assert_non_null(fetch_start(e->fl, req, record_cb, r));
    return r;
}

/* A few requests are built before any is started: rotate the buffers. */
static char *url(struct env *e, const char *scheme, const char *path)
{
    static char bufs[8][256];
    static unsigned next;
    char *buf = bufs[next++ % 8];
    snprintf(buf, sizeof bufs[0], "%s://127.0.0.1:%d%s", scheme, e->srv.port, path);
    return buf;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    e->base = event_base_new();
    server_start(&e->srv, e->base);
    e->fl = fetch_loop_new(e->base);
    assert_non_null(e->fl);
    *state = e;
    return 0;
}

/* Slow replies still pending would leak their request (evhttp hands an
 * orphaned request back to the handler), so let them go out first. */
static int teardown(void **state)
{
    struct env *e = *state;

    fetch_loop_free(e->fl);
    for (int i = 0; e->srv.pending > 0 && i < 100; i++)
        event_base_loop(e->base, EVLOOP_ONCE);
    evhttp_free(e->srv.http);
    if (e->raw)
        evconnlistener_free(e->raw);
    event_base_free(e->base);
    for (int i = 0; i < MAX_RESULTS; i++)
        result_clear(&e->res[i]);
    free(e);
    return 0;
}

/* ---- tests ------------------------------------------------------------ */

static void test_get_ok(void **state)
{
    struct env *e = *state;
    struct fetch_request req = {.url = url(e, "http", "/hello?x=1")};
    struct result *r = start(e, 0, &req);

    run(e, 1, SAFETY_MS);
    assert_int_equal(r->called, 1);
    assert_true(r->ok);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->body_len, 2);
    assert_string_equal(r->body, "hi");
    assert_string_equal(hdr(r, "x-test"), "spaced value");
    assert_string_equal(hdr(r, "content-length"), "2");
    assert_null(r->error);
    assert_null(r->detail);
    assert_true(r->total_ms > 0);
}

static void test_methods_echo(void **state)
{
    struct env *e = *state;
    struct fetch_header h[] = {{"X-In", "v 1"}, {"X-Empty", ""}};
    struct fetch_request post = {.method = "POST",
                                 .url = url(e, "http", "/echo"),
                                 .headers = h,
                                 .n_headers = 2,
                                 .body = "a=1&b=2",
                                 .body_len = 7};
    struct fetch_request put = {
        .method = "PUT", .url = url(e, "http", "/echo"), .body = "x\0y", .body_len = 3};
    struct fetch_request del = {.method = "DELETE", .url = url(e, "http", "/echo")};
    /* A body above 1 MiB would make curl send "Expect: 100-continue". */
    size_t big_len = 2u << 20;
    char *big = calloc(1, big_len);
    struct fetch_request bigpost = {
        .method = "POST", .url = url(e, "http", "/echo"), .body = big, .body_len = big_len};
    struct result *r0 = start(e, 0, &post), *r1 = start(e, 1, &put), *r2 = start(e, 2, &del);
    struct result *r3 = start(e, 3, &bigpost);
    free(big); /* the body was copied */

    run(e, 4, SAFETY_MS);
    assert_true(r0->ok);
    assert_string_equal(r0->body, "POST\na=1&b=2");
    assert_string_equal(hdr(r0, "x-in"), "v 1");
    assert_non_null(strstr(hdr(r0, "x-accept-encoding"), "gzip"));
    assert_true(r1->ok);
    assert_int_equal(r1->body_len, 7);
    assert_memory_equal(r1->body, "PUT\nx\0y", 7);
    assert_true(r2->ok);
    assert_string_equal(r2->body, "DELETE\n");
    assert_true(r3->ok);
    assert_int_equal(r3->body_len, 5 + big_len);
    assert_null(hdr(r3, "x-expect"));
}

static void test_concurrent(void **state)
{
    struct env *e = *state;
    struct fetch_request req = {.url = url(e, "http", "/slow")};
    double t0 = now_ms();

    long before = fetch_in_flight();
    for (int i = 0; i < 20; i++)
        start(e, i, &req);
    assert_int_equal(fetch_in_flight(), before + 20); /* wxgate_upstream_in_flight */
    run(e, 20, SAFETY_MS);
    assert_int_equal(fetch_in_flight(), before);
    double wall = now_ms() - t0;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(e->res[i].called, 1);
        assert_true(e->res[i].ok);
        assert_string_equal(e->res[i].body, "slow");
    }
    assert_true(wall >= 290);
    assert_true(wall < 2000);
}

static void test_timeout(void **state)
{
    struct env *e = *state;
    struct fetch_request req = {.url = url(e, "http", "/slow"), .timeout_ms = 100};
    struct result *r = start(e, 0, &req);

    run(e, 1, SAFETY_MS);
    assert_false(r->ok);
    assert_string_equal(r->error, "timeout");
    assert_non_null(r->detail);
    assert_true(r->total_ms >= 90 && r->total_ms < 290);
}

static void test_too_large(void **state)
{
    struct env *e = *state;
    struct fetch_request small = {.url = url(e, "http", "/big"), .max_body = 1000};
    struct fetch_request dflt = {.url = url(e, "http", "/big")};
    struct fetch_request roomy = {.url = url(e, "http", "/big"), .max_body = BIG_SIZE};
    struct result *r0 = start(e, 0, &small), *r1 = start(e, 1, &dflt), *r2 = start(e, 2, &roomy);

    run(e, 3, SAFETY_MS);
    assert_false(r0->ok);
    assert_string_equal(r0->error, "too_large");
    assert_false(r1->ok);
    assert_string_equal(r1->error, "too_large");
    assert_true(r2->ok);
    assert_int_equal(r2->body_len, BIG_SIZE);
    assert_int_equal(r2->body[BIG_SIZE - 1], 'a' + (BIG_SIZE - 1) % 26);
}

/* Exercises the write-callback limit rather than the Content-Length check:
 * the reply is chunked, so its size is unknown up front. */
static void chunked_cb(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evbuffer_new();
    evhttp_send_reply_start(req, 200, "OK");
    for (int i = 0; i < 64; i++) {
        evbuffer_add(out, "0123456789abcdef0123456789abcdef", 32);
        evhttp_send_reply_chunk(req, out);
    }
    evhttp_send_reply_end(req);
    evbuffer_free(out);
}

static void test_too_large_chunked(void **state)
{
    struct env *e = *state;
    evhttp_set_cb(e->srv.http, "/chunked", chunked_cb, NULL);
    struct fetch_request small = {.url = url(e, "http", "/chunked"), .max_body = 100};
    struct fetch_request exact = {.url = url(e, "http", "/chunked"), .max_body = 2048};
    struct result *r0 = start(e, 0, &small), *r1 = start(e, 1, &exact);

    run(e, 2, SAFETY_MS);
    assert_false(r0->ok);
    assert_string_equal(r0->error, "too_large");
    assert_true(r1->ok);
    assert_int_equal(r1->body_len, 2048);
    assert_null(hdr(r1, "content-length"));
}

static void test_refused(void **state)
{
    struct env *e = *state;
    /* Bound but not listening: connecting is refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char u[128];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/x?appsecret=SECRET123", bound_port(fd));
    struct fetch_request req = {.url = u};
    struct result *r = start(e, 0, &req);

    run(e, 1, SAFETY_MS);
    close(fd);
    assert_false(r->ok);
    assert_string_equal(r->error, "connect");
    assert_non_null(r->detail);
    assert_null(strstr(r->detail, "SECRET123"));
}

static void test_closed(void **state)
{
    struct env *e = *state;
    struct fetch_request req = {.url = url(e, "http", "/close")};
    struct result *r = start(e, 0, &req);

    run(e, 1, SAFETY_MS);
    assert_false(r->ok);
    assert_string_equal(r->error, "closed");
}

static void cancel_victims(struct env *e)
{
    for (size_t i = 0; i < e->n_victims; i++)
        fetch_cancel(e->victims[i]);
    e->n_victims = 0;
}

static void cancel_timer_cb(evutil_socket_t fd, short what, void *arg) { cancel_victims(arg); }

static void test_cancel(void **state)
{
    struct env *e = *state;
    struct fetch_request slow = {.url = url(e, "http", "/slow")};
    struct fetch_request hello = {.url = url(e, "http", "/hello")};
    struct timeval tv = {0, 50 * 1000};

    e->res[0].env = e;
    e->victims[e->n_victims++] = fetch_start(e->fl, &slow, record_cb, &e->res[0]);
    /* Cancelled before the loop ever ran it. */
    e->res[1].env = e;
    fetch_cancel(fetch_start(e->fl, &hello, record_cb, &e->res[1]));
    event_base_once(e->base, -1, EV_TIMEOUT, cancel_timer_cb, e, &tv);
    run(e, 0, 600);
    assert_int_equal(e->res[0].called, 0);
    assert_int_equal(e->res[1].called, 0);
    assert_int_equal(e->got, 0);
    assert_int_equal(fetch_in_flight(), 0); /* cancelled calls are not in flight */

    /* The loop still works afterwards. */
    struct result *r = start(e, 2, &hello);
    run(e, 1, SAFETY_MS);
    assert_true(r->ok);
}

static void cancel_others_cb(const struct fetch_response *res, void *arg)
{
    struct result *r = arg;
    cancel_victims(r->env);
    fetch_cancel(r->env->victims[MAX_RESULTS - 1]); /* NULL: a no-op */
    record(res, r);
}

static void test_cancel_from_callback(void **state)
{
    struct env *e = *state;
    struct fetch_request slow = {.url = url(e, "http", "/slow")};
    struct fetch_request hello = {.url = url(e, "http", "/hello")};

    for (int i = 1; i <= 5; i++) {
        e->res[i].env = e;
        e->victims[e->n_victims++] = fetch_start(e->fl, &slow, record_cb, &e->res[i]);
    }
    e->res[0].env = e;
    assert_non_null(fetch_start(e->fl, &hello, cancel_others_cb, &e->res[0]));
    run(e, 0, 600);
    assert_int_equal(e->got, 1);
    assert_true(e->res[0].ok);
}

/* Completed slow requests all arrive within a few ms of each other; each
 * callback cancels every other request still outstanding, including ones
 * whose completion may already be queued inside curl. */
static void cancel_rest_cb(const struct fetch_response *res, void *arg)
{
    struct result *r = arg;
    struct env *e = r->env;
    for (size_t i = 0; i < e->n_victims; i++)
        if (e->victims[i] && &e->res[i] != r && !e->res[i].called)
            fetch_cancel(e->victims[i]);
    for (size_t i = 0; i < e->n_victims; i++)
        e->victims[i] = NULL;
    record(res, r);
}

static void test_cancel_siblings(void **state)
{
    struct env *e = *state;
    struct fetch_request slow = {.url = url(e, "http", "/slow")};

    for (int i = 0; i < 10; i++) {
        e->res[i].env = e;
        e->victims[e->n_victims++] = fetch_start(e->fl, &slow, cancel_rest_cb, &e->res[i]);
    }
    run(e, 0, 700);
    assert_int_equal(e->got, 1);
}

static void chain_cb(const struct fetch_response *res, void *arg)
{
    struct result *r = arg;
    struct env *e = r->env;
    if (r == &e->res[0]) {
        struct fetch_request req = {.url = url(e, "http", "/hello")};
        e->res[1].env = e;
        assert_non_null(fetch_start(e->fl, &req, chain_cb, &e->res[1]));
    }
    record(res, r);
}

/* A counter's value in the /metrics text (0 when it has no line yet). */
static double metric(const char *name)
{
    size_t len = 0;
    char *text = metrics_render(&len);
    double v = 0;
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            v = strtod(p + n + 1, NULL);
    free(text);
    return v;
}

static void test_reuse(void **state)
{
    struct env *e = *state;
    struct fetch_request req = {.url = url(e, "http", "/hello")};
    double opened = metric("wxgate_upstream_connections_opened_total");

    e->res[0].env = e;
    assert_non_null(fetch_start(e->fl, &req, chain_cb, &e->res[0]));
    run(e, 2, SAFETY_MS);
    assert_true(e->res[0].ok);
    assert_true(e->res[1].ok);
    assert_int_equal(e->srv.accepted, 1);

    /* And once more from outside any callback. */
    struct result *r = start(e, 2, &req);
    run(e, 3, SAFETY_MS);
    assert_true(r->ok);
    assert_int_equal(e->srv.accepted, 1);
    /* Operators see it: one connection opened for the three calls. */
    assert_true(metric("wxgate_upstream_connections_opened_total") == opened + 1);
}

struct burst {
    struct env *e;
    int done, ok, want;
};

static void burst_cb(const struct fetch_response *res, void *arg)
{
    struct burst *b = arg;
    b->done++;
    b->ok += res->ok && res->status == 200;
    if (b->done == b->want)
        event_base_loopexit(b->e->base, NULL);
}

/* More calls at once than one multi handle takes (fetch.c's shards): all
 * run together, none waits for another, and afterwards a call still finds
 * a kept-alive connection instead of opening one. */
static void test_burst_over_shards(void **state)
{
    struct env *e = *state;
    struct fetch_request slow = {
        .url = url(e, "http", "/slow"), .connect_timeout_ms = 10000, .timeout_ms = 15000};
    struct fetch_request hello = {.url = url(e, "http", "/hello")};
    struct burst b = {.e = e, .want = 400};
    long before = fetch_in_flight();
    double t0 = now_ms();

    for (int i = 0; i < b.want; i++)
        assert_non_null(fetch_start(e->fl, &slow, burst_cb, &b));
    assert_int_equal(fetch_in_flight(), before + b.want);
    run(e, 0, SAFETY_MS);
    assert_int_equal(b.done, b.want);
    assert_int_equal(b.ok, b.want);
    assert_true(now_ms() - t0 < 3000); /* /slow takes 300 ms: together, not in turns */
    assert_int_equal(e->srv.accepted, b.want);

    struct burst again = {.e = e};
    for (int i = 0; i < 10; i++) {
        again.want = i + 1; /* one at a time */
        assert_non_null(fetch_start(e->fl, &hello, burst_cb, &again));
        run(e, 0, SAFETY_MS);
        assert_int_equal(again.done, i + 1);
    }
    assert_int_equal(again.ok, 10);
    assert_int_equal(e->srv.accepted, b.want);
}

static void tls_hello(struct http_req *r, void *arg) { http_reply(r, 200, "text/plain", "tls", 3); }

/* Every call on a new connection (the client asks for Connection: close):
 * after the first full handshake, the next ones resume the TLS session
 * (the loop's share keeps it), as the server's SSL_CTX counts. */
static void test_tls_sessions_resumed(void **state)
{
    struct env *e = *state;
    char dir[] = "/tmp/wxgate-fetch-tls-XXXXXX", err[512], cert[300], key[300], ca[300], u[128];
    const char *hosts[] = {"127.0.0.1"};
    assert_non_null(mkdtemp(dir));
    assert_int_equal(dev_ca_issue(dir, hosts, 1, err, sizeof(err)), 0);
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server-key.pem", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    SSL_CTX *ctx = tls_server_ctx(cert, key, err, sizeof(err));
    assert_non_null(ctx);
    int port = 0, lfd = http_listen("127.0.0.1", 0, &port, err, sizeof(err));
    assert_true(lfd >= 0);
    struct config_limits limits = {.max_header_size = 8192,
                                   .max_uri_length = 4096,
                                   .max_body_size = 65536,
                                   .max_connections = 64,
                                   .header_timeout_ms = 5000,
                                   .max_headers = 64,
                                   .read_timeout_ms = 5000,
                                   .write_timeout_ms = 5000,
                                   .keepalive_timeout_ms = 5000,
                                   .drain_timeout_ms = 1000};
    struct http_server *srv = http_server_new(e->base, lfd, &limits, ctx, tls_hello, NULL);
    assert_non_null(srv);
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/hello", port);
    struct fetch_header close_hdr = {"Connection", "close"};
    struct fetch_request req = {.url = u, .ca_file = ca, .headers = &close_hdr, .n_headers = 1};
    struct burst b = {.e = e};
    for (int i = 0; i < 4; i++) {
        b.want = i + 1; /* one at a time */
        assert_non_null(fetch_start(e->fl, &req, burst_cb, &b));
        run(e, 0, SAFETY_MS);
        assert_int_equal(b.done, i + 1);
    }
    assert_int_equal(b.ok, 4);
    assert_int_equal(SSL_CTX_sess_accept_good(ctx), 4); /* four handshakes */
    assert_int_equal(SSL_CTX_sess_hits(ctx), 3);        /* three resumed */
    http_server_free(srv);
    SSL_CTX_free(ctx);
    for (const char *f = "ca.pem\0ca-key.pem\0server.pem\0server-key.pem\0"; *f;
         f += strlen(f) + 1) {
        char p[300];
        snprintf(p, sizeof(p), "%s/%s", dir, f);
        unlink(p);
    }
    rmdir(dir);
}

static void test_https_to_http(void **state)
{
    struct env *e = *state;
    struct fetch_request req = {.url = url(e, "https", "/hello?token=SECRET")};
    struct result *r = start(e, 0, &req);

    run(e, 1, SAFETY_MS);
    assert_false(r->ok);
    assert_string_equal(r->error, "tls");
    assert_null(strstr(r->detail, "SECRET"));
}

/* GET from a raw server that answers with reply, whose body is "ok". */
static struct result *get_raw(struct env *e, const char *reply)
{
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", raw_start(e, reply));
    struct fetch_request req = {.url = u};
    struct result *r = start(e, 0, &req);

    run(e, 1, SAFETY_MS);
    assert_true(r->ok);
    assert_string_equal(r->body, "ok");
    return r;
}

/* The reply's headers are exactly want[0..n), in this order. */
static void assert_headers(const struct result *r, const char *const want[][2], size_t n)
{
    assert_int_equal(r->n_headers, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(r->names[i], want[i][0]);
        assert_string_equal(r->values[i], want[i][1]);
    }
}

/* The final response's fields only (not a 100 Continue's), in order, every
 * repeat kept, names lowercased, values trimmed, folded lines unfolded. */
static void test_reply_headers(void **state)
{
    struct result *r = get_raw(*state, "HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n"
                                       "HTTP/1.1 201 Created\r\nX-Dup: a\r\nContent-Length: 2\r\n"
                                       "x-DUP:   b \t\r\nX-Fold: one\r\n  two\r\nX-Empty:\r\n"
                                       "Connection: close\r\n\r\nok");
    static const char *const want[][2] = {
        {"x-dup", "a"},        {"content-length", "2"}, {"x-dup", "b"},
        {"x-fold", "one two"}, {"x-empty", ""},         {"connection", "close"},
    };

    assert_int_equal(r->status, 201);
    assert_headers(r, want, 6);
}

/* Trailers of a chunked reply come after the header fields. */
static void test_reply_trailers(void **state)
{
    struct result *r = get_raw(*state, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                       "Trailer: X-Sum\r\nConnection: close\r\n\r\n"
                                       "2\r\nok\r\n0\r\nX-Sum: 42\r\n\r\n");
    static const char *const want[][2] = {
        {"transfer-encoding", "chunked"},
        {"trailer", "X-Sum"},
        {"connection", "close"},
        {"x-sum", "42"},
    };

    assert_headers(r, want, 4);
}

static void test_bad_input(void **state)
{
    struct env *e = *state;
    struct fetch_header crlf[] = {{"X-A", "v\r\nX-Injected: 1"}};
    struct fetch_header badname[] = {{"X A", "v"}};
    struct fetch_request reqs[] = {
        {.url = "ftp://127.0.0.1/x"},
        {.url = "file:///etc/passwd"},
        {.url = "not a url"},
        {.url = ""},
        {.url = NULL},
        {.url = "http://127.0.0.1/", .headers = crlf, .n_headers = 1},
        {.url = "http://127.0.0.1/", .headers = badname, .n_headers = 1},
        {.url = "http://127.0.0.1/", .method = "GE T"},
        {.url = "http://127.0.0.1/", .method = ""},
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++)
        assert_null(fetch_start(e->fl, &reqs[i], record_cb, &e->res[0]));
}

static void test_free_loop_in_flight(void **state)
{
    struct env *e = *state;
    struct fetch_request slow = {.url = url(e, "http", "/slow")};
    struct fetch_request hello = {.url = url(e, "http", "/hello")};

    for (int i = 0; i < 3; i++)
        start(e, i, &slow);
    start(e, 3, &hello);
    run(e, 1, SAFETY_MS); /* the slow ones are now waiting for replies */
    assert_true(e->res[3].ok);
    start(e, 4, &hello); /* not even connected yet */
    fetch_loop_free(e->fl);
    e->fl = NULL;
    run(e, 0, 500);
    assert_int_equal(e->got, 1);
}

static void free_loop_cb(const struct fetch_response *res, void *arg)
{
    struct result *r = arg;
    struct fetch_request req = {.url = url(r->env, "http", "/hello")};
    fetch_loop_free(r->env->fl);
    assert_null(fetch_start(r->env->fl, &req, record_cb, r)); /* refused while closing */
    fetch_loop_free(r->env->fl);                              /* idempotent meanwhile */
    r->env->fl = NULL;
    record(res, r);
}

static void test_free_loop_from_callback(void **state)
{
    struct env *e = *state;
    struct fetch_request slow = {.url = url(e, "http", "/slow")};
    struct fetch_request hello = {.url = url(e, "http", "/hello")};

    for (int i = 1; i <= 3; i++)
        start(e, i, &slow);
    e->res[0].env = e;
    assert_non_null(fetch_start(e->fl, &hello, free_loop_cb, &e->res[0]));
    run(e, 0, 600);
    assert_int_equal(e->got, 1);
    assert_true(e->res[0].ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_methods_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_siblings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_over_shards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_sessions_resumed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_https_to_http, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_trailers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_loop_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_loop_from_callback, setup, teardown),
    };

    /* The server writes to peers that hang up (too_large, timeout). */
    signal(SIGPIPE, SIG_IGN);
    /* Requests to 127.0.0.1 must not go through a proxy from the environment. */
    unsetenv("http_proxy");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    unsetenv("all_proxy");
    fetch_global_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
