/* The store calls as Redis commands, and Redis' replies as store replies,
 * for every Redis back end (see store_redis.h). Each call is one command on
 * one key, so each goes to one node and, in a cluster, one hash slot; the
 * one script (incr) touches its one key only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "store_redis.h"

#define MAX_TTL_MS 1000000000000000ULL /* ~31,000 years: far below Redis' limit */

const char redis_err_failover[] = "redis failover in progress";
const char redis_err_cluster_down[] = "redis cluster down";
const char redis_err_redirects[] = "redis cluster redirects loop";
static const char err_reply[] = "unexpected redis reply";
static const char err_not_int[] = "not an integer";
static const char err_overflow[] = "increment would overflow";

/* INCRBY that gives a key it creates the call's TTL and leaves an existing
 * key's TTL alone. SET NX creates the key at 0 with its TTL first (a no-op
 * when the key exists), all inside one script, so nothing is half-written.
 * The new value is returned through GET as text: a Lua number is a double
 * and would round counters beyond 2^53. */
static const char incr_script[] = "if tonumber(ARGV[2]) > 0 then "
                                  "redis.call('SET', KEYS[1], '0', 'NX', 'PX', ARGV[2]) end "
                                  "local n = redis.pcall('INCRBY', KEYS[1], ARGV[1]) "
                                  "if type(n) == 'table' and n.err then "
                                  "if string.find(n.err, 'overflow', 1, true) then "
                                  "return redis.error_reply('increment would overflow') end "
                                  "return redis.error_reply('not an integer') end "
                                  "return redis.call('GET', KEYS[1])";

/* ---------------------------------------------------------- hash slots */

/* CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with. */
static uint16_t crc16(uint16_t crc, const unsigned char *p, size_t n)
{
    while (n--) {
        crc ^= (uint16_t)(*p++ << 8);
        for (int i = 0; i < 8; i++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned redis_key_slot(const char *prefix, size_t plen, const char *key, size_t klen)
{
    /* Look at prefix+key as one string without joining them. */
    size_t n = plen + klen, open = n, close = n;
#define AT(i) ((i) < plen ? prefix[i] : key[(i)-plen])
    for (size_t i = 0; i < n && open == n; i++)
        if (AT(i) == '{')
            open = i;
    for (size_t i = open + 1; i < n && close == n; i++)
        if (AT(i) == '}')
            close = i;
#undef AT
    size_t from = 0, to = n; /* hash [from, to) */
    if (open < n && close < n && close > open + 1) {
        from = open + 1;
        to = close;
    }
    uint16_t crc = 0;
    if (from < plen)
        crc = crc16(crc, (const unsigned char *)prefix + from, (to < plen ? to : plen) - from);
    if (to > plen) {
        size_t kfrom = from > plen ? from - plen : 0;
        crc = crc16(crc, (const unsigned char *)key + kfrom, to - plen - kfrom);
    }
    return crc & (REDIS_SLOTS - 1);
}

/* ------------------------------------------------------------ requests */

static uint64_t clamp_ttl(uint64_t ttl_ms) { return ttl_ms > MAX_TTL_MS ? MAX_TTL_MS : ttl_ms; }

static struct rreq *rreq_new(struct redis_common *rc, enum rreq_kind kind, const char *key,
                             size_t klen, store_cb cb, void *arg)
{
    struct rreq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->rc = rc;
    q->kind = kind;
    q->cb = cb;
    q->arg = arg;
    if (rc->kind == REDIS_CLUSTER) /* the others send every call to one node */
        q->slot = redis_key_slot(rc->prefix, rc->plen, key, klen);
    return q;
}

/* Keeps the formatted command (n bytes, or n < 0: out of memory). */
static struct rreq *rreq_with(struct rreq *q, char *cmd, int n)
{
    if (n < 0) {
        free(q);
        return NULL;
    }
    q->cmd = cmd;
    q->len = (size_t)n;
    return q;
}

struct rreq *rreq_get(struct redis_common *rc, const char *key, size_t klen, store_cb cb, void *arg)
{
    struct rreq *q = rreq_new(rc, RREQ_GET, key, klen, cb, arg);
    char *cmd = NULL;
    return q ? rreq_with(q, cmd,
                         redisFormatCommand(&cmd, "GET %b%b", rc->prefix, rc->plen, key, klen))
             : NULL;
}

/* only_new: SET NX (an add); the reply is then nil when the key exists. */
struct rreq *rreq_set(struct redis_common *rc, const char *key, size_t klen, const char *val,
                      size_t vlen, uint64_t ttl_ms, int only_new, store_cb cb, void *arg)
{
    struct rreq *q = rreq_new(rc, only_new ? RREQ_ADD : RREQ_SET, key, klen, cb, arg);
    char *cmd = NULL;
    int n;
    if (!q)
        return NULL;
    if (!ttl_ms)
        n = redisFormatCommand(&cmd, only_new ? "SET %b%b %b NX" : "SET %b%b %b", rc->prefix,
                               rc->plen, key, klen, val, vlen);
    else
        n = redisFormatCommand(&cmd, only_new ? "SET %b%b %b NX PX %llu" : "SET %b%b %b PX %llu",
                               rc->prefix, rc->plen, key, klen, val, vlen,
                               (unsigned long long)clamp_ttl(ttl_ms));
    return rreq_with(q, cmd, n);
}

struct rreq *rreq_incr(struct redis_common *rc, const char *key, size_t klen, long long delta,
                       uint64_t ttl_ms, store_cb cb, void *arg)
{
    struct rreq *q = rreq_new(rc, RREQ_INCR, key, klen, cb, arg);
    char *cmd = NULL;
    return q ? rreq_with(q, cmd,
                         redisFormatCommand(&cmd, "EVAL %s 1 %b%b %lld %llu", incr_script,
                                            rc->prefix, rc->plen, key, klen, delta,
                                            (unsigned long long)clamp_ttl(ttl_ms)))
             : NULL;
}

struct rreq *rreq_del(struct redis_common *rc, const char *key, size_t klen, store_cb cb, void *arg)
{
    struct rreq *q = rreq_new(rc, RREQ_DEL, key, klen, cb, arg);
    char *cmd = NULL;
    return q ? rreq_with(q, cmd,
                         redisFormatCommand(&cmd, "DEL %b%b", rc->prefix, rc->plen, key, klen))
             : NULL;
}

struct rreq *rreq_wait(struct redis_common *rc, const char *key, size_t klen, int replicas,
                       int timeout_ms, store_cb cb, void *arg)
{
    struct rreq *q = rreq_new(rc, RREQ_WAIT, key, klen, cb, arg);
    char *cmd = NULL;
    return q ? rreq_with(q, cmd, redisFormatCommand(&cmd, "WAIT %d %d", replicas, timeout_ms))
             : NULL;
}

void rreq_free(struct rreq *q)
{
    if (q) {
        redisFreeCommand(q->cmd);
        free(q);
    }
}

int redis_reply_is(const redisReply *r, const char *word)
{
    size_t n = strlen(word);
    return r && r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, word, n) == 0 &&
           (r->str[n] == ' ' || r->str[n] == '\0');
}

/* ------------------------------------------------------------- replies */

static const char *error_text(enum rreq_kind kind, const redisReply *r)
{
    if (redis_reply_is(r, "READONLY") || redis_reply_is(r, "MASTERDOWN"))
        return redis_err_failover;
    if (redis_reply_is(r, "CLUSTERDOWN"))
        return redis_err_cluster_down;
    if (kind == RREQ_INCR && strstr(r->str, "not an integer"))
        return err_not_int;
    if (kind == RREQ_INCR && strstr(r->str, "overflow"))
        return err_overflow;
    return r->str;
}

/* Turn a hiredis reply (NULL: failed, why says why) into a store reply. */
static struct store_reply translate(enum rreq_kind kind, const redisReply *r, const char *why)
{
    struct store_reply out = {.status = STORE_ERROR, .err = err_reply};
    long long n;

    if (!r) {
        out.err = why;
    } else if (r->type == REDIS_REPLY_ERROR) {
        out.err = error_text(kind, r);
    } else {
        switch (kind) {
        case RREQ_GET:
            if (r->type == REDIS_REPLY_STRING)
                out = (struct store_reply){.status = STORE_OK, .value = r->str, .len = r->len};
            else if (r->type == REDIS_REPLY_NIL)
                out = (struct store_reply){.status = STORE_NOT_FOUND};
            break;
        case RREQ_SET:
        case RREQ_ADD:
            if (r->type == REDIS_REPLY_STATUS)
                out = (struct store_reply){.status = STORE_OK};
            else if (r->type == REDIS_REPLY_NIL && kind == RREQ_ADD)
                out = (struct store_reply){.status = STORE_EXISTS};
            break;
        case RREQ_INCR:
            if (r->type == REDIS_REPLY_STRING && store_parse_ll(r->str, r->len, &n) == 0)
                out = (struct store_reply){.status = STORE_OK, .number = n};
            break;
        case RREQ_DEL:
            if (r->type == REDIS_REPLY_INTEGER)
                out = (struct store_reply){.status = r->integer > 0 ? STORE_OK : STORE_NOT_FOUND};
            break;
        case RREQ_WAIT:
            if (r->type == REDIS_REPLY_INTEGER)
                out = (struct store_reply){.status = STORE_OK, .number = r->integer};
            break;
        }
    }
    return out;
}

void rreq_finish(struct rreq *q, const redisReply *r, const char *why)
{
    /* Redis at maxmemory with a policy that cannot make room refuses
     * writes; /healthz says so until a write goes through again. */
    if (r && q->kind != RREQ_GET && q->kind != RREQ_DEL && q->kind != RREQ_WAIT)
        q->rc->refusing_writes =
            r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, "OOM", 3) == 0;
    struct store_reply out = translate(q->kind, r, why);
    if (out.status == STORE_ERROR) {
        /* By cause: a reply error, or what the connection said (static). */
        const char *cause = !r ? out.err
                            : out.err == redis_err_failover || out.err == redis_err_cluster_down
                                ? out.err
                                : "reply";
        metrics_inc("wxgate_store_errors_total", "error", cause, NULL);
    }
    store_cb cb = q->cb;
    void *arg = q->arg;
    /* The reply (and so out.value) lives until the caller returns. */
    cb(&out, arg);
    rreq_free(q);
}

/* ---- the data calls of every back end (store_redis.h) ---- */

static struct redis_common *common_of(store_conn_t *sc) { return (struct redis_common *)sc->store; }

static int send_built(store_conn_t *sc, struct rreq *q)
{
    return q ? common_of(sc)->send(sc, q) : -1;
}

int redis_op_get(store_conn_t *sc, const char *key, size_t klen, store_cb cb, void *arg)
{
    return send_built(sc, rreq_get(common_of(sc), key, klen, cb, arg));
}

int redis_op_set(store_conn_t *sc, const char *key, size_t klen, const char *val, size_t vlen,
                 uint64_t ttl_ms, store_cb cb, void *arg)
{
    return send_built(sc, rreq_set(common_of(sc), key, klen, val, vlen, ttl_ms, 0, cb, arg));
}

int redis_op_add(store_conn_t *sc, const char *key, size_t klen, const char *val, size_t vlen,
                 uint64_t ttl_ms, int evictable, store_cb cb, void *arg)
{
    (void)evictable;
    return send_built(sc, rreq_set(common_of(sc), key, klen, val, vlen, ttl_ms, 1, cb, arg));
}

int redis_op_incr(store_conn_t *sc, const char *key, size_t klen, long long delta, uint64_t ttl_ms,
                  store_cb cb, void *arg)
{
    return send_built(sc, rreq_incr(common_of(sc), key, klen, delta, ttl_ms, cb, arg));
}

int redis_op_del(store_conn_t *sc, const char *key, size_t klen, store_cb cb, void *arg)
{
    return send_built(sc, rreq_del(common_of(sc), key, klen, cb, arg));
}

int redis_op_sync(store_conn_t *sc, const char *key, size_t klen, store_cb cb, void *arg)
{
    struct redis_common *rc = common_of(sc);
    int replicas = rc->kind == REDIS_SINGLE ? 0 : 1;
    int ms = replicas ? (rc->opts.timeout_ms / 2 > 0 ? rc->opts.timeout_ms / 2 : 1) : 0;
    return send_built(sc, rreq_wait(rc, key, klen, replicas, ms, cb, arg));
}
