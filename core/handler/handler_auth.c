/* GET /auth?campaign=NAME&return=URL (url= is an alias, scope= may override
 * where the campaign allows): checks the return URL against the campaign's
 * allow-list, runs the campaign's authorize hook, and starts the login
 * (auth_start_login: state, cookie, 302 to WeChat). */
#include "arena.h"
#include "config.h"
#include "crypto.h"
#include "funnel.h"
#include "http.h"
#include "log.h"
#include "login.h"
#include "lua_runtime.h"
#include "metrics.h"
#include "page.h"
#include "rate_limit.h"
#include "server.h"
#include "store.h"
#include "strbuf.h"
#include "wechat.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- starting a login: the state, the cookie, the 302 ---- */

struct start_ctx {
    struct http_req *r;
    const struct config *cfg; /* retained until the request ends */
    const struct config_campaign *campaign;
    char state[LOGIN_STATE_LEN + 1];
    char scope[32];
};

/* WeChat's login page for this login: the official account's authorize
 * page, or for a PC login the website app's QR page (qrconnect, or its
 * inline form for the gateway's own page when the campaign has pc_inline). */
static int wechat_login_url(const struct start_ctx *s, const char *redirect, char *url, size_t size)
{
    const struct config *cfg = s->cfg;
    const struct config_campaign *c = s->campaign;
    if (!login_is_pc(s->scope))
        return wechat_authorize_url(url, size, cfg->wechat_open_base, c->app->appid, redirect,
                                    s->scope, s->state, c->force_popup, c->force_snapshot);
    if (!c->website_app)
        return -1;
    if (c->pc_style)
        return wechat_qrconnect_inline_url(url, size, cfg->wechat_open_base, c->website_app->appid,
                                           redirect, s->state, c->pc_style, c->pc_href);
    return wechat_qrconnect_url(url, size, cfg->wechat_open_base, c->website_app->appid, redirect,
                                s->state);
}

static void start_finish(struct start_ctx *s, int ok)
{
    struct http_req *r = s->r;
    const struct config *cfg = s->cfg;
    if (!ok) {
        page_busy(r);
    } else {
        char redirect[1024], url[4096];
        login_redirect_uri(cfg, redirect, sizeof(redirect));
        const struct config_campaign *c = s->campaign;
        if (wechat_login_url(s, redirect, url, sizeof(url)) != 0) {
            page_error(r, 500, "服务器内部错误", "Internal server error.", NULL);
        } else {
            login_set_state_cookie(r, cfg, http_req_cookie(r, LOGIN_COOKIE), s->state);
            metrics_inc("wxgate_logins_started_total", "campaign", c->name, NULL);
            funnel_note(c->name, FUNNEL_SENT);
            if (login_is_pc(s->scope) && c->pc_style) {
                page_pc_login(r, c->website_app->name, url);
                return;
            }
            http_req_add_header(r, "Location", url);
            http_req_add_header(r, "Cache-Control", "no-store");
            http_reply(r, 302, "text/html; charset=utf-8", "", 0);
        }
    }
}

static void on_state_stored(const struct store_reply *rep, void *arg)
{
    struct start_ctx *s = arg;
    if (rep->status != STORE_OK)
        log_msg(LOG_ERROR, http_req_id(s->r), "login: cannot store the state: %s",
                rep->status == STORE_EXISTS ? "collision" : (rep->err ? rep->err : "error"));
    start_finish(s, rep->status == STORE_OK);
}

