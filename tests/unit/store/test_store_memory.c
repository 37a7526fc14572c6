/* Unit tests for core/store/store_memory.c through the store.h interface (and the
 * dispatcher in core/store/store.c): semantics of every call, binary safety, TTLs
 * on the test clock, active expiry, the memory cap, threads, re-entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "store_impl.h"

#include <event2/event.h>

/* The loop of this thread's connection: replies arrive on its next turn. */
static _Thread_local struct event_base *loop;

/* Turns the loop until n callbacks have run (a few turns at most). */
static void turn_until(const int *calls, int n)
{
    for (int i = 0; i < 16 && *calls < n; i++)
        event_base_loop(loop, EVLOOP_NONBLOCK);
    assert_int_equal(*calls, n);
}

/* One reply, copied out of the callback. */
struct result {
    int calls;
    enum store_status status;
    char value[2048];
    size_t len;
    long long number;
    const char *err;
};

/* The call returned before its callback ran; then the loop delivers it,
 * exactly once. */
static void answered(struct result *res)
{
    assert_int_equal(res->calls, 0);
    turn_until(&res->calls, 1);
}

static void record(const struct store_reply *reply, void *arg)
{
    struct result *res = arg;
    res->calls++;
    res->status = reply->status;
    res->number = reply->number;
    res->err = reply->err;
    res->len = reply->len;
    if (reply->status == STORE_OK && reply->value) {
        assert_true(reply->len <= sizeof res->value);
        memcpy(res->value, reply->value, reply->len);
    }
}

/* Each helper issues a call, checks it was issued, not answered inside the
 * call, and answered exactly once on the loop's next turn. */
static struct result get(store_conn_t *c, const char *key, size_t klen)
{
    struct result res = {0};
    assert_int_equal(store_get(c, key, klen, record, &res), 0);
    answered(&res);
    return res;
}

static struct result set(store_conn_t *c, const char *key, size_t klen, const char *val,
                         size_t vlen, uint64_t ttl)
{
    struct result res = {0};
    assert_int_equal(store_set(c, key, klen, val, vlen, ttl, record, &res), 0);
    answered(&res);
    return res;
}

static struct result add(store_conn_t *c, const char *key, const char *val, uint64_t ttl)
{
    struct result res = {0};
    assert_int_equal(store_add(c, key, strlen(key), val, strlen(val), ttl, record, &res), 0);
    answered(&res);
    return res;
}

static struct result incr(store_conn_t *c, const char *key, long long delta, uint64_t ttl)
{
    struct result res = {0};
    assert_int_equal(store_incr(c, key, strlen(key), delta, ttl, record, &res), 0);
    answered(&res);
    return res;
}

static struct result del(store_conn_t *c, const char *key, size_t klen)
{
    struct result res = {0};
    assert_int_equal(store_del(c, key, klen, record, &res), 0);
    answered(&res);
    return res;
}

#define S(str) str, strlen(str)

static void assert_value(struct result res, const char *val)
{
    assert_int_equal(res.status, STORE_OK);
    assert_int_equal(res.len, strlen(val));
    assert_memory_equal(res.value, val, res.len);
}

/* Every test gets a fresh store and one connection. */
struct fixture {
    store_t *s;
    store_conn_t *c;
    struct event_base *base;
};

static int open_store(void **state, const char *url)
{
    struct fixture *f = calloc(1, sizeof *f);
    const char *err = NULL;
    f->s = store_open(url, &err);
    if (!f->s) {
        fprintf(stderr, "store_open(%s): %s\n", url, err);
        free(f);
        return -1;
    }
    f->base = loop = event_base_new();
    f->c = store_attach(f->s, f->base);
    *state = f;
    return f->c ? 0 : -1;
}

static int setup(void **state) { return open_store(state, "memory"); }

static int setup_1mb(void **state) { return open_store(state, "memory?max_mb=1"); }

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_detach(f->c);
    store_close(f->s);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void test_open_urls(void **state)
{
    const char *err = NULL;
    store_t *s = store_open(NULL, &err);
    assert_non_null(s);
    store_close(s);
    s = store_open("memory?max_mb=2", &err);
    assert_non_null(s);
    store_close(s);

    const char *bad[] = {"memory?max_mb=0",
                         "memory?max_mb=",
                         "memory?max_mb=-1",
                         "memory?max_mb=1x",
                         "memory?max_mb=99999999999",
                         "memory?size=1",
                         "memory?",
                         "memoryx",
                         "bogus",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err = NULL;
        assert_null(store_open(bad[i], &err));
        assert_non_null(err);
    }
    assert_null(store_open("bogus", NULL)); /* err is optional */
}

