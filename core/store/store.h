/* The key-value store behind login states, tickets, tokens and wx.store.
 *
 * One interface, several back ends: "memory" (shared by every worker of one
 * process, with TTLs) and Redis. Every call is asynchronous: it takes a
 * callback that receives the reply on a later turn of the connection's event
 * loop, never inside the call, whichever back end answers; callers have one
 * order to get right.
 *
 * A store_t is shared by the whole process; each worker attaches once to get
 * a store_conn_t bound to its event loop, and issues calls through it. */
#ifndef WX_STORE_H
#define WX_STORE_H
#include <stddef.h>
#include <stdint.h>

struct event_base;
typedef struct store store_t;
typedef struct store_conn store_conn_t;

enum store_status {
    STORE_OK = 0,        /* done; for get: value present */
    STORE_NOT_FOUND = 1, /* get/del/incr-without-create: no such key */
    STORE_EXISTS = 2,    /* add: the key already exists (nothing written) */
    STORE_ERROR = -1,    /* back end failure; err says why */
};

struct store_reply {
    enum store_status status;
    const char *value; /* get: the value (valid only during the callback) */
    size_t len;
    long long number; /* incr: the new value */
    const char *err;  /* STORE_ERROR: a short reason, no secrets */
};

typedef void (*store_cb)(const struct store_reply *reply, void *arg);

/* url: "memory" (or NULL). Returns NULL and sets *err on a bad url. */
store_t *store_open(const char *url, const char **err);
void store_close(store_t *s);
store_conn_t *store_attach(store_t *s, struct event_base *base);
void store_detach(store_conn_t *c);

/* ttl_ms == 0 means no expiry. Keys and values are binary-safe.
 * Each returns 0 when the call was issued (the callback will run exactly
 * once), -1 when it could not be (the callback will not run). */
int store_get(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg);
int store_set(store_conn_t *c, const char *key, size_t klen, const char *val, size_t vlen,
              uint64_t ttl_ms, store_cb cb, void *arg);
/* Set only if absent: STORE_OK when written, STORE_EXISTS otherwise. */
int store_add(store_conn_t *c, const char *key, size_t klen, const char *val, size_t vlen,
              uint64_t ttl_ms, store_cb cb, void *arg);
/* store_add for a record that may give way to new ones when the store is
 * full (a login state nobody may ever call back for): the memory store
 * evicts such records, oldest first, before it refuses a write; with Redis
 * its maxmemory-policy decides (README: volatile-lru). */
int store_add_evictable(store_conn_t *c, const char *key, size_t klen, const char *val, size_t vlen,
                        uint64_t ttl_ms, store_cb cb, void *arg);
/* Add delta to an integer value; a missing key starts at 0 and gets ttl_ms
 * (an existing key keeps its TTL). A non-integer value is STORE_ERROR. */
int store_incr(store_conn_t *c, const char *key, size_t klen, long long delta, uint64_t ttl_ms,
               store_cb cb, void *arg);
/* STORE_OK when a key was removed, STORE_NOT_FOUND otherwise. */
int store_del(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg);

/* Waits until the writes this connection has made so far on key's Redis
 * node are on a replica (Redis WAIT), so that a failover cannot undo them:
 * with the Sentinel and Cluster stores, up to half the command timeout.
 * STORE_OK with number = the replicas that have them (0: none in time).
 * The memory store and one Redis answer at once (number 0). For the rare
 * writes that must outlive a failover (the JS-SDK owner's lock and quota). */
int store_sync(store_conn_t *c, const char *key, size_t klen, store_cb cb, void *arg);

/* What an operator should know about the store now (Redis at maxmemory
 * refusing writes), for /healthz; NULL when all is well. */
const char *store_warning(store_conn_t *c);

/* The Redis node(s) this worker's connection talks to ("host:port", or a
 * comma-separated list of a cluster's primaries), written into buf, for
 * /healthz; NULL for the memory store. */
const char *store_node(store_conn_t *c, char *buf, size_t n);

/* Claim, or wait for the first claimer's result: for work that must happen
 * once across workers and instances (a code exchanged once, a JS-SDK ticket
 * fetched once) while the others wait for what it produced.
 * store_claim adds claim_key = claim_value (TTL claim_ttl_ms). The caller
 * that adds it gets STORE_CLAIM_WON and does the work. The others read
 * result_key (NULL: claim_key itself) every poll_ms and ask accept(value,
 * len, arg) (value NULL when absent): 1 takes it (STORE_CLAIM_RESULT, the
 * value valid during the callback), 0 waits on, -1 gives up
 * (STORE_CLAIM_FAILED). Without accept, the result is claim_key holding
 * anything but claim_value, and its absence gives up. After wait_ms
 * (0: do not wait at all) it is STORE_CLAIM_TIMEOUT. A store error is
 * STORE_CLAIM_FAILED. cb runs exactly once, on base's loop, unless
 * store_claim returns -1. */
enum store_claim_outcome {
    STORE_CLAIM_WON,
    STORE_CLAIM_RESULT,
    STORE_CLAIM_TIMEOUT,
    STORE_CLAIM_FAILED,
};
struct store_claim_spec {
    const char *claim_key, *claim_value;
    uint64_t claim_ttl_ms;
    const char *result_key;
    int (*accept)(const char *value, size_t len, void *arg);
    int poll_ms, wait_ms;
};
typedef void (*store_claim_cb)(enum store_claim_outcome outcome, const char *value, size_t len,
                               void *arg);
int store_claim(store_conn_t *c, struct event_base *base, const struct store_claim_spec *spec,
                store_claim_cb cb, void *arg);

/* 1 when the connection can serve calls now (for /healthz): always for the
 * memory store; for Redis, connected and not stalled. 0 for NULL. */
int store_healthy(store_conn_t *c);

/* For tests: the memory store's clock offset in ms (advances expiry). */
void store_memory_advance_clock(store_t *s, int64_t ms);

#endif
