/* The Redis store behind Sentinel (redis-sentinel://): a primary with
 * replicas, watched by sentinels that promote a replica when the primary
 * fails. hiredis 0.14 knows nothing of Sentinel; this file does, per worker,
 * on the worker's own loop:
 *
 * - Asking. SENTINEL get-master-addr-by-name on one sentinel after another
 *   until one answers; the answer is where the worker's data connection
 *   (redis_conn.h) goes. The data connection checks with ROLE that the node
 *   is the primary before anything is sent on it (commands queued behind the
 *   handshake fail if it is not), so nothing is ever written to a replica.
 *   The worker asks again when the data connection is lost or refused, when
 *   a write meets READONLY (a demoted primary), and every few seconds.
 * - Following. A second connection to one sentinel subscribes to
 *   +switch-master: the new primary is taken at once, without waiting for
 *   the next failed command. A lost subscription moves to the next sentinel.
 *
 * Commands in flight when the primary dies fail with "redis unavailable"
 * (the user gets a "try again" page); commands issued while no primary is
 * known fail fast the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include "metrics.h"
#include "store_redis.h"

#define ASK_GAP_MS   200  /* at most one round of asking this often */
#define ASK_EVERY_MS 5000 /* and at least this often */
#define SUB_RETRY_MS 500  /* before subscribing again after a loss */

struct sentinel_store {
    struct redis_common rc;
    struct rconn_opts sentinel_opts; /* sentinels: no AUTH, no SELECT, no ROLE */
    const char *sentinels[REDIS_MAX_HOSTS * 4];
    int sentinel_ports[REDIS_MAX_HOSTS * 4];
    int nsentinels;
};

/* One worker's view of the primary. */
struct sentinel_conn {
    store_conn_t base;
    struct sentinel_store *ss;
    struct event_base *evbase;
    struct rconn *data;  /* to the primary */
    struct rconn *asker; /* to the sentinel being asked */
    int ask_idx;
    int asking; /* a question is out */
    int tries;  /* sentinels asked in this round */
    uint64_t last_ask_ms;
    struct event *ask_ev;
    redisAsyncContext *sub; /* SUBSCRIBE +switch-master */
    int sub_idx;
    int subscribed;
    struct event *sub_ev; /* subscribe again, or give up connecting */
    char primary[RCONN_HOST_MAX];
    int primary_port; /* 0: no primary known yet */
};

static void ask_soon(struct sentinel_conn *c);

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval ms_tv(uint64_t ms)
{
    return (struct timeval){.tv_sec = (time_t)(ms / 1000), .tv_usec = (long)(ms % 1000) * 1000};
}

/* Point the data connection at host:port, the primary the sentinels name. */
static void follow(struct sentinel_conn *c, const char *host, int port)
{
    if (strlen(host) >= sizeof c->primary || port <= 0 || port > 65535)
        return;
    if (c->primary_port && (port != c->primary_port || strcmp(host, c->primary) != 0))
        metrics_inc("wxgate_store_failovers_total", NULL);
    snprintf(c->primary, sizeof c->primary, "%s", host);
    c->primary_port = port;
    const char *hosts[1] = {c->primary};
    rconn_target(c->data, hosts, 1, port);
}

/* ------------------------------------------------------------- asking */

static void next_sentinel(struct sentinel_conn *c)
{
    struct sentinel_store *ss = c->ss;
    c->ask_idx = (c->ask_idx + 1) % ss->nsentinels;
    const char *host[1] = {ss->sentinels[c->ask_idx]};
    rconn_target(c->asker, host, 1, ss->sentinel_ports[c->ask_idx]);
}

static void ask(struct sentinel_conn *c);

/* The answer: [ip, port], nil (the sentinel does not know the name), or an
 * error. Anything but an address moves on to the next sentinel. */
static void on_master_addr(const redisReply *r, const char *why, void *arg)
{
    struct sentinel_conn *c = arg;
    if (why == rconn_err_detached)
        return;
    c->asking = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
        c->tries = 0;
        follow(c, r->element[0]->str, atoi(r->element[1]->str));
        return;
    }
    metrics_inc("wxgate_store_errors_total", "error", "sentinel did not answer", NULL);
    next_sentinel(c);
    if (++c->tries < c->ss->nsentinels)
        ask(c);
    else {
        c->tries = 0;
        ask_soon(c);
    }
}

