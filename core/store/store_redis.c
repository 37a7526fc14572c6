/* The Redis store: the store.h interface over Redis, so that several wxgate
 * instances share login states, tickets, tokens and wx.store data.
 *
 * This file owns the "redis://" url, one hiredis (0.14, async) connection
 * per worker on the worker's own event loop, and everything hiredis 0.14
 * does not do for us:
 *
 * - Timeouts. Every command gets a record (struct cmd) with its own evtimer.
 *   Whichever comes first, the reply or the timer, answers the caller and
 *   sets cmd->done; the other one then only cleans up. A record that hiredis
 *   still holds is freed by hiredis' callback (with the late reply, or with a
 *   NULL reply when the context goes away), never before.
 * - Reconnecting. A dropped or failed connection goes DOWN and a timer tries
 *   again after a backoff (100 ms doubling to 5 s). While DOWN, calls fail
 *   fast with "redis unavailable" (answered on the next loop turn, as every
 *   reply is). Each new connection sends AUTH and SELECT when configured,
 *   then PING; the PING's answer marks it READY (healthy, backoff reset).
 * - A connection that stays silent while commands wait on it (a half-open
 *   socket, a Redis that is stopped) is dropped and reconnected after
 *   DEAD_AFTER_TIMEOUTS command timeouts' worth of silence.
 *
 * Keys are binary-safe and all carry the store's prefix ("wxgate:" unless
 * the url says otherwise). The host is resolved once in store_redis_open(),
 * on the main thread, so reconnecting on a worker never waits for DNS. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "metrics.h"
#include "store_impl.h"
#include "url.h"

#define DEFAULT_PORT               6379
#define DEFAULT_PREFIX             "wxgate:"
#define DEFAULT_TIMEOUT_MS         500
#define DEFAULT_CONNECT_TIMEOUT_MS 500
#define MAX_TIMEOUT_MS             600000
#define MAX_DB                     65535
#define MAX_ADDRS                  4
#define BACKOFF_MIN_MS             100
#define BACKOFF_MAX_MS             5000
#define DEAD_AFTER_TIMEOUTS        5 /* silence, in command timeouts, before a drop */
#define DEAD_AFTER_MIN_MS          1000
#define MAX_INFLIGHT               10000 /* commands one connection may have in hiredis */
#define MAX_TTL_MS                 1000000000000000ULL /* ~31,000 years: far below Redis' limit */

static const char err_unavailable[] = "redis unavailable";
static const char err_timeout[] = "timeout";
static const char err_auth[] = "redis auth failed";
static const char err_noauth[] = "redis needs a password (NOAUTH)";
static const char err_select[] = "redis select failed (no such database?)";
static const char err_overloaded[] = "redis overloaded";
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

/* The store: what the url says, read-only once open, shared by workers. */
struct redis_store {
    store_t base;
    char addrs[MAX_ADDRS][NI_MAXHOST]; /* numeric addresses of the host */
    int naddrs;
    int port;
    int db;
    char *user, *password; /* NULL when not configured */
    char *prefix;
    size_t plen;
    int timeout_ms, connect_timeout_ms;
    _Atomic int refusing_writes; /* the last write met maxmemory ("OOM ...") */
};

enum conn_state {
    CONN_DOWN,       /* no connection; retry_ev will try again */
    CONN_CONNECTING, /* connecting, or AUTH/SELECT/PING not answered yet */
    CONN_READY,      /* PING answered */
};

/* How to read a command's reply. */
enum cmd_kind { CMD_GET, CMD_SET, CMD_ADD, CMD_INCR, CMD_DEL };

struct redis_conn;

/* One command of one caller. Lives until both hiredis is done with it
 * (in_redis == 0) and its timer cannot fire any more. */
struct cmd {
    struct cmd *prev, *next; /* in conn->cmds */
    struct redis_conn *conn; /* NULL once detached */
    struct event timer;      /* the timeout, or the deferred fail-fast */
    store_cb cb;
    void *arg;
    const char *fail; /* set: fail fast with this instead of sending */
    enum cmd_kind kind;
    unsigned done : 1;     /* the caller has had its answer */
    unsigned in_redis : 1; /* hiredis holds a callback for this record */
};

