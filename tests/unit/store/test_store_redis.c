/* Unit tests for core/store/store_redis.c through the store.h interface, against
 * a real redis-server started here on a free loopback port (no persistence,
 * in a temporary directory) and stopped at the end: semantics of every
 * call, TTLs, binary safety, prefixes, races, command timeouts, Redis going
 * away and coming back, passwords, and detaching with commands in flight.
 * Skipped when /usr/bin/redis-server is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "store_impl.h"
#include "store_redis.h"

#ifndef REDIS_SERVER
#define REDIS_SERVER "/usr/bin/redis-server"
#endif
#define PASSWORD     "s3cret pass"
#define PASSWORD_URL "s3cret%20pass"

/* ------------------------------------------------------- redis-server */

struct server {
    pid_t pid;
    int port;
    const char *password; /* requirepass, or NULL */
};

static char tmpdir[64];
static struct server main_redis, auth_redis;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* A port nobody listens on right now (the kernel's pick). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* Start redis-server in the foreground on srv->port and wait until it
 * accepts connections. */
static void server_start(struct server *srv)
{
    char port[16], dir[96], log[128];
    snprintf(port, sizeof port, "%d", srv->port);
    snprintf(dir, sizeof dir, "%s/%d", tmpdir, srv->port);
    snprintf(log, sizeof log, "%s/redis.log", dir);
    mkdir(dir, 0700);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        const char *argv[32] = {REDIS_SERVER, "--port",      port, "--bind",
                                "127.0.0.1",  "--save",      "",   "--appendonly",
                                "no",         "--dir",       dir,  "--logfile",
                                log,          "--daemonize", "no"};
        int n = 15;
        if (srv->password) {
            argv[n++] = "--requirepass";
            argv[n++] = srv->password;
        }
        argv[n] = NULL;
        execv(REDIS_SERVER, (char **)argv);
        _exit(127);
    }
    srv->pid = pid;
    for (int i = 0; i < 500 && !port_open(srv->port); i++)
        sleep_ms(10);
    assert_true(port_open(srv->port));
}

/* SIGTERM (after SIGCONT, in case a test stopped it), then wait. */
static void server_stop(struct server *srv)
{
    if (srv->pid <= 0)
        return;
    kill(srv->pid, SIGCONT);
    kill(srv->pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(srv->pid, NULL, WNOHANG) == srv->pid) {
            srv->pid = 0;
            return;
        }
        sleep_ms(10);
    }
    kill(srv->pid, SIGKILL);
    waitpid(srv->pid, NULL, 0);
    srv->pid = 0;
}

static int have_redis;