void auth_start_login(struct worker *w, struct http_req *r, const struct config *cfg,
                      const struct config_campaign *c, const char *scope, const char *return_url,
                      int restarts)
{
    /* The context lives in the request's arena and holds the config until
     * the request ends: the store may answer after this call returns. */
    struct arena *mem = http_req_arena(r);
    struct start_ctx *s = arena_calloc(mem, sizeof(*s));
    struct login_state st = {.created = (long)time(NULL), .restarts = restarts};
    char rec[4096], key[64];
    if (!s || crypto_random_base62(s->state, LOGIN_STATE_LEN) != 0 ||
        arena_on_reset(mem, config_release_cb, (void *)cfg) != 0) {
        page_busy(r);
        return;
    }
    config_retain((struct config *)cfg);
    s->r = r;
    s->cfg = cfg;
    s->campaign = c;
    str_copy(s->scope, sizeof(s->scope), scope);
    str_copy(st.scope, sizeof(st.scope), scope);
    str_copy(st.campaign, sizeof(st.campaign), c->name);
    str_copy(st.return_url, sizeof(st.return_url), return_url);
    int n = login_state_encode(&st, rec, sizeof(rec));
    memcpy(key, KEY_STATE "{", 4); /* st:{STATE}: the login's hash tag (login.h) */
    memcpy(key + 4, s->state, LOGIN_STATE_LEN);
    memcpy(key + 4 + LOGIN_STATE_LEN, "}", 2);
    if (n < 0 || store_add_evictable(w->store, key, strlen(key), rec, (size_t)n,
                                     LOGIN_STATE_TTL * 1000ULL, on_state_stored, s) != 0)
        start_finish(s, 0);
}

/* ---- GET /auth ---- */

struct auth_ctx {
    struct worker *w;
    struct http_req *r;
    struct config *cfg; /* retained until the request ends */
    const struct config_campaign *c;
    char scope[32];
    char *return_url;
    int hook; /* the campaign has an authorize hook */
};

static int valid_scope(const char *s)
{
    return strcmp(s, "snsapi_base") == 0 || strcmp(s, "snsapi_userinfo") == 0;
}

static int push_ctx(lua_State *L, void *arg)
{
    struct auth_ctx *a = arg;
    login_push_hook_ctx(L, a->c, a->scope, a->return_url);
    return 1;
}

/* authorize(req, ctx) may return nothing (go on), a table { scope = ... },
 * or false[, message] to refuse. A hook that fails is logged and the login
 * goes on as configured. */
static void on_hook_done(struct wxlua_task *t, int ok, int nres, void *arg)
{
    struct auth_ctx *a = arg;
    lua_State *co = wxlua_task_thread(t);
    const char *rid = http_req_id(a->r);
    if (ok && nres >= 1 && lua_type(co, 1) == LUA_TBOOLEAN && !lua_toboolean(co, 1)) {
        char en[512];
        const char *msg = nres >= 2 && lua_type(co, 2) == LUA_TSTRING ? lua_tostring(co, 2) : NULL;
        snprintf(en, sizeof(en), "This login is not available%s%s", msg ? ": " : ".",
                 msg ? msg : "");
        wxlua_task_free(t);
        page_error(a->r, 403, "当前无法登录", en, NULL);
        return;
    }
    if (ok && nres >= 1 && lua_istable(co, 1) && !login_is_pc(a->scope)) {
        lua_getfield(co, 1, "scope");
        const char *scope = lua_tostring(co, -1);
        if (scope && valid_scope(scope))
            snprintf(a->scope, sizeof(a->scope), "%s", scope);
        else if (scope)
            log_msg(LOG_WARN, rid, "authorize hook of %s: ignoring unknown scope", a->c->name);
        lua_pop(co, 1);
    }
    wxlua_task_free(t);
    auth_start_login(a->w, a->r, a->cfg, a->c, a->scope, a->return_url, 0);
}

/* Runs the authorize hook, or starts the login when there is none. */
static void authorize(struct auth_ctx *a)
{
    size_t idx = (size_t)(a->c - a->cfg->campaigns);
    if (a->hook &&
        wxlua_vm_call_hook(a->w->vm, idx, "authorize", a->r, push_ctx, on_hook_done, a) == 0)
        return;
    auth_start_login(a->w, a->r, a->cfg, a->c, a->scope, a->return_url, 0);
}

/* ---- the per-client rate limit (rate_limit.c) ----
 *
 * Every /auth stores a state, so an anonymous client could fill the store
 * (its oldest states give way, but real users' pending logins would be
 * among them). limits.auth_per_minute caps each client's /auth per minute. */