/* One worker's connection. */
struct redis_conn {
    store_conn_t base;
    struct redis_store *rs;
    struct event_base *evbase;
    redisAsyncContext *ac; /* NULL while DOWN */
    enum conn_state state;
    int stalled;          /* a command timed out and nothing came since */
    const char *fail_err; /* what commands lost with the connection hear */
    int addr_idx;
    int backoff_ms;
    struct event *retry_ev;       /* reconnect after the backoff */
    struct event *connect_ev;     /* connect_timeout_ms for reaching READY */
    const struct timeval *cmd_tv; /* timeout_ms as a libevent common timeout */
    struct cmd *cmds;             /* every live record */
    size_t inflight;              /* records with in_redis set */
    uint64_t progress_ms;         /* last reply, or when inflight left 0 */
};

static void conn_connect(struct redis_conn *c);

/* ------------------------------------------------------------- helpers */

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

/* ------------------------------------------------------------ records */

static void on_cmd_timer(evutil_socket_t fd, short what, void *arg);

static struct cmd *cmd_new(struct redis_conn *c, enum cmd_kind kind, store_cb cb, void *arg)
{
    struct cmd *cmd = calloc(1, sizeof *cmd);
    if (!cmd)
        return NULL;
    cmd->conn = c;
    cmd->kind = kind;
    cmd->cb = cb;
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
    struct redis_conn *c = cmd->conn;
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

/* Answer STORE_ERROR why on the next loop turn, as every reply of this back
 * end comes: never inside the call. */
static int cmd_fail_soon(struct cmd *cmd, const char *why)
{
    cmd->fail = why;
    event_active(&cmd->timer, EV_TIMEOUT, 1);
    return 0;
}

/* ------------------------------------------------------------ replies */

static const char *incr_error(const char *text)
{
    if (strstr(text, "not an integer"))
        return err_not_int;
    if (strstr(text, "overflow"))
        return err_overflow;
    return text;
}

/* Turn a hiredis reply (NULL: the connection went away) into a store reply
 * and hand it to the caller. */
static void deliver(enum cmd_kind kind, const redisReply *r, const char *lost, store_cb cb,
                    void *arg)
{
    struct store_reply out = {.status = STORE_ERROR, .err = err_reply};
    long long n;

    if (!r) {
        out.err = lost;
    } else if (r->type == REDIS_REPLY_ERROR) {
        out.err = kind == CMD_INCR ? incr_error(r->str) : r->str;
    } else {
        switch (kind) {
        case CMD_GET:
            if (r->type == REDIS_REPLY_STRING)
                out = (struct store_reply){.status = STORE_OK, .value = r->str, .len = r->len};
            else if (r->type == REDIS_REPLY_NIL)
                out = (struct store_reply){.status = STORE_NOT_FOUND};
            break;
        case CMD_SET:
        case CMD_ADD:
            if (r->type == REDIS_REPLY_STATUS)
                out = (struct store_reply){.status = STORE_OK};
            else if (r->type == REDIS_REPLY_NIL && kind == CMD_ADD)
                out = (struct store_reply){.status = STORE_EXISTS};
            break;
        case CMD_INCR:
            if (r->type == REDIS_REPLY_STRING && store_parse_ll(r->str, r->len, &n) == 0)
                out = (struct store_reply){.status = STORE_OK, .number = n};
            break;
        case CMD_DEL:
            if (r->type == REDIS_REPLY_INTEGER)
                out = (struct store_reply){.status = r->integer > 0 ? STORE_OK : STORE_NOT_FOUND};
            break;
        }
    }
    if (out.status == STORE_ERROR)
        metrics_inc("wxgate_store_errors_total", "error", r ? "reply" : "connection lost", NULL);
    cb(&out, arg);
}

/* hiredis' callback for a command: the reply, a late reply after the
 * timeout (ignored), or NULL when the context is freed. */
static void on_cmd_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct cmd *cmd = privdata;
    struct redis_conn *c = cmd->conn;
    (void)ac;