static int group_setup(void **state)
{
    (void)state;
    have_redis = access(REDIS_SERVER, X_OK) == 0;
    if (!have_redis)
        return 0;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/wxgate-test-redis-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    main_redis.port = free_port();
    server_start(&main_redis);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (!have_redis)
        return 0;
    server_stop(&main_redis);
    server_stop(&auth_redis);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A plain blocking client, to look at Redis behind the store's back. */
static redisReply *raw(struct server *srv, const char *fmt, ...)
{
    redisContext *rc = redisConnect("127.0.0.1", srv->port);
    assert_non_null(rc);
    assert_int_equal(rc->err, 0);
    if (srv->password)
        freeReplyObject(redisCommand(rc, "AUTH %s", srv->password));
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    redisFree(rc);
    assert_non_null(r);
    return r;
}

static long long raw_int(struct server *srv, const char *fmt, const char *key)
{
    redisReply *r = raw(srv, fmt, key);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* ------------------------------------------------------------- fixture */

struct fix {
    struct event_base *base;
    store_t *s;
    store_conn_t *c;
};

static void url_for(char *buf, size_t size, struct server *srv, const char *auth, const char *rest)
{
    snprintf(buf, size, "redis://%s127.0.0.1:%d%s", auth ? auth : "", srv->port, rest ? rest : "");
}

/* Run the loop in 5 ms slices until cond holds or ms pass. */
#define WAIT_UNTIL(base, cond, ms)                                                                 \
    do {                                                                                           \
        uint64_t deadline_ = now_ms() + (ms);                                                      \
        while (!(cond) && now_ms() < deadline_)                                                    \
            spin(base, 5);                                                                         \
    } while (0)

static void spin(struct event_base *base, int ms)
{
    struct timeval tv = {0, ms * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static store_conn_t *connect_to(struct fix *f, const char *url)
{
    const char *err = NULL;
    f->s = store_open(url, &err);
    assert_non_null(f->s);
    f->c = store_attach(f->s, f->base);
    assert_non_null(f->c);
    WAIT_UNTIL(f->base, store_healthy(f->c), 3000);
    return f->c;
}

/* Without redis-server, setup leaves no fixture and the test skips (cmocka
 * 1.1 cannot skip from a setup function). */
static int setup_url(void **state, const char *rest)
{
    *state = NULL;
    if (!have_redis)
        return 0;
    struct fix *f = calloc(1, sizeof *f);
    char url[256];
    f->base = event_base_new();
    url_for(url, sizeof url, &main_redis, NULL, rest);
    connect_to(f, url);
    assert_true(store_healthy(f->c));
    *state = f;
    return 0;
}

static struct fix *fixture(void **state)
{
    if (!*state)
        skip();
    return *state;
}

static int setup(void **state) { return setup_url(state, NULL); }

static int setup_timeout_200(void **state) { return setup_url(state, "/0?timeout_ms=200"); }

static int setup_timeout_100(void **state)
{
    return setup_url(state, "/0?timeout_ms=100&connect_timeout_ms=200");
}

/* Flush the database so tests do not see each other's keys. */
static void flush(void) { freeReplyObject(raw(&main_redis, "FLUSHALL")); }

static int teardown(void **state)
{
    struct fix *f = *state;
    if (!f)
        return 0;
    if (f->c)
        store_detach(f->c);
    if (f->s)
        store_close(f->s);
    event_base_free(f->base);
    free(f);
    if (have_redis && main_redis.pid > 0)
        flush();
    return 0;
}

/* ------------------------------------------------------------- results */

struct result {
    int calls;
    enum store_status status;
    char value[8192];
    size_t len;
    long long number;
    char err[256];
    uint64_t at_ms;
};

static void record(const struct store_reply *reply, void *arg)
{
    struct result *res = arg;
    res->calls++;
    res->status = reply->status;
    res->number = reply->number;
    res->len = reply->len;
    res->at_ms = now_ms();
    snprintf(res->err, sizeof res->err, "%s", reply->err ? reply->err : "");
    if (reply->status == STORE_OK && reply->value) {
        assert_true(reply->len <= sizeof res->value);
        memcpy(res->value, reply->value, reply->len);
    }
}

/* Each helper issues a call, checks the reply does not come inside the
 * call, then runs the loop until it comes. */
static struct result wait_result(struct fix *f, struct result *res)
{
    assert_int_equal(res->calls, 0);
    WAIT_UNTIL(f->base, res->calls, 3000);
    assert_int_equal(res->calls, 1);
    return *res;
}

static struct result get(struct fix *f, const char *key, size_t klen)
{
    struct result res = {0};
    assert_int_equal(store_get(f->c, key, klen, record, &res), 0);
    return wait_result(f, &res);
}

static struct result set(struct fix *f, const char *key, size_t klen, const char *val, size_t vlen,
                         uint64_t ttl)
{
    struct result res = {0};
    assert_int_equal(store_set(f->c, key, klen, val, vlen, ttl, record, &res), 0);
    return wait_result(f, &res);
}

static struct result add(struct fix *f, const char *key, const char *val, uint64_t ttl)
{
    struct result res = {0};
    assert_int_equal(store_add(f->c, key, strlen(key), val, strlen(val), ttl, record, &res), 0);
    return wait_result(f, &res);
}

static struct result incr(struct fix *f, const char *key, long long delta, uint64_t ttl)
{
    struct result res = {0};
    assert_int_equal(store_incr(f->c, key, strlen(key), delta, ttl, record, &res), 0);
    return wait_result(f, &res);
}

static struct result del(struct fix *f, const char *key, size_t klen)
{
    struct result res = {0};
    assert_int_equal(store_del(f->c, key, klen, record, &res), 0);
    return wait_result(f, &res);
}

#define S(str) str, strlen(str)

static void assert_value(struct result r, const char *want)
{
    assert_int_equal(r.status, STORE_OK);
    assert_int_equal(r.len, strlen(want));
    assert_memory_equal(r.value, want, r.len);
}

static void assert_error(struct result r, const char *want)
{
    assert_int_equal(r.status, STORE_ERROR);
    assert_string_equal(r.err, want);
}

/* --------------------------------------------------------------- tests */

static void test_urls(void **state)
{
    (void)state;
    const char *err = NULL;
    static const char *bad[] = {
        "redis://",
        "redis://:6379",
        "redis://127.0.0.1:0",
        "redis://127.0.0.1:70000",
        "redis://127.0.0.1:port",
        "redis://127.0.0.1:6379/x",
        "redis://127.0.0.1:6379/99999",
        "redis://127.0.0.1:6379/0?timeout_ms=0",
        "redis://127.0.0.1:6379/0?timeout_ms=abc",
        "redis://127.0.0.1:6379/0?connect_timeout_ms=-5",
        "redis://127.0.0.1:6379/0?bogus=1",
        "redis://127.0.0.1:6379/0?prefix",
        "redis://[::1:6379/0",
        "redis://hunter2@127.0.0.1:6379",
        "redis://:hunter2@127.0.0.1:6379?password_env=WXGATE_TEST_PW",
        "redis://127.0.0.1:6379?password_env=WXGATE_TEST_UNSET_VARIABLE",
        "redis://no-such-host.invalid:6379",
        "redis://127.0.0.1:6379,127.0.0.1:6380/0",
        "redis-sentinel://127.0.0.1:26379",
        "redis-sentinel://127.0.0.1:26379/",
        "redis-sentinel://127.0.0.1:26379,/mymaster",
        "redis-sentinel://127.0.0.1:26379/mymaster/x",
        "redis-sentinel://127.0.0.1:26379,127.0.0.1:70000/mymaster/0",
        "redis-sentinel://hunter2@127.0.0.1:26379/mymaster",
        "redis-cluster://",
        "redis-cluster://127.0.0.1:7000/1",
        "redis-cluster://127.0.0.1:7000/?prefix",
        "redis-cluster://127.0.0.1:7000,no-such-host.invalid:7001/",
        "redis-sentinels://127.0.0.1:26379/mymaster",
    };
    setenv("WXGATE_TEST_PW", "hunter2", 1);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err = NULL;
        if (store_open(bad[i], &err))
            fail_msg("accepted %s", bad[i]);
        assert_non_null(err);
        assert_null(strstr(err, "hunter2")); /* no secret in a message */
    }

    static const char *good[] = {
        "redis://127.0.0.1",
        "redis://127.0.0.1:6379",
        "redis://127.0.0.1:6379/",
        "redis://127.0.0.1:6379/3",
        "redis://localhost:6379/0",
        "redis://[::1]:6379/0",
        "redis://:pw@127.0.0.1:6379/0?prefix=app%3A&timeout_ms=100&connect_timeout_ms=50",
        "redis://user:pw@127.0.0.1:6379/0",
        "redis://127.0.0.1:6379/0?password_env=WXGATE_TEST_PW&prefix=",
        "redis-sentinel://127.0.0.1:26379,127.0.0.1:26380,[::1]:26381/mymaster/0",
        "redis-sentinel://127.0.0.1/mymaster",
        "redis-sentinel://:pw@127.0.0.1:26379/mymaster/2?prefix=a%3A&timeout_ms=100",
        "redis-cluster://127.0.0.1:7000,127.0.0.1:7001/",
        "redis-cluster://127.0.0.1:7000",
        "redis-cluster://user:pw@localhost:7000/?prefix=x:&connect_timeout_ms=50",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        err = NULL;
        store_t *s = store_open(good[i], &err);
        if (!s)
            fail_msg("%s: %s", good[i], err);
        store_close(s);
    }
    unsetenv("WXGATE_TEST_PW");
}

/* What the Sentinel and Cluster urls say, as the back ends see it. */
static void test_ha_urls(void **state)
{
    (void)state;
    const char *err = NULL;
    store_t *s = store_open("redis-sentinel://:pw@127.0.0.1,127.0.0.1:26380,[::1]:26381/"
                            "mymaster/2?prefix=a%3A&timeout_ms=100",
                            &err);
    if (!s)
        fail_msg("%s", err);
    struct redis_common *rc = (struct redis_common *)s;
    assert_int_equal(rc->kind, REDIS_SENTINEL);
    assert_string_equal(rc->master, "mymaster");
    assert_int_equal(rc->opts.db, 2);
    assert_int_equal(rc->opts.check_primary, 1);
    assert_string_equal(rc->opts.password, "pw");
    assert_null(rc->opts.user);
    assert_string_equal(rc->prefix, "a:");
    assert_int_equal(rc->opts.timeout_ms, 100);
    assert_int_equal(rc->nhosts, 3);
    assert_int_equal(rc->hosts[0].port, 26379); /* the sentinels' default port */
    assert_int_equal(rc->hosts[1].port, 26380);
    assert_string_equal(rc->hosts[2].addrs[0], "::1");
    store_close(s);

    s = store_open("redis-cluster://u:pw@127.0.0.1:7000,127.0.0.1/", &err);
    if (!s)
        fail_msg("%s", err);
    rc = (struct redis_common *)s;
    assert_int_equal(rc->kind, REDIS_CLUSTER);
    assert_null(rc->master);
    assert_int_equal(rc->opts.check_primary, 0);
    assert_string_equal(rc->opts.user, "u");
    assert_string_equal(rc->prefix, "wxgate:");
    assert_int_equal(rc->nhosts, 2);
    assert_int_equal(rc->hosts[0].port, 7000);
    assert_int_equal(rc->hosts[1].port, 6379);
    store_close(s);
}

/* Redis Cluster's own examples (cluster spec): CRC16 and hash tags. */
static void test_key_slots(void **state)
{
    (void)state;
#define SLOT(p, k) redis_key_slot(p, strlen(p), k, strlen(k))
    assert_int_equal(SLOT("", "123456789"), 0x31C3 & 16383);
    assert_int_equal(SLOT("", "foo"), 12182);
    assert_int_equal(SLOT("", "{user1000}.following"), SLOT("", "user1000"));
    assert_int_equal(SLOT("", "{user1000}.followers"), SLOT("", "user1000"));
    assert_int_equal(SLOT("", "foo{}{bar}"), SLOT("", "foo{}{bar}")); /* the whole key */
    assert_int_not_equal(SLOT("", "foo{}{bar}"), SLOT("", "bar"));
    assert_int_equal(SLOT("", "foo{{bar}}zap"), SLOT("", "{bar"));
    assert_int_equal(SLOT("", "foo{bar}{zap}"), SLOT("", "bar"));
    /* The prefix and the key hash as one string, a tag across both too. */
    assert_int_equal(SLOT("wxgate:", "st:{abc}"), SLOT("", "abc"));
    assert_int_equal(SLOT("wxgate:", "su:{abc}"), SLOT("", "abc"));
    assert_int_equal(SLOT("wx{", "ab}cd"), SLOT("", "ab"));
    assert_int_equal(SLOT("wx", "gate:foo"), SLOT("", "wxgate:foo"));
    assert_int_equal(SLOT("{app}:", "st:{abc}"), SLOT("", "app"));
#undef SLOT
}

static void test_healthy(void **state)
{
    (void)state;
    assert_int_equal(store_healthy(NULL), 0);
    store_t *s = store_open("memory", NULL);
    struct event_base *base = event_base_new();
    assert_null(store_attach(s, NULL)); /* a connection needs a loop */
    store_conn_t *c = store_attach(s, base);
    assert_int_equal(store_healthy(c), 1);
    store_detach(c);
    store_close(s);
    event_base_free(base);
}

static void test_get_set_del(void **state)
{
    struct fix *f = fixture(state);
    assert_int_equal(get(f, S("k")).status, STORE_NOT_FOUND);
    assert_int_equal(set(f, S("k"), S("v1"), 0).status, STORE_OK);
    assert_value(get(f, S("k")), "v1");
    assert_int_equal(set(f, S("k"), S("v2"), 0).status, STORE_OK);
    assert_value(get(f, S("k")), "v2");
    assert_int_equal(del(f, S("k")).status, STORE_OK);
    assert_int_equal(del(f, S("k")).status, STORE_NOT_FOUND);
    assert_int_equal(get(f, S("k")).status, STORE_NOT_FOUND);

    /* No callback: the write still happens. */
    assert_int_equal(store_set(f->c, S("quiet"), S("yes"), 0, NULL, NULL), 0);
    assert_value(get(f, S("quiet")), "yes");

    /* The real key carries the default prefix. */
    redisReply *r = raw(&main_redis, "GET wxgate:quiet");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "yes");
    freeReplyObject(r);

    /* A key of another type is an error from Redis, passed on. */
    freeReplyObject(raw(&main_redis, "LPUSH wxgate:list x"));
    struct result res = get(f, S("list"));
    assert_int_equal(res.status, STORE_ERROR);
    assert_non_null(strstr(res.err, "WRONGTYPE"));
}

/* One Redis has no replica to wait for: WAIT 0 0 answers at once, as the
 * memory store does (on a later loop turn, never inside the call). */
static void test_sync(void **state)
{
    struct fix *f = fixture(state);
    assert_int_equal(set(f, S("k"), S("v"), 0).status, STORE_OK);
    struct result res = {0};
    uint64_t t0 = now_ms();
    assert_int_equal(store_sync(f->c, S("k"), record, &res), 0);
    struct result r = wait_result(f, &res);
    assert_int_equal(r.status, STORE_OK);
    assert_int_equal(r.number, 0);
    assert_true(r.at_ms - t0 < 200);

    store_t *s = store_open("memory", NULL);
    store_conn_t *c = store_attach(s, f->base);
    struct result mres = {0};
    assert_int_equal(store_sync(c, S("k"), record, &mres), 0);
    assert_int_equal(mres.calls, 0);
    WAIT_UNTIL(f->base, mres.calls, 1000);
    assert_int_equal(mres.status, STORE_OK);
    store_detach(c);
    store_close(s);
}

static void test_add(void **state)
{
    struct fix *f = fixture(state);
    assert_int_equal(add(f, "a", "first", 0).status, STORE_OK);
    assert_int_equal(add(f, "a", "second", 0).status, STORE_EXISTS);
    assert_value(get(f, S("a")), "first");
    assert_int_equal(raw_int(&main_redis, "PTTL %s", "wxgate:a"), -1);
}

static void test_incr(void **state)
{
    struct fix *f = fixture(state);
    struct result r = incr(f, "n", 5, 0);
    assert_int_equal(r.status, STORE_OK);
    assert_int_equal(r.number, 5);
    assert_int_equal(incr(f, "n", -7, 0).number, -2);
    assert_value(get(f, S("n")), "-2");
    assert_int_equal(raw_int(&main_redis, "PTTL %s", "wxgate:n"), -1);

    set(f, S("text"), S("abc"), 0);
    assert_error(incr(f, "text", 1, 1000), "not an integer");
    assert_value(get(f, S("text")), "abc");
    assert_int_equal(raw_int(&main_redis, "PTTL %s", "wxgate:text"), -1); /* untouched */

    /* Exact beyond 2^53 (no trip through a double). */
    set(f, S("big"), S("9007199254740993"), 0);
    assert_int_equal(incr(f, "big", 2, 0).number, 9007199254740995LL);
    set(f, S("max"), S("9223372036854775806"), 0);
    assert_int_equal(incr(f, "max", 1, 0).number, INT64_MAX);
    assert_error(incr(f, "max", 1, 0), "increment would overflow");
    assert_value(get(f, S("max")), "9223372036854775807");
}

static void test_ttl(void **state)
{
    struct fix *f = fixture(state);
    set(f, S("t"), S("v"), 200);
    add(f, "ta", "v", 200);
    assert_int_equal(incr(f, "tn", 1, 200).number, 1);
    long long pttl = raw_int(&main_redis, "PTTL %s", "wxgate:t");
    assert_true(pttl > 0 && pttl <= 200);
    assert_value(get(f, S("t")), "v");

    sleep_ms(300);
    assert_int_equal(get(f, S("t")).status, STORE_NOT_FOUND);
    assert_int_equal(get(f, S("ta")).status, STORE_NOT_FOUND);
    assert_int_equal(get(f, S("tn")).status, STORE_NOT_FOUND);
    assert_int_equal(add(f, "ta", "again", 0).status, STORE_OK); /* expired: add works */

    /* set replaces a TTL with its own (none here). */
    set(f, S("r"), S("v"), 200);
    set(f, S("r"), S("v"), 0);
    assert_int_equal(raw_int(&main_redis, "PTTL %s", "wxgate:r"), -1);
}

/* incr gives a key it creates the call's TTL and keeps an existing one's. */
static void test_incr_keeps_ttl(void **state)
{
    struct fix *f = fixture(state);
    assert_int_equal(incr(f, "c", 1, 300).number, 1);
    sleep_ms(150);
    assert_int_equal(incr(f, "c", 1, 0).number, 2);
    assert_int_equal(incr(f, "c", 1, 60000).number, 3);
    long long pttl = raw_int(&main_redis, "PTTL %s", "wxgate:c");
    assert_true(pttl > 0 && pttl <= 150);
    sleep_ms(200);
    assert_int_equal(get(f, S("c")).status, STORE_NOT_FOUND);
    assert_int_equal(incr(f, "c", 1, 0).number, 1);
    assert_int_equal(raw_int(&main_redis, "PTTL %s", "wxgate:c"), -1);

    /* A key without TTL keeps having none. */
    assert_int_equal(incr(f, "c", 1, 500).number, 2);
    assert_int_equal(raw_int(&main_redis, "PTTL %s", "wxgate:c"), -1);
}

static void test_binary(void **state)
{
    struct fix *f = fixture(state);
    const char key[] = {'a', 0, '\r', '\n', ' ', (char)0xff, '%', 'b'};
    char val[4096];
    for (size_t i = 0; i < sizeof val; i++)
        val[i] = (char)(i * 7 + (i >> 8));
    val[0] = 0;
    val[100] = '\r';
    val[101] = '\n';

    assert_int_equal(set(f, key, sizeof key, val, sizeof val, 0).status, STORE_OK);
    struct result r = get(f, key, sizeof key);
    assert_int_equal(r.status, STORE_OK);
    assert_int_equal(r.len, sizeof val);
    assert_memory_equal(r.value, val, sizeof val);
    assert_int_equal(get(f, key, 1).status, STORE_NOT_FOUND); /* "a" alone is another key */

    /* Empty value, empty key (just the prefix). */
    assert_int_equal(set(f, S("empty"), "", 0, 0).status, STORE_OK);
    r = get(f, S("empty"));
    assert_int_equal(r.status, STORE_OK);
    assert_int_equal(r.len, 0);
    assert_int_equal(set(f, "", 0, S("root"), 0).status, STORE_OK);
    assert_value(get(f, "", 0), "root");
    assert_int_equal(del(f, key, sizeof key).status, STORE_OK);
    assert_int_equal(store_get(f->c, NULL, 1, record, NULL), -1);
}

static void test_prefix(void **state)
{
    struct fix *f = fixture(state);
    struct fix g = {.base = f->base};
    char url[256];
    url_for(url, sizeof url, &main_redis, NULL, "/0?prefix=other%3A");
    connect_to(&g, url);

    struct fix *other = &g;
    set(f, S("k"), S("mine"), 0);
    set(other, S("k"), S("theirs"), 0);
    assert_value(get(f, S("k")), "mine");
    assert_value(get(other, S("k")), "theirs");
    del(other, S("k"));
    assert_value(get(f, S("k")), "mine");
    assert_int_equal(get(other, S("k")).status, STORE_NOT_FOUND);
    set(other, S("k2"), S("x"), 0);
    assert_int_equal(raw_int(&main_redis, "EXISTS %s", "other:k2"), 1);
    assert_int_equal(raw_int(&main_redis, "EXISTS %s", "wxgate:k2"), 0);

    /* Another database is another key space. */
    struct fix h = {.base = f->base};
    url_for(url, sizeof url, &main_redis, NULL, "/2");
    connect_to(&h, url);
    assert_int_equal(get(&h, S("k")).status, STORE_NOT_FOUND);
    set(&h, S("k"), S("db2"), 0);
    assert_value(get(f, S("k")), "mine");
    assert_value(get(&h, S("k")), "db2");

    store_detach(h.c);
    store_close(h.s);
    store_detach(g.c);
    store_close(g.s);
}

/* Two connections add the same keys at the same moment: one wins each. */
static void test_add_race(void **state)
{
    struct fix *f = fixture(state);
    store_conn_t *c2 = store_attach(f->s, f->base);
    WAIT_UNTIL(f->base, store_healthy(c2), 3000);

    enum { ROUNDS = 100 };
    static struct result a[ROUNDS], b[ROUNDS];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    char key[32];
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(key, sizeof key, "race:%d", i);
        assert_int_equal(store_add(f->c, S(key), S("a"), 10000, record, &a[i]), 0);
        assert_int_equal(store_add(c2, S(key), S("b"), 10000, record, &b[i]), 0);
    }
    WAIT_UNTIL(f->base, a[ROUNDS - 1].calls && b[ROUNDS - 1].calls, 3000);
    for (int i = 0; i < ROUNDS; i++) {
        assert_int_equal(a[i].calls, 1);
        assert_int_equal(b[i].calls, 1);
        assert_true((a[i].status == STORE_OK && b[i].status == STORE_EXISTS) ||
                    (a[i].status == STORE_EXISTS && b[i].status == STORE_OK));
    }
    store_detach(c2);
}

/* Thousands of calls in flight on one connection, answered in order. */
static void test_many_in_flight(void **state)
{
    struct fix *f = fixture(state);
    enum { N = 3000 };
    static struct result sets[N], gets[N], incrs[N];
    memset(sets, 0, sizeof sets);
    memset(gets, 0, sizeof gets);
    memset(incrs, 0, sizeof incrs);
    char key[32], val[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "m:%d", i);
        snprintf(val, sizeof val, "value %d", i);
        assert_int_equal(store_set(f->c, S(key), S(val), 60000, record, &sets[i]), 0);
        assert_int_equal(store_get(f->c, S(key), record, &gets[i]), 0);
        assert_int_equal(store_incr(f->c, S("m:count"), 1, 0, record, &incrs[i]), 0);
    }
    WAIT_UNTIL(f->base, incrs[N - 1].calls, 10000);
    for (int i = 0; i < N; i++) {
        snprintf(val, sizeof val, "value %d", i);
        assert_int_equal(sets[i].calls, 1);
        assert_int_equal(sets[i].status, STORE_OK);
        assert_int_equal(gets[i].calls, 1);
        assert_value(gets[i], val);
        assert_int_equal(incrs[i].calls, 1);
        assert_int_equal(incrs[i].number, i + 1);
    }
}

