/* Unit tests for core/store/store.c, the dispatcher: it picks a back end by
 * URL, checks every call's arguments once, and forwards them through the
 * back end's vtable unchanged. A fake back end records what arrives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "store.h"
#include "store_impl.h"

static struct {
    int calls;
    const char *op, *key, *val;
    size_t klen, vlen;
    uint64_t ttl;
    long long delta;
    store_cb cb;
} seen;

static void note(const char *op, const char *key, size_t klen, store_cb cb)
{
    seen.calls++;
    seen.op = op;
    seen.key = key;
    seen.klen = klen;
    seen.cb = cb;
}
static int f_get(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg)
{
    note("get", key, klen, cb);
    return 0;
}
static int f_set(store_conn_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                 uint64_t ttl_ms, store_cb cb, void *arg)
{
    note("set", key, klen, cb);
    seen.val = val;
    seen.vlen = vlen;
    seen.ttl = ttl_ms;
    return 0;
}
static int f_add(store_conn_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                 uint64_t ttl_ms, int evictable, store_cb cb, void *arg)
{
    note("add", key, klen, cb);
    seen.val = val;
    return 0;
}
static int f_incr(store_conn_t *c, const char *key, size_t klen, long long delta, uint64_t ttl_ms,
                  store_cb cb, void *arg)
{
    note("incr", key, klen, cb);
    seen.delta = delta;
    return 0;
}
static int f_del(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg)
{
    note("del", key, klen, cb);
    return 0;
}

static const struct store_ops fake_ops = {
    .get = f_get,
    .set = f_set,
    .add = f_add,
    .incr = f_incr,
    .del = f_del,
};
static store_t fake_store = {.ops = &fake_ops};
static store_conn_t fake_conn = {.store = &fake_store};

static void mine(const struct store_reply *r, void *arg) {}

static void calls_are_forwarded_unchanged(void **state)
{
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_set(&fake_conn, "k", 1, "v\0w", 3, 42, mine, NULL), 0);
    assert_string_equal(seen.op, "set");
    assert_memory_equal(seen.val, "v\0w", 3);
    assert_int_equal(seen.vlen, 3);
    assert_int_equal(seen.ttl, 42);
    assert_ptr_equal(seen.cb, mine);
    assert_int_equal(store_incr(&fake_conn, "n", 1, -5, 0, mine, NULL), 0);
    assert_string_equal(seen.op, "incr");
    assert_int_equal(seen.delta, -5);
    assert_int_equal(store_get(&fake_conn, "k", 1, mine, NULL), 0);
    assert_int_equal(store_add(&fake_conn, "k", 1, "x", 1, 0, mine, NULL), 0);
    assert_int_equal(store_del(&fake_conn, "k", 1, mine, NULL), 0);
    assert_string_equal(seen.op, "del");
    assert_int_equal(seen.calls, 5);
}

static void bad_arguments_never_reach_the_back_end(void **state)
{
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_get(NULL, "k", 1, mine, NULL), -1);
    assert_int_equal(store_get(&fake_conn, NULL, 1, mine, NULL), -1);
    assert_int_equal(store_set(&fake_conn, "k", 1, NULL, 2, 0, mine, NULL), -1);
    assert_int_equal(store_add(&fake_conn, NULL, 3, "v", 1, 0, mine, NULL), -1);
    assert_int_equal(store_incr(&fake_conn, NULL, 1, 1, 0, mine, NULL), -1);
    assert_int_equal(store_del(&fake_conn, NULL, 1, mine, NULL), -1);
    assert_int_equal(seen.calls, 0);
    /* Empty buffers may be NULL: the back end gets "", and a NULL callback
     * becomes one that ignores the reply. */
    assert_int_equal(store_set(&fake_conn, NULL, 0, NULL, 0, 0, NULL, NULL), 0);
    assert_non_null(seen.key);
    assert_non_null(seen.val);
    assert_string_equal(seen.key, "");
    assert_non_null(seen.cb);
}

static void urls_pick_the_back_end(void **state)
{
    const char *err = NULL;
    store_t *s = store_open(NULL, &err);
    assert_non_null(s);
    store_close(s);
    assert_non_null(s = store_open("memory?max_mb=1", &err));
    store_close(s);
    const char *bad[] = {"", "memcached://x", "memoryx", "redis:/x", "REDIS://h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = NULL;
        assert_null(store_open(bad[i], &err));
        assert_non_null(err);
    }
    store_close(NULL);
    store_detach(NULL);
    assert_null(store_attach(NULL, NULL));
    assert_int_equal(store_healthy(NULL), 0);
    assert_int_equal(store_healthy(&fake_conn), 1); /* no health hook: always */
}

static void counters_parse_strictly(void **state)
{
    long long v = 0;
    assert_int_equal(store_parse_ll("42", 2, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(store_parse_ll("-9223372036854775808", 20, &v), 0);
    assert_true(v < 0);
    const char *bad[] = {"", "-", "+1", " 1", "1 ", "9223372036854775808", "1e3", "0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(store_parse_ll(bad[i], strlen(bad[i]), &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(calls_are_forwarded_unchanged),
        cmocka_unit_test(bad_arguments_never_reach_the_back_end),
        cmocka_unit_test(urls_pick_the_back_end),
        cmocka_unit_test(counters_parse_strictly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
