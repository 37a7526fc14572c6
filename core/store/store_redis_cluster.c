/* The Redis store on Redis Cluster (redis-cluster://): keys spread over
 * several primaries by hash slot. hiredis 0.14 knows nothing of Cluster;
 * this file does, per worker, on the worker's own loop:
 *
 * - The slot map. CLUSTER SLOTS, asked of a known node (the url's seeds at
 *   first), says which primary owns each of the 16384 slots. The worker keeps
 *   one connection (redis_conn.h) per node it has met, and connects to every
 *   primary of the map at once. Calls made before the first map arrives wait
 *   for it (up to timeout_ms).
 * - Routing. Every store call is one command on one key (redis_request.c),
 *   so it goes to the primary that owns the key's slot. Keys that belong
 *   together carry the same {hash tag} (login.h), and the one script (incr)
 *   touches its one key.
 * - Redirects. MOVED (the slot has a new owner) updates the map, asks for a
 *   fresh one and resends there; ASK (the slot is being migrated) resends to
 *   the target once, after ASKING. At most MAX_REDIRECTS per call.
 * - Failover. A lost node makes its calls fail ("redis unavailable": the
 *   user gets "try again") and the worker asks for the map again until a
 *   replica has been promoted; the map is also refreshed every few seconds.
 *
 * wxgate_store_redirects_total{kind} counts MOVED and ASK followed, and
 * wxgate_store_failovers_total maps whose set of primaries changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "metrics.h"
#include "store_redis.h"

#define MAX_NODES        64
#define MAX_REDIRECTS    5
#define REFRESH_GAP_MS   100  /* at most one map request this often */
#define REFRESH_EVERY_MS 5000 /* and at least this often */
#define WAIT_CHECK_MS    50   /* how often calls waiting for a map check their deadline */

static const char err_no_map[] = "redis cluster slot map unavailable";

struct node {
    char host[RCONN_HOST_MAX];
    int port;
    struct rconn *conn;
    int primary; /* owns slots in the current map */
};

struct cluster_conn {
    store_conn_t base;
    struct redis_common *rc;
    struct event_base *evbase;
    struct node nodes[MAX_NODES];
    int nnodes;
    short slots[REDIS_SLOTS]; /* node index, or -1 */
    int covered;              /* every slot has an owner */
    int have_map;
    int refreshing;
    int refresh_idx;
    uint64_t last_refresh_ms;
    struct event *refresh_ev;
    struct rreq *waiting, *waiting_tail; /* calls whose slot has no known owner */
    struct event *wait_ev;
};

static void route(struct cluster_conn *c, struct rreq *q);

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

/* ------------------------------------------------------------- nodes */

static void refresh_soon(struct cluster_conn *c);

static void on_node_down(struct rconn *rc, void *owner, const char *why)
{
    (void)rc;
    (void)why;
    refresh_soon(owner);
}

static const struct rconn_events node_events = {.down = on_node_down};

/* The index of host:port, met before or added now (and connecting); -1
 * when the table is full or out of memory. */
static int node_index(struct cluster_conn *c, const char *host, int port)
{
    for (int i = 0; i < c->nnodes; i++)
        if (c->nodes[i].port == port && strcmp(c->nodes[i].host, host) == 0)
            return i;
    if (c->nnodes == MAX_NODES || strlen(host) >= RCONN_HOST_MAX || port <= 0 || port > 65535)
        return -1;
    struct node *n = &c->nodes[c->nnodes];
    n->conn = rconn_new(c->evbase, &c->rc->opts, &node_events, c);
    if (!n->conn)
        return -1;
    snprintf(n->host, sizeof n->host, "%s", host);
    n->port = port;
    const char *hosts[1] = {n->host};
    rconn_target(n->conn, hosts, 1, port);
    return c->nnodes++;
}

/* "slot host:port" of a MOVED or ASK error, after the word. */
static int parse_redirect(const char *s, unsigned *slot, char *host, size_t hostsz, int *port)
{
    const char *sp = strchr(s, ' ');
    const char *colon = sp ? strrchr(sp + 1, ':') : NULL;
    if (!sp || !colon || (size_t)(colon - sp - 1) >= hostsz)
        return -1;
    *slot = (unsigned)strtoul(s, NULL, 10);
    memcpy(host, sp + 1, (size_t)(colon - sp - 1));
    host[colon - sp - 1] = '\0';
    *port = atoi(colon + 1);
    return *slot<REDIS_SLOTS && * port> 0 ? 0 : -1;
}