static void ask(struct sentinel_conn *c)
{
    struct sentinel_store *ss = c->ss;
    char *cmd = NULL;
    int n = redisFormatCommand(&cmd, "SENTINEL get-master-addr-by-name %s", ss->rc.master);
    c->last_ask_ms = now_ms();
    if (n < 0)
        return;
    c->asking = 1;
    if (rconn_send(c->asker, cmd, (size_t)n, on_master_addr, c) != 0)
        c->asking = 0;
    redisFreeCommand(cmd);
}

static void on_ask_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sentinel_conn *c = arg;
    (void)fd;
    (void)what;
    if (!c->asking)
        ask(c);
    struct timeval tv = ms_tv(ASK_EVERY_MS);
    evtimer_add(c->ask_ev, &tv);
}

/* Ask again, but not more often than every ASK_GAP_MS. */
static void ask_soon(struct sentinel_conn *c)
{
    if (c->asking)
        return;
    uint64_t since = now_ms() - c->last_ask_ms;
    struct timeval tv = ms_tv(since >= ASK_GAP_MS ? 0 : ASK_GAP_MS - since);
    evtimer_add(c->ask_ev, &tv);
}

/* The primary is gone or is no longer one: ask who is. */
static void on_data_down(struct rconn *rc, void *owner, const char *why)
{
    (void)rc;
    (void)why;
    ask_soon(owner);
}

static const struct rconn_events data_events = {.down = on_data_down};

/* ---------------------------------------------------------- following */

static void subscribe(struct sentinel_conn *c);

static void sub_lost(struct sentinel_conn *c)
{
    struct timeval tv = ms_tv(SUB_RETRY_MS);
    c->sub = NULL;
    c->subscribed = 0;
    c->sub_idx = (c->sub_idx + 1) % c->ss->nsentinels;
    evtimer_add(c->sub_ev, &tv);
}

/* "NAME OLD-IP OLD-PORT NEW-IP NEW-PORT" */
static void on_switch_message(struct sentinel_conn *c, const char *msg)
{
    char name[130], old_ip[RCONN_HOST_MAX], new_ip[RCONN_HOST_MAX];
    int old_port, new_port;
    if (sscanf(msg, "%129s %63s %d %63s %d", name, old_ip, &old_port, new_ip, &new_port) == 5 &&
        strcmp(name, c->ss->rc.master) == 0)
        follow(c, new_ip, new_port);
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sentinel_conn *c = ac->data;
    redisReply *r = reply;
    (void)privdata;
    if (!c || !r)
        return; /* the context is going away; its disconnect callback tells */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(r->element[0]->str, "subscribe") == 0) {
        c->subscribed = 1;
        event_del(c->sub_ev);
        ask_soon(c); /* a switch may have happened while we were not listening */
    } else if (strcmp(r->element[0]->str, "message") == 0 &&
               r->element[2]->type == REDIS_REPLY_STRING) {
        on_switch_message(c, r->element[2]->str);
    }
}

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
    struct sentinel_conn *c = ac->data;
    if (c && status != REDIS_OK)
        sub_lost(c); /* hiredis frees the context */
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
    struct sentinel_conn *c = ac->data;
    (void)status;
    if (c && c->sub == ac)
        sub_lost(c);
}

/* Not subscribed in time (a sentinel that does not answer): next one. */
static void on_sub_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sentinel_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->sub) {
        redisAsyncContext *ac = c->sub;
        ac->data = NULL;
        redisAsyncFree(ac);
        sub_lost(c);
        return;
    }
    subscribe(c);
}

static void subscribe(struct sentinel_conn *c)
{
    struct sentinel_store *ss = c->ss;
    redisAsyncContext *ac =
        redisAsyncConnect(ss->sentinels[c->sub_idx], ss->sentinel_ports[c->sub_idx]);
    if (!ac || ac->err || redisLibeventAttach(ac, c->evbase) != REDIS_OK) {
        if (ac)
            redisAsyncFree(ac);
        sub_lost(c);
        return;
    }
    ac->data = c;
    redisAsyncSetConnectCallback(ac, on_sub_connect);
    redisAsyncSetDisconnectCallback(ac, on_sub_disconnect);
    redisAsyncCommand(ac, on_sub_reply, NULL, "SUBSCRIBE +switch-master");
    c->sub = ac;
    struct timeval tv = ms_tv((uint64_t)ss->sentinel_opts.connect_timeout_ms);
    evtimer_add(c->sub_ev, &tv);
}

/* ------------------------------------------------------------ commands */

/* A write that meets READONLY went to a primary that has been demoted:
 * drop the connection, which makes the worker ask for the new one. */
