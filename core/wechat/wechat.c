/* The WeChat protocol client (see wechat.h). */
#include "wechat.h"

#include "config.h"
#include "crypto.h"
#include "fetch.h"
#include "metrics.h"
#include "strbuf.h"
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wechat_call {
    struct fetch *f;
    enum {
        CALL_EXCHANGE,
        CALL_TOKEN,
        CALL_USERINFO,
        CALL_STATUS,
        CALL_TICKET,
        CALL_SESSION,
        CALL_PHONE
    } kind;
    const char *endpoint; /* for metrics: "/sns/userinfo" */
    wechat_cb cb;
    void *arg;
};

const char *wechat_err_name(enum wechat_err e)
{
    static const char *const names[] = {"ok",
                                        "code_invalid",
                                        "code_used",
                                        "code_expired",
                                        "token_invalid",
                                        "token_expired",
                                        "refresh_invalid",
                                        "refresh_expired",
                                        "scope",
                                        "openid",
                                        "quota",
                                        "busy",
                                        "credentials",
                                        "http",
                                        "garbage",
                                        "timeout",
                                        "network",
                                        "unknown",
                                        "blocked"};
    return (size_t)e < sizeof(names) / sizeof(names[0]) ? names[e] : "unknown";
}

static enum wechat_err map_errcode(int errcode)
{
    switch (errcode) {
    case 0: return WECHAT_OK;
    case 40029: return WECHAT_CODE_INVALID;
    case 40163: return WECHAT_CODE_USED;
    case 42003: return WECHAT_CODE_EXPIRED;
    case 40001:
    case 40014:
    case 41001: return WECHAT_TOKEN_INVALID;
    case 42001: return WECHAT_TOKEN_EXPIRED;
    case 40030:
    case 41003: return WECHAT_REFRESH_INVALID;
    case 42002: return WECHAT_REFRESH_EXPIRED;
    case 48001:
    case 40066: return WECHAT_SCOPE;
    case 40003:
    case 41009: return WECHAT_OPENID;
    case 45009:
    case 45011: return WECHAT_QUOTA;
    case -1: return WECHAT_BUSY;
    case 40013:
    case 40125:
    case 41002:
    case 41004:
    case 40164: return WECHAT_CREDENTIALS;
    case 41008: return WECHAT_CODE_INVALID;
    case 40226: return WECHAT_BLOCKED;
    default: return WECHAT_UNKNOWN;
    }
}

static int state_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* The part both login pages share, in the order WeChat checks: appid,
 * redirect_uri, response_type, scope, state. redirect_uri is encoded
 * exactly once. -1 for a state WeChat would refuse or values too long. */
static int login_url_start(struct strbuf *b, const char *open_base, const char *path,
                           const char *appid, const char *redirect_uri, const char *scope,
                           const char *state)
{
    if (!state_ok(state))
        return -1;
    char eappid[256], eredirect[3072];
    if (url_encode(eappid, sizeof(eappid), appid) < 0 ||
        url_encode(eredirect, sizeof(eredirect), redirect_uri) < 0)
        return -1;
    strbuf_put(b, open_base);
    strbuf_put(b, path);
    strbuf_put(b, "?appid=");
    strbuf_put(b, eappid);
    strbuf_put(b, "&redirect_uri=");
    strbuf_put(b, eredirect);
    strbuf_put(b, "&response_type=code&scope=");
    strbuf_put(b, scope);
    strbuf_put(b, "&state=");
    strbuf_put(b, state);
    return 0;
}

/* Then the optional forcePopup, forceSnapShot and connect_redirect, and
 * #wechat_redirect last. */