static void test_bad_arguments(void **state)
{
    struct fixture *f = *state;
    struct result res = {0};
    assert_int_equal(store_get(NULL, S("k"), record, &res), -1);
    assert_int_equal(store_get(f->c, NULL, 1, record, &res), -1);
    assert_int_equal(store_set(f->c, S("k"), NULL, 3, 0, record, &res), -1);
    assert_int_equal(res.calls, 0);
    /* An empty key and value are fine, even as NULL. */
    assert_int_equal(set(f->c, NULL, 0, NULL, 0, 0).status, STORE_OK);
    assert_value(get(f->c, "", 0), "");
    /* A NULL callback means "no reply wanted". */
    assert_int_equal(store_set(f->c, S("quiet"), S("v"), 0, NULL, NULL), 0);
    assert_value(get(f->c, S("quiet")), "v");
}

static void test_get_set_del(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(get(f->c, S("a")).status, STORE_NOT_FOUND);
    assert_int_equal(set(f->c, S("a"), S("one"), 0).status, STORE_OK);
    assert_value(get(f->c, S("a")), "one");
    assert_int_equal(set(f->c, S("a"), S("a longer second value"), 0).status, STORE_OK);
    assert_value(get(f->c, S("a")), "a longer second value");
    assert_int_equal(del(f->c, S("a")).status, STORE_OK);
    assert_int_equal(del(f->c, S("a")).status, STORE_NOT_FOUND);
    assert_int_equal(get(f->c, S("a")).status, STORE_NOT_FOUND);
}

static void test_add(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(add(f->c, "k", "first", 0).status, STORE_OK);
    assert_int_equal(add(f->c, "k", "second", 0).status, STORE_EXISTS);
    assert_value(get(f->c, S("k")), "first");
}

static void test_binary_keys_and_values(void **state)
{
    struct fixture *f = *state;
    const char k1[] = {'k', 0, 'x'}, k2[] = {'k', 0, 'y'}, k3[] = {'k'};
    const char v1[] = {0, 1, 0, (char)0xff}, v2[] = {0};
    assert_int_equal(set(f->c, k1, sizeof k1, v1, sizeof v1, 0).status, STORE_OK);
    assert_int_equal(set(f->c, k2, sizeof k2, v2, sizeof v2, 0).status, STORE_OK);
    struct result res = get(f->c, k1, sizeof k1);
    assert_int_equal(res.status, STORE_OK);
    assert_int_equal(res.len, sizeof v1);
    assert_memory_equal(res.value, v1, sizeof v1);
    res = get(f->c, k2, sizeof k2);
    assert_int_equal(res.len, 1);
    assert_int_equal(res.value[0], 0);
    assert_int_equal(get(f->c, k3, sizeof k3).status, STORE_NOT_FOUND);
    assert_int_equal(del(f->c, k1, sizeof k1).status, STORE_OK);
    assert_int_equal(get(f->c, k2, sizeof k2).status, STORE_OK);
}

/* The value is larger than struct result, so it is checked in the callback. */
static void check_big(const struct store_reply *reply, void *arg)
{
    int *calls = arg;
    (*calls)++;
    assert_int_equal(reply->status, STORE_OK);
    assert_int_equal(reply->len, 1 << 20);
    for (size_t i = 0; i < reply->len; i++)
        assert_int_equal(reply->value[i], (char)(i * 7));
}

static void test_large_value(void **state)
{
    struct fixture *f = *state;
    size_t n = 1 << 20;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7);
    assert_int_equal(set(f->c, S("big"), big, n, 0).status, STORE_OK);
    free(big);
    int calls = 0;
    assert_int_equal(store_get(f->c, S("big"), check_big, &calls), 0);
    turn_until(&calls, 1);
}