    cmd->in_redis = 0;
    if (!c) { /* detached: the caller is gone */
        free(cmd);
        return;
    }
    c->inflight--;
    if (reply) {
        c->progress_ms = now_ms();
        c->stalled = 0;
        /* Redis at maxmemory with a policy that cannot make room refuses
         * writes; /healthz says so until a write goes through again. */
        const redisReply *r = reply;
        if (cmd->kind == CMD_SET || cmd->kind == CMD_ADD || cmd->kind == CMD_INCR)
            c->rs->refusing_writes =
                r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, "OOM", 3) == 0;
    }
    if (cmd->done) {
        cmd_free(cmd);
        return;
    }
    enum cmd_kind kind = cmd->kind;
    store_cb cb = cmd->cb;
    void *arg = cmd->arg;
    cmd_free(cmd);
    deliver(kind, reply, c->fail_err, cb, arg);
}

static void conn_drop(struct redis_conn *c, const char *why);

/* The timer of a record: a fail-fast answer, or the command's timeout. A
 * timeout after a long silence also drops the connection, which makes
 * hiredis hand back (and so free) every record it holds, this one too:
 * the record is not touched after that. */
static void on_cmd_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cmd *cmd = arg;
    struct redis_conn *c = cmd->conn;
    store_cb cb = cmd->cb;
    void *cbarg = cmd->arg;
    const char *why = cmd->fail ? cmd->fail : err_timeout;
    (void)fd;
    (void)what;

    cmd->done = 1;
    if (!cmd->in_redis) {
        cmd_free(cmd);
    } else {
        uint64_t dead_ms = (uint64_t)c->rs->timeout_ms * DEAD_AFTER_TIMEOUTS;
        if (dead_ms < DEAD_AFTER_MIN_MS)
            dead_ms = DEAD_AFTER_MIN_MS;
        c->stalled = 1;
        if (now_ms() - c->progress_ms >= dead_ms)
            conn_drop(c, err_unavailable);
    }
    struct store_reply out = {.status = STORE_ERROR, .err = why};
    metrics_inc("wxgate_store_errors_total", "error", why, NULL);
    cb(&out, cbarg);
}

/* Send one command, or arrange for it to fail fast. Returns -1 only when
 * no record can be allocated (the callback will not run). */
static int issue(struct redis_conn *c, enum cmd_kind kind, store_cb cb, void *arg, const char *fmt,
                 ...)
{
    struct cmd *cmd = cmd_new(c, kind, cb, arg);
    if (!cmd)
        return -1;
    if (c->state == CONN_DOWN || !c->ac)
        return cmd_fail_soon(cmd, c->fail_err);
    if (c->inflight >= MAX_INFLIGHT)
        return cmd_fail_soon(cmd, err_overloaded);

    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(c->ac, on_cmd_reply, cmd, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK)
        return cmd_fail_soon(cmd, err_unavailable);
    cmd->in_redis = 1;
    if (c->inflight++ == 0)
        c->progress_ms = now_ms();
    evtimer_add(&cmd->timer, c->cmd_tv);
    return 0;
}

/* ---------------------------------------------------------- connection */

/* Go DOWN and schedule the next attempt: after the backoff, on the next
 * address of the host. The hiredis context is the caller's business. */
static void conn_down(struct redis_conn *c, const char *why)
{
    struct timeval tv = ms_tv(c->backoff_ms);
    c->ac = NULL;
    c->state = CONN_DOWN;
    c->stalled = 0;
    c->fail_err = why;
    c->addr_idx = (c->addr_idx + 1) % c->rs->naddrs;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    event_del(c->connect_ev);
    evtimer_add(c->retry_ev, &tv);
}

/* Close the connection ourselves. Freeing the context runs every pending
 * callback with a NULL reply (now, or right after the hiredis callback we
 * may be in); ac->data = NULL tells the context's own callbacks that this
 * connection has moved on. */
static void conn_drop(struct redis_conn *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    conn_down(c, why);
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}

static void conn_ready(struct redis_conn *c)
{
    c->state = CONN_READY;
    c->stalled = 0;
    c->backoff_ms = BACKOFF_MIN_MS;
    event_del(c->connect_ev);
}

/* Steps of the handshake, passed as privdata (static, so they outlive any
 * connection). */
