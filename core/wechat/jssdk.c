/* Basic token and jsapi ticket ownership (see jssdk.h).
 *
 * Store records, per appid:
 *   jt:APPID      "EXPIRES\tTICKET"              the jsapi ticket
 *   bt:APPID      sealed "EXPIRES\tTOKEN"          the basic access_token
 *   lk:APPID      fencing number                 held while one fetch runs (15 s)
 *   fence:APPID   counter of lock holders
 *   q:APPID:DAY   cgi-bin/token calls today
 * Each worker also caches tickets it has seen until their refresh window. */
#include "jssdk.h"

#include "config.h"
#include "crypto.h"
#include "log.h"
#include "login.h"
#include "metrics.h"
#include "server.h"
#include "store.h"
#include "wechat.h"

#include <event2/event.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOCK_TTL_MS     15000ULL
#define REFRESH_AHEAD_S 300 /* refresh a ticket this long before it expires */
#define POLL_MS         50
#define DAILY_QUOTA     2000

struct jssdk_op {
    struct worker *w;
    struct config *cfg; /* retained */
    const struct config_app *app;
    jssdk_cb cb; /* NULL: cancelled, or a background refresh */
    void *arg;
    int background;
    int *finished; /* set when done inside jssdk_ticket */
    char key_jt[160], key_bt[160], key_lk[160], key_fence[160], key_q[200];
    long long fence;
    int owner;   /* holds the lock */
    int retried; /* re-fetched the basic token after 40001 */
    struct wechat_call *call;
    char *token;    /* basic token */
    int want_token; /* jssdk_basic_token: the token is the result, no ticket */
    char *stale;    /* jssdk_basic_token: a token WeChat refused (not to reuse) */
};

/* ---- per-worker cache ---- */

struct cached {
    char appid[64];
    char ticket[256];
    long expires;
    int refreshing;
};

static _Thread_local struct cached cache[16];

static long now_s(void) { return (long)time(NULL); }

/* The slot of appid; with create, a free slot or (all taken) an evicted
 * one, so a slot never serves another app's ticket. */
static struct cached *cache_for(const char *appid, int create)
{
    size_t free_slot = 16;
    for (size_t i = 0; i < 16; i++) {
        if (strcmp(cache[i].appid, appid) == 0)
            return &cache[i];
        if (!cache[i].appid[0] && free_slot == 16)
            free_slot = i;
    }
    if (!create)
        return NULL;
    struct cached *c = &cache[free_slot < 16 ? free_slot : (size_t)(now_s() % 16)];
    memset(c, 0, sizeof(*c));
    snprintf(c->appid, sizeof(c->appid), "%s", appid);
    return c;
}

/* This worker's ops and unlocks still under way: a worker that stops waits
 * for them (jssdk_pending), so that no store call is left unanswered. */
static _Thread_local int pending;

int jssdk_pending(void) { return pending; }

static void op_free(struct jssdk_op *op)
{
    pending--;
    if (op->call)
        wechat_cancel(op->call);
    login_token_free(op->token);
    login_token_free(op->stale);
    config_release(op->cfg);
    free(op);
}

struct unlock {
    store_conn_t *store;
    char key[160];
    char fence[32];
};

static void unlock_free(struct unlock *u)
{
    pending--;
    free(u);
}

static void on_unlock_read(const struct store_reply *rep, void *arg);

/* The tickets and token written before are on a replica now (or the wait
 * is over): let the next owner in. */
static void on_unlock_synced(const struct store_reply *rep, void *arg)
{
    struct unlock *u = arg;
    (void)rep;
    if (store_get(u->store, u->key, strlen(u->key), on_unlock_read, u) != 0)
        unlock_free(u);
}

static void on_unlock_read(const struct store_reply *rep, void *arg)
{
    struct unlock *u = arg;
    if (rep->status == STORE_OK && rep->len == strlen(u->fence) &&
        memcmp(rep->value, u->fence, rep->len) == 0)
        store_del(u->store, u->key, strlen(u->key), NULL, NULL);
    unlock_free(u);
}