static void test_incr(void **state)
{
    struct fixture *f = *state;
    struct result res = incr(f->c, "n", 5, 0);
    assert_int_equal(res.status, STORE_OK);
    assert_int_equal(res.number, 5);
    assert_int_equal(incr(f->c, "n", -7, 0).number, -2);
    assert_value(get(f->c, S("n")), "-2");

    assert_int_equal(set(f->c, S("n"), S("41"), 0).status, STORE_OK);
    assert_int_equal(incr(f->c, "n", 1, 0).number, 42);

    const char *not_ints[] = {"abc", "", "-", "1.5", " 1", "1 ", "+1", "99999999999999999999"};
    for (size_t i = 0; i < sizeof not_ints / sizeof *not_ints; i++) {
        assert_int_equal(set(f->c, S("s"), S(not_ints[i]), 0).status, STORE_OK);
        res = incr(f->c, "s", 1, 0);
        assert_int_equal(res.status, STORE_ERROR);
        assert_string_equal(res.err, "not an integer");
        assert_value(get(f->c, S("s")), not_ints[i]);
    }
    assert_int_equal(set(f->c, S("s"), "1\0", 2, 0).status, STORE_OK);
    assert_int_equal(incr(f->c, "s", 1, 0).status, STORE_ERROR);
}

static void test_incr_limits(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(set(f->c, S("max"), S("9223372036854775807"), 0).status, STORE_OK);
    struct result res = incr(f->c, "max", 1, 0);
    assert_int_equal(res.status, STORE_ERROR);
    assert_non_null(res.err);
    assert_value(get(f->c, S("max")), "9223372036854775807");
    assert_int_equal(incr(f->c, "max", -1, 0).number, 9223372036854775806LL);

    assert_int_equal(set(f->c, S("min"), S("-9223372036854775808"), 0).status, STORE_OK);
    assert_int_equal(incr(f->c, "min", -1, 0).status, STORE_ERROR);
    assert_int_equal(incr(f->c, "min", 0, 0).number, INT64_MIN);
}

/* The store's clock is the real monotonic clock plus the test offset, so a
 * check at 1 ms before expiry only holds if the real clock did not tick a
 * millisecond during it. Such tests read this before and after, and retry
 * with a fresh key when it ticked (rare, but it happens under TSan). */
static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define MAX_TRIES 1000

static void test_ttl(void **state)
{
    struct fixture *f = *state;
    char key[32];
    assert_int_equal(set(f->c, S("forever"), S("v"), 0).status, STORE_OK);
    for (int tries = 0;; tries++) {
        assert_true(tries < MAX_TRIES);
        snprintf(key, sizeof key, "t%d", tries);
        int64_t start = real_ms();
        assert_int_equal(set(f->c, S(key), S("v"), 1000).status, STORE_OK);
        store_memory_advance_clock(f->s, 999);
        struct result res = get(f->c, S(key));
        if (real_ms() != start)
            continue;
        assert_value(res, "v");
        break;
    }
    store_memory_advance_clock(f->s, 2);
    assert_int_equal(get(f->c, S(key)).status, STORE_NOT_FOUND);
    assert_int_equal(del(f->c, S(key)).status, STORE_NOT_FOUND);
    store_memory_advance_clock(f->s, 1000LL * 86400 * 365);
    assert_value(get(f->c, S("forever")), "v");
}

static void test_set_replaces_ttl(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(set(f->c, S("a"), S("1"), 1000).status, STORE_OK);
    assert_int_equal(set(f->c, S("a"), S("2"), 0).status, STORE_OK); /* TTL dropped */
    assert_int_equal(set(f->c, S("b"), S("1"), 0).status, STORE_OK);
    assert_int_equal(set(f->c, S("b"), S("2"), 1000).status, STORE_OK); /* TTL added */
    store_memory_advance_clock(f->s, 5000);
    assert_value(get(f->c, S("a")), "2");
    assert_int_equal(get(f->c, S("b")).status, STORE_NOT_FOUND);
}

static void test_add_on_expired_key(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(add(f->c, "lock", "old", 60000).status, STORE_OK);
    assert_int_equal(add(f->c, "lock", "new", 60000).status, STORE_EXISTS);
    store_memory_advance_clock(f->s, 60000);
    assert_int_equal(add(f->c, "lock", "new", 60000).status, STORE_OK);
    assert_value(get(f->c, S("lock")), "new");
}

