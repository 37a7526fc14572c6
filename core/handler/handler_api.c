/* The backend API, behind a bearer key (constant-time check):
 *   POST /api/ticket (ticket=..)   redeems a one-time login ticket → user JSON
 *   GET  /api/user?app=&openid=    fresh userinfo through the stored tokens,
 *                                  refreshing them when WeChat says expired;
 *                                  for a snsapi_base user, the identity once
 *                                  sns/auth confirms the token */
#include "config.h"
#include "crypto.h"
#include "funnel.h"
#include "http.h"
#include "log.h"
#include "login.h"
#include "server.h"
#include "store.h"
#include "wechat.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void reply_json(struct http_req *r, int status, const char *json)
{
    http_req_add_header(r, "Cache-Control", "no-store");
    http_reply(r, status, "application/json; charset=utf-8", json, strlen(json));
}

static void reply_error(struct http_req *r, int status, const char *error, const char *message)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"error\":\"%s\",\"message\":\"%s\",\"request_id\":\"%s\"}",
             error, message, http_req_id(r));
    reply_json(r, status, body);
}

/* Authorization: Bearer KEY, compared in constant time with every key. */
int api_authorized(struct worker *w, struct http_req *r)
{
    const char *h = http_req_header(r, "Authorization");
    const struct config *cfg = w->cfg;
    if (cfg->n_api_keys == 0) {
        log_msg(LOG_WARN, http_req_id(r), "api: no api_keys configured: refusing");
    } else if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *key = h + 7;
        int ok = 0;
        for (size_t i = 0; i < cfg->n_api_keys; i++)
            ok |= crypto_equal(key, strlen(key), cfg->api_keys[i], strlen(cfg->api_keys[i]));
        if (ok)
            return 1;
    }
    http_req_add_header(r, "WWW-Authenticate", "Bearer");
    reply_error(r, 401, "unauthorized", "a valid API key is required");
    return 0;
}

/* ---- POST /api/ticket ---- */

struct redeem {
    struct worker *w;
    struct http_req *r;
    char key[64];
    char *value;
};

static void on_ticket_deleted(const struct store_reply *rep, void *arg)
{
    struct redeem *d = arg;
    if (rep->status == STORE_OK) {
        char campaign[80];
        const char *record = login_ticket_record(d->value, campaign, sizeof(campaign));
        reply_json(d->r, 200, record); /* we removed it: the one redemption */
        funnel_redeemed(campaign, record, strlen(record));
    } else if (rep->status == STORE_ERROR)
        reply_error(d->r, 503, "unavailable", "the store is unavailable, try again");
    else
        reply_error(d->r, 404, "invalid_ticket", "unknown, expired or already used ticket");
    free(d->value);
    free(d);
}

static void on_ticket(const struct store_reply *rep, void *arg)
{
    struct redeem *d = arg;
    if (rep->status != STORE_OK) {
        if (rep->status == STORE_ERROR)
            reply_error(d->r, 503, "unavailable", "the store is unavailable, try again");
        else
            reply_error(d->r, 404, "invalid_ticket", "unknown, expired or already used ticket");
        free(d);
        return;
    }
    d->value = strndup(rep->value, rep->len);
    if (store_del(d->w->store, d->key, strlen(d->key), on_ticket_deleted, d) != 0) {
        reply_error(d->r, 503, "unavailable", "the store is unavailable, try again");
        free(d->value);
        free(d);
    }
}

