/* The Mini Program and Mini Game logins (apps of kind miniprogram/minigame):
 *   POST /api/mp/login (app, code[, campaign][, phone_code])  a wx.login()
 *        code → the campaign's login hook → {"ticket": ...} (or what the
 *        hook adds); with a getPhoneNumber code, the user record has the
 *        number (user.phone) for the hook and the ticket's backend
 *   POST /api/mp/phone (app, code), bearer key  a getPhoneNumber code → the
 *        user's phone_info, through the app's basic access_token
 * Parameters come as a form, a query or a JSON object. session_key is sealed
 * in the store under sk:{APPID}:OPENID and never answered or logged; phone
 * numbers are answered to the authorised backend only and never logged. */
#include "config.h"
#include "crypto.h"
#include "http.h"
#include "jssdk.h"
#include "log.h"
#include "login.h"
#include "lua_json.h"
#include "lua_runtime.h"
#include "funnel.h"
#include "metrics.h"
#include "rate_limit.h"
#include "server.h"
#include "store.h"
#include "wechat.h"

#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SESSION_TTL_S (3 * 86400) /* how long a sealed session_key is kept */

/* ---- request parameters and replies ---- */

/* A JSON reply built with jansson (values escaped), with the request id on
 * errors. */
static void reply_obj(struct http_req *r, int status, json_t *o)
{
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    http_req_add_header(r, "Cache-Control", "no-store");
    if (!body) {
        http_reply(r, 503, "application/json; charset=utf-8", "{\"error\":\"busy\"}", 16);
        return;
    }
    http_reply(r, status, "application/json; charset=utf-8", body, strlen(body));
    free(body);
}

static void reply_err(struct http_req *r, int status, const char *error, const char *message)
{
    reply_obj(r, status,
              json_pack("{s:s,s:s,s:s}", "error", error, "message", message, "request_id",
                        http_req_id(r)));
}

/* The request's parameters: a JSON object body, else form fields, else the
 * query. Strings only; *json is the parsed body to release (or NULL). */
static const char *param(struct http_req *r, json_t *body, const char *name)
{
    if (body)
        return json_string_value(json_object_get(body, name));
    const char *v = http_req_form(r, name);
    return v ? v : http_req_arg(r, name);
}

static json_t *json_body(struct http_req *r)
{
    const char *ct = http_req_header(r, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0)
        return NULL;
    size_t len = 0;
    const char *b = http_req_body(r, &len);
    json_t *o = b ? json_loadb(b, len, 0, NULL) : NULL;
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o ? o : json_object(); /* a broken body: every parameter missing */
}

static int code_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= 256 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

/* POST only; the Mini Program app named by app= (its name or appid). NULL
 * after answering. */
static const struct config_app *mini_app(struct http_req *r, const struct config *cfg, json_t *body)
{
    if (strcmp(http_req_method(r), "POST") != 0) {
        http_req_add_header(r, "Allow", "POST");
        reply_err(r, 405, "method_not_allowed", "use POST");
        return NULL;
    }
    const char *name = param(r, body, "app");
    const struct config_app *a = name ? config_find_app(cfg, name) : NULL;
    if (!a || a->kind != APP_MINIPROGRAM) {
        reply_err(r, 400, "unknown_app",
                  "app= must name a Mini Program or Mini Game app of the config (name or appid)");
        return NULL;
    }
    if (!code_ok(param(r, body, "code"))) {
        reply_err(r, 400, "bad_request", "code= (from wx.login() or getPhoneNumber) is required");
        return NULL;
    }
    return a;
}

/* WeChat's answer to a code, as the client should hear it. */
static void reply_wechat_error(struct http_req *r, const struct wechat_reply *rep, const char *what)
{
    log_msg(LOG_WARN, http_req_id(r), "mp: %s failed: %s (errcode %d)", what,
            wechat_err_name(rep->err), rep->errcode);
    switch (rep->err) {
    case WECHAT_CODE_INVALID:
    case WECHAT_CODE_EXPIRED:
        reply_err(r, 400, "invalid_code",
                  "the code is invalid or expired: ask the device for a new one");
        break;
    case WECHAT_CODE_USED:
        reply_err(r, 400, "code_used", "the code was already used: ask the device for a new one");
        break;
    case WECHAT_QUOTA:
        http_req_add_header(r, "Retry-After", "60");
        reply_err(r, 429, "rate_limited", "WeChat's rate limit for this app: retry in a minute");
        break;
    case WECHAT_BLOCKED:
        reply_err(r, 403, "user_blocked", "WeChat blocked this login: a high-risk user (40226)");
        break;
    case WECHAT_BUSY:
        http_req_add_header(r, "Retry-After", "1");
        reply_err(r, 503, "busy", "WeChat is busy: retry shortly");
        break;
    default: reply_err(r, 502, "upstream", "WeChat did not answer as expected, try again");
    }
}

