/* GET /callback?code=..&state=..: where WeChat sends the browser back.
 *
 * The flow, each step asynchronous:
 *   state record  → unknown: clear page; expired or used: restart once
 *   cookie        → present but not matching: refused (login CSRF)
 *   no code       → the denied hook (default: return URL + wx_denied=1)
 *   claim code    → already claimed: WeChat called twice; wait for and
 *                   serve the first request's outcome (one exchange)
 *   exchange      → used/expired code: restart once; upstream trouble:
 *                   the error hook, else a clear page (never retried: the
 *                   code may be spent)
 *   tokens        → kept server-side per (app, openid)
 *   userinfo      → when the scope allows
 *   login hook    → final URL (default: return URL + one-time wx_ticket)
 * The outcome is recorded under the code for a duplicate callback. */
#include "config.h"
#include "crypto.h"
#include "http.h"
#include "log.h"
#include "funnel.h"
#include "metrics.h"
#include "login.h"
#include "lua_json.h"
#include "lua_runtime.h"
#include "page.h"
#include "server.h"
#include "store.h"
#include "url.h"
#include "wechat.h"

#include <event2/event.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CODE_CLAIM_TTL_MS  300000ULL
#define POLL_MS            50
#define DUPLICATE_WINDOW_S 20 /* a later callback with the same code is a reload */

struct flow {
    struct worker *w;
    struct http_req *r;
    struct config *cfg;  /* retained */
    struct wxlua_vm *vm; /* held */
    const struct config_campaign *c;
    const struct config_app *app; /* the campaign's app for this login's kind */
    char state[129];
    char code[256];
    char code_key[400];
    struct login_state ls;
    json_t *user; /* the user record, in WeChat's field order */
    int snapshot;
    char *access_token, *refresh_token, *openid, *unionid, *scope;
    long expires_in;
    enum wechat_err err; /* for the error hook */
    int errcode;
};

static void flow_free(struct flow *f)
{
    json_decref(f->user);
    login_token_free(f->access_token);
    login_token_free(f->refresh_token);
    free(f->openid);
    free(f->unionid);
    free(f->scope);
    wxlua_vm_release(f->vm);
    config_release(f->cfg);
    free(f);
}

static const char *rid(struct flow *f) { return http_req_id(f->r); }

static void retry_link(struct flow *f, char *out, size_t outsz)
{
    char *u = url_set_param("/auth", "campaign", f->ls.campaign);
    char *v = u ? url_set_param(u, "return", f->ls.return_url) : NULL;
    snprintf(out, outsz, "%s", v ? v : "/auth");
    free(u);
    free(v);
}

/* Records the outcome for a duplicate callback; fire and forget. It is
 * sealed with the ticket secret: a redirect holds a redeemable ticket. */
static void record_outcome(struct flow *f, const char *outcome)
{
    if (!f->code_key[0])
        return;
    const char *key = f->cfg->ticket_secret ? f->cfg->ticket_secret : "";
    char *sealed = crypto_seal(key, f->code_key, strlen(f->code_key), outcome, strlen(outcome));
    if (sealed)
        store_set(f->w->store, f->code_key, strlen(f->code_key), sealed, strlen(sealed),
                  CODE_CLAIM_TTL_MS, NULL, NULL);
    free(sealed);
}

static void finish_redirect(struct flow *f, const char *url)
{
    size_t cap = strlen(url) + 32;
    char *outcome = malloc(cap);
    if (outcome) {
        snprintf(outcome, cap, "L:%ld\t%s", (long)time(NULL), url);
        record_outcome(f, outcome);
        free(outcome);
    }
    http_req_add_header(f->r, "Location", url);
    http_req_add_header(f->r, "Cache-Control", "no-store");
    http_reply(f->r, 302, "text/html; charset=utf-8", "", 0);
    flow_free(f);
}

static void finish_page(struct flow *f, const char *kind)
{
    char retry[4096], outcome[32];
    if (f->code_key[0] || !f->code[0]) { /* the owner of the outcome counts it */
        char errcode[16];
        snprintf(errcode, sizeof(errcode), "%d", f->errcode);
        metrics_inc("wxgate_logins_failed_total", "campaign", f->ls.campaign, "error",
                    f->err ? wechat_err_name(f->err) : kind, "errcode", errcode, NULL);
        funnel_failed(f->ls.campaign, kind, f->err, f->errcode);
    }
    retry_link(f, retry, sizeof(retry));
    snprintf(outcome, sizeof(outcome), "E:%s", kind);
    record_outcome(f, outcome);
    if (strcmp(kind, "expired") == 0)
        login_page_expired(f->r, retry);
    else if (strcmp(kind, "refused") == 0)
        page_error(f->r, 403, "登录被拒绝", "This login was refused.", NULL);
    else
        login_page_upstream(f->r, retry);
    flow_free(f);
}