int wechat_authorize_url(char *out, size_t outsz, const char *open_base, const char *appid,
                         const char *redirect_uri, const char *scope, const char *state,
                         int force_popup, int force_snapshot)
{
    struct strbuf b = strbuf_init(out, outsz);
    if (login_url_start(&b, open_base, "/connect/oauth2/authorize", appid, redirect_uri, scope,
                        state) != 0)
        return -1;
    if (force_popup)
        strbuf_put(&b, "&forcePopup=true");
    if (force_snapshot)
        strbuf_put(&b, "&forceSnapShot=true");
    strbuf_put(&b, "&connect_redirect=1#wechat_redirect");
    return strbuf_done(&b, out) > 0 ? 0 : -1;
}

static const char *str_field(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name)); /* NULL unless a string */
}

/* A number field as a long: WeChat sends integers; a real is truncated, and
 * anything else (or out of range) is 0. */
static long num_field(const json_t *o, const char *name)
{
    const json_t *v = json_object_get(o, name);
    if (json_is_integer(v))
        return (long)json_integer_value(v);
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return d > -1e15 && d < 1e15 ? (long)d : 0;
    }
    return 0;
}

static void on_reply(const struct fetch_response *res, void *arg)
{
    struct wechat_call *call = arg;
    struct wechat_reply r = {0};
    json_t *json = NULL;

    if (!res->ok) {
        r.err = strcmp(res->error, "timeout") == 0 ? WECHAT_TIMEOUT : WECHAT_NETWORK;
    } else if (res->status != 200) {
        r.err = WECHAT_HTTP;
    } else if (!(json = json_loadb(res->body, res->body_len, 0, NULL)) || !json_is_object(json)) {
        r.err = WECHAT_GARBAGE;
    } else {
        const json_t *errcode = json_object_get(json, "errcode");
        int has_errcode = json_is_number(errcode);
        r.errcode = has_errcode ? (int)num_field(json, "errcode") : 0;
        r.err = map_errcode(r.errcode);
        if (r.err == WECHAT_OK) {
            r.access_token = str_field(json, "access_token");
            r.refresh_token = str_field(json, "refresh_token");
            r.openid = str_field(json, "openid");
            r.scope = str_field(json, "scope");
            r.unionid = str_field(json, "unionid");
            r.ticket = str_field(json, "ticket");
            r.session_key = str_field(json, "session_key");
            r.expires_in = num_field(json, "expires_in");
            r.is_snapshotuser = num_field(json, "is_snapshotuser") == 1;
            int complete = 1;
            switch (call->kind) {
            case CALL_EXCHANGE: complete = r.access_token && r.openid; break;
            case CALL_TOKEN: complete = r.access_token != NULL; break;
            case CALL_USERINFO: complete = r.openid != NULL; break;
            case CALL_TICKET: complete = r.ticket != NULL; break;
            case CALL_STATUS: complete = has_errcode; break;
            case CALL_SESSION: complete = r.openid && r.session_key; break;
            case CALL_PHONE: complete = json_is_object(json_object_get(json, "phone_info")); break;
            }
            if (!complete)
                r.err = WECHAT_GARBAGE;
        }
        r.json = json;
    }
    if (json && !r.json) {
        json_decref(json);
        json = NULL;
    }
    metrics_observe("wxgate_upstream_seconds", res->total_ms / 1000.0, "endpoint", call->endpoint,
                    NULL);
    if (r.err != WECHAT_OK)
        metrics_inc("wxgate_upstream_errors_total", "endpoint", call->endpoint, "error",
                    wechat_err_name(r.err), NULL);
    wechat_cb cb = call->cb;
    void *cb_arg = call->arg;
    free(call);
    cb(&r, cb_arg);
    json_decref(json); /* the callback took a reference if it keeps it */
}

static struct wechat_call *start(const struct wechat_client *c, int kind, const char *endpoint,
                                 const char *url, const char *body, wechat_cb cb, void *arg)
{
    struct wechat_call *call = calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->endpoint = endpoint;
    call->kind = kind;
    call->cb = cb;
    call->arg = arg;
    static const struct fetch_header json_type = {"Content-Type", "application/json"};
    struct fetch_request req = {
        .method = body ? "POST" : "GET",
        .url = url,
        .headers = body ? &json_type : NULL,
        .n_headers = body ? 1 : 0,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .connect_timeout_ms = c->connect_timeout_ms,
        .timeout_ms = c->timeout_ms,
        .ca_file = c->ca_file,
        .max_body = 256 * 1024,
    };
    call->f = fetch_start(c->fetch, &req, on_reply, call);
    if (!call->f) {
        free(call);
        return NULL;
    }
    return call;
}