/* ---- POST /api/mp/login ---- */

struct mp_login {
    struct worker *w;
    struct http_req *r;
    struct config *cfg;  /* retained */
    struct wxlua_vm *vm; /* held */
    const struct config_campaign *c;
    const struct config_app *app;
    char code[257];
    char phone_code[257]; /* optional getPhoneNumber code */
    int retried;          /* -1 (busy) is retried once */
    int token_retried;    /* a refused basic token is replaced once */
    char *token;          /* the basic token of the phone call (wiped) */
    json_t *user;
};

static void mp_free(struct mp_login *m)
{
    json_decref(m->user);
    login_token_free(m->token);
    wxlua_vm_release(m->vm);
    config_release(m->cfg);
    free(m);
}

struct mp_ticket {
    struct mp_login *m;
    json_t *answer; /* {"ticket": ..., params...} */
};

static void on_ticket_stored(const struct store_reply *rep, void *arg)
{
    struct mp_ticket *t = arg;
    struct mp_login *m = t->m;
    if (rep->status != STORE_OK) {
        log_msg(LOG_ERROR, http_req_id(m->r), "mp: cannot store the ticket: %s",
                rep->err ? rep->err : "error");
        json_decref(t->answer);
        reply_err(m->r, 503, "unavailable", "the store is unavailable, try again");
    } else {
        metrics_inc("wxgate_logins_completed_total", "campaign", m->c->name, NULL);
        funnel_completed(m->c->name, 1, 0, 0, NULL);
        reply_obj(m->r, 200, t->answer);
    }
    free(t);
    mp_free(m);
}

/* The answer: the hook's params (strings, numbers, booleans) and, unless the
 * hook said ticket = false, a one-time ticket for the user record. */
static void answer(struct mp_login *m, int with_ticket, lua_State *co, int params)
{
    json_t *a = json_object();
    if (co && params) {
        lua_pushnil(co);
        while (a && lua_next(co, params)) {
            if (lua_type(co, -2) == LUA_TSTRING && strcmp(lua_tostring(co, -2), "ticket") != 0) {
                int t = lua_type(co, -1);
                json_t *v = t == LUA_TSTRING    ? json_string(lua_tostring(co, -1))
                            : t == LUA_TNUMBER  ? json_real(lua_tonumber(co, -1))
                            : t == LUA_TBOOLEAN ? json_boolean(lua_toboolean(co, -1))
                                                : NULL;
                if (t == LUA_TNUMBER && lua_tonumber(co, -1) == (double)lua_tointeger(co, -1)) {
                    json_decref(v);
                    v = json_integer(lua_tointeger(co, -1));
                }
                if (v)
                    json_object_set_new(a, lua_tostring(co, -2), v);
            }
            lua_pop(co, 1);
        }
    }
    if (!with_ticket) {
        metrics_inc("wxgate_logins_completed_total", "campaign", m->c->name, NULL);
        funnel_completed(m->c->name, 0, 0, 0, NULL);
        reply_obj(m->r, 200, a);
        mp_free(m);
        return;
    }
    char ticket[LOGIN_STATE_LEN + 1], key[64];
    char *user = json_dumps(m->user, JSON_COMPACT | JSON_ESCAPE_SLASH);
    char *json = user ? login_ticket_value(m->c->name, user) : NULL;
    free(user);
    struct mp_ticket *t = calloc(1, sizeof(*t));
    if (!a || !json || !t || crypto_random_base62(ticket, LOGIN_STATE_LEN) != 0) {
        json_decref(a);
        free(json);
        free(t);
        reply_err(m->r, 503, "busy", "try again");
        mp_free(m);
        return;
    }
    json_object_set_new(a, "ticket", json_string(ticket));
    t->m = m;
    t->answer = a;
    login_ticket_key(m->cfg, ticket, key);
    if (store_set(m->w->store, key, strlen(key), json, strlen(json),
                  (uint64_t)m->c->ticket_ttl * 1000, on_ticket_stored, t) != 0) {
        struct store_reply fail = {.status = STORE_ERROR, .err = "cannot write"};
        on_ticket_stored(&fail, t);
    }
    free(json);
}