static void on_rate(int allowed, void *arg)
{
    struct auth_ctx *a = arg;
    if (!allowed) {
        char retry[16];
        snprintf(retry, sizeof(retry), "%ld", rate_limit_retry_after());
        http_req_add_header(a->r, "Retry-After", retry);
        log_msg(LOG_WARN, http_req_id(a->r), "auth: rate limit (%d per minute) for %s",
                a->cfg->limits.auth_per_minute, http_req_client(a->r));
        metrics_inc("wxgate_auth_rate_limited_total", NULL);
        page_error(a->r, 429, "请求过于频繁，请稍后再试",
                   "Too many login attempts from your network. Please wait a minute and try "
                   "again.",
                   NULL);
        return;
    }
    authorize(a);
}

static int in_wechat(struct http_req *r)
{
    const char *ua = http_req_header(r, "User-Agent");
    return ua && strstr(ua, "MicroMessenger") != NULL;
}

/* A desktop browser, which can show a QR code for a phone to scan: a user
 * agent that is neither WeChat nor a phone's or tablet's browser. */
static int on_desktop(struct http_req *r)
{
    const char *ua = http_req_header(r, "User-Agent");
    static const char *const mobile[] = {"MicroMessenger", "Mobile", "Android", "iPhone", "iPad"};
    if (!ua || !*ua)
        return 0;
    for (size_t i = 0; i < sizeof(mobile) / sizeof(mobile[0]); i++)
        if (strstr(ua, mobile[i]))
            return 0;
    return 1;
}

void handle_auth(struct worker *w, struct http_req *r)
{
    struct config *cfg = w->cfg;
    const char *name = http_req_arg(r, "campaign");
    if (!name)
        name = cfg->default_campaign;
    const struct config_campaign *c = name ? config_find_campaign(cfg, name) : NULL;
    if (!c) {
        page_error(r, 404, "活动不存在", "There is no such campaign.", NULL);
        return;
    }
    const char *ret = http_req_arg(r, "return");
    if (!ret)
        ret = http_req_arg(r, "url");
    if (!ret || !login_return_allowed(c, ret)) {
        log_msg(LOG_WARN, http_req_id(r), "auth: return URL refused for campaign %s", c->name);
        page_error(r, 400, "返回地址无效", "The return address is not allowed for this campaign.",
                   NULL);
        return;
    }
    const char *scope = http_req_arg(r, "scope");
    if (scope && (!c->scope_override || !valid_scope(scope))) {
        page_error(r, 400, "授权范围无效", "This scope is not allowed for this campaign.", NULL);
        return;
    }
    funnel_note(c->name, FUNNEL_STARTED);
    /* A desktop browser of a campaign with a website app logs in by QR code. */
    int pc = c->website_app && on_desktop(r);
    if (!pc && cfg->require_wechat_browser && !in_wechat(r)) {
        char url[4096];
        const char *base = cfg->public_url;
        size_t n = strlen(base);
        while (n && base[n - 1] == '/')
            n--;
        snprintf(url, sizeof(url), "%.*s%s", (int)n, base, http_req_uri(r));
        page_open_in_wechat(r, url);
        return;
    }
    const char *use_scope = pc ? "snsapi_login" : scope ? scope : c->scope;
    size_t idx = (size_t)(c - cfg->campaigns);
    int hook = wxlua_vm_has_hook(w->vm, idx, "authorize");
    if (!hook && cfg->limits.auth_per_minute == 0) {
        auth_start_login(w, r, cfg, c, use_scope, ret, 0);
        return;
    }
    /* The limit and the hook may answer past this call: their context lives
     * in the request's arena, and holds the config until the request ends. */
    struct arena *mem = http_req_arena(r);
    struct auth_ctx *a = arena_calloc(mem, sizeof(*a));
    if (!a || !(a->return_url = arena_strdup(mem, ret)) ||
        arena_on_reset(mem, config_release_cb, cfg) != 0) {
        page_busy(r);
        return;
    }
    config_retain(cfg);
    a->w = w;
    a->r = r;
    a->cfg = cfg;
    a->c = c;
    a->hook = hook;
    str_copy(a->scope, sizeof(a->scope), use_scope);
    if (cfg->limits.auth_per_minute > 0)
        rate_limit_check(w->store, cfg, r, "auth", cfg->limits.auth_per_minute, on_rate, a);
    else
        authorize(a);
}