/* ---------------------------------------------------------- slot map */

static void flush_waiting(struct cluster_conn *c, int expired_only);

/* One range of CLUSTER SLOTS: [start, end, [host, port, id], replicas...]. */
static int map_range(struct cluster_conn *c, const redisReply *e, const char *asked, short *slots)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
        e->element[0]->type != REDIS_REPLY_INTEGER || e->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    const redisReply *m = e->element[2];
    if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
        m->element[0]->type != REDIS_REPLY_STRING || m->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    long long from = e->element[0]->integer, to = e->element[1]->integer;
    /* An empty host is the node that answered. */
    int n = node_index(c, m->element[0]->str[0] ? m->element[0]->str : asked,
                       (int)m->element[1]->integer);
    if (n < 0 || from < 0 || to >= REDIS_SLOTS || from > to)
        return -1;
    for (long long s = from; s <= to; s++)
        slots[s] = (short)n;
    return 0;
}

/* A new map: take it, connect to its primaries, count a failover when a
 * node became a primary that was not one, and send the waiting calls. */
static void take_map(struct cluster_conn *c, const redisReply *r, const char *asked)
{
    static _Thread_local short slots[REDIS_SLOTS];
    for (int s = 0; s < REDIS_SLOTS; s++)
        slots[s] = -1;
    for (size_t i = 0; i < r->elements; i++)
        if (map_range(c, r->element[i], asked, slots) < 0) {
            metrics_inc("wxgate_store_errors_total", "error", "bad cluster slots reply", NULL);
            return;
        }
    int was_primary[MAX_NODES], promoted = 0;
    for (int i = 0; i < c->nnodes; i++) {
        was_primary[i] = c->nodes[i].primary;
        c->nodes[i].primary = 0;
    }
    c->covered = 1;
    for (int s = 0; s < REDIS_SLOTS; s++) {
        if (slots[s] < 0)
            c->covered = 0;
        else
            c->nodes[slots[s]].primary = 1;
        c->slots[s] = slots[s];
    }
    for (int i = 0; i < c->nnodes; i++)
        if (c->nodes[i].primary && !was_primary[i] && c->have_map)
            promoted = 1;
    if (promoted)
        metrics_inc("wxgate_store_failovers_total", NULL);
    c->have_map = 1;
    flush_waiting(c, 0);
}

static void on_slots(const redisReply *r, const char *why, void *arg)
{
    struct cluster_conn *c = arg;
    if (why == rconn_err_detached)
        return;
    c->refreshing = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        take_map(c, r, c->nodes[c->refresh_idx].host);
        return;
    }
    /* This node could not say: another one next time, soon. */
    c->refresh_idx = (c->refresh_idx + 1) % c->nnodes;
    refresh_soon(c);
}

/* Ask a node for the map: a healthy one if there is any. */
static void refresh(struct cluster_conn *c)
{
    static const char cmd[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
    if (c->refreshing || c->nnodes == 0)
        return;
    for (int i = 0; i < c->nnodes; i++) {
        int k = (c->refresh_idx + i) % c->nnodes;
        if (rconn_healthy(c->nodes[k].conn)) {
            c->refresh_idx = k;
            break;
        }
    }
    c->last_refresh_ms = now_ms();
    c->refreshing = 1;
    if (rconn_send(c->nodes[c->refresh_idx].conn, cmd, sizeof cmd - 1, on_slots, c) != 0)
        c->refreshing = 0;
}

static void on_refresh_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cluster_conn *c = arg;
    (void)fd;
    (void)what;
    refresh(c);
    struct timeval tv = ms_tv(REFRESH_EVERY_MS);
    evtimer_add(c->refresh_ev, &tv);
}

/* Ask for the map again, but not more often than every REFRESH_GAP_MS. */
static void refresh_soon(struct cluster_conn *c)
{
    if (c->refreshing)
        return;
    uint64_t since = now_ms() - c->last_refresh_ms;
    struct timeval tv = ms_tv(since >= REFRESH_GAP_MS ? 0 : REFRESH_GAP_MS - since);
    evtimer_add(c->refresh_ev, &tv);
}