static int push_user_ctx(lua_State *L, void *arg)
{
    struct mp_login *m = arg;
    wxlua_push_json(L, m->user);
    login_push_hook_ctx(L, m->c, NULL, NULL);
    lua_pushstring(L, m->app->name); /* the Mini Program, not the campaign's web app */
    lua_setfield(L, -2, "app");
    lua_pushstring(L, m->app->appid);
    lua_setfield(L, -2, "appid");
    return 2;
}

/* login(req, user, ctx) as for the web login: nothing (a ticket), false[,
 * message] (refused), or { ticket = false, params = { ... } }: params are
 * the answer's fields (a signed session token, say). A URL is meaningless
 * here and ignored. A hook that fails gives the default answer. */
static void on_login_done(struct wxlua_task *t, int ok, int nres, void *arg)
{
    struct mp_login *m = arg;
    lua_State *co = wxlua_task_thread(t);
    int with_ticket = 1, params = 0;
    if (http_req_aborted(m->r)) {
        wxlua_task_free(t);
        mp_free(m);
        return;
    }
    if (ok && nres >= 1 && lua_type(co, 1) == LUA_TBOOLEAN && !lua_toboolean(co, 1)) {
        const char *msg = nres >= 2 && lua_type(co, 2) == LUA_TSTRING ? lua_tostring(co, 2) : NULL;
        reply_err(m->r, 403, "refused", msg ? msg : "this login was refused");
        wxlua_task_free(t);
        mp_free(m);
        return;
    }
    if (ok && nres >= 1 && lua_istable(co, 1)) {
        lua_getfield(co, 1, "ticket");
        if (lua_type(co, -1) == LUA_TBOOLEAN)
            with_ticket = lua_toboolean(co, -1);
        lua_getfield(co, 1, "params");
        params = lua_istable(co, -1) ? lua_gettop(co) : 0;
    }
    answer(m, with_ticket, co, params);
    wxlua_task_free(t);
}

static void run_login(struct mp_login *m)
{
    size_t idx = (size_t)(m->c - m->cfg->campaigns);
    if (wxlua_vm_call_hook(m->vm, idx, "login", m->r, push_user_ctx, on_login_done, m) != 0)
        answer(m, 1, NULL, 0);
}

/* The user record, in the web login's shape: openid, unionid when the app
 * shares an Open Platform account, then the gateway's own fields. */
static void set_user(struct mp_login *m, const struct wechat_reply *rep)
{
    json_t *u = json_object();
    json_object_set_new(u, "openid", json_string(rep->openid));
    if (rep->unionid)
        json_object_set_new(u, "unionid", json_string(rep->unionid));
    json_object_set_new(u, "appid", json_string(m->app->appid));
    json_object_set_new(u, "app", json_string(m->app->name));
    json_object_set_new(u, "campaign", json_string(m->c->name));
    json_object_set_new(u, "kind", json_string("miniprogram"));
    if (m->app->minigame)
        json_object_set_new(u, "minigame", json_true());
    m->user = u;
}

/* Seals session_key under sk:{APPID}:OPENID (fire and forget: the login
 * does not depend on it). */
static void keep_session_key(struct mp_login *m, const struct wechat_reply *rep)
{
    char key[300], rec[512];
    snprintf(key, sizeof(key), KEY_SESSION "{%s}:%s", m->app->appid, rep->openid);
    int n = snprintf(rec, sizeof(rec), "v1\t%s\t%ld", rep->session_key,
                     (long)time(NULL) + SESSION_TTL_S);
    size_t slen = 0;
    char *sealed =
        n > 0 && (size_t)n < sizeof(rec) ? login_token_seal(m->cfg, key, rec, &slen) : NULL;
    explicit_bzero(rec, sizeof(rec));
    if (sealed)
        store_set(m->w->store, key, strlen(key), sealed, slen, SESSION_TTL_S * 1000ULL, NULL, NULL);
    free(sealed);
}

static void exchange(struct mp_login *m);
static void ask_login_token(struct mp_login *m);

/* The phone number for the user record: phoneNumber, purePhoneNumber and
 * countryCode of phone_info (not the watermark). A failure is logged (the
 * errcode only) and the login goes on without it. */
