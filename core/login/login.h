/* The login flow's shared pieces: return-URL allow-lists, login state
 * records, the state-binding cookie, tickets, and the flow context that
 * /auth and /callback (handler_auth.c, handler_callback.c) build on. */
#ifndef WX_LOGIN_H
#define WX_LOGIN_H
#include <stddef.h>

struct config;
struct config_campaign;
struct http_req;
struct lua_State;
struct worker;

#define LOGIN_STATE_LEN 32        /* base62 characters: ~190 bits */
#define LOGIN_STATE_TTL 1800      /* seconds a record is kept (to restart used ones) */
#define LOGIN_STATE_VALID 600     /* seconds a state may be called back */
#define LOGIN_COOKIE "wxgate_state"

/* Is url an absolute http(s) URL on the campaign's allow-list? Exact scheme,
 * host and port (default ports normalized), optional path prefix; refuses
 * userinfo, control characters, backslashes, dot segments and anything that
 * is not plainly an absolute URL. */
int login_return_allowed(const struct config_campaign *c, const char *url);

/* A login state record, as stored under "st:STATE". */
struct login_state {
    long created;                 /* unix seconds */
    int restarts;                 /* fresh authorizations after a failed callback */
    char scope[32];
    char campaign[128];
    char return_url[2048];
};
/* Encodes into out (tab-separated); returns length or -1. */
int login_state_encode(const struct login_state *s, char *out, size_t outsz);
int login_state_decode(const char *v, size_t len, struct login_state *s);

/* The cookie holds the MACs of the browser's most recent states, so that a
 * callback can be tied to the browser that started it. */
void login_state_mac(const struct config *cfg, const char *state, char out[23]);
/* 1: the cookie holds mac; 0: it holds others only; -1: no usable cookie. */
int login_cookie_has(const char *cookie, const char *mac);
/* Writes the new cookie value: mac first, then up to 3 previous ones. */
void login_cookie_push(const char *cookie, const char *mac, char *out, size_t outsz);
/* Adds the Set-Cookie header binding state to this browser. */
void login_set_state_cookie(struct http_req *r, const struct config *cfg, const char *old,
                            const char *state);

/* Adds name=value (value URL-encoded) to the query of url, before any
 * fragment. Returns a malloc'd string. */
char *login_url_add_param(const char *url, const char *name, const char *value);

/* The store key of a ticket: "tk:" + HMAC(ticket_secret, ticket), so that a
 * store dump does not hold redeemable tickets. */
void login_ticket_key(const struct config *cfg, const char *ticket, char out[64]);

/* A user's token record ("ut:APPID:OPENID"): "v1\tACCESS\tREFRESH\t
 * ACCESS_EXPIRES\tREFRESH_EXPIRES\tSCOPE", sealed with token_key (AES-GCM,
 * bound to the store key) when one is configured. Both return malloc'd
 * strings, or NULL. */
char *login_token_seal(const struct config *cfg, const char *key, const char *record,
                       size_t *len);
char *login_token_open(const struct config *cfg, const char *key, const char *v, size_t len);
/* Frees a token (access or refresh) or an opened token record after
 * overwriting it, so that no token outlives its use in freed memory.
 * NULL is a no-op. */
void login_token_free(char *token);

/* The redirect_uri given to WeChat: public_url + "/callback". */
void login_redirect_uri(const struct config *cfg, char *out, size_t outsz);

/* Starts a login for campaign: stores a new state, sets the cookie and
 * answers 302 to WeChat's authorize page. Used by /auth and by /callback to
 * restart a failed login. */
void login_start(struct worker *w, struct http_req *r, const struct config *cfg,
                 const struct config_campaign *c, const char *scope, const char *return_url,
                 int restarts);

/* Pushes the ctx table every campaign hook gets (authorize, login, denied,
 * error): { campaign, app, appid, scope, return_url }. */
void login_push_hook_ctx(struct lua_State *L, const struct config_campaign *c, const char *scope,
                         const char *return_url);

/* Error pages of the flow, never showing upstream details. */
void login_page_expired(struct http_req *r, const char *retry);
void login_page_upstream(struct http_req *r, const char *retry);

#endif