/* ------------------------------------------------------- waiting calls */

static void wait_for_map(struct cluster_conn *c, struct rreq *q)
{
    if (!q->deadline_ms)
        q->deadline_ms = now_ms() + (uint64_t)c->rc->opts.timeout_ms;
    q->next = NULL;
    if (c->waiting_tail)
        c->waiting_tail->next = q;
    else
        c->waiting = q;
    c->waiting_tail = q;
    struct timeval tv = ms_tv(WAIT_CHECK_MS);
    if (!evtimer_pending(c->wait_ev, NULL))
        evtimer_add(c->wait_ev, &tv);
    refresh_soon(c);
}

/* Route the waiting calls whose slot now has an owner; fail those past
 * their deadline. With expired_only, leave the others waiting. */
static void flush_waiting(struct cluster_conn *c, int expired_only)
{
    struct rreq *q = c->waiting;
    uint64_t now = now_ms();
    c->waiting = c->waiting_tail = NULL;
    while (q) {
        struct rreq *next = q->next;
        if (now >= q->deadline_ms) {
            rreq_finish(q, NULL, err_no_map);
        } else if (expired_only || c->slots[q->slot] < 0) {
            q->next = NULL;
            if (c->waiting_tail)
                c->waiting_tail->next = q;
            else
                c->waiting = q;
            c->waiting_tail = q;
        } else {
            route(c, q);
        }
        q = next;
    }
    if (c->waiting) {
        struct timeval tv = ms_tv(WAIT_CHECK_MS);
        evtimer_add(c->wait_ev, &tv);
    }
}

static void on_wait_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_waiting(arg, 1);
}

/* ------------------------------------------------------------ commands */

static void on_done(const redisReply *reply, const char *why, void *arg);

static void ignore_reply(const redisReply *reply, const char *why, void *arg)
{
    (void)reply;
    (void)why;
    (void)arg;
}

static void send_to(struct cluster_conn *c, int n, struct rreq *q)
{
    static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
    struct rconn *conn = c->nodes[n].conn;
    if (q->asking) { /* ASKING goes right before the command, on the same connection */
        q->asking = 0;
        rconn_send(conn, asking, sizeof asking - 1, ignore_reply, NULL);
    }
    if (rconn_send(conn, q->cmd, q->len, on_done, q) != 0)
        rreq_finish(q, NULL, rconn_err_overloaded); /* inside a callback: not the caller's call */
}

static void route(struct cluster_conn *c, struct rreq *q)
{
    int n = c->slots[q->slot];
    if (n < 0)
        wait_for_map(c, q);
    else
        send_to(c, n, q);
}

/* MOVED and ASK: follow them; a lost node or CLUSTERDOWN: fail the call and
 * refresh the map. */
static void on_done(const redisReply *reply, const char *why, void *arg)
{
    struct rreq *q = arg;
    struct cluster_conn *c = q->owner;
    if (why == rconn_err_detached) {
        rreq_free(q);
        return;
    }
    int moved = redis_reply_is(reply, "MOVED"), ask = redis_reply_is(reply, "ASK");
    if (moved || ask) {
        char host[RCONN_HOST_MAX];
        unsigned slot;
        int port, n = -1;
        if (parse_redirect(reply->str + (moved ? 6 : 4), &slot, host, sizeof host, &port) == 0)
            n = node_index(c, host, port);
        if (n < 0 || ++q->redirects > MAX_REDIRECTS) {
            rreq_finish(q, NULL, redis_err_redirects);
            return;
        }
        metrics_inc("wxgate_store_redirects_total", "kind", moved ? "moved" : "ask", NULL);
        if (moved) {
            c->slots[slot] = (short)n;
            refresh_soon(c);
        } else {
            q->asking = 1;
        }
        send_to(c, n, q);
        return;
    }
    if (!reply || redis_reply_is(reply, "CLUSTERDOWN") || redis_reply_is(reply, "READONLY") ||
        redis_reply_is(reply, "TRYAGAIN"))
        refresh_soon(c);
    rreq_finish(q, reply, why);
}