/* A stopped Redis: the command fails with "timeout" after timeout_ms, the
 * connection reports unhealthy, and the late reply, when Redis resumes, is
 * ignored (the callback ran once). */
static void test_timeout(void **state)
{
    struct fix *f = fixture(state);
    set(f, S("slow"), S("before"), 0);

    struct result r = {0};
    assert_int_equal(kill(main_redis.pid, SIGSTOP), 0);
    uint64_t t0 = now_ms();
    assert_int_equal(store_set(f->c, S("slow"), S("during"), 0, record, &r), 0);
    WAIT_UNTIL(f->base, r.calls, 2000);
    assert_int_equal(r.calls, 1);
    assert_error(r, "timeout");
    assert_true(r.at_ms - t0 >= 190 && r.at_ms - t0 < 400);
    assert_int_equal(store_healthy(f->c), 0);

    assert_int_equal(kill(main_redis.pid, SIGCONT), 0);
    assert_value(get(f, S("slow")), "during"); /* it ran, late */
    assert_int_equal(r.calls, 1);
    assert_int_equal(store_healthy(f->c), 1);
}

/* A Redis that stays stopped: after a few timeouts' silence the connection
 * is dropped and retried (calls then fail fast), and it recovers alone. */
static void test_stalled_connection_dropped(void **state)
{
    struct fix *f = fixture(state);
    assert_int_equal(kill(main_redis.pid, SIGSTOP), 0);
    int timeouts = 0, unavailable = 0;
    uint64_t end = now_ms() + 1800;
    while (now_ms() < end) {
        struct result r = {0};
        assert_int_equal(store_get(f->c, S("x"), record, &r), 0);
        WAIT_UNTIL(f->base, r.calls, 1000);
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.status, STORE_ERROR);
        if (strcmp(r.err, "timeout") == 0)
            timeouts++;
        else if (strcmp(r.err, "redis unavailable") == 0)
            unavailable++;
        else
            fail_msg("unexpected error %s", r.err);
        spin(f->base, 20);
    }
    assert_true(timeouts > 0);
    assert_true(unavailable > 0);
    assert_int_equal(kill(main_redis.pid, SIGCONT), 0);
    WAIT_UNTIL(f->base, store_healthy(f->c), 6000);
    assert_int_equal(store_healthy(f->c), 1);
    assert_int_equal(set(f, S("x"), S("ok"), 0).status, STORE_OK);
}