void handle_api_ticket(struct worker *w, struct http_req *r)
{
    if (strcmp(http_req_method(r), "POST") != 0) {
        http_req_add_header(r, "Allow", "POST");
        reply_error(r, 405, "method_not_allowed", "use POST");
        return;
    }
    if (!api_authorized(w, r))
        return;
    const char *ticket = http_req_form(r, "ticket");
    if (!ticket)
        ticket = http_req_arg(r, "ticket");
    size_t n = ticket ? strlen(ticket) : 0;
    if (n == 0 || n > 128 ||
        strspn(ticket, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789") != n) {
        reply_error(r, 400, "bad_request", "ticket=... (form or query) is required");
        return;
    }
    struct redeem *d = calloc(1, sizeof(*d));
    if (!d) {
        reply_error(r, 503, "unavailable", "busy");
        return;
    }
    d->w = w;
    d->r = r;
    login_ticket_key(w->cfg, ticket, d->key);
    if (store_get(w->store, d->key, strlen(d->key), on_ticket, d) != 0) {
        reply_error(r, 503, "unavailable", "the store is unavailable, try again");
        free(d);
    }
}

/* ---- GET /api/user ---- */

struct user_req {
    struct worker *w;
    struct http_req *r;
    struct config *cfg; /* retained */
    const struct config_app *app;
    char key[512];
    char openid[200];
    char *access, *refresh, *scope;
    long access_exp;
    int refreshed;
    int base; /* snsapi_base: sns/auth instead of userinfo */
};

static void user_free(struct user_req *u)
{
    login_token_free(u->access);
    login_token_free(u->refresh);
    free(u->scope);
    config_release(u->cfg);
    free(u);
}

static void upstream_error(struct user_req *u, const struct wechat_reply *rep, const char *step)
{
    log_msg(LOG_ERROR, http_req_id(u->r), "api/user: %s failed: %s (errcode %d)", step,
            wechat_err_name(rep->err), rep->errcode);
    if (rep->err == WECHAT_REFRESH_INVALID || rep->err == WECHAT_REFRESH_EXPIRED)
        reply_error(u->r, 409, "login_required", "the user must log in again");
    else if (rep->err == WECHAT_SCOPE)
        reply_error(u->r, 409, "scope", "the user authorized snsapi_base only: no profile");
    else
        reply_error(u->r, 502, "upstream", "WeChat did not answer as expected, try again");
    user_free(u);
}

static void fetch_info(struct user_req *u);

/* The answer is WeChat's userinfo object as WeChat ordered it, with the
 * gateway's appid and app added; for a snsapi_base user, whom sns/auth just
 * confirmed, the identity without a profile. */
static void on_info(const struct wechat_reply *rep, void *arg)
{
    struct user_req *u = arg;
    if ((rep->err == WECHAT_TOKEN_EXPIRED || rep->err == WECHAT_TOKEN_INVALID) && !u->refreshed) {
        u->access_exp = 0;
        fetch_info(u);
        return;
    }
    if (rep->err != WECHAT_OK) {
        upstream_error(u, rep, "userinfo");
        return;
    }
    json_t *user = u->base ? json_object() : json_incref(rep->json);
    if (u->base && user) {
        json_object_set_new(user, "openid", json_string(u->openid));
        json_object_set_new(user, "scope", json_string(u->scope));
    }
    char *json = NULL;
    if (user && json_object_set_new(user, "appid", json_string(u->app->appid)) == 0 &&
        json_object_set_new(user, "app", json_string(u->app->name)) == 0)
        json = json_dumps(user, JSON_COMPACT | JSON_ESCAPE_SLASH);
    json_decref(user);
    if (json)
        reply_json(u->r, 200, json);
    else
        reply_error(u->r, 502, "upstream", "WeChat did not answer as expected, try again");
    free(json);
    user_free(u);
}

static void save_tokens(struct user_req *u)
{
    struct login_tokens t = {u->access, u->refresh, u->access_exp, u->scope};
    size_t slen = 0;
    char *sealed = login_tokens_seal(u->cfg, u->key, &t, &slen);
    if (sealed)
        store_set(u->w->store, u->key, strlen(u->key), sealed, slen, LOGIN_TOKENS_TTL * 1000ULL,
                  NULL, NULL);
    free(sealed);
}

static void on_refresh(const struct wechat_reply *rep, void *arg)
{
    struct user_req *u = arg;
    if (rep->err != WECHAT_OK) {
        upstream_error(u, rep, "refresh");
        return;
    }
    login_token_free(u->access);
    u->access = strdup(rep->access_token);
    if (rep->refresh_token) {
        login_token_free(u->refresh);
        u->refresh = strdup(rep->refresh_token);
    }
    u->access_exp = (long)time(NULL) + (rep->expires_in > 0 ? rep->expires_in : 7200);
    u->refreshed = 1;
    save_tokens(u);
    fetch_info(u);
}

/* userinfo with the stored access token, or a refresh first when it has
 * expired (by its recorded lifetime or WeChat's word). */
static void fetch_info(struct user_req *u)
{
    struct wechat_client wc = wechat_client(u->w->fetch, u->cfg);
    struct wechat_call *call;
    if (u->access_exp - 60 <= (long)time(NULL) && !u->refreshed)
        call = wechat_refresh(&wc, u->app, u->refresh, on_refresh, u);
    else
        call = u->base ? wechat_check_token(&wc, u->access, u->openid, on_info, u)
                       : wechat_userinfo(&wc, u->access, u->openid, "zh_CN", on_info, u);
    if (!call) {
        reply_error(u->r, 502, "upstream", "cannot reach WeChat");
        user_free(u);
    }
}

static void on_tokens(const struct store_reply *rep, void *arg)
{
    struct user_req *u = arg;
    if (rep->status == STORE_ERROR) {
        reply_error(u->r, 503, "unavailable", "the store is unavailable, try again");
        user_free(u);
        return;
    }
    struct login_tokens t;
    int found =
        rep->status == STORE_OK && login_tokens_open(u->cfg, u->key, rep->value, rep->len, &t) == 0;
    if (found) {
        u->access = t.access;
        u->refresh = t.refresh;
        u->access_exp = t.access_expires;
        u->scope = t.scope;
    }
    if (!found) {
        reply_error(u->r, 404, "unknown_user", "no stored login for this app and openid");
        user_free(u);
        return;
    }
    u->base = !strstr(u->scope, "snsapi_userinfo") && !strstr(u->scope, "snsapi_login");
    fetch_info(u);
}

void handle_api_user(struct worker *w, struct http_req *r)
{
    if (!api_authorized(w, r))
        return;
    const char *app = http_req_arg(r, "app");
    const char *openid = http_req_arg(r, "openid");
    const struct config_app *a = app ? config_find_app(w->cfg, app) : NULL;
    size_t on = openid ? strlen(openid) : 0;
    if (!a || on == 0 || on >= 200 ||
        strspn(openid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != on) {
        reply_error(r, 400, "bad_request", "app=NAME_OR_APPID&openid=OPENID are required");
        return;
    }
    struct user_req *u = calloc(1, sizeof(*u));
    if (!u) {
        reply_error(r, 503, "unavailable", "busy");
        return;
    }
    u->w = w;
    u->r = r;
    u->cfg = config_retain(w->cfg);
    u->app = a;
    snprintf(u->openid, sizeof(u->openid), "%s", openid);
    snprintf(u->key, sizeof(u->key), KEY_TOKENS "%s:%s", a->appid, openid);
    if (store_get(w->store, u->key, strlen(u->key), on_tokens, u) != 0) {
        reply_error(r, 503, "unavailable", "the store is unavailable, try again");
        user_free(u);
    }
}