static int send_req(store_conn_t *sc, struct rreq *q)
{
    struct cluster_conn *c = (struct cluster_conn *)sc;
    if (!q)
        return -1;
    q->owner = c;
    int n = c->slots[q->slot];
    if (n < 0) {
        wait_for_map(c, q);
        return 0;
    }
    if (rconn_send(c->nodes[n].conn, q->cmd, q->len, on_done, q) != 0) {
        rreq_free(q);
        return -1;
    }
    return 0;
}

/* Every slot has a primary, and every primary's connection is up. */
static int cluster_healthy(store_conn_t *sc)
{
    struct cluster_conn *c = (struct cluster_conn *)sc;
    if (!c->have_map || !c->covered)
        return 0;
    for (int i = 0; i < c->nnodes; i++)
        if (c->nodes[i].primary && !rconn_healthy(c->nodes[i].conn))
            return 0;
    return 1;
}

/* The primaries, comma-separated. */
static const char *cluster_node(store_conn_t *sc, char *buf, size_t n)
{
    struct cluster_conn *c = (struct cluster_conn *)sc;
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < c->nnodes && o < n; i++)
        if (c->nodes[i].primary) {
            int w = snprintf(buf + o, n - o, "%s%s", o ? "," : "", rconn_addr(c->nodes[i].conn));
            o += w > 0 ? (size_t)w : 0;
        }
    return buf;
}

/* ---------------------------------------------------------- lifecycle */

/* No callback runs after this: waiting calls are dropped unanswered. */
static void cluster_detach(store_conn_t *sc)
{
    struct cluster_conn *c = (struct cluster_conn *)sc;
    for (struct rreq *q = c->waiting, *next; q; q = next) {
        next = q->next;
        rreq_free(q);
    }
    for (int i = 0; i < c->nnodes; i++)
        rconn_free(c->nodes[i].conn);
    if (c->refresh_ev)
        event_free(c->refresh_ev);
    if (c->wait_ev)
        event_free(c->wait_ev);
    free(c);
}

/* Connects to the seeds and asks for the map at once (without blocking). */
static store_conn_t *cluster_attach(store_t *s, struct event_base *base)
{
    struct redis_common *rc = (struct redis_common *)s;
    struct cluster_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base.store = s;
    c->rc = rc;
    c->evbase = base;
    for (int i = 0; i < REDIS_SLOTS; i++)
        c->slots[i] = -1;
    c->refresh_ev = evtimer_new(base, on_refresh_timer, c);
    c->wait_ev = evtimer_new(base, on_wait_timer, c);
    if (!c->refresh_ev || !c->wait_ev) {
        cluster_detach(&c->base);
        return NULL;
    }
    for (int i = 0; i < rc->nhosts; i++)
        for (int j = 0; j < rc->hosts[i].naddrs; j++)
            node_index(c, rc->hosts[i].addrs[j], rc->hosts[i].port);
    if (c->nnodes == 0) {
        cluster_detach(&c->base);
        return NULL;
    }
    c->refresh_idx = (rc->next_conn++) % c->nnodes; /* spread the workers */
    refresh(c);
    struct timeval tv = ms_tv(REFRESH_EVERY_MS);
    evtimer_add(c->refresh_ev, &tv);
    return &c->base;
}

static const struct store_ops cluster_ops = {
    .close = redis_close,
    .attach = cluster_attach,
    .detach = cluster_detach,
    .get = redis_op_get,
    .set = redis_op_set,
    .add = redis_op_add,
    .incr = redis_op_incr,
    .del = redis_op_del,
    .sync = redis_op_sync,
    .healthy = cluster_healthy,
    .warning = redis_warning,
    .node = cluster_node,
};

store_t *store_redis_cluster_open(const char *url, const char **err)
{
    struct redis_common *rc = calloc(1, sizeof *rc);
    const char *why = rc ? redis_url_parse(rc, url, REDIS_CLUSTER) : "out of memory";
    if (!why) {
        rc->base.ops = &cluster_ops;
        rc->send = send_req;
        return &rc->base;
    }
    if (rc)
        redis_close(&rc->base);
    if (err)
        *err = why;
    return NULL;
}
