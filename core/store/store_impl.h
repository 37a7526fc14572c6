/* The private side of store.h: the vtable a back end fills in, and the two
 * structs every back end embeds as the first member of its own store and
 * connection, so store.c can dispatch without knowing which back end it
 * talks to. Only store.c, the store_*.c back ends and their tests include it. */
#ifndef WX_STORE_IMPL_H
#define WX_STORE_IMPL_H
#include "store.h"

/* One back end. store.c validates arguments first: key and val are never
 * NULL (an empty buffer is ""), cb is never NULL. The calls keep the
 * contract of store.h: return 0 and run cb exactly once, or return -1. */
struct store_ops {
    void (*close)(store_t *s);
    store_conn_t *(*attach)(store_t *s, struct event_base *base);
    void (*detach)(store_conn_t *c);
    int (*get)(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg);
    int (*set)(store_conn_t *c, const char *key, size_t klen, const char *val, size_t vlen,
               uint64_t ttl_ms, store_cb cb, void *arg);
    int (*add)(store_conn_t *c, const char *key, size_t klen, const char *val, size_t vlen,
               uint64_t ttl_ms, int evictable, store_cb cb, void *arg);
    int (*incr)(store_conn_t *c, const char *key, size_t klen, long long delta, uint64_t ttl_ms,
                store_cb cb, void *arg);
    int (*del)(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg);
    int (*sync)(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg);
    /* 1 when calls can be served now; NULL means always (memory). */
    int (*healthy)(store_conn_t *c);
    /* What an operator should know (Redis refusing writes), or NULL. */
    const char *(*warning)(store_conn_t *c);
    /* The node(s) this connection talks to, written into buf; NULL means
     * none (memory). */
    const char *(*node)(store_conn_t *c, char *buf, size_t n);
};

struct store {
    const struct store_ops *ops;
};

struct store_conn {
    store_t *store;
};

/* The memory back end (store_memory.c). opts is what follows "memory" in
 * the url: "" or "?max_mb=N". */
store_t *store_memory_open(const char *opts, const char **err);

/* Keys held (expired ones not yet swept included), bytes charged against
 * the cap, and evictable entries evicted so far. For tests and metrics; s
 * must be a memory store. */
void store_memory_stats(store_t *s, size_t *keys, size_t *bytes, size_t *evicted);

/* The Redis back end (store_redis.c). url is the whole "redis://..." url;
 * it is parsed and its host resolved here, but nothing connects before
 * store_attach(). */
store_t *store_redis_open(const char *url, const char **err);

/* Strict decimal for counters: an optional '-', then digits only, within
 * long long. 0 ok, -1 otherwise. (store.c) */
int store_parse_ll(const char *s, size_t len, long long *out);

#endif