/* Redis goes away: calls fail fast; it comes back on the same port: the
 * connection comes back by itself. */
static void test_down_and_back(void **state)
{
    struct fix *f = fixture(state);
    set(f, S("k"), S("v"), 0);
    server_stop(&main_redis);
    WAIT_UNTIL(f->base, !store_healthy(f->c), 2000);
    assert_int_equal(store_healthy(f->c), 0);

    for (int i = 0; i < 5; i++) {
        uint64_t t0 = now_ms();
        struct result r = get(f, S("k"));
        assert_error(r, "redis unavailable");
        assert_true(r.at_ms - t0 < 100);
        spin(f->base, 50);
    }

    server_start(&main_redis);
    WAIT_UNTIL(f->base, store_healthy(f->c), 8000);
    assert_int_equal(store_healthy(f->c), 1);
    assert_int_equal(set(f, S("k"), S("back"), 0).status, STORE_OK);
    assert_value(get(f, S("k")), "back");
}

/* A store opened while Redis is down works once Redis starts. */
static void test_start_before_redis(void **state)
{
    (void)state;
    if (!have_redis)
        skip();
    struct fix f = {.base = event_base_new()};
    struct server srv = {.port = free_port()};
    char url[256];
    url_for(url, sizeof url, &srv, NULL, "/0?timeout_ms=200");
    f.s = store_open(url, NULL);
    assert_non_null(f.s);
    f.c = store_attach(f.s, f.base);
    assert_non_null(f.c);
    assert_error(get(&f, S("k")), "redis unavailable");
    server_start(&srv);
    WAIT_UNTIL(f.base, store_healthy(f.c), 8000);
    assert_int_equal(set(&f, S("k"), S("v"), 0).status, STORE_OK);
    store_detach(f.c);
    store_close(f.s);
    event_base_free(f.base);
    server_stop(&srv);
}