/* Releases the lock only if it is still ours (our fencing number): an owner
 * that outlived the lock's TTL must not remove the next owner's lock. First
 * it waits for a replica to have what the owner stored (same slot as the
 * lock): a failover after the unlock must not forget the token and ticket,
 * or the next owner would fetch them again. */
static void unlock(struct jssdk_op *op)
{
    struct unlock *u = calloc(1, sizeof(*u));
    if (!u)
        return;
    pending++;
    u->store = op->w->store;
    snprintf(u->key, sizeof(u->key), "%s", op->key_lk);
    snprintf(u->fence, sizeof(u->fence), "%lld", op->fence);
    if (store_sync(u->store, u->key, strlen(u->key), on_unlock_synced, u) != 0)
        unlock_free(u);
}

static void deliver(struct jssdk_op *op, const char *ticket, const char *err)
{
    if (op->owner) /* release the lock for the next refresh */
        unlock(op);
    struct cached *c = cache_for(op->app->appid, 0);
    if (c && op->background)
        c->refreshing = 0;
    if (op->finished)
        *op->finished = 1;
    if (err)
        log_warn("jssdk %s: %s", op->app->name, err);
    jssdk_cb cb = op->cb;
    void *arg = op->arg;
    op_free(op);
    if (cb)
        cb(ticket, err, arg);
}

static void fetch_basic_token(struct jssdk_op *op);

/* A token op's result: its token, which op_free wipes, so a copy. */
static void deliver_token(struct jssdk_op *op)
{
    char *token = strdup(op->token);
    deliver(op, token, token ? NULL : "busy");
    login_token_free(token);
}

/* ---- the owner's path ---- */

static void on_ticket_reply(const struct wechat_reply *rep, void *arg)
{
    struct jssdk_op *op = arg;
    op->call = NULL;
    if ((rep->err == WECHAT_TOKEN_INVALID || rep->err == WECHAT_TOKEN_EXPIRED) && !op->retried) {
        /* Someone else replaced the token, or it expired early: once more. */
        op->retried = 1;
        store_del(op->w->store, op->key_bt, strlen(op->key_bt), NULL, NULL);
        fetch_basic_token(op);
        return;
    }
    if (rep->err != WECHAT_OK) {
        deliver(op, NULL, wechat_err_name(rep->err));
        return;
    }
    long ttl = rep->expires_in > 0 ? rep->expires_in : 7200;
    char val[512], *ticket = strdup(rep->ticket);
    if (!ticket) {
        deliver(op, NULL, "busy");
        return;
    }
    int n = snprintf(val, sizeof(val), "%ld\t%s", now_s() + ttl, ticket);
    if (n > 0 && (size_t)n < sizeof(val) && strlen(ticket) < sizeof(((struct cached *)0)->ticket))
        store_set(op->w->store, op->key_jt, strlen(op->key_jt), val, (size_t)n,
                  (unsigned long long)ttl * 1000, NULL, NULL);
    struct cached *c = cache_for(op->app->appid, 1);
    snprintf(c->ticket, sizeof(c->ticket), "%s", ticket);
    c->expires = now_s() + ttl;
    deliver(op, ticket, NULL);
    free(ticket);
}

static void get_ticket(struct jssdk_op *op)
{
    struct wechat_client wc = wechat_client(op->w->fetch, op->cfg);
    op->call = wechat_jsapi_ticket(&wc, op->token, on_ticket_reply, op);
    if (!op->call)
        deliver(op, NULL, "network");
}

static void on_token_reply(const struct wechat_reply *rep, void *arg);

static void start_fetch(struct jssdk_op *op)
{
    metrics_inc("wxgate_basic_token_refreshes_total", "app", op->app->name, NULL);
    struct wechat_client wc = wechat_client(op->w->fetch, op->cfg);
    op->call = wechat_basic_token(&wc, op->app, on_token_reply, op);
    if (!op->call)
        deliver(op, NULL, "network");
}

static void on_quota_synced(const struct store_reply *rep, void *arg)
{
    (void)rep;
    start_fetch(arg);
}