static void on_done(const redisReply *reply, const char *why, void *arg)
{
    struct rreq *q = arg;
    struct sentinel_conn *c = q->owner;
    if (why == rconn_err_detached) {
        rreq_free(q);
        return;
    }
    if (redis_reply_is(reply, "READONLY") || redis_reply_is(reply, "MASTERDOWN")) {
        rreq_finish(q, NULL, redis_err_failover);
        rconn_drop(c->data, redis_err_failover);
        return;
    }
    rreq_finish(q, reply, why);
}

static int send_req(store_conn_t *sc, struct rreq *q)
{
    struct sentinel_conn *c = (struct sentinel_conn *)sc;
    if (!q)
        return -1;
    q->owner = c;
    if (rconn_send(c->data, q->cmd, q->len, on_done, q) != 0) {
        rreq_free(q);
        return -1;
    }
    return 0;
}

static int sentinel_healthy(store_conn_t *sc)
{
    return rconn_healthy(((struct sentinel_conn *)sc)->data);
}

static const char *sentinel_node(store_conn_t *sc, char *buf, size_t n)
{
    struct sentinel_conn *c = (struct sentinel_conn *)sc;
    snprintf(buf, n, "%s", c->primary_port ? rconn_addr(c->data) : "");
    return buf;
}

/* ---------------------------------------------------------- lifecycle */

static void sentinel_detach(store_conn_t *sc)
{
    struct sentinel_conn *c = (struct sentinel_conn *)sc;
    if (c->sub) {
        c->sub->data = NULL;
        redisAsyncFree(c->sub);
    }
    if (c->data)
        rconn_free(c->data);
    if (c->asker)
        rconn_free(c->asker);
    if (c->ask_ev)
        event_free(c->ask_ev);
    if (c->sub_ev)
        event_free(c->sub_ev);
    free(c);
}

/* Asks the sentinels and subscribes at once (without blocking); until a
 * primary is known, calls fail fast. */
static store_conn_t *sentinel_attach(store_t *s, struct event_base *base)
{
    struct sentinel_store *ss = (struct sentinel_store *)s;
    struct sentinel_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base.store = s;
    c->ss = ss;
    c->evbase = base;
    int first = (ss->rc.next_conn++) % ss->nsentinels; /* spread the workers */
    c->ask_idx = first;
    c->sub_idx = first;
    c->data = rconn_new(base, &ss->rc.opts, &data_events, c);
    c->asker = rconn_new(base, &ss->sentinel_opts, NULL, c);
    c->ask_ev = evtimer_new(base, on_ask_timer, c);
    c->sub_ev = evtimer_new(base, on_sub_timer, c);
    if (!c->data || !c->asker || !c->ask_ev || !c->sub_ev) {
        sentinel_detach(&c->base);
        return NULL;
    }
    const char *host[1] = {ss->sentinels[first]};
    rconn_target(c->asker, host, 1, ss->sentinel_ports[first]);
    ask(c);
    struct timeval tv = ms_tv(ASK_EVERY_MS);
    evtimer_add(c->ask_ev, &tv);
    subscribe(c);
    return &c->base;
}

static const struct store_ops sentinel_ops = {
    .close = redis_close,
    .attach = sentinel_attach,
    .detach = sentinel_detach,
    .get = redis_op_get,
    .set = redis_op_set,
    .add = redis_op_add,
    .incr = redis_op_incr,
    .del = redis_op_del,
    .sync = redis_op_sync,
    .healthy = sentinel_healthy,
    .warning = redis_warning,
    .node = sentinel_node,
};

store_t *store_redis_sentinel_open(const char *url, const char **err)
{
    struct sentinel_store *ss = calloc(1, sizeof *ss);
    const char *why = ss ? redis_url_parse(&ss->rc, url, REDIS_SENTINEL) : "out of memory";
    if (!why) {
        ss->rc.base.ops = &sentinel_ops;
        ss->rc.send = send_req;
        ss->sentinel_opts.timeout_ms = ss->rc.opts.timeout_ms;
        ss->sentinel_opts.connect_timeout_ms = ss->rc.opts.connect_timeout_ms;
        for (int i = 0; i < ss->rc.nhosts; i++)
            for (int j = 0; j < ss->rc.hosts[i].naddrs; j++) {
                ss->sentinels[ss->nsentinels] = ss->rc.hosts[i].addrs[j];
                ss->sentinel_ports[ss->nsentinels++] = ss->rc.hosts[i].port;
            }
        return &ss->rc.base;
    }
    if (ss)
        redis_close(&ss->rc.base);
    if (err)
        *err = why;
    return NULL;
}