/* A state that cannot be used any more: start a fresh authorization once;
 * the loop guard (restarts) stops a second one. */
static void restart_or_expire(struct flow *f, const char *why)
{
    log_msg(LOG_INFO, rid(f), "callback: %s (campaign %s, restart %d)", why, f->ls.campaign,
            f->ls.restarts);
    if (f->ls.restarts >= 1) {
        finish_page(f, "expired");
        return;
    }
    record_outcome(f, "E:expired");
    metrics_inc("wxgate_logins_restarted_total", "campaign", f->ls.campaign, NULL);
    funnel_note(f->ls.campaign, FUNNEL_RESTARTED);
    auth_start_login(f->w, f->r, f->cfg, f->c, f->ls.scope, f->ls.return_url, f->ls.restarts + 1);
    flow_free(f);
}

/* ---- hooks ---- */

static int push_ctx(lua_State *L, struct flow *f)
{
    login_push_hook_ctx(L, f->c, f->ls.scope, f->ls.return_url);
    return 1;
}

static int push_user_ctx(lua_State *L, void *arg)
{
    struct flow *f = arg;
    wxlua_push_json(L, f->user); /* a copy: the hook cannot change the record */
    return 1 + push_ctx(L, f);
}

static int push_only_ctx(lua_State *L, void *arg) { return push_ctx(L, arg); }

/* Takes the URL a hook chose, if it is on the campaign's allow-list. */
static const char *allowed_url(struct flow *f, const char *url, const char *hook)
{
    if (url && login_return_allowed(f->c, url))
        return url;
    if (url)
        log_msg(LOG_ERROR, rid(f),
                "%s hook of %s returned a URL outside the allow-list: "
                "using the return URL",
                hook, f->c->name);
    return f->ls.return_url;
}

/* The client left while a hook ran: whatever the hook would have said, no
 * ticket and no outcome that a reload could replay (the hook might have
 * refused). Returns 1 when the flow is finished that way. */
static int client_left(struct flow *f, struct wxlua_task *t)
{
    if (!http_req_aborted(f->r))
        return 0;
    wxlua_task_free(t);
    finish_page(f, "upstream");
    return 1;
}

static void on_denied_done(struct wxlua_task *t, int ok, int nres, void *arg)
{
    struct flow *f = arg;
    lua_State *co = wxlua_task_thread(t);
    if (client_left(f, t))
        return;
    const char *url =
        ok && nres >= 1 && lua_type(co, 1) == LUA_TSTRING ? lua_tostring(co, 1) : NULL;
    metrics_inc("wxgate_logins_denied_total", "campaign", f->c->name, NULL);
    if (!ok)
        funnel_note(f->c->name, FUNNEL_HOOK_ERROR);
    funnel_note(f->c->name, FUNNEL_DECLINED);
    char *final = url ? strdup(allowed_url(f, url, "denied"))
                      : url_set_param(f->ls.return_url, "wx_denied", "1");
    wxlua_task_free(t);
    finish_redirect(f, final ? final : f->ls.return_url);
    free(final);
}

static void run_denied(struct flow *f)
{
    size_t idx = (size_t)(f->c - f->cfg->campaigns);
    if (wxlua_vm_call_hook(f->vm, idx, "denied", f->r, push_only_ctx, on_denied_done, f) != 0)
        finish_page(f, "upstream");
}

/* The user record as the ticket's JSON. Returns malloc'd JSON or NULL. */
static char *user_json(struct flow *f)
{
    return json_dumps(f->user, JSON_COMPACT | JSON_ESCAPE_SLASH);
}

struct ticket_op {
    struct flow *f;
    char *url; /* final URL with the ticket */
};

static void on_ticket_stored(const struct store_reply *rep, void *arg)
{
    struct ticket_op *op = arg;
    struct flow *f = op->f;
    if (rep->status != STORE_OK) {
        log_msg(LOG_ERROR, rid(f), "callback: cannot store the ticket: %s",
                rep->err ? rep->err : "error");
        finish_page(f, "upstream");
    } else {
        metrics_inc("wxgate_logins_completed_total", "campaign", f->c->name, NULL);
        funnel_completed(f->c->name, 1, f->snapshot, (long)time(NULL) - f->ls.created,
                         f->ls.return_url);
        finish_redirect(f, op->url);
    }
    free(op->url);
    free(op);
}