static const char step_auth[] = "auth", step_select[] = "select", step_ping[] = "ping";

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct redis_conn *c = ac->data;
    redisReply *r = reply;
    if (!c || !r)
        return;
    c->progress_ms = now_ms();
    if (r->type == REDIS_REPLY_ERROR) {
        const char *why = strncmp(r->str, "NOAUTH", 6) == 0 ? err_noauth
                          : privdata == step_auth           ? err_auth
                          : privdata == step_select         ? err_select
                                                            : err_unavailable;
        conn_drop(c, why);
        return;
    }
    if (privdata == step_ping)
        conn_ready(c);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_conn *c = ac->data;
    if (!c)
        return;
    if (status != REDIS_OK) {
        conn_down(c, err_unavailable); /* hiredis frees the context next */
        return;
    }
    redisEnableKeepAlive((redisContext *)&ac->c);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_conn *c = ac->data;
    (void)status;
    if (c && c->ac == ac)
        conn_down(c, err_unavailable);
}

/* Not READY within connect_timeout_ms: Redis is unreachable or stuck. */
static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_drop(arg, err_unavailable);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_connect(arg);
}

/* Start a connection and queue the handshake behind which the callers'
 * commands are pipelined. hiredis 0.14 connects without blocking; the
 * address is numeric, so there is no DNS lookup here. */
static void conn_connect(struct redis_conn *c)
{
    struct redis_store *rs = c->rs;
    redisAsyncContext *ac = redisAsyncConnect(rs->addrs[c->addr_idx], rs->port);
    if (!ac || ac->err || redisLibeventAttach(ac, c->evbase) != REDIS_OK) {
        if (ac)
            redisAsyncFree(ac);
        conn_down(c, err_unavailable);
        return;
    }
    ac->data = c;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->state = CONN_CONNECTING;
    c->fail_err = err_unavailable;
    c->progress_ms = now_ms();

    if (rs->password && rs->user)
        redisAsyncCommand(ac, on_setup_reply, (void *)step_auth, "AUTH %s %s", rs->user,
                          rs->password);
    else if (rs->password)
        redisAsyncCommand(ac, on_setup_reply, (void *)step_auth, "AUTH %s", rs->password);
    if (rs->db)
        redisAsyncCommand(ac, on_setup_reply, (void *)step_select, "SELECT %d", rs->db);
    redisAsyncCommand(ac, on_setup_reply, (void *)step_ping, "PING");

    struct timeval tv = ms_tv(rs->connect_timeout_ms);
    evtimer_add(c->connect_ev, &tv);
}

/* ------------------------------------------------------------ the vtable */

static uint64_t clamp_ttl(uint64_t ttl_ms) { return ttl_ms > MAX_TTL_MS ? MAX_TTL_MS : ttl_ms; }

static int redis_get(store_conn_t *sc, const char *key, size_t klen, store_cb cb, void *arg)
{
    struct redis_conn *c = (struct redis_conn *)sc;
    return issue(c, CMD_GET, cb, arg, "GET %b%b", c->rs->prefix, c->rs->plen, key, klen);
}

static int redis_set(store_conn_t *sc, const char *key, size_t klen, const char *val, size_t vlen,
                     uint64_t ttl_ms, store_cb cb, void *arg)
{
    struct redis_conn *c = (struct redis_conn *)sc;
    struct redis_store *rs = c->rs;
    if (!ttl_ms)
        return issue(c, CMD_SET, cb, arg, "SET %b%b %b", rs->prefix, rs->plen, key, klen, val,
                     vlen);
    return issue(c, CMD_SET, cb, arg, "SET %b%b %b PX %llu", rs->prefix, rs->plen, key, klen, val,
                 vlen, (unsigned long long)clamp_ttl(ttl_ms));
}

/* evictable: Redis evicts by its maxmemory-policy (README: volatile-lru). */
static int redis_add(store_conn_t *sc, const char *key, size_t klen, const char *val, size_t vlen,
                     uint64_t ttl_ms, int evictable, store_cb cb, void *arg)
{
    struct redis_conn *c = (struct redis_conn *)sc;
    struct redis_store *rs = c->rs;
    if (!ttl_ms)
        return issue(c, CMD_ADD, cb, arg, "SET %b%b %b NX", rs->prefix, rs->plen, key, klen, val,
                     vlen);
    return issue(c, CMD_ADD, cb, arg, "SET %b%b %b NX PX %llu", rs->prefix, rs->plen, key, klen,
                 val, vlen, (unsigned long long)clamp_ttl(ttl_ms));
}