/* The fetch is counted first. The lock, its fencing number and this count
 * share one slot (login.h): once a replica has them, a failover can neither
 * hand the lock to a second owner nor forget the fetch. A store that fails
 * or a replica that lags only delays the fetch by the wait, never stops it. */
static void on_quota(const struct store_reply *rep, void *arg)
{
    struct jssdk_op *op = arg;
    if (rep->status == STORE_OK)
        metrics_set("wxgate_basic_token_quota_left", (double)(DAILY_QUOTA - rep->number), "app",
                    op->app->name, NULL);
    if (store_sync(op->w->store, op->key_q, strlen(op->key_q), on_quota_synced, op) != 0)
        start_fetch(op);
}

static void on_token_reply(const struct wechat_reply *rep, void *arg)
{
    struct jssdk_op *op = arg;
    op->call = NULL;
    if (rep->err != WECHAT_OK) {
        deliver(op, NULL, wechat_err_name(rep->err));
        return;
    }
    long ttl = rep->expires_in > 0 ? rep->expires_in : 7200;
    if (op->token) { /* the one that WeChat just refused */
        explicit_bzero(op->token, strlen(op->token));
        free(op->token);
    }
    op->token = strdup(rep->access_token);
    if (!op->token) {
        deliver(op, NULL, "busy");
        return;
    }
    char rec[1024];
    int n = snprintf(rec, sizeof(rec), "%ld\t%s", now_s() + ttl, op->token);
    size_t slen = 0;
    char *sealed = n > 0 ? login_token_seal(op->cfg, op->key_bt, rec, &slen) : NULL;
    explicit_bzero(rec, sizeof(rec));
    if (sealed && ttl > 120)
        store_set(op->w->store, op->key_bt, strlen(op->key_bt), sealed, slen,
                  (unsigned long long)(ttl - 60) * 1000, NULL, NULL);
    free(sealed);
    if (op->want_token)
        deliver_token(op);
    else
        get_ticket(op);
}

static void fetch_basic_token(struct jssdk_op *op)
{
    char day[16];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y%m%d", &tm);
    snprintf(op->key_q, sizeof(op->key_q), KEY_JSSDK_QUOTA "{%s}:%s", op->app->appid, day);
    if (store_incr(op->w->store, op->key_q, strlen(op->key_q), 1, 2 * 86400 * 1000ULL, on_quota,
                   op) != 0)
        start_fetch(op);
}

static void acquire(struct jssdk_op *op);

/* The token of a stored bt: record if it is fresh (and not the one WeChat
 * refused), as a malloc'd string; else NULL. */
static char *usable_token(struct jssdk_op *op, const char *v, size_t len)
{
    char *rec = v ? login_token_open(op->cfg, op->key_bt, v, len) : NULL;
    char *tab = rec ? strchr(rec, '\t') : NULL;
    char *token = NULL;
    if (tab && strtol(rec, NULL, 10) > now_s() + 60 && !(op->stale && !strcmp(tab + 1, op->stale)))
        token = strdup(tab + 1);
    login_token_free(rec);
    return token;
}

static void on_basic_token(const struct store_reply *rep, void *arg)
{
    struct jssdk_op *op = arg;
    char *token =
        rep->status == STORE_OK && !op->retried ? usable_token(op, rep->value, rep->len) : NULL;
    if (token) {
        op->token = token;
        if (op->want_token)
            deliver_token(op);
        else
            get_ticket(op);
        return;
    }
    if (op->want_token && !op->owner) /* nothing usable: one request fetches, others wait */
        acquire(op);
    else
        fetch_basic_token(op);
}

/* While another request holds the lock, a token op waits for its token. */
static int fresh_token(const char *v, size_t len, void *arg)
{
    char *token = usable_token(arg, v, len);
    login_token_free(token);
    return token != NULL;
}

/* ---- waiting for the owner ---- */

static void on_stored_ticket(const struct store_reply *rep, void *arg);

/* While another request holds the lock: is the stored ticket (value) one to
 * use? Absent or stale: wait on. */