/* Final step: url (allowed), plus a ticket unless with_ticket is 0, plus
 * extra params from the hook (on top of co at index params_idx, or 0). */
static void complete(struct flow *f, const char *url, int with_ticket, lua_State *co,
                     int params_idx)
{
    char *final = strdup(url);
    if (co && params_idx) {
        lua_pushnil(co);
        while (final && lua_next(co, params_idx)) {
            if (lua_type(co, -2) == LUA_TSTRING && lua_isstring(co, -1)) {
                char *next = url_set_param(final, lua_tostring(co, -2), lua_tostring(co, -1));
                free(final);
                final = next;
            }
            lua_pop(co, 1);
        }
    }
    if (!final) {
        finish_page(f, "upstream");
        return;
    }
    if (!with_ticket) {
        metrics_inc("wxgate_logins_completed_total", "campaign", f->c->name, NULL);
        funnel_completed(f->c->name, 0, f->snapshot, (long)time(NULL) - f->ls.created,
                         f->ls.return_url);
        finish_redirect(f, final);
        free(final);
        return;
    }
    char ticket[LOGIN_STATE_LEN + 1], key[64];
    char *user = user_json(f);
    char *json = user ? login_ticket_value(f->c->name, user) : NULL;
    free(user);
    struct ticket_op *op = calloc(1, sizeof(*op));
    if (!json || !op || crypto_random_base62(ticket, LOGIN_STATE_LEN) != 0) {
        free(json);
        free(op);
        free(final);
        finish_page(f, "upstream");
        return;
    }
    op->f = f;
    op->url = url_set_param(final, "wx_ticket", ticket);
    free(final);
    login_ticket_key(f->cfg, ticket, key);
    if (!op->url || store_set(f->w->store, key, strlen(key), json, strlen(json),
                              (uint64_t)f->c->ticket_ttl * 1000, on_ticket_stored, op) != 0) {
        free(op->url);
        free(op);
        finish_page(f, "upstream");
    }
    free(json);
}

/* login(req, user, ctx) returns nothing (default), a URL string, a table
 * { url = ..., ticket = false, params = { ... } }, or false[, message]. */
static void on_login_done(struct wxlua_task *t, int ok, int nres, void *arg)
{
    struct flow *f = arg;
    lua_State *co = wxlua_task_thread(t);
    if (client_left(f, t))
        return;
    const char *url = NULL;
    int with_ticket = !f->snapshot, params = 0;
    if (!ok)
        funnel_note(f->c->name, FUNNEL_HOOK_ERROR);
    if (ok && nres >= 1) {
        if (lua_type(co, 1) == LUA_TBOOLEAN && !lua_toboolean(co, 1)) {
            wxlua_task_free(t);
            finish_page(f, "refused");
            return;
        }
        if (lua_type(co, 1) == LUA_TSTRING) {
            url = lua_tostring(co, 1);
            with_ticket = 1;
        } else if (lua_istable(co, 1)) {
            lua_getfield(co, 1, "url");
            url = lua_tostring(co, -1);
            lua_getfield(co, 1, "ticket");
            if (lua_type(co, -1) == LUA_TBOOLEAN)
                with_ticket = lua_toboolean(co, -1);
            lua_getfield(co, 1, "params");
            params = lua_istable(co, -1) ? lua_gettop(co) : 0;
        }
    }
    char *fallback = NULL;
    if (!url && f->snapshot && nres == 0)
        url = fallback = url_set_param(f->ls.return_url, "wx_snapshot", "1");
    else
        url = allowed_url(f, url ? url : f->ls.return_url, "login");
    complete(f, url ? url : f->ls.return_url, with_ticket, co, params);
    free(fallback);
    wxlua_task_free(t);
}

static void run_login(struct flow *f)
{
    size_t idx = (size_t)(f->c - f->cfg->campaigns);
    if (wxlua_vm_call_hook(f->vm, idx, "login", f->r, push_user_ctx, on_login_done, f) != 0)
        finish_page(f, "upstream");
}