struct wechat_client wechat_client(struct fetch_loop *fetch, const struct config *cfg)
{
    struct wechat_client c = {.fetch = fetch,
                              .api_base = cfg->wechat_api_base,
                              .ca_file = cfg->wechat_ca_file,
                              .connect_timeout_ms = cfg->upstream_connect_timeout_ms,
                              .timeout_ms = cfg->upstream_timeout_ms};
    return c;
}

void wechat_cancel(struct wechat_call *call)
{
    if (!call)
        return;
    fetch_cancel(call->f);
    free(call);
}

/* Formats the URL of an API call with each value URL-encoded. */
static struct wechat_call *call_api_body(const struct wechat_client *c, int kind, wechat_cb cb,
                                         void *arg, const char *path, const char *const *kv,
                                         const char *body)
{
    char url[4096], v[2048];
    size_t n = (size_t)snprintf(url, sizeof(url), "%s%s", c->api_base, path);
    int ok = 1;
    for (int i = 0; ok && kv[i] && n < sizeof(url); i += 2) {
        ok = url_encode(v, sizeof(v), kv[i + 1] ? kv[i + 1] : "") >= 0;
        if (ok)
            n +=
                (size_t)snprintf(url + n, sizeof(url) - n, "%c%s=%s", i == 0 ? '?' : '&', kv[i], v);
    }
    struct wechat_call *call =
        ok && n < sizeof(url) ? start(c, kind, path, url, body, cb, arg) : NULL;
    /* They held the secret or a token, on every way out. */
    explicit_bzero(v, sizeof(v));
    explicit_bzero(url, sizeof(url));
    return call;
}

static struct wechat_call *call_api(const struct wechat_client *c, int kind, wechat_cb cb,
                                    void *arg, const char *path, const char *const *kv)
{
    return call_api_body(c, kind, cb, arg, path, kv, NULL);
}

struct wechat_call *wechat_jscode2session(const struct wechat_client *c,
                                          const struct config_app *app, const char *js_code,
                                          wechat_cb cb, void *arg)
{
    const char *kv[] = {"appid",   app->appid, "secret",     app->secret,
                        "js_code", js_code,    "grant_type", "authorization_code",
                        NULL};
    return call_api(c, CALL_SESSION, cb, arg, "/sns/jscode2session", kv);
}

struct wechat_call *wechat_phone_number(const struct wechat_client *c, const char *access_token,
                                        const char *code, wechat_cb cb, void *arg)
{
    const char *kv[] = {"access_token", access_token, NULL};
    json_t *o = json_pack("{s:s}", "code", code);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    struct wechat_call *call =
        body ? call_api_body(c, CALL_PHONE, cb, arg, "/wxa/business/getuserphonenumber", kv, body)
             : NULL;
    free(body);
    return call;
}

static int qrconnect_url(char *out, size_t outsz, const char *open_base, const char *appid,
                         const char *redirect_uri, const char *state, const char *style,
                         const char *href)
{
    struct strbuf b = strbuf_init(out, outsz);
    if (login_url_start(&b, open_base, "/connect/qrconnect", appid, redirect_uri, "snsapi_login",
                        state) != 0)
        return -1;
    if (style) {
        char ehref[1024];
        if (url_encode(ehref, sizeof(ehref), href ? href : "") < 0)
            return -1;
        strbuf_put(&b, "&login_type=jssdk&self_redirect=false&style=");
        strbuf_put(&b, strcmp(style, "white") == 0 ? "white" : "black");
        strbuf_put(&b, "&href=");
        strbuf_put(&b, ehref);
    } else {
        strbuf_put(&b, "#wechat_redirect");
    }
    return strbuf_done(&b, out) > 0 ? 0 : -1;
}