static void test_incr_ttl(void **state)
{
    struct fixture *f = *state;
    char key[32];
    for (int tries = 0;; tries++) {
        assert_true(tries < MAX_TRIES);
        snprintf(key, sizeof key, "c%d", tries);
        int64_t start = real_ms();
        assert_int_equal(incr(f->c, key, 1, 1000).number, 1);
        store_memory_advance_clock(f->s, 500);
        assert_int_equal(incr(f->c, key, 1, 60000).number, 2); /* keeps the first TTL */
        store_memory_advance_clock(f->s, 499);
        struct result res = get(f->c, S(key));
        if (real_ms() != start)
            continue;
        assert_value(res, "2");
        break;
    }
    store_memory_advance_clock(f->s, 2);
    assert_int_equal(get(f->c, S(key)).status, STORE_NOT_FOUND);
    assert_int_equal(incr(f->c, key, 1, 0).number, 1); /* starts over, no TTL */
    store_memory_advance_clock(f->s, 1000000);
    assert_value(get(f->c, S(key)), "1");
}

static void test_huge_ttl(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(set(f->c, S("k"), S("v"), UINT64_MAX).status, STORE_OK);
    store_memory_advance_clock(f->s, INT64_MAX / 2);
    assert_value(get(f->c, S("k")), "v");
}

/* Expired keys nobody reads again are still dropped by later calls. */
static void test_active_expiry(void **state)
{
    struct fixture *f = *state;
    char key[32];
    size_t keys, bytes, empty_bytes;
    store_memory_stats(f->s, &keys, &empty_bytes, NULL);
    assert_int_equal(keys, 0);
    assert_int_equal(empty_bytes, 0);

    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "short:%d", i);
        assert_int_equal(set(f->c, S(key), S("v"), 60000).status, STORE_OK);
    }
    store_memory_stats(f->s, &keys, &bytes, NULL);
    assert_int_equal(keys, 1000);
    store_memory_advance_clock(f->s, 60000);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "other:%d", i);
        assert_int_equal(set(f->c, S(key), S("v"), 0).status, STORE_OK);
    }
    store_memory_stats(f->s, &keys, &bytes, NULL);
    assert_int_equal(keys, 2000);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "other:%d", i);
        assert_int_equal(del(f->c, S(key)).status, STORE_OK);
    }
    store_memory_stats(f->s, &keys, &bytes, NULL);
    assert_int_equal(keys, 0);
    assert_int_equal(bytes, 0);
}

/* Many TTLs, some deleted, expiring in a scrambled order: the heaps must
 * hand them out by expiry time. TTLs are far apart (10 s steps) so the real
 * clock running during the test cannot move a key across the line. */
static uint64_t scrambled_ttl(int i) { return 100000 + 10000 * (uint64_t)(i * 7919 % 5000); }

static void test_many_ttls(void **state)
{
    struct fixture *f = *state;
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(set(f->c, S(key), S("v"), scrambled_ttl(i)).status, STORE_OK);
    }
    for (int i = 0; i < 5000; i += 3) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(del(f->c, S(key)).status, STORE_OK);
    }
    uint64_t half = scrambled_ttl(2500) + 5000;
    store_memory_advance_clock(f->s, (int64_t)half);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        int alive = i % 3 != 0 && scrambled_ttl(i) > half;
        assert_int_equal(get(f->c, S(key)).status, alive ? STORE_OK : STORE_NOT_FOUND);
    }
    store_memory_advance_clock(f->s, 100000 + 10000 * 5000); /* past every TTL */
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(get(f->c, S(key)).status, STORE_NOT_FOUND);
    }
    size_t keys, bytes;
    store_memory_stats(f->s, &keys, &bytes, NULL);
    assert_int_equal(keys, 0);
    assert_int_equal(bytes, 0);
}

/* Fill a 1 MiB store with vlen-byte values of 'x'; return how many fit. */
static int fill(store_conn_t *c, const char *prefix, size_t vlen, uint64_t ttl)
{
    char key[32], val[1024];
    memset(val, 'x', sizeof val);
    assert_true(vlen <= sizeof val);
    for (int i = 0;; i++) {
        snprintf(key, sizeof key, "%s%d", prefix, i);
        struct result res = set(c, S(key), val, vlen, ttl);
        if (res.status != STORE_OK) {
            assert_int_equal(res.status, STORE_ERROR);
            assert_string_equal(res.err, "store full");
            return i;
        }
        assert_true(i < (1 << 20) / (int)(vlen + 64));
    }
}

