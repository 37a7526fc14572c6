/* One connection to one Redis node (see redis_conn.h).
 *
 * Command records: whichever comes first, the reply or the record's timer,
 * answers the owner and sets cmd->done; the other one then only cleans up.
 * A record that hiredis still holds is freed by hiredis' callback (with the
 * late reply, or with a NULL reply when the context goes away), never
 * before. */
#include "redis_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include "metrics.h"

#define BACKOFF_MIN_MS      100
#define BACKOFF_MAX_MS      5000
#define DEAD_AFTER_TIMEOUTS 5 /* silence, in command timeouts, before a drop */
#define DEAD_AFTER_MIN_MS   1000
#define MAX_INFLIGHT        10000 /* commands one connection may have in hiredis */
#define MAX_HOSTS           4

const char rconn_err_unavailable[] = "redis unavailable";
const char rconn_err_timeout[] = "timeout";
const char rconn_err_overloaded[] = "redis overloaded";
const char rconn_err_not_primary[] = "redis node is not the primary";
const char rconn_err_detached[] = "detached";
static const char err_auth[] = "redis auth failed";
static const char err_noauth[] = "redis needs a password (NOAUTH)";
static const char err_select[] = "redis select failed (no such database?)";

enum conn_state {
    CONN_IDLE,       /* no target yet */
    CONN_DOWN,       /* no connection; retry_ev will try again */
    CONN_CONNECTING, /* connecting, or the handshake is not answered yet */
    CONN_READY,      /* PING answered */
};

/* One command of one owner. Lives until both hiredis is done with it
 * (in_redis == 0) and its timer cannot fire any more. */
struct cmd {
    struct cmd *prev, *next; /* in conn->cmds */
    struct rconn *conn;      /* NULL once cut loose */
    struct event timer;      /* the timeout, or the deferred fail-fast */
    rconn_done done_cb;
    void *arg;
    const char *fail;      /* set: fail fast with this instead of sending */
    unsigned done : 1;     /* the owner has had its answer */
    unsigned in_redis : 1; /* hiredis holds a callback for this record */
};

struct rconn {
    struct event_base *evbase;
    const struct rconn_opts *o;
    const struct rconn_events *ev;
    void *owner;
    redisAsyncContext *ac; /* NULL unless CONNECTING or READY */
    enum conn_state state;
    int stalled;          /* a command timed out and nothing came since */
    const char *fail_err; /* what commands hear while DOWN */
    char hosts[MAX_HOSTS][RCONN_HOST_MAX];
    int nhosts, host_idx, port;
    char addr[RCONN_ADDR_MAX]; /* the target, for metrics and /healthz */
    int counted;               /* counted in wxgate_store_connections */
    int backoff_ms;
    struct event *retry_ev;       /* reconnect after the backoff */
    struct event *connect_ev;     /* connect_timeout_ms for reaching READY */
    const struct timeval *cmd_tv; /* timeout_ms as a libevent common timeout */
    struct cmd *cmds;             /* every live record */
    size_t inflight;              /* records with in_redis set */
    uint64_t progress_ms;         /* last reply, or when inflight left 0 */
};

static void conn_connect(struct rconn *c);

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval ms_tv(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* wxgate_store_connections{node}: worker connections READY to each node. */
static void count_ready(struct rconn *c, int ready)
{
    if (c->counted == ready)
        return;
    c->counted = ready;
    metrics_add("wxgate_store_connections", ready ? 1.0 : -1.0, "node", c->addr, NULL);
}

/* ------------------------------------------------------------ records */

static void on_cmd_timer(evutil_socket_t fd, short what, void *arg);

static struct cmd *cmd_new(struct rconn *c, rconn_done done, void *arg)
{
    struct cmd *cmd = calloc(1, sizeof *cmd);
    if (!cmd)
        return NULL;
    cmd->conn = c;
    cmd->done_cb = done;
    cmd->arg = arg;
    evtimer_assign(&cmd->timer, c->evbase, on_cmd_timer, cmd);
    cmd->next = c->cmds;
    if (c->cmds)
        c->cmds->prev = cmd;
    c->cmds = cmd;
    return cmd;
}

/* Only once hiredis no longer holds the record; stops its timer. */
static void cmd_free(struct cmd *cmd)
{
    struct rconn *c = cmd->conn;
    event_del(&cmd->timer);
    if (c) {
        if (cmd->prev)
            cmd->prev->next = cmd->next;
        else
            c->cmds = cmd->next;
        if (cmd->next)
            cmd->next->prev = cmd->prev;
    }
    free(cmd);
}

/* Answer why on the next loop turn, as every answer comes: never inside
 * the call. */
static int cmd_fail_soon(struct cmd *cmd, const char *why)
{
    cmd->fail = why;
    event_active(&cmd->timer, EV_TIMEOUT, 1);
    return 0;
}

/* hiredis' callback for a command: the reply, a late reply after the
 * timeout (ignored), or NULL when the context is freed. */
static void on_cmd_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct cmd *cmd = privdata;
    struct rconn *c = cmd->conn;
    (void)ac;

    cmd->in_redis = 0;
    if (!c) { /* cut loose: the owner is gone */
        free(cmd);
        return;
    }
    c->inflight--;
    if (reply) {
        c->progress_ms = now_ms();
        c->stalled = 0;
    }
    if (cmd->done) {
        cmd_free(cmd);
        return;
    }
    rconn_done done = cmd->done_cb;
    void *arg = cmd->arg;
    const char *why = c->fail_err;
    cmd_free(cmd);
    done(reply, reply ? NULL : why, arg);
}

