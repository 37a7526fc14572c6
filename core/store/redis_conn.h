/* One connection to one Redis node, on one worker's event loop: the layer
 * the three Redis back ends (store_redis.c, store_redis_sentinel.c,
 * store_redis_cluster.c) share. It owns what hiredis 0.14 does not do:
 *
 * - Timeouts. Every command has a record with its own timer; the reply or
 *   the timer, whichever comes first, answers the owner, exactly once.
 * - The handshake: AUTH and SELECT when configured, ROLE when the node must
 *   be a primary (a connection to a replica is dropped: nothing is ever
 *   written to one), then PING; the PING's answer makes the connection READY.
 *   Commands sent while connecting are pipelined behind the handshake.
 * - Reconnecting. A dropped or failed connection goes DOWN, tells its owner
 *   (who may point it elsewhere: a new primary), and tries its target again
 *   after a backoff (100 ms doubling to 5 s). While DOWN, commands fail fast.
 * - A connection that stays silent while commands wait on it is dropped
 *   after a few command timeouts' worth of silence.
 *
 * Addresses are numeric (resolved when the store url is read, or given by
 * Redis itself), so no connect ever waits for DNS. */
#ifndef WX_REDIS_CONN_H
#define WX_REDIS_CONN_H
#include <hiredis/hiredis.h>
#include <stddef.h>

struct event_base;
struct rconn;

#define RCONN_HOST_MAX 64 /* a numeric address (IPv6 included) */
#define RCONN_ADDR_MAX 80 /* "host:port" */

/* What every connection of one store shares; read-only once the store is open. */
struct rconn_opts {
    const char *user, *password; /* AUTH [user] password, when password is set */
    int db;                      /* SELECT, when not 0 */
    int timeout_ms, connect_timeout_ms;
    int check_primary; /* ROLE must answer "master", or the connection is dropped */
};

/* What the owner hears about its connection (either may be NULL). down
 * runs when a connection is lost or could not be made, with the reason. */
struct rconn_events {
    void (*ready)(struct rconn *c, void *owner);
    void (*down)(struct rconn *c, void *owner, const char *why);
};

/* A command's answer: the reply, or NULL and why it failed. Runs exactly
 * once, on the loop, never inside rconn_send. When the connection is freed
 * first, it runs from rconn_free with why == rconn_err_detached: the owner
 * then frees arg and answers nobody. */
typedef void (*rconn_done)(const redisReply *reply, const char *why, void *arg);

/* Reasons a command fails (static strings; compare by pointer or text). */
extern const char rconn_err_unavailable[], rconn_err_timeout[], rconn_err_overloaded[],
    rconn_err_not_primary[], rconn_err_detached[];

/* A connection with no target yet (it connects on rconn_target). NULL when
 * out of memory. */
struct rconn *rconn_new(struct event_base *base, const struct rconn_opts *o,
                        const struct rconn_events *ev, void *owner);
/* Points the connection at port on hosts[0..nhosts) (numeric, tried in
 * turn) and connects now. An existing connection to the same target is kept;
 * one to another target is dropped first (its commands fail). */
void rconn_target(struct rconn *c, const char *const *hosts, int nhosts, int port);
/* Sends a formatted command (RESP, as redisFormatCommand makes it; copied).
 * 0, or -1 when no record could be allocated (done will not run). */
int rconn_send(struct rconn *c, const char *cmd, size_t len, rconn_done done, void *arg);
/* Closes the connection now (its commands fail with why) and reconnects
 * after the backoff. */
void rconn_drop(struct rconn *c, const char *why);
/* READY and not stalled. */
int rconn_healthy(const struct rconn *c);
/* "host:port" of the target ("" before rconn_target). */
const char *rconn_addr(const struct rconn *c);
/* Commands not answered yet hear rconn_err_detached (inside this call);
 * nothing runs after it. Not from inside a callback of this connection. */
void rconn_free(struct rconn *c);

#endif