static void test_password(void **state)
{
    (void)state;
    if (!have_redis)
        skip();
    auth_redis.port = free_port();
    auth_redis.password = PASSWORD;
    server_start(&auth_redis);
    char url[256];

    /* Right password, in the url. */
    struct fix f = {.base = event_base_new()};
    url_for(url, sizeof url, &auth_redis, ":" PASSWORD_URL "@", "/1");
    connect_to(&f, url);
    assert_int_equal(store_healthy(f.c), 1);
    assert_int_equal(set(&f, S("k"), S("v"), 0).status, STORE_OK);
    assert_value(get(&f, S("k")), "v");
    store_detach(f.c);
    store_close(f.s);

    /* Right password, from the environment. */
    setenv("WXGATE_TEST_REDIS_PW", PASSWORD, 1);
    url_for(url, sizeof url, &auth_redis, NULL, "/1?password_env=WXGATE_TEST_REDIS_PW");
    connect_to(&f, url);
    assert_int_equal(store_healthy(f.c), 1);
    assert_value(get(&f, S("k")), "v");
    store_detach(f.c);
    store_close(f.s);
    unsetenv("WXGATE_TEST_REDIS_PW");

    /* Wrong password: a clear error, never healthy. */
    url_for(url, sizeof url, &auth_redis, ":wrong@", "/1");
    f.s = store_open(url, NULL);
    f.c = store_attach(f.s, f.base);
    struct result r = get(&f, S("k"));
    assert_error(r, "redis auth failed");
    spin(f.base, 50);
    assert_error(get(&f, S("k")), "redis auth failed");
    assert_int_equal(store_healthy(f.c), 0);
    store_detach(f.c);
    store_close(f.s);

    /* No password at all: Redis says so. */
    url_for(url, sizeof url, &auth_redis, NULL, "/1");
    f.s = store_open(url, NULL);
    f.c = store_attach(f.s, f.base);
    r = get(&f, S("k"));
    assert_int_equal(r.status, STORE_ERROR);
    if (!strstr(r.err, "NOAUTH"))
        fail_msg("got %s", r.err);
    assert_int_equal(store_healthy(f.c), 0);
    store_detach(f.c);
    store_close(f.s);

    /* A database that does not exist. */
    url_for(url, sizeof url, &auth_redis, ":" PASSWORD_URL "@", "/999");
    f.s = store_open(url, NULL);
    f.c = store_attach(f.s, f.base);
    r = get(&f, S("k"));
    assert_int_equal(r.status, STORE_ERROR);
    assert_int_equal(store_healthy(f.c), 0);
    store_detach(f.c);
    store_close(f.s);

    event_base_free(f.base);
    server_stop(&auth_redis);
}