int wechat_qrconnect_url(char *out, size_t outsz, const char *open_base, const char *appid,
                         const char *redirect_uri, const char *state)
{
    return qrconnect_url(out, outsz, open_base, appid, redirect_uri, state, NULL, NULL);
}

int wechat_qrconnect_inline_url(char *out, size_t outsz, const char *open_base, const char *appid,
                                const char *redirect_uri, const char *state, const char *style,
                                const char *href)
{
    return qrconnect_url(out, outsz, open_base, appid, redirect_uri, state, style ? style : "black",
                         href);
}

struct wechat_call *wechat_exchange_code(const struct wechat_client *c,
                                         const struct config_app *app, const char *code,
                                         wechat_cb cb, void *arg)
{
    const char *kv[] = {"appid",      app->appid,           "secret", app->secret, "code", code,
                        "grant_type", "authorization_code", NULL};
    return call_api(c, CALL_EXCHANGE, cb, arg, "/sns/oauth2/access_token", kv);
}

struct wechat_call *wechat_refresh(const struct wechat_client *c, const struct config_app *app,
                                   const char *refresh_token, wechat_cb cb, void *arg)
{
    const char *kv[] = {"appid",         app->appid,    "grant_type", "refresh_token",
                        "refresh_token", refresh_token, NULL};
    return call_api(c, CALL_EXCHANGE, cb, arg, "/sns/oauth2/refresh_token", kv);
}

struct wechat_call *wechat_userinfo(const struct wechat_client *c, const char *access_token,
                                    const char *openid, const char *lang, wechat_cb cb, void *arg)
{
    const char *kv[] = {"access_token", access_token,          "openid", openid,
                        "lang",         lang ? lang : "zh_CN", NULL};
    return call_api(c, CALL_USERINFO, cb, arg, "/sns/userinfo", kv);
}

struct wechat_call *wechat_check_token(const struct wechat_client *c, const char *access_token,
                                       const char *openid, wechat_cb cb, void *arg)
{
    const char *kv[] = {"access_token", access_token, "openid", openid, NULL};
    return call_api(c, CALL_STATUS, cb, arg, "/sns/auth", kv);
}

struct wechat_call *wechat_basic_token(const struct wechat_client *c, const struct config_app *app,
                                       wechat_cb cb, void *arg)
{
    const char *kv[] = {"grant_type", "client_credential", "appid", app->appid,
                        "secret",     app->secret,         NULL};
    return call_api(c, CALL_TOKEN, cb, arg, "/cgi-bin/token", kv);
}

struct wechat_call *wechat_jsapi_ticket(const struct wechat_client *c, const char *access_token,
                                        wechat_cb cb, void *arg)
{
    const char *kv[] = {"access_token", access_token, "type", "jsapi", NULL};
    return call_api(c, CALL_TICKET, cb, arg, "/cgi-bin/ticket/getticket", kv);
}

void wechat_jssdk_signature(const char *ticket, const char *noncestr, const char *timestamp,
                            const char *url, char out[41])
{
    size_t ulen = strcspn(url, "#");
    size_t cap = strlen(ticket) + strlen(noncestr) + strlen(timestamp) + ulen + 64;
    char small[2048];
    char *s = cap <= sizeof(small) ? small : malloc(cap);
    unsigned char digest[20];
    if (!s) {
        out[0] = '\0'; /* no signature: wx.config fails visibly, nothing is signed wrong */
        return;
    }
    int n = snprintf(s, cap, "jsapi_ticket=%s&noncestr=%s&timestamp=%s&url=%.*s", ticket, noncestr,
                     timestamp, (int)ulen, url);
    crypto_sha1(s, (size_t)n, digest);
    crypto_hex(digest, 20, out);
    if (s != small)
        free(s);
}