/* error(req, err) may return a URL (on the allow-list) instead of the page. */
static void on_error_done(struct wxlua_task *t, int ok, int nres, void *arg)
{
    struct flow *f = arg;
    lua_State *co = wxlua_task_thread(t);
    if (client_left(f, t))
        return;
    if (ok && nres >= 1 && lua_type(co, 1) == LUA_TSTRING &&
        login_return_allowed(f->c, lua_tostring(co, 1))) {
        char *url = strdup(lua_tostring(co, 1));
        wxlua_task_free(t);
        finish_redirect(f, url);
        free(url);
        return;
    }
    wxlua_task_free(t);
    finish_page(f, "upstream");
}

static int push_err(lua_State *L, void *arg)
{
    struct flow *f = arg;
    lua_createtable(L, 0, 2);
    lua_pushstring(L, wechat_err_name(f->err));
    lua_setfield(L, -2, "error");
    lua_pushinteger(L, f->errcode);
    lua_setfield(L, -2, "errcode");
    return 1 + push_ctx(L, f);
}

static void fail_upstream(struct flow *f, const struct wechat_reply *rep, const char *step)
{
    log_msg(LOG_ERROR, rid(f), "callback: %s failed: %s (errcode %d)", step,
            wechat_err_name(rep->err), rep->errcode);
    size_t idx = (size_t)(f->c - f->cfg->campaigns);
    f->err = rep->err;
    f->errcode = rep->errcode;
    if (!wxlua_vm_has_hook(f->vm, idx, "error") ||
        wxlua_vm_call_hook(f->vm, idx, "error", f->r, push_err, on_error_done, f) != 0)
        finish_page(f, "upstream");
}

/* ---- user, tokens, userinfo ---- */

/* The user record: WeChat's userinfo object (when the scope gave one) in
 * WeChat's field order, without errcode/errmsg, then the gateway's own
 * fields. */
static void set_user(struct flow *f, json_t *info)
{
    json_t *u = info ? json_incref(info) : json_object();
    if (!u)
        return;
    json_object_del(u, "errcode");
    json_object_del(u, "errmsg");
    json_object_set_new(u, "openid", json_string(f->openid));
    if (!json_object_get(u, "unionid") && f->unionid && !f->snapshot)
        json_object_set_new(u, "unionid", json_string(f->unionid));
    json_object_set_new(u, "appid", json_string(f->app->appid));
    json_object_set_new(u, "app", json_string(f->app->name));
    json_object_set_new(u, "campaign", json_string(f->c->name));
    json_object_set_new(u, "scope", json_string(f->scope ? f->scope : f->ls.scope));
    json_object_set_new(u, "is_snapshotuser", json_boolean(f->snapshot));
    json_object_set_new(u, "kind", json_string(login_is_pc(f->ls.scope) ? "pc" : "web"));
    json_decref(f->user);
    f->user = u;
}

static void on_userinfo(const struct wechat_reply *rep, void *arg)
{
    struct flow *f = arg;
    if (rep->err == WECHAT_OK && rep->openid && strcmp(rep->openid, f->openid) == 0) {
        set_user(f, rep->json);
    } else {
        log_msg(LOG_WARN, rid(f),
                "callback: userinfo failed: %s (errcode %d); going on with "
                "the openid only",
                wechat_err_name(rep->err), rep->errcode);
        set_user(f, NULL);
    }
    run_login(f);
}

static void fetch_userinfo(struct flow *f)
{
    struct wechat_client wc = wechat_client(f->w->fetch, f->cfg);
    if (!wechat_userinfo(&wc, f->access_token, f->openid, f->c->lang, on_userinfo, f)) {
        set_user(f, NULL);
        run_login(f);
    }
}

static void on_tokens_stored(const struct store_reply *rep, void *arg)
{
    struct flow *f = arg;
    if (rep->status != STORE_OK)
        log_msg(LOG_ERROR, rid(f), "callback: tokens not kept: %s", rep->err ? rep->err : "?");
    if (f->scope && (strstr(f->scope, "snsapi_userinfo") || strstr(f->scope, "snsapi_login"))) {
        fetch_userinfo(f);
    } else {
        set_user(f, NULL);
        run_login(f);
    }
}