/* Evictable entries (login states) give way to new ones, oldest first;
 * nothing else is ever evicted. */
static void test_evictable_entries_give_way(void **state)
{
    struct fixture *f = *state;
    char key[32], val[512];
    memset(val, 's', sizeof val);
    /* Half the store is data that may not be evicted. */
    int kept = 0;
    for (; kept < 800; kept++) {
        snprintf(key, sizeof key, "keep%d", kept);
        assert_int_equal(set(f->c, S(key), val, sizeof val, 0).status, STORE_OK);
    }
    /* Then ten times the store's room in states: every one is accepted. */
    int states = 20000;
    for (int i = 0; i < states; i++) {
        snprintf(key, sizeof key, "st:%d", i);
        struct result res = {0};
        assert_int_equal(store_add_evictable(f->c, S(key), val, sizeof val, 1800000, record, &res),
                         0);
        answered(&res);
        assert_int_equal(res.status, STORE_OK);
    }
    size_t keys, bytes, evicted;
    store_memory_stats(f->s, &keys, &bytes, &evicted);
    assert_true(evicted > (size_t)states / 2);
    assert_true(bytes <= 1 << 20);
    /* The newest states are there, the oldest gave way, nothing kept did. */
    snprintf(key, sizeof key, "st:%d", states - 1);
    assert_int_equal(get(f->c, S(key)).status, STORE_OK);
    assert_int_equal(get(f->c, S("st:0")).status, STORE_NOT_FOUND);
    for (int i = 0; i < kept; i++) {
        snprintf(key, sizeof key, "keep%d", i);
        assert_int_equal(get(f->c, S(key)).status, STORE_OK);
    }
    /* Full of data that may not be evicted: a state is refused, not forced in. */
    for (int i = 0;; i++) {
        snprintf(key, sizeof key, "more%d", i);
        if (set(f->c, S(key), val, sizeof val, 0).status != STORE_OK)
            break;
    }
    struct result res = {0};
    assert_int_equal(store_add_evictable(f->c, S("st:late"), val, sizeof val, 0, record, &res), 0);
    answered(&res);
    assert_int_equal(res.status, STORE_ERROR);
}

static void test_memory_cap(void **state)
{
    struct fixture *f = *state;
    char val[1024];
    memset(val, 'y', sizeof val);

    int n = fill(f->c, "k", sizeof val, 0);
    assert_true(n > 800);
    fill(f->c, "tiny", 1, 0); /* top off the last bytes */
    size_t keys, bytes;
    store_memory_stats(f->s, &keys, &bytes, NULL);
    assert_true(keys >= (size_t)n);
    assert_true(bytes <= 1 << 20 && bytes > (1 << 20) - 128);

    /* Full: new keys and growth are refused, and nothing is evicted... */
    assert_int_equal(add(f->c, "new", "v", 0).status, STORE_ERROR);
    assert_int_equal(incr(f->c, "new", 1, 0).status, STORE_ERROR);
    struct result res = get(f->c, S("k0"));
    assert_int_equal(res.status, STORE_OK);
    assert_int_equal(res.len, sizeof val);
    /* ...but a same-size overwrite, a shrink and a delete still work. */
    assert_int_equal(set(f->c, S("k1"), val, sizeof val, 0).status, STORE_OK);
    assert_int_equal(set(f->c, S("k2"), S("small"), 0).status, STORE_OK);
    assert_int_equal(del(f->c, S("k3")).status, STORE_OK);
    assert_int_equal(set(f->c, S("new"), val, sizeof val, 0).status, STORE_OK);

    /* A value larger than the whole cap never fits. */
    char *huge = calloc(1, 2 << 20);
    res = set(f->c, S("huge"), huge, 2 << 20, 0);
    assert_int_equal(res.status, STORE_ERROR);
    assert_string_equal(res.err, "store full");
    free(huge);
}