static void on_login_phone(const struct wechat_reply *rep, void *arg)
{
    struct mp_login *m = arg;
    if ((rep->err == WECHAT_TOKEN_INVALID || rep->err == WECHAT_TOKEN_EXPIRED) &&
        !m->token_retried) {
        m->token_retried = 1;
        ask_login_token(m);
        return;
    }
    json_t *info = rep->err == WECHAT_OK ? json_object_get(rep->json, "phone_info") : NULL;
    if (info) {
        json_t *phone = json_object();
        static const char *const keys[] = {"phoneNumber", "purePhoneNumber", "countryCode"};
        for (size_t i = 0; i < 3; i++)
            if (json_is_string(json_object_get(info, keys[i])))
                json_object_set(phone, keys[i], json_object_get(info, keys[i]));
        json_object_set_new(m->user, "phone", phone);
    } else {
        log_msg(LOG_WARN, http_req_id(m->r), "mp: phone number not given: %s (errcode %d)",
                wechat_err_name(rep->err), rep->errcode);
    }
    run_login(m);
}

static void on_login_token(const char *token, const char *err, void *arg)
{
    struct mp_login *m = arg;
    struct wechat_client wc = wechat_client(m->w->fetch, m->cfg);
    login_token_free(m->token);
    m->token = token ? strdup(token) : NULL;
    if (!m->token || !wechat_phone_number(&wc, m->token, m->phone_code, on_login_phone, m)) {
        log_msg(LOG_WARN, http_req_id(m->r), "mp: phone number not given: %s",
                err ? err : "cannot reach WeChat");
        run_login(m);
    }
}

static void ask_login_token(struct mp_login *m)
{
    jssdk_basic_token(m->w, m->app, m->token_retried ? m->token : NULL, on_login_token, m);
}

static void on_session(const struct wechat_reply *rep, void *arg)
{
    struct mp_login *m = arg;
    if (rep->err == WECHAT_BUSY && !m->retried) {
        m->retried = 1;
        log_msg(LOG_INFO, http_req_id(m->r), "mp: WeChat busy (-1): retrying once");
        exchange(m);
        return;
    }
    if (rep->err != WECHAT_OK) {
        char errcode[16];
        snprintf(errcode, sizeof(errcode), "%d", rep->errcode);
        metrics_inc("wxgate_logins_failed_total", "campaign", m->c->name, "error",
                    wechat_err_name(rep->err), "errcode", errcode, NULL);
        funnel_failed(m->c->name, "upstream", rep->err, rep->errcode);
        reply_wechat_error(m->r, rep, "jscode2session");
        mp_free(m);
        return;
    }
    keep_session_key(m, rep);
    set_user(m, rep);
    if (m->phone_code[0])
        ask_login_token(m);
    else
        run_login(m);
}

static void exchange(struct mp_login *m)
{
    struct wechat_client wc = wechat_client(m->w->fetch, m->cfg);
    if (!wechat_jscode2session(&wc, m->app, m->code, on_session, m)) {
        reply_err(m->r, 502, "upstream", "cannot reach WeChat");
        mp_free(m);
    }
}

/* The campaign the login lands in: campaign= (which must list the app) or
 * the first campaign whose miniprogram_apps holds the app. */
static const struct config_campaign *campaign_of(const struct config *cfg,
                                                 const struct config_app *app, const char *name)
{
    if (!name)
        return config_campaign_of_mini_app(cfg, app);
    const struct config_campaign *c = config_find_campaign(cfg, name);
    for (size_t i = 0; c && i < c->n_mini_apps; i++)
        if (c->mini_apps[i] == app)
            return c;
    return NULL;
}

/* A login that passed the checks and the limit: counted as started (a
 * Mini Program comes with its code: no trip to WeChat's pages), then
 * exchanged. */
static void begin(struct mp_login *m)
{
    metrics_inc("wxgate_logins_started_total", "campaign", m->c->name, NULL);
    funnel_note(m->c->name, FUNNEL_STARTED);
    funnel_note(m->c->name, FUNNEL_CODE);
    exchange(m);
}

/* limits.mp_login_per_minute (rate_limit.c): each call costs a call to
 * WeChat, so an anonymous client could otherwise spend the app's allowance. */
static void on_rate(int allowed, void *arg)
{
    struct mp_login *m = arg;
    if (allowed) {
        begin(m);
        return;
    }
    char retry[16];
    snprintf(retry, sizeof(retry), "%ld", rate_limit_retry_after());
    http_req_add_header(m->r, "Retry-After", retry);
    log_msg(LOG_WARN, http_req_id(m->r), "mp: rate limit (%d per minute) for %s",
            m->cfg->limits.mp_login_per_minute, http_req_client(m->r));
    metrics_inc("wxgate_mp_login_rate_limited_total", NULL);
    reply_err(m->r, 429, "rate_limited",
              "too many logins from this network; wait a minute and try again");
    mp_free(m);
}