static void never(const struct store_reply *reply, void *arg)
{
    (void)reply;
    (void)arg;
    fail_msg("a callback ran after store_detach");
}

/* Detach with commands in hiredis (sent, unsent, timed out and waiting for
 * a late reply) and fail-fast answers pending: no callback, no leak. */
static void test_detach_in_flight(void **state)
{
    struct fix *f = fixture(state);

    /* Not sent yet. */
    for (int i = 0; i < 200; i++)
        assert_int_equal(store_incr(f->c, S("d"), 1, 0, never, NULL), 0);
    store_detach(f->c);
    f->c = NULL;
    spin(f->base, 50);

    /* Sent, not answered (Redis stopped), not timed out yet. */
    f->c = store_attach(f->s, f->base);
    WAIT_UNTIL(f->base, store_healthy(f->c), 3000);
    assert_int_equal(kill(main_redis.pid, SIGSTOP), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(store_get(f->c, S("d"), never, NULL), 0);
    spin(f->base, 20);
    store_detach(f->c);
    f->c = NULL;
    assert_int_equal(kill(main_redis.pid, SIGCONT), 0);
    spin(f->base, 50);

    /* Timed out, waiting for the late reply. */
    f->c = store_attach(f->s, f->base);
    WAIT_UNTIL(f->base, store_healthy(f->c), 3000);
    struct result r = {0};
    assert_int_equal(kill(main_redis.pid, SIGSTOP), 0);
    assert_int_equal(store_get(f->c, S("d"), record, &r), 0);
    WAIT_UNTIL(f->base, r.calls, 2000);
    assert_error(r, "timeout");
    assert_int_equal(store_get(f->c, S("d"), never, NULL), 0);
    store_detach(f->c);
    f->c = NULL;
    assert_int_equal(kill(main_redis.pid, SIGCONT), 0);
    spin(f->base, 50);

    /* Redis down: fail-fast answers pending. */
    struct fix g = {.base = f->base};
    struct server srv = {.port = free_port()};
    char url[256];
    url_for(url, sizeof url, &srv, NULL, NULL);
    g.s = store_open(url, NULL);
    g.c = store_attach(g.s, g.base);
    spin(g.base, 20);
    for (int i = 0; i < 10; i++)
        assert_int_equal(store_del(g.c, S("d"), never, NULL), 0);
    store_detach(g.c);
    store_close(g.s);
    spin(f->base, 50);
}

int main(void)
{
#define T(name, su) cmocka_unit_test_setup_teardown(name, su, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_healthy),
        cmocka_unit_test(test_key_slots),
        cmocka_unit_test(test_ha_urls),
        T(test_get_set_del, setup),
        T(test_sync, setup),
        T(test_add, setup),
        T(test_incr, setup),
        T(test_ttl, setup),
        T(test_incr_keeps_ttl, setup),
        T(test_binary, setup),
        T(test_prefix, setup),
        T(test_add_race, setup),
        T(test_many_in_flight, setup),
        T(test_timeout, setup_timeout_200),
        T(test_stalled_connection_dropped, setup_timeout_100),
        T(test_down_and_back, setup),
        cmocka_unit_test(test_start_before_redis),
        cmocka_unit_test(test_password),
        T(test_detach_in_flight, setup_timeout_200),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