/* When full, expired keys in any shard make room before a write fails. */
static void test_memory_cap_expired_make_room(void **state)
{
    struct fixture *f = *state;
    int n = fill(f->c, "k", 1024, 60000);
    store_memory_advance_clock(f->s, 60000);
    /* Every old key has expired: the store fills up again (almost) as far. */
    int again = fill(f->c, "fresh", 1024, 0);
    assert_true(again >= n - 8);
    size_t keys, bytes;
    store_memory_stats(f->s, &keys, &bytes, NULL);
    assert_int_equal(keys, (size_t)again);
    store_memory_advance_clock(f->s, -60000);
    assert_int_equal(get(f->c, S("k0")).status, STORE_NOT_FOUND);
}

/* A callback may call the store again, on the same shard and others. */
struct reentry {
    store_conn_t *c;
    int depth;
    struct result inner;
};

static void reenter(const struct store_reply *reply, void *arg)
{
    struct reentry *r = arg;
    assert_int_equal(reply->status, STORE_OK);
    if (r->depth++ > 0)
        return;
    /* The same key (same shard lock) and another one, from inside the callback. */
    assert_int_equal(store_set(r->c, S("a"), S("changed"), 0, record, &r->inner), 0);
    assert_int_equal(store_incr(r->c, S("b"), 1, 0, NULL, NULL), 0);
    assert_int_equal(store_get(r->c, S("a"), reenter, r), 0);
}

static void test_reentrant_callback(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(set(f->c, S("a"), S("v"), 0).status, STORE_OK);
    struct reentry r = {.c = f->c};
    assert_int_equal(store_get(f->c, S("a"), reenter, &r), 0);
    turn_until(&r.depth, 2);
    assert_int_equal(r.inner.calls, 1);
    assert_value(get(f->c, S("a")), "changed");
    assert_value(get(f->c, S("b")), "1");

    r = (struct reentry){.c = f->c};
    assert_int_equal(store_set(f->c, S("a"), S("again"), 0, reenter, &r), 0);
    turn_until(&r.depth, 2);
}

/* Four threads, each with its own connection, hammer shared counters. */
#define THREADS    4
#define ITERATIONS 10000
#define COUNTERS   8

struct worker {
    store_t *s;
    int id;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    loop = event_base_new();
    store_conn_t *c = store_attach(w->s, loop);
    char key[32], mine[32];
    for (int i = 0; i < ITERATIONS; i++) {
        snprintf(key, sizeof key, "counter:%d", i % COUNTERS);
        struct result res = incr(c, key, 1, 0);
        assert_int_equal(res.status, STORE_OK);
        assert_int_equal(incr(c, "total", 1, 0).status, STORE_OK);
        /* Private keys churn through sets, gets, TTL expiry and deletes. */
        snprintf(mine, sizeof mine, "t%d:%d", w->id, i % 64);
        assert_int_equal(set(c, S(mine), S(key), i % 2 ? 50 : 0).status, STORE_OK);
        struct result got = get(c, S(mine));
        assert_true(got.status == STORE_OK || got.status == STORE_NOT_FOUND);
        if (i % 5 == 0)
            del(c, S(mine));
        if (w->id == 0 && i % 1000 == 0)
            store_memory_advance_clock(w->s, 10);
    }
    store_detach(c);
    event_base_free(loop);
    return NULL;
}

static void test_threads(void **state)
{
    struct fixture *f = *state;
    pthread_t tid[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.s = f->s, .id = i};
        assert_int_equal(pthread_create(&tid[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(tid[i], NULL);

    char key[32], want[32];
    for (int i = 0; i < COUNTERS; i++) {
        snprintf(key, sizeof key, "counter:%d", i);
        snprintf(want, sizeof want, "%d", THREADS * ITERATIONS / COUNTERS);
        assert_value(get(f->c, S(key)), want);
    }
    assert_int_equal(incr(f->c, "total", 0, 0).number, THREADS * ITERATIONS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_urls),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_set_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_keys_and_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incr_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_replaces_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_on_expired_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incr_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_active_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_ttls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_cap, setup_1mb, teardown),
        cmocka_unit_test_setup_teardown(test_evictable_entries_give_way, setup_1mb, teardown),
        cmocka_unit_test_setup_teardown(test_memory_cap_expired_make_room, setup_1mb, teardown),
        cmocka_unit_test_setup_teardown(test_reentrant_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