static int redis_incr(store_conn_t *sc, const char *key, size_t klen, long long delta,
                      uint64_t ttl_ms, store_cb cb, void *arg)
{
    struct redis_conn *c = (struct redis_conn *)sc;
    return issue(c, CMD_INCR, cb, arg, "EVAL %s 1 %b%b %lld %llu", incr_script, c->rs->prefix,
                 c->rs->plen, key, klen, delta, (unsigned long long)clamp_ttl(ttl_ms));
}

static int redis_del(store_conn_t *sc, const char *key, size_t klen, store_cb cb, void *arg)
{
    struct redis_conn *c = (struct redis_conn *)sc;
    return issue(c, CMD_DEL, cb, arg, "DEL %b%b", c->rs->prefix, c->rs->plen, key, klen);
}

static int redis_healthy(store_conn_t *sc)
{
    struct redis_conn *c = (struct redis_conn *)sc;
    return c->state == CONN_READY && !c->stalled;
}

static const char *redis_warning(store_conn_t *sc)
{
    struct redis_conn *c = (struct redis_conn *)sc;
    return c->rs->refusing_writes ? "redis refuses writes (maxmemory): logins cannot start; "
                                    "set maxmemory-policy volatile-lru or raise maxmemory"
                                  : NULL;
}

/* Connects at once (without blocking); a Redis that is down now only means
 * the first calls fail fast until it is back. */
static store_conn_t *redis_attach(store_t *s, struct event_base *base)
{
    struct redis_store *rs = (struct redis_store *)s;
    struct redis_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base.store = s;
    c->rs = rs;
    c->evbase = base;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->fail_err = err_unavailable;
    struct timeval tv = ms_tv(rs->timeout_ms);
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
    conn_connect(c);
    return &c->base;
}

/* No callback runs after this: records are cut loose from their callers
 * (conn = NULL), those hiredis holds are freed when freeing the context
 * hands them back, the others here. Must not be called from inside a
 * store callback of this connection. */
static void redis_detach(store_conn_t *sc)
{
    struct redis_conn *c = (struct redis_conn *)sc;
    struct cmd *cmd = c->cmds, *next;
    for (; cmd; cmd = next) {
        next = cmd->next;
        event_del(&cmd->timer);
        cmd->conn = NULL;
        cmd->done = 1;
        if (!cmd->in_redis)
            free(cmd);
    }
    c->cmds = NULL;
    if (c->ac) {
        c->ac->data = NULL;
        redisAsyncFree(c->ac);
    }
    event_free(c->retry_ev);
    event_free(c->connect_ev);
    free(c);
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* Every connection must be detached first. */
static void redis_close(store_t *s)
{
    struct redis_store *rs = (struct redis_store *)s;
    free(rs->user);
    wipe_free(rs->password);
    free(rs->prefix);
    free(rs);
}

static const struct store_ops redis_ops = {
    .close = redis_close,
    .attach = redis_attach,
    .detach = redis_detach,
    .get = redis_get,
    .set = redis_set,
    .add = redis_add,
    .incr = redis_incr,
    .del = redis_del,
    .healthy = redis_healthy,
    .warning = redis_warning,
};

/* ------------------------------------------------------------ the url */

/* A whole number from lo to hi, digits only. */
static int parse_int(const char *s, size_t len, long lo, long hi, int *out)
{
    long long v;
    if (!len || s[0] == '-' || store_parse_ll(s, len, &v) < 0 || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* The numeric addresses of host, so that no connect ever resolves a name. */
static const char *resolve(struct redis_store *rs, const char *host)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return "redis url: cannot resolve the host";
    for (ai = res; ai && rs->naddrs < MAX_ADDRS; ai = ai->ai_next) {
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, rs->addrs[rs->naddrs], NI_MAXHOST, NULL, 0,
                        NI_NUMERICHOST) == 0)
            rs->naddrs++;
    }
    freeaddrinfo(res);
    return rs->naddrs ? NULL : "redis url: cannot resolve the host";
}

struct options {
    struct redis_store *rs;
    char **password_env;
    const char *why;
};

