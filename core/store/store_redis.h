/* What the three Redis back ends share (private to core/store):
 *
 * - the url: redis://, redis-sentinel:// and redis-cluster:// are read by
 *   one parser (redis_url.c) into struct redis_common, which each back
 *   end's store embeds first;
 * - the store calls as Redis commands (redis_request.c): a request holds
 *   the formatted command, its key's hash slot (for Redis Cluster) and the
 *   caller's callback, and turns Redis' reply into a store reply.
 *
 * Connections are redis_conn.h's. */
#ifndef WX_STORE_REDIS_H
#define WX_STORE_REDIS_H
#include <hiredis/hiredis.h>
#include <stdint.h>

#include "redis_conn.h"
#include "store_impl.h"

#define REDIS_MAX_HOSTS 16 /* hosts in one url (sentinels, cluster seeds) */
#define REDIS_SLOTS     16384

enum redis_kind { REDIS_SINGLE, REDIS_SENTINEL, REDIS_CLUSTER };

/* One host of the url, resolved to numeric addresses. */
struct redis_host {
    char addrs[4][RCONN_HOST_MAX];
    const char *addr_ptrs[4]; /* into addrs, for rconn_target */
    int naddrs;
    int port;
};

/* What the url says; read-only once open, shared by every worker. */
struct rreq;

struct redis_common {
    store_t base;
    enum redis_kind kind;
    struct rconn_opts opts; /* user and password point below */
    char *user, *password;  /* NULL when not configured */
    char *prefix;
    size_t plen;
    struct redis_host hosts[REDIS_MAX_HOSTS];
    int nhosts;
    char *master;                /* sentinel: the name the sentinels know the primary by */
    _Atomic int refusing_writes; /* the last write met maxmemory ("OOM ...") */
    _Atomic int next_conn;       /* numbers worker connections, for metrics */
    /* The back end's way to the right node: sends q, which then answers its
     * caller exactly once, or returns -1 (q freed). Set at open. */
    int (*send)(store_conn_t *sc, struct rreq *q);
};

/* Reads url (of kind) into rc, whose base.ops the caller sets. NULL, or
 * why not (no secret in it). */
const char *redis_url_parse(struct redis_common *rc, const char *url, enum redis_kind kind);
/* Frees what redis_url_parse allocated (not rc itself). */
void redis_common_free(struct redis_common *rc);

/* The store_ops.close of every Redis back end (rc is the store's first
 * member); every connection must be detached first. */
void redis_close(store_t *s);
/* The store_ops.warning of every Redis back end: Redis refusing writes. */
const char *redis_warning(store_conn_t *sc);

/* The open functions of the back ends (store.c picks one by scheme). */
store_t *store_redis_sentinel_open(const char *url, const char **err);
store_t *store_redis_cluster_open(const char *url, const char **err);

/* ------------------------------------------------------------ requests */

enum rreq_kind { RREQ_GET, RREQ_SET, RREQ_ADD, RREQ_INCR, RREQ_DEL, RREQ_WAIT };

/* One store call on its way to Redis. */
struct rreq {
    struct redis_common *rc;
    enum rreq_kind kind;
    store_cb cb;
    void *arg;
    char *cmd; /* RESP */
    size_t len;
    unsigned slot; /* cluster: the key's hash slot */
    int redirects; /* cluster: MOVED/ASK followed so far */
    int asking;    /* cluster: the next send goes after ASKING */
    void *owner;   /* the back end's connection */
    struct rreq *next;
    uint64_t deadline_ms; /* cluster: when waiting for a slot map gives up */
};

/* A request for each store call (the key gets the store's prefix). NULL
 * when out of memory. */
struct rreq *rreq_get(struct redis_common *rc, const char *key, size_t klen, store_cb cb,
                      void *arg);
struct rreq *rreq_set(struct redis_common *rc, const char *key, size_t klen, const char *val,
                      size_t vlen, uint64_t ttl_ms, int only_new, store_cb cb, void *arg);
struct rreq *rreq_incr(struct redis_common *rc, const char *key, size_t klen, long long delta,
                       uint64_t ttl_ms, store_cb cb, void *arg);
struct rreq *rreq_del(struct redis_common *rc, const char *key, size_t klen, store_cb cb,
                      void *arg);
/* WAIT replicas timeout_ms, sent to the node of key (the key is not sent). */
struct rreq *rreq_wait(struct redis_common *rc, const char *key, size_t klen, int replicas,
                       int timeout_ms, store_cb cb, void *arg);
/* The data calls of store_ops, the same for every Redis back end: each
 * builds its one-key command and hands it to rc->send. add's evictable is
 * Redis's own business (maxmemory-policy; the README says volatile-lru).
 * sync is WAIT 1 within half the command timeout (the command's own timer
 * must not fire first) with replicas, and answers at once on one Redis. */
int redis_op_get(store_conn_t *sc, const char *key, size_t klen, store_cb cb, void *arg);
int redis_op_set(store_conn_t *sc, const char *key, size_t klen, const char *val, size_t vlen,
                 uint64_t ttl_ms, store_cb cb, void *arg);
int redis_op_add(store_conn_t *sc, const char *key, size_t klen, const char *val, size_t vlen,
                 uint64_t ttl_ms, int evictable, store_cb cb, void *arg);
int redis_op_incr(store_conn_t *sc, const char *key, size_t klen, long long delta, uint64_t ttl_ms,
                  store_cb cb, void *arg);
int redis_op_del(store_conn_t *sc, const char *key, size_t klen, store_cb cb, void *arg);
int redis_op_sync(store_conn_t *sc, const char *key, size_t klen, store_cb cb, void *arg);

/* Answers the caller (reply NULL: failed, why says why) and frees q. */
void rreq_finish(struct rreq *q, const redisReply *reply, const char *why);
void rreq_free(struct rreq *q);
/* An error reply that starts with word ("MOVED", "READONLY"). */
int redis_reply_is(const redisReply *r, const char *word);

/* The hash slot of prefix+key, as Redis Cluster computes it: CRC16 of the
 * first non-empty {hash tag}, or of the whole key. */
unsigned redis_key_slot(const char *prefix, size_t plen, const char *key, size_t klen);

/* Why a command failed, beyond redis_conn.h's reasons (static strings). */
extern const char redis_err_failover[], redis_err_cluster_down[], redis_err_redirects[];

#endif
