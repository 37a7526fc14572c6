/* The Redis store on one node (redis://): the store.h interface over one
 * Redis, so that several wxgate instances share login states, tickets,
 * tokens and wx.store data. Each worker has one connection (redis_conn.h)
 * on its own loop, which reconnects by itself; every store call is one
 * command (redis_request.c). The url is read by redis_url.c. */
#include <stdio.h>
#include <stdlib.h>

#include "store_redis.h"

struct single_conn {
    store_conn_t base;
    struct rconn *conn;
};

static void on_done(const redisReply *reply, const char *why, void *arg)
{
    if (why == rconn_err_detached)
        rreq_free(arg);
    else
        rreq_finish(arg, reply, why);
}

/* Sends q, which then answers its caller exactly once. */
static int send_req(store_conn_t *sc, struct rreq *q)
{
    struct single_conn *c = (struct single_conn *)sc;
    if (!q)
        return -1;
    if (rconn_send(c->conn, q->cmd, q->len, on_done, q) != 0) {
        rreq_free(q);
        return -1;
    }
    return 0;
}

static int single_healthy(store_conn_t *sc)
{
    return rconn_healthy(((struct single_conn *)sc)->conn);
}

static const char *single_node(store_conn_t *sc, char *buf, size_t n)
{
    snprintf(buf, n, "%s", rconn_addr(((struct single_conn *)sc)->conn));
    return buf;
}

/* Connects at once (without blocking); a Redis that is down now only means
 * the first calls fail fast until it is back. */
static store_conn_t *single_attach(store_t *s, struct event_base *base)
{
    struct redis_common *rc = (struct redis_common *)s;
    struct single_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base.store = s;
    c->conn = rconn_new(base, &rc->opts, NULL, c);
    if (!c->conn) {
        free(c);
        return NULL;
    }
    rconn_target(c->conn, rc->hosts[0].addr_ptrs, rc->hosts[0].naddrs, rc->hosts[0].port);
    return &c->base;
}

/* No callback runs after this. Not from inside a store callback of this
 * connection. */
static void single_detach(store_conn_t *sc)
{
    struct single_conn *c = (struct single_conn *)sc;
    rconn_free(c->conn);
    free(c);
}

/* The store_ops.close of every Redis back end: every connection must be
 * detached first. */
void redis_close(store_t *s)
{
    redis_common_free((struct redis_common *)s);
    free(s);
}

const char *redis_warning(store_conn_t *sc)
{
    return ((struct redis_common *)sc->store)->refusing_writes
               ? "redis refuses writes (maxmemory): logins cannot start; "
                 "set maxmemory-policy volatile-lru or raise maxmemory"
               : NULL;
}

static const struct store_ops single_ops = {
    .close = redis_close,
    .attach = single_attach,
    .detach = single_detach,
    .get = redis_op_get,
    .set = redis_op_set,
    .add = redis_op_add,
    .incr = redis_op_incr,
    .del = redis_op_del,
    .sync = redis_op_sync,
    .healthy = single_healthy,
    .warning = redis_warning,
    .node = single_node,
};

store_t *store_redis_open(const char *url, const char **err)
{
    struct redis_common *rc = calloc(1, sizeof *rc);
    const char *why = rc ? redis_url_parse(rc, url, REDIS_SINGLE) : "out of memory";
    if (!why) {
        rc->base.ops = &single_ops;
        rc->send = send_req;
        return &rc->base;
    }
    if (rc)
        redis_close(&rc->base);
    if (err)
        *err = why;
    return NULL;
}