static int fresh_ticket(const char *v, size_t len, void *arg)
{
    (void)arg;
    const char *tab = v ? memchr(v, '\t', len) : NULL;
    return tab && strtol(v, NULL, 10) > now_s() + 60;
}

/* The lock: won (fetch, after one more look for a ticket), or the owner's
 * ticket, or nothing in time. */
static void on_locked(enum store_claim_outcome o, const char *v, size_t len, void *arg)
{
    struct jssdk_op *op = arg;
    if (op->want_token && (o == STORE_CLAIM_WON || o == STORE_CLAIM_RESULT)) {
        op->owner = o == STORE_CLAIM_WON; /* the owner looks once more, then fetches */
        if (o == STORE_CLAIM_RESULT) {
            struct store_reply rep = {.status = STORE_OK, .value = v, .len = len};
            on_basic_token(&rep, op);
        } else if (store_get(op->w->store, op->key_bt, strlen(op->key_bt), on_basic_token, op) != 0)
            deliver(op, NULL, "store unavailable");
        return;
    }
    if (o == STORE_CLAIM_WON) {
        op->owner = 1; /* the previous owner may have just finished: look once more */
        if (store_get(op->w->store, op->key_jt, strlen(op->key_jt), on_stored_ticket, op) != 0)
            deliver(op, NULL, "store unavailable");
    } else if (o == STORE_CLAIM_RESULT) {
        struct store_reply rep = {.status = STORE_OK, .value = v, .len = len};
        on_stored_ticket(&rep, op);
    } else if (o == STORE_CLAIM_TIMEOUT) {
        /* A background refresh has nothing to wait for; a request waited long enough. */
        deliver(op, NULL, op->background ? NULL : "timeout");
    } else {
        deliver(op, NULL, "store unavailable");
    }
}

static void on_fence(const struct store_reply *rep, void *arg)
{
    struct jssdk_op *op = arg;
    if (rep->status != STORE_OK) {
        deliver(op, NULL, "store unavailable");
        return;
    }
    op->fence = rep->number;
    char v[32];
    snprintf(v, sizeof(v), "%lld", op->fence);
    /* The lock holds the fencing number; the others wait for the ticket. */
    struct store_claim_spec lock = {
        .claim_key = op->key_lk,
        .claim_value = v,
        .claim_ttl_ms = LOCK_TTL_MS,
        .result_key = op->want_token ? op->key_bt : op->key_jt,
        .accept = op->want_token ? fresh_token : fresh_ticket,
        .poll_ms = POLL_MS,
        .wait_ms = op->background ? 0 : op->cfg->upstream_timeout_ms * 3 + 2000,
    };
    if (store_claim(op->w->store, op->w->base, &lock, on_locked, op) != 0)
        deliver(op, NULL, "store unavailable");
}

/* Takes a fencing number, then tries the lock with it. */
static void acquire(struct jssdk_op *op)
{
    if (store_incr(op->w->store, op->key_fence, strlen(op->key_fence), 1, 0, on_fence, op) != 0)
        deliver(op, NULL, "store unavailable");
}

static void start_background_refresh(struct worker *w, const char *appid);

static void on_stored_ticket(const struct store_reply *rep, void *arg)
{
    struct jssdk_op *op = arg;
    const char *tab = rep->status == STORE_OK ? memchr(rep->value, '\t', rep->len) : NULL;
    long expires = tab ? strtol(rep->value, NULL, 10) : 0;
    if (tab && expires > now_s() + 60 && (!op->background || op->owner) &&
        !(op->background && expires - now_s() < REFRESH_AHEAD_S)) {
        char ticket[256];
        snprintf(ticket, sizeof(ticket), "%.*s", (int)(rep->len - (size_t)(tab + 1 - rep->value)),
                 tab + 1);
        struct cached *c = cache_for(op->app->appid, 1);
        snprintf(c->ticket, sizeof(c->ticket), "%s", ticket);
        c->expires = expires;
        if (expires - now_s() < REFRESH_AHEAD_S)
            start_background_refresh(op->w, op->app->appid);
        deliver(op, ticket, NULL);
        return;
    }
    if (rep->status == STORE_ERROR) {
        deliver(op, NULL, "store unavailable");
        return;
    }
    if (op->owner) { /* we hold the lock and there is still no ticket */
        if (store_get(op->w->store, op->key_bt, strlen(op->key_bt), on_basic_token, op) != 0)
            deliver(op, NULL, "store unavailable");
        return;
    }
    acquire(op);
}