void handle_mp_login(struct worker *w, struct http_req *r)
{
    json_t *body = json_body(r);
    const struct config_app *app = mini_app(r, w->cfg, body);
    const char *phone_code = app ? param(r, body, "phone_code") : NULL;
    if (phone_code && !code_ok(phone_code)) {
        reply_err(r, 400, "bad_request", "phone_code= must be a getPhoneNumber code");
        app = NULL;
    }
    const struct config_campaign *c =
        app ? campaign_of(w->cfg, app, param(r, body, "campaign")) : NULL;
    if (app && !c)
        reply_err(r, 404, "no_campaign",
                  "no campaign lists this app in miniprogram_apps (or campaign= does not)");
    struct mp_login *m = c ? calloc(1, sizeof(*m)) : NULL;
    if (c && !m)
        reply_err(r, 503, "busy", "try again");
    if (m) {
        m->w = w;
        m->r = r;
        m->cfg = config_retain(w->cfg);
        m->vm = w->vm;
        wxlua_vm_hold(m->vm);
        m->c = c;
        m->app = app;
        snprintf(m->code, sizeof(m->code), "%s", param(r, body, "code"));
        snprintf(m->phone_code, sizeof(m->phone_code), "%s", phone_code ? phone_code : "");
    }
    json_decref(body);
    if (m && m->cfg->limits.mp_login_per_minute > 0)
        rate_limit_check(w->store, m->cfg, r, "mp", m->cfg->limits.mp_login_per_minute, on_rate, m);
    else if (m)
        begin(m);
}

/* ---- POST /api/mp/phone ---- */

struct mp_phone {
    struct worker *w;
    struct http_req *r;
    struct config *cfg; /* retained */
    const struct config_app *app;
    char code[257];
    char *token; /* the basic token used (wiped) */
    int retried; /* a refused token (40001/42001) is replaced once */
};

static void phone_free(struct mp_phone *p)
{
    login_token_free(p->token);
    config_release(p->cfg);
    free(p);
}

static void ask_token(struct mp_phone *p);

static void on_phone(const struct wechat_reply *rep, void *arg)
{
    struct mp_phone *p = arg;
    if ((rep->err == WECHAT_TOKEN_INVALID || rep->err == WECHAT_TOKEN_EXPIRED) && !p->retried) {
        p->retried = 1;
        ask_token(p);
        return;
    }
    if (rep->err != WECHAT_OK) {
        reply_wechat_error(p->r, rep, "getuserphonenumber");
    } else {
        json_t *info = json_object_get(rep->json, "phone_info");
        reply_obj(p->r, 200, json_pack("{s:O}", "phone_info", info));
    }
    phone_free(p);
}

static void on_token(const char *token, const char *err, void *arg)
{
    struct mp_phone *p = arg;
    if (!token) {
        log_msg(LOG_ERROR, http_req_id(p->r), "mp/phone: no basic access_token: %s",
                err ? err : "error");
        reply_err(p->r, 502, "upstream", "no access_token for this app, try again");
        phone_free(p);
        return;
    }
    login_token_free(p->token);
    p->token = strdup(token);
    struct wechat_client wc = wechat_client(p->w->fetch, p->cfg);
    if (!p->token || !wechat_phone_number(&wc, p->token, p->code, on_phone, p)) {
        reply_err(p->r, 502, "upstream", "cannot reach WeChat");
        phone_free(p);
    }
}

static void ask_token(struct mp_phone *p)
{
    jssdk_basic_token(p->w, p->app, p->retried ? p->token : NULL, on_token, p);
}

void handle_mp_phone(struct worker *w, struct http_req *r)
{
    if (strcmp(http_req_method(r), "POST") == 0 && !api_authorized(w, r))
        return;
    json_t *body = json_body(r);
    const struct config_app *app = mini_app(r, w->cfg, body);
    struct mp_phone *p = app ? calloc(1, sizeof(*p)) : NULL;
    if (app && !p)
        reply_err(r, 503, "busy", "try again");
    if (p) {
        p->w = w;
        p->r = r;
        p->cfg = config_retain(w->cfg);
        p->app = app;
        snprintf(p->code, sizeof(p->code), "%s", param(r, body, "code"));
    }
    json_decref(body);
    if (p)
        ask_token(p);
}
