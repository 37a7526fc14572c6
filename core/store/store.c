/* The store dispatcher: store_open() picks a back end from the url, and
 * every other call is checked once here and forwarded through the back
 * end's vtable (store_impl.h). Callers never see which back end runs. */
#include <string.h>

#include "store_impl.h"
#include "store_redis.h"

store_t *store_open(const char *url, const char **err)
{
    const char *why =
        "unknown store url (expected memory, redis://host:port/db, "
        "redis-sentinel://h1:port,h2:port/MASTER/db or redis-cluster://h1:port,h2:port/)";
    store_t *s = NULL;

    if (!url || strcmp(url, "memory") == 0 || strncmp(url, "memory?", 7) == 0)
        s = store_memory_open(url ? url + strlen("memory") : "", &why);
    else if (strncmp(url, "redis://", 8) == 0)
        s = store_redis_open(url, &why);
    else if (strncmp(url, "redis-sentinel://", 17) == 0)
        s = store_redis_sentinel_open(url, &why);
    else if (strncmp(url, "redis-cluster://", 16) == 0)
        s = store_redis_cluster_open(url, &why);
    if (!s && err)
        *err = why;
    return s;
}

void store_close(store_t *s)
{
    if (s)
        s->ops->close(s);
}

store_conn_t *store_attach(store_t *s, struct event_base *base)
{
    return s ? s->ops->attach(s, base) : NULL;
}

void store_detach(store_conn_t *c)
{
    if (c)
        c->store->ops->detach(c);
}

int store_healthy(store_conn_t *c)
{
    if (!c)
        return 0;
    return c->store->ops->healthy ? c->store->ops->healthy(c) : 1;
}

const char *store_warning(store_conn_t *c)
{
    return c && c->store->ops->warning ? c->store->ops->warning(c) : NULL;
}

const char *store_node(store_conn_t *c, char *buf, size_t n)
{
    return c && c->store->ops->node ? c->store->ops->node(c, buf, n) : NULL;
}

/* A NULL callback means the caller does not want the reply. */
static void ignore_reply(const struct store_reply *reply, void *arg)
{
    (void)reply;
    (void)arg;
}

/* Shared argument check: a buffer may be NULL only when it is empty, and
 * back ends then get "" so they never touch a NULL pointer. */
static int fix_buf(const char **p, size_t len)
{
    if (*p)
        return 0;
    if (len)
        return -1;
    *p = "";
    return 0;
}

int store_get(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg)
{
    if (!c || fix_buf(&key, klen) < 0)
        return -1;
    return c->store->ops->get(c, key, klen, cb ? cb : ignore_reply, arg);
}

int store_set(store_conn_t *c, const char *key, size_t klen, const char *val, size_t vlen,
              uint64_t ttl_ms, store_cb cb, void *arg)
{
    if (!c || fix_buf(&key, klen) < 0 || fix_buf(&val, vlen) < 0)
        return -1;
    return c->store->ops->set(c, key, klen, val, vlen, ttl_ms, cb ? cb : ignore_reply, arg);
}

int store_add(store_conn_t *c, const char *key, size_t klen, const char *val, size_t vlen,
              uint64_t ttl_ms, store_cb cb, void *arg)
{
    if (!c || fix_buf(&key, klen) < 0 || fix_buf(&val, vlen) < 0)
        return -1;
    return c->store->ops->add(c, key, klen, val, vlen, ttl_ms, 0, cb ? cb : ignore_reply, arg);
}

int store_add_evictable(store_conn_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                        uint64_t ttl_ms, store_cb cb, void *arg)
{
    if (!c || fix_buf(&key, klen) < 0 || fix_buf(&val, vlen) < 0)
        return -1;
    return c->store->ops->add(c, key, klen, val, vlen, ttl_ms, 1, cb ? cb : ignore_reply, arg);
}

int store_incr(store_conn_t *c, const char *key, size_t klen, long long delta, uint64_t ttl_ms,
               store_cb cb, void *arg)
{
    if (!c || fix_buf(&key, klen) < 0)
        return -1;
    return c->store->ops->incr(c, key, klen, delta, ttl_ms, cb ? cb : ignore_reply, arg);
}

int store_del(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg)
{
    if (!c || fix_buf(&key, klen) < 0)
        return -1;
    return c->store->ops->del(c, key, klen, cb ? cb : ignore_reply, arg);
}

int store_sync(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg)
{
    if (!c || fix_buf(&key, klen) < 0)
        return -1;
    return c->store->ops->sync(c, key, klen, cb ? cb : ignore_reply, arg);
}

/* Strict decimal: an optional '-', then digits only, within long long. */
int store_parse_ll(const char *s, size_t len, long long *out)
{
    size_t i = (len > 0 && s[0] == '-');
    long long v = 0;
    if (i == len)
        return -1;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        int digit = s[i] - '0';
        if (__builtin_mul_overflow(v, 10, &v))
            return -1;
        if (s[0] == '-' ? __builtin_sub_overflow(v, digit, &v)
                        : __builtin_add_overflow(v, digit, &v))
            return -1;
    }
    *out = v;
    return 0;
}