static void conn_drop(struct rconn *c, const char *why);

/* The timer of a record: a fail-fast answer, or the command's timeout. A
 * timeout after a long silence also drops the connection, which makes
 * hiredis hand back (and so free) every record it holds, this one too:
 * the record is not touched after that. */
static void on_cmd_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cmd *cmd = arg;
    struct rconn *c = cmd->conn;
    rconn_done done = cmd->done_cb;
    void *cbarg = cmd->arg;
    const char *why = cmd->fail ? cmd->fail : rconn_err_timeout;
    (void)fd;
    (void)what;

    cmd->done = 1;
    if (!cmd->in_redis) {
        cmd_free(cmd);
    } else {
        uint64_t dead_ms = (uint64_t)c->o->timeout_ms * DEAD_AFTER_TIMEOUTS;
        if (dead_ms < DEAD_AFTER_MIN_MS)
            dead_ms = DEAD_AFTER_MIN_MS;
        c->stalled = 1;
        if (now_ms() - c->progress_ms >= dead_ms)
            conn_drop(c, rconn_err_unavailable);
    }
    done(NULL, why, cbarg);
}

int rconn_send(struct rconn *c, const char *fmt, size_t len, rconn_done done, void *arg)
{
    struct cmd *cmd = cmd_new(c, done, arg);
    if (!cmd)
        return -1;
    if (!c->ac || (c->state != CONN_CONNECTING && c->state != CONN_READY))
        return cmd_fail_soon(cmd, c->fail_err);
    if (c->inflight >= MAX_INFLIGHT)
        return cmd_fail_soon(cmd, rconn_err_overloaded);
    if (redisAsyncFormattedCommand(c->ac, on_cmd_reply, cmd, fmt, len) != REDIS_OK)
        return cmd_fail_soon(cmd, rconn_err_unavailable);
    cmd->in_redis = 1;
    if (c->inflight++ == 0)
        c->progress_ms = now_ms();
    evtimer_add(&cmd->timer, c->cmd_tv);
    return 0;
}

/* ---------------------------------------------------------- connection */

/* Go DOWN, tell the owner, and schedule the next attempt: after the
 * backoff, on the next address of the target. The hiredis context is the
 * caller's business. */
static void conn_down(struct rconn *c, const char *why)
{
    struct timeval tv = ms_tv(c->backoff_ms);
    c->ac = NULL;
    c->state = CONN_DOWN;
    c->stalled = 0;
    c->fail_err = why;
    c->host_idx = (c->host_idx + 1) % c->nhosts;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    count_ready(c, 0);
    event_del(c->connect_ev);
    evtimer_add(c->retry_ev, &tv);
    if (c->ev && c->ev->down)
        c->ev->down(c, c->owner, why);
}

/* Close the context ourselves. Freeing it runs every pending callback with
 * a NULL reply (now, or right after the hiredis callback we may be in);
 * ac->data = NULL tells the context's own callbacks that this connection
 * has moved on. */
static void close_context(redisAsyncContext *ac)
{
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}

static void conn_drop(struct rconn *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    conn_down(c, why);
    close_context(ac);
}

void rconn_drop(struct rconn *c, const char *why)
{
    if (c->state == CONN_CONNECTING || c->state == CONN_READY)
        conn_drop(c, why);
}

static void conn_ready(struct rconn *c)
{
    c->state = CONN_READY;
    c->stalled = 0;
    c->backoff_ms = BACKOFF_MIN_MS;
    count_ready(c, 1);
    event_del(c->connect_ev);
    if (c->ev && c->ev->ready)
        c->ev->ready(c, c->owner);
}

/* Steps of the handshake, passed as privdata (static, so they outlive any
 * connection). */
static const char step_auth[] = "auth", step_select[] = "select", step_role[] = "role",
                  step_ping[] = "ping";

/* ROLE's first element is "master" on a primary. */
static int is_primary(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
           r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct rconn *c = ac->data;
    redisReply *r = reply;
    if (!c || !r)
        return;
    c->progress_ms = now_ms();
    if (r->type == REDIS_REPLY_ERROR) {
        const char *why = strncmp(r->str, "NOAUTH", 6) == 0 ? err_noauth
                          : privdata == step_auth           ? err_auth
                          : privdata == step_select         ? err_select
                                                            : rconn_err_unavailable;
        conn_drop(c, why);
        return;
    }
    if (privdata == step_role && !is_primary(r)) {
        metrics_inc("wxgate_store_errors_total", "error", rconn_err_not_primary, NULL);
        conn_drop(c, rconn_err_not_primary);
        return;
    }
    if (privdata == step_ping)
        conn_ready(c);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rconn *c = ac->data;
    if (!c)
        return;
    if (status != REDIS_OK) {
        conn_down(c, rconn_err_unavailable); /* hiredis frees the context next */
        return;
    }
    redisEnableKeepAlive((redisContext *)&ac->c);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rconn *c = ac->data;
    (void)status;
    if (c && c->ac == ac)
        conn_down(c, rconn_err_unavailable);
}