/* Keeps the user's tokens server-side, per (app, openid), for /api/user. */
static void store_tokens(struct flow *f)
{
    char key[512];
    snprintf(key, sizeof(key), KEY_TOKENS "%s:%s", f->app->appid, f->openid);
    struct login_tokens t = {f->access_token, f->refresh_token, (long)time(NULL) + f->expires_in,
                             f->scope ? f->scope : f->ls.scope};
    size_t slen = 0;
    char *sealed = login_tokens_seal(f->cfg, key, &t, &slen);
    if (!sealed || store_set(f->w->store, key, strlen(key), sealed, slen,
                             LOGIN_TOKENS_TTL * 1000ULL, on_tokens_stored, f) != 0) {
        struct store_reply fail = {.status = STORE_ERROR, .err = "cannot write"};
        on_tokens_stored(&fail, f);
    }
    free(sealed);
}

static void on_exchange(const struct wechat_reply *rep, void *arg)
{
    struct flow *f = arg;
    if (rep->err != WECHAT_OK) {
        if (rep->err == WECHAT_CODE_USED || rep->err == WECHAT_CODE_EXPIRED ||
            rep->err == WECHAT_CODE_INVALID) {
            restart_or_expire(f, wechat_err_name(rep->err));
            return;
        }
        fail_upstream(f, rep, "code exchange");
        return;
    }
    f->snapshot = rep->is_snapshotuser;
    f->openid = strdup(rep->openid);
    f->unionid = rep->unionid ? strdup(rep->unionid) : NULL;
    f->scope = rep->scope ? strdup(rep->scope) : strdup(f->ls.scope);
    f->expires_in = rep->expires_in > 0 ? rep->expires_in : 7200;
    if (f->snapshot) {
        /* A virtual user of the Moments snapshot page: never stored. */
        set_user(f, NULL);
        run_login(f);
        return;
    }
    f->access_token = strdup(rep->access_token);
    f->refresh_token = rep->refresh_token ? strdup(rep->refresh_token) : NULL;
    store_tokens(f);
}

static void exchange(struct flow *f)
{
    struct wechat_client wc = wechat_client(f->w->fetch, f->cfg);
    if (!wechat_exchange_code(&wc, f->app, f->code, on_exchange, f)) {
        struct wechat_reply rep = {.err = WECHAT_NETWORK};
        fail_upstream(f, &rep, "code exchange");
    }
}

/* ---- duplicate callbacks ---- */

/* A duplicate of a callback that finished: WeChat's second call within
 * moments gets the same redirect; a reload later (the ticket in it is spent)
 * gets a fresh authorization. */
static void serve_outcome(struct flow *f, const char *v, size_t len)
{
    const char *key = f->cfg->ticket_secret ? f->cfg->ticket_secret : "";
    size_t n = 0;
    char *s = crypto_open(key, f->code_key, strlen(f->code_key), v, len, &n);
    if (!s) {
        f->code_key[0] = '\0';
        finish_page(f, "upstream");
        return;
    }
    len = n;
    char *tab = strchr(s, '\t');
    f->code_key[0] = '\0'; /* the owner records outcomes, not us */
    if (len > 2 && strncmp(s, "L:", 2) == 0 && tab) {
        if ((long)time(NULL) - strtol(s + 2, NULL, 10) > DUPLICATE_WINDOW_S)
            restart_or_expire(f, "reload of a finished callback");
        else
            finish_redirect(f, tab + 1);
    } else if (strcmp(s, "E:expired") == 0)
        finish_page(f, "expired");
    else if (strcmp(s, "E:refused") == 0)
        finish_page(f, "refused");
    else
        finish_page(f, "upstream");
    free(s);
}

/* ---- claims ---- */

static void on_state_claimed(const struct store_reply *rep, void *arg)
{
    struct flow *f = arg;
    if (rep->status == STORE_EXISTS) {
        restart_or_expire(f, "state already used");
        return;
    }
    if (rep->status != STORE_OK) {
        log_msg(LOG_ERROR, rid(f), "callback: cannot mark the state used: %s",
                rep->err ? rep->err : "store error");
        finish_page(f, "upstream");
        return;
    }
    if (!f->code[0]) {
        run_denied(f);
    } else {
        funnel_note(f->c->name, FUNNEL_CODE);
        exchange(f);
    }
}

static void claim_state(struct flow *f)
{
    char key[160];
    snprintf(key, sizeof(key), KEY_STATE_USED "{%s}", f->state);
    const char *v = f->code[0] ? f->code : "-";
    if (store_add(f->w->store, key, strlen(key), v, strlen(v), LOGIN_STATE_TTL * 1000ULL,
                  on_state_claimed, f) != 0)
        finish_page(f, "upstream");
}

/* The code claim: this callback exchanges the code (won), or WeChat called
 * back twice and the first call's outcome is served (result). */