static void lookup(struct jssdk_op *op)
{
    if (store_get(op->w->store, op->key_jt, strlen(op->key_jt), on_stored_ticket, op) != 0)
        deliver(op, NULL, "store unavailable");
}

static struct jssdk_op *op_new(struct worker *w, const struct config_app *app, jssdk_cb cb,
                               void *arg)
{
    struct jssdk_op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    pending++;
    op->w = w;
    op->cfg = config_retain(w->cfg);
    op->app = app;
    op->cb = cb;
    op->arg = arg;
    snprintf(op->key_jt, sizeof(op->key_jt), KEY_JSAPI_TICKET "{%s}", app->appid);
    snprintf(op->key_bt, sizeof(op->key_bt), KEY_BASIC_TOKEN "{%s}", app->appid);
    snprintf(op->key_lk, sizeof(op->key_lk), KEY_JSSDK_LOCK "{%s}", app->appid);
    snprintf(op->key_fence, sizeof(op->key_fence), KEY_JSSDK_FENCE "{%s}", app->appid);
    return op;
}

/* Refreshes ahead of expiry while requests keep using the current ticket.
 * The app is looked up in the worker's current config (a reload may have
 * replaced the one the caller holds). */
static void start_background_refresh(struct worker *w, const char *appid)
{
    const struct config_app *app = config_find_app(w->cfg, appid);
    if (!app)
        return;
    struct cached *c = cache_for(app->appid, 1);
    if (c->refreshing)
        return;
    struct jssdk_op *op = op_new(w, app, NULL, NULL);
    if (!op)
        return;
    c->refreshing = 1;
    op->background = 1;
    acquire(op);
}

struct jssdk_op *jssdk_ticket(struct worker *w, const struct config_app *app, jssdk_cb cb,
                              void *arg)
{
    struct cached *c = cache_for(app->appid, 0);
    if (c && c->expires - now_s() > REFRESH_AHEAD_S) {
        cb(c->ticket, NULL, arg);
        return NULL;
    }
    struct jssdk_op *op = op_new(w, app, cb, arg);
    if (!op) {
        cb(NULL, "out of memory", arg);
        return NULL;
    }
    /* The op finishes inside lookup only when the store refuses the call. */
    int finished = 0;
    op->finished = &finished;
    lookup(op);
    if (finished)
        return NULL;
    op->finished = NULL;
    return op;
}

struct jssdk_op *jssdk_basic_token(struct worker *w, const struct config_app *app,
                                   const char *stale, jssdk_cb cb, void *arg)
{
    struct jssdk_op *op = op_new(w, app, cb, arg);
    if (!op) {
        cb(NULL, "out of memory", arg);
        return NULL;
    }
    op->want_token = 1;
    if (stale && !(op->stale = strdup(stale))) {
        deliver(op, NULL, "out of memory");
        return NULL;
    }
    int finished = 0;
    op->finished = &finished;
    if (store_get(w->store, op->key_bt, strlen(op->key_bt), on_basic_token, op) != 0)
        deliver(op, NULL, "store unavailable");
    if (finished)
        return NULL;
    op->finished = NULL;
    return op;
}

/* The fetch goes on (others may wait for it); only the callback is dropped. */
void jssdk_cancel(struct jssdk_op *op)
{
    if (op)
        op->cb = NULL;
}

int jssdk_sign(const char *ticket, const char *url, struct jssdk_sig *out)
{
    if (crypto_random_base62(out->nonce, 16) != 0)
        return -1;
    out->nonce[16] = '\0';
    snprintf(out->timestamp, sizeof(out->timestamp), "%ld", now_s());
    wechat_jssdk_signature(ticket, out->nonce, out->timestamp, url, out->signature);
    return 0;
}
