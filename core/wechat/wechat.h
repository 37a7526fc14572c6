/* The WeChat web-authorization protocol client: builds the authorize URL
 * exactly as WeChat checks it, and makes the API calls (code exchange,
 * refresh, userinfo, sns/auth, basic token, jsapi ticket) asynchronously
 * through the worker's fetch loop. Every reply is decoded once, in C, with
 * jansson (which keeps WeChat's field order); the fields the core needs are
 * read into struct wechat_reply. No Lua VM is involved. */
#ifndef WX_WECHAT_H
#define WX_WECHAT_H
#include <jansson.h>
#include <stddef.h>

struct fetch_loop;
struct config;
struct config_app;

enum wechat_err {
    WECHAT_OK = 0,
    WECHAT_CODE_INVALID,    /* 40029 */
    WECHAT_CODE_USED,       /* 40163 */
    WECHAT_CODE_EXPIRED,    /* 42003 */
    WECHAT_TOKEN_INVALID,   /* 40001 */
    WECHAT_TOKEN_EXPIRED,   /* 42001 */
    WECHAT_REFRESH_INVALID, /* 40030 */
    WECHAT_REFRESH_EXPIRED, /* 42002 */
    WECHAT_SCOPE,           /* 48001: the token's scope does not allow it */
    WECHAT_OPENID,          /* 40003 */
    WECHAT_QUOTA,           /* 45009, 45011 */
    WECHAT_BUSY,            /* -1 */
    WECHAT_CREDENTIALS,     /* 40013, 40125, 41002, 41004: our appid/secret */
    WECHAT_HTTP,            /* upstream answered with an HTTP error */
    WECHAT_GARBAGE,         /* not the JSON we expect */
    WECHAT_TIMEOUT,
    WECHAT_NETWORK,
    WECHAT_UNKNOWN, /* another errcode */
    WECHAT_BLOCKED, /* 40226: a high-risk user, Mini Program login blocked */
};

/* A short, stable name for logs, metrics and hooks ("code_used"). */
const char *wechat_err_name(enum wechat_err e);

struct wechat_reply {
    enum wechat_err err;
    int errcode;  /* WeChat's errcode (0 when none) */
    json_t *json; /* the decoded reply object, or NULL; lent to the
                                callback (json_incref to keep it) */
    /* Fields of the reply (NULL/0 when absent); valid in the callback. */
    const char *access_token, *refresh_token, *openid, *scope, *unionid, *ticket;
    const char *session_key; /* jscode2session: never logged, never answered */
    long expires_in;
    int is_snapshotuser;
};

typedef void (*wechat_cb)(const struct wechat_reply *r, void *arg);

struct wechat_client {
    struct fetch_loop *fetch;
    const char *api_base;
    const char *ca_file;
    long connect_timeout_ms, timeout_ms;
};

struct wechat_call;

/* The client for cfg's WeChat (base URL, CA file, timeouts). */
struct wechat_client wechat_client(struct fetch_loop *fetch, const struct config *cfg);

/* Builds the authorize URL. 0 ok, -1 when out is too small or state is not
 * [A-Za-z0-9]{1,128}. */
/* The PC website login's QR page: open_base/connect/qrconnect?appid=..&
 * redirect_uri=..&response_type=code&scope=snsapi_login&state=..
 * #wechat_redirect, in WeChat's order, redirect_uri encoded once. 0 or -1. */
int wechat_qrconnect_url(char *out, size_t outsz, const char *open_base, const char *appid,
                         const char *redirect_uri, const char *state);
/* The same for an iframe (WeChat's inline form): no #wechat_redirect, and
 * after state login_type=jssdk&self_redirect=false (the whole page moves on
 * to the callback), style (black | white) and href (a CSS URL, encoded;
 * may be empty). */
int wechat_qrconnect_inline_url(char *out, size_t outsz, const char *open_base, const char *appid,
                                const char *redirect_uri, const char *state, const char *style,
                                const char *href);
int wechat_authorize_url(char *out, size_t outsz, const char *open_base, const char *appid,
                         const char *redirect_uri, const char *scope, const char *state,
                         int force_popup, int force_snapshot);

struct wechat_call *wechat_exchange_code(const struct wechat_client *c,
                                         const struct config_app *app, const char *code,
                                         wechat_cb cb, void *arg);
struct wechat_call *wechat_refresh(const struct wechat_client *c, const struct config_app *app,
                                   const char *refresh_token, wechat_cb cb, void *arg);
struct wechat_call *wechat_userinfo(const struct wechat_client *c, const char *access_token,
                                    const char *openid, const char *lang, wechat_cb cb, void *arg);
struct wechat_call *wechat_check_token(const struct wechat_client *c, const char *access_token,
                                       const char *openid, wechat_cb cb, void *arg);
struct wechat_call *wechat_basic_token(const struct wechat_client *c, const struct config_app *app,
                                       wechat_cb cb, void *arg);
struct wechat_call *wechat_jsapi_ticket(const struct wechat_client *c, const char *access_token,
                                        wechat_cb cb, void *arg);
/* Mini Program / Mini Game login: a wx.login() code for openid, unionid and
 * session_key (sns/jscode2session). */
struct wechat_call *wechat_jscode2session(const struct wechat_client *c,
                                          const struct config_app *app, const char *js_code,
                                          wechat_cb cb, void *arg);
/* A getPhoneNumber code for the user's number (POST
 * wxa/business/getuserphonenumber with the app's basic access_token); the
 * reply's json holds phone_info. */
struct wechat_call *wechat_phone_number(const struct wechat_client *c, const char *access_token,
                                        const char *code, wechat_cb cb, void *arg);
/* The callback will not run. */
void wechat_cancel(struct wechat_call *call);

/* The JS-SDK page signature: sha1 of
 * "jsapi_ticket=T&noncestr=N&timestamp=TS&url=U" with U cut at '#'.
 * out: 41 bytes (hex). */
void wechat_jssdk_signature(const char *ticket, const char *noncestr, const char *timestamp,
                            const char *url, char out[41]);

#endif