static void on_code_claimed(enum store_claim_outcome o, const char *v, size_t len, void *arg)
{
    struct flow *f = arg;
    if (o == STORE_CLAIM_WON) {
        claim_state(f);
    } else if (o == STORE_CLAIM_RESULT) {
        log_msg(LOG_INFO, rid(f), "callback: duplicate callback, served the first's outcome");
        serve_outcome(f, v, len);
    } else {
        log_msg(LOG_ERROR, rid(f), "callback: %s",
                o == STORE_CLAIM_TIMEOUT ? "the first call for this code did not finish in time"
                                         : "cannot claim the code: store error");
        f->code_key[0] = '\0';
        finish_page(f, "upstream");
    }
}

static void on_state(const struct store_reply *rep, void *arg)
{
    struct flow *f = arg;
    if (rep->status != STORE_OK || login_state_decode(rep->value, rep->len, &f->ls) != 0) {
        if (rep->status == STORE_ERROR)
            page_busy(f->r);
        else
            login_page_expired(f->r, NULL);
        flow_free(f);
        return;
    }
    f->c = config_find_campaign(f->cfg, f->ls.campaign);
    /* A PC login (snsapi_login) exchanges with the website app's appid and
     * secret; a reload may have taken that app away. */
    f->app = !f->c ? NULL : login_is_pc(f->ls.scope) ? f->c->website_app : f->c->app;
    if (!f->app || !login_return_allowed(f->c, f->ls.return_url)) {
        login_page_expired(f->r, NULL);
        flow_free(f);
        return;
    }
    char mac[23];
    login_state_mac(f->cfg, f->state, mac);
    int bound = login_cookie_has(http_req_cookie(f->r, LOGIN_COOKIE), mac);
    if (bound == 0) {
        log_msg(LOG_WARN, rid(f), "callback: state cookie does not match (login CSRF?)");
        page_error(f->r, 403, "登录请求无效", "This login did not start in this browser.", NULL);
        flow_free(f);
        return;
    }
    if (bound < 0) {
        metrics_inc("wxgate_state_cookie_absent_total", NULL);
        if (f->c->require_state_cookie) {
            /* A login started elsewhere (login CSRF) or a cookie the webview
             * dropped: start over in this browser, which sets the cookie. */
            restart_or_expire(f, "no state cookie (required by the campaign)");
            return;
        }
        log_msg(LOG_INFO, rid(f), "callback: no state cookie (accepted)");
    }
    if ((long)time(NULL) - f->ls.created > LOGIN_STATE_VALID) {
        restart_or_expire(f, "state expired");
        return;
    }
    if (!f->code[0]) {
        claim_state(f);
        return;
    }
    snprintf(f->code_key, sizeof(f->code_key), KEY_CODE "{%s}:%s:%s", f->state, f->app->appid,
             f->code);
    /* "P" (pending) until the owner records the outcome in its place. */
    struct store_claim_spec claim = {
        .claim_key = f->code_key,
        .claim_value = "P",
        .claim_ttl_ms = CODE_CLAIM_TTL_MS,
        .poll_ms = POLL_MS,
        .wait_ms = f->cfg->upstream_timeout_ms * 2 + 5000,
    };
    if (store_claim(f->w->store, f->w->base, &claim, on_code_claimed, f) != 0) {
        f->code_key[0] = '\0';
        finish_page(f, "upstream");
    }
}

static int state_chars_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 128 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == n;
}

static int code_chars_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n < 200 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

void handle_callback(struct worker *w, struct http_req *r)
{
    const char *state = http_req_arg(r, "state");
    const char *code = http_req_arg(r, "code");
    if (!state || !state_chars_ok(state) || (code && *code && !code_chars_ok(code))) {
        login_page_expired(r, NULL);
        return;
    }
    struct flow *f = calloc(1, sizeof(*f));
    if (!f) {
        page_busy(r);
        return;
    }
    f->w = w;
    f->r = r;
    f->cfg = config_retain(w->cfg);
    f->vm = w->vm;
    wxlua_vm_hold(f->vm);
    snprintf(f->state, sizeof(f->state), "%s", state);
    snprintf(f->code, sizeof(f->code), "%s", code ? code : "");
    char key[160];
    snprintf(key, sizeof(key), KEY_STATE "{%s}", state);
    if (store_get(w->store, key, strlen(key), on_state, f) != 0) {
        page_busy(r);
        flow_free(f);
    }
}