/* Not READY within connect_timeout_ms: the node is unreachable or stuck. */
static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_drop(arg, rconn_err_unavailable);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_connect(arg);
}

/* Start a connection and queue the handshake behind which the owner's
 * commands are pipelined. hiredis 0.14 connects without blocking; the
 * address is numeric, so there is no DNS lookup here. */
static void conn_connect(struct rconn *c)
{
    const struct rconn_opts *o = c->o;
    redisAsyncContext *ac = redisAsyncConnect(c->hosts[c->host_idx], c->port);
    if (!ac || ac->err || redisLibeventAttach(ac, c->evbase) != REDIS_OK) {
        if (ac)
            redisAsyncFree(ac);
        conn_down(c, rconn_err_unavailable);
        return;
    }
    ac->data = c;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->state = CONN_CONNECTING;
    c->fail_err = rconn_err_unavailable;
    c->progress_ms = now_ms();

    if (o->password && o->user)
        redisAsyncCommand(ac, on_setup_reply, (void *)step_auth, "AUTH %s %s", o->user,
                          o->password);
    else if (o->password)
        redisAsyncCommand(ac, on_setup_reply, (void *)step_auth, "AUTH %s", o->password);
    if (o->db)
        redisAsyncCommand(ac, on_setup_reply, (void *)step_select, "SELECT %d", o->db);
    if (o->check_primary)
        redisAsyncCommand(ac, on_setup_reply, (void *)step_role, "ROLE");
    redisAsyncCommand(ac, on_setup_reply, (void *)step_ping, "PING");

    struct timeval tv = ms_tv(o->connect_timeout_ms);
    evtimer_add(c->connect_ev, &tv);
}

void rconn_target(struct rconn *c, const char *const *hosts, int nhosts, int port)
{
    int same = c->state != CONN_IDLE && c->port == port && c->nhosts == nhosts;
    for (int i = 0; same && i < nhosts; i++)
        same = strcmp(c->hosts[i], hosts[i]) == 0;
    if (same) {
        if (c->state == CONN_DOWN) { /* the owner knows it is worth trying now */
            event_del(c->retry_ev);
            conn_connect(c);
        }
        return;
    }
    redisAsyncContext *ac = c->ac;
    if (ac) { /* commands on the old target fail; the owner hears nothing */
        const struct rconn_events *ev = c->ev;
        c->ev = NULL;
        conn_down(c, rconn_err_unavailable);
        c->ev = ev;
        close_context(ac);
    }
    count_ready(c, 0);
    event_del(c->retry_ev);
    c->nhosts = nhosts > MAX_HOSTS ? MAX_HOSTS : nhosts;
    for (int i = 0; i < c->nhosts; i++)
        snprintf(c->hosts[i], sizeof c->hosts[i], "%s", hosts[i]);
    c->host_idx = 0;
    c->port = port;
    snprintf(c->addr, sizeof c->addr, strchr(hosts[0], ':') ? "[%s]:%d" : "%s:%d", hosts[0], port);
    c->backoff_ms = BACKOFF_MIN_MS;
    conn_connect(c);
}

struct rconn *rconn_new(struct event_base *base, const struct rconn_opts *o,
                        const struct rconn_events *ev, void *owner)
{
    struct rconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->evbase = base;
    c->o = o;
    c->ev = ev;
    c->owner = owner;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->fail_err = rconn_err_unavailable;
    struct timeval tv = ms_tv(o->timeout_ms);
    c->cmd_tv = event_base_init_common_timeout(base, &tv);
    c->retry_ev = evtimer_new(base, on_retry, c);
    c->connect_ev = evtimer_new(base, on_connect_timeout, c);
    if (!c->cmd_tv || !c->retry_ev || !c->connect_ev) {
        if (c->retry_ev)
            event_free(c->retry_ev);
        if (c->connect_ev)
            event_free(c->connect_ev);
        free(c);
        return NULL;
    }
    return c;
}

int rconn_healthy(const struct rconn *c) { return c->state == CONN_READY && !c->stalled; }

const char *rconn_addr(const struct rconn *c) { return c->addr; }

void rconn_free(struct rconn *c)
{
    struct cmd *cmd = c->cmds, *next;
    for (; cmd; cmd = next) {
        next = cmd->next;
        event_del(&cmd->timer);
        cmd->conn = NULL;
        if (!cmd->done)
            cmd->done_cb(NULL, rconn_err_detached, cmd->arg);
        cmd->done = 1;
        if (!cmd->in_redis)
            free(cmd);
    }
    c->cmds = NULL;
    count_ready(c, 0);
    close_context(c->ac);
    event_free(c->retry_ev);
    event_free(c->connect_ev);
    free(c);
}