/* One name=value of the query (both already decoded). */
static int parse_option(const char *name, const char *v, void *arg)
{
    struct options *o = arg;
    struct redis_store *rs = o->rs;
    size_t vlen = v ? strlen(v) : 0;
    if (!v) {
        o->why = "redis url: options are name=value";
    } else if (strcmp(name, "prefix") == 0) {
        free(rs->prefix);
        rs->prefix = strdup(v);
        rs->plen = vlen;
        if (!rs->prefix)
            o->why = "out of memory";
    } else if (strcmp(name, "timeout_ms") == 0) {
        if (parse_int(v, vlen, 1, MAX_TIMEOUT_MS, &rs->timeout_ms) < 0)
            o->why = "redis url: timeout_ms must be from 1 to 600000";
    } else if (strcmp(name, "connect_timeout_ms") == 0) {
        if (parse_int(v, vlen, 1, MAX_TIMEOUT_MS, &rs->connect_timeout_ms) < 0)
            o->why = "redis url: connect_timeout_ms must be from 1 to 600000";
    } else if (strcmp(name, "password_env") == 0) {
        free(*o->password_env);
        *o->password_env = strdup(v);
        if (!*o->password_env)
            o->why = "out of memory";
    } else {
        o->why = "redis url: unknown option (expected prefix, timeout_ms, connect_timeout_ms, "
                 "password_env)";
    }
    return o->why != NULL;
}

/* redis://[[user]:password@]host[:port][/db][?name=value&...], split by the
 * URL module. */
static const char *parse_url(struct redis_store *rs, const char *url, char **host,
                             char **password_env)
{
    struct url_parts p;
    const char *why = NULL;
    if (url_split(url, 1, &p, &why) != 0) {
        /* curl's words, but never the url itself (it may hold the password) */
        static _Thread_local char msg[160];
        snprintf(msg, sizeof msg, "redis url: %s", why);
        return msg;
    }
    if (p.user && !p.password)
        why = "redis url: write credentials as redis://:PASSWORD@host";
    else if (!p.host || !*p.host)
        why = "redis url: missing host";
    else if (p.port && parse_int(p.port, strlen(p.port), 1, 65535, &rs->port) < 0)
        why = "redis url: port must be from 1 to 65535";
    else if (p.path && strcmp(p.path, "/") != 0 &&
             parse_int(p.path + 1, strlen(p.path + 1), 0, MAX_DB, &rs->db) < 0)
        why = "redis url: the database must be a number from 0 to 65535";
    else if (p.fragment)
        why = "redis url: no #fragment";
    if (!why && p.query) {
        struct options o = {rs, password_env, NULL};
        if (url_query_each(p.query, parse_option, &o) < 0)
            why = "out of memory";
        else
            why = o.why;
    }
    if (!why) {
        size_t hl = strlen(p.host);
        *host = hl >= 2 && p.host[0] == '[' ? strndup(p.host + 1, hl - 2) : strdup(p.host);
        if (p.user && *p.user)
            rs->user = strdup(p.user);
        if (p.password && *p.password)
            rs->password = strdup(p.password);
        if (!*host)
            why = "out of memory";
    }
    if (p.password)
        explicit_bzero(p.password, strlen(p.password));
    url_parts_free(&p);
    return why;
}

/* The password named by ?password_env=NAME, so configs need not hold it. */
static const char *password_from_env(struct redis_store *rs, const char *name)
{
    if (rs->password)
        return "redis url: give the password in the url or password_env, not both";
    const char *pw = getenv(name);
    if (!pw || !*pw)
        return "redis url: the variable named by password_env is not set";
    rs->password = strdup(pw);
    return rs->password ? NULL : "out of memory";
}

store_t *store_redis_open(const char *url, const char **err)
{
    struct redis_store *rs = calloc(1, sizeof *rs);
    char *host = NULL, *password_env = NULL;
    const char *why = "out of memory";

    if (rs) {
        rs->base.ops = &redis_ops;
        rs->port = DEFAULT_PORT;
        rs->timeout_ms = DEFAULT_TIMEOUT_MS;
        rs->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
        rs->prefix = strdup(DEFAULT_PREFIX);
        rs->plen = strlen(DEFAULT_PREFIX);
        why = rs->prefix ? parse_url(rs, url, &host, &password_env) : why;
        if (!why && password_env)
            why = password_from_env(rs, password_env);
        if (!why)
            why = resolve(rs, host);
    }
    free(host);
    free(password_env);
    if (!why)
        return &rs->base;
    if (rs)
        redis_close(&rs->base);
    if (err)
        *err = why;
    return NULL;
}
